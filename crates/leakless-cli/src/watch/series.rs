//! Per-endpoint time series: what one process had open to one peer, sample
//! after sample, and which sockets came, went and changed state.
//!
//! The series is fed plain observations ([`Obs`]) so the verdict rules can be
//! tested from synthetic data exactly as from the kernel's.

use std::collections::VecDeque;

use foldhash::{HashMap, HashSet};
use std::fmt;
use std::net::SocketAddr;

use super::conns::{Lifetimes, Tally};
use crate::sockets::{StateCounts, TcpState};

/// How much history a series keeps (sparklines show "the last minutes";
/// verdicts look at most this far back).
pub const HISTORY_S: f64 = 300.0;
/// And never more than this many points, whatever the interval.
pub const MAX_POINTS: usize = 1200;

/// Who a group of sockets talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Endpoint {
    /// Outbound connections to this address.
    Remote(SocketAddr),
    /// Connections accepted on this local port (the process listens on it):
    /// grouped by port, since every client has its own address.
    Inbound(u16),
    /// FD_ONLY sockets never seen in the table: the kernel had dropped them
    /// before the watch could see where they went.
    Unknown,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Remote(a) => write!(f, "{a}"),
            Endpoint::Inbound(p) => write!(f, "inbound :{p}"),
            Endpoint::Unknown => f.write_str("unknown (dropped by the kernel)"),
        }
    }
}

/// What the kernel says of a socket the program holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockState {
    /// Listed by sock_diag in this TCP state.
    Tcp(TcpState),
    /// FD_ONLY: the program still has the fd, but the kernel lists no TCP
    /// socket for it any more (the peer reset it, e.g. after giving up on a
    /// half-closed connection). Its fd and memory stay until closed.
    FdOnly,
}

impl SockState {
    /// The name FD_ONLY goes by in every output, beside the TCP states'.
    pub const FD_ONLY: &'static str = "FD_ONLY";
}

impl From<TcpState> for SockState {
    fn from(s: TcpState) -> SockState {
        SockState::Tcp(s)
    }
}

/// One socket as seen in one sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Obs {
    pub cookie: u64,
    pub state: SockState,
    pub recv_q: u32,
    /// Seconds since data last moved (tcp_info); `None` without tcp_info.
    pub idle_s: Option<f64>,
    /// Seconds since data was last received; `None` without tcp_info.
    pub recv_idle_s: Option<f64>,
}

/// One sample of one endpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Point {
    pub t: f64,
    /// Owned sockets by state, plus TIME_WAIT attributed by 4-tuple.
    pub counts: StateCounts,
    /// Owned sockets the kernel no longer lists ([`SockState::FdOnly`]).
    pub fd_only: u32,
    /// TIME_WAIT to this endpoint that no earlier sample ties to the process.
    pub tw_unattributed: u32,
    /// Owned sockets first seen in this sample.
    pub opens: u32,
    /// Owned sockets gone since the previous sample (closed by the program).
    pub closes: u32,
    /// TIME_WAIT sockets new since the previous sample, attributed by
    /// 4-tuple or not: each is one connection this side closed.
    pub tw_new_attributed: u32,
    pub tw_new_unattributed: u32,
    /// CLOSE_WAIT sockets in that state for at least [`CW_OLD_S`]: the ones a
    /// pool did not recycle. A stale pool's turn over; a leak's pile up.
    pub cw_old: u32,
    /// CLOSE_WAIT sockets with data left unread before the FIN (Recv-Q > 1:
    /// the peer's FIN counts one): the program stopped reading early.
    pub cw_unread: u32,
    /// CLOSE_WAIT sockets whose only unread byte is the FIN (Recv-Q 1): read
    /// to the end of the data, not touched since the peer closed.
    pub cw_fin: u32,
    /// CLOSE_WAIT sockets that read EOF and were never closed.
    pub cw_eof: u32,
    /// ESTABLISHED sockets at least [`OLD_S`] old, and how many of those sat
    /// idle for (nearly) all their life: opened, used once, never again.
    pub est_old: u32,
    pub est_held: u32,
    /// ESTABLISHED sockets with unread bytes (a response nobody reads).
    pub est_unread: u32,
    pub max_idle_s: Option<f64>,
    pub oldest_age_s: f64,
    /// Connections the kernel's events counted since the previous sample
    /// (opened, ended and how, lifetimes): also those no sample saw.
    pub events: Tally,
}

impl Point {
    pub fn get(&self, s: TcpState) -> u32 {
        self.counts.get(s)
    }

    /// Owned sockets in any state, FD_ONLY included, and TIME_WAIT
    /// attributed by 4-tuple.
    pub fn sockets(&self) -> u32 {
        self.counts.total() + self.fd_only
    }

    /// Owned sockets that are still open (all states but TIME_WAIT).
    pub fn live(&self) -> u32 {
        self.sockets() - self.counts.get(TcpState::TimeWait)
    }

    /// Sockets whose peer is gone that the program holds on to: CLOSE_WAIT
    /// for [`CW_OLD_S`] or more, and FD_ONLY (the kernel dropped them; the
    /// fds stay). What a leak of closed connections piles up.
    pub fn dead_held(&self) -> u32 {
        self.cw_old + self.fd_only
    }

    /// Sockets whose peer is gone, however recently: CLOSE_WAIT and FD_ONLY.
    pub fn dead(&self) -> u32 {
        self.get(TcpState::CloseWait) + self.fd_only
    }

    /// State names and counts, FD_ONLY among them, for the outputs.
    pub fn states(&self) -> impl Iterator<Item = (&'static str, u32)> + '_ {
        self.counts
            .nonzero()
            .map(|(s, n)| (s.name(), n))
            .chain((self.fd_only > 0).then_some((SockState::FD_ONLY, self.fd_only)))
    }
}

/// Age below which an ESTABLISHED socket is not judged "held".
pub const OLD_S: f64 = 5.0;
/// Time in CLOSE_WAIT after which a socket counts as persisting.
pub const CW_OLD_S: f64 = 3.0;

struct Track {
    /// The last sample that saw it (gone when stale).
    generation: u64,
    first_seen: f64,
    /// Present in the first sample: its real age is unknown (at least this).
    from_start: bool,
    cw_since: Option<f64>,
    /// Receive-idle at the last sample it was ESTABLISHED.
    est_recv_idle: Option<f64>,
}

/// A CLOSE_WAIT socket that went away: the program finally closed it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CwEnd {
    pub since: f64,
    pub ended: f64,
}

/// Bounds on how long the peer keeps an idle connection, learnt from sockets
/// seen ESTABLISHED at idle `lo` and then CLOSE_WAIT at idle `hi`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct KeepAlive {
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    pub samples: u32,
}

/// History of one (process, endpoint).
#[derive(Default)]
pub struct EndpointSeries {
    points: VecDeque<Point>,
    tracks: HashMap<u64, Track>,
    tw_prev: HashSet<u64>,
    cw_ended: VecDeque<CwEnd>,
    generation: u64,
    pub keepalive: KeepAlive,
    /// Whether any observation carried tcp_info.
    pub has_times: bool,
    /// Lifetimes of every connection the events saw end, since the start.
    pub lifetimes: Lifetimes,

    pub oldest_from_start: bool,
}

/// What one sample saw of one endpoint: the input of
/// [`EndpointSeries::observe`]. New inputs (e.g. counts from kernel events)
/// become fields here.
#[derive(Clone, Copy, Debug, Default)]
pub struct EndpointSample<'a> {
    /// Seconds since the watch started.
    pub t: f64,
    /// The endpoint's owned sockets and the TIME_WAIT attributed to it by
    /// 4-tuple.
    pub socks: &'a [Obs],
    /// Cookies of other TIME_WAIT sockets to it (no sample ties them to the
    /// process).
    pub tw_unattributed: &'a [u64],
    /// The first sample of the watch, whose sockets are not "opened" (they
    /// were there already, so their age is a lower bound).
    pub baseline: bool,
    /// What the kernel's connection events counted since the previous
    /// sample (empty without them).
    pub events: Tally,
}

impl EndpointSeries {
    /// Adds one sample. The first observation of a series never counts
    /// TIME_WAIT arrivals: that pile may be older than the watch.
    pub fn observe(&mut self, sample: &EndpointSample<'_>) {
        let EndpointSample {
            t,
            socks,
            tw_unattributed,
            baseline,
            events,
        } = *sample;
        self.lifetimes.merge(&events.lifetimes);
        let first_of_series = self.points.is_empty();
        let mut p = Point {
            t,
            tw_unattributed: tw_unattributed.len() as u32,
            events,
            ..Point::default()
        };
        self.generation += 1;
        let generation = self.generation;
        let mut tw_attr: Vec<u64> = Vec::new();
        let mut oldest = t;
        let mut oldest_from_start = false;
        for o in socks {
            let state = match o.state {
                SockState::Tcp(TcpState::TimeWait) => {
                    p.counts.add(TcpState::TimeWait, 1);
                    tw_attr.push(o.cookie);
                    continue;
                }
                SockState::Tcp(s) => {
                    p.counts.add(s, 1);
                    Some(s)
                }
                SockState::FdOnly => {
                    p.fd_only += 1;
                    None
                }
            };
            if o.idle_s.is_some() {
                self.has_times = true;
            }
            let track = self.tracks.entry(o.cookie).or_insert_with(|| {
                if !baseline {
                    p.opens += 1;
                }
                Track {
                    generation,
                    first_seen: t,
                    from_start: baseline,
                    cw_since: None,
                    est_recv_idle: None,
                }
            });
            track.generation = generation;
            if track.first_seen < oldest {
                oldest = track.first_seen;
                oldest_from_start = track.from_start;
            } else if track.first_seen == oldest && track.from_start {
                oldest_from_start = true;
            }
            let age = t - track.first_seen;
            match state {
                Some(TcpState::Established) => {
                    track.est_recv_idle = o.recv_idle_s;
                    if age >= OLD_S {
                        p.est_old += 1;
                        // Idle for 80% of its observed life: never reused.
                        if o.idle_s.is_some_and(|i| i >= 0.8 * age) {
                            p.est_held += 1;
                        }
                    }
                    if o.recv_q > 0 {
                        p.est_unread += 1;
                    }
                }
                Some(TcpState::CloseWait) => {
                    if track.cw_since.is_none() {
                        // Found in CLOSE_WAIT when the watch started: it has
                        // been there for an unknown time, so it is old now
                        // (not "growing" 3 s later).
                        track.cw_since = Some(if baseline { t - CW_OLD_S } else { t });
                        if let (Some(lo), Some(hi)) = (track.est_recv_idle, o.recv_idle_s) {
                            let ka = &mut self.keepalive;
                            ka.lo = Some(ka.lo.map_or(lo, |v: f64| v.max(lo)));
                            ka.hi = Some(ka.hi.map_or(hi, |v: f64| v.min(hi)));
                            ka.samples += 1;
                        }
                    }
                    if track
                        .cw_since
                        .is_some_and(|since| t - since >= CW_OLD_S - 1e-9)
                    {
                        p.cw_old += 1;
                    }
                    match o.recv_q {
                        0 => p.cw_eof += 1,
                        1 => p.cw_fin += 1,
                        _ => p.cw_unread += 1,
                    }
                }
                _ => {}
            }
            if let Some(i) = o.idle_s {
                p.max_idle_s = Some(p.max_idle_s.map_or(i, |m: f64| m.max(i)));
            }
        }
        p.oldest_age_s = t - oldest;
        self.oldest_from_start = oldest_from_start;
        let mut ended = Vec::new();
        self.tracks.retain(|_, tr| {
            if tr.generation == generation {
                return true;
            }
            ended.push(tr.cw_since);
            false
        });
        p.closes = ended.len() as u32;
        for since in ended.into_iter().flatten() {
            self.cw_ended.push_back(CwEnd { since, ended: t });
        }
        if !baseline && !first_of_series {
            let new = |c: &&u64| !self.tw_prev.contains(*c);
            p.tw_new_attributed = tw_attr.iter().filter(new).count() as u32;
            p.tw_new_unattributed = tw_unattributed.iter().filter(new).count() as u32;
        }
        self.tw_prev = tw_attr.iter().chain(tw_unattributed).copied().collect();
        self.points.push_back(p);
        while self.points.len() > MAX_POINTS
            || self.points.front().is_some_and(|f| t - f.t > HISTORY_S)
        {
            self.points.pop_front();
        }
        while self
            .cw_ended
            .front()
            .is_some_and(|e| t - e.ended > HISTORY_S)
        {
            self.cw_ended.pop_front();
        }
    }

    pub fn last(&self) -> Option<&Point> {
        self.points.back()
    }

    pub fn points(&self) -> impl DoubleEndedIterator<Item = &Point> + ExactSizeIterator {
        self.points.iter()
    }

    /// Points no older than `span` seconds before the last one.
    pub fn window(&self, span: f64) -> Window<'_> {
        let now = self.points.back().map_or(0.0, |p| p.t);
        let points: Vec<&Point> = self
            .points
            .iter()
            .filter(|p| p.t >= now - span - 1e-9)
            .collect();
        let from = points.first().map_or(now, |p| p.t);
        let cw_ended = self
            .cw_ended
            .iter()
            .filter(|e| e.ended > from && e.ended <= now)
            .copied()
            .collect();
        Window { points, cw_ended }
    }

    /// True when nothing is open and nothing happened for `idle_for` seconds
    /// (the series can be dropped).
    pub fn empty_for(&self, idle_for: f64) -> bool {
        let Some(last) = self.points.back() else {
            return true;
        };
        self.points
            .iter()
            .rev()
            .take_while(|p| last.t - p.t <= idle_for)
            .all(|p| {
                p.sockets() == 0
                    && p.tw_unattributed == 0
                    && p.events.opens == 0
                    && p.events.ended() == 0
            })
            && self
                .points
                .front()
                .is_some_and(|f| last.t - f.t >= idle_for)
    }
}

/// How a quantity rose over a window ([`Window::rise`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rise {
    /// Last point minus first.
    pub growth: f64,
    /// Least-squares slope per second.
    pub slope: f64,
    /// Share of sample-to-sample steps that rose or stayed flat.
    pub steady: f64,
    /// Samples that raised the running maximum (the first point aside).
    pub highs: u32,
    /// Seconds between the first and the last new high.
    pub highs_spread_s: f64,
    /// Seconds since the last new high (0: the last point is one).
    pub since_last_high_s: f64,
}

/// A slice of history the verdict rules look at.
pub struct Window<'a> {
    pub points: Vec<&'a Point>,
    /// CLOSE_WAIT sockets closed inside the window.
    pub cw_ended: Vec<CwEnd>,
}

impl Window<'_> {
    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn span(&self) -> f64 {
        match (self.points.first(), self.points.last()) {
            (Some(a), Some(b)) => b.t - a.t,
            _ => 0.0,
        }
    }

    pub fn first(&self) -> Option<&Point> {
        self.points.first().copied()
    }

    pub fn last(&self) -> Option<&Point> {
        self.points.last().copied()
    }

    /// Least-squares slope of `f` per second.
    pub fn slope(&self, f: impl Fn(&Point) -> f64) -> f64 {
        let n = self.points.len() as f64;
        if n < 2.0 {
            return 0.0;
        }
        let mt = self.points.iter().map(|p| p.t).sum::<f64>() / n;
        let my = self.points.iter().map(|p| f(p)).sum::<f64>() / n;
        let (mut num, mut den) = (0.0, 0.0);
        for p in &self.points {
            num += (p.t - mt) * (f(p) - my);
            den += (p.t - mt) * (p.t - mt);
        }
        if den == 0.0 { 0.0 } else { num / den }
    }

    /// Share of sample-to-sample steps in which `f` did not go down.
    pub fn rising_steps(&self, f: impl Fn(&Point) -> f64) -> f64 {
        if self.points.len() < 2 {
            return 0.0;
        }
        let ups = self
            .points
            .windows(2)
            .filter(|w| f(w[1]) >= f(w[0]))
            .count();
        ups as f64 / (self.points.len() - 1) as f64
    }

    /// How `f` rose over the window: overall, its trend, and when its
    /// running maximum was raised (new highs), to tell a sustained rise from
    /// one step followed by a plateau.
    pub fn rise(&self, f: impl Fn(&Point) -> f64) -> Rise {
        let (Some(first), Some(last)) = (self.points.first(), self.points.last()) else {
            return Rise::default();
        };
        let mut high = f(first);
        let mut highs = 0;
        let (mut first_high, mut last_high) = (first.t, first.t);
        for p in self.points.iter().skip(1) {
            let v = f(p);
            if v > high {
                high = v;
                if highs == 0 {
                    first_high = p.t;
                }
                last_high = p.t;
                highs += 1;
            }
        }
        Rise {
            growth: f(last) - f(first),
            slope: self.slope(&f),
            steady: self.rising_steps(&f),
            highs,
            highs_spread_s: last_high - first_high,
            since_last_high_s: last.t - last_high,
        }
    }

    /// Share of samples in which `f` was above zero.
    pub fn present(&self, f: impl Fn(&Point) -> u32) -> f64 {
        if self.points.is_empty() {
            return 0.0;
        }
        self.points.iter().filter(|p| f(p) > 0).count() as f64 / self.points.len() as f64
    }

    /// Sum of `f` over the window, leaving out the first point (whose
    /// events happened before the window began).
    pub fn sum_after_first(&self, f: impl Fn(&Point) -> u32) -> u32 {
        self.points.iter().skip(1).map(|p| f(p)).sum()
    }

    /// `sum_after_first(f)` per second of span.
    pub fn rate(&self, f: impl Fn(&Point) -> u32) -> f64 {
        let span = self.span();
        if span <= 0.0 {
            return 0.0;
        }
        f64::from(self.sum_after_first(f)) / span
    }

    pub fn mean(&self, f: impl Fn(&Point) -> f64) -> f64 {
        if self.points.is_empty() {
            return 0.0;
        }
        self.points.iter().map(|p| f(p)).sum::<f64>() / self.points.len() as f64
    }

    pub fn max(&self, f: impl Fn(&Point) -> u32) -> u32 {
        self.points.iter().map(|p| f(p)).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at<'a>(t: f64, socks: &'a [Obs], tw: &'a [u64], baseline: bool) -> EndpointSample<'a> {
        EndpointSample {
            t,
            socks,
            tw_unattributed: tw,
            baseline,
            ..EndpointSample::default()
        }
    }

    fn obs(cookie: u64, state: TcpState, idle: f64) -> Obs {
        Obs {
            cookie,
            state: state.into(),
            recv_q: 0,
            idle_s: Some(idle),
            recv_idle_s: Some(idle),
        }
    }

    #[test]
    fn opens_closes_and_time_wait_arrivals() {
        let mut s = EndpointSeries::default();
        s.observe(&at(0.0, &[obs(1, TcpState::Established, 0.0)], &[], true));
        assert_eq!(s.last().unwrap().opens, 0, "baseline sockets are not opens");
        s.observe(&at(
            1.0,
            &[
                obs(1, TcpState::Established, 0.0),
                obs(2, TcpState::Established, 0.0),
            ],
            &[],
            false,
        ));
        assert_eq!(s.last().unwrap().opens, 1);
        // Socket 1 closed by us: it is gone and its TIME_WAIT (same cookie) arrives.
        s.observe(&at(
            2.0,
            &[
                obs(2, TcpState::Established, 0.0),
                obs(1, TcpState::TimeWait, 0.0),
            ],
            &[7],
            false,
        ));
        let p = s.last().unwrap();
        assert_eq!((p.opens, p.closes, p.tw_unattributed), (0, 1, 1));
        assert_eq!((p.tw_new_attributed, p.tw_new_unattributed), (1, 1));
        assert_eq!(p.get(TcpState::TimeWait), 1);
        s.observe(&at(
            3.0,
            &[
                obs(2, TcpState::Established, 0.0),
                obs(1, TcpState::TimeWait, 0.0),
            ],
            &[7],
            false,
        ));
        let p = s.last().unwrap();
        assert_eq!(
            p.tw_new_attributed + p.tw_new_unattributed,
            0,
            "same TIME_WAIT sockets are not new"
        );
        assert_eq!(s.last().unwrap().oldest_age_s, 2.0);
    }

    #[test]
    fn learns_peer_keepalive_from_transitions() {
        let mut s = EndpointSeries::default();
        s.observe(&at(0.0, &[obs(1, TcpState::Established, 0.3)], &[], true));
        s.observe(&at(0.5, &[obs(1, TcpState::Established, 0.8)], &[], false));
        s.observe(&at(1.0, &[obs(1, TcpState::CloseWait, 1.3)], &[], false));
        assert_eq!(s.keepalive.lo, Some(0.8));
        assert_eq!(s.keepalive.hi, Some(1.3));
        s.observe(&at(1.5, &[], &[], false));
        let w = s.window(10.0);
        assert_eq!(w.cw_ended.len(), 1);
        assert_eq!(w.cw_ended[0].since, 1.0);
    }

    #[test]
    fn window_statistics() {
        let mut s = EndpointSeries::default();
        for i in 0..11 {
            let socks: Vec<Obs> = (0..i).map(|c| obs(c, TcpState::CloseWait, 1.0)).collect();
            s.observe(&at(f64::from(i as u32), &socks, &[], i == 0));
        }
        let w = s.window(5.0);
        assert_eq!(w.len(), 6);
        assert_eq!(w.span(), 5.0);
        assert!((w.slope(|p| f64::from(p.get(TcpState::CloseWait))) - 1.0).abs() < 1e-9);
        assert_eq!(
            w.rising_steps(|p| f64::from(p.get(TcpState::CloseWait))),
            1.0
        );
        assert_eq!(w.rate(|p| p.opens), 1.0);
        assert_eq!(w.present(|p| p.get(TcpState::CloseWait)), 1.0);
    }
}
