//! `leakless bench [URL]`: load with connection accounting.
//!
//! Layout:
//! - [`args`]: the flags; [`duration`]: parsing them;
//! - [`target`]: the URL or the embedded server, the reachability check;
//! - [`request`]: the request repeated; [`plan`]: when to send and stop;
//! - [`load`]: the one load loop; [`recorder`]: what workers write down;
//! - [`monitor`]: the thread sampling the pool into the [`series`];
//! - [`progress`]: the live display; [`census`]: sockets left at the end;
//! - [`summary`]: the result (= the JSON); [`report`] (text), [`html`] and
//!   [`chart`] (the `--report` file).

mod args;
mod census;
mod chart;
mod html;
pub(crate) mod load;
mod monitor;
pub(crate) mod plan;
mod ports;
pub(crate) mod progress;
mod recorder;
pub(crate) mod report;
pub(crate) mod request;
mod series;
pub(crate) mod summary;
mod target;

use std::sync::Arc;
use std::time::Duration;

use leakless::{Bytes, Certificate, Client};

pub use args::BenchArgs;
use census::Census;
use load::Load;
use plan::{Plan, Stop};
use ports::{PortLog, Ports};
use progress::{Length, Progress};
use request::Template;
use summary::{Head, Parts, Settings, Summary};
use target::Target;

/// How long requests in flight may finish after a timed run's deadline (or
/// Ctrl-C) when no --timeout says otherwise.
const GRACE: Duration = Duration::from_secs(2);
/// The reachability check's connect timeout: the library's default.
const CONNECT_CHECK: Duration = Duration::from_secs(10);

/// Runs the bench; returns the exit status (1: every request failed or the
/// target is unreachable, with the reason on stderr).
pub fn run(args: BenchArgs) -> Result<i32, String> {
    let body = match (&args.body, &args.body_file) {
        (Some(s), _) => Some(Bytes::from(s.clone())),
        (None, Some(f)) => Some(Bytes::from(
            std::fs::read(f).map_err(|e| format!("--body-file {}: {e}", f.display()))?,
        )),
        (None, None) => None,
    };
    let target = Target::prepare(&args)?;
    let template = Template::new(&args.method, target.uri.clone(), &args.headers, body)?;
    if let Err(why) = target.check_reachable(CONNECT_CHECK) {
        eprintln!("leakless bench: {why}");
        return Ok(1);
    }

    let threads = args.threads();
    let rt = runtime(threads)?;
    let ports = port_log(&target);
    let client = {
        // The pool starts its reaper on the current runtime.
        let _in = rt.enter();
        client(&args, &target, ports.clone())?
    };
    let mut warnings = Vec::new();
    let server = target.server.as_ref().map(|s| s.addr());
    let census = match Census::start(&target.addrs, server) {
        Ok(c) => Some(c),
        Err(e) => {
            warnings.push(format!("{e}: no socket census at the end"));
            None
        }
    };

    let stop = match (args.requests, args.duration) {
        (Some(n), _) => Stop::Count(n),
        (None, d) => Stop::After(d.unwrap_or(BenchArgs::DEFAULT_DURATION)),
    };
    let length = match stop {
        Stop::Count(n) => Length::Requests(n),
        Stop::After(d) => Length::Time(d),
    };
    let plan = Arc::new(Plan::new(stop, args.rate));
    let load = Load {
        client: client.clone(),
        template,
        plan,
        concurrency: args.concurrency as usize,
        threads,
        grace: args.timeout.unwrap_or(GRACE),
    };
    let run = load.run(&rt, Progress::new(args.json, length));
    if run.interrupted {
        warnings.push("interrupted (Ctrl-C): the figures cover the run so far".into());
    }

    // Counted while the pool still holds its idle connections: what a
    // long-lived client keeps (ESTABLISHED) next to what it shed (TIME_WAIT).
    let leftovers = census
        .map(|c| c.finish(ports.as_deref()))
        .transpose()
        .unwrap_or_else(|e| {
            warnings.push(format!("{e}: no socket census at the end"));
            None
        });
    let pool = client.stats().total;
    let mut merged = recorder::Recorder::default();
    for shard in run.shards.iter() {
        let shard = shard.lock().expect("a worker panicked while recording");
        for (k, n) in &shard.statuses {
            *merged.statuses.entry(*k).or_default() += n;
        }
        for (k, n) in &shard.versions {
            *merged.versions.entry(*k).or_default() += n;
        }
        for (k, e) in &shard.errors {
            let m = merged.errors.entry(*k).or_default();
            if m.count == 0 {
                m.example = e.example.clone();
            }
            m.count += e.count;
        }
        merged.bytes += shard.bytes;
    }
    let summary = Summary::build(
        head(&args, &target, threads),
        Parts {
            latency_us: &run.series.total,
            succeeded: run.series.succeeded,
            failed: run.series.failed,
            canceled: run.canceled,
            elapsed_s: run.elapsed.as_secs_f64(),
            statuses: merged.statuses,
            versions: merged.versions,
            errors: merged.errors,
            bytes: merged.bytes,
            pool: &pool,
            peak_open: run.series.peak_open,
            peak_waiting: run.series.peak_waiting,
            leftovers: leftovers.as_ref(),
        },
        warnings,
    );
    drop(client);
    drop(rt);

    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", report::text(&summary));
    }
    if let Some(path) = &args.report {
        std::fs::write(path, html::page(&summary, &run.series))
            .map_err(|e| format!("--report {}: {e}", path.display()))?;
        if !args.json {
            eprintln!("report written to {}", path.display());
        }
    }
    Ok(match summary.failure() {
        Some(why) => {
            eprintln!("leakless bench: {why}");
            1
        }
        None => 0,
    })
}

pub(crate) fn runtime(threads: usize) -> Result<tokio::runtime::Runtime, String> {
    // One thread: the current-thread scheduler, no work stealing, the
    // cheapest per request (what a pinned comparison with wrk -t1 wants).
    let mut b = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    b.enable_all()
        .thread_name("bench-worker")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

fn protocol(args: &BenchArgs) -> &'static str {
    if args.http1 {
        "http1"
    } else if args.h2c {
        "h2c"
    } else if args.http2 {
        "http2"
    } else {
        "auto"
    }
}

/// The run's local ports, learnt from the client's observer, for a remote
/// target: other clients may close connections to it during the run, and
/// only the ports tell their TIME_WAIT from ours. The embedded server's
/// port is ours alone, so "new since the start" is exact there, and the
/// observer's cost per request (measured at ~5% of the client's user-space
/// instructions) is not paid.
fn port_log(target: &Target) -> Option<Arc<Ports>> {
    (!target.is_embedded()).then(Arc::default)
}

fn client(args: &BenchArgs, target: &Target, ports: Option<Arc<Ports>>) -> Result<Client, String> {
    let max_conns = args.max_conns();
    let mut b = Client::builder()
        .max_conns_per_host(max_conns)
        // One host: the total idle cap must not undercut the per-host one,
        // or a bench of -c 2000 would churn for a reason nobody asked about.
        .max_idle_conns(max_conns.max(1000))
        .disable_keep_alives(args.disable_keep_alives)
        .timeout(args.timeout)
        .danger_accept_invalid_certs(args.insecure);
    if let Some(n) = args.max_idle_per_host {
        b = b.max_idle_conns_per_host(n);
    }
    if let Some(d) = args.idle_timeout {
        b = b.idle_conn_timeout(d);
    }
    let cleartext = target.uri.scheme_str() == Some("http");
    if args.http1 {
        b = b.disable_http2(true);
    }
    if args.h2c || (args.http2 && cleartext) {
        b = b.http2_prior_knowledge();
    }
    if let Some(ports) = ports {
        b = b.observer(PortLog(ports));
    }
    if let Some(der) = &target.ca_der {
        b = b.add_root_certificate(Certificate::from_der(der.clone()));
    }
    b.build().map_err(|e| e.to_string())
}

fn head(args: &BenchArgs, target: &Target, threads: usize) -> Head {
    Head {
        url: target.uri.to_string(),
        embedded_server: target.is_embedded(),
        concurrency: args.concurrency,
        threads,
        rate: args.rate,
        settings: Settings {
            method: args.method.to_ascii_uppercase(),
            protocol: protocol(args),
            max_conns_per_host: args.max_conns(),
            max_idle_per_host: args.max_idle_per_host,
            idle_timeout_s: args.idle_timeout.map(|d| d.as_secs_f64()),
            disable_keep_alives: args.disable_keep_alives,
            timeout_s: args.timeout.map(|d| d.as_secs_f64()),
        },
    }
}
