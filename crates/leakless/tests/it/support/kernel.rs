//! The kernel's view of a test's own sockets, each found by its exact
//! 4-tuple (local, remote) over `NETLINK_SOCK_DIAG`, what `ss` uses.
//!
//! Not by the server's port: other sockets to the same port number are
//! there too (TIME_WAIT rows an earlier server on that port left, other
//! processes' connections). Not through /proc/net/tcp either: it is read a
//! page at a time, each page resumed by its position in the kernel's hash
//! table, so while other sockets come and go (tens of thousands of rows on
//! a shared machine) one row can be listed twice, or not at all. A lookup
//! by 4-tuple answers for exactly one socket, in one message.
//!
//! Where a test's local addresses come from: the test server's
//! per-connection peer addresses ([`client_sockets`]), the client's
//! `GotConn { local_addr }` events, or, for a dial the server never
//! accepted, [`dialing_to`].

use std::{collections::HashSet, fs, io, net::SocketAddr};

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NetlinkBuffer, NetlinkHeader,
    NetlinkMessage, Parseable,
};
use netlink_packet_sock_diag::{
    AF_INET, AF_INET6, IPPROTO_TCP, SOCK_DIAG_BY_FAMILY, SockDiagMessage,
    inet::{ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags, Timer},
};
use netlink_sys::{Socket, SocketAddr as NlAddr, protocols::NETLINK_SOCK_DIAG};

use super::TestServer;

/// TCP states, numbered as the kernel numbers them.
pub const ESTABLISHED: u8 = 1;
pub const SYN_SENT: u8 = 2;
pub const FIN_WAIT1: u8 = 4;
pub const FIN_WAIT2: u8 = 5;
pub const TIME_WAIT: u8 = 6;
pub const CLOSE: u8 = 7;
pub const CLOSE_WAIT: u8 = 8;
pub const LAST_ACK: u8 = 9;

/// One TCP socket as the kernel has it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelSocket {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: u8,
    /// Bytes queued to send, not yet acknowledged by the peer.
    pub send_queue: u32,
    /// 0 once no process holds the socket: an orphan finishing a close
    /// (FIN_WAIT*, TIME_WAIT, ...).
    pub inode: u32,
    /// The keep-alive timer's time to the next probe, when that is the
    /// socket's running timer (an idle socket with SO_KEEPALIVE on).
    pub keepalive: Option<std::time::Duration>,
}

impl KernelSocket {
    /// A process still holds it. With its exact 4-tuple that can only be
    /// the test's own client.
    pub fn is_held(&self) -> bool {
        self.inode != 0
    }

    /// Nobody holds it and it is in a state that follows a FIN we sent
    /// first: the kernel finishing our close, not a leak.
    pub fn is_our_finished_close(&self) -> bool {
        !self.is_held() && [FIN_WAIT1, FIN_WAIT2, TIME_WAIT, CLOSE].contains(&self.state)
    }
}

/// The socket from `local` to `remote`, if the kernel has one.
pub fn socket(local: SocketAddr, remote: SocketAddr) -> Option<KernelSocket> {
    let mut id = socket_id(local);
    id.source_port = local.port();
    id.source_address = local.ip();
    id.destination_port = remote.port();
    id.destination_address = remote.ip();
    // All 0xff: match whatever the socket's cookie is.
    id.cookie = [0xff; 8];
    let found = query(family(local), StateFlags::all(), id, false)
        .unwrap_or_else(|e| panic!("sock_diag lookup of {local} -> {remote}: {e}"));
    // An exact lookup falls back to a listener on `local`: not ours.
    found
        .into_iter()
        .find(|s| s.local == local && s.remote == remote)
}

/// The sockets from each of `locals` to `remote` that the kernel has.
pub fn sockets(
    locals: impl IntoIterator<Item = SocketAddr>,
    remote: SocketAddr,
) -> Vec<KernelSocket> {
    locals
        .into_iter()
        .filter_map(|local| socket(local, remote))
        .collect()
}

/// Our ends of every connection `server` accepted (its peers' addresses
/// are our local ones, the addresses it was reached at our remote ones:
/// one of many loopback addresses for a server on `0.0.0.0`), as the
/// kernel has them now; a socket already gone from the kernel is left
/// out. Connections the server no longer lists (past its
/// `Config::history`) are not looked at.
pub fn client_sockets(server: &TestServer) -> Vec<KernelSocket> {
    let pairs: Vec<(SocketAddr, SocketAddr)> = server
        .stats()
        .conns
        .values()
        .map(|c| (c.peer, c.local))
        .collect();
    pairs
        .into_iter()
        .filter_map(|(local, remote)| socket(local, remote))
        .collect()
}

/// [`client_sockets`] that this process holds: the connections the client
/// has open to `server`, in the kernel's eyes.
pub fn held_client_sockets(server: &TestServer) -> Vec<KernelSocket> {
    let ours = own_socket_inodes();
    client_sockets(server)
        .into_iter()
        .filter(|s| ours.contains(&s.inode))
        .collect()
}

/// Sockets this process holds in SYN_SENT to `remote`: how a test finds
/// the local address of a dial no server accepted (a full accept queue),
/// to follow that socket by its 4-tuple from then on. Only SYN_SENT
/// sockets are dumped, a handful on any machine, so the kernel answers in
/// one message, consistently.
pub fn dialing_to(remote: SocketAddr) -> Vec<KernelSocket> {
    let ours = own_socket_inodes();
    let mut id = socket_id(remote);
    id.cookie = [0xff; 8];
    query(family(remote), StateFlags::SYN_SENT, id, true)
        .unwrap_or_else(|e| panic!("sock_diag dump of SYN_SENT sockets: {e}"))
        .into_iter()
        .filter(|s| s.remote == remote && s.state == SYN_SENT && ours.contains(&s.inode))
        .collect()
}

/// Number of open file descriptors of this process.
pub fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Inode numbers of this process's sockets, from /proc/self/fd.
fn own_socket_inodes() -> HashSet<u32> {
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

fn family(addr: SocketAddr) -> u8 {
    if addr.is_ipv4() { AF_INET } else { AF_INET6 }
}

fn socket_id(addr: SocketAddr) -> SocketId {
    if addr.is_ipv4() {
        SocketId::new_v4()
    } else {
        SocketId::new_v6()
    }
}

/// Sends one sock_diag request (a lookup, or a dump of `states`) and
/// collects the sockets in its answer. A lookup that finds nothing is an
/// empty answer, not an error.
fn query(
    family: u8,
    states: StateFlags,
    id: SocketId,
    dump: bool,
) -> io::Result<Vec<KernelSocket>> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&NlAddr::new(0, 0))?;
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | if dump { NLM_F_DUMP } else { 0 };
    let mut request = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states,
            socket_id: id,
        })
        .into(),
    );
    request.finalize();
    let mut bytes = vec![0; request.buffer_len()];
    request.serialize(&mut bytes);
    socket.send(&bytes, 0)?;

    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = socket.recv(&mut &mut buf[..], 0)?.min(buf.len());
        let mut offset = 0;
        while offset < n {
            let msg = NetlinkBuffer::new_checked(&buf[offset..n])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            match msg.message_type() {
                NLMSG_DONE => return Ok(out),
                NLMSG_ERROR => {
                    let p = msg.payload();
                    let code = i32::from_ne_bytes([p[0], p[1], p[2], p[3]]);
                    let err = io::Error::from_raw_os_error(-code);
                    return match err.kind() {
                        _ if code == 0 => Ok(out),
                        io::ErrorKind::NotFound => Ok(out),
                        _ => Err(err),
                    };
                }
                SOCK_DIAG_BY_FAMILY => {
                    let h = InetResponseHeader::parse(msg.payload())
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                    let id = &h.socket_id;
                    out.push(KernelSocket {
                        local: SocketAddr::new(id.source_address, id.source_port),
                        remote: SocketAddr::new(id.destination_address, id.destination_port),
                        state: h.state,
                        send_queue: h.send_queue,
                        inode: h.inode,
                        keepalive: match h.timer {
                            Some(Timer::KeepAlive(d)) => Some(d),
                            _ => None,
                        },
                    });
                }
                _ => {}
            }
            let len = msg.length() as usize;
            if len == 0 {
                break;
            }
            // Messages are 4-byte aligned in the stream.
            offset += (len + 3) & !3;
        }
        if !dump {
            // A lookup is answered in one message.
            return Ok(out);
        }
    }
}
