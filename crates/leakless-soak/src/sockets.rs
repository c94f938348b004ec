//! Our sockets as the kernel sees them, and our memory. Two views of the
//! sockets: every connection a client used, looked up by its exact 4-tuple
//! over `NETLINK_SOCK_DIAG` (held by a process, or an orphan finishing a
//! close); and this process's socket descriptors against their count before
//! the traffic, which also catches a connection dialed and dropped before
//! any request saw its address.

use std::net::SocketAddr;

// `kernel.rs` names the test server (`super::TestServer`) for its
// per-server lookups.
use leakless_testserver::TestServer;

use crate::targets::Target;

// The library's tests' own lookups, shared rather than copied.
#[path = "../../leakless/tests/it/support/kernel.rs"]
#[allow(dead_code)]
mod kernel;

/// What the kernel holds of ours after the idle timeout.
#[derive(Debug)]
pub struct Kernel {
    /// Connections the clients used (distinct 4-tuples).
    pub seen: usize,
    /// Of those, sockets a process still holds: must be 0.
    pub held: Vec<(SocketAddr, SocketAddr, u8)>,
    /// Of those, orphans finishing a close (TIME_WAIT and the like).
    pub closing: usize,
    /// Socket descriptors open now, less before the traffic: must be 0.
    pub fds_left: isize,
}

impl Kernel {
    pub fn check(targets: &[Target], fds_before: usize) -> Kernel {
        let mut k = Kernel {
            seen: 0,
            held: Vec::new(),
            closing: 0,
            fds_left: socket_fds() as isize - fds_before as isize,
        };
        for t in targets {
            for (local, remote) in t.seen.pairs() {
                k.seen += 1;
                match kernel::socket(local, remote) {
                    Some(s) if s.is_held() => k.held.push((local, remote, s.state)),
                    Some(_) => k.closing += 1,
                    None => {}
                }
            }
        }
        k
    }
}

/// This process's open socket descriptors.
pub fn socket_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

/// Resident memory, in bytes.
pub fn rss() -> isize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: isize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}
