//! The sampler: one socket-table sample per tick, split per process and
//! endpoint into series ([`ingest`]: how a sample is sorted), TIME_WAIT
//! attributed, verdicts judged.

mod ingest;

use std::collections::{BTreeMap, VecDeque};

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use super::conns::{self, Tally};
use super::series::{Endpoint, EndpointSeries};
use super::verdict::{self, Ctx, Verdict};
use crate::sockets::events::ConnEvents;
use crate::sockets::lifecycle::Ending;
use crate::sockets::{Owners, SampleStats, SocketTable, process};

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

/// Where a socket inode was last seen in the table: if the kernel drops it
/// while the program keeps the fd (FD_ONLY), it stays in its series.
#[derive(Clone, Copy)]
struct InodeOwner {
    endpoint: Endpoint,
    cookie: u64,
    last_seen: f64,
}

pub struct Sampler {
    table: SocketTable,
    mode: Mode,
    judge: bool,
    start: Instant,
    samples: u64,
    procs: BTreeMap<u32, ProcessSeries>,
    tuples: HashMap<(SocketAddr, SocketAddr), TupleOwner>,
    inodes: HashMap<u64, InodeOwner>,
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
    /// The kernel's connection events, or why there are none.
    events: Result<ConnEvents, String>,
    /// Records or connections the events lost so far.
    pub events_lost: u64,
    /// What the events said since the last sample, by (process, remote).
    pending: HashMap<(u32, SocketAddr), Tally>,
}

impl Sampler {
    /// `judge`: compute verdicts (off for `--once`).
    pub fn new(mode: Mode, judge: bool) -> Sampler {
        let (owners, netns_of) = match mode {
            Mode::Pid(pid) => (Owners::Pids(vec![pid]), Some(pid)),
            Mode::All => (Owners::All, None),
        };
        Sampler {
            table: match mode {
                Mode::Pid(_) => SocketTable::open_in(owners, netns_of),
                // Every container's sockets, not only the host's.
                Mode::All => SocketTable::open(owners).across_namespaces(),
            }
            .finding_fd_only(),
            mode,
            judge,
            start: Instant::now(),
            samples: 0,
            procs: BTreeMap::new(),
            tuples: HashMap::new(),
            inodes: HashMap::new(),
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
            events: Err("not started".to_string()),
            events_lost: 0,
            pending: HashMap::new(),
        }
    }

    /// Counts connections from the kernel's events from now on (`Err`:
    /// why not; samples only).
    pub fn set_events(&mut self, events: Result<ConnEvents, String>) {
        self.events = events;
    }

    /// `Ok(())` when connections are counted from events, else why not.
    pub fn events(&self) -> Result<(), &str> {
        self.events.as_ref().map(|_| ()).map_err(String::as_str)
    }

    /// Ports in `ip_local_port_range`.
    pub fn ephemeral_ports(&self) -> u32 {
        u32::from(self.port_range.1.saturating_sub(self.port_range.0)) + 1
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
        self.drain_events(t);
        let sample = self.table.sample()?;
        self.stats = Some(sample.stats);
        self.ingest(t, &sample, baseline);
        self.refresh_fds(t);
        if self.judge {
            self.judge_all();
        }
        self.samples += 1;
        Ok(())
    }

    /// Tallies the events since the last sample per (process, remote), and
    /// remembers the 4-tuples of connections this side closed first: their
    /// TIME_WAIT is then the process's even if no sample saw them open.
    fn drain_events(&mut self, t: f64) {
        let Ok(events) = &self.events else {
            return;
        };
        let drained = events.drain();
        self.events_lost = drained.lost;
        let (per, ended) = conns::tally(&drained.events);
        for e in ended.iter().filter(|e| e.ending == Ending::LocalFirst) {
            self.tuples.insert(
                (e.local, e.remote),
                TupleOwner {
                    key: e.owner,
                    endpoint: Endpoint::Remote(e.remote),
                    last_seen: t,
                },
            );
        }
        for (k, tally) in per {
            self.pending.entry(k).or_default().merge(&tally);
        }
    }

    fn key_of(&self, pid: u32) -> Option<u32> {
        match self.mode {
            Mode::Pid(root) => self.tree.contains(&pid).then_some(root),
            Mode::All => Some(pid),
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
                        Endpoint::Inbound(_) | Endpoint::Unknown => false,
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
