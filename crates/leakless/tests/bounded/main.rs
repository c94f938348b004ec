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

mod counting;
mod hosts;
#[path = "../it/support/kernel.rs"]
#[allow(dead_code)]
mod kernel;
mod waiters;

pub use counting::heap;
use leakless_testserver::TestServer;

/// Runs `test` on a runtime of its own (`threads` workers, 0 for the
/// current thread), with no other test of this binary running: the heap is
/// the process's, so two tests at once would count each other's bytes.
pub fn alone<T>(threads: usize, test: impl Future<Output = T>) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _alone = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut rt = match threads {
        0 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    rt.enable_all().build().unwrap().block_on(test)
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
