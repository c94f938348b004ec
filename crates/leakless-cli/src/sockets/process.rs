//! Facts about a process and the host's TCP settings, read from /proc.
//!
//! Each function does one small read and returns `None` where the file is
//! missing or unreadable (process gone, another user's), so callers can show
//! what they have.

use std::fs;
use std::os::unix::fs::MetadataExt;

/// The process's command name (`/proc/PID/comm`).
pub fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string())
}

/// True while `/proc/PID` exists and the process is not a zombie.
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Field 3 is the state; it follows the last ')' of the comm field.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|st| st != "Z" && st != "X"),
        Err(_) => false,
    }
}

/// The real uid the process runs as.
pub fn uid(pid: u32) -> Option<u32> {
    fs::metadata(format!("/proc/{pid}")).ok().map(|m| m.uid())
}

/// Open file descriptors: one stat(2) where the kernel reports the count as
/// the size of `/proc/PID/fd` (6.2+), else the directory's entries.
pub fn fd_count(pid: u32) -> Option<u32> {
    if let Some(n) = super::owners::fd_dir_size(pid) {
        return Some(n as u32);
    }
    fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count() as u32)
}

/// The soft `RLIMIT_NOFILE` ("Max open files" in `/proc/PID/limits`);
/// `None` when unlimited or unreadable.
pub fn fd_soft_limit(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    parse_fd_limit(&text)
}

fn parse_fd_limit(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The process and all its descendants, parent first: a watched `sh -c` or
/// a pre-forking server keeps its sockets in children. Uses the
/// `/proc/PID/task/TID/children` lists where the kernel has them
/// (CONFIG_PROC_CHILDREN), else one pass over every `/proc/PID/stat`, which
/// costs about a millisecond per few hundred processes: callers refresh the
/// tree every few seconds, not every sample.
pub fn with_descendants(root: u32) -> Vec<u32> {
    let children_files = fs::metadata(format!("/proc/{root}/task/{root}/children")).is_ok();
    let parents: Vec<(u32, u32)> = if children_files {
        Vec::new()
    } else {
        all_parents()
    };
    let mut out = vec![root];
    let mut i = 0;
    // Bounded: a pid tree cannot hold more than the pids that exist.
    while i < out.len() && out.len() < 65_536 {
        let pid = out[i];
        i += 1;
        let kids: Vec<u32> = if children_files {
            children_of(pid)
        } else {
            parents
                .iter()
                .filter(|(_, pp)| *pp == pid)
                .map(|(p, _)| *p)
                .collect()
        };
        for child in kids {
            if !out.contains(&child) {
                out.push(child);
            }
        }
    }
    out
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut kids = Vec::new();
    if let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten() {
            if let Ok(list) = fs::read_to_string(task.path().join("children")) {
                kids.extend(
                    list.split_whitespace()
                        .filter_map(|c| c.parse::<u32>().ok()),
                );
            }
        }
    }
    kids
}

/// (pid, parent pid) of every process.
fn all_parents() -> Vec<(u32, u32)> {
    let Ok(pids) = super::owners::list_pids() else {
        return Vec::new();
    };
    pids.into_iter()
        .filter_map(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // Field 4 is the parent pid; fields restart after the comm's ')'.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect()
}

/// `net.ipv4.ip_local_port_range`, inclusive; the kernel default if unreadable.
pub fn local_port_range() -> (u16, u16) {
    fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|p| p.parse::<u16>());
            Some((it.next()?.ok()?, it.next()?.ok()?))
        })
        .unwrap_or((32768, 60999))
}

/// `net.ipv4.tcp_tw_reuse` (0 off, 1 on, 2 loopback only; default 2).
pub fn tcp_tw_reuse() -> Option<u8> {
    fs::read_to_string("/proc/sys/net/ipv4/tcp_tw_reuse")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let me = std::process::id();
        assert!(alive(me));
        assert!(comm(me).is_some());
        assert!(fd_count(me).unwrap() >= 3);
        assert!(with_descendants(me).contains(&me));
        let (lo, hi) = local_port_range();
        assert!(lo < hi);
    }

    #[test]
    fn fd_limit_line() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max cpu time              unlimited            unlimited            seconds\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(parse_fd_limit(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_fd_limit(unlimited), None);
    }

    #[test]
    fn sees_a_child() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let tree = with_descendants(std::process::id());
        let _ = child.kill();
        let _ = child.wait();
        assert!(tree.contains(&child.id()), "{tree:?}");
    }
}
