//! One step of the sweep: a fixed concurrency loaded for a while, and what
//! it measured. The knee, the advice and the report all read steps; only
//! the sweep makes them.

use leakless::HostStats;
use serde::Serialize;

use crate::format::{ms, si};
use crate::load::{Latency, Run};

/// One concurrency step's measurements.
#[derive(Clone, Debug, Serialize)]
pub struct Step {
    pub concurrency: u32,
    pub elapsed_s: f64,
    pub succeeded: u64,
    pub failed: u64,
    /// `failed / (succeeded + failed)`.
    pub error_rate: f64,
    /// Successful responses per second.
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Response body bytes per successful response.
    pub body_bytes_avg: f64,
    /// Connections dialed during the step, after its warm-up (one request
    /// per worker); non-zero means the server closed some mid-step.
    pub opened: u64,
    /// HTTP versions of the step's responses, e.g. `HTTP/1.1`.
    pub versions: Vec<String>,
}

impl Step {
    /// What a run of `c` workers measured; `before` and `after` are the
    /// pool's stats around it.
    pub fn measure(c: u32, run: &Run, before: &HostStats, after: &HostStats) -> Step {
        let lat = Latency::of(&run.series.total);
        let (ok, failed) = (run.series.succeeded, run.series.failed);
        let bytes = run.tally.bytes;
        let versions = run.tally.versions.keys().map(|v| v.to_string()).collect();
        let elapsed = run.elapsed.as_secs_f64();
        Step {
            concurrency: c,
            elapsed_s: elapsed,
            succeeded: ok,
            failed,
            error_rate: if ok + failed == 0 {
                0.0
            } else {
                failed as f64 / (ok + failed) as f64
            },
            rps: if elapsed > 0.0 {
                ok as f64 / elapsed
            } else {
                0.0
            },
            p50_ms: lat.p50,
            p99_ms: lat.p99,
            p999_ms: lat.p999,
            max_ms: lat.max,
            body_bytes_avg: if ok == 0 {
                0.0
            } else {
                bytes as f64 / ok as f64
            },
            opened: after.created.saturating_sub(before.created),
            versions,
        }
    }

    /// The live progress line printed as each step ends.
    pub fn line(&self) -> String {
        format!(
            "  c={:<5} {:>8} req/s  p50 {:>9}  p99 {:>9}  p99.9 {:>9}  errors {:.1}%  +{} dials",
            self.concurrency,
            si(self.rps),
            ms(self.p50_ms),
            ms(self.p99_ms),
            ms(self.p999_ms),
            self.error_rate * 100.0,
            self.opened
        )
    }
}

/// A step with made-up numbers, for the knee's and the advice's tests.
#[cfg(test)]
pub fn fake(concurrency: u32, rps: f64, p50_ms: f64) -> Step {
    Step {
        concurrency,
        elapsed_s: 1.0,
        succeeded: rps as u64,
        failed: 0,
        error_rate: 0.0,
        rps,
        p50_ms,
        p99_ms: p50_ms * 1.2,
        p999_ms: p50_ms * 1.5,
        max_ms: p50_ms * 2.0,
        body_bytes_avg: 100.0,
        opened: 0,
        versions: vec!["HTTP/1.1".into()],
    }
}
