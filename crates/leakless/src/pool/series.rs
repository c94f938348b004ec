//! The hosts a metrics exposition names. Prometheus counters must never go
//! down, while the pool's hosts come and go (a host leaves when its last
//! connection does, and may come back from zero). So the first
//! `MAX_NAMED` hosts a scrape sees get their own `host` label for the
//! pool's life; every other host is summed under `host="other"`, computed
//! as the total minus the named ones, so the series add up to the total.
//!
//! - A named host's series carries on across its departures: while the
//!   pool forgets it, the series stays at what it last showed (gauges at
//!   zero); if it comes back with a fresh history, that history is added
//!   to what was shown before.
//! - `other` only gains: a host is named only while there is room, and
//!   room never comes back, so no host ever moves from `other` to a name;
//!   what a named host did after its last scrape and before the pool
//!   forgot it lands in `other` (its total is exact, its split approximate).
//!
//! The state lives in the pool, not in a collector, so every registry and
//! every `prometheus_text()` call sees the same series.

use super::hosts::Hosts;
use crate::stats::HostStats;

/// Hosts with a label of their own, at most; the series count stays
/// bounded whatever a program talks to.
const MAX_NAMED: usize = 50;

#[derive(Debug, Default)]
pub(super) struct Series {
    named: Vec<Named>,
}

#[derive(Debug)]
struct Named {
    key: String,
    /// The history `last` belongs to.
    lineage: u64,
    /// Counters shown for the host's earlier histories.
    base: HostStats,
    /// The current history's stats as last seen.
    last: HostStats,
    /// The host was found at the last scrape (its gauges are live).
    present: bool,
}

impl Named {
    fn shown(&self) -> HostStats {
        let mut s = self.base.clone();
        if self.present {
            s.merge(&self.last);
        } else {
            s.merge(&self.last.counters());
        }
        s
    }
}

impl Series {
    /// One scrape's rows: each named host, then `other` (zeros until some
    /// host's counts are not under a name).
    pub fn rows(&mut self, hosts: &Hosts) -> Vec<(String, HostStats)> {
        let total = hosts.snapshot().total;
        let mut seen: Vec<(String, u64, HostStats)> = hosts
            .histories()
            .map(|(route, lineage, stats)| (route.to_string(), lineage, stats))
            .collect();
        for n in &mut self.named {
            n.present = false;
        }
        // Named hosts follow their histories.
        seen.retain(|(key, lineage, stats)| {
            let Some(n) = self.named.iter_mut().find(|n| n.key == *key) else {
                return true;
            };
            if n.lineage != *lineage {
                n.base.merge(&n.last.counters());
                n.lineage = *lineage;
            }
            n.last = stats.clone();
            n.present = true;
            false
        });
        // Room left: the busiest newcomers get names.
        seen.sort_by_key(|(_, _, s)| std::cmp::Reverse(s.created));
        let room = MAX_NAMED - self.named.len();
        for (key, lineage, stats) in seen.into_iter().take(room) {
            self.named.push(Named {
                key,
                lineage,
                base: HostStats::default(),
                last: stats,
                present: true,
            });
        }
        let mut rows: Vec<(String, HostStats)> = self
            .named
            .iter()
            .map(|n| (n.key.clone(), n.shown()))
            .collect();
        // Always there, so it never appears mid-way.
        let mut other = total;
        for (_, shown) in &rows {
            other.subtract(shown);
        }
        rows.push(("other".to_owned(), other));
        rows
    }
}
