//! The text report: throughput and latency like wrk and oha, then what they
//! do not say: connections opened, reused and closed by reason, and the
//! sockets the run left behind.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::summary::Summary;
use crate::duration::human;
use crate::format::{bytes, ms, si, states, thousands};
use crate::load::Latency;

pub fn text(s: &Summary) -> String {
    let mut o = String::new();
    let set = &s.settings;
    let _ = writeln!(
        o,
        "leakless bench {}{}{}",
        s.url,
        if s.embedded_server {
            "  (embedded server)"
        } else {
            ""
        },
        if s.runs > 1 {
            format!("  ({} runs merged)", s.runs)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        o,
        "  {} {} on {} thread{}, {}{}; {}max_conns_per_host {}, max_idle_per_host {}{}",
        s.concurrency,
        if s.concurrency == 1 {
            "worker"
        } else {
            "workers"
        },
        s.threads,
        if s.threads == 1 { "" } else { "s" },
        human(s.elapsed_s),
        s.rate
            .map(|r| format!(" at ≤ {}/s", si(r)))
            .unwrap_or_default(),
        match set.protocol.as_str() {
            "auto" => String::new(),
            p => format!("{p}; "),
        },
        set.max_conns_per_host,
        set.max_idle_per_host
            .map_or_else(|| "default".to_string(), |n| n.to_string()),
        if set.disable_keep_alives {
            ", keep-alives disabled"
        } else {
            ""
        }
    );
    let _ = writeln!(o);
    let _ = writeln!(
        o,
        "  requests      {} ok, {} failed{}   {} req/s   {} read",
        thousands(s.succeeded),
        thousands(s.failed),
        if s.canceled > 0 {
            format!(", {} canceled at the end", s.canceled)
        } else {
            String::new()
        },
        si(s.rps),
        bytes(s.bytes)
    );
    if !s.statuses.is_empty() {
        let st: Vec<String> = s
            .statuses
            .iter()
            .map(|(k, n)| format!("{k} × {}", thousands(*n)))
            .collect();
        let v: Vec<String> = s.versions.keys().cloned().collect();
        let _ = writeln!(o, "  statuses      {}   ({})", st.join(", "), v.join(", "));
    }
    for (kind, n) in &s.errors {
        let example = s.error_examples.get(kind).map_or("", String::as_str);
        let _ = writeln!(o, "  error         {kind} × {}: {example}", thousands(*n));
    }
    if s.succeeded > 0 {
        match &s.latency_from_schedule_ms {
            None => {
                let _ = writeln!(o, "  latency       {}", percentiles(&s.latency_ms));
            }
            // Both, labelled: from the send (what wrk and oha print) and
            // from the schedule (wrk2's corrected latency), which counts
            // the wait of requests a slow response kept from being sent.
            Some(scheduled) => {
                let _ = writeln!(
                    o,
                    "  latency       {}  from the send",
                    percentiles(&s.latency_ms)
                );
                let _ = writeln!(
                    o,
                    "  from schedule {}  from each request's scheduled start (--rate): a stall that delayed sends counts",
                    percentiles(scheduled)
                );
            }
        }
    }
    let c = &s.connections;
    let _ = writeln!(
        o,
        "  connections   opened {}, reused {} ({:.1}% of requests), closed {}, peak open {}, open at end {}{}",
        thousands(c.opened),
        thousands(c.reused),
        c.reuse_ratio * 100.0,
        thousands(c.closed_total),
        c.peak_open,
        c.open_end,
        if c.retries > 0 {
            format!(", retries {}", c.retries)
        } else {
            String::new()
        }
    );
    if !c.closed.is_empty() {
        let by: Vec<String> = c
            .closed
            .iter()
            .map(|(r, n)| format!("{r} {}", thousands(*n)))
            .collect();
        let _ = writeln!(o, "    closed by   {}", by.join(", "));
    }
    if !s.sockets_end.is_empty() {
        let _ = writeln!(o, "  sockets left  {}", states(named(&s.sockets_end)));
    }
    if let Some(server) = &s.server_sockets_end {
        let _ = writeln!(o, "    server side {}", states(named(server)));
    }
    if let Some(hint) = churn_hint(s) {
        let _ = writeln!(o, "\n  {hint}");
    }
    for w in &s.warnings {
        let _ = writeln!(o, "  warning: {w}");
    }
    o
}

/// `p50 1.06ms  p90 …  max 20.57ms  (mean 1.23ms)`.
fn percentiles(l: &Latency) -> String {
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {})",
        ms(l.p50),
        ms(l.p90),
        ms(l.p99),
        ms(l.p999),
        ms(l.max),
        ms(l.mean)
    )
}

/// The seed's lesson, said where it shows: many connections for few
/// requests each.
fn churn_hint(s: &Summary) -> Option<String> {
    let c = &s.connections;
    if c.opened < 100 || c.reuse_ratio > 0.9 {
        return None;
    }
    let tw = s.sockets_end.get("TIME_WAIT").copied().unwrap_or(0);
    let server_tw = s
        .server_sockets_end
        .as_ref()
        .and_then(|m| m.get("TIME_WAIT").copied())
        .unwrap_or(0);
    let cause = if s.settings.disable_keep_alives {
        "keep-alives are disabled".to_string()
    } else if let Some(&n) = c.closed.get("pool_full") {
        format!(
            "{} connections were closed because the idle cap was full: raise --max-idle-per-host (Go's default of 2 does this)",
            thousands(n)
        )
    } else {
        "the server or the settings close connections early; see \"closed by\"".to_string()
    };
    let server = if server_tw > 0 {
        format!(
            " (+ {} on the server's side)",
            thousands(u64::from(server_tw))
        )
    } else {
        String::new()
    };
    Some(format!(
        "churn: {} connections for {} requests, {} TIME_WAIT left{server}; {cause}",
        thousands(c.opened),
        thousands(s.requests),
        thousands(u64::from(tw))
    ))
}

/// A state map as [`states`] takes it.
fn named(m: &BTreeMap<String, u32>) -> impl Iterator<Item = (&str, u32)> {
    m.iter().map(|(k, n)| (k.as_str(), *n))
}
