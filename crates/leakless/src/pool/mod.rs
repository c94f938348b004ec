//! The pool: who holds each connection. Per-host counts and limits, LIFO
//! idle lists with a global LRU cap, shared HTTP/2 entries, FIFO waiters
//! with direct hand-off, the idle reaper, and the registry of who holds what.
//!
//! - `lease`: `Slot` and `Lease`, the accounting guards whose `Drop` is the
//!   one way a count goes down.
//! - `dial`: turns a slot and a freshly opened connection into a lease, or
//!   into an HTTP/2 entry and its first stream.
//! - `streams`: HTTP/2 entries and the stream handles taken on them.
//! - `host`: one host's counts, idle list, waiters and entries.
//! - `hosts`: the host map; a host leaves it when nothing of it is left,
//!   its counts kept for the recent ones and folded into the totals.
//! - `series`: the hosts the Prometheus exposition names, so its counters
//!   never go down as hosts come and go.
//! - `waiter`, `reaper`, `leak`: the wait queue, the idle reaper, the
//!   outstanding-lease registry and its `leak_threshold` scanner.
//!
//! Every count changes under one mutex, in the same critical section as the
//! change it describes; sockets are closed after the lock is released. The
//! histograms and the leak registry ride along in those same sections, so
//! observability costs no extra lock.

mod dial;
mod host;
mod hosts;
mod leak;
mod lease;
mod reaper;
mod series;
mod streams;
mod waiter;

use std::{
    panic::Location,
    sync::{Arc, Mutex, MutexGuard, Weak},
    time::Duration,
};

use tokio::{
    sync::{Notify, oneshot},
    time::Instant,
};

pub(crate) use dial::{Dialed, dial};
pub use leak::Outstanding;
pub(crate) use lease::{Lease, Slot};
pub(crate) use streams::{H2Stream, StreamGuard};

use self::{
    host::{Host, Proto},
    hosts::Hosts,
    lease::SlotState,
    series::Series,
    waiter::{Wait, Waiter},
};
use crate::{
    config::Config,
    connect::{Connector, DialTimes},
    error::{Error, PoolState},
    http1::{H1Conn, Unusable},
    route::Route,
    stats::{CloseReason, HostStats, PoolStats},
};

/// The call site a request was sent from.
pub(crate) type Site = &'static Location<'static>;

/// What a checkout yields: a reused HTTP/1.1 connection, a stream on a
/// shared HTTP/2 connection, or the right to dial.
#[derive(Debug)]
pub(crate) enum Checkout {
    Reused(Lease),
    /// Boxed: a checkout over 128 bytes was a `memcpy` at each move.
    Stream(Box<H2Stream>),
    Dial(Slot),
}

/// State shared by the client, every lease and the background tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    config: Config,
    /// Opens this pool's connections (the TLS connector is built once).
    connector: Connector,
    state: Mutex<State>,
    reaper_wake: Notify,
}

#[derive(Debug)]
struct State {
    hosts: Hosts,
    /// The hosts the metrics exposition names, and what it last showed.
    series: Series,
    idle_total: usize,
    /// The client was dropped: nothing goes idle any more.
    closed: bool,
    reaper_running: bool,
    /// When the running reaper looks next.
    reaper_until: Option<Instant>,
    leak_scanner: bool,
    next_waiter: u64,
    next_conn: u64,
}

/// Sockets to close once the lock is released.
type Doomed = Vec<H1Conn>;

/// The client's handle on the pool.
#[derive(Debug)]
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

enum Got {
    Ready(Checkout),
    Wait(Wait),
}

impl Pool {
    pub fn new(config: Config, connector: Connector) -> Pool {
        let state = State {
            hosts: Hosts::default(),
            series: Series::default(),
            idle_total: 0,
            closed: false,
            reaper_running: false,
            reaper_until: None,
            leak_scanner: false,
            next_waiter: 0,
            next_conn: 0,
        };
        let shared = Shared {
            config,
            connector,
            state: Mutex::new(state),
            reaper_wake: Notify::new(),
        };
        Pool {
            shared: Arc::new(shared),
        }
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// A live idle connection or a stream, else a slot to dial, else a
    /// place in the queue.
    pub async fn checkout(&self, route: &Route, site: Site) -> Result<Checkout, Error> {
        match self.shared.try_checkout(route, site) {
            Got::Ready(c) => Ok(c),
            Got::Wait(w) => w.wait(self.shared.config.pool_wait_timeout).await,
        }
    }

    /// A checkout that never waits: `None` when it would have to.
    pub fn try_checkout_now(&self, route: &Route) -> Option<Checkout> {
        match self.shared.try_checkout(route, Location::caller()) {
            Got::Ready(c) => Some(c),
            Got::Wait(_) => None,
        }
    }

    pub fn note_retry(&self, route: &Route) {
        self.shared.lock().hosts.counters(route).retries += 1;
    }

    /// A redirect from `route` is followed (its connection may be gone).
    pub fn note_redirect(&self, route: &Route) {
        self.shared.lock().hosts.counters(route).redirects += 1;
    }

    pub fn stats(&self) -> PoolStats {
        self.shared.stats()
    }

    /// A handle that does not keep the pool alive (for metrics).
    pub fn downgrade(&self) -> Weak<Shared> {
        Arc::downgrade(&self.shared)
    }

    /// Every response or lease that holds a connection now, oldest first.
    pub fn outstanding(&self) -> Vec<Outstanding> {
        let st = self.shared.lock();
        let now = Instant::now();
        let mut out = Vec::new();
        for (route, host) in st.hosts.iter() {
            host.outstanding.list(route, now, &mut out);
        }
        out.sort_by_key(|o| std::cmp::Reverse(o.age));
        out
    }

    /// The client is gone: close every idle connection and stop the reaper.
    /// Connections still in use are closed when they come back.
    pub fn shutdown(&self) {
        let doomed: Doomed = {
            let mut st = self.shared.lock();
            st.closed = true;
            st.idle_total = 0;
            let mut doomed = Vec::new();
            for host in st.hosts.values_mut() {
                while let Some(lease) = host.idle.pop_front() {
                    host.record_close(CloseReason::ClientDropped);
                    doomed.push(lease.disarm());
                }
                // Shared connections close now if unused, else as their
                // last stream ends.
                let mut i = 0;
                while i < host.h2.len() {
                    host.h2[i].closing.get_or_insert(CloseReason::ClientDropped);
                    if host.h2[i].streams == 0 {
                        let e = host.h2.remove(i);
                        host.record_close(CloseReason::ClientDropped);
                        e.control.close.notify_one();
                    } else {
                        i += 1;
                    }
                }
            }
            st.hosts.settle_all();
            doomed
        };
        self.shared.reaper_wake.notify_one();
        drop(doomed);
    }
}

impl Shared {
    /// Happy Eyeballs attempts beaten by another address: sockets opened
    /// and closed unused, counted in the same section so that
    /// `created - closed = open` holds in every snapshot.
    fn lost_race(&self, route: &Route, n: u32) {
        let mut st = self.lock();
        if let Some(host) = st.hosts.get_mut(route) {
            for _ in 0..n {
                host.stats.created += 1;
                host.record_close(CloseReason::LostRace);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not stop connections from being accounted.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stats(&self) -> PoolStats {
        Self::snapshot(&self.lock())
    }

    fn snapshot(st: &State) -> PoolStats {
        st.hosts.snapshot()
    }

    /// The rows of a metrics scrape: named hosts and "other", whose
    /// counters never go down from one scrape to the next; `None` once the
    /// client is gone.
    pub(crate) fn series_while_open(&self) -> Option<Vec<(String, HostStats)>> {
        let mut guard = self.lock();
        let st = &mut *guard;
        (!st.closed).then(|| st.series.rows(&st.hosts))
    }

    fn try_checkout(self: &Arc<Self>, route: &Route, site: Site) -> Got {
        let cfg = &self.config;
        let mut doomed = Doomed::new();
        let got = {
            let mut guard = self.lock();
            let st = &mut *guard;
            let now = Instant::now();
            let host = st.hosts.entry(route);
            host.last_used = now;
            let got = if let Some(stream) = self.take_stream(host, route, site, now) {
                Got::Ready(Checkout::Stream(stream))
            } else if let Some(mut lease) =
                Self::take_idle(cfg, host, &mut st.idle_total, &mut doomed, now)
            {
                lease.slot.track = Some(host.outstanding.track(site, now));
                Got::Ready(Checkout::Reused(lease))
            } else if self.may_dial(host, route) {
                Got::Ready(Checkout::Dial(self.new_dial(host, route, site, now)))
            } else {
                let (tx, rx) = oneshot::channel();
                // Counted in the host's waiters: it stays live until served or gone.
                let id = st.next_waiter;
                st.next_waiter += 1;
                host.waiters.push_back(Waiter {
                    id,
                    tx,
                    site,
                    since: now,
                });
                return Got::Wait(Wait {
                    rx,
                    id,
                    route: route.clone(),
                    shared: self.clone(),
                });
            };
            host.stats.pool_wait.record(Duration::ZERO);
            self.ensure_leak_scanner(&mut st.leak_scanner);
            got
        };
        drop(doomed);
        got
    }

    /// Pops the most recent idle connection that is still fit, closing
    /// expired or server-closed ones on the way.
    fn take_idle(
        cfg: &Config,
        host: &mut Host,
        idle_total: &mut usize,
        doomed: &mut Doomed,
        now: Instant,
    ) -> Option<Lease> {
        while let Some(mut lease) = host.idle.pop_back() {
            *idle_total -= 1;
            let verdict = expiry(cfg, &lease, now).or_else(|| match lease.conn.idle_check() {
                Ok(()) => None,
                Err(Unusable::Closed | Unusable::Unsolicited) => Some(CloseReason::ServerClosed),
            });
            if let Some(reason) = verdict {
                host.record_close(reason);
                doomed.push(lease.disarm());
                continue;
            }
            lease.slot.state = SlotState::Busy;
            lease.idle_for = Some(now.duration_since(lease.idle_since));
            lease.uses += 1;
            host.busy += 1;
            host.stats.reused += 1;
            return Some(lease);
        }
        None
    }

    /// Takes a dial slot for `site`: counted as created from here on.
    fn new_dial(
        self: &Arc<Self>,
        host: &mut Host,
        route: &Route,
        site: Site,
        now: Instant,
    ) -> Slot {
        host.dialing += 1;
        host.stats.created += 1;
        let mut slot = Slot::new(self.clone(), route.clone(), SlotState::Dialing);
        slot.track = Some(host.outstanding.track(site, now));
        slot
    }

    /// A lease comes back: hand it to the oldest waiter, else keep it idle
    /// within the caps, else close it.
    fn put(self: &Arc<Self>, mut lease: Lease) {
        let cfg = &self.config;
        let mut doomed = Doomed::new();
        {
            // A body that came whole with its head went idle when it
            // arrived: no second clock read for the usual small response.
            let arrived = lease.conn.take_arrived();
            let now = arrived.unwrap_or_else(Instant::now);
            let mut guard = self.lock();
            let st = &mut *guard;
            let route = lease.route().clone();
            let host = st
                .hosts
                .get_mut(&route)
                .expect("a host with a counted connection is live");
            host.busy -= 1;
            host.last_used = now;
            host.finish_claim(&mut lease.slot, &route);
            let mut reason = if st.closed {
                Some(CloseReason::ClientDropped)
            } else if cfg.disable_keep_alives {
                Some(CloseReason::KeepAlivesDisabled)
            } else {
                expiry(cfg, &lease, now)
            };
            if reason.is_none() {
                // Direct hand-off: the oldest live waiter gets it, no idle hop.
                while let Some(w) = host.waiters.pop_front() {
                    if w.tx.is_closed() {
                        continue;
                    }
                    // The waiter's wait and its hold start now, not when
                    // the last body arrived.
                    let now = if arrived.is_some() {
                        Instant::now()
                    } else {
                        now
                    };
                    let track = host.outstanding.track(w.site, now);
                    lease.slot.track = Some(track);
                    lease.idle_for = None;
                    lease.uses += 1;
                    match w.tx.send(Checkout::Reused(lease)) {
                        Ok(()) => {
                            host.busy += 1;
                            host.stats.reused += 1;
                            host.stats.pool_wait.record(now.duration_since(w.since));
                            return;
                        }
                        Err(Checkout::Reused(back)) => {
                            lease = back;
                            lease.uses -= 1;
                            lease.slot.track = None;
                            host.outstanding.untrack(track, &route);
                        }
                        Err(_) => unreachable!("we sent a lease"),
                    }
                }
                if host.idle.len() < cfg.idle_per_host() {
                    lease.slot.state = SlotState::Idle;
                    lease.idle_since = now;
                    let created = lease.created;
                    host.idle.push_back(lease);
                    st.idle_total += 1;
                    if cfg.max_idle_conns > 0 && st.idle_total > cfg.max_idle_conns {
                        self.evict_lru(st, &mut doomed);
                    }
                    self.ensure_reaper(st, now, created);
                    drop(guard);
                    drop(doomed);
                    return;
                }
                reason = Some(CloseReason::PoolFull);
            }
            host.record_close(reason.expect("set above"));
            doomed.push(lease.disarm());
            self.serve_waiters(host, &route);
            st.hosts.settle(&route);
        }
        drop(doomed);
    }

    /// Closes the least recently used host's oldest idle connection. A
    /// scan of the live hosts; only hosts with a connection are live.
    fn evict_lru(self: &Arc<Self>, st: &mut State, doomed: &mut Doomed) {
        let victim = st
            .hosts
            .iter()
            .filter(|(_, h)| !h.idle.is_empty())
            .min_by_key(|(_, h)| h.last_used)
            .map(|(k, _)| k.clone());
        if let Some(route) = victim {
            let host = st.hosts.get_mut(&route).expect("just found");
            let lease = host.idle.pop_front().expect("has idle");
            st.idle_total -= 1;
            host.record_close(CloseReason::PoolFull);
            doomed.push(lease.disarm());
            self.serve_waiters(host, &route);
            st.hosts.settle(&route);
        }
    }

    /// Something freed up: waiters get streams on shared connections, then
    /// the right to dial while there is room.
    fn serve_waiters(self: &Arc<Self>, host: &mut Host, route: &Route) {
        let now = Instant::now();
        while let Some(front) = host.waiters.front() {
            if front.tx.is_closed() {
                host.waiters.pop_front();
                continue;
            }
            if streams::serve_with_stream(self, host, route, now) {
                continue;
            }
            if !self.may_dial(host, route) {
                break;
            }
            let w = host.waiters.pop_front().expect("not empty");
            let slot = self.new_dial(host, route, w.site, now);
            match w.tx.send(Checkout::Dial(slot)) {
                Ok(()) => host.stats.pool_wait.record(now.duration_since(w.since)),
                Err(Checkout::Dial(mut slot)) => {
                    // Gone between the check and the send: undo, quietly.
                    slot.disarm();
                    host.dialing -= 1;
                    host.stats.created -= 1;
                    host.finish_claim(&mut slot, route);
                }
                Err(_) => unreachable!("we sent a slot"),
            }
        }
    }

    /// Room under the cap, and no dial in flight that may bring an HTTP/2
    /// connection able to carry this request too: never two dials racing
    /// for a host's first (or next) shared connection.
    fn may_dial(&self, host: &Host, route: &Route) -> bool {
        if !host.has_room(self.config.max_conns_per_host) {
            return false;
        }
        let may_be_h2 = match host.proto {
            Proto::H1 => false,
            Proto::H2 => true,
            Proto::Unknown if route.is_tls() => !self.config.disable_http2,
            Proto::Unknown => self.config.http2_prior_knowledge,
        };
        !(may_be_h2 && host.dialing > 0)
    }

    /// A slot's `Drop`: its count goes, the reason is recorded, and a waiter
    /// may dial in its place.
    fn release(self: &Arc<Self>, slot: &mut Slot) {
        let mut st = self.lock();
        let host = st
            .hosts
            .get_mut(&slot.route)
            .expect("a host with a counted slot is live");
        host.leave(slot.state);
        host.record_close(slot.reason);
        host.finish_claim(slot, &slot.route.clone());
        self.serve_waiters(host, &slot.route);
        st.hosts.settle(&slot.route);
    }

    /// A dial finished with HTTP/1.1: the slot moves from dialing to busy.
    /// Waiters held back in case it spoke h2 may now dial.
    fn mark_busy(self: &Arc<Self>, route: &Route, from: SlotState, times: DialTimes) {
        let mut st = self.lock();
        let host = st
            .hosts
            .get_mut(route)
            .expect("a host with a counted slot is live");
        host.leave(from);
        host.busy += 1;
        host.record_dial(times);
        if host.proto != Proto::H1 {
            host.proto = Proto::H1;
            self.serve_waiters(host, route);
        }
    }

    /// Removes a waiter that gave up; false if it had already been served.
    fn forget_waiter(&self, route: &Route, id: u64) -> bool {
        let mut st = self.lock();
        let Some(host) = st.hosts.get_mut(route) else {
            return false;
        };
        // Ids grow with each waiter queued, so the queue is sorted by id:
        // 10,000 waiters giving up at once do not scan it 10,000 times.
        let found = match host.waiters.binary_search_by_key(&id, |w| w.id) {
            Ok(i) => {
                host.waiters.remove(i);
                true
            }
            Err(_) => false,
        };
        st.hosts.settle(route);
        found
    }

    fn pool_state(&self, route: &Route) -> PoolState {
        let st = self.lock();
        let h = st.hosts.get(route);
        PoolState {
            limit: self.config.max_conns_per_host,
            dialing: h.map_or(0, |h| h.dialing),
            busy: h.map_or(0, |h| {
                h.busy + h.h2.iter().filter(|e| e.streams > 0).count()
            }),
            idle: h.map_or(0, |h| h.idle.len()),
            waiting: h.map_or(0, |h| h.waiters.len()),
        }
    }

    /// One pass of the leak scanner; false when it should stop.
    fn scan_leaks(&self, now: Instant, threshold: Duration) -> bool {
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.closed || st.hosts.values().all(|h| h.outstanding.is_empty()) {
            st.leak_scanner = false;
            return false;
        }
        for (route, host) in st.hosts.iter_mut() {
            host.stats.leaks_reported += host.outstanding.scan(now, threshold, route);
        }
        true
    }
}

/// Why an idle or returning connection is too old to reuse, if it is.
fn expiry(cfg: &Config, lease: &Lease, now: Instant) -> Option<CloseReason> {
    if cfg
        .max_conn_lifetime
        .is_some_and(|max| now.duration_since(lease.created) >= max)
    {
        return Some(CloseReason::Lifetime);
    }
    if lease.slot.state == SlotState::Idle
        && cfg
            .idle_conn_timeout
            .is_some_and(|max| now.duration_since(lease.idle_since) >= max)
    {
        return Some(CloseReason::IdleTimeout);
    }
    None
}
