//! FD_ONLY: socket fds a process still holds whose TCP socket the kernel no
//! longer lists.
//!
//! A CLOSE_WAIT socket whose peer gave up (its FIN_WAIT_2 timed out, then it
//! answered a keepalive or a write with RST) is reset: the kernel unhashes
//! it, so sock_diag and /proc/net/tcp stop showing it, while the program's
//! fd, and the memory behind it, stay until the program closes it. Counted
//! from the owner cache's view of each process's fds: a socket fd whose
//! inode is not in the dump, that is TCP (it was in the table once, or
//! `system.sockprotoname` says so), that still points at the same inode
//! when read again now (the fd may have been closed or reused since the
//! cache read it), and either was in an earlier dump (it left the table
//! while its fd stayed: reported at once, so a connection the peer resets
//! moves from CLOSE_WAIT to FD_ONLY without a gap) or was all of this at the
//! previous sample too: fds are read after the dump, so a socket opened in
//! between (or created and not yet connected) is missing from one dump,
//! never from two.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;

use foldhash::{HashMap, HashSet, HashSetExt};

use super::owners::{OwnerMap, link_inode};

/// One socket fd without a TCP table entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FdOnly {
    pub pid: u32,
    pub fd: u32,
    pub inode: u64,
}

/// Finds FD_ONLY sockets sample after sample; remembers which socket
/// inodes are TCP, so a process's unix and UDP sockets cost one getxattr(2)
/// each, once.
#[derive(Default)]
pub struct Finder {
    tcp: HashMap<u64, bool>,
    /// Socket inodes of processes in scope that some dump listed.
    listed: HashSet<u64>,
    /// Last sample's candidates never listed, to be confirmed by this one.
    prev: HashSet<FdOnly>,
}

impl Finder {
    pub fn new() -> Finder {
        Finder::default()
    }

    /// The FD_ONLY sockets of the processes `owners` resolves, after its
    /// `resolve` of the current dump. Returns them and the readlinks done.
    pub fn find(&mut self, owners: &OwnerMap) -> (Vec<FdOnly>, u32) {
        let mut now = HashSet::new();
        let mut readlinks = 0;
        let mut candidates: Vec<(u32, u32, u64)> = Vec::new();
        let mut seen: HashSet<u64> = HashSet::new();
        let mut listed: HashSet<u64> = HashSet::new();
        for (pid, fd, inode, was_listed) in owners.socket_fds() {
            if owners.listed(inode) || was_listed || self.listed.contains(&inode) {
                listed.insert(inode);
            }
            if owners.listed(inode) {
                continue;
            }
            seen.insert(inode);
            let tcp = listed.contains(&inode)
                || *self.tcp.entry(inode).or_insert_with(|| is_tcp(pid, fd));
            if tcp {
                candidates.push((pid, fd, inode));
            }
        }
        self.tcp.retain(|inode, _| seen.contains(inode));
        self.listed = listed;
        candidates.sort_unstable();
        let mut dir: Option<(u32, fs::File)> = None;
        for (pid, fd, inode) in candidates {
            if dir.as_ref().is_none_or(|(p, _)| *p != pid) {
                dir = fs::File::open(format!("/proc/{pid}/fd"))
                    .ok()
                    .map(|f| (pid, f));
            }
            let Some((_, d)) = &dir else {
                continue;
            };
            readlinks += 1;
            if link_inode(d, fd) == Some(inode) {
                now.insert(FdOnly { pid, fd, inode });
            }
        }
        let (mut found, unconfirmed): (Vec<FdOnly>, Vec<FdOnly>) = now
            .into_iter()
            .partition(|f| self.listed.contains(&f.inode) || self.prev.contains(f));
        found.sort_unstable_by_key(|f| (f.pid, f.fd));
        self.prev = unconfirmed.into_iter().collect();
        (found, readlinks)
    }
}

/// Whether fd `fd` of `pid` is a TCP socket (IPv4 or IPv6), by the
/// `system.sockprotoname` attribute sockfs gives every socket inode.
fn is_tcp(pid: u32, fd: u32) -> bool {
    let path = format!("/proc/{pid}/fd/{fd}");
    let Ok(path) = CString::new(std::path::Path::new(&path).as_os_str().as_bytes()) else {
        return false;
    };
    let mut buf = [0u8; 32];
    // SAFETY: NUL-terminated path and name, and a buffer with its true
    // length; getxattr writes at most that many bytes and returns the count.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            c"system.sockprotoname".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n <= 0 {
        return false;
    }
    let name = &buf[..n as usize];
    let name = name.strip_suffix(b"\0").unwrap_or(name);
    name == b"TCP" || name == b"TCPv6"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::{Owners, SocketTable};
    use std::io::Read;
    use std::net::{TcpListener, TcpStream, UdpSocket};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn tells_tcp_sockets_from_others() {
        let me = std::process::id();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let (unix, _peer) = UnixStream::pair().unwrap();
        assert!(is_tcp(me, l.as_raw_fd() as u32));
        assert!(!is_tcp(me, udp.as_raw_fd() as u32));
        assert!(!is_tcp(me, unix.as_raw_fd() as u32));
        assert!(!is_tcp(me, 999_999));
        if let Ok(l6) = TcpListener::bind("[::1]:0") {
            assert!(is_tcp(me, l6.as_raw_fd() as u32));
        }
    }

    /// A connection the peer resets (linger 0) leaves the TCP table; our fd
    /// stays open and is found as FD_ONLY, until we close it. (Other tests
    /// of this binary run in the same process: only our fds are looked at.)
    #[test]
    fn finds_a_reset_socket_still_held() {
        let me = std::process::id();
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (server, _) = l.accept().unwrap();
        let healthy = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let ours = |found: &[FdOnly], s: &TcpStream| {
            found
                .iter()
                .any(|f| f.pid == me && f.fd == s.as_raw_fd() as u32)
        };
        let mut table = SocketTable::open(Owners::Pids(vec![me])).finding_fd_only();
        let before = table.sample().unwrap().fd_only;
        assert!(!ours(&before, &c) && !ours(&before, &healthy), "{before:?}");
        reset(server);
        // A read fails with ECONNRESET once the kernel has handled the RST,
        // which takes the socket out of its table first.
        c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        let err = c.read(&mut [0u8; 1]).expect_err("reset by the peer");
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
        let found = table.sample().unwrap().fd_only;
        assert!(ours(&found, &c), "{found:?}");
        assert!(!ours(&found, &healthy), "{found:?}");
        let fd = c.as_raw_fd() as u32;
        drop(c);
        let after = table.sample().unwrap().fd_only;
        assert!(
            !after.iter().any(|f| f.pid == me && f.fd == fd),
            "closed: {after:?}"
        );
        drop(healthy);
    }

    /// Closes with SO_LINGER 0: the peer gets an RST, not a FIN.
    fn reset(s: TcpStream) {
        socket2::SockRef::from(&s)
            .set_linger(Some(std::time::Duration::ZERO))
            .unwrap();
    }
}
