//! The thread that watches a run from outside the load loop: samples the
//! pool's stats often (peak open connections are fleeting), and every
//! [`POINT`] drains the workers' records into the series and refreshes the
//! progress display. On its own OS thread so it costs the workers no
//! scheduling and keeps ticking when they saturate the runtime.
//!
//! Points end on the wall clock's quarter seconds (not the run's), so a
//! point lies within one wall-clock second and the seconds of runs on
//! different machines line up.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use leakless::Client;

use super::progress::Progress;
use super::recorder::{Interval, Shards};
use super::series::Series;

/// Between two stats samples: `open` can rise and fall within a
/// millisecond under churn, so the peak is a sampled peak.
const SAMPLE: Duration = Duration::from_millis(10);
/// The series' resolution; it divides a second.
pub const POINT: Duration = Duration::from_millis(250);

pub struct Monitor {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Series>,
}

/// Where the run sits on the wall clock.
#[derive(Clone, Copy)]
pub struct Clock {
    pub start: Instant,
    /// The wall clock at `start`.
    pub wall: SystemTime,
}

impl Clock {
    fn unix_nanos(&self, at: Instant) -> u128 {
        let wall = self.wall.duration_since(UNIX_EPOCH).unwrap_or_default();
        (wall + at.saturating_duration_since(self.start)).as_nanos()
    }

    /// The first point's end: the first wall-clock quarter second after
    /// the start, or the one after it when that is less than half a point
    /// away (a sliver of a point would make a noisy rate) and within the
    /// same second (a point never spans two).
    fn first_point(&self) -> Instant {
        let p = POINT.as_nanos();
        let now = self.unix_nanos(self.start);
        let to_next = p - now % p;
        let mut first = self.start + Duration::from_nanos(to_next as u64);
        let on_a_second = (now + to_next) % 1_000_000_000 == 0;
        if to_next < p / 2 && !on_a_second {
            first += POINT;
        }
        first
    }

    /// The wall-clock second of an interval that ends at `end`.
    fn second_of(&self, end: Instant) -> u64 {
        (self.unix_nanos(end).saturating_sub(1) / 1_000_000_000) as u64
    }
}

impl Monitor {
    pub fn start(
        client: Client,
        shards: Arc<Shards>,
        clock: Clock,
        rated: bool,
        progress: Progress,
    ) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("load-monitor".into())
            .spawn(move || watch(&client, &shards, clock, Series::new(rated), progress, &flag))
            .expect("cannot start the monitor thread");
        Monitor { stop, thread }
    }

    /// Call once every worker has finished: the last point drains what
    /// they recorded since the previous one.
    pub fn finish(self) -> Series {
        self.stop.store(true, Ordering::Release);
        self.thread.thread().unpark();
        self.thread.join().expect("the monitor thread panicked")
    }
}

fn watch(
    client: &Client,
    shards: &Shards,
    clock: Clock,
    mut series: Series,
    mut progress: Progress,
    stop: &AtomicBool,
) -> Series {
    let mut interval = Interval::default();
    let mut next_point = clock.first_point();
    loop {
        // Wake at the point's end, not up to a sample after it, so what is
        // drained belongs to the point's wall-clock second.
        std::thread::park_timeout(
            next_point
                .saturating_duration_since(Instant::now())
                .min(SAMPLE),
        );
        let stopping = stop.load(Ordering::Acquire);
        let pool = client.stats().total;
        let now = Instant::now();
        if now < next_point && !stopping {
            series.observe(&pool);
            continue;
        }
        for shard in shards.iter() {
            shard
                .lock()
                .expect("a worker panicked while recording")
                .drain_into(&mut interval);
        }
        // The interval ends at the last point end passed, or now when the
        // run stops in between.
        let mut end = now;
        while next_point <= now {
            end = next_point;
            next_point += POINT;
        }
        series.push(
            now - clock.start,
            clock.second_of(end),
            &mut interval,
            &pool,
        );
        progress.update(&series, now - clock.start, &pool);
        if stopping {
            series.finish();
            progress.finish();
            return series;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_end_on_the_wall_clocks_quarter_seconds() {
        let start = Instant::now();
        let at = |ms: u64| Clock {
            start,
            wall: UNIX_EPOCH + Duration::from_millis(ms),
        };
        // 100 ms into a second: the first point ends at its quarter.
        assert_eq!(at(1_100).first_point(), start + Duration::from_millis(150));
        // 200 ms in: 50 ms to the quarter is a sliver; the next one.
        assert_eq!(at(1_200).first_point(), start + Duration::from_millis(300));
        // A sliver before a whole second stays: no point spans two seconds.
        assert_eq!(at(1_900).first_point(), start + Duration::from_millis(100));
        // An interval ending exactly on a second is the second before it.
        let c = at(1_100);
        assert_eq!(c.second_of(start + Duration::from_millis(900)), 1);
        assert_eq!(c.second_of(start + Duration::from_millis(901)), 2);
        assert_eq!(c.second_of(start + Duration::from_millis(899)), 1);
    }
}
