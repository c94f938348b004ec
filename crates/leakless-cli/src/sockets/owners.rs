//! Socket inode -> owning pid, through `/proc/PID/fd`, cached.
//!
//! `ss -p` readlinks every fd of every process on every run; with 10k sockets
//! that is most of its time. We keep what we learnt: per pid, fd number ->
//! socket inode (or "not a socket"), and a global inode -> pid map. A sample
//! only goes to /proc when the socket table holds an inode we cannot place,
//! and then it reads directories and readlinks only fds it has not seen or
//! whose socket has since disappeared. Inodes that belong to nobody in scope
//! are remembered as foreign so they do not trigger a scan every sample.
//!
//! What can go stale, and how it is bounded:
//! - an fd that was a file and is now a socket, or one whose socket lives
//!   on elsewhere (a dup, a forked child) while the fd number holds a new
//!   one: caught by the second pass (an unplaced inode with a uid the
//!   process runs as -> re-readlink its non-socket fds, and every fd of a
//!   process with at most [`SMALL_FD_TABLE`]);
//! - a socket passed to a process by SCM_RIGHTS or inherited by fork while we
//!   thought it foreign, or, in a process with a large fd table, opened
//!   while another fd closed (same count, none of its known sockets closed):
//!   caught by the full recheck every [`FULL_RECHECK`];
//! - in a process with a large fd table, a new socket on an fd whose old
//!   socket lives on elsewhere: not caught until the old one is gone
//!   (reading its 10k fds again is what makes `ss -p` slow).
//!
//! Whether a process can own a new inode is decided cheaply first: the
//! socket's uid must be the process's, and, for processes with more than
//! [`SMALL_FD_TABLE`] fds, its fd set must have changed (`stat("/proc/PID/fd")`
//! gives the fd count on Linux 6.2+, or a socket of it closed). Only then is
//! its fd directory listed. So a process holding 10k sockets is not listed
//! every time some other process on the host opens a socket.

use std::collections::BTreeSet;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use super::SocketInfo;

/// Whose sockets to resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owners {
    /// No owner lookup at all (cheapest; `pid` stays `None`).
    None,
    /// Only these processes (watch --pid, bench's own pid).
    Pids(Vec<u32>),
    /// Every process we may read (watch --all, and what `ss -p` does).
    All,
}

/// Forget the foreign set and list every process in scope again this often.
pub const FULL_RECHECK: Duration = Duration::from_secs(30);

/// Processes with at most this many fds are listed whenever an unknown
/// socket could be theirs: cheap, and exact for a process that closes one
/// socket and opens another between samples (same fd count). Above it, the
/// count and closed-socket checks decide, and the full recheck catches the rest.
pub const SMALL_FD_TABLE: u64 = 1024;

/// Counters of the work the last resolve did, for `--json`'s sample stats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    /// Processes whose fd directory was listed.
    pub dirs_listed: u32,
    /// readlink(2) calls on fd entries.
    pub readlinks: u32,
}

#[derive(Clone, Copy)]
struct Owned {
    pid: u32,
    generation: u64,
}

/// Marks a cached fd whose socket was not in the TCP table when read (a UDP
/// or unix socket, or a TCP socket opened after the dump): kept, so such fds
/// are not read again every scan, but claimable once the inode shows up.
const NOT_TCP: u64 = 1 << 63;

#[derive(Default)]
struct ProcFds {
    /// Open fds at the last listing, as `stat("/proc/PID/fd").st_size`
    /// reports them (Linux 6.2+); `None` where the kernel reports 0.
    count: Option<u64>,
    /// One of its sockets closed since the last listing.
    lost: bool,
    /// fd number -> socket inode: as is for a TCP socket of the table,
    /// `inode | NOT_TCP` for another socket, 0 for anything else (a file, a
    /// pipe), so those are not read again.
    fds: HashMap<u32, u64>,
    uid: u32,
}

/// Which cached fds a scan of a process's fds takes as they were.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Trust {
    /// Files, other sockets, and sockets still in the table.
    Cached,
    /// Only sockets still in the table.
    LiveSockets,
    /// None: every fd is read again.
    Nothing,
}

/// The cache. One per [`super::SocketTable`].
pub struct OwnerMap {
    scope: Owners,
    procs: HashMap<u32, ProcFds>,
    /// inode -> owner, stamped with the last sample that saw it.
    owner: HashMap<u64, Owned>,
    /// inodes no process in scope owns -> last sample that saw them.
    foreign: HashMap<u64, u64>,
    generation: u64,
    /// Socket inodes read from small processes' fds just before the dump:
    /// inode -> (pid, fd).
    pre: HashMap<u64, (u32, u32)>,
    prescanned: bool,
    last_full: Option<Instant>,
    /// Pids whose fds we may not read (another user's, without privilege).
    denied: BTreeSet<u32>,
    stats: ScanStats,
}

impl OwnerMap {
    pub fn new(scope: Owners) -> OwnerMap {
        OwnerMap {
            scope,
            procs: HashMap::new(),
            owner: HashMap::new(),
            foreign: HashMap::new(),
            generation: 0,
            pre: HashMap::new(),
            prescanned: false,
            last_full: None,
            denied: BTreeSet::new(),
            stats: ScanStats::default(),
        }
    }

    /// Changes the processes in scope (e.g. a watched process forked). New
    /// pids are scanned on the next resolve; dropped pids are forgotten.
    pub fn set_scope(&mut self, scope: Owners) {
        if scope != self.scope {
            if let Owners::Pids(p) = &scope {
                let keep: HashSet<u32> = p.iter().copied().collect();
                self.procs.retain(|pid, _| keep.contains(pid));
                self.owner.retain(|_, o| keep.contains(&o.pid));
            }
            // A new process may own sockets we had called foreign.
            self.foreign.clear();
            self.scope = scope;
        }
    }

    /// The socket fds of the processes in scope as last read: (pid, fd,
    /// inode, whether the inode was in the TCP table when read).
    pub fn socket_fds(&self) -> impl Iterator<Item = (u32, u32, u64, bool)> + '_ {
        self.procs.iter().flat_map(|(pid, p)| {
            p.fds
                .iter()
                .filter(|(_, v)| **v != 0)
                .map(move |(fd, v)| (*pid, *fd, v & !NOT_TCP, v & NOT_TCP == 0))
        })
    }

    /// Whether `inode` is in the last resolved dump, owned by a process in
    /// scope.
    pub fn listed(&self, inode: u64) -> bool {
        self.owner.contains_key(&inode)
    }

    pub fn denied(&self) -> &BTreeSet<u32> {
        &self.denied
    }

    pub fn stats(&self) -> ScanStats {
        self.stats
    }

    /// Call just before dumping the socket table. For the small processes in
    /// scope (at most [`SMALL_FD_TABLE`] fds), reads the fds that may hold a
    /// new socket (new numbers, non-TCP or closed sockets) and remembers the
    /// socket inodes. A connection that lives 30 ms, opened and closed
    /// between samples, is then attributed if it is open now and still in
    /// the dump, instead of being gone by the time a scan after the dump
    /// reads the fd (on a host with 10k sockets the dump itself takes that
    /// long). Files are not read again.
    pub fn prescan(&mut self) {
        self.stats = ScanStats::default();
        self.prescanned = true;
        self.pre.clear();
        let Owners::Pids(pids) = &self.scope else {
            return;
        };
        for &pid in pids {
            let Some(proc) = self.procs.get_mut(&pid) else {
                continue;
            };
            if proc.count.is_none_or(|n| n > SMALL_FD_TABLE) {
                continue;
            }
            let dir = format!("/proc/{pid}/fd");
            let (Ok(entries), Ok(dirfd)) = (fs::read_dir(&dir), fs::File::open(&dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                let Some(fd) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| n.parse::<u32>().ok())
                else {
                    continue;
                };
                match proc.fds.get(&fd) {
                    Some(0) => continue,
                    Some(&i) if i & NOT_TCP == 0 && self.owner.contains_key(&i) => continue,
                    _ => {}
                }
                self.stats.readlinks += 1;
                match link_inode(&dirfd, fd) {
                    Some(i) => {
                        proc.fds.insert(fd, i | NOT_TCP);
                        self.pre.insert(i, (pid, fd));
                    }
                    None => {
                        proc.fds.insert(fd, 0);
                    }
                }
            }
        }
    }

    /// Fills `pid` on every socket whose owner is in scope.
    pub fn resolve(&mut self, sockets: &mut [SocketInfo]) {
        if !std::mem::take(&mut self.prescanned) {
            self.stats = ScanStats::default();
            self.pre.clear();
        }
        if self.scope == Owners::None {
            return;
        }
        let full = self.last_full.is_none_or(|t| t.elapsed() >= FULL_RECHECK);
        if full {
            self.foreign.clear();
            self.last_full = Some(Instant::now());
        }
        // One pass: mark what is still alive (a generation stamp, cheaper
        // than building a set of 10k+ inodes every sample), fill known owners,
        // collect the unknown.
        self.generation += 1;
        let generation = self.generation;
        let mut unknown: Vec<(u64, u32)> = Vec::new();
        for s in sockets.iter_mut().filter(|s| s.inode != 0) {
            if let Some(o) = self.owner.get_mut(&s.inode) {
                o.generation = generation;
                s.pid = Some(o.pid);
            } else if let Some(g) = self
                .foreign
                .get_mut(&s.inode)
                .filter(|_| !self.pre.contains_key(&s.inode))
            {
                // Called foreign before, and the prescan did not just find
                // it in one of our processes' fds.
                *g = generation;
            } else {
                unknown.push((s.inode, s.uid));
            }
        }
        // Inodes the prescan read from our processes' fds just before.
        if !self.pre.is_empty() {
            unknown.retain(|(inode, _)| {
                let Some(&(pid, fd)) = self.pre.get(inode) else {
                    return true;
                };
                if let Some(p) = self.procs.get_mut(&pid) {
                    p.fds.insert(fd, *inode);
                }
                self.owner.insert(*inode, Owned { pid, generation });
                false
            });
            for s in sockets
                .iter_mut()
                .filter(|s| s.inode != 0 && s.pid.is_none())
            {
                s.pid = self.owner.get(&s.inode).map(|o| o.pid);
            }
        }
        // A socket of ours that closed freed an fd a new socket may reuse.
        let procs = &mut self.procs;
        self.owner.retain(|_, o| {
            let alive = o.generation == generation;
            if !alive {
                if let Some(p) = procs.get_mut(&o.pid) {
                    p.lost = true;
                }
            }
            alive
        });
        self.foreign.retain(|_, g| *g == generation);

        let new_pids = matches!(&self.scope, Owners::Pids(p) if p.iter().any(|pid| !self.procs.contains_key(pid)));
        if full || !unknown.is_empty() || new_pids {
            let live: HashMap<u64, u32> = sockets
                .iter()
                .filter(|s| s.inode != 0)
                .map(|s| (s.inode, s.uid))
                .collect();
            self.scan(&live, &unknown, full);
            for s in sockets.iter_mut().filter(|s| s.inode != 0) {
                s.pid = self.owner.get(&s.inode).map(|o| o.pid);
            }
        }
    }

    fn candidates(&self) -> Vec<u32> {
        match &self.scope {
            Owners::None => Vec::new(),
            Owners::Pids(p) => p.clone(),
            Owners::All => list_pids().unwrap_or_default(),
        }
    }

    /// Finds the owners of `unknown` inodes. A process's fd directory is
    /// listed only when it could hold one: it is new to us, or a full recheck
    /// is due, or it runs as the uid of an unknown socket and its fd set
    /// changed (count, from one stat(2), or one of its sockets closed).
    fn scan(&mut self, live: &HashMap<u64, u32>, unknown: &[(u64, u32)], full: bool) {
        let pids = self.candidates();
        let present: HashSet<u32> = pids.iter().copied().collect();
        self.procs.retain(|pid, _| present.contains(pid));
        self.owner.retain(|_, o| present.contains(&o.pid));
        let uids: HashSet<u32> = unknown.iter().map(|(_, u)| *u).collect();
        let mut scanned = Vec::new();
        for &pid in &pids {
            let size = fd_dir_size(pid);
            let must = match self.procs.get(&pid) {
                None => true,
                Some(p) => {
                    let changed = p.lost
                        || size.is_none()
                        || size != p.count
                        || size.is_some_and(|n| n <= SMALL_FD_TABLE);
                    full || (uids.contains(&p.uid) && changed)
                }
            };
            if must {
                // Even a full recheck trusts cached fds whose socket is
                // still alive: readlinking 10k fds is what makes `ss -p`
                // slow. The second pass below reads more where a socket
                // is left unplaced.
                self.scan_pid(pid, live, Trust::Cached);
                if let Some(p) = self.procs.get_mut(&pid) {
                    p.count = size;
                    p.lost = false;
                    scanned.push(pid);
                }
            }
        }
        // Second pass: an inode still unplaced whose uid matches a process
        // may sit on an fd we cached as "not a socket" before it was
        // reused, or as a socket that is still in the table because
        // another fd or process holds it too. A small process has all its
        // fds read again; a large one, those that are not known sockets.
        let unplaced_uids: HashSet<u32> = unknown
            .iter()
            .filter(|(i, _)| !self.owner.contains_key(i))
            .map(|(_, uid)| *uid)
            .collect();
        if !unplaced_uids.is_empty() {
            for &pid in &scanned {
                let Some(p) = self.procs.get(&pid) else {
                    continue;
                };
                if unplaced_uids.contains(&p.uid) {
                    let trust = if p.count.is_some_and(|n| n <= SMALL_FD_TABLE) {
                        Trust::Nothing
                    } else {
                        Trust::LiveSockets
                    };
                    self.scan_pid(pid, live, trust);
                }
            }
        }
        for (inode, _) in unknown {
            if !self.owner.contains_key(inode) {
                self.foreign.insert(*inode, self.generation);
            }
        }
    }

    /// Lists one process's fds and readlinks those `trust` cannot vouch
    /// for: always new fd numbers, and fds whose socket is gone (the number
    /// may be reused).
    fn scan_pid(&mut self, pid: u32, live: &HashMap<u64, u32>, trust: Trust) {
        let dir = format!("/proc/{pid}/fd");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                if e.kind() == io::ErrorKind::PermissionDenied {
                    self.denied.insert(pid);
                }
                self.procs.remove(&pid);
                return;
            }
        };
        self.denied.remove(&pid);
        self.stats.dirs_listed += 1;
        // readlinkat(2) relative to the directory: no path walk of
        // /proc/PID/fd per fd, and no allocation (a cold sample of a 10k-fd
        // process is mostly these calls).
        let dirfd = fs::File::open(&dir).ok();
        let proc = self.procs.entry(pid).or_default();
        if let Ok(md) = fs::metadata(format!("/proc/{pid}")) {
            proc.uid = md.uid();
        }
        let mut seen = HashSet::with_capacity(proc.fds.len());
        for entry in entries.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            seen.insert(fd);
            let cached = proc.fds.get(&fd).copied();
            let trusted = match cached {
                Some(0) => trust == Trust::Cached,
                Some(v) if v & NOT_TCP != 0 => {
                    if live.contains_key(&(v & !NOT_TCP)) {
                        // A socket read before it reached the table.
                        proc.fds.insert(fd, v & !NOT_TCP);
                        trust != Trust::Nothing
                    } else {
                        trust == Trust::Cached
                    }
                }
                Some(inode) => live.contains_key(&inode) && trust != Trust::Nothing,
                None => false,
            };
            if trusted {
                continue;
            }
            self.stats.readlinks += 1;
            let inode = match &dirfd {
                Some(d) => link_inode(d, fd),
                None => fs::read_link(entry.path())
                    .ok()
                    .and_then(|t| socket_inode(t.to_str()?)),
            }
            .map_or(0, |i| {
                if live.contains_key(&i) {
                    i
                } else {
                    i | NOT_TCP
                }
            });
            proc.fds.insert(fd, inode);
        }
        proc.fds.retain(|fd, _| seen.contains(fd));
        for &inode in proc.fds.values() {
            if inode != 0 && inode & NOT_TCP == 0 {
                let generation = self.generation;
                self.owner.insert(inode, Owned { pid, generation });
                self.foreign.remove(&inode);
            }
        }
    }
}

/// The number of open fds from one stat(2) of `/proc/PID/fd` (Linux 6.2
/// and later report it as the directory's size); `None` on older kernels,
/// which report 0.
pub fn fd_dir_size(pid: u32) -> Option<u64> {
    fs::metadata(format!("/proc/{pid}/fd"))
        .ok()
        .map(|m| m.len())
        .filter(|n| *n > 0)
}

/// The socket inode fd `fd` refers to, read with readlinkat(2) relative to
/// its open `/proc/PID/fd` directory; `None` when it is not a socket.
pub(super) fn link_inode(dir: &fs::File, fd: u32) -> Option<u64> {
    use std::os::fd::AsRawFd;
    // The fd number as a NUL-terminated decimal name (at most 10 digits).
    let mut digits = [0u8; 10];
    let (mut i, mut v) = (digits.len(), fd);
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut name = [0u8; 11];
    name[..digits.len() - i].copy_from_slice(&digits[i..]);
    let mut buf = [0u8; 64];
    // SAFETY: a NUL-terminated name and a buffer with its true length;
    // readlinkat writes at most that many bytes and returns the count.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr().cast(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n <= 0 {
        return None;
    }
    socket_inode(std::str::from_utf8(&buf[..n as usize]).ok()?)
}

/// `socket:[12345]` -> 12345.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Every numeric entry of /proc.
pub fn list_pids() -> io::Result<Vec<u32>> {
    Ok(fs::read_dir("/proc")?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect())
}

#[cfg(test)]
#[path = "owners_tests.rs"]
mod tests;
