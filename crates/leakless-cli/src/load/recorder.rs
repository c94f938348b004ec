//! What the workers write down per request: latency (HDR) from the send
//! and, under a rate, from the scheduled start; outcome, status, error
//! kind, bytes. Sharded by worker so a multi-threaded run rarely
//! contends on a lock, and bounded by the thread count (not -c) so -c 10000
//! does not mean 10000 histograms.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use hdrhistogram::Histogram;
use leakless::{ErrorKind, Phase};

use super::latency::{self, histogram};

/// What happened since the sampler last looked.
#[derive(Debug)]
pub struct Interval {
    /// From the send to the end of the body.
    pub latency_us: Histogram<u64>,
    /// From the scheduled start (--rate) to the end of the body: the time
    /// a request waited for a free worker counts, so a stalled server
    /// cannot hide its stall behind the requests it kept from being sent.
    /// Empty without a rate.
    pub from_schedule_us: Histogram<u64>,
    pub succeeded: u64,
    pub failed: u64,
}

impl Default for Interval {
    fn default() -> Interval {
        Interval {
            latency_us: histogram(),
            from_schedule_us: histogram(),
            succeeded: 0,
            failed: 0,
        }
    }
}

impl Interval {
    /// Moves `other`'s records into this one, leaving `other` empty.
    pub fn take(&mut self, other: &mut Interval) {
        latency::add(&mut self.latency_us, &other.latency_us);
        latency::add(&mut self.from_schedule_us, &other.from_schedule_us);
        self.succeeded += other.succeeded;
        self.failed += other.failed;
        other.clear();
    }

    pub fn clear(&mut self) {
        self.latency_us.reset();
        self.from_schedule_us.reset();
        self.succeeded = 0;
        self.failed = 0;
    }
}

/// One failure kind: how often, and the first message, to show the reason.
#[derive(Clone, Debug, Default)]
pub struct ErrorCount {
    pub count: u64,
    pub example: String,
}

/// What a run's requests came to, beyond their latency: counted per shard
/// while the run goes, merged into one when it ends.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    /// Response counts per status code.
    pub statuses: BTreeMap<u16, u64>,
    pub errors: BTreeMap<&'static str, ErrorCount>,
    /// Response body bytes read.
    pub bytes: u64,
    /// Responses per HTTP version ("HTTP/1.1", "HTTP/2.0").
    pub versions: BTreeMap<&'static str, u64>,
}

impl Tally {
    /// Adds `other`'s counts; the first example of an error kind stays.
    pub fn merge(&mut self, other: &Tally) {
        for (k, n) in &other.statuses {
            *self.statuses.entry(*k).or_default() += n;
        }
        for (k, n) in &other.versions {
            *self.versions.entry(*k).or_default() += n;
        }
        for (k, e) in &other.errors {
            let m = self.errors.entry(*k).or_default();
            if m.count == 0 {
                m.example = e.example.clone();
            }
            m.count += e.count;
        }
        self.bytes += other.bytes;
    }
}

/// One shard's record.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Drained into the series by the monitor at every point.
    pub interval: Interval,
    /// Kept for the whole run.
    pub tally: Tally,
}

/// A finished request, as the worker saw it.
pub enum Outcome {
    Done {
        status: u16,
        version: leakless::Version,
        bytes: u64,
    },
    Failed(leakless::Error),
}

impl Recorder {
    /// `took`: from the send; `since_due`: from the scheduled start, under
    /// a rate.
    pub fn record(&mut self, outcome: Outcome, took: Duration, since_due: Option<Duration>) {
        match outcome {
            Outcome::Done {
                status,
                version,
                bytes,
            } => {
                self.interval.succeeded += 1;
                latency::record(&mut self.interval.latency_us, took.as_micros() as u64);
                if let Some(d) = since_due {
                    latency::record(&mut self.interval.from_schedule_us, d.as_micros() as u64);
                }
                let t = &mut self.tally;
                *t.statuses.entry(status).or_default() += 1;
                *t.versions.entry(version_name(version)).or_default() += 1;
                t.bytes += bytes;
            }
            Outcome::Failed(e) => {
                self.interval.failed += 1;
                let entry = self.tally.errors.entry(error_kind(&e)).or_default();
                if entry.count == 0 {
                    entry.example = e.to_string();
                }
                entry.count += 1;
            }
        }
    }

    /// Moves this shard's interval into `into`, leaving it empty.
    pub fn drain_into(&mut self, into: &mut Interval) {
        if self.interval.succeeded == 0 && self.interval.failed == 0 {
            return;
        }
        into.take(&mut self.interval);
    }
}

/// The workers' shards: worker `i` writes to shard `i % len`.
#[derive(Debug)]
pub struct Shards(Vec<Shard>);

/// Aligned so two shards' locks never share a cache line.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Shard(Mutex<Recorder>);

impl Shards {
    /// Enough shards that threads rarely meet on one lock, never more than
    /// the workers.
    pub fn new(threads: usize, workers: usize) -> Shards {
        let n = (threads * 4).clamp(1, workers.max(1));
        Shards((0..n).map(|_| Shard::default()).collect())
    }

    pub fn for_worker(&self, i: usize) -> &Mutex<Recorder> {
        &self.0[i % self.0.len()].0
    }

    pub fn iter(&self) -> impl Iterator<Item = &Mutex<Recorder>> {
        self.0.iter().map(|s| &s.0)
    }

    /// Every shard's tally in one.
    pub fn tally(&self) -> Tally {
        let mut all = Tally::default();
        for shard in self.iter() {
            all.merge(
                &shard
                    .lock()
                    .expect("a worker panicked while recording")
                    .tally,
            );
        }
        all
    }
}

fn version_name(v: leakless::Version) -> &'static str {
    match v {
        leakless::Version::HTTP_2 => "HTTP/2",
        leakless::Version::HTTP_11 => "HTTP/1.1",
        leakless::Version::HTTP_10 => "HTTP/1.0",
        _ => "other",
    }
}

/// A stable snake_case name per failure, the key of the report's `errors`.
/// Timeouts carry their phase: "timeout_response_headers" and
/// "timeout_connect" call for different fixes.
pub fn error_kind(e: &leakless::Error) -> &'static str {
    match e.kind() {
        ErrorKind::Connect => "connect",
        ErrorKind::Tls => "tls",
        ErrorKind::PoolWait => "pool_wait",
        ErrorKind::Io => "io",
        ErrorKind::Protocol => "protocol",
        ErrorKind::BodyTooLarge => "body_too_large",
        ErrorKind::Request => "request",
        ErrorKind::Builder => "builder",
        ErrorKind::Timeout => match e.phase() {
            Some(Phase::Connect) => "timeout_connect",
            Some(Phase::Tls) => "timeout_tls",
            Some(Phase::PoolWait) => "timeout_pool_wait",
            Some(Phase::WriteRequest) => "timeout_write_request",
            Some(Phase::ResponseHeaders) => "timeout_response_headers",
            Some(Phase::BodyRead) => "timeout_body_read",
            Some(Phase::Total) => "timeout_total",
            _ => "timeout",
        },
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_drains() {
        let mut r = Recorder::default();
        for us in [10, 20, 30] {
            r.record(
                Outcome::Done {
                    status: 200,
                    version: leakless::Version::HTTP_11,
                    bytes: 5,
                },
                Duration::from_micros(us),
                (us == 30).then(|| Duration::from_micros(1_000)),
            );
        }
        let mut into = Interval::default();
        r.drain_into(&mut into);
        assert_eq!(into.succeeded, 3);
        assert_eq!(into.latency_us.max(), 30);
        assert_eq!(into.from_schedule_us.len(), 1);
        assert_eq!(into.from_schedule_us.max(), 1_000);
        assert_eq!(r.interval.succeeded, 0);
        assert!(r.interval.latency_us.is_empty());
        assert!(r.interval.from_schedule_us.is_empty());
        assert_eq!(r.tally.statuses[&200], 3);
        assert_eq!(r.tally.bytes, 15);
        assert_eq!(Shards::new(2, 3).0.len(), 3);
        assert_eq!(Shards::new(1, 50).0.len(), 4);
    }
}
