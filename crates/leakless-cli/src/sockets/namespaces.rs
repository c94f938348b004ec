//! Every network namespace on the host, for `watch --all`: each container
//! (each Kubernetes pod) has its own, and a sock_diag socket sees only the
//! namespace it was created in. One reader per namespace that has a
//! process in it: a netlink socket created inside it (needs
//! CAP_SYS_ADMIN), else that namespace's `/proc/PID/net/tcp`, with a
//! warning (no cookies, no idle times).

use std::io;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use foldhash::{HashMap, HashMapExt};

use super::netlink::NetlinkReader;
use super::owners::list_pids;
use super::{SocketInfo, netns, procfs};

/// The namespace list is re-read this often (one stat(2) per process).
const REFRESH: Duration = Duration::from_secs(5);

/// A network namespace: the device and inode of `/proc/PID/ns/net`.
type NsId = (u64, u64);

enum Reader {
    Netlink(NetlinkReader),
    /// `/proc/PID/net` of a process inside it.
    Proc(String),
}

/// Readers for the namespaces other than ours.
pub struct Namespaces {
    ours: Option<NsId>,
    /// Read every namespace from /proc (`LEAKLESS_SOCKETS=procfs`).
    procfs_only: bool,
    readers: HashMap<NsId, Reader>,
    refreshed: Option<Instant>,
    /// Namespaces read through /proc because entering them failed, and why.
    fallback: Option<(usize, String)>,
}

fn ns_of(pid: &str) -> Option<NsId> {
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

impl Namespaces {
    pub fn new(procfs_only: bool) -> Namespaces {
        Namespaces {
            ours: ns_of("self"),
            procfs_only,
            readers: HashMap::new(),
            refreshed: None,
            fallback: None,
        }
    }

    /// How many other namespaces are read, and a warning when some are
    /// read without netlink.
    pub fn warning(&self) -> Option<String> {
        let (n, why) = self.fallback.as_ref()?;
        Some(format!(
            "{n} network namespace(s) (containers) read from /proc/PID/net/tcp because entering them failed ({why}; needs CAP_SYS_ADMIN): no socket cookies, no idle times there"
        ))
    }

    /// Finds the namespaces processes are in, opening readers for new ones
    /// and dropping those no process is in any more.
    fn refresh(&mut self) {
        if self.refreshed.is_some_and(|t| t.elapsed() < REFRESH) {
            return;
        }
        self.refreshed = Some(Instant::now());
        let mut present: HashMap<NsId, u32> = HashMap::new();
        for pid in list_pids().unwrap_or_default() {
            if let Some(ns) = ns_of(&pid.to_string()) {
                if Some(ns) != self.ours {
                    present.entry(ns).or_insert(pid);
                }
            }
        }
        self.readers.retain(|ns, _| present.contains_key(ns));
        let mut failed: Option<String> = None;
        for (ns, pid) in present {
            if self.readers.contains_key(&ns) {
                continue;
            }
            let proc = || Reader::Proc(format!("/proc/{pid}/net"));
            let reader = if self.procfs_only {
                proc()
            } else {
                match netns::within(pid, NetlinkReader::open) {
                    Ok(r) => Reader::Netlink(r),
                    Err(e) => {
                        failed = Some(e.to_string());
                        proc()
                    }
                }
            };
            self.readers.insert(ns, reader);
        }
        let on_proc = self
            .readers
            .values()
            .filter(|r| matches!(r, Reader::Proc(_)))
            .count();
        self.fallback = match (on_proc, failed) {
            (0, _) => None,
            (n, Some(why)) => Some((n, why)),
            (n, None) => self.fallback.take().map(|(_, why)| (n, why)),
        };
    }

    /// Appends the sockets of every other namespace.
    pub fn dump(&mut self, with_info: bool, out: &mut Vec<SocketInfo>) -> io::Result<()> {
        self.refresh();
        let mut gone = Vec::new();
        for (ns, reader) in self.readers.iter_mut() {
            let before = out.len();
            let ok = match reader {
                Reader::Netlink(r) => r.dump(with_info, out).is_ok(),
                // The process we read through may have exited: the next
                // refresh picks another.
                Reader::Proc(dir) => procfs::dump(dir, out).is_ok(),
            };
            if !ok {
                out.truncate(before);
                gone.push(*ns);
            }
        }
        if !gone.is_empty() {
            for ns in gone {
                self.readers.remove(&ns);
            }
            self.refreshed = None;
        }
        Ok(())
    }

    /// Namespaces read besides ours.
    pub fn count(&self) -> usize {
        self.readers.len()
    }
}
