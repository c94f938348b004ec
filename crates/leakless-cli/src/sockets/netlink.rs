//! TCP socket dump over `NETLINK_SOCK_DIAG` (what `ss` uses, without `ss`).
//!
//! The kernel streams one `inet_diag_msg` per socket, each with `tcp_info`
//! when asked. Requests are built and responses read with the types of
//! netlink-packet-core and netlink-packet-sock-diag, zero-copy: messages are
//! walked with `NetlinkBuffer`, the header parsed by `InetResponseHeader`,
//! and only the `tcp_info` attribute is looked at (its few fields read at
//! their fixed offsets, so a longer or shorter kernel `struct tcp_info` still
//! parses). At 10k+ sockets this keeps user space well under the kernel's
//! own cost of the dump.
//!
//! One walk, not two: a `SOCK_DIAG_BY_FAMILY` dump names one family, so IPv4
//! and IPv6 take two walks of the kernel's socket hash, each skipping the
//! other family's sockets. The older `TCPDIAG_GETSOCK` request dumps both
//! families in one walk (the kernel sets the family to AF_UNSPEC for it);
//! we use it, and fall back to two by-family dumps where it is refused.

use std::io;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, NetlinkBuffer, NetlinkHeader,
    NetlinkMessage, NlasIterator, Parseable,
};
use netlink_packet_sock_diag::{
    AF_INET, AF_INET6, INET_DIAG_INFO, IPPROTO_TCP, SOCK_DIAG_BY_FAMILY, SockDiagMessage,
    inet::{ExtensionFlags, InetRequest, InetResponseHeader, SocketId, StateFlags},
};
use netlink_sys::{Socket, SocketAddr as NlAddr, protocols::NETLINK_SOCK_DIAG};

use super::{SocketInfo, TcpState, TcpTimes, normalize, one_entry_per_socket};

/// Receive buffer: the kernel fills at most ~32 KiB per dump message batch,
/// so 64 KiB never truncates and stays reused across samples.
const RECV_BUF: usize = 64 * 1024;
/// `sizeof(struct inet_diag_msg)`: the fixed part before the attributes.
const INET_DIAG_MSG_LEN: usize = 72;
/// The pre-`SOCK_DIAG_BY_FAMILY` request type (linux/inet_diag.h).
const TCPDIAG_GETSOCK: u16 = 18;

/// A bound sock_diag socket, reused for every sample.
pub struct NetlinkReader {
    socket: Socket,
    buf: Vec<u8>,
    seq: u32,
    /// The one-walk compat dump works here (until it is refused once).
    compat: bool,
    /// Cookies of the current dump (kept for its capacity).
    seen: foldhash::HashSet<u64>,
}

impl NetlinkReader {
    /// Opens and connects the netlink socket. Fails where sock_diag is
    /// refused (seccomp, some containers); the caller falls back to /proc.
    pub fn open() -> io::Result<NetlinkReader> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket.connect(&NlAddr::new(0, 0))?;
        Ok(NetlinkReader {
            socket,
            buf: vec![0; RECV_BUF],
            seq: 0,
            compat: true,
            seen: foldhash::HashSet::default(),
        })
    }

    /// Appends every TCP socket of both families to `out`, each once.
    /// `with_info` asks for `tcp_info` (idle times); without it the dump is
    /// ~3x smaller.
    pub fn dump(&mut self, with_info: bool, out: &mut Vec<SocketInfo>) -> io::Result<()> {
        let start = out.len();
        self.dump_all(with_info, out)?;
        one_entry_per_socket(out, start, &mut self.seen);
        Ok(())
    }

    fn dump_all(&mut self, with_info: bool, out: &mut Vec<SocketInfo>) -> io::Result<()> {
        if self.compat {
            let start = out.len();
            let req = compat_request(self.next_seq(), with_info);
            match self.run(&req, TCPDIAG_GETSOCK, out) {
                Ok(()) => return Ok(()),
                Err(_) => {
                    out.truncate(start);
                    self.compat = false;
                }
            }
        }
        for family in [AF_INET, AF_INET6] {
            let req = family_request(self.next_seq(), family, with_info);
            self.run(&req, SOCK_DIAG_BY_FAMILY, out)?;
        }
        Ok(())
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends one dump request and reads its answer to NLMSG_DONE.
    fn run(
        &mut self,
        request: &[u8],
        answer_type: u16,
        out: &mut Vec<SocketInfo>,
    ) -> io::Result<()> {
        self.socket.send(request, 0)?;
        loop {
            let mut slice = &mut self.buf[..];
            let n = self.socket.recv(&mut slice, 0)?.min(self.buf.len());
            let mut offset = 0;
            while offset < n {
                let msg = NetlinkBuffer::new_checked(&self.buf[offset..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = msg.length() as usize;
                match msg.message_type() {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let p = msg.payload();
                        let code = p
                            .get(..4)
                            .map_or(-libc::EIO, |b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
                        // The kernel reports a negative errno (0 is an ACK).
                        return Err(io::Error::from_raw_os_error(if code < 0 {
                            -code
                        } else {
                            libc::EIO
                        }));
                    }
                    t if t == answer_type => {
                        if let Some(s) = convert(msg.payload()) {
                            out.push(s);
                        }
                    }
                    _ => {}
                }
                if len == 0 {
                    break;
                }
                // Messages are 4-byte aligned in the stream.
                offset += (len + 3) & !3;
            }
        }
    }
}

/// A `SOCK_DIAG_BY_FAMILY` dump request for one family, built with the
/// crate's types.
fn family_request(seq: u32, family: u8, with_info: bool) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let socket_id = if family == AF_INET {
        SocketId::new_v4()
    } else {
        SocketId::new_v6()
    };
    let mut request = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: if with_info {
                ExtensionFlags::INFO
            } else {
                ExtensionFlags::empty()
            },
            states: StateFlags::all(),
            socket_id,
        })
        .into(),
    );
    request.finalize();
    let mut bytes = vec![0; request.buffer_len()];
    request.serialize(&mut bytes);
    bytes
}

/// A `TCPDIAG_GETSOCK` dump request: `nlmsghdr` + `struct inet_diag_req`
/// (family, src_len, dst_len, ext, 48-byte socket id, states, dbs). The crate
/// has no type for this older request, so its 76 bytes are written here.
fn compat_request(seq: u32, with_info: bool) -> Vec<u8> {
    let mut b = Vec::with_capacity(76);
    b.extend_from_slice(&76u32.to_ne_bytes());
    b.extend_from_slice(&TCPDIAG_GETSOCK.to_ne_bytes());
    b.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    b.extend_from_slice(&seq.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    let ext = if with_info {
        1u8 << (INET_DIAG_INFO - 1)
    } else {
        0
    };
    b.extend_from_slice(&[AF_INET, 0, 0, ext]);
    b.extend_from_slice(&[0u8; 48]);
    b.extend_from_slice(&StateFlags::all().bits().to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    debug_assert_eq!(b.len(), 76);
    b
}

fn convert(payload: &[u8]) -> Option<SocketInfo> {
    let h = InetResponseHeader::parse(payload.get(..INET_DIAG_MSG_LEN)?).ok()?;
    let state = TcpState::from_kernel(h.state)?;
    let id = &h.socket_id;
    let local = normalize(std::net::SocketAddr::new(id.source_address, id.source_port));
    let remote = normalize(std::net::SocketAddr::new(
        id.destination_address,
        id.destination_port,
    ));
    let times = NlasIterator::new(&payload[INET_DIAG_MSG_LEN..])
        .map_while(Result::ok)
        .find(|nla| nla.kind() == INET_DIAG_INFO)
        .and_then(|nla| parse_tcp_info(nla.value()));
    Some(SocketInfo {
        local,
        remote,
        state,
        inode: u64::from(h.inode),
        uid: h.uid,
        cookie: u64::from_ne_bytes(id.cookie),
        recv_q: h.recv_queue,
        send_q: h.send_queue,
        times,
        pid: None,
    })
}

/// Reads the fields we use from `struct tcp_info` (include/uapi/linux/tcp.h):
/// 8 one-byte fields, then u32s: rto, ato, snd_mss, rcv_mss, unacked, sacked,
/// lost, retrans, fackets (offsets 8..44), last_data_sent 44, last_ack_sent 48,
/// last_data_recv 52, last_ack_recv 56, pmtu 60, rcv_ssthresh 64, rtt 68.
fn parse_tcp_info(raw: &[u8]) -> Option<TcpTimes> {
    let u32_at = |off: usize| -> Option<u32> {
        raw.get(off..off + 4)
            .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
    };
    Some(TcpTimes {
        last_data_sent_ms: u32_at(44)?,
        last_data_recv_ms: u32_at(52)?,
        last_ack_recv_ms: u32_at(56)?,
        rtt_us: u32_at(68)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::time::Duration;

    #[test]
    fn tcp_info_offsets() {
        let mut raw = vec![0u8; 104];
        raw[44..48].copy_from_slice(&7u32.to_ne_bytes());
        raw[52..56].copy_from_slice(&9u32.to_ne_bytes());
        raw[56..60].copy_from_slice(&11u32.to_ne_bytes());
        raw[68..72].copy_from_slice(&250u32.to_ne_bytes());
        let t = parse_tcp_info(&raw).unwrap();
        assert_eq!(
            (
                t.last_data_sent_ms,
                t.last_data_recv_ms,
                t.last_ack_recv_ms,
                t.rtt_us
            ),
            (7, 9, 11, 250)
        );
        assert_eq!(t.idle_ms(), 7);
        assert!(parse_tcp_info(&raw[..60]).is_none());
    }

    /// The one-walk compat dump and the two by-family dumps see the same
    /// sockets (both families: a v6 listener is included).
    #[test]
    fn compat_and_family_dumps_agree() {
        let l4 = TcpListener::bind("127.0.0.1:0").unwrap();
        let l6 = TcpListener::bind("[::1]:0").ok();
        let mut r = NetlinkReader::open().unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        r.dump(true, &mut a).unwrap();
        assert!(r.compat, "TCPDIAG_GETSOCK accepted here");
        r.compat = false;
        r.dump(true, &mut b).unwrap();
        for l in [Some(&l4), l6.as_ref()].into_iter().flatten() {
            let addr = l.local_addr().unwrap();
            assert!(
                a.iter().any(|s| s.local == addr),
                "compat dump misses {addr}"
            );
            assert!(
                b.iter().any(|s| s.local == addr),
                "family dumps miss {addr}"
            );
        }
    }

    /// A real loopback connection shows up in the dump, with the peer's FIN
    /// counted in Recv-Q once it is in CLOSE_WAIT.
    #[test]
    fn dump_sees_a_loopback_connection_and_close_wait() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        server.write_all(b"hi").unwrap();
        let mut two = [0u8; 2];
        (&client).read_exact(&mut two).unwrap();
        drop(server);
        std::thread::sleep(Duration::from_millis(50));

        let mut reader = NetlinkReader::open().expect("sock_diag available in tests");
        let mut out = Vec::new();
        reader.dump(true, &mut out).unwrap();
        let mine = out
            .iter()
            .find(|s| {
                s.local == client.local_addr().unwrap() && s.remote == client.peer_addr().unwrap()
            })
            .expect("client socket in dump");
        assert_eq!(mine.state, TcpState::CloseWait);
        assert_eq!(mine.recv_q, 1, "FIN not read yet");
        assert!(mine.inode != 0);
        assert!(mine.cookie != 0);
        assert!(mine.times.is_some());
    }
}
