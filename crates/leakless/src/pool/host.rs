//! One host's share of the pool: counts, the idle list, the shared HTTP/2
//! connections, the waiters.

use std::{collections::VecDeque, sync::Arc};

use bytes::Bytes;
use h2::client::SendRequest;
use tokio::{sync::Notify, time::Instant};

use super::{
    leak::Registry,
    lease::{Lease, Slot, SlotState},
    waiter::Waiter,
};
use crate::{
    config::TlsInfo,
    connect::{DialTimes, Ends},
    route::Route,
    stats::{CloseReason, HostStats},
};

/// Room kept for waiters or claims without shrinking it: a host's usual
/// load comes and goes without reallocating.
const TIDY_ABOVE: usize = 64;

/// What a host was found to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Proto {
    Unknown,
    H1,
    H2,
}

#[derive(Debug)]
pub(super) struct Host {
    /// Which history `stats` belongs to: new when a host starts from zero,
    /// kept when it comes back from the recently-left list. Metrics tell a
    /// host that started over from one that carried on by it.
    pub lineage: u64,
    pub proto: Proto,
    pub dialing: usize,
    pub busy: usize,
    /// Most recently returned at the back (LIFO reuse), oldest at the front.
    pub idle: VecDeque<Lease>,
    /// Oldest first: served first-come, first-served.
    pub waiters: VecDeque<Waiter>,
    /// Shared HTTP/2 connections, each one slot.
    pub h2: Vec<H2Entry>,
    /// Who holds this host's connections, since when, from where.
    pub outstanding: Registry,
    /// When a request last took or returned a connection (for the global LRU).
    pub last_used: Instant,
    pub stats: HostStats,
}

impl Host {
    /// A host with no connection yet; `stats` are its counts so far.
    pub fn new(lineage: u64, stats: HostStats) -> Host {
        Host {
            lineage,
            proto: Proto::Unknown,
            dialing: 0,
            busy: 0,
            idle: VecDeque::new(),
            waiters: VecDeque::new(),
            h2: Vec::new(),
            outstanding: Registry::default(),
            last_used: Instant::now(),
            stats,
        }
    }

    /// Nothing of it is left: it may leave the pool. A claim outstanding
    /// (a stream whose connection already went) keeps it, so the claim
    /// comes back to the registry it was taken from.
    pub fn is_unused(&self) -> bool {
        self.open() == 0 && self.waiters.is_empty() && self.outstanding.is_empty()
    }

    /// Gives back memory a crowd of waiters or claims left behind: a host
    /// that once had 10,000 requests waiting should not keep room for them.
    pub fn tidy(&mut self) {
        if self.waiters.is_empty() && self.waiters.capacity() > TIDY_ABOVE {
            self.waiters = VecDeque::new();
        }
        self.outstanding.tidy(TIDY_ABOVE);
    }

    pub fn open(&self) -> usize {
        self.dialing + self.busy + self.idle.len() + self.h2.len()
    }

    pub fn has_room(&self, limit: usize) -> bool {
        limit == 0 || self.open() < limit
    }

    /// Takes the count of a slot in `state` away. Idle slots are counted by
    /// the idle list itself, so their caller has already removed the entry.
    pub fn leave(&mut self, state: SlotState) {
        match state {
            SlotState::Dialing => self.dialing -= 1,
            SlotState::Busy => self.busy -= 1,
            SlotState::Idle => {}
        }
    }

    /// A request is done with the slot: forget its claim, count its
    /// time to first byte.
    pub fn finish_claim(&mut self, slot: &mut Slot, route: &Route) {
        if let Some(track) = slot.track.take() {
            self.outstanding.untrack(track, route);
        }
        if let Some(ttfb) = slot.ttfb.take() {
            self.stats.time_to_first_byte.record(ttfb);
        }
    }

    pub fn record_dial(&mut self, times: DialTimes) {
        self.stats.connect_time.record(times.connect);
        if let Some(tls) = times.tls {
            self.stats.tls_time.record(tls);
        }
    }

    pub fn record_close(&mut self, reason: CloseReason) {
        self.stats.closed += 1;
        self.stats.closed_by.add(reason);
    }

    pub fn snapshot(&self) -> HostStats {
        let mut s = self.stats.clone();
        let h2_busy = self.h2.iter().filter(|e| e.streams > 0).count();
        s.dialing = self.dialing;
        s.busy = self.busy + h2_busy;
        s.idle = self.idle.len() + self.h2.len() - h2_busy;
        s.h2_streams = self.h2.iter().map(|e| e.streams).sum();
        s.open = self.open();
        s.waiting = self.waiters.len();
        s
    }
}

/// A shared HTTP/2 connection as the pool sees it.
#[derive(Debug)]
pub(super) struct H2Entry {
    pub id: u64,
    pub send: SendRequest<Bytes>,
    /// Streams in flight.
    pub streams: usize,
    /// No new streams: GOAWAY, lifetime, or the client is gone.
    pub closing: Option<CloseReason>,
    pub created: Instant,
    pub idle_since: Instant,
    pub control: Arc<Control>,
    /// What TLS negotiated, for each stream's response (`tls_info`).
    pub tls_info: Option<TlsInfo>,
    /// The socket's ends, for responses' `remote_addr` and observers'
    /// `GotConn`; shared, so a stream handle stays small.
    pub ends: Arc<Ends>,
}

impl H2Entry {
    /// Room for one more stream under the server's MAX_CONCURRENT_STREAMS.
    pub fn has_room(&self) -> bool {
        self.closing.is_none() && self.streams < self.send.current_max_send_streams()
    }
}

/// What the pool keeps to steer a connection's driver task.
#[derive(Debug, Default)]
pub(super) struct Control {
    /// The pool dropped the entry: end the connection.
    pub close: Notify,
    /// A request timed out on this connection: ping now to see if it is dead.
    pub check: Notify,
}
