//! The knee of the throughput curve: the smallest concurrency that reaches
//! ~95% of the best throughput before latency rises steeply. Past it, more
//! connections only queue inside the server: latency grows, throughput
//! does not. A pure function of the steps, so it is tested on numbers.

use serde::Serialize;

use super::step::Step;

/// "Reaches the best": within this fraction of it. Measurements on a shared
/// host wobble by a few percent; 95% keeps that wobble from pushing the
/// knee one doubling too far.
pub const NEAR_BEST: f64 = 0.95;
/// Latency "rises steeply" once the median is this many times the lowest
/// median seen: requests now wait for each other, not for the work.
pub const STEEP: f64 = 2.0;
/// Steps failing more often than this are not candidates: a fast error is
/// not throughput.
pub const MAX_ERROR_RATE: f64 = 0.01;

#[derive(Clone, Debug, Serialize)]
pub struct Knee {
    pub concurrency: u32,
    pub rps: f64,
    /// The best throughput among the candidate steps.
    pub best_rps: f64,
    pub best_concurrency: u32,
    /// The lowest median latency seen (the unloaded service time).
    pub base_p50_ms: f64,
    /// The first concurrency whose median was STEEP × the base, if any.
    pub steep_from: Option<u32>,
    /// The knee step's median over the base median.
    pub latency_factor: f64,
    /// Why this step, in one sentence.
    pub why: String,
}

pub fn find(steps: &[Step]) -> Knee {
    let ok: Vec<&Step> = steps
        .iter()
        .filter(|s| s.error_rate <= MAX_ERROR_RATE && s.succeeded > 0)
        .collect();
    // Every step failing: the first one stands in, flagged by its numbers.
    let pool: Vec<&Step> = if ok.is_empty() {
        steps.iter().take(1).collect()
    } else {
        ok
    };
    let Some(first) = pool.first() else {
        return Knee {
            concurrency: 1,
            rps: 0.0,
            best_rps: 0.0,
            best_concurrency: 1,
            base_p50_ms: 0.0,
            steep_from: None,
            latency_factor: 1.0,
            why: "no step was measured".into(),
        };
    };
    let base = pool
        .iter()
        .map(|s| s.p50_ms)
        .filter(|&p| p > 0.0)
        .fold(f64::INFINITY, f64::min);
    let base = if base.is_finite() { base } else { first.p50_ms };
    let steep_from = pool
        .iter()
        .find(|s| base > 0.0 && s.p50_ms >= base * STEEP)
        .map(|s| s.concurrency);
    // Only the steps before the steep rise count: a server can squeeze out
    // a few more requests per second by queueing, at twice the latency.
    let before: Vec<&&Step> = pool
        .iter()
        .filter(|s| steep_from.is_none_or(|c| s.concurrency < c))
        .collect();
    let before = if before.is_empty() {
        pool.iter().take(1).collect()
    } else {
        before
    };
    let best = before
        .iter()
        .copied()
        .max_by(|a, b| a.rps.total_cmp(&b.rps))
        .expect("at least one step");
    let knee = before
        .iter()
        .find(|s| s.rps >= best.rps * NEAR_BEST)
        .copied()
        .expect("the best step qualifies itself");
    let why = match steep_from {
        Some(c) => format!(
            "c={} reaches {:.0}% of the best {:.0} req/s (c={}) before the median latency doubles at c={}",
            knee.concurrency,
            100.0 * knee.rps / best.rps.max(f64::MIN_POSITIVE),
            best.rps,
            best.concurrency,
            c
        ),
        None => format!(
            "c={} reaches {:.0}% of the best {:.0} req/s (c={}); latency never doubled in the sweep{}",
            knee.concurrency,
            100.0 * knee.rps / best.rps.max(f64::MIN_POSITIVE),
            best.rps,
            best.concurrency,
            if knee.concurrency == steps.last().map_or(0, |s| s.concurrency) {
                ": the server may take more (raise --max-concurrency or --budget)"
            } else {
                ""
            }
        ),
    };
    Knee {
        concurrency: knee.concurrency,
        rps: knee.rps,
        best_rps: best.rps,
        best_concurrency: best.concurrency,
        base_p50_ms: base,
        steep_from,
        latency_factor: if base > 0.0 { knee.p50_ms / base } else { 1.0 },
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::step::fake;

    /// A server with 8 workers at 20 ms: linear to 8, flat after, and the
    /// median grows with the queue.
    fn eight_workers() -> Vec<Step> {
        [1u32, 2, 4, 6, 8, 16, 32]
            .iter()
            .map(|&c| {
                let busy = c.min(8) as f64;
                let p50 = 20.0 * (c as f64 / 8.0).max(1.0);
                fake(c, busy * 50.0, p50)
            })
            .collect()
    }

    #[test]
    fn knee_of_a_saturating_server() {
        let k = find(&eight_workers());
        assert_eq!(k.concurrency, 8);
        assert_eq!(k.steep_from, Some(16));
        assert!((k.best_rps - 400.0).abs() < 1e-9);
    }

    #[test]
    fn a_slow_creep_after_the_steep_rise_does_not_move_the_knee() {
        let mut steps = eight_workers();
        // Queueing buys 10% more at 4× the latency: not worth it.
        steps.push(fake(64, 440.0, 80.0));
        assert_eq!(find(&steps).concurrency, 8);
    }

    #[test]
    fn failing_steps_are_not_candidates() {
        let mut steps = eight_workers();
        steps[5].error_rate = 0.3;
        steps[5].rps = 5000.0;
        assert_eq!(find(&steps).concurrency, 8);
        assert!(find(&[]).why.contains("no step"));
    }

    #[test]
    fn never_saturating_says_so() {
        let steps: Vec<Step> = [1u32, 2, 4]
            .iter()
            .map(|&c| fake(c, c as f64 * 100.0, 1.0))
            .collect();
        let k = find(&steps);
        assert_eq!(k.concurrency, 4);
        assert!(k.why.contains("may take more"), "{}", k.why);
    }
}
