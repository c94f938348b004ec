//! The concurrency sweep: 1, 2, 4, … until throughput stops growing (or
//! the budget or --max-concurrency ends it), then a step or two between the
//! knee and the step below it. Each step is one run of bench's load loop
//! ([`Load`]) on one shared client, so what tune measures is exactly what
//! `leakless bench -c N` would.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use leakless::{Client, HostStats};
use serde::Serialize;
use tokio::runtime::Runtime;

use crate::bench::load::{Load, Run};
use crate::bench::plan::{Plan, Stop};
use crate::bench::progress::{Length, Progress};
use crate::bench::report::{ms, si};
use crate::bench::request::Template;
use crate::bench::summary::latency;

use super::knee;

/// How long requests in flight at a step's end may finish before they are
/// cut (bench's default grace).
const GRACE: Duration = Duration::from_secs(2);

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

/// What the sweep was allowed to do.
pub struct Bounds {
    pub max_concurrency: u32,
    pub step: Duration,
    pub budget: Duration,
    pub threads: usize,
    pub quiet: bool,
}

/// Runs the sweep; the steps come back sorted by concurrency.
pub fn run(rt: &Runtime, client: &Client, template: &Template, b: &Bounds) -> Vec<Step> {
    let start = Instant::now();
    // A step may start while a whole step (plus its grace) still fits.
    let fits = || start.elapsed() + b.step + b.step / 4 <= b.budget;
    let mut steps: Vec<Step> = Vec::new();
    let mut c = 1u32;
    // Geometric: doubling finds the knee's order of magnitude in log2 steps.
    loop {
        let step = one(rt, client, template, c, b);
        let broken = step.error_rate > 0.5;
        steps.push(step);
        if broken || c >= b.max_concurrency || plateaued(&steps) || !fits() {
            break;
        }
        c = (c * 2).min(b.max_concurrency);
    }
    // Refine: halve the gap below the knee while the budget allows, since
    // doubling may have jumped past the real knee (6 looks like 8).
    for _ in 0..2 {
        if !fits() {
            break;
        }
        let k = knee::find(&steps);
        let below = steps
            .iter()
            .map(|s| s.concurrency)
            .filter(|&n| n < k.concurrency)
            .max();
        let Some(below) = below else { break };
        let mid = below + (k.concurrency - below) / 2;
        if mid == below || steps.iter().any(|s| s.concurrency == mid) {
            break;
        }
        steps.push(one(rt, client, template, mid, b));
        steps.sort_by_key(|s| s.concurrency);
    }
    steps
}

/// Throughput stopped growing: the last two doublings each added under
/// 5%. One flat step could be noise; two are a plateau, and past it only
/// latency grows.
fn plateaued(steps: &[Step]) -> bool {
    let n = steps.len();
    if n < 3 {
        return false;
    }
    let best_before = steps[..n - 2].iter().map(|s| s.rps).fold(0.0, f64::max);
    steps[n - 2].rps < best_before * 1.05 && steps[n - 1].rps < best_before * 1.05
}

/// One step: `c` workers for `b.step`, through bench's load loop.
fn one(rt: &Runtime, client: &Client, template: &Template, c: u32, b: &Bounds) -> Step {
    // Warm-up, not measured: one request per worker, so the step's
    // connections are dialed before the clock starts. Dials landing inside
    // the step showed up as a p99 several times the steady one, and a knee
    // found on cold connections moves with the step duration.
    Load {
        client: client.clone(),
        template: template.clone(),
        plan: Arc::new(Plan::new(Stop::Count(u64::from(c)), None)),
        concurrency: c as usize,
        threads: b.threads,
        grace: GRACE,
    }
    .run(rt, Progress::Quiet);
    let before = client.stats().total;
    let progress = if b.quiet || !std::io::stderr().is_terminal() {
        Progress::Quiet
    } else {
        Progress::new(false, Length::Time(b.step))
    };
    let load = Load {
        client: client.clone(),
        template: template.clone(),
        plan: Arc::new(Plan::new(Stop::After(b.step), None)),
        concurrency: c as usize,
        threads: b.threads,
        grace: GRACE,
    };
    let run = load.run(rt, progress);
    let step = measure(c, &run, &before, &client.stats().total);
    if !b.quiet {
        eprintln!("{}", line(&step));
    }
    step
}

fn measure(c: u32, run: &Run, before: &HostStats, after: &HostStats) -> Step {
    let lat = latency(&run.series.total);
    let (ok, failed) = (run.series.succeeded, run.series.failed);
    let mut bytes = 0;
    let mut versions = Vec::new();
    for shard in run.shards.iter() {
        let shard = shard.lock().expect("a worker panicked while recording");
        bytes += shard.bytes;
        for v in shard.versions.keys() {
            if !versions.iter().any(|x: &String| x == v) {
                versions.push(v.to_string());
            }
        }
    }
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
pub fn line(s: &Step) -> String {
    format!(
        "  c={:<5} {:>8} req/s  p50 {:>9}  p99 {:>9}  p99.9 {:>9}  errors {:.1}%  +{} dials",
        s.concurrency,
        si(s.rps),
        ms(s.p50_ms),
        ms(s.p99_ms),
        ms(s.p999_ms),
        s.error_rate * 100.0,
        s.opened
    )
}

#[cfg(test)]
pub(crate) fn fake(concurrency: u32, rps: f64, p50_ms: f64) -> Step {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plateau_needs_two_flat_steps() {
        let s = |c, rps| fake(c, rps, 20.0);
        assert!(!plateaued(&[s(1, 50.0), s(2, 100.0), s(4, 200.0)]));
        assert!(!plateaued(&[s(4, 200.0), s(8, 400.0), s(16, 402.0)]));
        assert!(plateaued(&[
            s(4, 200.0),
            s(8, 400.0),
            s(16, 402.0),
            s(32, 399.0)
        ]));
    }
}
