//! The run over time: one [`Point`] per interval (throughput, latency
//! percentiles, the pool's connections), the same per wall-clock second
//! ([`Second`], with its histograms, so seconds of runs on other machines
//! add up exactly), and the totals they add up to. Fed by the monitor;
//! read by the progress display and the reports.

use std::time::Duration;

use hdrhistogram::Histogram;
use leakless::HostStats;
use serde::{Deserialize, Serialize};

use super::latency::{self, histogram};
use super::recorder::Interval;

/// One interval of the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// End of the interval, seconds since the start.
    pub t: f64,
    /// Its length in seconds (the first and last may be short).
    pub dt: f64,
    pub succeeded: u64,
    pub failed: u64,
    /// Latency percentiles of the interval's successes, microseconds, from
    /// the send.
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
    /// The same from each request's scheduled start (--rate; 0 without).
    pub from_schedule_p50_us: u64,
    pub from_schedule_p90_us: u64,
    pub from_schedule_p99_us: u64,
    pub from_schedule_max_us: u64,
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

    /// Sets the percentiles from the interval's histograms.
    pub fn set_latency(&mut self, latency: &Histogram<u64>, from_schedule: &Histogram<u64>) {
        let q = |h: &Histogram<u64>, p: f64| {
            if h.is_empty() {
                0
            } else {
                h.value_at_quantile(p)
            }
        };
        self.p50_us = q(latency, 0.5);
        self.p90_us = q(latency, 0.9);
        self.p99_us = q(latency, 0.99);
        self.max_us = q(latency, 1.0);
        self.from_schedule_p50_us = q(from_schedule, 0.5);
        self.from_schedule_p90_us = q(from_schedule, 0.9);
        self.from_schedule_p99_us = q(from_schedule, 0.99);
        self.from_schedule_max_us = q(from_schedule, 1.0);
    }
}

/// One wall-clock second of the run, `[unix_s, unix_s + 1)`: what a run
/// on another machine lines up with. Its `t` is the end of its last
/// interval since the start, `dt` the part of the second the run covered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Second {
    pub unix_s: u64,
    #[serde(flatten)]
    pub point: Point,
    /// The second's successes by latency from the send (HdrHistogram V2,
    /// base64; microseconds). Kept in the plain form while the load runs
    /// (deflating every second would cost the run for bytes that wait in
    /// memory), written out compressed, as every HdrHistogram tool reads.
    #[serde(serialize_with = "latency::compressed")]
    pub histogram: String,
    /// From the scheduled start; `null` without a rate.
    #[serde(serialize_with = "latency::compressed_opt")]
    pub histogram_from_schedule: Option<String>,
}

/// The second being filled.
#[derive(Debug)]
struct Filling {
    point: Point,
    unix_s: u64,
    records: Interval,
}

#[derive(Debug)]
pub struct Series {
    pub points: Vec<Point>,
    pub seconds: Vec<Second>,
    /// Every success's latency from the send, microseconds.
    pub total: Histogram<u64>,
    /// From the scheduled start (empty without a rate).
    pub total_from_schedule: Histogram<u64>,
    pub succeeded: u64,
    pub failed: u64,
    /// Highest `open` seen by any stats sample (taken more often than points).
    pub peak_open: usize,
    /// Highest `waiting` seen.
    pub peak_waiting: usize,
    /// Whether requests have scheduled starts (--rate).
    rated: bool,
    filling: Option<Filling>,
    last_t: f64,
    last_created: u64,
    last_closed: u64,
}

impl Series {
    pub fn new(rated: bool) -> Series {
        Series {
            points: Vec::new(),
            seconds: Vec::new(),
            total: histogram(),
            total_from_schedule: histogram(),
            succeeded: 0,
            failed: 0,
            peak_open: 0,
            peak_waiting: 0,
            rated,
            filling: None,
            last_t: 0.0,
            last_created: 0,
            last_closed: 0,
        }
    }

    /// A stats sample between points: only peaks are kept.
    pub fn observe(&mut self, pool: &HostStats) {
        self.peak_open = self.peak_open.max(pool.open);
        self.peak_waiting = self.peak_waiting.max(pool.waiting);
    }

    /// Closes an interval ending `at` after the start, within wall-clock
    /// second `unix_s`: `interval` holds the shards' drained records, and
    /// is left empty.
    pub fn push(&mut self, at: Duration, unix_s: u64, interval: &mut Interval, pool: &HostStats) {
        self.observe(pool);
        let t = at.as_secs_f64();
        let mut point = Point {
            t,
            dt: t - self.last_t,
            succeeded: interval.succeeded,
            failed: interval.failed,
            open: pool.open,
            busy: pool.busy,
            idle: pool.idle,
            waiting: pool.waiting,
            opened: pool.created.saturating_sub(self.last_created),
            closed: pool.closed.saturating_sub(self.last_closed),
            ..Point::default()
        };
        point.set_latency(&interval.latency_us, &interval.from_schedule_us);
        self.last_t = t;
        self.last_created = pool.created;
        self.last_closed = pool.closed;
        self.succeeded += interval.succeeded;
        self.failed += interval.failed;
        // The interval's records go to its second only: the totals take
        // them a second at a time, which keeps the monitor's histogram
        // work per point what it was before there were seconds.
        if self.filling.as_ref().is_some_and(|f| f.unix_s != unix_s) {
            self.close_second();
        }
        let f = self.filling.get_or_insert_with(|| Filling {
            point: Point::default(),
            unix_s,
            records: Interval::default(),
        });
        let p = &mut f.point;
        p.dt += point.dt;
        p.t = point.t;
        p.succeeded += point.succeeded;
        p.failed += point.failed;
        p.opened += point.opened;
        p.closed += point.closed;
        (p.open, p.busy, p.idle, p.waiting) = (point.open, point.busy, point.idle, point.waiting);
        f.records.take(interval);
        self.points.push(point);
    }

    /// Closes the last second: call once, after the last point.
    pub fn finish(&mut self) {
        self.close_second();
    }

    fn close_second(&mut self) {
        let Some(mut f) = self.filling.take() else {
            return;
        };
        let r = &f.records;
        f.point.set_latency(&r.latency_us, &r.from_schedule_us);
        latency::add(&mut self.total, &r.latency_us);
        latency::add(&mut self.total_from_schedule, &r.from_schedule_us);
        self.seconds.push(Second {
            unix_s: f.unix_s,
            point: f.point,
            histogram: latency::encode_plain(&r.latency_us),
            histogram_from_schedule: self
                .rated
                .then(|| latency::encode_plain(&r.from_schedule_us)),
        });
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
        let mut s = Series::new(false);
        let mut i = Interval::default();
        let mut pool = HostStats::default();
        i.succeeded = 4;
        i.latency_us.record(100).unwrap();
        pool.created = 3;
        pool.open = 3;
        s.push(Duration::from_millis(250), 7, &mut i, &pool);
        i.failed = 1;
        pool.created = 5;
        pool.closed = 2;
        s.push(Duration::from_millis(500), 7, &mut i, &pool);
        assert_eq!(s.points[0].opened, 3);
        assert_eq!(s.points[1].opened, 2);
        assert_eq!(s.points[1].closed, 2);
        assert_eq!((s.succeeded, s.failed), (4, 1));
        assert_eq!(s.points[0].rps(), 16.0);
        assert_eq!(s.peak_open, 3);
        assert!(s.seconds.is_empty(), "second 7 is still filling");
        // The totals take a second's records when it closes.
        assert!(s.total.is_empty());
        s.finish();
        assert_eq!(s.total.len(), 1);
        assert_eq!(s.seconds.len(), 1);
    }

    #[test]
    fn seconds_gather_their_points_and_histograms() {
        let mut s = Series::new(true);
        let mut i = Interval::default();
        let mut pool = HostStats::default();
        for (k, (unix_s, us)) in [(10, 100), (10, 300), (11, 5_000)].into_iter().enumerate() {
            i.succeeded = 1;
            i.latency_us.record(us).unwrap();
            i.from_schedule_us.record(us * 2).unwrap();
            pool.created += 1;
            pool.open = k + 1;
            s.push(
                Duration::from_millis(250 * (k as u64 + 1)),
                unix_s,
                &mut i,
                &pool,
            );
        }
        s.finish();
        assert_eq!(s.seconds.len(), 2);
        let (a, b) = (&s.seconds[0], &s.seconds[1]);
        assert_eq!((a.unix_s, b.unix_s), (10, 11));
        assert_eq!((a.point.succeeded, a.point.opened, a.point.open), (2, 2, 2));
        assert_eq!((a.point.t, a.point.dt), (0.5, 0.5));
        assert_eq!(a.point.max_us, 300);
        assert_eq!(a.point.from_schedule_max_us, 600);
        let h = latency::decode(&a.histogram).unwrap();
        assert_eq!((h.len(), h.max()), (2, 300));
        let h = latency::decode(b.histogram_from_schedule.as_deref().unwrap()).unwrap();
        assert_eq!(h.max(), h.highest_equivalent(10_000));
        assert_eq!(b.point.p50_us, s.points[2].p50_us);
        // The seconds add up to the totals.
        let n: u64 = s.seconds.iter().map(|x| x.point.succeeded).sum();
        assert_eq!(n, s.succeeded);
    }
}
