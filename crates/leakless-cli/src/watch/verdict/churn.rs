//! CHURN: many connections a second, each used briefly: no keep-alive reuse.
//! The rate is the largest of closes seen, new TIME_WAIT and, where the
//! kernel's connection events run, connections that ended (also those no
//! sample saw); each connection's life is the events' mean lifetime, else
//! Little's law (open / rate). The advice follows who closed first.

use std::collections::BTreeMap;

use super::{Ctx, Kind, Verdict, pct};
use crate::duration::human;
use crate::sockets::TcpState;
use crate::watch::churn_events::{self, WindowEvents};
use crate::watch::series::{Endpoint, Window};

pub const CHURN_RATE: f64 = 5.0;
pub const CHURN_LIFETIME_S: f64 = 5.0;
/// Linux keeps TIME_WAIT for a fixed 60 s (TCP_TIMEWAIT_LEN).
pub const TIME_WAIT_S: f64 = 60.0;

pub fn judge(ep: &Endpoint, w: &Window<'_>, ctx: &Ctx) -> Option<Verdict> {
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
    // Every connection, from the kernel's events where they run: samples
    // miss the ones that live less than an interval.
    let events = WindowEvents::of(w);
    let event_rate = events.map_or(0.0, |e| e.ended_per_s);
    // Closes, not opens: opening without closing is growth (a leak, or a
    // pool warming up), not churn.
    let rate = tw_rate.max(close_rate).max(event_rate);
    let live = w.mean(|p| f64::from(p.live()));
    let lifetime = events
        .and_then(|e| e.mean_lifetime_s())
        .unwrap_or(live / rate.max(1e-9));
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
    numbers.insert("window_s", w.span());
    let mut evidence = vec![format!(
        "{rate:.1} new connections/s (sampled: {open_rate:.1} opens/s, {close_rate:.1} closes/s, {tw_rate:.1} new TIME_WAIT/s) with {live:.1} open on average: each lives ~{}",
        human(lifetime)
    )];
    if let Some(e) = &events {
        e.numbers(&mut numbers);
        evidence.extend(e.evidence());
    }
    evidence.push(format!(
        "TIME_WAIT pile {tw_total}: {tw_attr} by 4-tuple this process owned, {tw_unattr} unattributed{}; {tw_total}/60 s ≈ {:.1} closes/s",
        if use_unattributed {
            " (counted: no other process holds connections there)"
        } else {
            " (not counted: other processes talk to the same remote)"
        },
        f64::from(tw_total) / TIME_WAIT_S
    ));
    if let Endpoint::Remote(_) = ep {
        let range = u32::from(ctx.port_range.1.saturating_sub(ctx.port_range.0)) + 1;
        let in_use = last.counts.total() + if use_unattributed { tw_unattr } else { 0 };
        // Only the connections this side closed first leave their TIME_WAIT
        // here, holding a local port; the events say which those were.
        let closed_here = events.map_or(rate, |e| e.local_first_per_s());
        let steady = (closed_here * TIME_WAIT_S).round();
        numbers.insert("local_ports_in_range", f64::from(range));
        numbers.insert("local_ports_in_use", f64::from(in_use));
        numbers.insert("local_ports_steady_state", steady);
        evidence.push(format!(
            "local ports to this remote: {in_use} of {range} in use ({}); at this rate of closes here with 60 s TIME_WAIT: {steady:.0} ({}) of ip_local_port_range {}-{}",
            pct(f64::from(in_use) / f64::from(range)),
            pct(steady / f64::from(range)),
            ctx.port_range.0,
            ctx.port_range.1
        ));
    }
    Some(Verdict {
        verdict: Kind::Churn,
        state: Some("TIME_WAIT"),
        summary: format!(
            "{rate:.1} new connections/s, each used ~{}: no keep-alive reuse",
            human(lifetime)
        ),
        evidence,
        numbers,
        advice: Some(churn_events::advice(events.and_then(|e| e.closer()))),
        ..Verdict::default()
    })
}
