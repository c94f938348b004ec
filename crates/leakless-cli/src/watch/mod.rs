//! `leakless watch`: a process's TCP connections per endpoint and state over
//! time, with a verdict (LEAK, STALE_POOL, CHURN, OK) and its evidence.
//!
//! Layout:
//! - [`series`]: per-endpoint history fed by observations;
//! - [`verdict`]: the rules, pure functions of a series;
//! - [`sampler`]: one socket-table sample per tick into series (its
//!   `ingest` sorts a sample step by step), TIME_WAIT attribution, verdicts;
//! - [`snapshot`]: the bounded view of a tick every output renders;
//! - [`report`] (text and JSON lines), [`tui`], [`prom`]: the outputs;
//! - [`target`]: the watched pid or command, and the stop signal;
//! - [`gate`]: `--fail-on`, the exit code a CI job reads.

mod churn_events;
mod conns;
mod gate;
mod pprof;
mod prom;
mod report;
mod sampler;
mod series;
mod snapshot;
mod target;
mod tui;
mod verdict;

use std::io::{self, IsTerminal};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{ArgGroup, Args};

use crate::sockets::events::{ConnEvents, EventSource};
use crate::sockets::lifecycle::Scope;
use gate::{FailOn, Gate};
use sampler::{Mode, Sampler};
use snapshot::Snapshot;
use target::{ChildOutput, Target};

/// Arguments of `leakless watch`.
#[derive(Args, Debug)]
#[command(
    group(ArgGroup::new("target").required(true).args(["pid", "all", "command"])),
    override_usage = "leakless watch [OPTIONS] --pid PID\n       leakless watch [OPTIONS] --all\n       leakless watch [OPTIONS] -- CMD [ARGS]..."
)]
pub struct WatchArgs {
    /// Watch this process (its descendants' sockets count with it).
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Watch every process on the host, ranked by suspicion.
    #[arg(long)]
    pub all: bool,
    /// Time between samples (e.g. 200ms, 1s).
    #[arg(long, value_name = "DUR", default_value = "1s", value_parser = crate::duration::parse_positive)]
    pub interval: Duration,
    /// Stop after this long and print the final report.
    #[arg(long = "for", value_name = "DUR", value_parser = crate::duration::parse_positive)]
    pub for_: Option<Duration>,
    /// One snapshot (no verdict), then exit.
    #[arg(long)]
    pub once: bool,
    /// One JSON object per sample, then a final report object with `verdicts`.
    #[arg(long)]
    pub json: bool,
    /// Serve Prometheus text on http://ADDR/metrics (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// A gate for CI: exit 10 if any of these verdicts appears during the
    /// run (leak, stale, churn; comma-separated), printing its evidence on
    /// stderr; otherwise exit as the command did (0 with --pid). With
    /// --pid, --for ends the run.
    #[arg(
        long,
        value_name = "KINDS",
        value_delimiter = ',',
        conflicts_with = "once"
    )]
    pub fail_on: Vec<FailOn>,
    /// A Go program's net/http/pprof address (e.g.
    /// http://127.0.0.1:6060/debug/pprof/): its goroutines, fetched every
    /// 10 s, name what holds each connection (a body never closed, a request
    /// never answered, a handler ignoring its context). A command started
    /// by watch gets GODEBUG=tracebackancestors=5 so they name who dialed.
    #[arg(long, value_name = "URL", conflicts_with_all = ["all", "once"])]
    pub pprof: Option<String>,
    /// Endpoints shown per process; the rest are folded into "other".
    #[arg(long, value_name = "K", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub top: u16,
    /// Start this command and watch it; watch exits with its exit code. In
    /// the terminal view its output is discarded; otherwise its stdout goes
    /// to stderr.
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// Grace given to a watched command to exit after SIGTERM when the watch ends first.
const CHILD_GRACE: Duration = Duration::from_secs(2);

/// Runs the watch; returns the process exit code.
pub fn run(args: WatchArgs) -> Result<i32, String> {
    let tui_mode = !args.json && !args.once && std::io::stdout().is_terminal();
    // On before a command starts, so its first connections are counted.
    let events = (!args.once).then(EventSource::open);
    let mut target = if !args.command.is_empty() {
        let out = if tui_mode {
            ChildOutput::Discard
        } else {
            ChildOutput::ToStderr
        };
        let mut env = Vec::new();
        if args.pprof.is_some() {
            let current = std::env::var("GODEBUG").ok();
            env.extend(pprof::godebug(current.as_deref()).map(|v| ("GODEBUG".to_string(), v)));
        }
        Some(Target::spawn(&args.command, out, &env).map_err(|e| e.to_string())?)
    } else if let Some(pid) = args.pid {
        if !sockets_process_alive(pid) {
            return Err(format!("no process with pid {pid}"));
        }
        Some(Target::Pid(pid))
    } else {
        None
    };
    let mode = target.as_ref().map_or(Mode::All, |t| Mode::Pid(t.pid()));
    let go_source = args
        .pprof
        .as_deref()
        .map(pprof::Source::parse)
        .transpose()?;
    target::install_stop_handler();
    let top = usize::from(args.top);

    if args.once {
        if matches!(target, Some(Target::Command(_))) {
            // Give a command we just started one interval to open sockets.
            std::thread::sleep(args.interval);
        }
        let mut sampler = Sampler::new(mode, false);
        sampler
            .tick()
            .map_err(|e| format!("sampling sockets: {e}"))?;
        let snap = Snapshot::build(&sampler, top, false);
        if args.json {
            emit(&format!("{}\n", report::json_line("sample", &snap)));
        } else {
            emit(&report::once_text(&snap));
        }
        return Ok(target
            .as_mut()
            .and_then(|t| t.finish(CHILD_GRACE))
            .unwrap_or(0));
    }

    let shared: prom::Shared = Arc::new(Mutex::new(String::new()));
    if let Some(addr) = &args.listen {
        let bound =
            prom::serve(addr, shared.clone()).map_err(|e| format!("--listen {addr}: {e}"))?;
        eprintln!("leakless watch: Prometheus metrics on http://{bound}/metrics");
    }
    let header = tui::Header {
        interval: args.interval,
        all: mode == Mode::All,
    };
    let mut screen = if tui_mode {
        Some(tui::Screen::open().map_err(|e| format!("terminal: {e}"))?)
    } else {
        None
    };

    let mut sampler = Sampler::new(mode, true);
    sampler.set_events(follow(events, mode));
    // Same clock as the sampler's, so a dump's age is right.
    let poller = go_source
        .map(|s| pprof::Poller::start(s, Instant::now()))
        .transpose()?;
    let mut gate = (!args.fail_on.is_empty()).then(|| Gate::new(&args.fail_on));
    let start = Instant::now();
    let mut next = start;
    let mut last: Option<Snapshot> = None;
    let mut exit_code = None;
    let mut stdout_gone = false;
    loop {
        // Check the target before sampling: a report of a process that has
        // exited keeps the verdicts of its last live sample.
        if let Some(t) = target.as_mut() {
            if let Some(code) = t.exited() {
                exit_code = Some(code);
                break;
            }
            if !t.alive() {
                break;
            }
        }
        sampler
            .tick()
            .map_err(|e| format!("sampling sockets: {e}"))?;
        let mut snap = Snapshot::build(&sampler, top, true);
        if let (Some(p), Mode::Pid(pid)) = (&poller, mode) {
            pprof::annotate(&mut snap, pid, p);
        }
        if let Some(g) = gate.as_mut() {
            for hit in g.observe(&snap) {
                if screen.is_none() {
                    // Said at once, so a CI log shows it next to the
                    // command's own output; the evidence follows at the end.
                    eprintln!(
                        "leakless watch: {} pid {} {} at {}: {}",
                        hit.verdict.verdict.name(),
                        hit.verdict.pid.unwrap_or(0),
                        hit.verdict.endpoint.as_deref().unwrap_or(""),
                        crate::duration::human(hit.first_seen_s),
                        hit.verdict.summary
                    );
                }
            }
        }
        if args.listen.is_some() {
            if let Ok(mut s) = shared.lock() {
                *s = prom::render(&snap);
            }
        }
        if let Some(screen) = screen.as_mut() {
            screen
                .draw(&snap, &header)
                .map_err(|e| format!("terminal: {e}"))?;
        } else {
            let line = if args.json {
                report::json_line("sample", &snap)
            } else {
                report::progress_line(&snap)
            };
            if !emit(&format!("{line}\n")) {
                // The reader went away (`| head`): stop quietly.
                stdout_gone = true;
                break;
            }
        }
        last = Some(snap);
        if args.for_.is_some_and(|d| start.elapsed() >= d) || target::stop_requested() {
            break;
        }
        next += args.interval;
        let now = Instant::now();
        if next < now {
            // Sampling fell behind (a slow host): skip, don't burst.
            next = now;
        }
        if wait_until(
            next,
            screen.as_mut(),
            &mut target,
            args.for_.map(|d| start + d),
        )? {
            break;
        }
    }
    drop(screen);
    if let Some(t) = target.as_mut() {
        exit_code = exit_code.or_else(|| t.finish(CHILD_GRACE));
    }
    let snap = match last {
        Some(s) => s,
        None => Snapshot::build(&sampler, top, true),
    };
    let mut report = report::Report::from_snapshot(&snap, exit_code);
    report.fail_on = gate.clone();
    if !stdout_gone {
        if args.json {
            emit(&format!("{}\n", report::json_line("report", &report)));
        } else {
            emit(&report::report_text(&report));
        }
    }
    match &gate {
        Some(g) => {
            eprint!("{}", g.text(exit_code));
            Ok(g.exit_code(exit_code))
        }
        None => Ok(exit_code.unwrap_or(0)),
    }
}

/// Follows the watched processes' connections through the kernel's events,
/// or says once why not (the report repeats the limit).
fn follow(source: Option<io::Result<EventSource>>, mode: Mode) -> Result<ConnEvents, String> {
    let scope = match mode {
        Mode::Pid(pid) => Scope::Tree(pid),
        Mode::All => Scope::All,
    };
    match source {
        Some(Ok(s)) => Ok(s.follow(scope)),
        Some(Err(e)) => {
            eprintln!(
                "leakless watch: connection events unavailable ({e}); sampling only: {}",
                SAMPLING_LIMIT
            );
            Err(e.to_string())
        }
        None => Err("not used with --once".to_string()),
    }
}

/// What sampling alone cannot see.
pub const SAMPLING_LIMIT: &str = "connections that open and close between two samples are not seen, so churn of short connections is undercounted or missed";

/// Writes to stdout and flushes; false once the reader has gone (EPIPE),
/// where `println!` would panic.
fn emit(text: &str) -> bool {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}

fn sockets_process_alive(pid: u32) -> bool {
    crate::sockets::process::alive(pid)
}

/// Sleeps until `next`, waking early to stop. True when the watch should
/// stop: quit key, SIGINT/SIGTERM, the `--for` deadline, the command exited.
fn wait_until(
    next: Instant,
    mut screen: Option<&mut tui::Screen>,
    target: &mut Option<Target>,
    deadline: Option<Instant>,
) -> Result<bool, String> {
    // Short slices keep Ctrl-C and the child's exit responsive; at a 1 s
    // interval that is ten wake-ups, a negligible cost.
    const SLICE: Duration = Duration::from_millis(100);
    loop {
        let now = Instant::now();
        if now >= next {
            return Ok(false);
        }
        if target::stop_requested() || deadline.is_some_and(|d| now >= d) {
            return Ok(true);
        }
        if let Some(Target::Command(_)) = target {
            if target.as_mut().is_some_and(|t| t.exited().is_some()) {
                // Sample loop picks the exit code up.
                return Ok(false);
            }
        }
        let slice = (next - now).min(SLICE);
        match screen.as_deref_mut() {
            Some(s) => {
                if s.wait_quit(slice).map_err(|e| format!("terminal: {e}"))? {
                    return Ok(true);
                }
            }
            None => std::thread::sleep(slice),
        }
    }
}
