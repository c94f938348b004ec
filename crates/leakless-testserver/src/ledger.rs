//! The ledger: the one place the server's state lives (counters, per
//! connection states, recorded requests, close requests, the current config)
//! and the wake-ups for anyone waiting on it.
//!
//! Every change happens under one mutex and is followed by a wake-up on both
//! a tokio `watch` (async waiters, on any runtime) and a `Condvar` (blocking
//! waiters). A waiter checks its predicate under the same mutex after
//! subscribing, so no change can slip between check and sleep.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};

use crate::config::Config;
use crate::request::RecordedRequest;
use crate::stats::{CloseReason, ConnState, ConnStats, ServerStats, TlsInfo};
use crate::tcp::Gate;

pub(crate) struct Ledger {
    inner: Mutex<Inner>,
    config: RwLock<Arc<Config>>,
    version: watch::Sender<u64>,
    cond: Condvar,
}

#[derive(Default)]
struct Inner {
    stats: ServerStats,
    /// Open connections only.
    ctl: HashMap<u64, Ctl>,
    requests: VecDeque<RecordedRequest>,
    /// Closed connections still listed in `stats.conns`, oldest first.
    closed_order: VecDeque<u64>,
    panics: Vec<String>,
    shutting_down: bool,
    next_id: u64,
    /// Threads in `wait_blocking`: the Condvar is only signalled when there
    /// are some, because a futex wake is a syscall on every request.
    blocked: usize,
}

/// How the ledger reaches one connection's task.
struct Ctl {
    /// Woken when `close` is set: the task closes at its next await.
    notify: Arc<Notify>,
    close: Option<CloseReason>,
    /// Shut to make the connection deaf or silent; see `tcp.rs`.
    gate: Arc<Gate>,
}

impl Ledger {
    pub(crate) fn new(config: Config) -> Self {
        Ledger {
            inner: Mutex::new(Inner::default()),
            config: RwLock::new(Arc::new(config)),
            version: watch::Sender::new(0),
            cond: Condvar::new(),
        }
    }

    pub(crate) fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_config(&self, config: Config) {
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panicking connection task must not take the accounting down with
        // it: the panic is reported at Drop instead.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the state, then wakes every waiter.
    fn change<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let (out, blocked) = {
            let mut s = self.lock();
            (f(&mut s), s.blocked > 0)
        };
        self.version.send_modify(|v| *v = v.wrapping_add(1));
        if blocked {
            self.cond.notify_all();
        }
        out
    }

    /// Registers an accepted connection: its id, the handle its task
    /// listens on, and the gate its socket reads and writes through. `None`
    /// once shutdown has begun.
    pub(crate) fn accept(
        &self,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> Option<(u64, Arc<Notify>, Arc<Gate>)> {
        self.change(|s| {
            if s.shutting_down {
                return None;
            }
            s.next_id += 1;
            let id = s.next_id;
            let notify = Arc::new(Notify::new());
            let gate = Arc::new(Gate::default());
            let ctl = Ctl {
                notify: notify.clone(),
                close: None,
                gate: gate.clone(),
            };
            s.ctl.insert(id, ctl);
            s.stats.accepted += 1;
            s.stats.open += 1;
            s.stats.conns.insert(id, ConnStats::new(peer, local));
            Some((id, notify, gate))
        })
    }

    /// Moves a connection to `state`, unless a close was requested, in which
    /// case that reason is returned and the caller must close. A silent
    /// connection stays [`ConnState::Silent`] whatever its task does next.
    pub(crate) fn enter(&self, id: u64, state: ConnState) -> Option<CloseReason> {
        self.change(|s| {
            let ctl = s.ctl.get(&id)?;
            if let Some(reason) = ctl.close {
                return Some(reason);
            }
            if !ctl.gate.is_shut() {
                s.set_state(id, state);
            }
            None
        })
    }

    /// Makes a connection deaf (reads stop, a reply under way goes out).
    pub(crate) fn deafen(&self, id: u64) {
        self.change(|s| {
            if let Some(ctl) = s.ctl.get(&id) {
                ctl.gate.deafen();
                s.set_state(id, ConnState::Silent);
            }
        });
    }

    /// Silences every open connection (reads and writes stop); returns how
    /// many were not silent already.
    pub(crate) fn silence_all(&self) -> usize {
        self.change(|s| {
            let mut n = 0;
            let ids: Vec<u64> = s.ctl.keys().copied().collect();
            for id in ids {
                let ctl = &s.ctl[&id];
                if ctl.close.is_some() {
                    continue;
                }
                n += usize::from(!ctl.gate.is_shut());
                ctl.gate.silence();
                s.set_state(id, ConnState::Silent);
            }
            n
        })
    }

    /// Makes the connection's close, whenever its socket drops, a reset.
    pub(crate) fn reset_on_close(&self, id: u64) {
        if let Some(ctl) = self.lock().ctl.get(&id) {
            ctl.gate.reset_on_close();
        }
    }

    /// Whether the connection's gate is shut (deaf or silent).
    pub(crate) fn is_shut(&self, id: u64) -> bool {
        self.lock().ctl.get(&id).is_some_and(|c| c.gate.is_shut())
    }

    pub(crate) fn tls_done(&self, id: u64, info: TlsInfo) {
        self.change(|s| {
            s.stats.tls_handshakes += 1;
            s.stats.tls_resumed += u64::from(info.resumed);
            if let Some(c) = s.stats.conns.get_mut(&id) {
                c.tls = Some(info);
            }
        });
    }

    pub(crate) fn tls_failed(&self, id: u64, error: String) {
        self.change(|s| {
            s.stats.tls_failures += 1;
            if let Some(c) = s.stats.conns.get_mut(&id) {
                c.tls_error = Some(error);
            }
        });
    }

    pub(crate) fn h2_started(&self, id: u64) {
        self.change(|s| {
            s.stats.h2_conns += 1;
            if let Some(c) = s.stats.conns.get_mut(&id) {
                c.h2 = true;
            }
        });
    }

    /// Counts a stream the client opened, now being served. The connection
    /// is busy from here, in the same change, so no snapshot shows a
    /// stream open on an idle connection.
    pub(crate) fn stream_opened(&self, id: u64) {
        self.change(|s| {
            s.stats.h2_streams += 1;
            if let Some(c) = s.stats.conns.get_mut(&id) {
                c.streams += 1;
                c.streams_open += 1;
                c.streams_open_max = c.streams_open_max.max(c.streams_open);
            }
            s.h2_state(id);
        });
    }

    /// A stream is no longer being served; `refused` if the server reset it
    /// with REFUSED_STREAM unprocessed. The last one makes the connection
    /// idle in the same change.
    pub(crate) fn stream_closed(&self, id: u64, refused: bool) {
        self.change(|s| {
            s.stats.h2_streams_refused += u64::from(refused);
            if let Some(c) = s.stats.conns.get_mut(&id) {
                c.streams_open = c.streams_open.saturating_sub(1);
            }
            s.h2_state(id);
        });
    }

    /// Frames of interest read off an HTTP/2 connection.
    pub(crate) fn h2_frames(&self, id: u64, pings: u64, resets: u64) {
        self.change(|s| {
            s.stats.h2_pings += pings;
            s.stats.h2_streams_reset += resets;
            if let Some(c) = s.stats.conns.get_mut(&id) {
                c.pings += pings;
                c.streams_reset += resets;
            }
        });
    }

    /// Frames a flood fault wrote.
    pub(crate) fn flooded(&self, frames: u64) {
        self.change(|s| s.stats.h2_flood_frames += frames);
    }

    pub(crate) fn goaway_sent(&self) {
        self.change(|s| s.stats.h2_goaways += 1);
    }

    /// The reason a close was requested for `id` (after its notify fired).
    pub(crate) fn requested_close(&self, id: u64) -> CloseReason {
        let s = self.lock();
        s.ctl
            .get(&id)
            .and_then(|c| c.close)
            .unwrap_or(CloseReason::CloseAll)
    }

    /// Counts a fully read request and records it; returns its sequence
    /// number on the connection.
    pub(crate) fn request(&self, id: u64, rec: &RecordedRequest) -> u64 {
        let history = self.config().history;
        self.change(|s| {
            s.stats.requests += 1;
            let seq = match s.stats.conns.get_mut(&id) {
                Some(c) => {
                    c.requests += 1;
                    c.requests
                }
                None => 0,
            };
            if history > 0 {
                let mut rec = rec.clone();
                rec.conn_id = id;
                rec.conn_seq = seq;
                s.requests.push_back(rec);
                while s.requests.len() > history {
                    s.requests.pop_front();
                }
            }
            seq
        })
    }

    pub(crate) fn bad_request(&self) {
        self.change(|s| s.stats.bad_requests += 1);
    }

    pub(crate) fn write_failed(&self, id: u64) {
        self.change(|s| {
            s.stats.write_failures += 1;
            if let Some(c) = s.stats.conns.get_mut(&id) {
                c.write_failures += 1;
            }
        });
    }

    /// Records that `id`'s socket is closed. Called once per connection,
    /// after the socket is dropped; later calls are ignored.
    pub(crate) fn closed(&self, id: u64, reason: CloseReason) {
        let history = self.config().history;
        self.change(|s| {
            if s.ctl.remove(&id).is_none() {
                return;
            }
            s.set_state(id, ConnState::Closed(reason));
            s.stats.open -= 1;
            s.stats.closed += 1;
            if reason.by_server() {
                s.stats.closed_by_server += 1;
            } else {
                s.stats.closed_by_peer += 1;
            }
            *s.stats.closes.entry(reason).or_default() += 1;
            s.closed_order.push_back(id);
            while s.closed_order.len() > history {
                if let Some(old) = s.closed_order.pop_front() {
                    s.stats.conns.remove(&old);
                }
            }
        });
    }

    /// Asks every connection in `state` (any open one if `None`) to close
    /// with `reason`; returns how many were asked.
    fn request_close(&self, state: Option<ConnState>, reason: CloseReason) -> usize {
        self.change(|s| {
            let mut n = 0;
            for (id, ctl) in &mut s.ctl {
                let matches =
                    state.is_none_or(|want| s.stats.conns.get(id).is_some_and(|c| c.state == want));
                if ctl.close.is_none() && matches {
                    ctl.close = Some(reason);
                    ctl.notify.notify_one();
                    n += 1;
                }
            }
            n
        })
    }

    pub(crate) fn close_idle(&self) -> usize {
        self.request_close(Some(ConnState::Idle), CloseReason::CloseIdle)
    }

    pub(crate) fn close_all(&self) -> usize {
        self.request_close(None, CloseReason::CloseAll)
    }

    /// Refuses new connections and asks every open one to close.
    pub(crate) fn shutdown(&self) {
        self.change(|s| s.shutting_down = true);
        // A connection already asked to close keeps its first reason.
        self.request_close(None, CloseReason::Shutdown);
    }

    pub(crate) fn panicked(&self, msg: String) {
        self.change(|s| s.panics.push(msg));
    }

    pub(crate) fn panics(&self) -> Vec<String> {
        self.lock().panics.clone()
    }

    pub(crate) fn stats(&self) -> ServerStats {
        self.lock().stats.clone()
    }

    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.iter().cloned().collect()
    }

    /// Subscribe before checking, so a change after the check still wakes.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }

    /// A snapshot, if `pred` holds now.
    pub(crate) fn check(&self, pred: &impl Fn(&ServerStats) -> bool) -> Option<ServerStats> {
        let s = self.lock();
        pred(&s.stats).then(|| s.stats.clone())
    }

    /// Blocks the calling thread until `pred` holds or `timeout` passes;
    /// returns the last snapshot either way.
    pub(crate) fn wait_blocking(
        &self,
        timeout: Duration,
        pred: impl Fn(&ServerStats) -> bool,
    ) -> Result<ServerStats, Box<ServerStats>> {
        let deadline = Instant::now() + timeout;
        let mut s = self.lock();
        loop {
            if pred(&s.stats) {
                return Ok(s.stats.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Box::new(s.stats.clone()));
            }
            s.blocked += 1;
            s = self
                .cond
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
            s.blocked -= 1;
        }
    }
}

impl Inner {
    /// An HTTP/2 connection is busy while it serves a stream, idle between
    /// streams; silent, stalled or closing ones keep their state.
    fn h2_state(&mut self, id: u64) {
        let Some(c) = self.stats.conns.get(&id) else {
            return;
        };
        let shut = self
            .ctl
            .get(&id)
            .is_none_or(|c| c.close.is_some() || c.gate.is_shut());
        let next = match (c.state, c.streams_open) {
            (ConnState::New | ConnState::Idle, 1..) => ConnState::Busy,
            (ConnState::Busy, 0) => ConnState::Idle,
            _ => return,
        };
        if !shut {
            self.set_state(id, next);
        }
    }

    /// Sets a connection's state, keeping the `idle` count in step.
    fn set_state(&mut self, id: u64, state: ConnState) {
        let Some(c) = self.stats.conns.get_mut(&id) else {
            return;
        };
        if c.state == ConnState::Idle {
            self.stats.idle -= 1;
        }
        if state == ConnState::Idle {
            self.stats.idle += 1;
        }
        c.state = state;
    }
}
