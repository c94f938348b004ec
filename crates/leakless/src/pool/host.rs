//! One host's share of the pool: counts, the idle list, the waiters.

use std::collections::VecDeque;

use tokio::time::Instant;

use super::{DialTimes, HostKey, h2::H2Entry, waiter::Waiter};
use crate::{
    leak::Registry,
    lease::{Lease, Slot, SlotState},
    stats::{CloseReason, HostStats},
};

/// What a host was found to speak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Proto {
    Unknown,
    H1,
    H2,
}

#[derive(Debug)]
pub(super) struct Host {
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
    pub fn new() -> Host {
        Host {
            proto: Proto::Unknown,
            dialing: 0,
            busy: 0,
            idle: VecDeque::new(),
            waiters: VecDeque::new(),
            h2: Vec::new(),
            outstanding: Registry::default(),
            last_used: Instant::now(),
            stats: HostStats::default(),
        }
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
    pub fn finish_claim(&mut self, slot: &mut Slot, key: &HostKey) {
        if let Some(track) = slot.track.take() {
            self.outstanding.untrack(track, key);
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
