//! The result of a run as one plain value: what `--json` prints (its
//! serde form *is* the schema documented in the README), what `bench
//! merge` reads back and adds up, and what the text and HTML reports
//! render.

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use leakless::HostStats;
use serde::{Deserialize, Serialize};

use super::sockets_left::SocketsLeft;
use crate::load::latency::encode;
use crate::load::{Latency, Run, Second};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    /// Runs this result adds up: 1, or N after `bench merge`.
    pub runs: u32,
    pub url: String,
    /// True when no URL was given and the embedded server was benched.
    pub embedded_server: bool,
    pub concurrency: u32,
    pub threads: usize,
    /// `--rate` in requests per second, when given.
    pub rate: Option<f64>,
    /// When the first request was due, seconds since the Unix epoch.
    pub start_unix_s: f64,
    /// Wall time from the first request to the last response, seconds.
    pub elapsed_s: f64,
    /// Requests that finished: `succeeded + failed`.
    pub requests: u64,
    /// Got a whole response (any status) and read its body to the end.
    pub succeeded: u64,
    /// Failed with an error (connect, timeout, I/O, protocol...).
    pub failed: u64,
    /// In flight when the run was cut (deadline or Ctrl-C plus grace); not
    /// in `requests`.
    pub canceled: u64,
    /// `failed` by kind (see the README).
    pub errors: BTreeMap<String, u64>,
    /// `succeeded` by status code.
    pub statuses: BTreeMap<String, u64>,
    /// `succeeded` by HTTP version.
    pub versions: BTreeMap<String, u64>,
    /// `succeeded / elapsed_s`.
    pub rps: f64,
    /// Response body bytes read.
    pub bytes: u64,
    /// From the send to the end of the body.
    pub latency_ms: Latency,
    /// From each request's scheduled start (--rate) to the end of its
    /// body, as wrk2 measures: the wait of a request that a slow response
    /// kept from being sent on time counts. `null` without a rate.
    pub latency_from_schedule_ms: Option<Latency>,
    pub connections: Connections,
    /// Sockets to the target left at the end, by TCP state (ESTABLISHED,
    /// TIME_WAIT and CLOSE_WAIT always present). Empty when the socket
    /// table could not be read (see `warnings`).
    pub sockets_end: BTreeMap<String, u32>,
    /// The embedded server's end of the run's connections, by TCP state
    /// (where the TIME_WAIT goes when the server closes first); `null` for
    /// a remote target.
    pub server_sockets_end: Option<BTreeMap<String, u32>>,
    pub settings: Settings,
    pub warnings: Vec<String>,
    /// The first message of each error kind, for the text report's reasons.
    pub error_examples: BTreeMap<String, String>,
    pub histograms: Histograms,
    /// Per wall-clock second.
    pub series: Vec<Second>,
}

/// The whole latency distributions, in HdrHistogram's standard text form
/// (compressed V2, base64; microseconds, 3 significant digits).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Histograms {
    /// From the send.
    pub latency_us: String,
    /// From the scheduled start; `null` without a rate.
    pub latency_from_schedule_us: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Connections {
    /// Connections dialed (the pool's `created`).
    pub opened: u64,
    /// Requests served on an already-open connection.
    pub reused: u64,
    /// `reused / (reused + opened)`.
    pub reuse_ratio: f64,
    /// Closed during the run, by reason (non-zero reasons only).
    pub closed: BTreeMap<String, u64>,
    pub closed_total: u64,
    /// Highest open (dialing + busy + idle), sampled every 10 ms.
    pub peak_open: usize,
    /// Highest number of requests waiting for a connection slot.
    pub peak_waiting: usize,
    /// Open at the end (idle in the pool).
    pub open_end: usize,
    /// Requests retried on a fresh connection after a stale one failed.
    pub retries: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    pub method: String,
    /// `http1`, `http2` (ALPN over TLS, h2c over http) or `h2c`; `auto`:
    /// ALPN decides over TLS, HTTP/1.1 otherwise.
    pub protocol: String,
    pub max_conns_per_host: usize,
    /// `null`: the library's default (= max_conns_per_host).
    pub max_idle_per_host: Option<usize>,
    pub idle_timeout_s: Option<f64>,
    pub disable_keep_alives: bool,
    pub timeout_s: Option<f64>,
}

fn connections(pool: &HostStats, peak_open: usize, peak_waiting: usize) -> Connections {
    let served = pool.reused + pool.created;
    Connections {
        opened: pool.created,
        reused: pool.reused,
        reuse_ratio: if served == 0 {
            0.0
        } else {
            pool.reused as f64 / served as f64
        },
        closed: pool
            .closed_by
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (r.as_str().to_string(), n))
            .collect(),
        closed_total: pool.closed,
        peak_open: peak_open.max(pool.open),
        peak_waiting,
        open_end: pool.open,
        retries: pool.retries,
    }
}

impl Summary {
    /// `pool`: the client's stats after the run; `sockets_left`: `None`
    /// when the socket table could not be read.
    pub fn build(
        head: Head,
        run: &Run,
        pool: &HostStats,
        sockets_left: Option<&SocketsLeft>,
        mut warnings: Vec<String>,
    ) -> Summary {
        let (succeeded, failed) = (run.series.succeeded, run.series.failed);
        let elapsed_s = run.elapsed.as_secs_f64();
        let tally = &run.tally;
        if let Some(l) = sockets_left {
            warnings.extend(l.warnings.iter().cloned());
        }
        let series = &run.series;
        let rated = head.rate.is_some();
        Summary {
            runs: 1,
            url: head.url,
            embedded_server: head.embedded_server,
            concurrency: head.concurrency,
            threads: head.threads,
            rate: head.rate,
            start_unix_s: run
                .start_wall
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64(),
            elapsed_s,
            requests: succeeded + failed,
            succeeded,
            failed,
            canceled: run.canceled,
            errors: tally
                .errors
                .iter()
                .map(|(k, e)| (k.to_string(), e.count))
                .collect(),
            error_examples: tally
                .errors
                .iter()
                .map(|(k, e)| (k.to_string(), e.example.clone()))
                .collect(),
            statuses: tally
                .statuses
                .iter()
                .map(|(k, n)| (k.to_string(), *n))
                .collect(),
            versions: tally
                .versions
                .iter()
                .map(|(k, n)| (k.to_string(), *n))
                .collect(),
            rps: if elapsed_s > 0.0 {
                succeeded as f64 / elapsed_s
            } else {
                0.0
            },
            bytes: tally.bytes,
            latency_ms: Latency::of(&series.total),
            latency_from_schedule_ms: rated.then(|| Latency::of(&series.total_from_schedule)),
            connections: connections(pool, run.series.peak_open, run.series.peak_waiting),
            sockets_end: sockets_left.map(SocketsLeft::named).unwrap_or_default(),
            server_sockets_end: sockets_left.and_then(SocketsLeft::server_named),
            settings: head.settings,
            warnings,
            histograms: Histograms {
                latency_us: encode(&series.total),
                latency_from_schedule_us: rated.then(|| encode(&series.total_from_schedule)),
            },
            series: series.seconds.clone(),
        }
    }

    /// Why the run counts as a failure (exit status 1), in one line; `None`
    /// when at least one request got a non-error status.
    pub fn failure(&self) -> Option<String> {
        if self.requests == 0 {
            return Some("no request finished".into());
        }
        if self.succeeded == 0 {
            let (kind, n) = self
                .errors
                .iter()
                .max_by_key(|(_, n)| **n)
                .expect("failed > 0 means an error kind");
            let example = self.error_examples.get(kind).map_or("", String::as_str);
            return Some(format!("every request failed ({n} {kind}): {example}"));
        }
        let ok = self
            .statuses
            .keys()
            .any(|s| s.parse::<u16>().is_ok_and(|s| s < 400));
        if !ok {
            let codes: Vec<String> = self
                .statuses
                .iter()
                .map(|(s, n)| format!("{n} × {s}"))
                .collect();
            return Some(format!(
                "every response had an error status ({})",
                codes.join(", ")
            ));
        }
        None
    }
}

/// The run's description, known before it starts.
pub struct Head {
    pub url: String,
    pub embedded_server: bool,
    pub concurrency: u32,
    pub threads: usize,
    pub rate: Option<f64>,
    pub settings: Settings,
}
