//! Waiting for the server's state without sleeping: every change to the
//! ledger wakes waiters, which re-check their predicate.
//!
//! Timeouts here run on the server's own clock, real time, so they work in
//! tests that pause tokio's clock: a `tokio::time::timeout` around a wait in
//! such a test would auto-advance and fire at once.

use std::fmt;
use std::time::Duration;

use crate::server::TestServer;
use crate::stats::ServerStats;

/// How long the `wait_*` shortcuts wait before panicking.
pub const WAIT_LIMIT: Duration = Duration::from_secs(10);

/// A wait that ran out of time, with the last state seen.
#[derive(Clone, Debug)]
pub struct WaitTimeout {
    /// How long it waited.
    pub waited: Duration,
    /// The state when it gave up (boxed: errors stay small).
    pub stats: Box<ServerStats>,
}

impl fmt::Display for WaitTimeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.stats;
        write!(
            f,
            "test server wait timed out after {:?}: accepted {}, closed {} \
             (server {}, peer {}), open {}, idle {}, requests {}, write failures {}",
            self.waited,
            s.accepted,
            s.closed,
            s.closed_by_server,
            s.closed_by_peer,
            s.open,
            s.idle,
            s.requests,
            s.write_failures
        )
    }
}

impl std::error::Error for WaitTimeout {}

/// Aborts the server-side timer when the wait ends first.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TestServer {
    /// Resolves, with the snapshot that satisfied it, once `pred` holds.
    /// Checked now and after every change; usable from any runtime. No
    /// timeout of its own: see [`TestServer::wait_for`] when the calling
    /// test pauses tokio's clock.
    pub async fn wait_until(&self, pred: impl Fn(&ServerStats) -> bool) -> ServerStats {
        let mut changes = self.ledger.subscribe();
        loop {
            if let Some(stats) = self.ledger.check(&pred) {
                return stats;
            }
            if changes.changed().await.is_err() {
                // The sender lives in the ledger, which outlives `self`.
                unreachable!("ledger dropped while borrowed");
            }
        }
    }

    /// [`TestServer::wait_until`] bounded by `timeout` of real time, measured
    /// on the server's runtime (immune to `tokio::time::pause`).
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&ServerStats) -> bool,
    ) -> Result<ServerStats, WaitTimeout> {
        // The sleep must be created on the server's runtime: a `Sleep` binds
        // to the clock of the runtime it is created in.
        let sleep = async move { tokio::time::sleep(timeout).await };
        let mut timer = AbortOnDrop(self.runtime.spawn(sleep));
        tokio::select! {
            stats = self.wait_until(pred) => Ok(stats),
            _ = &mut timer.0 => Err(WaitTimeout { waited: timeout, stats: Box::new(self.stats()) }),
        }
    }

    /// Blocks the calling thread until `pred` holds or `timeout` passes. For
    /// sync tests; in async code use [`TestServer::wait_for`].
    pub fn wait_blocking(
        &self,
        timeout: Duration,
        pred: impl Fn(&ServerStats) -> bool,
    ) -> Result<ServerStats, WaitTimeout> {
        self.ledger
            .wait_blocking(timeout, pred)
            .map_err(|stats| WaitTimeout {
                waited: timeout,
                stats,
            })
    }

    /// Waits for `pred`, panicking with the state after [`WAIT_LIMIT`].
    async fn wait_or_panic(&self, what: &str, pred: impl Fn(&ServerStats) -> bool) -> ServerStats {
        match self.wait_for(WAIT_LIMIT, pred).await {
            Ok(stats) => stats,
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    }

    /// Waits until at least `n` connections were accepted.
    pub async fn wait_accepted(&self, n: u64) -> ServerStats {
        let what = format!("accepted >= {n}");
        self.wait_or_panic(&what, |s| s.accepted >= n).await
    }

    /// Waits until at least `n` connections were closed.
    pub async fn wait_closed(&self, n: u64) -> ServerStats {
        let what = format!("closed >= {n}");
        self.wait_or_panic(&what, |s| s.closed >= n).await
    }

    /// Waits until exactly `n` connections are open.
    pub async fn wait_open(&self, n: u64) -> ServerStats {
        let what = format!("open == {n}");
        self.wait_or_panic(&what, |s| s.open == n).await
    }

    /// Waits until at least `n` connections are idle between requests.
    pub async fn wait_idle(&self, n: u64) -> ServerStats {
        let what = format!("idle >= {n}");
        self.wait_or_panic(&what, |s| s.idle >= n).await
    }

    /// Waits until at least `n` requests were read.
    pub async fn wait_requests(&self, n: u64) -> ServerStats {
        let what = format!("requests >= {n}");
        self.wait_or_panic(&what, |s| s.requests >= n).await
    }

    /// Waits until at least `n` writes failed because the client had gone.
    pub async fn wait_write_failures(&self, n: u64) -> ServerStats {
        let what = format!("write_failures >= {n}");
        self.wait_or_panic(&what, |s| s.write_failures >= n).await
    }
}
