//! Connection events for a watch: the perf rings ([`super::perf`]) read
//! into the [`Lifecycle`] state machine, drained by the sampler each tick.
//!
//! A background thread sleeps in poll(2) until a ring is half full (never,
//! on an idle host), so the rings cannot overflow between two samples of a
//! busy one; the sampler's drain reads whatever is left. Both read every
//! ring and sort the batch by time, so a socket's changes on different CPUs
//! are fed in order.
//!
//! ```ignore
//! let source = EventSource::open()?;       // before starting the command
//! let child = spawn(...);
//! let events = source.follow(Scope::Tree(child.id()));
//! loop { for e in events.drain().events { ... } }
//! ```

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use super::lifecycle::{ConnEvent, Lifecycle, Scope};
use super::perf::{PerfEvents, Record};
use super::process;

/// Events kept between two drains at most; past that they are dropped and
/// counted (a watch that stopped draining must not grow without bound).
const MAX_PENDING: usize = 1 << 20;

/// The events are on, nothing is followed yet: records wait in the rings.
pub struct EventSource {
    perf: PerfEvents,
}

impl EventSource {
    /// Opens the events. Fails without the privilege or tracefs (the error
    /// says which); the caller then samples only.
    pub fn open() -> io::Result<EventSource> {
        if std::env::var("LEAKLESS_WATCH_EVENTS").is_ok_and(|v| v == "off") {
            return Err(io::Error::other("turned off by LEAKLESS_WATCH_EVENTS=off"));
        }
        Ok(EventSource {
            perf: PerfEvents::open()?,
        })
    }

    /// Starts following `scope`: a tree is seeded from /proc now (processes
    /// forked before the events were on), then followed by fork records.
    pub fn follow(self, scope: Scope) -> ConnEvents {
        let mut life = Lifecycle::new(scope);
        if let Scope::Tree(root) = scope {
            life.seed(&process::with_descendants(root));
        }
        let shared = Arc::new(Mutex::new(Shared {
            perf: self.perf,
            life,
            batch: Vec::new(),
            out: Vec::new(),
            dropped: 0,
        }));
        // SAFETY: eventfd(2) returns a new fd we own, or -1.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        let wake = (raw >= 0).then(|| unsafe { OwnedFd::from_raw_fd(raw) });
        let thread = wake.as_ref().and_then(|w| {
            let (shared, stop) = (shared.clone(), w.as_raw_fd());
            std::thread::Builder::new()
                .name("watch-events".into())
                .spawn(move || reader(&shared, stop))
                .ok()
        });
        ConnEvents {
            shared,
            wake,
            thread,
        }
    }
}

/// What one drain returns.
#[derive(Debug, Default)]
pub struct Drained {
    /// Since the previous drain, in time order.
    pub events: Vec<ConnEvent>,
    /// Since the start: records the kernel dropped (full ring), connections
    /// not followed (too many live), events dropped (not drained in time).
    pub lost: u64,
}

/// Following connections; stops its thread when dropped.
pub struct ConnEvents {
    shared: Arc<Mutex<Shared>>,
    wake: Option<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

struct Shared {
    perf: PerfEvents,
    life: Lifecycle,
    batch: Vec<Record>,
    out: Vec<ConnEvent>,
    dropped: u64,
}

impl Shared {
    /// Reads every ring, merges by time, feeds the state machine.
    fn pump(&mut self) {
        self.perf.read(&mut self.batch);
        self.batch.sort_by_key(Record::time_ns);
        let before = self.out.len();
        for r in self.batch.drain(..) {
            self.life.feed(&r, &mut self.out);
        }
        if self.out.len() > MAX_PENDING {
            self.dropped += (self.out.len() - MAX_PENDING.max(before)) as u64;
            self.out.truncate(MAX_PENDING.max(before));
        }
    }
}

impl ConnEvents {
    /// Everything that happened since the last drain.
    pub fn drain(&self) -> Drained {
        let mut s = lock(&self.shared);
        s.pump();
        Drained {
            events: std::mem::take(&mut s.out),
            lost: s.life.lost + s.life.untracked + s.dropped,
        }
    }

    /// The pids of the followed tree as the fork records left it.
    pub fn tree(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = lock(&self.shared).life.tree().collect();
        pids.sort_unstable();
        pids
    }
}

impl Drop for ConnEvents {
    fn drop(&mut self) {
        if let Some(w) = &self.wake {
            // SAFETY: an 8-byte write to our own eventfd.
            unsafe {
                libc::write(w.as_raw_fd(), (&1u64 as *const u64).cast(), 8);
            }
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A panic while pumping leaves plain data behind: keep going.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The background reader: wakes when a ring is half full or `stop` is
/// written.
fn reader(shared: &Mutex<Shared>, stop: i32) {
    let mut fds: Vec<libc::pollfd> = lock(shared)
        .perf
        .fds()
        .into_iter()
        .chain([stop])
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: poll(2) over a vector of pollfd we own.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
        if fds.last().is_some_and(|f| f.revents != 0) {
            return;
        }
        // A ring whose CPU went away reports an error forever: stop polling
        // it (drains still read it).
        fds.retain(|f| f.revents & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) == 0);
        lock(shared).pump();
    }
}

/// CLOCK_MONOTONIC now, in the events' time base (nanoseconds).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime(2) writing into a timespec we own.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sockets::lifecycle::Ending;
    use std::io::Read;
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::process::Command;
    use std::time::{Duration, Instant};

    fn source() -> Option<EventSource> {
        match EventSource::open() {
            Ok(s) => Some(s),
            Err(e) if std::env::var_os("LEAKLESS_REQUIRE_EVENTS").is_none() => {
                eprintln!("skipped: {e}");
                None
            }
            Err(e) => panic!("{e}"),
        }
    }

    /// Accepts and reads each connection to EOF on a thread.
    fn server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for c in l.incoming().take(16).flatten() {
                std::thread::spawn(move || {
                    let _ = (&c).read_to_end(&mut Vec::new());
                });
            }
        });
        addr
    }

    /// Collects `want` ended connections to `remote`, at most 10 s.
    fn ended(ev: &ConnEvents, remote: SocketAddr, want: usize) -> Vec<ConnEvent> {
        let mut got = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < want && Instant::now() < deadline {
            got.extend(
                ev.drain()
                    .events
                    .into_iter()
                    .filter(|e| matches!(e, ConnEvent::Ended { remote: r, .. } if *r == remote)),
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        got
    }

    /// Three connections, each made by a subshell that lives a few
    /// milliseconds, belong to the command that forked them; the test's own
    /// connection to the same server does not.
    #[test]
    fn connections_of_short_lived_children_belong_to_the_followed_command() {
        let Some(src) = source() else { return };
        let addr = server();
        let script = format!(
            "for i in 1 2 3; do (exec 3<>/dev/tcp/127.0.0.1/{}; exec 3>&-); done; sleep 5",
            addr.port()
        );
        let mut child = Command::new("bash").args(["-c", &script]).spawn().unwrap();
        let ev = src.follow(Scope::Tree(child.id()));
        drop(TcpStream::connect(addr).unwrap());
        let got = ended(&ev, addr, 3);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(got.len(), 3, "{got:?}");
        for e in &got {
            let ConnEvent::Ended {
                owner,
                ending,
                opened_ns,
                ended_ns,
                ..
            } = *e
            else {
                unreachable!()
            };
            assert_eq!(owner, child.id());
            assert_eq!(ending, Ending::LocalFirst, "the subshell closed first");
            assert!(ended_ns >= opened_ns && ended_ns - opened_ns < 5_000_000_000);
        }
        // Nothing else to this server was attributed to the command.
        std::thread::sleep(Duration::from_millis(100));
        let more = ev.drain().events;
        assert!(
            !more
                .iter()
                .any(|e| matches!(e, ConnEvent::Ended { remote, .. } if *remote == addr)),
            "{more:?}"
        );
    }

    #[test]
    fn the_event_clock_is_the_monotonic_clock() {
        let Some(src) = source() else { return };
        let ev = src.follow(Scope::All);
        let before = monotonic_ns();
        let addr = server();
        drop(TcpStream::connect(addr).unwrap());
        let got = ended(&ev, addr, 1);
        let after = monotonic_ns();
        let ConnEvent::Ended { opened_ns, .. } = got[0] else {
            unreachable!()
        };
        assert!(before <= opened_ns && opened_ns <= after);
    }
}
