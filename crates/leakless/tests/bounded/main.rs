//! Memory that must stay bounded, measured exactly: this binary counts
//! every byte allocated and freed (a counting global allocator), and runs
//! its tests one at a time so each sees only its own.
//!
//! - `hosts`: a live host's bytes, and what a host leaves behind once
//!   gone (nothing: only the fixed list of recent hosts).
//! - `waiters`: 10,000 requests in flight against `max_conns_per_host(100)`:
//!   the kernel never sees more than 100 sockets, waiters are served first
//!   in, first out, each costs a bounded number of bytes, and dropping them
//!   all, or letting them time out, leaves nothing behind.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicIsize, Ordering},
};

#[path = "../it/support/kernel.rs"]
#[allow(dead_code)]
mod kernel;

mod hosts;
mod waiters;

use leakless_testserver::TestServer;

/// The system allocator, counting the bytes it holds for the program.
struct Counting;

static HELD: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call goes straight to the system allocator; the counter
// is a side effect that allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        HELD.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

/// Bytes the program holds on the heap now.
pub fn heap() -> isize {
    HELD.load(Ordering::Relaxed)
}

/// Held by each test for its whole run: the heap is the process's, so two
/// tests at once would count each other's bytes.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Polls `probe` until `done` holds (yielding to the runtime in between),
/// failing after 60 s with what it saw last.
pub async fn wait_for<T: std::fmt::Debug>(
    what: &str,
    mut probe: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let start = std::time::Instant::now();
    loop {
        let seen = probe();
        if done(&seen) {
            return seen;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "waited 60 s for {what}; last seen: {seen:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
}

/// A test server on `0.0.0.0` in a process of its own (this binary again,
/// running [`server_child`]), so its connections' bytes are not counted
/// with the client's. It ends when this handle is dropped.
pub struct ServerProcess {
    child: std::process::Child,
    pub port: u16,
}

impl ServerProcess {
    pub fn start() -> ServerProcess {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "server_child", "--ignored", "--nocapture"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let mut lines = std::io::BufReader::new(out).lines();
        let port = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.strip_prefix("PORT=").map(|p| p.parse().unwrap()))
            .expect("the server process said no port");
        // Keep reading, so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        ServerProcess { child, port }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Its stdin closes with `child`: that is its signal to end.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The server side of [`ServerProcess`]: listens on 0.0.0.0, says its
/// port, and serves until its stdin closes.
#[test]
#[ignore = "run by ServerProcess::start, in a process of its own"]
fn server_child() {
    let addr = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
    let config = leakless_testserver::Config::new().history(0);
    let server = TestServer::start_on(addr, config).unwrap();
    println!("PORT={}", server.addr().port());
    let mut sink = String::new();
    let _ = std::io::Read::read_to_string(&mut std::io::stdin(), &mut sink);
}
