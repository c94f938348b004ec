//! The accounting guards. A [`Slot`] is one counted place in a host's
//! `max_conns_per_host`; a [`Lease`] is a slot holding an open connection.
//! Their `Drop` is the one path by which a count goes down, so whatever
//! happens (error, cancellation, a forgotten body) the counts stay exact.

use std::{sync::Arc, time::Duration};

use tokio::time::Instant;

use super::Shared;
use crate::{
    config::{Config, TlsInfo},
    connect::DialTimes,
    http1::H1Conn,
    route::Route,
    stats::CloseReason,
};

/// Where a slot's connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SlotState {
    Dialing,
    Busy,
    Idle,
}

/// One counted place for a connection to a host.
#[derive(Debug)]
pub(crate) struct Slot {
    pub(super) shared: Arc<Shared>,
    pub(super) route: Route,
    pub(super) state: SlotState,
    pub(super) reason: CloseReason,
    /// The request's entry in its host's registry of outstanding claims.
    pub(super) track: Option<usize>,
    /// The current request's time to first byte, counted when it lets go.
    pub(super) ttfb: Option<Duration>,
    armed: bool,
}

impl Slot {
    /// Only the pool makes slots, under its lock, with the count already taken.
    pub(super) fn new(shared: Arc<Shared>, route: Route, state: SlotState) -> Slot {
        Slot {
            shared,
            route,
            state,
            reason: CloseReason::Canceled,
            track: None,
            ttfb: None,
            armed: true,
        }
    }

    /// The pool already gave the count back under its lock.
    pub(super) fn disarm(&mut self) {
        self.armed = false;
    }

    /// Sets what `Drop` will record as the reason.
    pub(super) fn fail(&mut self, reason: CloseReason) {
        self.reason = reason;
    }

    pub(crate) fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The dial succeeded: the slot now holds a busy connection.
    pub(super) fn connected(mut self, conn: H1Conn, times: DialTimes) -> Lease {
        self.shared.mark_busy(&self.route, self.state, times);
        self.state = SlotState::Busy;
        let now = Instant::now();
        Lease(Box::new(Held {
            conn,
            slot: self,
            created: now,
            idle_since: now,
            idle_for: None,
            uses: 1,
            tls_info: None,
        }))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.armed {
            let shared = self.shared.clone();
            shared.release(self);
        }
    }
}

/// A slot with an open connection: exclusively owned by whoever holds it.
/// It goes back by [`Lease::release`] and is closed by being dropped.
///
/// Boxed once, when the connection opens, and the same box goes from the
/// idle list to each request and back: a request moves its lease (inside
/// its response, through every layer) a dozen times, a pointer each time.
#[derive(Debug)]
pub(crate) struct Lease(Box<Held>);

/// What a lease holds.
#[derive(Debug)]
pub(crate) struct Held {
    pub(crate) conn: H1Conn,
    pub(super) slot: Slot,
    pub(super) created: Instant,
    pub(super) idle_since: Instant,
    /// How long it sat idle before this request took it (for observers).
    pub(crate) idle_for: Option<Duration>,
    /// Requests this connection has carried, the current one included.
    pub(crate) uses: u32,
    /// What TLS negotiated, for each response's extensions (`tls_info`).
    pub(crate) tls_info: Option<TlsInfo>,
}

impl Lease {
    /// Hands the connection back to the pool for reuse.
    pub(crate) fn release(self) {
        let shared = self.slot.shared.clone();
        shared.put(self);
    }

    /// Closes the connection, recording why.
    pub(crate) fn close(mut self, reason: CloseReason) {
        self.slot.fail(reason);
    }

    /// Why a connection the response ruled out for reuse is closed: our
    /// own `disable_keep_alives` asked for that, else the server did.
    pub(crate) fn not_reusable(self) -> CloseReason {
        let reason = if self.config().disable_keep_alives {
            CloseReason::KeepAlivesDisabled
        } else {
            CloseReason::NotReusable
        };
        self.close(reason);
        reason
    }

    /// The server answered this long after the request was written.
    pub(crate) fn set_ttfb(&mut self, d: Duration) {
        self.slot.ttfb = Some(d);
    }

    pub(crate) fn route(&self) -> &Route {
        &self.slot.route
    }

    pub(crate) fn config(&self) -> &Config {
        self.slot.config()
    }

    /// Gives up the count under the pool's lock; the caller drops the socket
    /// after unlocking.
    pub(super) fn disarm(self) -> H1Conn {
        let mut held = *self.0;
        held.slot.disarm();
        held.conn
    }
}

impl std::ops::Deref for Lease {
    type Target = Held;

    fn deref(&self) -> &Held {
        &self.0
    }
}

impl std::ops::DerefMut for Lease {
    fn deref_mut(&mut self) -> &mut Held {
        &mut self.0
    }
}
