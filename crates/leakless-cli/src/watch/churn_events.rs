//! CHURN's evidence from connection events: over a window, how many
//! connections opened and ended per second, how long they lived, and who
//! closed first, which decides the advice (the fix differs when the server
//! is the one closing).

use std::collections::BTreeMap;

use super::conns::{BUCKET_LABELS, Lifetimes, Tally};
use super::series::Window;
use crate::duration::human;
use crate::sockets::lifecycle::Ending;

/// The events of a window, summed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct WindowEvents {
    pub opens_per_s: f64,
    pub ended_per_s: f64,
    pub total: Tally,
    pub span_s: f64,
}

impl WindowEvents {
    /// `None` when no event fell in the window (no event source, or nothing
    /// opened or ended): the rules then judge from samples alone.
    pub fn of(w: &Window<'_>) -> Option<WindowEvents> {
        let span_s = w.span();
        if span_s <= 0.0 {
            return None;
        }
        let mut total = Tally::default();
        // The first point's events happened before the window began.
        for p in w.points.iter().skip(1) {
            total.merge(&p.events);
        }
        if total.opens == 0 && total.ended() == 0 {
            return None;
        }
        Some(WindowEvents {
            opens_per_s: f64::from(total.opens) / span_s,
            ended_per_s: f64::from(total.ended()) / span_s,
            total,
            span_s,
        })
    }

    /// Connections a second whose first FIN was this side's (their
    /// TIME_WAIT is here).
    pub fn local_first_per_s(&self) -> f64 {
        f64::from(self.total.ends_by(Ending::LocalFirst)) / self.span_s
    }

    /// Connections that lived (a failed connect did not).
    fn lived(&self) -> u32 {
        self.total.ended() - self.total.ends_by(Ending::Failed)
    }

    /// Mean lifetime of the connections that ended, if any did.
    pub fn mean_lifetime_s(&self) -> Option<f64> {
        self.total.lifetimes.mean_s()
    }

    /// Who closed most of them first (more than half), if anyone did.
    pub fn closer(&self) -> Option<Ending> {
        let lived = self.lived();
        [Ending::PeerFirst, Ending::LocalFirst, Ending::Reset]
            .into_iter()
            .find(|e| 2 * self.total.ends_by(*e) > lived)
    }

    /// Numbers for the verdict's JSON.
    pub fn numbers(&self, numbers: &mut BTreeMap<&'static str, f64>) {
        let t = &self.total;
        numbers.insert("opens_per_s", self.opens_per_s);
        numbers.insert("closes_per_s", self.ended_per_s);
        numbers.insert("ended", f64::from(t.ended()));
        numbers.insert("ended_peer_first", f64::from(t.ends_by(Ending::PeerFirst)));
        numbers.insert(
            "ended_local_first",
            f64::from(t.ends_by(Ending::LocalFirst)),
        );
        numbers.insert("ended_reset", f64::from(t.ends_by(Ending::Reset)));
        numbers.insert("connect_failed", f64::from(t.ends_by(Ending::Failed)));
        if let Some(m) = self.mean_lifetime_s() {
            numbers.insert("lifetime_mean_s", m);
        }
        if let Some((_, upper)) = t.lifetimes.median_bucket() {
            if upper.is_finite() {
                numbers.insert("lifetime_median_below_s", upper);
            }
        }
    }

    /// Evidence lines: the counts, then the lifetimes.
    pub fn evidence(&self) -> Vec<String> {
        let t = &self.total;
        let lived = self.lived().max(1);
        let share =
            |e: Ending| format!("{:.0}%", 100.0 * f64::from(t.ends_by(e)) / f64::from(lived));
        let mut lines = vec![format!(
            "counted from kernel events (every connection, also those no sample saw): {:.1} opened/s, {:.1} ended/s over {}; first to close: the server {}, this side {}, reset {}{}",
            self.opens_per_s,
            self.ended_per_s,
            human(self.span_s),
            share(Ending::PeerFirst),
            share(Ending::LocalFirst),
            share(Ending::Reset),
            match t.ends_by(Ending::Failed) {
                0 => String::new(),
                n => format!("; {n} connects failed"),
            }
        )];
        if let (Some(mean), Some((median, _))) =
            (self.mean_lifetime_s(), t.lifetimes.median_bucket())
        {
            lines.push(format!(
                "lifetimes: median {median}, mean {}; {}",
                human(mean),
                histogram(&t.lifetimes)
            ));
        }
        lines
    }
}

/// `<1ms 812, 1-10ms 40`: the non-empty buckets.
pub fn histogram(l: &Lifetimes) -> String {
    let parts: Vec<String> = BUCKET_LABELS
        .iter()
        .zip(l.counts)
        .filter(|(_, c)| *c > 0)
        .map(|(b, c)| format!("{b} {c}"))
        .collect();
    parts.join(", ")
}

/// The advice for churn, by who closes first (`None`: unknown, from
/// samples alone).
pub fn advice(closer: Option<Ending>) -> String {
    match closer {
        Some(Ending::PeerFirst) => "the server closes each connection after one response (the client asks it to with `Connection: close`, or the server's keep-alive is off): turn keep-alive on and share one client (Node: one `new http.Agent({ keepAlive: true })` for all requests; Go: one http.Client whose Transport keeps DisableKeepAlives false; reqwest, leakless: one Client); if the client already keeps alive, raise the server's keepalive_timeout and keepalive_requests. The TIME_WAIT pile is on the server's side".to_string(),
        Some(Ending::LocalFirst) => "this program closes each connection after one request: share one client with keep-alive instead of one per request, and read each body to the end so the connection goes back to the pool; each close leaves a TIME_WAIT here holding a local port for 60 s".to_string(),
        Some(Ending::Reset) => "connections end in resets (an abortive close such as SO_LINGER 0, or the peer resetting them): reuse connections with keep-alive, close them gracefully, and check the peer's logs for why it resets".to_string(),
        _ => "reuse connections: share one client with keep-alive, don't create a client per request or send `Connection: close`, read bodies to the end so connections go back to the pool".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::series::{EndpointSample, EndpointSeries};

    fn tally(opens: u32, ends: [u32; 4], lifetime_s: f64) -> Tally {
        let mut t = Tally {
            opens,
            ends,
            ..Tally::default()
        };
        for _ in 0..(ends[0] + ends[1] + ends[2]) {
            t.lifetimes.add(lifetime_s);
        }
        t
    }

    fn series(per_sample: Tally, n: usize) -> EndpointSeries {
        let mut s = EndpointSeries::default();
        for i in 0..n {
            s.observe(&EndpointSample {
                t: i as f64,
                baseline: i == 0,
                events: if i > 0 { per_sample } else { Tally::default() },
                ..EndpointSample::default()
            });
        }
        s
    }

    #[test]
    fn rates_lifetimes_and_the_closer_from_a_window() {
        // 100 connections a second, 90 closed first by the server.
        let s = series(tally(100, [10, 90, 0, 0], 0.0005), 11);
        let w = WindowEvents::of(&s.window(10.0)).unwrap();
        assert_eq!((w.opens_per_s, w.ended_per_s), (100.0, 100.0));
        assert_eq!(w.closer(), Some(Ending::PeerFirst));
        assert!(w.mean_lifetime_s().unwrap() < 0.001);
        let mut n = BTreeMap::new();
        w.numbers(&mut n);
        assert_eq!(n["ended_peer_first"], 900.0);
        assert_eq!(n["lifetime_median_below_s"], 0.001);
        let ev = w.evidence().join("\n");
        assert!(ev.contains("the server 90%"), "{ev}");
        assert!(ev.contains("median <1ms"), "{ev}");
        assert!(advice(w.closer()).contains("the server closes"));
    }

    fn judge(s: &EndpointSeries) -> crate::watch::verdict::Verdict {
        let ctx = crate::watch::verdict::Ctx {
            fds_open: Some(10),
            fd_limit: Some(1024),
            port_range: (32768, 60999),
            others_on_remote: false,
        };
        let ep = crate::watch::series::Endpoint::Remote("127.0.0.1:8080".parse().unwrap());
        crate::watch::verdict::judge(&ep, s, &ctx)
    }

    /// Connections no sample saw (nothing open, no TIME_WAIT here: the
    /// server holds it) are CHURN from events alone, advised by who closed.
    #[test]
    fn churn_no_sample_saw_is_judged_from_events_with_the_closers_advice() {
        // 20 samples a second apart, 50 connections between each, 1 ms each.
        let v = judge(&series(tally(50, [2, 48, 0, 0], 0.001), 20));
        assert_eq!(v.verdict, crate::watch::verdict::Kind::Churn, "{v:#?}");
        assert_eq!(v.numbers["opens_per_s"], 50.0);
        assert!(v.advice.unwrap().contains("the server closes"));
        let v = judge(&series(tally(50, [48, 2, 0, 0], 0.001), 20));
        assert!(v.advice.unwrap().contains("this program closes"));
        // Long-lived connections ending now and then are no churn.
        let v = judge(&series(tally(1, [1, 0, 0, 0], 30.0), 20));
        assert_eq!(v.verdict, crate::watch::verdict::Kind::Ok, "{v:#?}");
    }

    #[test]
    fn no_events_in_the_window_means_no_summary_and_no_majority_no_closer() {
        let s = series(Tally::default(), 11);
        assert!(WindowEvents::of(&s.window(10.0)).is_none());
        let s = series(tally(10, [5, 5, 0, 0], 0.01), 11);
        let w = WindowEvents::of(&s.window(10.0)).unwrap();
        assert_eq!(w.closer(), None);
        assert!(advice(None).contains("reuse connections"));
    }
}
