//! Fallback source: `/proc/net/tcp` and `/proc/net/tcp6`.
//!
//! Slower than netlink (the kernel formats text we parse back) and poorer: no
//! socket cookie and no `tcp_info`. Used only where netlink is refused.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::{SocketInfo, TcpState, normalize, one_entry_per_socket};

/// Appends the sockets listed in `DIR/tcp` and `DIR/tcp6`, where `DIR` is
/// `/proc/net` (our namespace) or `/proc/PID/net` (that process's).
/// A missing tcp6 (IPv6 disabled) is not an error. Each socket once: the
/// file is read in pages, each resumed at a position in the kernel's hash,
/// as a netlink dump is.
pub fn dump(dir: &str, out: &mut Vec<SocketInfo>) -> io::Result<()> {
    let start = out.len();
    let v4 = std::fs::read_to_string(format!("{dir}/tcp"))?;
    parse_table(&v4, out);
    if let Ok(v6) = std::fs::read_to_string(format!("{dir}/tcp6")) {
        parse_table(&v6, out);
    }
    one_entry_per_socket(out, start, &mut foldhash::HashSet::default());
    Ok(())
}

/// Parses one table (header line first). Lines that do not parse are skipped:
/// the format is stable, and one odd line must not lose the sample.
pub fn parse_table(text: &str, out: &mut Vec<SocketInfo>) {
    for line in text.lines().skip(1) {
        if let Some(s) = parse_line(line) {
            out.push(s);
        }
    }
}

// "  0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000 0 12345 1 ..."
//   sl local        remote        st tx_queue:rx_queue tr:when      retrnsmt  uid timeout inode
fn parse_line(line: &str) -> Option<SocketInfo> {
    let mut f = line.split_whitespace();
    let _sl = f.next()?;
    let local = parse_addr(f.next()?)?;
    let remote = parse_addr(f.next()?)?;
    let state = TcpState::from_kernel(u8::from_str_radix(f.next()?, 16).ok()?)?;
    let (tx, rx) = f.next()?.split_once(':')?;
    let send_q = u32::from_str_radix(tx, 16).ok()?;
    let recv_q = u32::from_str_radix(rx, 16).ok()?;
    let _timer = f.next()?;
    let _retransmits = f.next()?;
    let uid = f.next()?.parse().ok()?;
    let _timeout = f.next()?;
    let inode: u64 = f.next()?.parse().ok()?;
    let (local, remote) = (normalize(local), normalize(remote));
    // No cookie here: the 4-tuple plus inode is unique among live sockets,
    // and for TIME_WAIT (inode 0) the 4-tuple alone is.
    let mut h = DefaultHasher::new();
    (local, remote, inode).hash(&mut h);
    Some(SocketInfo {
        local,
        remote,
        state,
        inode,
        uid,
        cookie: h.finish(),
        recv_q,
        send_q,
        times: None,
        pid: None,
    })
}

/// `HEXADDR:HEXPORT`; the address is the kernel's in-memory bytes printed as
/// 32-bit words in host order (so 127.0.0.1 reads `0100007F` on x86).
fn parse_addr(s: &str) -> Option<SocketAddr> {
    let (addr, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_v4_and_v6_lines() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
                  0: 0100007F:1F90 0100007F:D431 08 00000000:00000001 00:00000000 00000000     0        0 4242 1 0000000000000000 20 4 30 10 -1\n\
                  1: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 77 1\n";
        let mut out = Vec::new();
        parse_table(v4, &mut out);
        if cfg!(target_endian = "little") {
            assert_eq!(out.len(), 2);
            assert_eq!(out[0].local, "127.0.0.1:8080".parse().unwrap());
            assert_eq!(out[0].remote, "127.0.0.1:54321".parse().unwrap());
            assert_eq!(out[0].state, TcpState::CloseWait);
            assert_eq!((out[0].recv_q, out[0].inode), (1, 4242));
            assert_eq!(out[1].state, TcpState::Listen);
            assert_eq!(out[1].uid, 1000);
        }
        let v6 = "header\n   0: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000001000000:0050 01 00000000:00000000 00:00000000 00000000 0 0 9 1\n";
        let mut out = Vec::new();
        parse_table(v6, &mut out);
        if cfg!(target_endian = "little") {
            // ::ffff:127.0.0.1 is grouped as 127.0.0.1; ::1 stays IPv6.
            assert_eq!(out[0].local, "127.0.0.1:8080".parse().unwrap());
            assert_eq!(out[0].remote, "[::1]:80".parse().unwrap());
        }
    }

    #[test]
    fn skips_garbage() {
        let mut out = Vec::new();
        parse_table("header\nnot a socket line\n", &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn real_table_parses() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut out = Vec::new();
        dump("/proc/net", &mut out).unwrap();
        assert!(
            out.iter()
                .any(|s| s.local == l.local_addr().unwrap() && s.state == TcpState::Listen)
        );
    }
}
