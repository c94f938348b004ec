//! The flags of `leakless bench`, named as wrk, oha and hey name them, and
//! the pool knobs under the library's Go-derived names.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};

use super::barrier;
use crate::duration;
use crate::load::RequestArgs;

/// Arguments of `leakless bench`.
#[derive(Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub command: Option<BenchCommand>,

    /// The URL to load. None, or a path such as `/?size=16384`: start the
    /// embedded test server on loopback and bench it (the path's query
    /// shapes its replies; see `leakless serve --help`).
    #[arg(value_name = "URL")]
    pub url: Option<String>,

    /// Requests in flight at once (one worker each).
    #[arg(short = 'c', long, value_name = "N", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,

    /// How long to run (e.g. 10s, 1m). Default 10s unless -n is given.
    #[arg(short = 'd', long, value_name = "DUR", conflicts_with = "requests",
          value_parser = duration::parse_positive)]
    pub duration: Option<Duration>,

    /// Stop after this many requests instead of after a duration.
    #[arg(short = 'n', long, value_name = "N",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: Option<u64>,

    /// Start at most this many requests per second, spread evenly, across
    /// all workers (e.g. 500 or 500/s). Default: as fast as they can.
    #[arg(long, value_name = "N/s", value_parser = parse_rate)]
    pub rate: Option<f64>,

    #[command(flatten)]
    pub request: RequestArgs,

    /// Go: MaxConnsPerHost. Default: the library's 100, or -c when larger,
    /// so -c means connections as in wrk and oha.
    #[arg(long, value_name = "N")]
    pub max_conns_per_host: Option<usize>,

    /// Go: MaxIdleConnsPerHost. Default: max-conns-per-host. Set 2 (Go's
    /// default) with -c 50 and a --rate to see the churn it causes.
    #[arg(long, value_name = "N")]
    pub max_idle_per_host: Option<usize>,

    /// Go: IdleConnTimeout. Default 90s.
    #[arg(long, value_name = "DUR", value_parser = duration::parse_positive)]
    pub idle_timeout: Option<Duration>,

    /// One connection per request, `Connection: close`.
    #[arg(long)]
    pub disable_keep_alives: bool,

    /// Total deadline of each request, head and body. Default: none (every
    /// phase keeps its own bounded timeout).
    #[arg(long, value_name = "DUR", value_parser = duration::parse_positive)]
    pub timeout: Option<Duration>,

    /// Start the load at this wall-clock time, so copies on many machines
    /// start together: UTC RFC 3339 (2026-11-01T12:00:00Z) or Unix seconds.
    #[arg(long, value_name = "TIME", value_parser = barrier::parse)]
    pub start_at: Option<SystemTime>,

    /// Print one JSON object with the result and nothing else (with the
    /// whole latency histograms and the per-second series, which
    /// `leakless bench merge` adds up).
    #[arg(long)]
    pub json: bool,

    /// Also write a self-contained HTML report with charts to FILE.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
}

#[derive(Subcommand, Debug, Clone)]
pub enum BenchCommand {
    /// Add up runs of `bench --json` (from many machines) into one result.
    ///
    /// Histograms add, per-second series line up by wall clock, counts of
    /// requests, connections and sockets add. Prints the same report as
    /// a run; `--json` and `--report` as for a run.
    Merge(MergeArgs),
}

/// Arguments of `leakless bench merge`.
#[derive(Args, Debug, Clone)]
pub struct MergeArgs {
    /// Files written by `leakless bench --json` (text around the JSON
    /// object, such as log lines `kubectl logs` mixes in, is ignored).
    #[arg(value_name = "RUN.json", required = true)]
    pub files: Vec<PathBuf>,

    /// Print the merged result as one JSON object, in the same schema.
    #[arg(long)]
    pub json: bool,

    /// Also write the self-contained HTML report to FILE.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
}

impl BenchArgs {
    /// The run length when neither -d nor -n was given.
    pub const DEFAULT_DURATION: Duration = Duration::from_secs(10);

    /// The per-host cap: never below the concurrency unless asked, so the
    /// workers are not throttled by a pool wait nobody asked for.
    pub fn max_conns(&self) -> usize {
        self.max_conns_per_host
            .unwrap_or_else(|| (self.concurrency as usize).max(100))
    }
}

/// `500`, `500/s`, `2.5/s`.
fn parse_rate(s: &str) -> Result<f64, String> {
    let n = s.trim().trim_end_matches("/s");
    match n.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err(format!(
            "invalid rate {s:?}: expected requests per second, e.g. 500 or 500/s"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(parse_rate("500").unwrap(), 500.0);
        assert_eq!(parse_rate("2.5/s").unwrap(), 2.5);
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("fast").is_err());
    }
}
