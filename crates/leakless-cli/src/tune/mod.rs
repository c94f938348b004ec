//! `leakless tune URL`: measure a server and print the pool sizes and
//! timeouts to use, for leakless, Go and reqwest.
//!
//! Layout:
//! - [`args`]: the flags;
//! - [`sweep`]: concurrency steps through the one load loop
//!   ([`crate::load`]), each measured into a [`step`];
//! - [`knee`]: where throughput stops growing and latency starts to;
//! - [`probe`]: idle keep-alive, `Keep-Alive:` and "closes after N";
//! - [`advice`]: settings with their evidence; [`snippet`]: as code;
//! - [`report`]: the text output (the JSON is [`Tune`] itself).

mod advice;
mod args;
mod knee;
mod probe;
mod report;
mod snippet;
mod step;
mod sweep;

use leakless::{Client, ClientBuilder};
use serde::Serialize;

use crate::load::{self, Template, parse_url};
pub use args::{Lang, TuneArgs};

/// Everything tune measured and recommends: what `--json` prints.
#[derive(Debug, Serialize)]
pub struct Tune {
    pub url: String,
    /// The first response's status and version (the reachability check).
    pub status: u16,
    pub version: String,
    pub steps: Vec<step::Step>,
    pub knee: knee::Knee,
    /// `null` with --no-probe-keep-alive.
    pub keep_alive: Option<probe::Probe>,
    pub advice: advice::Advice,
    pub snippets: Snippets,
    pub sweep_s: f64,
    pub probe_s: f64,
    pub warnings: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Snippets {
    pub leakless: Option<String>,
    pub go: Option<String>,
    pub reqwest: Option<String>,
}

/// Runs tune; returns the exit status (1: the target never answered).
pub fn run(args: TuneArgs) -> Result<i32, String> {
    let uri = parse_url(&args.url)?;
    // The request flags as client settings, shared by the sweep and probes.
    let base = args.request.configure(Client::builder(), &uri);
    let template = args.request.template(uri)?;
    let threads = args.request.threads();
    let rt = load::runtime(threads)?;
    let mut warnings = Vec::new();

    // One request first: an unreachable or failing target ends here in one
    // line instead of after a sweep of errors.
    let first = {
        let _in = rt.enter();
        let client = base.clone().build().map_err(|e| e.to_string())?;
        rt.block_on(probe::exchange(&client, &template))
    };
    let first = match first {
        Ok(seen) => seen,
        Err(e) => {
            eprintln!("leakless tune: {} did not answer: {e}", args.url);
            return Ok(1);
        }
    };
    if first.status >= 400 {
        warnings.push(format!(
            "the first response was {}: the sweep measures error responses",
            first.status
        ));
    }

    if !args.json {
        eprintln!(
            "leakless tune {}: sweeping concurrency 1..{} ({} a step, budget {})",
            args.url,
            args.max_concurrency,
            crate::duration::human(args.step_duration.as_secs_f64()),
            crate::duration::human(args.budget.as_secs_f64()),
        );
    }
    let sweep_start = std::time::Instant::now();
    let client = {
        let _in = rt.enter();
        // Unbounded, so the sweep measures the server and not our pool.
        base.clone()
            .max_conns_per_host(0)
            .max_idle_conns(0)
            .build()
            .map_err(|e| e.to_string())?
    };
    let bounds = sweep::Bounds {
        max_concurrency: args.max_concurrency,
        step: args.step_duration,
        budget: args.budget,
        threads,
        quiet: args.json,
    };
    let steps = sweep::run(&rt, &client, &template, &bounds);
    drop(client);
    let sweep_s = sweep_start.elapsed().as_secs_f64();
    let knee = knee::find(&steps);
    if !args.json {
        eprintln!("  knee: {}", knee.why);
    }

    let probe_start = std::time::Instant::now();
    let keep_alive = if args.probe() {
        if !args.json {
            eprintln!(
                "probing keep-alive (idle up to {}, {} trials at once)...",
                crate::duration::human(args.probe_max.as_secs_f64()),
                10
            );
        }
        let _in = rt.enter();
        Some(rt.block_on(keep_alive(&base, &template, &first, &args))?)
    } else {
        None
    };
    let probe_s = probe_start.elapsed().as_secs_f64();

    let advice = advice::advise(
        &steps,
        &knee,
        keep_alive.as_ref(),
        args.headroom,
        advice::fd_limit(),
    );
    let want = |l: Lang| args.lang == l || args.lang == Lang::All;
    let snippets = Snippets {
        leakless: want(Lang::Leakless).then(|| snippet::leakless(&advice)),
        go: want(Lang::Go).then(|| snippet::go(&advice)),
        reqwest: want(Lang::Reqwest).then(|| snippet::reqwest(&advice)),
    };
    let tune = Tune {
        url: args.url.clone(),
        status: first.status,
        version: format!("{:?}", first.version),
        steps,
        knee,
        keep_alive,
        advice,
        snippets,
        sweep_s,
        probe_s,
        warnings,
    };
    drop(rt);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&tune).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", report::text(&tune));
    }
    Ok(0)
}

async fn keep_alive(
    base: &ClientBuilder,
    t: &Template,
    first: &probe::Seen,
    args: &TuneArgs,
) -> Result<probe::Probe, String> {
    // Side by side: the idle trials spend most of their time asleep, and
    // the requests in a row take up to seconds on a slow endpoint.
    let (p, idle) = tokio::join!(
        probe::requests_per_conn(base, t, first),
        probe::idle(base, t, args.probe_max)
    );
    let mut p = p?;
    // A server closing after every response keeps nothing idle: every
    // trial "failed" for a reason the idle timeout has nothing to do with.
    if p.closes_after_requests != Some(1) {
        p.idle = Some(idle);
    }
    Ok(p)
}
