//! [`SocketTable`]: the one entry point: pick a source, sample, resolve owners.

use std::io;
use std::time::{Duration, Instant};

use super::fd_only::{self, FdOnly};
use super::namespaces::Namespaces;
use super::netlink::NetlinkReader;
use super::owners::{OwnerMap, Owners};
use super::{SocketInfo, netns, procfs};

/// Where the socket list came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Netlink,
    Procfs,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Netlink => "netlink sock_diag",
            Source::Procfs => "/proc/net/tcp",
        }
    }
}

/// What one sample cost, for `--json` and the speed bench.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleStats {
    pub wall: Duration,
    /// CPU time of the sampling thread (user + system).
    pub cpu: Duration,
    pub sockets: usize,
    /// fd directories listed and fd links read to resolve owners.
    pub dirs_listed: u32,
    pub readlinks: u32,
    pub source: Source,
}

/// One dump of the host's TCP sockets, owners filled in where in scope.
#[derive(Clone, Debug)]
pub struct Sample {
    pub sockets: Vec<SocketInfo>,
    /// Socket fds of processes in scope with no TCP entry (see
    /// [`SocketTable::finding_fd_only`]); empty unless asked for.
    pub fd_only: Vec<FdOnly>,
    pub stats: SampleStats,
}

/// A socket source plus the owner cache. Keep one alive across samples:
/// the cache is what makes owner lookup cheap.
pub struct SocketTable {
    reader: Option<NetlinkReader>,
    owners: OwnerMap,
    warning: Option<String>,
    with_info: bool,
    fd_only: Option<fd_only::Finder>,
    /// Other network namespaces (containers), for `watch --all`.
    others: Option<Namespaces>,
    forced_procfs: bool,
    /// Where the /proc fallback reads: `/proc/net` or `/proc/PID/net`.
    proc_dir: String,
}

impl SocketTable {
    /// Opens netlink sock_diag, or falls back to /proc/net/tcp with a
    /// warning. `LEAKLESS_SOCKETS=procfs` forces the fallback (for testing it
    /// and for hosts where netlink misbehaves).
    pub fn open(owners: Owners) -> SocketTable {
        SocketTable::open_in(owners, None)
    }

    /// Like [`open`](Self::open), but reads the network namespace `pid`
    /// lives in (a process in a container). Entering another namespace
    /// needs CAP_SYS_ADMIN; without it, that process's own
    /// `/proc/PID/net/tcp` view is read instead, with a warning.
    pub fn open_in(owners: Owners, netns_of: Option<u32>) -> SocketTable {
        let forced = std::env::var("LEAKLESS_SOCKETS").is_ok_and(|v| v == "procfs");
        let elsewhere = netns_of.filter(|pid| netns::differs(*pid));
        let proc_dir = elsewhere.map_or("/proc/net".to_string(), |pid| format!("/proc/{pid}/net"));
        let (reader, warning) = if forced {
            (
                None,
                Some("LEAKLESS_SOCKETS=procfs: reading /proc/net/tcp (no socket cookies, no idle times)".to_string()),
            )
        } else {
            let opened = match elsewhere {
                None => NetlinkReader::open(),
                Some(pid) => netns::within(pid, NetlinkReader::open),
            };
            match (opened, elsewhere) {
                (Ok(r), _) => (Some(r), None),
                (Err(e), None) => (None, Some(fallback_warning(&e))),
                (Err(e), Some(pid)) => (
                    None,
                    Some(format!(
                        "pid {pid} is in another network namespace and entering it failed ({e}; needs CAP_SYS_ADMIN): reading {proc_dir}/tcp instead (no socket cookies, no idle times)"
                    )),
                ),
            }
        };
        SocketTable {
            reader,
            owners: OwnerMap::new(owners),
            warning,
            with_info: true,
            fd_only: None,
            others: None,
            forced_procfs: forced,
            proc_dir,
        }
    }

    /// Skip `tcp_info` (idle times) for a smaller, faster dump.
    pub fn without_tcp_info(mut self) -> SocketTable {
        self.with_info = false;
        self
    }

    /// Also list the socket fds of processes in scope that the kernel's
    /// TCP table no longer has (FD_ONLY): reset connections still held.
    pub fn finding_fd_only(mut self) -> SocketTable {
        self.fd_only = Some(fd_only::Finder::new());
        self
    }

    /// Also dump every other network namespace a process is in (each
    /// container's), not only ours.
    pub fn across_namespaces(mut self) -> SocketTable {
        self.others = Some(Namespaces::new(self.forced_procfs));
        self
    }

    /// Changes which processes' sockets get owners (see [`Owners`]).
    pub fn set_owners(&mut self, owners: Owners) {
        self.owners.set_scope(owners);
    }

    pub fn source(&self) -> Source {
        if self.reader.is_some() {
            Source::Netlink
        } else {
            Source::Procfs
        }
    }

    /// Things the user should know about what this table can and cannot
    /// see: the /proc fallback, processes whose fds we may not read.
    pub fn warnings(&self) -> Vec<String> {
        let mut w: Vec<String> = self.warning.iter().cloned().collect();
        w.extend(self.others.as_ref().and_then(Namespaces::warning));
        let denied = self.owners.denied();
        if !denied.is_empty() {
            let list: Vec<String> = denied.iter().take(8).map(|p| p.to_string()).collect();
            w.push(format!(
                "permission denied reading /proc/PID/fd of pid {}{}: their sockets cannot be attributed (run as their user or root)",
                list.join(", "),
                if denied.len() > 8 { ", ..." } else { "" }
            ));
        }
        w
    }

    /// Pids in scope whose fds could not be read.
    pub fn denied(&self) -> impl Iterator<Item = u32> + '_ {
        self.owners.denied().iter().copied()
    }

    /// Dumps every TCP socket (IPv4 and IPv6) and resolves owners in scope.
    pub fn sample(&mut self) -> io::Result<Sample> {
        let wall0 = Instant::now();
        let cpu0 = thread_cpu();
        self.owners.prescan();
        let mut sockets = Vec::with_capacity(256);
        if let Some(reader) = &mut self.reader {
            if let Err(e) = reader.dump(self.with_info, &mut sockets) {
                // Refused at request time (e.g. an LSM): fall back for good.
                self.reader = None;
                self.warning = Some(fallback_warning(&e));
                sockets.clear();
            }
        }
        if self.reader.is_none() {
            procfs::dump(&self.proc_dir, &mut sockets)?;
        }
        if let Some(others) = &mut self.others {
            others.dump(self.with_info, &mut sockets)?;
        }
        self.owners.resolve(&mut sockets);
        let (fd_only, fd_only_readlinks) = match &mut self.fd_only {
            Some(finder) => finder.find(&self.owners),
            None => (Vec::new(), 0),
        };
        let scan = self.owners.stats();
        let stats = SampleStats {
            wall: wall0.elapsed(),
            cpu: thread_cpu().saturating_sub(cpu0),
            sockets: sockets.len(),
            dirs_listed: scan.dirs_listed,
            readlinks: scan.readlinks + fd_only_readlinks,
            source: self.source(),
        };
        Ok(Sample {
            sockets,
            fd_only,
            stats,
        })
    }
}

fn fallback_warning(e: &io::Error) -> String {
    format!(
        "netlink sock_diag refused ({e}); falling back to /proc/net/tcp: slower, no socket cookies, no idle times"
    )
}

/// CPU time consumed by the calling thread so far.
pub fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn sample_attributes_own_sockets() {
        let me = std::process::id();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let mut table = SocketTable::open(Owners::Pids(vec![me]));
        assert_eq!(table.source(), Source::Netlink);
        let sample = table.sample().unwrap();
        let mine = sample
            .sockets
            .iter()
            .find(|s| s.local == c.local_addr().unwrap() && s.remote == c.peer_addr().unwrap())
            .unwrap();
        assert_eq!(mine.pid, Some(me));
        assert!(sample.stats.sockets >= 3);
        assert!(sample.stats.readlinks >= 1);
    }

    /// IPv6 sockets come from the same dump, attributed the same way.
    #[test]
    fn sample_sees_ipv6() {
        let Ok(l) = TcpListener::bind("[::1]:0") else {
            eprintln!("SKIPPED: no IPv6 loopback here");
            return;
        };
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let me = std::process::id();
        let mut table = SocketTable::open(Owners::Pids(vec![me]));
        let sample = table.sample().unwrap();
        let mine = sample
            .sockets
            .iter()
            .find(|s| s.local == c.local_addr().unwrap() && s.remote == c.peer_addr().unwrap())
            .expect("the IPv6 client socket");
        assert_eq!(mine.remote, l.local_addr().unwrap());
        assert!(mine.remote.is_ipv6());
        assert_eq!(mine.pid, Some(me));
        assert!(mine.times.is_some());
    }
}
