//! What per-host state costs, and that it is given back: `cargo bench
//! --bench hosts` (`-- --hosts N` for other than 50,000).
//!
//! A test server on 0.0.0.0, in a process of its own (this program again)
//! so its bytes are not counted, is reached through one-off loopback
//! addresses 127.1.x.y, each a host of its own to the pool:
//!
//! 1. one host, 2,000 connections: what an idle connection costs;
//! 2. 8,000 hosts live at once, each with its idle connection: what a live
//!    host costs (under the 20,000 descriptors a process may have here);
//! 3. 50,000 one-off hosts, 64 requests at a time, each connection idle
//!    for 1 s and then closed: the hosts leave as they go; then idle.
//!
//! Bytes are counted exactly by a counting allocator; RSS is the kernel's
//! (`/proc/self/statm`), before and after glibc gives freed pages back
//! (`malloc_trim`), since an allocator may keep what the program freed.

#[path = "../tests/bounded/counting.rs"]
mod counting;

use std::{
    io::{BufRead, Read},
    net::{Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use counting::heap;
use leakless::Client;
use leakless_testserver::{Config, TestServer};

const SERVER_ENV: &str = "LEAKLESS_HOSTS_BENCH_SERVER";

fn main() {
    if std::env::var_os(SERVER_ENV).is_some() {
        return serve();
    }
    let mut hosts = 50_000;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--hosts" {
            hosts = args.next().and_then(|n| n.parse().ok()).expect("--hosts N");
        }
    }
    // Above them: the recent hosts' addresses (58,000 and up), the warm-up's
    // and one host's many connections.
    assert!(
        hosts <= 58_000,
        "addresses 127.1.0.0 to 127.1.226.143 at most"
    );
    let server = Server::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run(server.port, hosts));
}

async fn run(port: u16, hosts: usize) {
    let start = Instant::now();
    // The runtime and the client's lazily built parts, first.
    let warm = Client::builder().build().unwrap();
    one_each(&warm, port, 59_000..59_000 + 64, "/?close=1", 64).await;
    drop(warm);
    let (heap0, rss0) = (heap(), rss());
    println!("start: heap {}, RSS {}", kib(heap0), kib(rss0));

    // 1. One host, many connections: an idle connection's bytes.
    const CONNS: usize = 2000;
    let client = Client::builder()
        .idle_conn_timeout(Duration::from_secs(3600))
        .max_conns_per_host(CONNS)
        .max_idle_conns(0)
        .max_idle_conns_per_host(CONNS)
        .build()
        .unwrap();
    let before = heap();
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..CONNS {
        let client = client.clone();
        let url = format!("http://127.1.240.1:{port}/?latency_ms=500");
        set.spawn(async move { get(&client, url).await });
    }
    while set.join_next().await.is_some() {}
    assert_eq!(client.stats().total.idle, CONNS);
    let per_conn = (heap() - before) / CONNS as isize;
    drop(client);

    // 2. Many hosts live at once.
    const LIVE: usize = 8000;
    let client = Client::builder()
        .idle_conn_timeout(Duration::from_secs(3600))
        .max_idle_conns(0)
        .build()
        .unwrap();
    let before = heap();
    one_each(&client, port, 0..LIVE, "/", 64).await;
    assert_eq!(client.stats().hosts.len(), LIVE);
    let per_host = (heap() - before) / LIVE as isize;
    println!(
        "an idle connection: {per_conn} bytes; a live host with its idle connection: \
         {per_host} bytes (the host's own share: {} bytes)",
        per_host - per_conn
    );
    drop(client);

    // 3. One-off hosts, expiring as they go. First the list of recent
    // hosts fills (its fixed size, whatever came and went), so what is
    // left after is what gone hosts cost.
    let client = Client::builder()
        .idle_conn_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let recent = 58_000..58_000 + leakless::RECENT_HOSTS;
    one_each(&client, port, recent, "/?close=1", 64).await;
    while !client.stats().hosts.is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let before = (heap(), rss());
    let t = Instant::now();
    let mut most = (0, 0);
    for wave in (0..hosts).step_by(1000) {
        one_each(&client, port, wave..(wave + 1000).min(hosts), "/", 64).await;
        let live = client.stats().hosts.len();
        if live > most.0 {
            most = (live, heap() - before.0);
        }
    }
    let sent = t.elapsed();
    let t = Instant::now();
    while !client.stats().hosts.is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(t.elapsed() < Duration::from_secs(60), "hosts still live");
    }
    let s = client.stats();
    let all = (hosts + leakless::RECENT_HOSTS) as u64;
    assert_eq!((s.total.created, s.total.closed), (all, all));
    assert!(s.recent.len() <= leakless::RECENT_HOSTS);
    drop(s);
    let (heap1, rss1) = (heap(), rss());
    trim();
    let rss2 = rss();
    println!(
        "{hosts} one-off hosts in {sent:.1?}: at most {} live at once ({} bytes each, \
         connections included); all gone {:.1?} later",
        most.0,
        most.1 / most.0.max(1) as isize,
        t.elapsed()
    );
    println!(
        "after: heap {} ({:+} bytes since before the {hosts}: {:.3} per gone host), \
         RSS {} ({:+} KiB), {} after malloc_trim ({:+} KiB)",
        kib(heap1),
        heap1 - before.0,
        (heap1 - before.0) as f64 / hosts as f64,
        kib(rss1),
        (rss1 - before.1) / 1024,
        kib(rss2),
        (rss2 - before.1) / 1024,
    );
    drop(client);
    println!(
        "since the start: heap {:+} bytes, RSS {:+} KiB; {:.1?} in all",
        heap() - heap0,
        (rss() - rss0) / 1024,
        start.elapsed()
    );
}

async fn get(client: &Client, url: String) {
    let body = client.get(url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(body, "hello");
}

/// GETs `path` from each of the hosts `range` (127.1.x.y), `at_once` at a time.
async fn one_each(
    client: &Client,
    port: u16,
    range: std::ops::Range<usize>,
    path: &str,
    at_once: usize,
) {
    let mut set = tokio::task::JoinSet::new();
    for i in range {
        if set.len() == at_once {
            set.join_next().await.unwrap().unwrap();
        }
        let ip = Ipv4Addr::new(127, 1, (i >> 8) as u8, i as u8);
        let url = format!("http://{}{path}", SocketAddr::from((ip, port)));
        let client = client.clone();
        set.spawn(async move { get(&client, url).await });
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
}

/// Resident memory, in bytes.
fn rss() -> isize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: isize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn kib(bytes: isize) -> String {
    format!("{} KiB", bytes / 1024)
}

/// Asks glibc to give freed memory back to the kernel.
fn trim() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: malloc_trim takes a byte count and only releases free memory.
    unsafe {
        malloc_trim(0);
    }
}

/// The test server in a process of its own: this program again.
struct Server {
    child: std::process::Child,
    port: u16,
}

impl Server {
    fn start() -> Server {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .env(SERVER_ENV, "1")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let port = lines
            .next()
            .and_then(Result::ok)
            .and_then(|l| l.strip_prefix("PORT=").map(|p| p.parse().unwrap()))
            .expect("the server process said no port");
        Server { child, port }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// The server side: listens on 0.0.0.0, says its port, serves until its
/// stdin closes.
fn serve() {
    let addr = SocketAddr::from(([0, 0, 0, 0], 0));
    let server = TestServer::start_on(addr, Config::new().history(0)).unwrap();
    println!("PORT={}", server.addr().port());
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}
