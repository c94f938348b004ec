//! One host's share of the pool: counts, the idle list, the waiters.

use std::collections::VecDeque;

use tokio::time::Instant;

use super::waiter::Waiter;
use crate::{
    lease::{Lease, SlotState},
    stats::{CloseReason, HostStats},
};

#[derive(Debug)]
pub(super) struct Host {
    pub dialing: usize,
    pub busy: usize,
    /// Most recently returned at the back (LIFO reuse), oldest at the front.
    pub idle: VecDeque<Lease>,
    /// Oldest first: served first-come, first-served.
    pub waiters: VecDeque<Waiter>,
    /// When a request last took or returned a connection (for the global LRU).
    pub last_used: Instant,
    pub stats: HostStats,
}

impl Host {
    pub fn new() -> Host {
        Host {
            dialing: 0,
            busy: 0,
            idle: VecDeque::new(),
            waiters: VecDeque::new(),
            last_used: Instant::now(),
            stats: HostStats::default(),
        }
    }

    pub fn open(&self) -> usize {
        self.dialing + self.busy + self.idle.len()
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

    pub fn record_close(&mut self, reason: CloseReason) {
        self.stats.closed += 1;
        self.stats.closed_by.add(reason);
    }

    pub fn snapshot(&self) -> HostStats {
        let mut s = self.stats.clone();
        s.dialing = self.dialing;
        s.busy = self.busy;
        s.idle = self.idle.len();
        s.open = self.open();
        s.waiting = self.waiters.len();
        s
    }
}
