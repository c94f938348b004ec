//! Every TCP state change on the host, and every fork and exit, from one
//! perf event per CPU on the `sock:inet_sock_set_state` tracepoint.
//!
//! Why this source: the state change into SYN_SENT happens inside the
//! `connect()` call, so the sample's pid is the process that opened the
//! connection, exactly; the later changes give the 4-tuple, who closed first
//! and when. Fork and exit records on the same ring let the caller follow a
//! process tree without polling /proc, so children that live a few
//! milliseconds are still attributed. (sock_diag's destroy multicast, the
//! other kernel event source, carries no owner, no cgroup and no open time.)
//!
//! Nothing here runs unless the kernel writes: an idle host costs nothing
//! beyond the mapped rings.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, RawFd};

use perf_event::events::Tracepoint;
use perf_event::{Builder, Clock, SampleFlag, Sampler};

use super::tracefs::{self, Layout};
use super::{TcpState, normalize};

/// Ring buffer per CPU. At ~2,000 short connections a second on the host
/// (client and server ends both here) the kernel writes ~1 MB/s; the reader
/// is woken at half full, so this holds a few hundred ms of that.
const RING_BYTES: usize = 512 * 1024;
const WAKEUP_BYTES: u32 = (RING_BYTES / 2) as u32;
/// `PERF_EVENT_IOC_SET_FILTER`: `_IOW('$', 6, char *)` on the 64-bit
/// architectures whose ioctl direction bits are x86's (x86_64, arm64, riscv).
const IOC_SET_FILTER: libc::c_ulong = 0x4008_2406;
/// Only TCP, and only the changes the connection lifecycle needs: into
/// ESTABLISHED, SYN_SENT, FIN_WAIT1, CLOSE and CLOSE_WAIT.
const FILTER: &core::ffi::CStr = c"protocol == 6 && (newstate == 1 || newstate == 2 || newstate == 4 || newstate == 7 || newstate == 8)";

const PERF_RECORD_LOST: u32 = 2;
const PERF_RECORD_EXIT: u32 = 4;
const PERF_RECORD_FORK: u32 = 7;
const PERF_RECORD_SAMPLE: u32 = 9;
const PERF_RECORD_LOST_SAMPLES: u32 = 13;

/// One TCP socket changing state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// CLOCK_MONOTONIC, nanoseconds.
    pub time_ns: u64,
    /// The process (thread group) running when it happened: the caller for
    /// SYN_SENT, anyone (often a softirq) for the others.
    pub pid: u32,
    /// The kernel's socket address: the socket's identity while it lives.
    pub sk: u64,
    pub old: TcpState,
    pub new: TcpState,
    /// Port 0 before `connect()` picked one (the SYN_SENT change).
    pub local: SocketAddr,
    pub remote: SocketAddr,
}

/// One record from the rings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    Transition(Transition),
    /// A process (`pid != ppid`) or thread started.
    Fork {
        time_ns: u64,
        pid: u32,
        ppid: u32,
    },
    /// A thread (`tid`) of `pid` ended; the process when `tid == pid`.
    Exit {
        time_ns: u64,
        pid: u32,
        tid: u32,
    },
    /// Records the kernel dropped because a ring was full.
    Lost(u64),
}

impl Record {
    pub fn time_ns(&self) -> u64 {
        match self {
            Record::Transition(t) => t.time_ns,
            Record::Fork { time_ns, .. } | Record::Exit { time_ns, .. } => *time_ns,
            Record::Lost(_) => 0,
        }
    }
}

/// The per-CPU events, enabled.
pub struct PerfEvents {
    samplers: Vec<Sampler>,
    layout: Layout,
}

impl PerfEvents {
    /// Opens and enables one event per online CPU. Fails without the
    /// privilege (CAP_PERFMON or CAP_SYS_ADMIN, or `perf_event_paranoid`
    /// at -1) or without tracefs; the error says which.
    pub fn open() -> io::Result<PerfEvents> {
        let layout = tracefs::inet_sock_set_state()?;
        let mut samplers = Vec::new();
        for cpu in online_cpus() {
            let counter = Builder::new(Tracepoint::with_id(layout.id))
                .any_pid()
                .one_cpu(cpu)
                // Tracepoint samples are taken in kernel mode.
                .exclude_kernel(false)
                .sample_period(1)
                .sample(SampleFlag::TID | SampleFlag::TIME | SampleFlag::RAW)
                .clockid(Clock::MONOTONIC)
                .task(true)
                .wakeup_watermark(WAKEUP_BYTES as usize)
                .build()
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "perf_event_open on CPU {cpu}: {e} (needs root, CAP_PERFMON or kernel.perf_event_paranoid=-1)"
                        ),
                    )
                })?;
            // SAFETY: ioctl(2) on the perf fd we own with a NUL-terminated
            // string. A kernel that refuses the filter just sends more.
            unsafe {
                libc::ioctl(counter.as_raw_fd(), IOC_SET_FILTER, FILTER.as_ptr());
            }
            let mut sampler = counter.sampled(RING_BYTES)?;
            sampler.enable()?;
            samplers.push(sampler);
        }
        if samplers.is_empty() {
            return Err(io::Error::other("no online CPU found"));
        }
        Ok(PerfEvents { samplers, layout })
    }

    /// The fds to poll(2) for "a ring is half full".
    pub fn fds(&self) -> Vec<RawFd> {
        self.samplers.iter().map(|s| s.as_raw_fd()).collect()
    }

    /// Appends every record written so far, ring by ring (each ring is in
    /// time order; the caller merges).
    pub fn read(&mut self, out: &mut Vec<Record>) {
        let layout = self.layout;
        for sampler in &mut self.samplers {
            while let Some(rec) = sampler.next_record() {
                let ty = rec.ty();
                let bytes = rec.to_contiguous();
                if let Some(r) = parse(ty, &bytes, &layout) {
                    out.push(r);
                }
            }
        }
    }
}

/// Online CPUs from `/sys/devices/system/cpu/online` ("0-3,5"), else all
/// the configured ones.
fn online_cpus() -> Vec<usize> {
    if let Ok(text) = std::fs::read_to_string("/sys/devices/system/cpu/online") {
        if let Some(cpus) = parse_cpu_list(text.trim()) {
            return cpus;
        }
    }
    // SAFETY: sysconf(3) has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) }.max(1) as usize;
    (0..n).collect()
}

fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in list.split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<usize>().ok()?..=b.parse::<usize>().ok()?),
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// One record's body (after the 8-byte header), as laid out for
/// `PERF_SAMPLE_TID | PERF_SAMPLE_TIME | PERF_SAMPLE_RAW`.
pub fn parse(ty: u32, b: &[u8], layout: &Layout) -> Option<Record> {
    let u32_at = |o: usize| {
        b.get(o..o + 4)
            .map(|s| u32::from_ne_bytes(s.try_into().unwrap()))
    };
    let u64_at = |o: usize| {
        b.get(o..o + 8)
            .map(|s| u64::from_ne_bytes(s.try_into().unwrap()))
    };
    match ty {
        PERF_RECORD_SAMPLE => {
            let pid = u32_at(0)?;
            let time_ns = u64_at(8)?;
            let size = u32_at(16)? as usize;
            let raw = b.get(20..20 + size)?;
            transition(time_ns, pid, raw, layout).map(Record::Transition)
        }
        PERF_RECORD_FORK => Some(Record::Fork {
            pid: u32_at(0)?,
            ppid: u32_at(4)?,
            time_ns: u64_at(16)?,
        }),
        PERF_RECORD_EXIT => Some(Record::Exit {
            pid: u32_at(0)?,
            tid: u32_at(8)?,
            time_ns: u64_at(16)?,
        }),
        PERF_RECORD_LOST => Some(Record::Lost(u64_at(8)?)),
        PERF_RECORD_LOST_SAMPLES => Some(Record::Lost(u64_at(0)?)),
        _ => None,
    }
}

/// The tracepoint's raw fields. Ports are in host order there; addresses
/// in network order.
fn transition(time_ns: u64, pid: u32, raw: &[u8], l: &Layout) -> Option<Transition> {
    if raw.len() < l.min_len {
        return None;
    }
    let u16_at = |o: usize| u16::from_ne_bytes([raw[o], raw[o + 1]]);
    let i32_at = |o: usize| i32::from_ne_bytes(raw[o..o + 4].try_into().unwrap());
    let state = |o: usize| u8::try_from(i32_at(o)).ok().and_then(TcpState::from_kernel);
    let (local_ip, remote_ip): (IpAddr, IpAddr) = match i32::from(u16_at(l.family)) {
        libc::AF_INET => {
            let v4 = |o: usize| Ipv4Addr::from(<[u8; 4]>::try_from(&raw[o..o + 4]).unwrap());
            (v4(l.saddr).into(), v4(l.daddr).into())
        }
        libc::AF_INET6 => {
            let v6 = |o: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&raw[o..o + 16]).unwrap());
            (v6(l.saddr_v6).into(), v6(l.daddr_v6).into())
        }
        _ => return None,
    };
    Some(Transition {
        time_ns,
        pid,
        sk: u64::from_ne_bytes(raw[l.skaddr..l.skaddr + 8].try_into().unwrap()),
        old: state(l.oldstate)?,
        new: state(l.newstate)?,
        local: normalize(SocketAddr::new(local_ip, u16_at(l.sport))),
        remote: normalize(SocketAddr::new(remote_ip, u16_at(l.dport))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::time::{Duration, Instant};

    fn layout() -> Layout {
        // Linux 6.18's offsets (see the tracefs tests).
        Layout {
            id: 1,
            skaddr: 8,
            oldstate: 16,
            newstate: 20,
            sport: 24,
            dport: 26,
            family: 28,
            protocol: 30,
            saddr: 32,
            daddr: 36,
            saddr_v6: 40,
            daddr_v6: 56,
            min_len: 72,
        }
    }

    #[test]
    fn parses_a_sample_record() {
        let mut raw = vec![0u8; 76];
        raw[8..16].copy_from_slice(&0xffff_8881_0000_1000u64.to_ne_bytes());
        raw[16..20].copy_from_slice(&1i32.to_ne_bytes());
        raw[20..24].copy_from_slice(&4i32.to_ne_bytes());
        raw[24..26].copy_from_slice(&40000u16.to_ne_bytes());
        raw[26..28].copy_from_slice(&8080u16.to_ne_bytes());
        raw[28..30].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        raw[30..32].copy_from_slice(&6u16.to_ne_bytes());
        raw[32..36].copy_from_slice(&[127, 0, 0, 1]);
        raw[36..40].copy_from_slice(&[127, 0, 0, 2]);
        let mut body = Vec::new();
        body.extend_from_slice(&1234u32.to_ne_bytes());
        body.extend_from_slice(&1235u32.to_ne_bytes());
        body.extend_from_slice(&99u64.to_ne_bytes());
        body.extend_from_slice(&(raw.len() as u32).to_ne_bytes());
        body.extend_from_slice(&raw);
        let Some(Record::Transition(t)) = parse(PERF_RECORD_SAMPLE, &body, &layout()) else {
            panic!("not a transition");
        };
        assert_eq!((t.pid, t.time_ns, t.sk), (1234, 99, 0xffff_8881_0000_1000));
        assert_eq!((t.old, t.new), (TcpState::Established, TcpState::FinWait1));
        assert_eq!(t.local, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(t.remote, "127.0.0.2:8080".parse().unwrap());
    }

    #[test]
    fn parses_fork_exit_and_lost_records() {
        let mut b = Vec::new();
        for v in [10u32, 9, 11, 9] {
            b.extend_from_slice(&v.to_ne_bytes());
        }
        b.extend_from_slice(&77u64.to_ne_bytes());
        assert_eq!(
            parse(PERF_RECORD_FORK, &b, &layout()),
            Some(Record::Fork {
                time_ns: 77,
                pid: 10,
                ppid: 9
            })
        );
        assert_eq!(
            parse(PERF_RECORD_EXIT, &b, &layout()),
            Some(Record::Exit {
                time_ns: 77,
                pid: 10,
                tid: 11
            })
        );
        let lost = [5u64.to_ne_bytes(), 3u64.to_ne_bytes()].concat();
        assert_eq!(
            parse(PERF_RECORD_LOST, &lost, &layout()),
            Some(Record::Lost(3))
        );
    }

    #[test]
    fn parses_cpu_lists() {
        assert_eq!(parse_cpu_list("0-3,5"), Some(vec![0, 1, 2, 3, 5]));
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list("x"), None);
    }

    /// On the real kernel: our own connect is seen in our own pid with the
    /// 4-tuple, then who closed first.
    #[test]
    fn sees_this_process_connect_and_close_on_the_real_kernel() {
        let mut ev = match PerfEvents::open() {
            Ok(ev) => ev,
            Err(e) if std::env::var_os("LEAKLESS_REQUIRE_EVENTS").is_none() => {
                eprintln!("skipped: {e}");
                return;
            }
            Err(e) => panic!("{e}"),
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (local, remote) = (client.local_addr().unwrap(), client.peer_addr().unwrap());
        drop(client);
        let me = std::process::id();
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mine = |r: &Record| matches!(r, Record::Transition(t) if t.remote == remote && (t.local == local || t.local.port() == 0));
        while Instant::now() < deadline {
            let mut out = Vec::new();
            ev.read(&mut out);
            seen.extend(out.into_iter().filter(mine));
            if seen
                .iter()
                .any(|r| matches!(r, Record::Transition(t) if t.new == TcpState::FinWait1))
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let Some(Record::Transition(open)) = seen.first() else {
            panic!("no transition for {local} -> {remote}: {seen:?}");
        };
        assert_eq!((open.old, open.new), (TcpState::Close, TcpState::SynSent));
        assert_eq!(open.pid, me, "connect() runs in the caller");
        assert!(
            seen.iter().any(|r| matches!(r, Record::Transition(t) if t.new == TcpState::FinWait1 && t.local == local && t.sk == open.sk)),
            "{seen:?}"
        );
    }
}
