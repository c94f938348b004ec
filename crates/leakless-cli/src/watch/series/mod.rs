//! Per-endpoint time series: what one process had open to one peer, sample
//! after sample, and which sockets came, went and changed state.
//!
//! The series is fed plain observations ([`Obs`]) so the verdict rules can be
//! tested from synthetic data exactly as from the kernel's. Each sample adds
//! a [`Point`]; the rules read a [`Window`] of them.

mod point;
mod window;

pub use point::{CW_OLD_S, OLD_S, Obs, Point, SockState};
pub use window::{Rise, Window};

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;

use foldhash::{HashMap, HashSet};

use super::conns::{Lifetimes, Tally};
use crate::sockets::TcpState;

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

/// What the series remembers of one socket between samples.
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
    /// The last sample's oldest socket was there when the watch started:
    /// its age is a lower bound.
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

    /// Seconds from the `n`th last point to the last (0 with fewer).
    pub fn span_of_last(&self, n: usize) -> f64 {
        match (
            self.points.back(),
            self.points.iter().nth_back(n.max(1) - 1),
        ) {
            (Some(last), Some(first)) if self.points.len() >= n => last.t - first.t,
            _ => 0.0,
        }
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

#[cfg(test)]
mod tests;
