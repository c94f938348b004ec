//! STALE_POOL: a set of CLOSE_WAIT sockets that does not grow: a pool
//! keeping connections the server already closed. Estimates the server's
//! keep-alive from sockets seen going idle-ESTABLISHED -> CLOSE_WAIT and
//! suggests an idle timeout below it.

use std::collections::BTreeMap;

use super::{Kind, MIN_SPAN_S, Verdict, dead_sockets, pct};
use crate::duration::human;
use crate::sockets::TcpState;
use crate::watch::series::{EndpointSeries, Point, Window};

pub const STALE_PRESENT: f64 = 0.25;

pub fn pool(w: &Window<'_>, s: &EndpointSeries) -> Option<Verdict> {
    let last = w.last()?;
    // FD_ONLY sockets count with CLOSE_WAIT: dead connections still held.
    let present = w.present(Point::dead);
    if w.span() < MIN_SPAN_S || present < STALE_PRESENT {
        return None;
    }
    let now = last.dead();
    let max = w.max(Point::dead);
    let turned = w.cw_ended.len();
    let mut numbers = BTreeMap::new();
    numbers.insert("close_wait", f64::from(last.get(TcpState::CloseWait)));
    numbers.insert("fd_only", f64::from(last.fd_only));
    numbers.insert("close_wait_max", f64::from(max));
    numbers.insert("present_share", present);
    numbers.insert("turned_over", turned as f64);
    numbers.insert("window_s", w.span());
    let growth = i64::from(now) - i64::from(w.first().map_or(0, Point::dead));
    let flat = growth.abs() <= 2;
    let trend = if flat {
        "flat".to_string()
    } else {
        format!("{growth:+} over the window, not a steady rise")
    };
    let mut evidence = vec![format!(
        "CLOSE_WAIT{} in {} of samples over {}, {now} now, at most {max}, {trend}",
        if last.fd_only > 0 { " or FD_ONLY" } else { "" },
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
        state: Some("CLOSE_WAIT"),
        summary: format!(
            "{} (at most {max}), {}: an idle pool keeps connections the server already closed",
            dead_sockets(last),
            if flat { "flat" } else { "not growing" }
        ),
        evidence,
        numbers,
        advice: Some(advice),
        ..Verdict::default()
    })
}
