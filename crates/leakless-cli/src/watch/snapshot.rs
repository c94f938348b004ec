//! The view of one sample that every output renders: JSON serialises it as
//! is, the TUI, the text report and the Prometheus exporter read it.
//!
//! Label sets stay bounded here, once for all outputs: the top-K endpoints of
//! a process by severity and size, the rest folded into one "other" row, and
//! at most [`MAX_PROCESSES`] processes ranked by suspicion.

use std::collections::BTreeMap;

use serde::Serialize;

use super::churn_events::WindowEvents;
use super::conns::Lifetimes;
use super::pprof::GoView;
use super::sampler::{Mode, ProcessSeries, Sampler};
use super::series::{Endpoint, EndpointSeries, Point, SockState, Window};
use super::verdict::{Kind, Verdict};
use crate::sockets::TcpState;
use crate::sockets::lifecycle::Ending;

/// Processes shown in `--all` (and exported), most suspicious first.
pub const MAX_PROCESSES: usize = 25;
/// Sparkline points kept in the view: 5 minutes at the default interval.
pub const HISTORY_POINTS: usize = 300;
/// Rates in the view are averaged over this many seconds.
const RATE_WINDOW_S: f64 = 5.0;

#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// Seconds since the watch started.
    pub t: f64,
    pub sample: u64,
    pub source: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    pub processes: Vec<ProcessView>,
    /// TIME_WAIT sockets no process could be tied to (host-wide).
    pub unattributed_time_wait: u32,
    /// Ports in `ip_local_port_range`: how many connections this host can
    /// have open (or in TIME_WAIT) to one remote address and port.
    pub ephemeral_ports: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unattributed_top: Vec<Unattributed>,
    /// Where connection counts come from: the kernel's events, or samples
    /// alone (and what that cannot see).
    pub events: EventsView,
    /// What this sample cost watch itself.
    pub cost: Cost,
}

#[derive(Clone, Debug, Serialize)]
pub struct EventsView {
    /// "kernel" or "sampling".
    pub source: &'static str,
    /// How connections are tied to the watched processes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution: Option<&'static str>,
    /// Records or connections the events lost (full ring, too many live).
    #[serde(skip_serializing_if = "is_zero64")]
    pub lost: u64,
    /// Why there are no events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What sampling alone cannot see.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<&'static str>,
}

/// One endpoint's connections as the kernel's events counted them.
#[derive(Clone, Debug, Serialize)]
pub struct EndpointEvents {
    pub opens_per_s: f64,
    pub closes_per_s: f64,
    /// Ended connections over the same window, by who closed first.
    pub ended: BTreeMap<&'static str, u32>,
    /// Lifetimes of every connection seen ending since the start.
    pub lifetimes: Lifetimes,
}

#[derive(Clone, Debug, Serialize)]
pub struct Unattributed {
    pub remote: String,
    pub time_wait: u32,
}

#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Cost {
    pub wall_ms: f64,
    pub cpu_ms: f64,
    pub sockets: usize,
    pub fd_dirs_listed: u32,
    pub fd_links_read: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct ProcessView {
    pub pid: u32,
    pub comm: String,
    /// Descendants whose sockets are counted with this process.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub descendants: Vec<u32>,
    pub alive: bool,
    pub fds_open: Option<u32>,
    pub fd_limit: Option<u64>,
    pub sockets: u32,
    pub states: BTreeMap<&'static str, u32>,
    pub endpoints: Vec<EndpointView>,
    /// The worst current verdict; absent with `--once`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Kind>,
    /// Verdicts other than OK, with their evidence; absent with `--once`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdicts: Option<Vec<Verdict>>,
    /// What a Go process's goroutines say (`--pprof`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub go: Option<GoView>,
    #[serde(skip)]
    pub history: Vec<u64>,
    #[serde(skip)]
    pub suspicion: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct EndpointView {
    pub endpoint: String,
    /// For the "other" row: how many endpoints were folded into it.
    #[serde(skip_serializing_if = "is_zero")]
    pub folded: u32,
    pub sockets: u32,
    pub states: BTreeMap<&'static str, u32>,
    pub time_wait_unattributed: u32,
    pub opens_per_s: f64,
    pub closes_per_s: f64,
    pub oldest_age_s: f64,
    /// The oldest socket was already open when the watch started: its age is
    /// at least `oldest_age_s`.
    pub age_at_least: bool,
    pub max_idle_s: Option<f64>,
    /// CLOSE_WAIT by what is left to read: data (Recv-Q > 1), only the
    /// peer's FIN (Recv-Q 1), nothing (Recv-Q 0: EOF read, never closed).
    pub close_wait_data_unread: u32,
    pub close_wait_fin_unread: u32,
    pub close_wait_eof_read: u32,
    /// Remote endpoints: ephemeral ports left to it (the port range less
    /// the sockets and TIME_WAIT to it); the "other" row has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ephemeral_ports_free: Option<u32>,
    /// Counted from the kernel's events (absent without them, or when none
    /// concerned this endpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<EndpointEvents>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Kind>,
    #[serde(skip)]
    pub history: Vec<u64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero64(n: &u64) -> bool {
    *n == 0
}

fn states_map(p: &Point) -> BTreeMap<&'static str, u32> {
    p.states().collect()
}

impl Snapshot {
    /// Builds the view of the sampler's latest tick. `top_k`: endpoints per
    /// process before folding; `judged`: include verdicts.
    pub fn build(s: &Sampler, top_k: usize, judged: bool) -> Snapshot {
        let mut processes: Vec<ProcessView> = s
            .processes()
            .map(|p| process_view(p, top_k, judged, s.ephemeral_ports()))
            .collect();
        processes.sort_by(|a, b| {
            b.verdict
                .cmp(&a.verdict)
                .then(b.suspicion.total_cmp(&a.suspicion))
                .then(b.sockets.cmp(&a.sockets))
                .then(a.pid.cmp(&b.pid))
        });
        if s.mode() == Mode::All {
            processes.retain(|p| p.sockets > 0 || p.verdict.is_some_and(|k| k > Kind::Ok));
            processes.truncate(MAX_PROCESSES);
        }
        let stats = s.stats;
        Snapshot {
            t: s.t,
            sample: s.samples(),
            source: s.source().name(),
            warnings: s.warnings(),
            processes,
            events: match s.events() {
                Ok(()) => EventsView {
                    source: "kernel",
                    attribution: Some(match s.mode() {
                        Mode::Pid(_) => {
                            "by the process that called connect(), in the watched process tree (followed through the kernel's fork records)"
                        }
                        Mode::All => "by the process that called connect()",
                    }),
                    lost: s.events_lost,
                    reason: None,
                    limit: None,
                },
                Err(reason) => EventsView {
                    source: "sampling",
                    attribution: None,
                    lost: 0,
                    reason: Some(reason.to_string()),
                    limit: Some(super::SAMPLING_LIMIT),
                },
            },
            unattributed_time_wait: s.unattributed_total,
            ephemeral_ports: s.ephemeral_ports(),
            unattributed_top: s
                .unattributed_top
                .iter()
                .map(|(a, n)| Unattributed {
                    remote: a.to_string(),
                    time_wait: *n,
                })
                .collect(),
            cost: stats.map_or(Cost::default(), |st| Cost {
                wall_ms: st.wall.as_secs_f64() * 1000.0,
                cpu_ms: st.cpu.as_secs_f64() * 1000.0,
                sockets: st.sockets,
                fd_dirs_listed: st.dirs_listed,
                fd_links_read: st.readlinks,
            }),
        }
    }
}

fn process_view(p: &ProcessSeries, top_k: usize, judged: bool, ports: u32) -> ProcessView {
    let mut endpoints: Vec<(EndpointView, Option<Kind>)> = p
        .endpoints
        .iter()
        .map(|(ep, series)| {
            let kind = judged.then(|| {
                p.verdicts
                    .iter()
                    .find(|v| v.endpoint.as_deref() == Some(&ep.to_string()))
                    .map_or(Kind::Ok, |v| v.verdict)
            });
            let mut view = endpoint_view(ep.to_string(), series, kind);
            if let Endpoint::Remote(_) = ep {
                // FD_ONLY sockets hold no port any more; TIME_WAIT does.
                let fd_only = view.states.get(SockState::FD_ONLY).copied().unwrap_or(0);
                let used = view.sockets - fd_only + view.time_wait_unattributed;
                view.ephemeral_ports_free = Some(ports.saturating_sub(used));
            }
            (view, kind)
        })
        .filter(|(v, _)| {
            v.sockets + v.time_wait_unattributed > 0
                || v.verdict.is_some_and(|k| k > Kind::Ok)
                || v.events
                    .as_ref()
                    .is_some_and(|e| e.opens_per_s + e.closes_per_s > 0.0)
        })
        .collect();
    endpoints.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then(b.0.sockets.cmp(&a.0.sockets))
            .then(a.0.endpoint.cmp(&b.0.endpoint))
    });
    let mut shown: Vec<EndpointView> = Vec::new();
    let mut other: Option<EndpointView> = None;
    for (i, (v, _)) in endpoints.into_iter().enumerate() {
        if i < top_k {
            shown.push(v);
        } else {
            other = Some(match other {
                None => EndpointView {
                    endpoint: "other".to_string(),
                    folded: 1,
                    ephemeral_ports_free: None,
                    ..v
                },
                Some(o) => fold(o, v),
            });
        }
    }
    shown.extend(other);

    // The process's sockets: every endpoint's last point added up.
    let mut all = Point::default();
    for series in p.endpoints.values() {
        if let Some(last) = series.last() {
            all.counts.merge(&last.counts);
            all.fd_only += last.fd_only;
        }
    }
    let sockets = all.sockets();
    let verdict = judged.then(|| p.worst().map_or(Kind::Ok, |v| v.verdict));
    let verdicts = judged.then(|| {
        p.verdicts
            .iter()
            .filter(|v| v.verdict > Kind::Ok)
            .cloned()
            .collect()
    });
    let suspicion = f64::from(all.dead())
        + f64::from(all.get(TcpState::TimeWait)) / 10.0
        + p.verdicts.iter().filter(|v| v.verdict > Kind::Ok).count() as f64 * 100.0;
    ProcessView {
        pid: p.pid,
        comm: p.comm.clone(),
        descendants: p.pids.iter().copied().filter(|x| *x != p.pid).collect(),
        alive: p.alive,
        fds_open: p.fds_open,
        fd_limit: p.fd_limit,
        sockets,
        states: states_map(&all),
        endpoints: shown,
        verdict,
        verdicts,
        history: tail(p.totals.iter().map(|(_, n)| u64::from(*n))),
        go: None,
        suspicion,
    }
}

fn tail(it: impl DoubleEndedIterator<Item = u64>) -> Vec<u64> {
    let mut v: Vec<u64> = it.rev().take(HISTORY_POINTS).collect();
    v.reverse();
    v
}

fn endpoint_view(name: String, s: &EndpointSeries, verdict: Option<Kind>) -> EndpointView {
    let last = s.last().cloned().unwrap_or_else(Point::default);
    let w = s.window(RATE_WINDOW_S);
    let events = endpoint_events(s, &w);
    // Events count connections no sample saw; samples count closes of
    // connections opened before the watch: show the larger.
    let (ev_opens, ev_closes) = events
        .as_ref()
        .map_or((0.0, 0.0), |e| (e.opens_per_s, e.closes_per_s));
    EndpointView {
        endpoint: name,
        folded: 0,
        sockets: last.sockets(),
        states: states_map(&last),
        time_wait_unattributed: last.tw_unattributed,
        opens_per_s: w.rate(|p| p.opens).max(ev_opens),
        closes_per_s: w.rate(|p| p.closes).max(ev_closes),
        oldest_age_s: if last.live() > 0 {
            last.oldest_age_s
        } else {
            0.0
        },
        age_at_least: last.live() > 0 && s.oldest_from_start,
        max_idle_s: last.max_idle_s,
        close_wait_data_unread: last.cw_unread,
        close_wait_fin_unread: last.cw_fin,
        close_wait_eof_read: last.cw_eof,
        ephemeral_ports_free: None,
        events,
        verdict,
        history: tail(s.points().map(|p| u64::from(p.sockets()))),
    }
}

fn endpoint_events(s: &EndpointSeries, w: &Window<'_>) -> Option<EndpointEvents> {
    let e = WindowEvents::of(w);
    if e.is_none() && s.lifetimes.n() == 0 {
        return None;
    }
    let total = e.map(|e| e.total).unwrap_or_default();
    Some(EndpointEvents {
        opens_per_s: e.map_or(0.0, |e| e.opens_per_s),
        closes_per_s: e.map_or(0.0, |e| e.ended_per_s),
        ended: Ending::ALL
            .into_iter()
            .map(|k| (ending_name(k), total.ends_by(k)))
            .filter(|(_, n)| *n > 0)
            .collect(),
        lifetimes: s.lifetimes,
    })
}

fn ending_name(e: Ending) -> &'static str {
    match e {
        Ending::LocalFirst => "local_first",
        Ending::PeerFirst => "peer_first",
        Ending::Reset => "reset",
        Ending::Failed => "failed",
    }
}

/// Adds `b` into the "other" row `a`.
fn fold(mut a: EndpointView, b: EndpointView) -> EndpointView {
    a.folded += 1;
    a.ephemeral_ports_free = None;
    a.sockets += b.sockets;
    for (k, n) in b.states {
        *a.states.entry(k).or_default() += n;
    }
    a.time_wait_unattributed += b.time_wait_unattributed;
    a.opens_per_s += b.opens_per_s;
    a.closes_per_s += b.closes_per_s;
    if b.oldest_age_s > a.oldest_age_s {
        a.oldest_age_s = b.oldest_age_s;
        a.age_at_least = b.age_at_least;
    }
    a.max_idle_s = match (a.max_idle_s, b.max_idle_s) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    };
    a.close_wait_data_unread += b.close_wait_data_unread;
    a.events = match (a.events, b.events) {
        (Some(mut x), Some(y)) => {
            x.opens_per_s += y.opens_per_s;
            x.closes_per_s += y.closes_per_s;
            for (k, n) in y.ended {
                *x.ended.entry(k).or_default() += n;
            }
            x.lifetimes.merge(&y.lifetimes);
            Some(x)
        }
        (x, y) => x.or(y),
    };
    a.close_wait_fin_unread += b.close_wait_fin_unread;
    a.close_wait_eof_read += b.close_wait_eof_read;
    a.verdict = a.verdict.max(b.verdict);
    // Histories are aligned at their ends (the latest sample).
    let n = a.history.len().max(b.history.len());
    let mut h = vec![0u64; n];
    for src in [&a.history, &b.history] {
        let off = n - src.len();
        for (i, x) in src.iter().enumerate() {
            h[off + i] += x;
        }
    }
    a.history = h;
    a
}
