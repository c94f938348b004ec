//! Shared helpers: servers, clients, and the kernel's view of our sockets.

#![allow(dead_code)]

use std::{collections::HashSet, fs, net::SocketAddr, time::Duration};

pub use leakless_testserver::{Config, TestServer};

/// Awaits `fut` but fails the test instead of hanging.
pub async fn bounded<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("bounded wait exceeded 20 s")
}

/// Inode numbers of this process's sockets, from /proc/self/fd.
fn own_socket_inodes() -> HashSet<u64> {
    let mut inodes = HashSet::new();
    for entry in fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(target) = fs::read_link(entry.path()) {
            let t = target.to_string_lossy();
            if let Some(n) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                if let Ok(n) = n.parse() {
                    inodes.insert(n);
                }
            }
        }
    }
    inodes
}

/// TCP states as /proc/net/tcp numbers them.
pub const ESTABLISHED: u8 = 1;

/// This process's TCP sockets whose remote end is `server`, as the kernel
/// sees them (/proc/self/net/tcp* joined with /proc/self/fd): `(local port, state)`.
pub fn kernel_sockets_to(server: SocketAddr) -> Vec<(u16, u8)> {
    let inodes = own_socket_inodes();
    let mut out = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                continue;
            }
            let port =
                |s: &str| u16::from_str_radix(s.rsplit(':').next().unwrap_or(""), 16).unwrap_or(0);
            let inode: u64 = f[9].parse().unwrap_or(0);
            if port(f[2]) == server.port() && inodes.contains(&inode) {
                let state = u8::from_str_radix(f[3], 16).unwrap_or(0);
                out.push((port(f[1]), state));
            }
        }
    }
    out
}

/// Number of open file descriptors of this process.
pub fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Checks the pool's invariants on a snapshot.
pub fn assert_consistent(s: &leakless::HostStats) {
    assert_eq!(
        s.open,
        s.dialing + s.busy + s.idle,
        "open = dialing + busy + idle: {s:?}"
    );
    assert_eq!(
        s.created - s.closed,
        s.open as u64,
        "created - closed = open: {s:?}"
    );
}
