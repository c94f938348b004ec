//! Verdicts: LEAK, STALE_POOL, CHURN or OK for one (process, endpoint), each
//! with the numbers behind it. Pure functions of an [`EndpointSeries`], so
//! the rules are tested on synthetic series as well as on real processes.
//! One file per rule: [`leak`], [`stale`], [`churn`]; [`judge`] tries them
//! in order.
//!
//! Rules, checked in this order (the first that holds wins):
//! 1. LEAK (CLOSE_WAIT): at least [`leak::LEAK_MIN`] CLOSE_WAIT sockets, and
//!    those that persist (in CLOSE_WAIT for 3 s and more, across samples)
//!    rising as a trend ([`sustained`]): up by [`leak::LEAK_MIN_GROWTH`],
//!    new highs spread over the window and still coming late in it. Sockets
//!    that turn over (a stale pool recycling) do not count, and one step
//!    then a plateau (a pool that opened a burst and holds it) is not growth.
//! 2. LEAK (ESTABLISHED): ESTABLISHED rising just as sustainedly by
//!    [`leak::LEAK_EST_GROWTH`] (and 20%), closes at most
//!    [`leak::EST_MAX_CLOSE_SHARE`] of opens, and of the sockets older than
//!    5 s, 80% sat idle for 80% of their life with the longest idle past
//!    [`leak::HELD_IDLE_S`]: opened, used once, never reused. A healthy pool
//!    reuses its connections, so their idle times stay short; that is what
//!    keeps a growing healthy pool from ever being called LEAK.
//! 3. STALE_POOL: CLOSE_WAIT present in [`stale::STALE_PRESENT`] of the
//!    samples and not rising as a trend: a pool keeping connections the
//!    server closed.
//! 4. CHURN: at least [`churn::CHURN_RATE`] connections/s closed (seen
//!    going, new TIME_WAIT, or ended as the kernel's events counted them)
//!    while each lives under [`churn::CHURN_LIFETIME_S`] (the events' mean
//!    lifetime, else Little's law: open / rate): no keep-alive reuse.
//!
//! Windows: the last [`SHORT_WINDOW_S`] seconds (fast detection; the last
//! [`MIN_POINTS`] samples where a busy host samples slower) and, for
//! LEAK, also all history (slow leaks, staircases). Nothing is judged before
//! [`MIN_SPAN_S`] seconds and [`MIN_POINTS`] samples.

mod churn;
mod leak;
mod stale;

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::series::{CW_OLD_S, Endpoint, EndpointSeries, HISTORY_S, Point, Rise, Window};
use crate::duration::human;
use crate::sockets::TcpState;

pub const SHORT_WINDOW_S: f64 = 10.0;
pub const STALE_WINDOW_S: f64 = 20.0;
pub const MIN_SPAN_S: f64 = 4.0;
pub const MIN_POINTS: usize = 5;
/// Share of sample-to-sample steps that must rise or stay flat for growth.
pub const STEADY: f64 = 0.7;
/// Growth is a trend only if its new highs spread over this share of the
/// window...
pub const HIGHS_SPREAD: f64 = 0.5;
/// ...and the last came in this last share of it (still rising).
pub const LAST_HIGH_WITHIN: f64 = 1.0 / 3.0;

/// Severity order: OK < CHURN < STALE_POOL < LEAK.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum Kind {
    #[default]
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

/// A verdict and its evidence. A rule fills in what it found; [`judge`]
/// adds the endpoint, and its caller the process.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Verdict {
    pub verdict: Kind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The socket state the verdict is about (CLOSE_WAIT, ESTABLISHED, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<&'static str>,
    /// Why, when the program itself says (a Go process's goroutines):
    /// `body-not-closed`, `no-response`, `handler-ignores-context`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<&'static str>,
    pub summary: String,
    pub evidence: Vec<String>,
    pub numbers: BTreeMap<&'static str, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advice: Option<String>,
}

impl Verdict {
    pub fn ok(summary: impl Into<String>) -> Verdict {
        Verdict {
            summary: summary.into(),
            ..Verdict::default()
        }
    }
}

/// The verdict as the report and `--fail-on` print it: a line with its
/// subject and summary, then its evidence and advice, indented.
impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut subject = vec![self.verdict.name().to_string()];
        subject.extend(self.cause.map(str::to_string));
        subject.extend(self.pid.map(|p| format!("pid {p}")));
        subject.extend(self.endpoint.clone());
        subject.extend(self.state.map(|s| format!("({s})")));
        writeln!(f, "{}: {}", subject.join(" "), self.summary)?;
        for e in &self.evidence {
            writeln!(f, "  - {e}")?;
        }
        if let Some(a) = &self.advice {
            writeln!(f, "  advice: {a}")?;
        }
        Ok(())
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
    // The last SHORT_WINDOW_S, or the last MIN_POINTS samples where they
    // span more: a host too busy to sample that often must still get a
    // verdict, not "collecting" for as long as it stays busy.
    let short = s.window(SHORT_WINDOW_S.max(s.span_of_last(MIN_POINTS)));
    if short.len() < MIN_POINTS || short.span() < MIN_SPAN_S - 1e-9 {
        let mut v = Verdict::ok(format!("collecting ({} samples so far)", short.len()));
        v.endpoint = Some(ep.to_string());
        return v;
    }
    let long = s.window(HISTORY_S);
    // Sockets persist in CLOSE_WAIT only CW_OLD_S after they enter it: no
    // new high of persisting ones can come earlier in a series.
    let persisting_from = s.points().next().map_or(0.0, |p| p.t) + CW_OLD_S;
    let mut v = leak::close_wait(&short, persisting_from, ctx)
        .or_else(|| {
            (long.len() > short.len())
                .then(|| leak::close_wait(&long, persisting_from, ctx))
                .flatten()
        })
        .or_else(|| leak::established(&short, s.has_times, ctx))
        .or_else(|| {
            (long.len() > short.len())
                .then(|| leak::established(&long, s.has_times, ctx))
                .flatten()
        })
        .or_else(|| match ep {
            Endpoint::Remote(_) | Endpoint::Unknown => stale::pool(&s.window(STALE_WINDOW_S), s),
            // A server with CLOSE_WAIT has no pool to blame; only LEAK applies.
            Endpoint::Inbound(_) => None,
        })
        .or_else(|| churn::judge(ep, &short, ctx))
        .unwrap_or_else(|| healthy(&short));
    v.endpoint = Some(ep.to_string());
    v
}

/// A rise that is a trend, not one step: up by `min` at least, upward in
/// slope and in [`STEADY`] of the steps, with new highs spread over
/// [`HIGHS_SPREAD`] of `span` (the part of the window where the quantity
/// could rise) and over [`MIN_SPAN_S`] at least, and the last within the
/// final [`LAST_HIGH_WITHIN`] of it (or half of [`MIN_SPAN_S`], so a busy
/// host's stalled sample does not end a leak). A pool that opened
/// connections in a burst, however ragged, and holds them is a step then a
/// plateau, and never passes.
pub(super) fn sustained(r: &Rise, span: f64, min: f64) -> bool {
    const EPS: f64 = 1e-9;
    r.growth >= min
        && r.slope > 0.0
        && r.steady >= STEADY
        && r.highs >= 2
        && r.highs_spread_s >= (HIGHS_SPREAD * span).max(MIN_SPAN_S) - EPS
        && r.since_last_high_s <= (LAST_HIGH_WITHIN * span).max(MIN_SPAN_S / 2.0) + EPS
}

pub(super) fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// "fd limit reached in ..." from the current growth rate.
pub(super) fn fd_projection(
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

/// "6 CLOSE_WAIT", or "4 CLOSE_WAIT + 2 FD_ONLY".
pub(super) fn dead_sockets(p: &Point) -> String {
    let cw = p.get(TcpState::CloseWait);
    if p.fd_only > 0 {
        format!("{cw} CLOSE_WAIT + {} FD_ONLY", p.fd_only)
    } else {
        format!("{cw} CLOSE_WAIT")
    }
}

#[cfg(test)]
mod tests;
