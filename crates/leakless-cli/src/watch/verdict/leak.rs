//! LEAK: sockets the program holds and never gives back, growing.
//!
//! CLOSE_WAIT: the peer closed, the program did not; judged on the sockets
//! that persist (3 s and more in CLOSE_WAIT), so a stale pool's turnover
//! beside a real leak neither hides nor fakes it. ESTABLISHED: connections
//! opened, used once and held, never closed or reused.

use std::collections::BTreeMap;

use super::{Ctx, Kind, Verdict, dead_sockets, fd_projection, pct, sustained};
use crate::duration::human;
use crate::sockets::TcpState;
use crate::watch::series::{Point, SockState, Window};

pub const LEAK_MIN: u32 = 5;
pub const LEAK_MIN_GROWTH: u32 = 3;
pub const LEAK_EST_GROWTH: u32 = 5;
pub const EST_MAX_CLOSE_SHARE: f64 = 0.1;
pub const HELD_SHARE: f64 = 0.8;
pub const HELD_IDLE_S: f64 = 8.0;
/// Idle longer than servers and pools commonly keep a connection
/// (nginx 75 s, Go's IdleConnTimeout 90 s).
pub const SANE_KEEPALIVE_S: f64 = 90.0;

fn est(p: &Point) -> f64 {
    f64::from(p.get(TcpState::Established))
}

/// Connections the peer closed, held: CLOSE_WAIT, and FD_ONLY (the kernel
/// dropped them once the peer reset them; the fds stay, and so does the
/// leak).
/// `persisting_from`: the earliest time a socket of the series can have
/// persisted in CLOSE_WAIT (its start plus
/// [`CW_OLD_S`](crate::watch::series::CW_OLD_S)).
pub fn close_wait(w: &Window<'_>, persisting_from: f64, ctx: &Ctx) -> Option<Verdict> {
    let (first, last) = (w.first()?, w.last()?);
    let span = last.t - first.t.max(persisting_from);
    let cw = last.get(TcpState::CloseWait);
    let fd_only = last.fd_only;
    let now = last.dead();
    // Judged on the persisting ones (in CLOSE_WAIT for 3 s or more, or
    // dropped by the kernel), so a stale pool's turnover beside a real leak
    // neither hides nor fakes it.
    let rise = w.rise(|p| f64::from(p.dead_held()));
    let persisting = last.dead_held();
    if now < LEAK_MIN
        || persisting < LEAK_MIN_GROWTH
        || !sustained(&rise, span, f64::from(LEAK_MIN_GROWTH))
    {
        return None;
    }
    let (growth, slope, steady) = (rise.growth as u32, rise.slope, rise.steady);
    let ended = w.cw_ended.len();
    let mut numbers = BTreeMap::new();
    numbers.insert("close_wait", f64::from(cw));
    numbers.insert("fd_only", f64::from(fd_only));
    numbers.insert("growth", f64::from(growth));
    numbers.insert("window_s", w.span());
    numbers.insert("slope_per_s", slope);
    numbers.insert("persisting", f64::from(persisting));
    numbers.insert("closed_in_window", ended as f64);
    numbers.insert("data_unread", f64::from(last.cw_unread));
    numbers.insert("fin_unread", f64::from(last.cw_fin));
    numbers.insert("eof_read_not_closed", f64::from(last.cw_eof));
    let held = dead_sockets(last);
    let mut evidence = vec![
        format!(
            "{held}; {persisting} of them persist across samples (3 s and more), up {growth} in {} ({slope:+.2}/s), rising or flat in {} of samples, new highs over {} and the last {} ago",
            human(w.span()),
            pct(steady),
            human(rise.highs_spread_s),
            human(rise.since_last_high_s)
        ),
        format!(
            "the peer closed them and the program never did ({ended} other CLOSE_WAIT closed in the window)"
        ),
    ];
    if fd_only > 0 {
        evidence.push(format!(
            "{fd_only} are FD_ONLY: the kernel no longer lists them (the peer reset them, e.g. after giving up on the half-closed connection), but the program still holds their file descriptors"
        ));
    }
    // The peer's FIN counts one byte in Recv-Q until the program reads EOF.
    if last.cw_unread > 0 {
        evidence.push(format!(
            "{} still hold unread data (Recv-Q > 1): the program stopped reading before EOF and kept the socket",
            last.cw_unread
        ));
    }
    if last.cw_fin > 0 {
        evidence.push(format!(
            "{} were read to the end of the data but never read the peer's FIN (Recv-Q 1): not touched since the peer closed, and never closed",
            last.cw_fin
        ));
    }
    if last.cw_eof > 0 {
        evidence.push(format!(
            "{} read EOF (Recv-Q 0: the data and the FIN were consumed) and were never closed",
            last.cw_eof
        ));
    }
    evidence.extend(fd_projection(ctx, slope, &mut numbers));
    Some(Verdict {
        verdict: Kind::Leak,
        state: Some(if cw >= fd_only {
            "CLOSE_WAIT"
        } else {
            SockState::FD_ONLY
        }),
        summary: format!("{held} and rising {slope:.2}/s: connections the peer closed are never closed here"),
        evidence,
        numbers,
        advice: Some(
            "close the socket when a read returns EOF or an error; with an HTTP client, read every response body to the end or drop/close it"
                .to_string(),
        ),
        ..Verdict::default()
    })
}

pub fn established(w: &Window<'_>, has_times: bool, ctx: &Ctx) -> Option<Verdict> {
    let (first, last) = (w.first()?, w.last()?);
    let now = last.get(TcpState::Established);
    let start = first.get(TcpState::Established);
    let rise = w.rise(est);
    let opens = w.sum_after_first(|p| p.opens);
    let closes = w.sum_after_first(|p| p.closes);
    if !sustained(&rise, w.span(), f64::from(LEAK_EST_GROWTH))
        || rise.growth < 0.2 * f64::from(start)
        || f64::from(closes) > EST_MAX_CLOSE_SHARE * f64::from(opens.max(1))
    {
        return None;
    }
    let (growth, slope) = (rise.growth as u32, rise.slope);
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
        state: Some("ESTABLISHED"),
        summary: format!("{now} ESTABLISHED and rising {slope:.2}/s, almost none closed, idle ones never reused"),
        evidence,
        numbers,
        advice: Some(
            "responses (or connections) are held and never returned: read each body to the end or drop it, and share one client"
                .to_string(),
        ),
        ..Verdict::default()
    })
}
