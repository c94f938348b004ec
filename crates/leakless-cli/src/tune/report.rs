//! The text output: the sweep table, the knee, the keep-alive findings,
//! each recommended setting with its evidence, then the code to paste.

use std::fmt::Write;

use super::Tune;
use super::probe::Probe;
use crate::duration::human;
use crate::format::{ms, si};

pub fn text(t: &Tune) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "leakless tune {}  ({} {})", t.url, t.version, t.status);
    let _ = writeln!(
        o,
        "\nsweep ({}):\n  {:>6} {:>9} {:>10} {:>10} {:>10} {:>7} {:>6}",
        human(t.sweep_s),
        "conc",
        "req/s",
        "p50",
        "p99",
        "p99.9",
        "errors",
        "dials"
    );
    for s in &t.steps {
        let mark = if s.concurrency == t.knee.concurrency {
            "  <- knee"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "  {:>6} {:>9} {:>10} {:>10} {:>10} {:>6.1}% {:>6}{mark}",
            s.concurrency,
            si(s.rps),
            ms(s.p50_ms),
            ms(s.p99_ms),
            ms(s.p999_ms),
            s.error_rate * 100.0,
            s.opened
        );
    }
    let _ = writeln!(o, "  knee: {}", t.knee.why);

    match &t.keep_alive {
        None => {
            let _ = writeln!(o, "\nkeep-alive: not probed (--no-probe-keep-alive)");
        }
        Some(p) => keep_alive(&mut o, p, t.probe_s),
    }

    let a = &t.advice;
    let _ = writeln!(o, "\nrecommended:");
    let mut row = |name: &str, value: String, why: &str| {
        let _ = writeln!(o, "  {name:<24} {value:<8} {why}");
    };
    row(
        "max_conns_per_host",
        a.max_conns_per_host.value.to_string(),
        &a.max_conns_per_host.evidence,
    );
    row(
        "max_idle_conns_per_host",
        a.max_idle_conns_per_host.value.to_string(),
        &a.max_idle_conns_per_host.evidence,
    );
    row(
        "idle_conn_timeout",
        human(a.idle_conn_timeout_s.value),
        &a.idle_conn_timeout_s.evidence,
    );
    row(
        "response_header_timeout",
        human(a.response_header_timeout_s.value),
        &a.response_header_timeout_s.evidence,
    );
    row("timeout", human(a.timeout_s.value), &a.timeout_s.evidence);
    row(
        "http2",
        if a.http2.value { "on" } else { "off" }.to_string(),
        &a.http2.evidence,
    );

    for (name, code) in [
        ("leakless", &t.snippets.leakless),
        ("Go (net/http)", &t.snippets.go),
        ("reqwest", &t.snippets.reqwest),
    ] {
        if let Some(code) = code {
            let _ = writeln!(o, "\n{name}:\n{code}");
        }
    }
    for w in &t.warnings {
        let _ = writeln!(o, "warning: {w}");
    }
    o
}

fn keep_alive(o: &mut String, p: &Probe, took: f64) {
    let _ = writeln!(o, "\nkeep-alive ({}):", human(took));
    let _ = writeln!(
        o,
        "  Keep-Alive header:   {}",
        p.keep_alive_header.as_deref().unwrap_or("none")
    );
    let _ = writeln!(
        o,
        "  requests/connection: {}",
        match p.closes_after_requests {
            Some(n) => format!("the server closes after {n}"),
            None => format!("no close within {} in a row", p.requests_tried),
        }
    );
    let Some(i) = &p.idle else {
        let _ = writeln!(o, "  idle timeout:        not probed (nothing stays open)");
        return;
    };
    let f = |x: Option<f64>| x.map_or("-".to_string(), |s| format!("{s:.2}s"));
    let _ = writeln!(
        o,
        "  idle timeout:        {}  (reused after {}, gone after {}, FIN after {}; {} trials)",
        match i.timeout_s {
            Some(s) => format!("{s:.2}s"),
            None => format!(">= {}", human(i.probe_max_s)),
        },
        f(i.survived_s),
        f(i.closed_by_s),
        f(i.fin_after_s),
        i.trials
    );
}
