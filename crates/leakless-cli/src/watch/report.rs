//! The final report (`--for`, Ctrl-C, the watched command's exit), one-line
//! progress for non-terminal output, and the plain-text tables shared by the
//! report and `--once`.

use std::fmt::Write as _;

use serde::Serialize;

use super::churn_events::histogram;
use super::gate::Gate;
use super::snapshot::{EndpointView, EventsView, ProcessView, Snapshot};
use super::verdict::{Kind, Verdict};
use crate::duration::human;
use crate::format;

/// The last JSON object of a `--json` run, and the text printed at the end.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub duration_s: f64,
    pub samples: u64,
    /// Every verdict worse than OK, and one OK per process that has none.
    pub verdicts: Vec<Verdict>,
    pub processes: Vec<ProcessView>,
    /// The watched command's exit code (`watch -- CMD`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Where connection counts came from, and the limit without events.
    pub events: EventsView,
    /// `--fail-on`: the kinds that fail the run and the ones that appeared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_on: Option<Gate>,
}

impl Report {
    pub fn from_snapshot(snap: &Snapshot, exit_code: Option<i32>) -> Report {
        let mut verdicts = Vec::new();
        for p in &snap.processes {
            let bad = p.verdicts.clone().unwrap_or_default();
            if bad.is_empty() {
                let mut ok = Verdict::ok(format!(
                    "{} sockets; no leak, stale pool or churn seen over {}",
                    p.sockets,
                    human(snap.t)
                ));
                ok.pid = Some(p.pid);
                verdicts.push(ok);
            } else {
                verdicts.extend(bad);
            }
        }
        Report {
            duration_s: snap.t,
            samples: snap.sample,
            verdicts,
            processes: snap.processes.clone(),
            exit_code,
            warnings: snap.warnings.clone(),
            events: snap.events.clone(),
            fail_on: None,
        }
    }
}

/// A JSON line: `{"type": "sample" | "report", ...}`.
#[derive(Serialize)]
pub struct Line<'a, T: Serialize> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(flatten)]
    pub body: &'a T,
}

pub fn json_line<T: Serialize>(kind: &'static str, body: &T) -> String {
    serde_json::to_string(&Line { kind, body }).expect("views serialise")
}

fn fds(p: &ProcessView) -> String {
    match (p.fds_open, p.fd_limit) {
        (Some(o), Some(l)) => format!("{o}/{l}"),
        (Some(o), None) => format!("{o}/unlimited"),
        _ => "?".to_string(),
    }
}

/// The endpoint's sockets by state, and the TIME_WAIT to it that no
/// sample ties to the process.
fn states(e: &EndpointView) -> String {
    let listed = format::states(&e.states);
    match e.time_wait_unattributed {
        0 => listed,
        n if listed.is_empty() => format!("(+{n} TIME_WAIT unattributed)"),
        n => format!("{listed} (+{n} TIME_WAIT unattributed)"),
    }
}

/// The per-process table: one row per endpoint.
pub fn process_table(p: &ProcessView, out: &mut String) {
    let _ = writeln!(
        out,
        "pid {} ({}){}: {} sockets, fds {}{}",
        p.pid,
        p.comm,
        if p.descendants.is_empty() {
            String::new()
        } else {
            format!(" + {} descendants", p.descendants.len())
        },
        p.sockets,
        fds(p),
        if p.alive { "" } else { ", exited" }
    );
    if p.endpoints.is_empty() {
        let _ = writeln!(out, "  no TCP sockets");
        return;
    }
    let _ = writeln!(
        out,
        "  {:<24} {:>7} {:>7} {:>8} {:>8} {:>8}  {:<10} STATES",
        "ENDPOINT", "SOCKETS", "OPEN/s", "CLOSE/s", "OLDEST", "IDLE", "VERDICT"
    );
    for e in &p.endpoints {
        let name = if e.folded > 0 {
            format!("other ({})", e.folded)
        } else {
            e.endpoint.clone()
        };
        let _ = writeln!(
            out,
            "  {:<24} {:>7} {:>7.1} {:>8.1} {:>8} {:>8}  {:<10} {}",
            name,
            e.sockets,
            e.opens_per_s,
            e.closes_per_s,
            format!(
                "{}{}",
                if e.age_at_least { ">=" } else { "" },
                human(e.oldest_age_s)
            ),
            e.max_idle_s.map_or("-".to_string(), human),
            e.verdict.map_or("", Kind::name),
            states(e)
        );
        if let Some(ev) = e.events.as_ref().filter(|ev| ev.lifetimes.n() > 0) {
            let ended: Vec<String> = ev.ended.iter().map(|(k, n)| format!("{k} {n}")).collect();
            let _ = writeln!(
                out,
                "    lifetimes (kernel events): {}; last window ended: {}",
                histogram(&ev.lifetimes),
                if ended.is_empty() {
                    "none".to_string()
                } else {
                    ended.join(", ")
                }
            );
        }
    }
}

/// How connections were counted, one line.
fn events_line(e: &EventsView) -> String {
    match (e.attribution, &e.reason) {
        (Some(a), _) => format!(
            "connections counted from the kernel's events, attributed {a}{}",
            if e.lost > 0 {
                format!("; {} records lost (counts may be short by that)", e.lost)
            } else {
                String::new()
            }
        ),
        (None, reason) => format!(
            "sampling only ({}): {}",
            reason.as_deref().unwrap_or("no events"),
            e.limit.unwrap_or("")
        ),
    }
}

/// `--once` without `--json`: the tables, no verdicts.
pub fn once_text(s: &Snapshot) -> String {
    let mut out = String::new();
    for w in &s.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    for p in &s.processes {
        process_table(p, &mut out);
    }
    if s.unattributed_time_wait > 0 {
        let _ = writeln!(
            out,
            "unattributed TIME_WAIT on this host: {}",
            s.unattributed_time_wait
        );
    }
    out
}

/// The final report as text.
pub fn report_text(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "leakless watch: {} samples over {}",
        r.samples,
        human(r.duration_s)
    );
    for w in &r.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let _ = writeln!(out, "{}", events_line(&r.events));
    for p in &r.processes {
        process_table(p, &mut out);
        for line in p.go.iter().flat_map(|g| g.lines()) {
            let _ = writeln!(out, "  {line}");
        }
    }
    let _ = writeln!(out);
    for v in &r.verdicts {
        let _ = write!(out, "{v}");
    }
    if let Some(code) = r.exit_code {
        let _ = writeln!(out, "command exited with {code}");
    }
    out
}

/// One line per sample when stdout is not a terminal and not JSON.
pub fn progress_line(s: &Snapshot) -> String {
    let mut out = format!("{:>7.1}s", s.t);
    for p in s.processes.iter().take(3) {
        let _ = write!(
            out,
            "  pid {} {} sockets [{}] fds {} {}",
            p.pid,
            p.sockets,
            format::states(&p.states),
            fds(p),
            p.verdict.map_or("", Kind::name)
        );
        if let Some(v) = p.verdicts.as_ref().and_then(|v| v.first()) {
            let _ = write!(out, " {}", v.endpoint.as_deref().unwrap_or(""));
        }
    }
    out
}
