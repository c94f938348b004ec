//! The sampler: one socket-table sample per tick, split per process and
//! endpoint into series, TIME_WAIT attributed, verdicts judged.

use std::collections::{BTreeMap, VecDeque};

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use super::series::{Endpoint, EndpointSeries, HISTORY_S, MAX_POINTS, Obs};
use super::verdict::{self, Ctx, Verdict};
use crate::sockets::{Owners, SampleStats, SocketInfo, SocketTable, TcpState, process};

/// Which processes are watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One process and its descendants, shown as one.
    Pid(u32),
    /// Every process on the host with TCP sockets.
    All,
}

/// How long a 4-tuple seen owned is remembered to attribute its TIME_WAIT:
/// TIME_WAIT lasts 60 s after the close, plus slack for the close itself.
const TUPLE_MEMORY_S: f64 = 120.0;
/// The descendant tree of a watched pid is re-read this often (it costs a
/// read of every /proc/PID/stat where the kernel has no children lists)...
const TREE_REFRESH_S: f64 = 2.0;
/// ...and every sample during the first seconds of the watch.
const TREE_EAGER_S: f64 = 5.0;
/// In --all mode, fd counts (one directory listing per process) this often.
const ALL_FD_REFRESH_S: f64 = 5.0;
/// Endpoint series with nothing in them for this long are dropped.
const DROP_EMPTY_S: f64 = 120.0;

/// Everything known about one watched process (or process tree).
pub struct ProcessSeries {
    pub pid: u32,
    pub comm: String,
    /// The pids whose sockets count here (the process and its descendants).
    pub pids: Vec<u32>,
    pub endpoints: HashMap<Endpoint, EndpointSeries>,
    /// (time, sockets) for the process-wide sparkline.
    pub totals: VecDeque<(f64, u32)>,
    pub fds_open: Option<u32>,
    pub fd_limit: Option<u64>,
    /// Latest verdict per endpoint (empty until judged).
    pub verdicts: Vec<Verdict>,
    pub alive: bool,
    last_active: f64,
}

impl ProcessSeries {
    fn new(pid: u32) -> ProcessSeries {
        ProcessSeries {
            pid,
            comm: process::comm(pid).unwrap_or_else(|| "?".to_string()),
            pids: vec![pid],
            endpoints: HashMap::new(),
            totals: VecDeque::new(),
            fds_open: None,
            fd_limit: None,
            verdicts: Vec::new(),
            alive: true,
            last_active: 0.0,
        }
    }

    /// The most severe current verdict (OK when none is worse).
    pub fn worst(&self) -> Option<&Verdict> {
        self.verdicts.iter().max_by_key(|v| v.verdict)
    }
}

#[derive(Clone, Copy)]
struct TupleOwner {
    key: u32,
    endpoint: Endpoint,
    last_seen: f64,
}

/// Who holds live connections to a remote, to know whether unattributed
/// TIME_WAIT there can only be one process's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holder {
    One(u32),
    Many,
}

pub struct Sampler {
    table: SocketTable,
    mode: Mode,
    judge: bool,
    start: Instant,
    samples: u64,
    procs: BTreeMap<u32, ProcessSeries>,
    tuples: HashMap<(SocketAddr, SocketAddr), TupleOwner>,
    tree: Vec<u32>,
    tree_at: Option<f64>,
    fds_at: Option<f64>,
    port_range: (u16, u16),
    /// (process, remote) pairs where another process, or one we cannot
    /// read, also holds connections: filled by `ingest`, read by `judge_all`.
    others: HashSet<(u32, SocketAddr)>,
    /// Inodes of live sockets no watched process owned, last sample.
    foreign_prev: HashSet<u64>,
    /// TIME_WAIT no process could be tied to: how many on the host, and
    /// (in --all) the remotes with the most.
    pub unattributed_total: u32,
    pub unattributed_top: Vec<(SocketAddr, u32)>,
    pub stats: Option<SampleStats>,
    pub t: f64,
}

impl Sampler {
    /// `judge`: compute verdicts (off for `--once`).
    pub fn new(mode: Mode, judge: bool) -> Sampler {
        let (owners, netns_of) = match mode {
            Mode::Pid(pid) => (Owners::Pids(vec![pid]), Some(pid)),
            Mode::All => (Owners::All, None),
        };
        Sampler {
            table: SocketTable::open_in(owners, netns_of),
            mode,
            judge,
            start: Instant::now(),
            samples: 0,
            procs: BTreeMap::new(),
            tuples: HashMap::new(),
            tree: Vec::new(),
            tree_at: None,
            fds_at: None,
            port_range: process::local_port_range(),
            others: HashSet::new(),
            foreign_prev: HashSet::new(),
            unattributed_total: 0,
            unattributed_top: Vec::new(),
            stats: None,
            t: 0.0,
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    pub fn source(&self) -> crate::sockets::Source {
        self.table.source()
    }

    pub fn warnings(&self) -> Vec<String> {
        let mut w = self.table.warnings();
        if let Mode::Pid(pid) = self.mode {
            if self.table.denied().any(|p| p == pid) {
                w.push(format!(
                    "cannot read /proc/{pid}/fd: showing no sockets for it; TIME_WAIT and host totals are still sampled"
                ));
            }
        }
        w
    }

    pub fn processes(&self) -> impl Iterator<Item = &ProcessSeries> {
        self.procs.values()
    }

    /// Takes one sample and updates every series (and verdicts).
    pub fn tick(&mut self) -> io::Result<()> {
        let t = self.start.elapsed().as_secs_f64();
        self.t = t;
        let baseline = self.samples == 0;
        if let Mode::Pid(root) = self.mode {
            // Every sample at first, while a started command forks its
            // workers; then every TREE_REFRESH_S.
            if t < TREE_EAGER_S || self.tree_at.is_none_or(|at| t - at >= TREE_REFRESH_S) {
                self.tree = process::with_descendants(root);
                self.tree_at = Some(t);
                // A command started through a wrapper (a shell, pyenv's shim)
                // changes its name when it execs: keep the name current.
                if let (Some(p), Some(comm)) = (self.procs.get_mut(&root), process::comm(root)) {
                    p.comm = comm;
                }
                self.table.set_owners(Owners::Pids(self.tree.clone()));
            }
        }
        let sample = self.table.sample()?;
        self.stats = Some(sample.stats);
        self.ingest(t, &sample.sockets, baseline);
        self.refresh_fds(t);
        if self.judge {
            self.judge_all();
        }
        self.samples += 1;
        Ok(())
    }

    fn key_of(&self, pid: u32) -> Option<u32> {
        match self.mode {
            Mode::Pid(root) => self.tree.contains(&pid).then_some(root),
            Mode::All => Some(pid),
        }
    }

    fn ingest(&mut self, t: f64, sockets: &[SocketInfo], baseline: bool) {
        let mut listen: HashMap<u32, HashSet<u16>> = HashMap::new();
        for s in sockets.iter().filter(|s| s.state == TcpState::Listen) {
            if let Some(key) = s.pid.and_then(|p| self.key_of(p)) {
                listen.entry(key).or_default().insert(s.local.port());
            }
        }
        // Pass 1: the sockets of watched processes.
        let mut groups: Vec<(u32, Endpoint, Vec<Obs>)> = Vec::new();
        let mut index: HashMap<(u32, Endpoint), usize> = HashMap::new();
        let mut group: Option<(u32, Endpoint, usize)> = None;
        let mut holders: HashMap<SocketAddr, Holder> = HashMap::new();
        let mut last_holder: Option<(SocketAddr, u32)> = None;
        for s in sockets
            .iter()
            .filter(|s| s.state != TcpState::Listen && s.inode != 0)
        {
            let Some(key) = s.pid.and_then(|p| self.key_of(p)) else {
                continue;
            };
            let inbound = listen
                .get(&key)
                .is_some_and(|l| l.contains(&s.local.port()));
            let endpoint = if inbound {
                Endpoint::Inbound(s.local.port())
            } else {
                Endpoint::Remote(s.remote)
            };
            // Consecutive sockets mostly share process and endpoint: look
            // the group up only when that changes (10k sockets, 2 lookups
            // each, were a visible share of a sample).
            if group
                .as_ref()
                .is_none_or(|(k, e, _)| (*k, *e) != (key, endpoint))
            {
                let idx = *index.entry((key, endpoint)).or_insert_with(|| {
                    groups.push((key, endpoint, Vec::new()));
                    groups.len() - 1
                });
                group = Some((key, endpoint, idx));
            }
            if let Some((_, _, idx)) = group {
                groups[idx].2.push(to_obs(s));
            }
            let owner = TupleOwner {
                key,
                endpoint,
                last_seen: t,
            };
            self.tuples.insert(s.tuple(), owner);
            if last_holder != Some((s.remote, key)) {
                last_holder = Some((s.remote, key));
                holders
                    .entry(s.remote)
                    .and_modify(|h| {
                        if *h != Holder::One(key) {
                            *h = Holder::Many;
                        }
                    })
                    .or_insert(Holder::One(key));
            }
        }
        let mut per: HashMap<u32, HashMap<Endpoint, Vec<Obs>>> = HashMap::new();
        for (key, endpoint, obs) in groups {
            per.entry(key).or_default().insert(endpoint, obs);
        }
        // The remotes and inbound ports watched processes have or had: only
        // other sockets there matter below (on a busy host, most don't).
        let mut remotes: HashSet<SocketAddr> = holders.keys().copied().collect();
        let mut ports: HashSet<u16> = HashSet::new();
        for p in self.procs.values() {
            for ep in p.endpoints.keys() {
                match ep {
                    Endpoint::Remote(a) => remotes.insert(*a),
                    Endpoint::Inbound(port) => ports.insert(*port),
                };
            }
        }
        for l in listen.values() {
            ports.extend(l.iter().copied());
        }

        // Pass 2: everything else: TIME_WAIT and orphans (attributed by
        // 4-tuple, else unattributed), and other processes' sockets to the
        // same remotes.
        let all = self.mode == Mode::All;
        let mut tw_by_remote: HashMap<SocketAddr, Vec<u64>> = HashMap::new();
        let mut tw_by_port: HashMap<u16, Vec<u64>> = HashMap::new();
        let mut unattributed: HashMap<SocketAddr, u32> = HashMap::new();
        let mut unattributed_total = 0;
        let mut foreign_now: HashSet<u64> = HashSet::new();
        for s in sockets.iter().filter(|s| s.state != TcpState::Listen) {
            if s.inode != 0 {
                if s.pid.and_then(|p| self.key_of(p)).is_some() || !remotes.contains(&s.remote) {
                    continue;
                }
                foreign_now.insert(s.inode);
                // A socket of nobody we know counts as another holder only
                // if it was there last sample too: a watched churner's own
                // sockets often close before /proc can be read, and must
                // not hide its TIME_WAIT.
                if self.foreign_prev.contains(&s.inode) {
                    holders.insert(s.remote, Holder::Many);
                }
            } else if let Some(owner) = self.tuples.get_mut(&s.tuple()) {
                // TIME_WAIT or an orphan the program closed: the 4-tuple was
                // this process's in an earlier sample.
                owner.last_seen = t;
                per.entry(owner.key)
                    .or_default()
                    .entry(owner.endpoint)
                    .or_default()
                    .push(to_obs(s));
            } else if s.state == TcpState::TimeWait {
                unattributed_total += 1;
                if all {
                    *unattributed.entry(s.remote).or_default() += 1;
                }
                if remotes.contains(&s.remote) {
                    tw_by_remote.entry(s.remote).or_default().push(s.cookie);
                }
                if ports.contains(&s.local.port()) {
                    tw_by_port.entry(s.local.port()).or_default().push(s.cookie);
                }
            }
        }
        self.tuples.retain(|_, o| t - o.last_seen <= TUPLE_MEMORY_S);
        self.foreign_prev = foreign_now;

        let mut top: Vec<(SocketAddr, u32)> = unattributed.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(5);
        self.unattributed_top = top;
        self.unattributed_total = unattributed_total;

        self.others.clear();
        let mut keys: HashSet<u32> = per
            .keys()
            .copied()
            .chain(self.procs.keys().copied())
            .collect();
        if let Mode::Pid(root) = self.mode {
            // Shown even while it has no socket at all.
            keys.insert(root);
        }
        let empty: Vec<u64> = Vec::new();
        for key in keys {
            let mut mine = per.remove(&key).unwrap_or_default();
            let proc = self
                .procs
                .entry(key)
                .or_insert_with(|| ProcessSeries::new(key));
            if let Mode::Pid(_) = self.mode {
                proc.pids = self.tree.clone();
            }
            for ep in mine.keys() {
                proc.endpoints.entry(*ep).or_default();
            }
            let mut total = 0;
            for (ep, series) in proc.endpoints.iter_mut() {
                let socks = mine.remove(ep).unwrap_or_default();
                let tw = match ep {
                    Endpoint::Remote(a) => tw_by_remote.get(a).unwrap_or(&empty),
                    Endpoint::Inbound(p) => tw_by_port.get(p).unwrap_or(&empty),
                };
                series.observe(t, &socks, tw, baseline);
                total += socks.len() as u32;
            }
            proc.endpoints.retain(|_, s| !s.empty_for(DROP_EMPTY_S));
            if total > 0 {
                proc.last_active = t;
            }
            proc.totals.push_back((t, total));
            while proc.totals.len() > MAX_POINTS
                || proc.totals.front().is_some_and(|f| t - f.0 > HISTORY_S)
            {
                proc.totals.pop_front();
            }
            // Keep the per-endpoint "who else is there" answer for judging.
            for ep in proc.endpoints.keys() {
                if let Endpoint::Remote(a) = ep {
                    if holders.get(a).is_some_and(|h| *h != Holder::One(key)) {
                        self.others.insert((key, *a));
                    }
                }
            }
        }
        if self.mode == Mode::All {
            // Processes that are gone and had nothing for a while.
            self.procs
                .retain(|_, p| t - p.last_active <= DROP_EMPTY_S || !p.endpoints.is_empty());
        }
    }

    fn refresh_fds(&mut self, t: f64) {
        let due = match self.mode {
            Mode::Pid(_) => true,
            Mode::All => self.fds_at.is_none_or(|at| t - at >= ALL_FD_REFRESH_S),
        };
        if !due {
            return;
        }
        self.fds_at = Some(t);
        for p in self.procs.values_mut() {
            p.alive = process::alive(p.pid);
            if !p.alive {
                continue;
            }
            let counts: Vec<u32> = p
                .pids
                .iter()
                .filter_map(|pid| process::fd_count(*pid))
                .collect();
            p.fds_open = (!counts.is_empty()).then(|| counts.iter().sum());
            p.fd_limit = process::fd_soft_limit(p.pid);
        }
    }

    fn judge_all(&mut self) {
        let port_range = self.port_range;
        let others = &self.others;
        for p in self.procs.values_mut() {
            let mut verdicts: Vec<Verdict> = p
                .endpoints
                .iter()
                .map(|(ep, series)| {
                    let others_on_remote = match ep {
                        Endpoint::Remote(a) => others.contains(&(p.pid, *a)),
                        Endpoint::Inbound(_) => false,
                    };
                    let ctx = Ctx {
                        fds_open: p.fds_open,
                        fd_limit: p.fd_limit,
                        port_range,
                        others_on_remote,
                    };
                    let mut v = verdict::judge(ep, series, &ctx);
                    v.pid = Some(p.pid);
                    v
                })
                .collect();
            verdicts.sort_by(|a, b| b.verdict.cmp(&a.verdict).then(a.endpoint.cmp(&b.endpoint)));
            p.verdicts = verdicts;
        }
    }
}

fn to_obs(s: &SocketInfo) -> Obs {
    Obs {
        cookie: s.cookie,
        state: s.state,
        recv_q: s.recv_q,
        idle_s: s.times.map(|t| f64::from(t.idle_ms()) / 1000.0),
        recv_idle_s: s.times.map(|t| f64::from(t.last_data_recv_ms) / 1000.0),
    }
}
