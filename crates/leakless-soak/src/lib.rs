//! A soak of leakless: mixed HTTP/1.1, TLS, HTTP/2 and h2c traffic
//! against a test server whose every connection draws a fault at random
//! (reset before the head, mid-head, mid-body, a stall, a close after N
//! requests, GOAWAY, refused streams, silence), and against nginx with
//! tiny `keepalive_requests` and `keepalive_timeout`; with requests
//! cancelled at random and bodies dropped early. At the end it waits out
//! the idle timeout and reports what it did and saw ([`Report`]), and
//! what breached the rules ([`Report::breaches`]): nothing may outlive its
//! deadline by more than a second, no socket may be left in the kernel,
//! every count must balance (`created - closed = open = 0`), nginx's
//! keep-alive closes must never reach a caller, and memory must not grow.
//!
//! `scripts/soak` runs it (`--for 10m` by default); the test suite runs it
//! for 30 seconds.
//!
//! ```text
//! src/lib.rs      Options and run: servers up, traffic, idle, the report
//! src/targets.rs  the servers (test server with chaos, nginx) and a client per protocol
//! src/nginx.rs    an nginx of our own, with the keep-alive limits tiny
//! src/traffic.rs  the workers: a target, an action and a URL at random, timed
//! src/outcome.rs  Action and Outcome: what a worker did and how it ended
//! src/tally.rs    what the workers saw: requests, errors by kind and phase, the longest
//! src/sockets.rs  our sockets as the kernel sees them, and memory
//! src/report.rs   Report: the figures, printed, and the breaches
//! ```

#![deny(missing_docs)]

mod nginx;
mod outcome;
mod report;
mod sockets;
mod tally;
mod targets;
mod traffic;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

pub use report::Report;

/// How a soak runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long traffic runs (the idle wait and the checks come after).
    pub duration: Duration,
    /// Seeds the workers' choices and the server's faults: a run can be
    /// replayed.
    pub seed: u64,
    /// Requests in flight at once.
    pub workers: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            duration: Duration::from_secs(600),
            seed: 1,
            workers: 16,
        }
    }
}

/// Runs a soak and returns its report; the caller decides what a breach
/// means (the binary exits non-zero, the test fails).
pub fn run(opts: &Options) -> Report {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(soak(opts))
}

async fn soak(opts: &Options) -> Report {
    let servers = targets::Servers::start(opts.seed);
    let targets = Arc::new(targets::Target::all(&servers));
    let fds_before = sockets::socket_fds();
    let rss_before = sockets::rss();
    let started = Instant::now();
    let tally = traffic::run(&targets, opts).await;
    let traffic_for = started.elapsed();
    let rss_busy = sockets::rss();

    // Idle: every connection must close by itself within the idle timeout.
    let idle_from = Instant::now();
    tokio::time::sleep(targets::IDLE + targets::IDLE_SLACK).await;
    let idle_waited = idle_from.elapsed();
    let pools: Vec<report::Pool> = targets.iter().map(report::Pool::of).collect();
    let kernel = sockets::Kernel::check(&targets, fds_before);
    let rss_after = sockets::rss();
    Report {
        options: opts.clone(),
        traffic_for,
        idle_waited,
        tally,
        chaos: servers.chaos.struck(),
        server: servers.test.stats(),
        nginx: servers.nginx.is_some(),
        pools,
        kernel,
        rss: [rss_before, rss_busy, rss_after],
    }
}
