//! The result of a run as one plain value: what `--json` prints (its
//! serde form *is* the schema documented in the README), and what the text
//! and HTML reports render.

use std::collections::BTreeMap;

use leakless::HostStats;
use serde::Serialize;

use super::sockets_left::SocketsLeft;
use crate::load::{Latency, Run};

#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub url: String,
    /// True when no URL was given and the embedded server was benched.
    pub embedded_server: bool,
    pub concurrency: u32,
    pub threads: usize,
    /// `--rate` in requests per second, when given.
    pub rate: Option<f64>,
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
    pub latency_ms: Latency,
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
    /// One message per error kind, for the text report's reasons.
    #[serde(skip)]
    pub error_examples: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, Serialize)]
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

#[derive(Clone, Debug, Serialize)]
pub struct Settings {
    pub method: String,
    /// `http1`, `http2` (ALPN over TLS, h2c over http) or `h2c`; `auto`:
    /// ALPN decides over TLS, HTTP/1.1 otherwise.
    pub protocol: &'static str,
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
        Summary {
            url: head.url,
            embedded_server: head.embedded_server,
            concurrency: head.concurrency,
            threads: head.threads,
            rate: head.rate,
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
            latency_ms: Latency::of(&run.series.total),
            connections: connections(pool, run.series.peak_open, run.series.peak_waiting),
            sockets_end: sockets_left.map(SocketsLeft::named).unwrap_or_default(),
            server_sockets_end: sockets_left.and_then(SocketsLeft::server_named),
            settings: head.settings,
            warnings,
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
