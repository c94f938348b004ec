//! Outstanding leases: who holds a connection, since when, and which line
//! of the caller's code sent the request (`#[track_caller]`, so no
//! backtrace is taken on the hot path). The registry lives per host under
//! the pool's lock; a scanner task, running only while `leak_threshold` is
//! set and something is outstanding, reports leases held too long once at
//! WARN, and again at INFO when they come back (HikariCP's leak detection).

use std::{panic::Location, sync::Arc, time::Duration};

use tokio::time::Instant;

use super::Shared;
use crate::route::Route;

/// A response (or lease) that still holds a connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Outstanding {
    /// `host:port` of the connection.
    pub host: String,
    /// How long it has been held.
    pub age: Duration,
    /// Where the request was sent from.
    pub call_site: &'static Location<'static>,
    /// Whether it was already reported as a leak.
    pub reported: bool,
}

#[derive(Debug)]
struct Entry {
    site: &'static Location<'static>,
    since: Instant,
    reported: bool,
}

/// A slab of live claims on one host's connections.
#[derive(Debug, Default)]
pub(super) struct Registry {
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    live: usize,
}

impl Registry {
    pub fn track(&mut self, site: &'static Location<'static>, now: Instant) -> usize {
        let entry = Some(Entry {
            site,
            since: now,
            reported: false,
        });
        self.live += 1;
        match self.free.pop() {
            Some(i) => {
                self.entries[i] = entry;
                i
            }
            None => {
                self.entries.push(entry);
                self.entries.len() - 1
            }
        }
    }

    /// Forgets a claim; a reported one says it came back.
    pub fn untrack(&mut self, i: usize, route: &Route) {
        let Some(entry) = self.entries.get_mut(i).and_then(Option::take) else {
            return;
        };
        self.free.push(i);
        self.live -= 1;
        if entry.reported {
            tracing::info!(
                host = %route,
                call_site = %entry.site,
                "leakless: response reported as leaked was released after {:.1?}",
                entry.since.elapsed()
            );
        }
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Once no claim is live, frees a slab grown past `above` entries.
    pub fn tidy(&mut self, above: usize) {
        if self.live == 0 && self.entries.capacity() > above {
            *self = Registry::default();
        }
    }

    /// Reports claims older than `threshold` not yet reported; returns how many.
    pub fn scan(&mut self, now: Instant, threshold: Duration, route: &Route) -> u64 {
        let mut n = 0;
        for e in self.entries.iter_mut().flatten() {
            let age = now.duration_since(e.since);
            if !e.reported && age >= threshold {
                e.reported = true;
                n += 1;
                tracing::warn!(
                    host = %route,
                    call_site = %e.site,
                    age = ?age,
                    "leakless: a response from {} has held its connection for {age:.1?} (leak_threshold {threshold:?}); \
                     read its body to the end or drop it",
                    e.site
                );
            }
        }
        n
    }

    pub fn list(&self, route: &Route, now: Instant, out: &mut Vec<Outstanding>) {
        for e in self.entries.iter().flatten() {
            out.push(Outstanding {
                host: route.to_string(),
                age: now.duration_since(e.since),
                call_site: e.site,
                reported: e.reported,
            });
        }
    }
}

impl Shared {
    /// Starts the scanner if a threshold is set and none runs.
    pub(super) fn ensure_leak_scanner(self: &Arc<Self>, running: &mut bool) {
        if *running || self.config.leak_threshold.is_none() {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            *running = true;
            rt.spawn(scan(self.clone()));
        }
    }
}

async fn scan(shared: Arc<Shared>) {
    let threshold = shared
        .config
        .leak_threshold
        .expect("only started with a threshold");
    // Often enough that a report is at most a quarter late.
    let period = (threshold / 4).clamp(Duration::from_millis(5), Duration::from_secs(1));
    loop {
        tokio::time::sleep(period).await;
        if !shared.scan_leaks(Instant::now(), threshold) {
            return;
        }
    }
}
