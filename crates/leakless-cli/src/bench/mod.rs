//! `leakless bench [URL]`: load with connection accounting. The load
//! itself is [`crate::load`]'s; this module chooses the target, counts what
//! the run left behind and reports it.
//!
//! Layout:
//! - [`args`]: the flags; [`duration`](crate::duration): parsing them;
//! - [`barrier`]: `--start-at`, the wall-clock start copies share;
//! - [`target`]: the URL or the embedded server, the reachability check;
//! - [`ports`]: the local ports the run's connections used;
//! - [`sockets_left`]: the run's sockets to the target by TCP state at the end;
//! - [`summary`]: the result (= the JSON); [`report`] (text), [`html`] and
//!   [`chart`] (the `--report` file);
//! - [`merge`]: `bench merge`, many runs' JSON added up into one result.

mod args;
mod barrier;
mod chart;
mod html;
mod merge;
mod ports;
mod report;
mod sockets_left;
mod summary;
mod target;

use std::sync::Arc;
use std::time::Duration;

use leakless::{Certificate, Client};

use crate::load::{self, Length, Load, Plan, Point, Progress, Stop};
pub use args::BenchArgs;
use args::BenchCommand;
use ports::{PortLog, Ports};
use sockets_left::Baseline;
use summary::{Head, Settings, Summary};
use target::Target;

/// The reachability check's connect timeout: the library's default.
const CONNECT_CHECK: Duration = Duration::from_secs(10);

/// Runs the bench; returns the exit status (1: every request failed or the
/// target is unreachable, with the reason on stderr).
pub fn run(args: BenchArgs) -> Result<i32, String> {
    if let Some(BenchCommand::Merge(m)) = args.command {
        return merge::run(m);
    }
    let target = Target::prepare(&args)?;
    let template = args.request.template(target.uri.clone())?;
    if let Err(why) = target.check_reachable(CONNECT_CHECK) {
        eprintln!("leakless bench: {why}");
        return Ok(1);
    }

    let threads = args.request.threads();
    let rt = load::runtime(threads)?;
    let ports = port_log(&target);
    let client = {
        // The pool starts its reaper on the current runtime.
        let _in = rt.enter();
        client(&args, &target, ports.clone())?
    };
    let mut warnings = Vec::new();
    let server = target.server.as_ref().map(|s| s.addr());
    let baseline = match Baseline::take(&target.addrs, server) {
        Ok(b) => Some(b),
        Err(e) => {
            warnings.push(format!("{e}: no count of the sockets left at the end"));
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
    if let Some(at) = args.start_at {
        warnings.extend(barrier::wait_until(at, args.json));
    }
    let plan = Arc::new(Plan::new(stop, args.rate));
    let load = Load {
        client: client.clone(),
        template,
        plan,
        concurrency: args.concurrency as usize,
        threads,
        grace: args.timeout.unwrap_or(load::GRACE),
    };
    let run = load.run(&rt, Progress::new(args.json, length));
    if run.interrupted {
        warnings.push("interrupted (Ctrl-C): the figures cover the run so far".into());
    }

    // Counted while the pool still holds its idle connections: what a
    // long-lived client keeps (ESTABLISHED) next to what it shed (TIME_WAIT).
    let sockets_left = baseline
        .map(|b| b.sockets_left(ports.as_deref()))
        .transpose()
        .unwrap_or_else(|e| {
            warnings.push(format!("{e}: no count of the sockets left at the end"));
            None
        });
    let pool = client.stats().total;
    let summary = Summary::build(
        head(&args, &target, threads),
        &run,
        &pool,
        sockets_left.as_ref(),
        warnings,
    );
    drop(client);
    drop(rt);
    output(
        &summary,
        &run.series.points,
        args.json,
        args.report.as_deref(),
    )
}

/// Prints the result (JSON or text), writes the HTML report with `points`
/// as its charts over time, and returns the exit status.
fn output(
    summary: &Summary,
    points: &[Point],
    json: bool,
    report: Option<&std::path::Path>,
) -> Result<i32, String> {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(summary).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", report::text(summary));
    }
    if let Some(path) = report {
        std::fs::write(path, html::page(summary, points)?)
            .map_err(|e| format!("--report {}: {e}", path.display()))?;
        if !json {
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
        .timeout(args.timeout);
    if let Some(n) = args.max_idle_per_host {
        b = b.max_idle_conns_per_host(n);
    }
    if let Some(d) = args.idle_timeout {
        b = b.idle_conn_timeout(d);
    }
    b = args.request.configure(b, &target.uri);
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
            method: args.request.method.to_ascii_uppercase(),
            protocol: args.request.protocol().to_string(),
            max_conns_per_host: args.max_conns(),
            max_idle_per_host: args.max_idle_per_host,
            idle_timeout_s: args.idle_timeout.map(|d| d.as_secs_f64()),
            disable_keep_alives: args.disable_keep_alives,
            timeout_s: args.timeout.map(|d| d.as_secs_f64()),
        },
    }
}
