//! Verdicts: LEAK, STALE_POOL, CHURN or OK for one (process, endpoint), each
//! with the numbers behind it. Pure functions of an [`EndpointSeries`], so
//! the rules are tested on synthetic series as well as on real processes.
//!
//! Rules, checked in this order (the first that holds wins):
//! 1. LEAK (CLOSE_WAIT): at least [`LEAK_MIN`] CLOSE_WAIT sockets, and those
//!    that persist (in CLOSE_WAIT for 3 s and more, across samples) up by at
//!    least [`LEAK_MIN_GROWTH`] over the window with a positive slope, rising
//!    or flat in [`STEADY`] of the steps. Sockets that turn over (a stale
//!    pool recycling) do not count.
//! 2. LEAK (ESTABLISHED): ESTABLISHED up by [`LEAK_EST_GROWTH`] (and 20%)
//!    just as steadily, closes at most [`EST_MAX_CLOSE_SHARE`] of opens, and
//!    of the sockets older than 5 s, 80% sat idle for 80% of their life with
//!    the longest idle past [`HELD_IDLE_S`]: opened, used once, never reused.
//!    A healthy pool reuses its connections, so their idle times stay short;
//!    that is what keeps a growing healthy pool from ever being called LEAK.
//! 3. STALE_POOL: CLOSE_WAIT present in [`STALE_PRESENT`] of the samples and
//!    not growing: a pool keeping connections the server closed.
//! 4. CHURN: at least [`CHURN_RATE`] connections/s closed (seen going, or new TIME_WAIT)
//!    while so few are open that each lives under [`CHURN_LIFETIME_S`]
//!    (Little's law: open / rate): no keep-alive reuse.
//!
//! Windows: the last [`SHORT_WINDOW_S`] seconds (fast detection) and, for
//! LEAK, also all history (slow leaks). Nothing is judged before
//! [`MIN_SPAN_S`] seconds and [`MIN_POINTS`] samples.

use std::collections::BTreeMap;

use serde::Serialize;

use super::series::{Endpoint, EndpointSeries, HISTORY_S, Point, Window};
use crate::duration::human;
use crate::sockets::TcpState;

pub const SHORT_WINDOW_S: f64 = 10.0;
pub const STALE_WINDOW_S: f64 = 20.0;
pub const MIN_SPAN_S: f64 = 4.0;
pub const MIN_POINTS: usize = 5;
pub const LEAK_MIN: u32 = 5;
pub const LEAK_MIN_GROWTH: u32 = 3;
pub const STEADY: f64 = 0.7;
pub const LEAK_EST_GROWTH: u32 = 5;
pub const EST_MAX_CLOSE_SHARE: f64 = 0.1;
pub const HELD_SHARE: f64 = 0.8;
pub const HELD_IDLE_S: f64 = 8.0;
/// Idle longer than servers and pools commonly keep a connection
/// (nginx 75 s, Go's IdleConnTimeout 90 s).
pub const SANE_KEEPALIVE_S: f64 = 90.0;
pub const STALE_PRESENT: f64 = 0.25;
pub const CHURN_RATE: f64 = 5.0;
pub const CHURN_LIFETIME_S: f64 = 5.0;
/// Linux keeps TIME_WAIT for a fixed 60 s (TCP_TIMEWAIT_LEN).
pub const TIME_WAIT_S: f64 = 60.0;

/// Severity order: OK < CHURN < STALE_POOL < LEAK.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Kind {
    #[serde(rename = "OK")]
    Ok,
    #[serde(rename = "CHURN")]
    Churn,
    #[serde(rename = "STALE_POOL")]
    StalePool,
    #[serde(rename = "LEAK")]
    Leak,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Ok, Kind::Churn, Kind::StalePool, Kind::Leak];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Ok => "OK",
            Kind::Churn => "CHURN",
            Kind::StalePool => "STALE_POOL",
            Kind::Leak => "LEAK",
        }
    }
}

/// A verdict and its evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Verdict {
    pub verdict: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The socket state the verdict is about (CLOSE_WAIT, ESTABLISHED, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
    pub summary: String,
    pub evidence: Vec<String>,
    pub numbers: BTreeMap<&'static str, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

impl Verdict {
    pub fn ok(summary: impl Into<String>) -> Verdict {
        Verdict {
            verdict: Kind::Ok,
            pid: None,
            endpoint: None,
            state: None,
            summary: summary.into(),
            evidence: Vec::new(),
            numbers: BTreeMap::new(),
            advice: None,
        }
    }
}

/// What the rules need besides the series.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    pub fds_open: Option<u32>,
    pub fd_limit: Option<u64>,
    /// `ip_local_port_range`, inclusive.
    pub port_range: (u16, u16),
    /// Another process (or one we cannot read) holds connections to the same
    /// remote, so unattributed TIME_WAIT may be theirs.
    pub others_on_remote: bool,
}

/// Judges one endpoint.
pub fn judge(ep: &Endpoint, s: &EndpointSeries, ctx: &Ctx) -> Verdict {
    let short = s.window(SHORT_WINDOW_S);
    if short.len() < MIN_POINTS || short.span() < MIN_SPAN_S - 1e-9 {
        let mut v = Verdict::ok(format!("collecting ({} samples so far)", short.len()));
        v.endpoint = Some(ep.to_string());
        return v;
    }
    let long = s.window(HISTORY_S);
    let mut v = leak_close_wait(&short, ctx)
        .or_else(|| {
            (long.len() > short.len())
                .then(|| leak_close_wait(&long, ctx))
                .flatten()
        })
        .or_else(|| leak_established(&short, s.has_times, ctx))
        .or_else(|| {
            (long.len() > short.len())
                .then(|| leak_established(&long, s.has_times, ctx))
                .flatten()
        })
        .or_else(|| match ep {
            Endpoint::Remote(_) => stale_pool(&s.window(STALE_WINDOW_S), s),
            // A server with CLOSE_WAIT has no pool to blame; only LEAK applies.
            Endpoint::Inbound(_) => None,
        })
        .or_else(|| churn(ep, &short, ctx))
        .unwrap_or_else(|| healthy(&short));
    v.endpoint = Some(ep.to_string());
    v
}

fn est(p: &Point) -> f64 {
    f64::from(p.get(TcpState::Established))
}

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// "fd limit reached in ..." from the current growth rate.
fn fd_projection(
    ctx: &Ctx,
    per_s: f64,
    numbers: &mut BTreeMap<&'static str, f64>,
) -> Option<String> {
    let (open, limit) = (ctx.fds_open?, ctx.fd_limit?);
    numbers.insert("fds_open", f64::from(open));
    numbers.insert("fd_limit", limit as f64);
    if per_s <= 0.0 {
        return None;
    }
    let left = (limit as f64 - f64::from(open)).max(0.0);
    let eta = left / per_s;
    numbers.insert("fd_limit_eta_s", eta);
    Some(format!(
        "{open} of {limit} file descriptors in use: the limit is reached in ~{} at {per_s:.2}/s",
        human(eta)
    ))
}

fn leak_close_wait(w: &Window<'_>, ctx: &Ctx) -> Option<Verdict> {
    let (first, last) = (w.first()?, w.last()?);
    let now = last.get(TcpState::CloseWait);
    // Judged on the persisting ones (in CLOSE_WAIT for 3 s or more), so a
    // stale pool's turnover beside a real leak neither hides nor fakes it.
    let old = |p: &Point| f64::from(p.cw_old);
    let persisting = last.cw_old;
    let growth = persisting.saturating_sub(first.cw_old);
    let slope = w.slope(old);
    let steady = w.rising_steps(old);
    let ended = w.cw_ended.len();
    if now < LEAK_MIN
        || persisting < LEAK_MIN_GROWTH
        || growth < LEAK_MIN_GROWTH
        || slope <= 0.0
        || steady < STEADY
    {
        return None;
    }
    let mut numbers = BTreeMap::new();
    numbers.insert("close_wait", f64::from(now));
    numbers.insert("growth", f64::from(growth));
    numbers.insert("window_s", w.span());
    numbers.insert("slope_per_s", slope);
    numbers.insert("persisting", f64::from(persisting));
    numbers.insert("closed_in_window", ended as f64);
    numbers.insert("fin_unread", f64::from(last.cw_unread));
    numbers.insert("eof_read_not_closed", f64::from(last.cw_eof));
    let mut evidence = vec![
        format!(
            "{now} CLOSE_WAIT; {persisting} of them persist across samples (3 s and more), up {growth} in {} ({slope:+.2}/s), rising or flat in {} of samples",
            human(w.span()),
            pct(steady)
        ),
        format!(
            "the peer closed them and the program never did ({ended} other CLOSE_WAIT closed in the window)"
        ),
    ];
    if last.cw_unread > 0 {
        evidence.push(format!(
            "{} never read the peer's FIN (Recv-Q > 0): the program stopped reading before EOF and kept the socket",
            last.cw_unread
        ));
    }
    if last.cw_eof > 0 {
        evidence.push(format!(
            "{} have nothing left to read (Recv-Q 0: the data and the FIN were consumed) and were never closed",
            last.cw_eof
        ));
    }
    evidence.extend(fd_projection(ctx, slope, &mut numbers));
    Some(Verdict {
        verdict: Kind::Leak,
        pid: None,
        endpoint: None,
        state: Some("CLOSE_WAIT"),
        summary: format!("{now} CLOSE_WAIT and rising {slope:.2}/s: connections the peer closed are never closed here"),
        evidence,
        numbers,
        advice: Some(
            "close the socket when a read returns EOF or an error; with an HTTP client, read every response body to the end or drop/close it"
                .to_string(),
        ),
    })
}

fn leak_established(w: &Window<'_>, has_times: bool, ctx: &Ctx) -> Option<Verdict> {
    let (first, last) = (w.first()?, w.last()?);
    let now = last.get(TcpState::Established);
    let start = first.get(TcpState::Established);
    let growth = now.saturating_sub(start);
    let slope = w.slope(est);
    let steady = w.rising_steps(est);
    let opens = w.sum_after_first(|p| p.opens);
    let closes = w.sum_after_first(|p| p.closes);
    if growth < LEAK_EST_GROWTH
        || f64::from(growth) < 0.2 * f64::from(start)
        || slope <= 0.0
        || steady < STEADY
        || f64::from(closes) > EST_MAX_CLOSE_SHARE * f64::from(opens.max(1))
    {
        return None;
    }
    let max_idle = last.max_idle_s.unwrap_or(0.0);
    if has_times {
        if last.est_old < 3
            || f64::from(last.est_held) < HELD_SHARE * f64::from(last.est_old)
            || max_idle < HELD_IDLE_S
        {
            return None;
        }
    } else if growth < 2 * LEAK_EST_GROWTH {
        // No idle times (the /proc source): ask for more growth instead.
        return None;
    }
    let mut numbers = BTreeMap::new();
    numbers.insert("established", f64::from(now));
    numbers.insert("growth", f64::from(growth));
    numbers.insert("window_s", w.span());
    numbers.insert("slope_per_s", slope);
    numbers.insert("opened", f64::from(opens));
    numbers.insert("closed", f64::from(closes));
    let mut evidence = vec![format!(
        "{now} ESTABLISHED, up {growth} in {} ({slope:+.2}/s): {opens} opened, {closes} closed",
        human(w.span())
    )];
    if has_times {
        numbers.insert("held_idle", f64::from(last.est_held));
        numbers.insert("older_than_5s", f64::from(last.est_old));
        numbers.insert("max_idle_s", max_idle);
        evidence.push(format!(
            "{} of {} sockets older than 5 s sat idle for most of their life (longest {}): used once, never reused",
            last.est_held,
            last.est_old,
            human(max_idle)
        ));
        if max_idle >= SANE_KEEPALIVE_S {
            evidence.push(format!(
                "idle past any sane keep-alive (servers and pools keep idle connections for {} at most)",
                human(SANE_KEEPALIVE_S)
            ));
        }
    } else {
        evidence.push("idle times unknown (no tcp_info on the /proc source)".to_string());
    }
    if last.est_unread > 0 {
        numbers.insert("recv_q_unread", f64::from(last.est_unread));
        evidence.push(format!(
            "{} hold unread bytes in Recv-Q: responses never read to the end",
            last.est_unread
        ));
    }
    evidence.extend(fd_projection(ctx, slope, &mut numbers));
    Some(Verdict {
        verdict: Kind::Leak,
        pid: None,
        endpoint: None,
        state: Some("ESTABLISHED"),
        summary: format!("{now} ESTABLISHED and rising {slope:.2}/s, almost none closed, idle ones never reused"),
        evidence,
        numbers,
        advice: Some(
            "responses (or connections) are held and never returned: read each body to the end or drop it, and share one client"
                .to_string(),
        ),
    })
}

fn stale_pool(w: &Window<'_>, s: &EndpointSeries) -> Option<Verdict> {
    let last = w.last()?;
    let present = w.present(|p| p.get(TcpState::CloseWait));
    if w.span() < MIN_SPAN_S || present < STALE_PRESENT {
        return None;
    }
    let now = last.get(TcpState::CloseWait);
    let max = w.max(|p| p.get(TcpState::CloseWait));
    let turned = w.cw_ended.len();
    let mut numbers = BTreeMap::new();
    numbers.insert("close_wait", f64::from(now));
    numbers.insert("close_wait_max", f64::from(max));
    numbers.insert("present_share", present);
    numbers.insert("turned_over", turned as f64);
    numbers.insert("window_s", w.span());
    let growth = i64::from(now) - i64::from(w.first().map_or(0, |p| p.get(TcpState::CloseWait)));
    let trend = if growth.abs() <= 2 {
        "flat".to_string()
    } else {
        format!("{growth:+} over the window")
    };
    let mut evidence = vec![format!(
        "CLOSE_WAIT in {} of samples over {}, {now} now, at most {max}, {trend}",
        pct(present),
        human(w.span())
    )];
    if turned > 0 {
        let mean = w.cw_ended.iter().map(|e| e.ended - e.since).sum::<f64>() / turned as f64;
        numbers.insert("close_wait_mean_life_s", mean);
        evidence.push(format!(
            "{turned} turned over (closed after ~{} in CLOSE_WAIT, then replaced): the pool found them dead only on reuse",
            human(mean)
        ));
    } else {
        evidence.push("none turned over yet: the pool is idle and still holds them".to_string());
    }
    let ka = s.keepalive;
    let suggest = match (ka.lo, ka.hi) {
        (Some(lo), Some(hi)) if lo <= hi => {
            numbers.insert("server_keepalive_lo_s", lo);
            numbers.insert("server_keepalive_hi_s", hi);
            evidence.push(format!(
                "the server closes connections idle between {} and {} (seen on {} sockets)",
                human(lo),
                human(hi),
                ka.samples
            ));
            Some(lo * 0.8)
        }
        (_, Some(hi)) => {
            numbers.insert("server_keepalive_hi_s", hi);
            evidence.push(format!(
                "the server closes connections idle for {} or less",
                human(hi)
            ));
            Some(hi * 0.5)
        }
        _ => None,
    };
    let advice = match suggest {
        Some(t) => {
            let t = t.max(0.1);
            numbers.insert("suggested_idle_timeout_s", t);
            format!(
                "set the pool's idle timeout below the server's, e.g. {} (leakless idle_conn_timeout, Go IdleConnTimeout, reqwest pool_idle_timeout)",
                human(t)
            )
        }
        None => "set the pool's idle timeout shorter than the server's keep-alive, and evict connections the peer has closed".to_string(),
    };
    Some(Verdict {
        verdict: Kind::StalePool,
        pid: None,
        endpoint: None,
        state: Some("CLOSE_WAIT"),
        summary: format!(
            "{now} CLOSE_WAIT (at most {max}), flat: an idle pool keeps connections the server already closed"
        ),
        evidence,
        numbers,
        advice: Some(advice),
    })
}

fn churn(ep: &Endpoint, w: &Window<'_>, ctx: &Ctx) -> Option<Verdict> {
    let last = w.last()?;
    let use_unattributed = !ctx.others_on_remote;
    let tw_rate = w.rate(|p| {
        p.tw_new_attributed
            + if use_unattributed {
                p.tw_new_unattributed
            } else {
                0
            }
    });
    let close_rate = w.rate(|p| p.closes);
    let open_rate = w.rate(|p| p.opens);
    // Closes, not opens: opening without closing is growth (a leak, or a
    // pool warming up), not churn.
    let rate = tw_rate.max(close_rate);
    let live = w.mean(|p| f64::from(p.live()));
    let lifetime = live / rate.max(1e-9);
    if rate < CHURN_RATE || lifetime > CHURN_LIFETIME_S {
        return None;
    }
    let tw_attr = last.get(TcpState::TimeWait);
    let tw_unattr = last.tw_unattributed;
    let tw_total = tw_attr + if use_unattributed { tw_unattr } else { 0 };
    let mut numbers = BTreeMap::new();
    numbers.insert("connections_per_s", rate);
    numbers.insert("opens_seen_per_s", open_rate);
    numbers.insert("closes_seen_per_s", close_rate);
    numbers.insert("time_wait_new_per_s", tw_rate);
    numbers.insert("open_mean", live);
    numbers.insert("mean_lifetime_s", lifetime);
    numbers.insert("time_wait_attributed", f64::from(tw_attr));
    numbers.insert("time_wait_unattributed", f64::from(tw_unattr));
    let mut evidence = vec![
        format!(
            "{rate:.1} new connections/s (seen: {open_rate:.1} opens/s, {close_rate:.1} closes/s, {tw_rate:.1} new TIME_WAIT/s) with {live:.1} open on average: each lives ~{}",
            human(lifetime)
        ),
        format!(
            "TIME_WAIT pile {tw_total}: {tw_attr} by 4-tuple this process owned, {tw_unattr} unattributed{}; {tw_total}/60 s ≈ {:.1} closes/s",
            if use_unattributed {
                " (counted: no other process holds connections there)"
            } else {
                " (not counted: other processes talk to the same remote)"
            },
            f64::from(tw_total) / TIME_WAIT_S
        ),
    ];
    if let Endpoint::Remote(_) = ep {
        let range = u32::from(ctx.port_range.1.saturating_sub(ctx.port_range.0)) + 1;
        let in_use = last.counts.total() + if use_unattributed { tw_unattr } else { 0 };
        let steady = (rate * TIME_WAIT_S).round();
        numbers.insert("local_ports_in_range", f64::from(range));
        numbers.insert("local_ports_in_use", f64::from(in_use));
        numbers.insert("local_ports_steady_state", steady);
        evidence.push(format!(
            "local ports to this remote: {in_use} of {range} in use ({}); at this rate with 60 s TIME_WAIT: {steady:.0} ({}) of ip_local_port_range {}-{}",
            pct(f64::from(in_use) / f64::from(range)),
            pct(steady / f64::from(range)),
            ctx.port_range.0,
            ctx.port_range.1
        ));
    }
    Some(Verdict {
        verdict: Kind::Churn,
        pid: None,
        endpoint: None,
        state: Some("TIME_WAIT"),
        summary: format!("{rate:.1} new connections/s, each used ~{}: no keep-alive reuse", human(lifetime)),
        evidence,
        numbers,
        advice: Some(
            "reuse connections: share one client with keep-alive, don't create a client per request or send `Connection: close`, read bodies to the end so connections go back to the pool"
                .to_string(),
        ),
    })
}

fn healthy(w: &Window<'_>) -> Verdict {
    let last = w.last().cloned().unwrap_or_default();
    let mut v = Verdict::ok(format!(
        "{} open, {:.1} opens/s, {:.1} closes/s, no CLOSE_WAIT growth",
        last.live(),
        w.rate(|p| p.opens),
        w.rate(|p| p.closes)
    ));
    v.numbers.insert("open", f64::from(last.live()));
    v
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
