//! The host map. A host is in it while anything of it is left: a
//! connection open or being dialed, an HTTP/2 entry, a request waiting, a
//! claim outstanding (a response holding a stream). When the last of
//! those goes, the host leaves, as Go's `Transport` deletes a host's map
//! entries when they empty: a crawler that sends one request to each of
//! thousands of hosts keeps nothing for the ones it is done with.
//!
//! Its counts are not lost: the last hosts to leave stay in `recent` with
//! their counts (a host that comes back carries on from them), and older
//! ones fold into `forgotten`, so totals stay exact for ever in bounded
//! memory.

use std::collections::{HashMap, VecDeque};

use super::host::Host;
use crate::{
    route::Route,
    stats::{HostStats, PoolStats, RECENT_HOSTS},
};

/// A capacity below which the map is never shrunk: a few hosts coming and
/// going should not rehash the map each time.
const MIN_CAPACITY: usize = 64;

#[derive(Debug, Default)]
pub(super) struct Hosts {
    /// foldhash: SipHash's flood resistance buys nothing for our own keys.
    /// Boxed: a host is about a kilobyte, and a map sized for a crowd
    /// keeps room for a crowd of them until it shrinks.
    live: HashMap<Route, Box<Host>, foldhash::fast::RandomState>,
    /// Hosts that left lately, oldest first.
    recent: VecDeque<Retired>,
    /// The counts of every host that left and was forgotten.
    forgotten: HostStats,
    next_lineage: u64,
}

/// A host that left, with its counts.
#[derive(Debug)]
pub(super) struct Retired {
    pub route: Route,
    /// Which history the counts belong to (see `Host::lineage`).
    pub lineage: u64,
    pub stats: HostStats,
}

impl Hosts {
    /// The live host for `route`: it is there, or it comes back from
    /// `recent` with its counts, or it starts afresh.
    pub fn entry(&mut self, route: &Route) -> &mut Host {
        if !self.live.contains_key(route) {
            let host = match self.recent.iter().position(|r| r.route == *route) {
                Some(i) => {
                    let r = self.recent.remove(i).expect("index in range");
                    Host::new(r.lineage, r.stats)
                }
                None => {
                    self.next_lineage += 1;
                    Host::new(self.next_lineage, HostStats::default())
                }
            };
            self.live.insert(route.clone(), Box::new(host));
        }
        self.live.get_mut(route).expect("just inserted")
    }

    pub fn get(&self, route: &Route) -> Option<&Host> {
        self.live.get(route).map(|h| &**h)
    }

    pub fn get_mut(&mut self, route: &Route) -> Option<&mut Host> {
        self.live.get_mut(route).map(|h| &mut **h)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Route, &Host)> {
        self.live.iter().map(|(r, h)| (r, &**h))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Route, &mut Host)> {
        self.live.iter_mut().map(|(r, h)| (r, &mut **h))
    }

    pub fn values(&self) -> impl Iterator<Item = &Host> {
        self.live.values().map(|h| &**h)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Host> {
        self.live.values_mut().map(|h| &mut **h)
    }

    /// The counters to add a late event to (a redirect or a retry noted
    /// after its connection went): the host's, live or recent, else the
    /// forgotten ones'. Either way the total counts it.
    pub fn counters(&mut self, route: &Route) -> &mut HostStats {
        if let Some(host) = self.live.get_mut(route) {
            return &mut host.stats;
        }
        match self.recent.iter_mut().find(|r| r.route == *route) {
            Some(r) => &mut r.stats,
            None => &mut self.forgotten,
        }
    }

    /// Takes `route`'s host out if nothing of it is left; else lets go of
    /// memory it kept for a crowd that has gone.
    pub fn settle(&mut self, route: &Route) {
        let Some(host) = self.live.get_mut(route) else {
            return;
        };
        if !host.is_unused() {
            host.tidy();
            return;
        }
        let (route, host) = self.live.remove_entry(route).expect("just found");
        self.retire(route, host);
        self.shrink();
    }

    /// `settle` for every host: the reaper's pass and shutdown's.
    pub fn settle_all(&mut self) {
        let unused: Vec<Route> = self
            .live
            .iter()
            .filter(|(_, h)| h.is_unused())
            .map(|(r, _)| r.clone())
            .collect();
        for route in unused {
            let (route, host) = self.live.remove_entry(&route).expect("just found");
            self.retire(route, host);
        }
        self.shrink();
    }

    fn retire(&mut self, route: Route, host: Box<Host>) {
        if self.recent.len() == RECENT_HOSTS {
            let oldest = self.recent.pop_front().expect("full");
            self.forgotten.merge(&oldest.stats);
        }
        self.recent.push_back(Retired {
            route,
            lineage: host.lineage,
            stats: host.stats,
        });
    }

    /// A map that held a crowd keeps its capacity; give it back once the
    /// crowd is mostly gone (at a quarter full, to half: amortised O(1)).
    fn shrink(&mut self) {
        let len = self.live.len();
        if self.live.capacity() > MIN_CAPACITY && len * 4 < self.live.capacity() {
            self.live.shrink_to((len * 2).max(MIN_CAPACITY));
        }
    }

    /// What `stats()` shows.
    pub fn snapshot(&self) -> PoolStats {
        PoolStats::new(
            self.live
                .iter()
                .map(|(k, h)| (k.to_string(), h.snapshot()))
                .collect(),
            self.recent
                .iter()
                .map(|r| (r.route.to_string(), r.stats.clone()))
                .collect(),
            &self.forgotten,
        )
    }

    /// Every host with a history, live or recent: its key, its lineage,
    /// its stats.
    pub fn histories(&self) -> impl Iterator<Item = (&Route, u64, HostStats)> {
        let live = self.live.iter().map(|(k, h)| (k, h.lineage, h.snapshot()));
        let recent = self
            .recent
            .iter()
            .map(|r| (&r.route, r.lineage, r.stats.clone()));
        live.chain(recent)
    }
}
