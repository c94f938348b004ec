//! The run over time: one [`Point`] per interval (throughput, latency
//! percentiles, the pool's connections), plus the totals the points add up
//! to. Fed by the monitor; read by the progress display and the reports.

use std::time::Duration;

use hdrhistogram::Histogram;
use leakless::HostStats;
use serde::Serialize;

use super::latency::histogram;
use super::recorder::Interval;

/// One interval of the run.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    /// End of the interval, seconds since the start.
    pub t: f64,
    /// Its length in seconds (the last one may be short).
    pub dt: f64,
    pub succeeded: u64,
    pub failed: u64,
    /// Latency percentiles of the interval's successes, microseconds.
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// The pool at the end of the interval.
    pub open: usize,
    pub busy: usize,
    pub idle: usize,
    pub waiting: usize,
    /// Connections opened and closed during the interval.
    pub opened: u64,
    pub closed: u64,
}

impl Point {
    pub fn rps(&self) -> f64 {
        if self.dt > 0.0 {
            self.succeeded as f64 / self.dt
        } else {
            0.0
        }
    }
}

#[derive(Debug)]
pub struct Series {
    pub points: Vec<Point>,
    /// Every success's latency, microseconds.
    pub total: Histogram<u64>,
    pub succeeded: u64,
    pub failed: u64,
    /// Highest `open` seen by any stats sample (taken more often than points).
    pub peak_open: usize,
    /// Highest `waiting` seen.
    pub peak_waiting: usize,
    last_t: f64,
    last_created: u64,
    last_closed: u64,
}

impl Default for Series {
    fn default() -> Series {
        Series {
            points: Vec::new(),
            total: histogram(),
            succeeded: 0,
            failed: 0,
            peak_open: 0,
            peak_waiting: 0,
            last_t: 0.0,
            last_created: 0,
            last_closed: 0,
        }
    }
}

impl Series {
    /// A stats sample between points: only peaks are kept.
    pub fn observe(&mut self, pool: &HostStats) {
        self.peak_open = self.peak_open.max(pool.open);
        self.peak_waiting = self.peak_waiting.max(pool.waiting);
    }

    /// Closes an interval ending `at` after the start: `interval` holds the
    /// shards' drained records, and is left empty.
    pub fn push(&mut self, at: Duration, interval: &mut Interval, pool: &HostStats) {
        self.observe(pool);
        let t = at.as_secs_f64();
        let h = &interval.latency_us;
        let q = |p: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(p)
            }
        };
        self.points.push(Point {
            t,
            dt: t - self.last_t,
            succeeded: interval.succeeded,
            failed: interval.failed,
            p50_us: q(0.5),
            p90_us: q(0.9),
            p99_us: q(0.99),
            max_us: if h.is_empty() { 0 } else { h.max() },
            open: pool.open,
            busy: pool.busy,
            idle: pool.idle,
            waiting: pool.waiting,
            opened: pool.created.saturating_sub(self.last_created),
            closed: pool.closed.saturating_sub(self.last_closed),
        });
        self.last_t = t;
        self.last_created = pool.created;
        self.last_closed = pool.closed;
        self.succeeded += interval.succeeded;
        self.failed += interval.failed;
        self.total
            .add(&interval.latency_us)
            .expect("auto-resizing histograms always add");
        interval.latency_us.reset();
        interval.succeeded = 0;
        interval.failed = 0;
    }

    /// The latest point's throughput, for the live display.
    pub fn current_rps(&self) -> f64 {
        self.points.last().map_or(0.0, Point::rps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_carry_deltas_and_totals_add_up() {
        let mut s = Series::default();
        let mut i = Interval::default();
        let mut pool = HostStats::default();
        i.succeeded = 4;
        i.latency_us.record(100).unwrap();
        pool.created = 3;
        pool.open = 3;
        s.push(Duration::from_millis(250), &mut i, &pool);
        i.failed = 1;
        pool.created = 5;
        pool.closed = 2;
        s.push(Duration::from_millis(500), &mut i, &pool);
        assert_eq!(s.points[0].opened, 3);
        assert_eq!(s.points[1].opened, 2);
        assert_eq!(s.points[1].closed, 2);
        assert_eq!((s.succeeded, s.failed), (4, 1));
        assert_eq!(s.points[0].rps(), 16.0);
        assert_eq!(s.total.len(), 1);
        assert_eq!(s.peak_open, 3);
    }
}
