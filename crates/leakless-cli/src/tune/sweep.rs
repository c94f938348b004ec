//! The concurrency sweep: 1, 2, 4, … until throughput stops growing (or
//! the budget or --max-concurrency ends it), then a step or two between the
//! knee and the step below it. Each step is one run of the load loop
//! `bench` runs ([`Load`]) on one shared client, so what tune measures is
//! exactly what `leakless bench -c N` would.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use leakless::Client;
use tokio::runtime::Runtime;

use super::knee;
use super::step::Step;
use crate::load::{GRACE, Length, Load, Plan, Progress, Stop, Template};

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

/// One step: `c` workers for `b.step`, through the load loop.
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
    let step = Step::measure(c, &run, &before, &client.stats().total);
    if !b.quiet {
        eprintln!("{}", step.line());
    }
    step
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::step::fake;

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
