//! The text report: throughput and latency like wrk and oha, then what they
//! do not say: connections opened, reused and closed by reason, and the
//! sockets the run left behind.

use std::fmt::Write;

use super::summary::Summary;
use crate::duration::human;

/// `950`, `41.2k`, `1.30M`.
pub fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Milliseconds with sensible precision: `0.031ms`, `1.25ms`, `120ms`.
pub fn ms(x: f64) -> String {
    if x < 1.0 {
        format!("{x:.3}ms")
    } else if x < 100.0 {
        format!("{x:.2}ms")
    } else {
        format!("{x:.0}ms")
    }
}

fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", n / (1024.0 * 1024.0 * 1024.0))
    } else if n >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", n / (1024.0 * 1024.0))
    } else if n >= 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else {
        format!("{n} B")
    }
}

pub fn text(s: &Summary) -> String {
    let mut o = String::new();
    let set = &s.settings;
    let _ = writeln!(
        o,
        "leakless bench {}{}",
        s.url,
        if s.embedded_server {
            "  (embedded server)"
        } else {
            ""
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
        match set.protocol {
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
    let l = &s.latency_ms;
    if s.succeeded > 0 {
        let _ = writeln!(
            o,
            "  latency       p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {})",
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.p999),
            ms(l.max),
            ms(l.mean)
        );
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
        let _ = writeln!(o, "  sockets left  {}", states(&s.sockets_end));
    }
    if let Some(server) = &s.server_sockets_end {
        let _ = writeln!(o, "    server side {}", states(server));
    }
    if let Some(hint) = churn_hint(s) {
        let _ = writeln!(o, "\n  {hint}");
    }
    for w in &s.warnings {
        let _ = writeln!(o, "  warning: {w}");
    }
    o
}

/// `ESTABLISHED 50, TIME_WAIT 0, CLOSE_WAIT 0`, then any other state.
fn states(m: &std::collections::BTreeMap<String, u32>) -> String {
    const FIRST: [&str; 3] = ["ESTABLISHED", "TIME_WAIT", "CLOSE_WAIT"];
    let first = FIRST
        .iter()
        .filter_map(|k| m.get(*k).map(|n| format!("{k} {n}")));
    let rest = m
        .iter()
        .filter(|(k, _)| !FIRST.contains(&k.as_str()))
        .map(|(k, n)| format!("{k} {n}"));
    first.chain(rest).collect::<Vec<_>>().join(", ")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_forms() {
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(si(41234.0), "41.2k");
        assert_eq!(si(1_300_000.0), "1.30M");
        assert_eq!(si(950.0), "950");
        assert_eq!(ms(0.0314), "0.031ms");
        assert_eq!(ms(1.254), "1.25ms");
        assert_eq!(bytes(2048), "2.0 KiB");
    }
}
