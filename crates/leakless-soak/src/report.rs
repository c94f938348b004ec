//! [`Report`]: what a soak did and saw, printed, and the rules it checks.

use std::{fmt, time::Duration};

use leakless::{CloseReason, HostStats};
use leakless_testserver::{Mischief, ServerStats};

use crate::{
    Options,
    sockets::Kernel,
    tally::Tally,
    targets::{DEADLINE, Target},
};

/// How far past its deadline a request may end.
const OVERRUN: Duration = Duration::from_secs(1);
/// How much RSS may grow from the end of the first quarter of the traffic
/// to after the idle wait: far less than a leak of a few bytes per request
/// adds up to in a long run, far more than an allocator's noise.
const RSS_GROWTH: isize = 32 << 20;

/// What a soak did and saw.
#[derive(Debug)]
#[non_exhaustive]
pub struct Report {
    /// How it ran.
    pub options: Options,
    /// How long the traffic ran.
    pub traffic_for: Duration,
    /// How long it then sat idle before the checks.
    pub idle_waited: Duration,
    pub(crate) tally: Tally,
    pub(crate) chaos: Vec<(Mischief, u64)>,
    pub(crate) server: ServerStats,
    pub(crate) nginx: bool,
    pub(crate) pools: Vec<Pool>,
    pub(crate) kernel: Kernel,
    /// RSS before the traffic, at its end, and after the idle wait.
    pub(crate) rss: [isize; 3],
}

/// One client's pool after the idle wait.
#[derive(Debug)]
pub(crate) struct Pool {
    name: &'static str,
    total: HostStats,
    hosts: usize,
    outstanding: usize,
}

impl Pool {
    pub(crate) fn of(t: &Target) -> Pool {
        let s = t.client.stats();
        Pool {
            name: t.name,
            total: s.total,
            hosts: s.hosts.len(),
            outstanding: t.client.outstanding().len(),
        }
    }
}

impl Report {
    /// Requests sent.
    pub fn requests(&self) -> u64 {
        self.tally.total()
    }

    /// Every rule the run broke, said plainly; empty when it held.
    pub fn breaches(&self) -> Vec<String> {
        let mut out = Vec::new();
        let t = &self.tally;
        if t.requests.iter().all(|((_, _, o), _)| *o != "ok") {
            out.push("no request succeeded".to_owned());
        }
        for (target, ok) in self.ok_by_target() {
            if ok == 0 {
                out.push(format!("no request to {target} succeeded"));
            }
        }
        if t.wrong > 0 {
            out.push(format!(
                "{} bodies ended without an error but were wrong: {:?}",
                t.wrong, t.wrong_examples
            ));
        }
        for ((server, kind, phase), (n, first)) in &t.errors {
            if *server == "nginx" {
                out.push(format!(
                    "{n} requests to nginx failed ({kind} in {phase}): its keep-alive closes \
                     must not reach a caller; first: {first}"
                ));
            } else if phase == "none" || !EXPECTED.contains(&kind.as_str()) {
                out.push(format!(
                    "{n} unexpected errors ({kind} in {phase}); first: {first}"
                ));
            }
        }
        // Every fault struck at least once in a run long enough to see it.
        if self.traffic_for >= Duration::from_secs(20) {
            for (m, n) in &self.chaos {
                if *n == 0 {
                    out.push(format!("the fault {} never struck", m.as_str()));
                }
            }
        }
        let (longest, what) = &t.longest;
        if *longest > DEADLINE + OVERRUN {
            out.push(format!(
                "{what} took {longest:.2?}, past its {DEADLINE:?} deadline by more than {OVERRUN:?}"
            ));
        }
        if !self.kernel.held.is_empty() {
            out.push(format!(
                "{} sockets still held after the idle timeout: {:?}",
                self.kernel.held.len(),
                self.kernel.held
            ));
        }
        if self.kernel.fds_left != 0 {
            out.push(format!(
                "{} more socket descriptors than before the traffic",
                self.kernel.fds_left
            ));
        }
        for p in &self.pools {
            let s = &p.total;
            let balanced = s.created - s.closed == s.open as u64;
            if !balanced || s.open != 0 || s.waiting != 0 || p.hosts != 0 || p.outstanding != 0 {
                out.push(format!(
                    "{}: after the idle timeout created {} - closed {} = open {} must be 0, \
                     with nothing waiting ({}), no host live ({}), nothing outstanding ({})",
                    p.name, s.created, s.closed, s.open, s.waiting, p.hosts, p.outstanding
                ));
            }
        }
        if self.server.open != 0 {
            out.push(format!(
                "the test server still has {} connections open",
                self.server.open
            ));
        }
        let quarter = t.rss.get(t.rss.len() / 4).copied().unwrap_or(self.rss[0]);
        if self.rss[2] - quarter > RSS_GROWTH {
            out.push(format!(
                "RSS grew from {} MiB (a quarter in) to {} MiB (after the idle wait)",
                quarter >> 20,
                self.rss[2] >> 20
            ));
        }
        out
    }

    fn ok_by_target(&self) -> Vec<(&'static str, u64)> {
        let mut by: Vec<(&'static str, u64)> = self.pools.iter().map(|p| (p.name, 0)).collect();
        for ((target, _, outcome), n) in &self.tally.requests {
            if *outcome == "ok" {
                if let Some(e) = by.iter_mut().find(|(t, _)| t == target) {
                    e.1 += n;
                }
            }
        }
        by
    }
}

/// What faults may legitimately end a request to the test server as: the
/// connection broke, the server broke the protocol, or a phase timed out.
/// A pool wait, a failed connect or TLS handshake, a bad request or
/// redirect would be the client's fault here.
const EXPECTED: [&str; 3] = ["Io", "Protocol", "Timeout"];

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.tally;
        let secs = self.traffic_for.as_secs_f64();
        writeln!(
            f,
            "soak: {} requests in {secs:.0} s ({:.0}/s), {} workers, seed {}{}",
            t.total(),
            t.total() as f64 / secs,
            self.options.workers,
            self.options.seed,
            if self.nginx {
                ""
            } else {
                " (nginx not installed: skipped)"
            }
        )?;
        writeln!(f, "\nrequests by target, action and outcome:")?;
        for ((target, action, outcome), n) in &t.requests {
            writeln!(f, "  {target:<10} {action:<10} {outcome:<13} {n:>9}")?;
        }
        writeln!(
            f,
            "\nfaults the test server injected, by kind (per connection drawn):"
        )?;
        for (m, n) in &self.chaos {
            writeln!(f, "  {:<21} {n:>9}", m.as_str())?;
        }
        let s = &self.server;
        writeln!(
            f,
            "  test server: {} connections accepted, {} requests, {} GOAWAYs, {} streams refused",
            s.accepted, s.requests, s.h2_goaways, s.h2_streams_refused
        )?;
        writeln!(f, "\nerrors by server, kind and phase (first message):")?;
        if t.errors.is_empty() {
            writeln!(f, "  none")?;
        }
        for ((server, kind, phase), (n, first)) in &t.errors {
            writeln!(f, "  {server:<11} {kind:<9} {phase:<16} {n:>7}  {first}")?;
        }
        writeln!(f, "  wrong bodies without an error: {}", t.wrong)?;
        writeln!(
            f,
            "\nlongest request: {:.2?} against a {DEADLINE:?} deadline (+{OVERRUN:?} allowed): {}",
            t.longest.0, t.longest.1
        )?;
        writeln!(f, "\npools after {:.1?} idle:", self.idle_waited)?;
        for p in &self.pools {
            let s = &p.total;
            writeln!(
                f,
                "  {:<10} created {:>7} - closed {:>7} = open {} (waiting {}, hosts {}, \
                 outstanding {}); reused {}, retried {}; closed by the server {}, not reusable {}, \
                 timeout {}, error {}, idle {}",
                p.name,
                s.created,
                s.closed,
                s.open,
                s.waiting,
                p.hosts,
                p.outstanding,
                s.reused,
                s.retries,
                s.closed_by.get(CloseReason::ServerClosed),
                s.closed_by.get(CloseReason::NotReusable),
                s.closed_by.get(CloseReason::Timeout),
                s.closed_by.get(CloseReason::Error),
                s.closed_by.get(CloseReason::IdleTimeout),
            )?;
        }
        let k = &self.kernel;
        writeln!(
            f,
            "\nsockets after the idle timeout: {} held of the {} connections used (by 4-tuple), \
             {} orphans finishing a close; socket descriptors {:+} since before the traffic",
            k.held.len(),
            k.seen,
            k.closing,
            k.fds_left
        )?;
        let quarter = t.rss.get(t.rss.len() / 4).copied().unwrap_or(self.rss[0]);
        writeln!(
            f,
            "RSS: {} MiB before, {} MiB a quarter in, {} MiB at the end of the traffic, \
             {} MiB after the idle wait",
            self.rss[0] >> 20,
            quarter >> 20,
            self.rss[1] >> 20,
            self.rss[2] >> 20
        )?;
        let breaches = self.breaches();
        if breaches.is_empty() {
            writeln!(f, "\nno breach")
        } else {
            writeln!(f, "\nBREACHES:")?;
            for b in breaches {
                writeln!(f, "  - {b}")?;
            }
            Ok(())
        }
    }
}
