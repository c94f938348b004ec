//! The thread that watches a run from outside the load loop: samples the
//! pool's stats often (peak open connections are fleeting), and every
//! [`POINT`] drains the workers' records into the series and refreshes the
//! progress display. On its own OS thread so it costs the workers no
//! scheduling and keeps ticking when they saturate the runtime.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use leakless::Client;

use super::progress::Progress;
use super::recorder::{Interval, Shards};
use super::series::Series;

/// Between two stats samples: `open` can rise and fall within a
/// millisecond under churn, so the peak is a sampled peak.
const SAMPLE: Duration = Duration::from_millis(10);
/// The series' resolution.
pub const POINT: Duration = Duration::from_millis(250);

pub struct Monitor {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Series>,
}

impl Monitor {
    pub fn start(
        client: Client,
        shards: Arc<Shards>,
        start: Instant,
        progress: Progress,
    ) -> Monitor {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("load-monitor".into())
            .spawn(move || watch(&client, &shards, start, progress, &flag))
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
    start: Instant,
    mut progress: Progress,
    stop: &AtomicBool,
) -> Series {
    let mut series = Series::default();
    let mut interval = Interval::default();
    let mut next_point = start + POINT;
    loop {
        std::thread::park_timeout(SAMPLE);
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
        series.push(now - start, &mut interval, &pool);
        progress.update(&series, now - start, &pool);
        while next_point <= now {
            next_point += POINT;
        }
        if stopping {
            progress.finish();
            return series;
        }
    }
}
