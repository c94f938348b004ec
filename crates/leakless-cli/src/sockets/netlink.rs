//! TCP socket dump over `NETLINK_SOCK_DIAG` (what `ss` uses, without `ss`).
//!
//! One `SOCK_DIAG_BY_FAMILY` dump request per address family; the kernel
//! streams one `inet_diag_msg` per socket, each with `tcp_info` when asked.
//! Message types come from netlink-packet-sock-diag; `tcp_info` is kept as
//! raw bytes and only the few fields we use are read at their fixed offsets,
//! so a kernel with a longer or shorter `struct tcp_info` still parses.

use std::io;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::{
    AF_INET, AF_INET6, IPPROTO_TCP, SockDiagMessage,
    inet::{ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags, nlas::Nla},
};
use netlink_sys::{Socket, SocketAddr as NlAddr, protocols::NETLINK_SOCK_DIAG};

use super::{SocketInfo, TcpState, TcpTimes, normalize};

/// Receive buffer: the kernel fills at most ~32 KiB per dump message batch,
/// so 64 KiB never truncates and stays reused across samples.
const RECV_BUF: usize = 64 * 1024;

/// A bound sock_diag socket, reused for every sample.
pub struct NetlinkReader {
    socket: Socket,
    buf: Vec<u8>,
    seq: u32,
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
        })
    }

    /// Appends every TCP socket of both families to `out`. `with_info` asks
    /// for `tcp_info` (idle times); without it the dump is ~3x smaller.
    pub fn dump(&mut self, with_info: bool, out: &mut Vec<SocketInfo>) -> io::Result<()> {
        self.dump_family(AF_INET, with_info, out)?;
        self.dump_family(AF_INET6, with_info, out)
    }

    fn dump_family(
        &mut self,
        family: u8,
        with_info: bool,
        out: &mut Vec<SocketInfo>,
    ) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_DUMP;
        header.sequence_number = self.seq;
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
        self.socket.send(&bytes, 0)?;

        loop {
            let mut slice = &mut self.buf[..];
            let n = self.socket.recv(&mut slice, 0)?;
            let n = n.min(self.buf.len());
            let mut offset = 0;
            while offset < n {
                let msg = NetlinkMessage::<SockDiagMessage>::deserialize(&self.buf[offset..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
                let len = msg.header.length as usize;
                match msg.payload {
                    NetlinkPayload::Done(_) => return Ok(()),
                    NetlinkPayload::Error(e) => {
                        // The kernel reports a negative errno.
                        return Err(io::Error::from_raw_os_error(-e.raw_code()));
                    }
                    NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                        if let Some(s) = convert(&r) {
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

fn convert(r: &InetResponse) -> Option<SocketInfo> {
    let h = &r.header;
    let state = TcpState::from_kernel(h.state)?;
    let id = &h.socket_id;
    let local = normalize(std::net::SocketAddr::new(id.source_address, id.source_port));
    let remote = normalize(std::net::SocketAddr::new(
        id.destination_address,
        id.destination_port,
    ));
    let times = r.nlas.iter().find_map(|nla| match nla {
        Nla::TcpInfo(raw) => parse_tcp_info(raw),
        _ => None,
    });
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
            .find(|s| s.local == client.local_addr().unwrap())
            .expect("client socket in dump");
        assert_eq!(mine.state, TcpState::CloseWait);
        assert_eq!(mine.recv_q, 1, "FIN not read yet");
        assert!(mine.inode != 0);
        assert!(mine.cookie != 0);
        assert!(mine.times.is_some());
    }
}
