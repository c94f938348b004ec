//! The host's TCP socket table, with the process that owns each socket.
//!
//! Used by `watch` (and later by `bench` to count its own sockets by state).
//! One [`SocketTable::sample`] is one dump of every TCP socket (IPv4 and IPv6)
//! with `tcp_info` and the kernel's socket cookie, plus owner pids resolved
//! through a cached inode->pid map (see [`owners`]).
//!
//! Sources, best first:
//! - `NETLINK_SOCK_DIAG` ([`netlink`]): one request per address family, no
//!   text parsing, cookies for identity, `tcp_info` for idle times.
//! - `/proc/net/tcp{,6}` ([`procfs`]): used, with a warning, where netlink is
//!   refused (some sandboxes), or when `LEAKLESS_SOCKETS=procfs` asks for it.
//!   No cookies (identity is synthesised from the 4-tuple and inode) and no
//!   idle times.
//!
//! Asked for ([`SocketTable::finding_fd_only`]), a sample also lists socket
//! fds whose TCP socket the kernel no longer lists ([`fd_only`]): reset
//! connections a program still holds.
//!
//! ```ignore
//! let mut table = SocketTable::open(Owners::Pids(vec![1234]));
//! let sample = table.sample()?;
//! for s in sample.sockets.iter().filter(|s| s.pid == Some(1234)) {
//!     println!("{} -> {} {}", s.local, s.remote, s.state);
//! }
//! ```

// The API is wider than `watch` alone uses: `bench` will take the filters and
// the per-socket fields as they are.
#![allow(dead_code)]

pub mod events;
mod fd_only;
mod filter;
pub mod lifecycle;
mod namespaces;
mod netlink;
mod netns;
pub mod owners;
pub mod perf;
pub mod process;
mod procfs;
mod state;
mod table;
mod tracefs;

use std::net::{IpAddr, SocketAddr};

pub use fd_only::FdOnly;
// `Filter` and `Sample` are for `bench`, which selects its own sockets.
#[allow(unused_imports)]
pub use filter::Filter;
pub use owners::Owners;
pub use state::{StateCounts, TcpState};
#[allow(unused_imports)]
pub use table::{Sample, SampleStats, SocketTable, Source};

/// Times from the kernel's `tcp_info`, in milliseconds ago.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpTimes {
    /// Since the last data segment was sent (`tcpi_last_data_sent`).
    pub last_data_sent_ms: u32,
    /// Since the last data segment was received (`tcpi_last_data_recv`). A FIN
    /// alone does not reset it, so on a CLOSE_WAIT socket it still says how
    /// long the connection sat idle before the peer closed it.
    pub last_data_recv_ms: u32,
    /// Since the last ACK was received (`tcpi_last_ack_recv`).
    pub last_ack_recv_ms: u32,
    /// Smoothed round-trip time in microseconds (`tcpi_rtt`).
    pub rtt_us: u32,
}

impl TcpTimes {
    /// Milliseconds since any data moved in either direction.
    pub fn idle_ms(&self) -> u32 {
        self.last_data_sent_ms.min(self.last_data_recv_ms)
    }
}

/// One TCP socket as the kernel reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocketInfo {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: TcpState,
    /// Socket inode; 0 for sockets no file refers to any more (TIME_WAIT,
    /// and orphans the program already closed), which therefore have no owner.
    pub inode: u64,
    pub uid: u32,
    /// The kernel's socket cookie: unique for the life of the socket, kept
    /// when it moves to TIME_WAIT. Synthesised from the 4-tuple on /proc.
    pub cookie: u64,
    /// Bytes received and not yet read by the program. On a CLOSE_WAIT socket
    /// the peer's FIN counts as one: 0 there means the program read EOF.
    pub recv_q: u32,
    /// Bytes sent and not yet acknowledged by the peer.
    pub send_q: u32,
    /// `None` on the /proc source, or for sockets without `tcp_info`
    /// (TIME_WAIT, request sockets).
    pub times: Option<TcpTimes>,
    /// Owning process, when it could be resolved (see [`Owners`]).
    pub pid: Option<u32>,
}

impl SocketInfo {
    /// The 4-tuple, the identity a TIME_WAIT socket still has after its
    /// owner let go of it.
    pub fn tuple(&self) -> (SocketAddr, SocketAddr) {
        (self.local, self.remote)
    }
}

/// Keeps the first entry of each socket (by cookie) among `out[start..]`,
/// what one dump appended, in order. The kernel answers a dump in several
/// reads and resumes each at a position in a hash chain, so a socket added
/// to or removed from that chain between two reads shifts another one into
/// the next read too: listed twice (once in each state if it changed in
/// between), and counted twice by whoever counts the dump.
pub(crate) fn one_entry_per_socket(
    out: &mut Vec<SocketInfo>,
    start: usize,
    seen: &mut foldhash::HashSet<u64>,
) {
    seen.clear();
    let mut kept = start;
    for i in start..out.len() {
        if seen.insert(out[i].cookie) {
            out.swap(kept, i);
            kept += 1;
        }
    }
    out.truncate(kept);
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`, from dual-stack sockets) are
/// shown and grouped as the IPv4 address they are.
pub fn normalize(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What one dump appended is deduplicated, in order; what was in the
    /// vector before it is left alone.
    #[test]
    fn a_socket_a_dump_listed_twice_is_kept_once() {
        let sock = |cookie: u64, state: TcpState| SocketInfo {
            local: "127.0.0.1:1".parse().unwrap(),
            remote: "127.0.0.1:2".parse().unwrap(),
            state,
            inode: cookie,
            uid: 0,
            cookie,
            recv_q: 0,
            send_q: 0,
            times: None,
            pid: None,
        };
        let mut out = vec![sock(1, TcpState::Established)];
        out.extend([
            sock(1, TcpState::Established),
            sock(2, TcpState::Established),
            sock(3, TcpState::FinWait1),
            sock(2, TcpState::CloseWait),
            sock(4, TcpState::TimeWait),
            sock(3, TcpState::TimeWait),
        ]);
        one_entry_per_socket(&mut out, 1, &mut foldhash::HashSet::default());
        let kept: Vec<_> = out.iter().map(|s| (s.cookie, s.state)).collect();
        assert_eq!(
            kept,
            [
                (1, TcpState::Established),
                (1, TcpState::Established),
                (2, TcpState::Established),
                (3, TcpState::FinWait1),
                (4, TcpState::TimeWait),
            ]
        );
    }
}
