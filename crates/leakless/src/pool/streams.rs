//! Streams on shared HTTP/2 connections. The pool keeps one entry per
//! connection (`host::H2Entry`, one slot toward `max_conns_per_host`),
//! shared by streams up to the server's `MAX_CONCURRENT_STREAMS`. Here: the
//! entry's registration and the streams taken on it. A [`StreamGuard`] is a
//! stream's claim; its drop gives the stream back, and the last stream of a
//! closing connection takes the entry with it. When the connection's driver
//! ends (the peer closed, errored, or stopped answering pings), the entry
//! leaves the pool, so a dead connection is never handed out again.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use h2::client::SendRequest;
use tokio::time::Instant;

use super::{
    Checkout, Shared, Site,
    host::{Control, H2Entry, Host, Proto},
    lease::Slot,
};
use crate::{
    attempt::Fate,
    config::TlsInfo,
    connect::{DialTimes, Ends},
    route::Route,
    stats::CloseReason,
};

/// A stream on a shared connection, ready to carry one request.
#[derive(Debug)]
pub(crate) struct H2Stream {
    pub send: SendRequest<Bytes>,
    pub guard: StreamGuard,
    /// The first stream of a connection just dialed.
    pub fresh: bool,
    /// How long the connection had no stream before this one.
    pub idle_for: Option<Duration>,
    /// The connection's socket's ends.
    pub ends: Arc<Ends>,
}

/// A stream's claim on its connection's entry.
#[derive(Debug)]
pub(crate) struct StreamGuard {
    shared: Arc<Shared>,
    route: Route,
    conn: u64,
    /// The request's entry in its host's registry of outstanding claims.
    track: Option<usize>,
    /// The server's time to answer, counted when the stream ends.
    pub(crate) ttfb: Option<Duration>,
    /// What the connection's TLS negotiated, when `tls_info` asks.
    pub(crate) tls_info: Option<TlsInfo>,
    armed: bool,
}

impl StreamGuard {
    /// Applies what a failed request on this stream means for its connection.
    pub fn suffer(&self, fate: Fate) {
        match fate {
            Fate::Keep => {}
            Fate::StopNewStreams => self.mark_closing(CloseReason::ServerClosed),
            // A shared connection is not closed under its other streams.
            Fate::Close => self.mark_closing(CloseReason::Error),
            Fate::Ping => self.check(),
        }
    }

    /// Stops new streams on this connection (it said GOAWAY or failed).
    fn mark_closing(&self, reason: CloseReason) {
        let mut st = self.shared.lock();
        if let Some(e) = st
            .hosts
            .get_mut(&self.route)
            .and_then(|h| h.h2.iter_mut().find(|e| e.id == self.conn))
        {
            e.closing.get_or_insert(reason);
        }
    }

    /// Asks the driver to ping now.
    pub fn check(&self) {
        let st = self.shared.lock();
        if let Some(e) = st
            .hosts
            .get(&self.route)
            .and_then(|h| h.h2.iter().find(|e| e.id == self.conn))
        {
            e.control.check.notify_one();
        }
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        if self.armed {
            self.shared
                .stream_done(&self.route, self.conn, self.track.take(), self.ttfb.take());
        }
    }
}

impl Shared {
    /// Takes a stream on the fullest connection that still has room:
    /// packing streams lets spare connections go idle and expire.
    pub(super) fn take_stream(
        self: &Arc<Self>,
        host: &mut Host,
        route: &Route,
        site: Site,
        now: Instant,
    ) -> Option<Box<H2Stream>> {
        if let Some(max) = self.config.max_conn_lifetime {
            for e in host
                .h2
                .iter_mut()
                .filter(|e| now.duration_since(e.created) >= max)
            {
                e.closing.get_or_insert(CloseReason::Lifetime);
            }
        }
        let entry = host
            .h2
            .iter_mut()
            .filter(|e| e.has_room())
            .max_by_key(|e| e.streams)?;
        let idle_for = (entry.streams == 0).then(|| now.duration_since(entry.idle_since));
        entry.streams += 1;
        let (conn, send, ends) = (entry.id, entry.send.clone(), entry.ends.clone());
        let tls_info = entry.tls_info.clone();
        host.stats.reused += 1;
        let track = Some(host.outstanding.track(site, now));
        let guard = StreamGuard {
            shared: self.clone(),
            route: route.clone(),
            conn,
            track,
            ttfb: None,
            tls_info,
            armed: true,
        };
        Some(Box::new(H2Stream {
            send,
            guard,
            fresh: false,
            idle_for,
            ends,
        }))
    }

    /// Undoes `take_stream` for a waiter that was gone.
    pub(super) fn untake_stream(host: &mut Host, route: &Route, mut stream: H2Stream) {
        stream.guard.armed = false;
        if let Some(e) = host.h2.iter_mut().find(|e| e.id == stream.guard.conn) {
            e.streams -= 1;
        }
        if let Some(track) = stream.guard.track.take() {
            host.outstanding.untrack(track, route);
        }
        host.stats.reused -= 1;
    }

    /// A dial came back speaking h2: the slot becomes a pool entry, the
    /// dialer gets the first stream and waiters the next ones.
    pub(super) fn add_h2(
        self: &Arc<Self>,
        mut slot: Slot,
        send: SendRequest<Bytes>,
        times: DialTimes,
        tls_info: Option<TlsInfo>,
        ends: Ends,
    ) -> (Box<H2Stream>, u64, Arc<Control>) {
        let ends = Arc::new(ends);
        let route = slot.route.clone();
        let control = Arc::new(Control::default());
        let mut guard = self.lock();
        let st = &mut *guard;
        let id = st.next_conn;
        st.next_conn += 1;
        let host = st
            .hosts
            .get_mut(&route)
            .expect("a host with a counted slot is live");
        host.leave(slot.state);
        host.record_dial(times);
        slot.disarm();
        host.proto = Proto::H2;
        let now = Instant::now();
        host.h2.push(H2Entry {
            id,
            send: send.clone(),
            streams: 1,
            closing: None,
            created: now,
            idle_since: now,
            control: control.clone(),
            tls_info: tls_info.clone(),
            ends: ends.clone(),
        });
        // The dialer's claim moves from its slot to its stream.
        let guard = StreamGuard {
            shared: self.clone(),
            route: route.clone(),
            conn: id,
            track: slot.track.take(),
            ttfb: None,
            tls_info,
            armed: true,
        };
        let stream = Box::new(H2Stream {
            send,
            guard,
            fresh: true,
            idle_for: None,
            ends,
        });
        self.serve_waiters(host, &route);
        (stream, id, control)
    }

    /// A stream ended. The last stream of a closing connection closes it.
    fn stream_done(
        self: &Arc<Self>,
        route: &Route,
        conn: u64,
        track: Option<usize>,
        ttfb: Option<Duration>,
    ) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(host) = st.hosts.get_mut(route) else {
            return;
        };
        if let Some(track) = track {
            host.outstanding.untrack(track, route);
        }
        if let Some(ttfb) = ttfb {
            host.stats.time_to_first_byte.record(ttfb);
        }
        // The entry is gone already if its driver ended under this stream:
        // then only the claim was left, and the host may leave with it.
        let Some(i) = host.h2.iter().position(|e| e.id == conn) else {
            st.hosts.settle(route);
            return;
        };
        // One lookup of the host on the usual path (a stream among others
        // ends): `settle` and the reaper, which need the whole state, come
        // after everything done through `host`, and `settle`'s own lookup
        // only when the host may leave.
        let entry = &mut host.h2[i];
        entry.streams -= 1;
        let mut idle = None;
        if entry.streams == 0 {
            entry.idle_since = Instant::now();
            if let Some(reason) = entry.closing {
                let entry = host.h2.remove(i);
                host.record_close(reason);
                entry.control.close.notify_one();
            } else {
                idle = Some((entry.idle_since, entry.created));
            }
        }
        self.serve_waiters(host, route);
        let unused = host.is_unused();
        if !unused {
            host.tidy();
        }
        if let Some((idle_since, created)) = idle {
            self.ensure_reaper(st, idle_since, created);
        }
        if unused {
            st.hosts.settle(route);
        }
    }

    /// The driver task ended: the connection is gone.
    pub(super) fn h2_gone(self: &Arc<Self>, route: &Route, conn: u64, reason: CloseReason) {
        let mut st = self.lock();
        let Some(host) = st.hosts.get_mut(route) else {
            return;
        };
        if let Some(i) = host.h2.iter().position(|e| e.id == conn) {
            let entry = host.h2.remove(i);
            host.record_close(entry.closing.unwrap_or(reason));
            self.serve_waiters(host, route);
            st.hosts.settle(route);
        }
    }
}

/// Hands out a stream to the oldest waiter; tells the caller whether one was served.
pub(super) fn serve_with_stream(
    shared: &Arc<Shared>,
    host: &mut Host,
    route: &Route,
    now: Instant,
) -> bool {
    let Some(front) = host.waiters.front() else {
        return false;
    };
    let site = front.site;
    let Some(stream) = shared.take_stream(host, route, site, now) else {
        return false;
    };
    let w = host.waiters.pop_front().expect("not empty");
    match w.tx.send(Checkout::Stream(stream)) {
        Ok(()) => host.stats.pool_wait.record(now.duration_since(w.since)),
        Err(Checkout::Stream(stream)) => Shared::untake_stream(host, route, *stream),
        Err(_) => unreachable!("we sent a stream"),
    }
    true
}
