//! One sample sorted into the watched processes' series, step by step:
//! listening ports (which sockets are inbound), the sockets each process
//! owns by endpoint, then everything else (TIME_WAIT and orphans tied back
//! by 4-tuple, or left unattributed; other processes on the same remotes),
//! and last each process's series fed.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::net::SocketAddr;

use super::{DROP_EMPTY_S, InodeOwner, Mode, ProcessSeries, Sampler, TUPLE_MEMORY_S, TupleOwner};
use crate::sockets::{FdOnly, Sample, SocketInfo, TcpState};
use crate::watch::conns::Tally;
use crate::watch::series::{Endpoint, EndpointSample, HISTORY_S, MAX_POINTS, Obs, SockState};

/// Who holds live connections to a remote, to know whether unattributed
/// TIME_WAIT there can only be one process's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Holder {
    One(u32),
    Many,
}

#[derive(Default)]
struct Holders {
    by_remote: HashMap<SocketAddr, Holder>,
    /// The last (remote, process) added: sockets come grouped, so most
    /// additions repeat it and skip the map.
    last: Option<(SocketAddr, u32)>,
}

impl Holders {
    fn add(&mut self, remote: SocketAddr, key: u32) {
        if self.last == Some((remote, key)) {
            return;
        }
        self.last = Some((remote, key));
        self.by_remote
            .entry(remote)
            .and_modify(|h| {
                if *h != Holder::One(key) {
                    *h = Holder::Many;
                }
            })
            .or_insert(Holder::One(key));
    }

    /// Someone outside the watched processes holds connections there too.
    fn mark_shared(&mut self, remote: SocketAddr) {
        self.by_remote.insert(remote, Holder::Many);
    }

    fn shared_with_others(&self, remote: SocketAddr, key: u32) -> bool {
        self.by_remote
            .get(&remote)
            .is_some_and(|h| *h != Holder::One(key))
    }

    fn remotes(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.by_remote.keys().copied()
    }
}

/// One sample's sockets owned by watched processes (plus the TIME_WAIT
/// their 4-tuples claim), by process and endpoint, and who holds what.
struct Owned {
    per: HashMap<u32, HashMap<Endpoint, Vec<Obs>>>,
    holders: Holders,
}

/// Where watched processes have or had sockets.
struct Places {
    remotes: HashSet<SocketAddr>,
    ports: HashSet<u16>,
}

/// TIME_WAIT cookies no 4-tuple ties to a process, by remote and by local
/// (inbound) port.
#[derive(Default)]
struct Unowned {
    by_remote: HashMap<SocketAddr, Vec<u64>>,
    by_port: HashMap<u16, Vec<u64>>,
}

impl Unowned {
    fn to(&self, ep: &Endpoint) -> &[u64] {
        let found = match ep {
            Endpoint::Remote(a) => self.by_remote.get(a),
            Endpoint::Inbound(p) => self.by_port.get(p),
            Endpoint::Unknown => None,
        };
        found.map_or(&[], Vec::as_slice)
    }
}

impl ProcessSeries {
    /// One sample of this process: `mine`, its sockets by endpoint, and
    /// `events`, what the kernel's connection events counted per endpoint
    /// since the last sample; every endpoint it has a series for is fed,
    /// empty or not, so closes show.
    fn observe(
        &mut self,
        t: f64,
        mut mine: HashMap<Endpoint, Vec<Obs>>,
        mut events: HashMap<Endpoint, Tally>,
        unowned: &Unowned,
        baseline: bool,
    ) {
        for ep in mine.keys().chain(events.keys()) {
            self.endpoints.entry(*ep).or_default();
        }
        let mut total = 0;
        for (ep, series) in self.endpoints.iter_mut() {
            let socks = mine.remove(ep).unwrap_or_default();
            series.observe(&EndpointSample {
                t,
                socks: &socks,
                tw_unattributed: unowned.to(ep),
                baseline,
                events: events.remove(ep).unwrap_or_default(),
            });
            total += socks.len() as u32;
        }
        self.endpoints.retain(|_, s| !s.empty_for(DROP_EMPTY_S));
        if total > 0 {
            self.last_active = t;
        }
        self.totals.push_back((t, total));
        while self.totals.len() > MAX_POINTS
            || self.totals.front().is_some_and(|f| t - f.0 > HISTORY_S)
        {
            self.totals.pop_front();
        }
    }
}

impl Sampler {
    /// Sorts one sample's sockets into the watched processes' series:
    /// theirs by endpoint, then TIME_WAIT and orphans they left (by 4-tuple),
    /// then who else talks to the same remotes.
    pub(super) fn ingest(&mut self, t: f64, sample: &Sample, baseline: bool) {
        let sockets = &sample.sockets;
        let listen = self.listening_ports(sockets);
        let mut owned = self.group_owned(t, sockets, &listen);
        self.claim_fd_only(t, &sample.fd_only, &mut owned);
        let places = self.places(&owned, &listen);
        let unowned = self.sort_unowned(t, sockets, &places, &mut owned);
        self.feed_series(t, owned, &unowned, baseline);
    }

    /// Local ports each watched process listens on: its sockets there are
    /// inbound, grouped by port.
    fn listening_ports(&self, sockets: &[SocketInfo]) -> HashMap<u32, HashSet<u16>> {
        let mut listen: HashMap<u32, HashSet<u16>> = HashMap::new();
        for s in sockets.iter().filter(|s| s.state == TcpState::Listen) {
            if let Some(key) = s.pid.and_then(|p| self.key_of(p)) {
                listen.entry(key).or_default().insert(s.local.port());
            }
        }
        listen
    }

    /// The sockets watched processes own, by process and endpoint; each
    /// 4-tuple remembered so its TIME_WAIT can be attributed later.
    fn group_owned(
        &mut self,
        t: f64,
        sockets: &[SocketInfo],
        listen: &HashMap<u32, HashSet<u16>>,
    ) -> Owned {
        let mut groups: Vec<(u32, Endpoint, Vec<Obs>)> = Vec::new();
        let mut index: HashMap<(u32, Endpoint), usize> = HashMap::new();
        let mut group: Option<(u32, Endpoint, usize)> = None;
        let mut holders = Holders::default();
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
            self.inodes.insert(
                s.inode,
                InodeOwner {
                    endpoint,
                    cookie: s.cookie,
                    last_seen: t,
                },
            );
            holders.add(s.remote, key);
        }
        let mut per: HashMap<u32, HashMap<Endpoint, Vec<Obs>>> = HashMap::new();
        for (key, endpoint, obs) in groups {
            per.entry(key).or_default().insert(endpoint, obs);
        }
        Owned { per, holders }
    }

    /// Socket fds of watched processes that the kernel no longer lists
    /// (FD_ONLY) stay in the series they were in, under the same identity;
    /// one never seen in the table goes to [`Endpoint::Unknown`].
    fn claim_fd_only(&mut self, t: f64, fd_only: &[FdOnly], owned: &mut Owned) {
        for f in fd_only {
            let Some(key) = self.key_of(f.pid) else {
                continue;
            };
            let known = self.inodes.get_mut(&f.inode).map(|o| {
                o.last_seen = t;
                (o.endpoint, o.cookie)
            });
            // Kernel cookies count up from 1; an inode with the top bit set
            // cannot collide with one.
            let (endpoint, cookie) = known.unwrap_or((Endpoint::Unknown, f.inode | 1 << 63));
            owned
                .per
                .entry(key)
                .or_default()
                .entry(endpoint)
                .or_default()
                .push(Obs {
                    cookie,
                    state: SockState::FdOnly,
                    recv_q: 0,
                    idle_s: None,
                    recv_idle_s: None,
                });
        }
        self.inodes.retain(|_, o| t - o.last_seen <= TUPLE_MEMORY_S);
    }

    /// The remotes and inbound ports watched processes have or had: only
    /// other sockets there matter (on a busy host, most don't).
    fn places(&self, owned: &Owned, listen: &HashMap<u32, HashSet<u16>>) -> Places {
        let mut remotes: HashSet<SocketAddr> = owned.holders.remotes().collect();
        let mut ports: HashSet<u16> = HashSet::new();
        for p in self.procs.values() {
            for ep in p.endpoints.keys() {
                match ep {
                    Endpoint::Remote(a) => remotes.insert(*a),
                    Endpoint::Inbound(port) => ports.insert(*port),
                    Endpoint::Unknown => false,
                };
            }
        }
        for l in listen.values() {
            ports.extend(l.iter().copied());
        }
        Places { remotes, ports }
    }

    /// Every socket no watched process owns: TIME_WAIT and orphans go to
    /// the process whose 4-tuple they have, else count as unattributed;
    /// other processes' live sockets to the same remotes mark those remotes
    /// shared. Updates the host-wide unattributed counts.
    fn sort_unowned(
        &mut self,
        t: f64,
        sockets: &[SocketInfo],
        places: &Places,
        owned: &mut Owned,
    ) -> Unowned {
        let mut unowned = Unowned::default();
        let mut unattributed: HashMap<SocketAddr, u32> = HashMap::new();
        let mut unattributed_total = 0;
        let mut foreign_now: HashSet<u64> = HashSet::new();
        for s in sockets.iter().filter(|s| s.state != TcpState::Listen) {
            if s.inode != 0 {
                if s.pid.and_then(|p| self.key_of(p)).is_some()
                    || !places.remotes.contains(&s.remote)
                {
                    continue;
                }
                foreign_now.insert(s.inode);
                // A socket of nobody we know counts as another holder only
                // if it was there last sample too: a watched churner's own
                // sockets often close before /proc can be read, and must
                // not hide its TIME_WAIT.
                if self.foreign_prev.contains(&s.inode) {
                    owned.holders.mark_shared(s.remote);
                }
            } else if let Some(owner) = self.tuples.get_mut(&s.tuple()) {
                // TIME_WAIT or an orphan the program closed: the 4-tuple was
                // this process's in an earlier sample.
                owner.last_seen = t;
                owned
                    .per
                    .entry(owner.key)
                    .or_default()
                    .entry(owner.endpoint)
                    .or_default()
                    .push(to_obs(s));
            } else if s.state == TcpState::TimeWait {
                unattributed_total += 1;
                if self.mode == Mode::All {
                    *unattributed.entry(s.remote).or_default() += 1;
                }
                if places.remotes.contains(&s.remote) {
                    unowned
                        .by_remote
                        .entry(s.remote)
                        .or_default()
                        .push(s.cookie);
                }
                if places.ports.contains(&s.local.port()) {
                    unowned
                        .by_port
                        .entry(s.local.port())
                        .or_default()
                        .push(s.cookie);
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
        unowned
    }

    /// Feeds every watched process's endpoint series with this sample, and
    /// keeps who else holds connections to its remotes for judging.
    fn feed_series(&mut self, t: f64, mut owned: Owned, unowned: &Unowned, baseline: bool) {
        self.others.clear();
        let mut events: HashMap<u32, HashMap<Endpoint, Tally>> = HashMap::new();
        for ((key, remote), tally) in std::mem::take(&mut self.pending) {
            events
                .entry(key)
                .or_default()
                .insert(Endpoint::Remote(remote), tally);
        }
        let mut keys: HashSet<u32> = owned
            .per
            .keys()
            .copied()
            .chain(self.procs.keys().copied())
            .chain(events.keys().copied())
            .collect();
        if let Mode::Pid(root) = self.mode {
            // Shown even while it has no socket at all.
            keys.insert(root);
        }
        for key in keys {
            let mine = owned.per.remove(&key).unwrap_or_default();
            let proc = self
                .procs
                .entry(key)
                .or_insert_with(|| ProcessSeries::new(key));
            if let Mode::Pid(_) = self.mode {
                proc.pids = self.tree.clone();
            }
            let counted = events.remove(&key).unwrap_or_default();
            proc.observe(t, mine, counted, unowned, baseline);
            for ep in proc.endpoints.keys() {
                if let Endpoint::Remote(a) = ep {
                    if owned.holders.shared_with_others(*a, key) {
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
}

fn to_obs(s: &SocketInfo) -> Obs {
    Obs {
        cookie: s.cookie,
        state: s.state.into(),
        recv_q: s.recv_q,
        idle_s: s.times.map(|t| f64::from(t.idle_ms()) / 1000.0),
        recv_idle_s: s.times.map(|t| f64::from(t.last_data_recv_ms) / 1000.0),
    }
}
