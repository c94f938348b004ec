//! From measurements to settings, each with the evidence beside it. The
//! rules are the seed's advice made arithmetic: size the pool from the
//! server's capacity (the knee) and our resources (the fd limit), keep idle
//! connections shorter than the server does, and set timeouts from the
//! latency actually seen, never below a floor.

use std::time::Duration;

use serde::Serialize;

use super::knee::Knee;
use super::probe::Probe;
use super::step::Step;

/// response_header_timeout = p99.9 at the knee × this: a slow tail is
/// waited for, a hung server is not.
pub const HEADER_MULTIPLIER: f64 = 4.0;
/// …and never below this: a sweep on a quiet machine sees latencies a
/// busy production day will not.
pub const HEADER_FLOOR: Duration = Duration::from_secs(1);
/// A slow link the total timeout still lets a body through at.
pub const SLOW_LINK_BYTES_PER_S: f64 = 1024.0 * 1024.0;
/// File descriptors kept for everything else the process opens.
pub const FD_RESERVE: u64 = 64;
/// Used when the server kept idle connections for all of --probe-max (or
/// the probe was skipped): Go's and leakless's default.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(90);

#[derive(Clone, Debug, Serialize)]
pub struct Setting<T> {
    pub value: T,
    /// The measurements behind the value, in one line.
    pub evidence: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Advice {
    pub max_conns_per_host: Setting<usize>,
    pub max_idle_conns_per_host: Setting<usize>,
    /// Seconds.
    pub idle_conn_timeout_s: Setting<f64>,
    pub response_header_timeout_s: Setting<f64>,
    pub timeout_s: Setting<f64>,
    pub http2: Setting<bool>,
    /// The soft RLIMIT_NOFILE this process runs under.
    pub fd_limit: Option<u64>,
}

/// The soft limit on open files (getrlimit), `None` when unlimited.
pub fn fd_limit() -> Option<u64> {
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `rlimit` through a valid pointer.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) };
    (rc == 0 && r.rlim_cur != libc::RLIM_INFINITY).then_some(r.rlim_cur)
}

/// Rounds seconds up to a value a person would type: 100 ms steps below
/// 10 s, whole seconds above.
pub fn round_up(s: f64) -> f64 {
    if s < 10.0 {
        (s * 10.0).ceil() / 10.0
    } else {
        s.ceil()
    }
}

/// Rounds down likewise (the idle timeout must stay under the server's).
fn round_down(s: f64) -> f64 {
    if s < 10.0 {
        (s * 10.0 + 1e-9).floor() / 10.0
    } else {
        (s + 1e-9).floor()
    }
}

/// The margin kept under the server's idle timeout: a second (requests
/// take time to reach the server, clocks tick apart), a fifth of long
/// timeouts, and never more than half of a short one.
pub fn idle_margin(server: f64) -> f64 {
    (server * 0.2).max(1.0).min(server * 0.5)
}

pub fn advise(
    steps: &[Step],
    knee: &Knee,
    probe: Option<&Probe>,
    headroom: f64,
    fds: Option<u64>,
) -> Advice {
    let knee_step = steps.iter().find(|s| s.concurrency == knee.concurrency);

    let wanted = ((knee.concurrency as f64) * headroom.max(1.0)).ceil() as usize;
    let (cap, cap_why) = match fds {
        Some(limit) if (wanted as u64) + FD_RESERVE > limit => (
            limit.saturating_sub(FD_RESERVE).max(1) as usize,
            format!(
                "knee {} × headroom {headroom} = {wanted}, capped by the fd limit {limit} less {FD_RESERVE} for other files",
                knee.concurrency
            ),
        ),
        _ => (
            wanted,
            format!(
                "knee {} × headroom {headroom} (fd limit {}); {}",
                knee.concurrency,
                fds.map_or("unlimited".to_string(), |l| l.to_string()),
                knee.why
            ),
        ),
    };

    let (idle, idle_why) = idle_timeout(probe);

    let p999 = knee_step.map_or(0.0, |s| s.p999_ms) / 1000.0;
    let header = round_up((p999 * HEADER_MULTIPLIER).max(HEADER_FLOOR.as_secs_f64()));
    let header_why = format!(
        "p99.9 at the knee {:.1}ms × {HEADER_MULTIPLIER}, floor {}s",
        p999 * 1000.0,
        HEADER_FLOOR.as_secs()
    );

    let body = steps.iter().map(|s| s.body_bytes_avg).fold(0.0, f64::max);
    let body_s = body / SLOW_LINK_BYTES_PER_S;
    let total = round_up(header + (body_s * 2.0).max(1.0));
    let total_why = format!(
        "header timeout {header}s + body time: the largest average body {body:.0} B takes {:.0}ms at 1 MiB/s, × 2, at least 1s",
        body_s * 1000.0
    );

    let versions: Vec<&str> = steps
        .iter()
        .flat_map(|s| s.versions.iter().map(String::as_str))
        .collect();
    let h2 = versions.contains(&"HTTP/2");
    let h2_why = if h2 {
        "the server answered over HTTP/2: one connection carries many streams (max streams not measured; the pool opens more connections when the server refuses streams)".to_string()
    } else {
        format!(
            "responses were {}: keep HTTP/1.1, one request per connection at a time",
            if versions.is_empty() {
                "none".to_string()
            } else {
                dedup(versions).join(", ")
            }
        )
    };

    Advice {
        max_conns_per_host: Setting {
            value: cap,
            evidence: cap_why,
        },
        max_idle_conns_per_host: Setting {
            value: cap,
            evidence: "= max_conns_per_host, so a burst's connections stay for the next one instead of closing and re-dialing".into(),
        },
        idle_conn_timeout_s: Setting {
            value: idle,
            evidence: idle_why,
        },
        response_header_timeout_s: Setting {
            value: header,
            evidence: header_why,
        },
        timeout_s: Setting {
            value: total,
            evidence: total_why,
        },
        http2: Setting {
            value: h2,
            evidence: h2_why,
        },
        fd_limit: fds,
    }
}

fn dedup(mut v: Vec<&str>) -> Vec<&str> {
    v.sort_unstable();
    v.dedup();
    v
}

/// Under the server's idle timeout by [`idle_margin`]: the client then
/// drops an idle connection before the server does, and never sends a
/// request into a connection the server is closing.
fn idle_timeout(probe: Option<&Probe>) -> (f64, String) {
    let default = DEFAULT_IDLE.as_secs_f64();
    let Some(p) = probe else {
        return (default, "not probed: the common default".into());
    };
    let measured = p.idle.as_ref().and_then(|i| i.timeout_s);
    let advertised = p.advertised_timeout_s;
    // The smaller of what the server says and what it does.
    let server = match (measured, advertised) {
        (Some(m), Some(a)) => Some(m.min(a)),
        (m, a) => m.or(a),
    };
    let Some(server) = server else {
        let kept = p.idle.as_ref().map_or(0.0, |i| i.probe_max_s);
        let v = round_down(kept.min(default));
        return (
            v,
            format!(
                "the server kept an idle connection for all of --probe-max ({kept}s) and advertises no timeout"
            ),
        );
    };
    let margin = idle_margin(server);
    let v = round_down(server - margin).max(0.1);
    let seen = match (measured, advertised) {
        (Some(m), Some(a)) => {
            format!("server closes idle connections after {m:.2}s (advertises timeout={a})")
        }
        (Some(m), None) => {
            format!("server closes idle connections after {m:.2}s (no Keep-Alive header)")
        }
        (None, Some(a)) => format!("server advertises Keep-Alive: timeout={a} (not measured)"),
        (None, None) => unreachable!("server is Some"),
    };
    (v, format!("{seen}; {margin:.1}s below it"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tune::knee::find;
    use crate::tune::probe::Idle;
    use crate::tune::step::fake;

    fn probe(measured: Option<f64>, advertised: Option<f64>) -> Probe {
        Probe {
            advertised_timeout_s: advertised,
            idle: Some(Idle {
                timeout_s: measured,
                survived_s: measured,
                closed_by_s: measured.map(|m| m + 0.1),
                fin_after_s: None,
                probe_max_s: 75.0,
                trials: 10,
            }),
            ..Probe::default()
        }
    }

    #[test]
    fn idle_stays_under_the_server() {
        assert_eq!(idle_timeout(Some(&probe(Some(2.0), None))).0, 1.0);
        assert_eq!(idle_timeout(Some(&probe(Some(3.4), Some(3.0)))).0, 2.0);
        assert_eq!(idle_timeout(Some(&probe(Some(75.0), None))).0, 60.0);
        assert_eq!(idle_timeout(Some(&probe(Some(0.5), None))).0, 0.2);
        assert_eq!(idle_timeout(Some(&probe(None, None))).0, 75.0);
        assert_eq!(idle_timeout(None).0, 90.0);
    }

    #[test]
    fn cap_from_knee_and_fds() {
        let steps: Vec<Step> = [1u32, 2, 4, 8, 16]
            .iter()
            .map(|&c| fake(c, c.min(8) as f64 * 50.0, 20.0 * (c as f64 / 8.0).max(1.0)))
            .collect();
        let k = find(&steps);
        let a = advise(&steps, &k, None, 1.5, Some(1024));
        assert_eq!(a.max_conns_per_host.value, 12);
        assert_eq!(a.max_idle_conns_per_host.value, 12);
        let a = advise(&steps, &k, None, 1.5, Some(70));
        assert_eq!(a.max_conns_per_host.value, 6);
        // p99.9 30 ms × 4 is under the floor.
        assert_eq!(a.response_header_timeout_s.value, 1.0);
        assert!(!a.http2.value);
    }
}
