//! The idle reaper: one task per pool, alive only while something is idle.
//! It closes connections past `idle_conn_timeout` or `max_conn_lifetime` and
//! ends when the idle list is empty or the client is dropped.

use std::sync::Arc;

use tokio::time::Instant;

use super::{Doomed, Shared, State, expiry};
use crate::stats::CloseReason;

impl Shared {
    /// Starts the reaper if idle connections may expire and none runs;
    /// wakes a running one if the connection that just went idle (idle
    /// since `idle_since`, opened at `created`) expires before it looks.
    pub(super) fn ensure_reaper(
        self: &Arc<Self>,
        st: &mut State,
        idle_since: Instant,
        created: Instant,
    ) {
        let cfg = &self.config;
        let idle_end = cfg.idle_conn_timeout.map(|t| idle_since + t);
        let life_end = cfg.max_conn_lifetime.map(|t| created + t);
        let Some(expiry) = [idle_end, life_end].into_iter().flatten().min() else {
            return;
        };
        if st.reaper_running {
            if st.reaper_until.is_none_or(|at| expiry < at) {
                self.reaper_wake.notify_one();
            }
            return;
        }
        // Outside a runtime nothing can be spawned; checkouts still refuse
        // expired connections, so correctness does not depend on the reaper.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            st.reaper_running = true;
            rt.spawn(reap(self.clone()));
        }
    }

    /// Closes what has expired; returns when to look again, or `None` to stop.
    fn reap_once(&self, doomed: &mut Doomed) -> Option<Instant> {
        let cfg = &self.config;
        let mut guard = self.lock();
        let st = &mut *guard;
        if st.closed {
            st.reaper_running = false;
            return None;
        }
        let now = Instant::now();
        let mut next: Option<Instant> = None;
        for host in st.hosts.values_mut() {
            let mut i = 0;
            while i < host.idle.len() {
                let lease = &host.idle[i];
                if let Some(reason) = expiry(cfg, lease, now) {
                    let lease = host.idle.remove(i).expect("index in range");
                    st.idle_total -= 1;
                    host.record_close(reason);
                    doomed.push(lease.disarm());
                    continue;
                }
                let idle_end = cfg.idle_conn_timeout.map(|t| lease.idle_since + t);
                let life_end = cfg.max_conn_lifetime.map(|t| lease.created + t);
                for at in [idle_end, life_end].into_iter().flatten() {
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
                i += 1;
            }
            // Unused shared connections expire the same way.
            let mut i = 0;
            while i < host.h2.len() {
                let e = &mut host.h2[i];
                if e.streams > 0 {
                    i += 1;
                    continue;
                }
                let idle_end = cfg.idle_conn_timeout.map(|t| e.idle_since + t);
                let life_end = cfg.max_conn_lifetime.map(|t| e.created + t);
                let reason = match (idle_end, life_end) {
                    (_, Some(end)) if end <= now => Some(CloseReason::Lifetime),
                    (Some(end), _) if end <= now => Some(CloseReason::IdleTimeout),
                    _ => e.closing,
                };
                if let Some(reason) = reason {
                    let e = host.h2.remove(i);
                    host.record_close(reason);
                    e.control.close.notify_one();
                    continue;
                }
                for at in [idle_end, life_end].into_iter().flatten() {
                    next = Some(next.map_or(at, |n| n.min(at)));
                }
                i += 1;
            }
        }
        // A host emptied by this pass (or missed on the way) leaves now.
        st.hosts.settle_all();
        let h2_idle = st
            .hosts
            .values()
            .any(|h| h.h2.iter().any(|e| e.streams == 0));
        if st.idle_total == 0 && !h2_idle {
            // Connections in use come back idle soon (one reused back to
            // back goes idle between every two requests): stay, looking
            // again when the first of them could expire, instead of a task
            // spawned per request. Only an empty pool ends the reaper.
            let in_use = st
                .hosts
                .values()
                .any(|h| h.busy > 0 || h.dialing > 0 || h.h2.iter().any(|e| e.streams > 0));
            next = match cfg.idle_conn_timeout {
                Some(t) if in_use => Some(now + t),
                _ => None,
            };
        }
        st.reaper_until = next;
        if next.is_none() {
            st.reaper_running = false;
        }
        next
    }
}

async fn reap(shared: Arc<Shared>) {
    loop {
        let mut doomed = Doomed::new();
        let next = shared.reap_once(&mut doomed);
        drop(doomed);
        let Some(at) = next else { return };
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            _ = shared.reaper_wake.notified() => {}
        }
    }
}
