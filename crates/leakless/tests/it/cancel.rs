//! Scenarios 24–25: dropping a request at any await point leaves no socket,
//! slot or waiter behind, and counts stay exact under random cancellation;
//! over HTTP/1.1, HTTP/1.1 over TLS and HTTP/2. On HTTP/2 a dropped request
//! resets its stream and leaves the shared connection idle: what must not
//! remain there is a stream counted in `h2_streams` or a slot.
//!
//! "No socket" is checked in the kernel's table. A socket we closed first
//! may linger there as an orphan (FIN_WAIT*, TIME_WAIT: no process holds
//! it, inode 0): that is the kernel finishing our close, not a leak. What
//! must not be there is a socket we still hold, or one the server closed
//! and we did not (CLOSE_WAIT).

use std::{net::SocketAddr, time::Duration};

use leakless::{Client, CloseReason, Response};
use leakless_testserver::ConnFault;
use tokio::task::JoinHandle;

use crate::support::*;

/// Spawns a GET of `url`, returning the response to the test.
fn spawn_get(client: &Client, url: String) -> JoinHandle<Result<Response, leakless::Error>> {
    let client = client.clone();
    tokio::spawn(async move { client.get(url).send().await })
}

/// Aborts `task` (dropping its future where it stands) and waits for that.
async fn cancel<T: std::fmt::Debug>(task: JoinHandle<T>) {
    task.abort();
    let joined = bounded(task).await;
    assert!(joined.unwrap_err().is_cancelled());
}

/// The one socket we hold to `server`: its local port.
fn our_only_socket(server: SocketAddr) -> u16 {
    let ours = kernel_sockets_to(server);
    assert_eq!(ours.len(), 1, "{ours:?}");
    ours[0].0
}

/// After a cancellation: nothing in flight, counts consistent, no socket
/// we hold to the server (but the `others` the test itself holds), and our
/// old socket, if the kernel still lists it, is one we closed first.
fn assert_nothing_left(client: &Client, server: SocketAddr, old_port: Option<u16>, others: &[u16]) {
    let s = client.stats().total;
    assert_eq!(
        (s.dialing, s.busy, s.waiting, s.open),
        (0, 0, 0, 0),
        "{s:?}"
    );
    assert_consistent(&s);
    assert_eq!(s.closed_by.get(CloseReason::Canceled), 1, "{s:?}");
    let held: Vec<_> = kernel_sockets_to(server)
        .into_iter()
        .filter(|(port, _)| !others.contains(port))
        .collect();
    assert!(held.is_empty(), "{held:?}");
    if let Some(port) = old_port {
        for row in kernel_rows_from(port, server) {
            assert_eq!(row.inode, 0, "still held: {row:?}");
            assert!(
                [FIN_WAIT1, FIN_WAIT2, TIME_WAIT, CLOSE].contains(&row.state),
                "not a close of ours: {row:?}"
            );
        }
    }
}

/// After a cancellation on HTTP/2: the stream was reset (the server saw
/// it) and no stream or slot is left; the shared connection is idle.
async fn assert_only_the_stream_is_gone(client: &Client, server: &TestServer) {
    bounded(server.wait_until(|s| s.h2_streams_reset >= 1)).await;
    let s = client.stats().total;
    assert_eq!(
        (s.dialing, s.busy, s.waiting, s.h2_streams, s.open, s.idle),
        (0, 0, 0, 0, 1, 1),
        "{s:?}"
    );
    assert_eq!(s.closed, 0, "{s:?}");
    assert_consistent(&s);
    let ours = kernel_sockets_to(server.addr());
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0].1, ESTABLISHED);
}

/// On h2 the server allows one stream per connection, so the second
/// request waits for the first one's.
async fn dropped_while_waiting_for_a_slot_takes_nothing(mode: Mode) {
    let server = mode.server(Config::new().h2_max_concurrent_streams(1));
    let client = mode.client(&server, Client::builder().max_conns_per_host(1));
    let held = client
        .get(mode.url(&server, "/?size=10"))
        .send()
        .await
        .unwrap();
    let waiter = spawn_get(&client, mode.url(&server, "/"));
    until(|| client.stats().total.waiting == 1).await;
    cancel(waiter).await;

    let s = client.stats().total;
    assert_eq!(
        (s.dialing, s.busy, s.waiting, s.open, s.created),
        (0, 1, 0, 1, 1),
        "{s:?}"
    );
    assert_eq!(s.closed, 0, "{s:?}");
    assert_consistent(&s);
    let ours = kernel_sockets_to(server.addr());
    assert_eq!(ours.len(), 1);
    assert_eq!(ours[0].1, ESTABLISHED);

    // The held connection comes back and serves the next request.
    held.bytes().await.unwrap();
    let res = client.get(mode.url(&server, "/")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "hello");
    let s = client.stats().total;
    assert_eq!(
        (s.created, s.reused, s.idle, s.h2_streams),
        (1, 1, 1, 0),
        "{s:?}"
    );
    assert_eq!(server.stats().accepted, 1);
}
per_mode!(dropped_while_waiting_for_a_slot_takes_nothing: h1, h1_tls, h2, h2c);

/// h1: the TCP connect (SYN_SENT against a full accept queue); TLS and
/// h2c: the handshake, against a server that accepts and never answers.
async fn dropped_mid_dial_closes_the_half_open_socket(mode: Mode) {
    if mode != Mode::H1 {
        return dropped_mid_handshake_closes_the_socket(mode).await;
    }
    let (listener, fillers) = saturated_listener();
    let addr = listener.local_addr().unwrap();
    let filler_ports: Vec<u16> = fillers
        .iter()
        .map(|s| s.local_addr().unwrap().as_socket().unwrap().port())
        .collect();
    let ours = || -> Vec<TcpRow> {
        kernel_rows_to(addr)
            .into_iter()
            .filter(|r| !filler_ports.contains(&r.local_port))
            .collect()
    };
    let client = Client::new();
    let req = spawn_get(&client, format!("http://{addr}/"));
    until(|| !ours().is_empty()).await;
    let dialing = ours();
    assert_eq!(dialing.len(), 1, "{dialing:?}");
    assert_eq!(dialing[0].state, SYN_SENT, "{dialing:?}");
    assert_eq!(client.stats().total.dialing, 1);

    cancel(req).await;
    // A socket closed in SYN_SENT leaves the table at once.
    assert!(ours().is_empty(), "{:?}", ours());
    assert_nothing_left(&client, addr, Some(dialing[0].local_port), &filler_ports);
}
per_mode!(dropped_mid_dial_closes_the_half_open_socket: h1, h1_tls, h2, h2c);

async fn dropped_mid_handshake_closes_the_socket(mode: Mode) {
    let server = mode.server(Config::new().conn_fault(ConnFault::AcceptAndStall));
    let client = mode.client(&server, Client::builder());
    let req = spawn_get(&client, mode.url(&server, "/"));
    // Accepted, so connected: the dial is in its TLS (or h2) handshake.
    server.wait_accepted(1).await;
    until(|| client.stats().total.dialing == 1).await;
    let port = our_only_socket(server.addr());

    cancel(req).await;
    assert_nothing_left(&client, server.addr(), Some(port), &[]);
    server.wait_closed(1).await;
}

/// The connection goes deaf after a first reply (`silence=1`), so the next
/// request's 16 MiB body, far larger than both socket buffers (h2: than
/// the stream's flow-control window), blocks the write part-way.
async fn dropped_mid_write_closes_the_socket(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let res = client
        .get(mode.url(&server, "/?silence=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "hello");
    let port = our_only_socket(server.addr());
    let body = vec![b'x'; 16 << 20];
    let req = tokio::spawn({
        let (client, url) = (client.clone(), mode.url(&server, "/upload"));
        async move { client.post(url).body(body).send().await }
    });
    if mode.is_h2() {
        // The stream is open; its body cannot pass the window of a server
        // that reads nothing, so the task waits mid-write for credit.
        until(|| client.stats().total.h2_streams == 1).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!req.is_finished());
        cancel(req).await;
        assert_only_h2_stream_released(&client, &server);
        // The connection is still ours (a deaf one, which keep-alive pings
        // would find): dropping the client closes it, and nothing remains.
        drop(client);
        server.wait_closed(1).await;
        assert!(kernel_sockets_to(server.addr()).is_empty());
        for row in kernel_rows_from(port, server.addr()) {
            assert_eq!(row.inode, 0, "still held: {row:?}");
        }
        return;
    }
    // Busy means checked out; 16 MiB cannot fit, so once bytes sit unsent
    // in our queue the task is blocked mid-write.
    until(|| client.stats().total.busy == 1).await;
    eventually(|| kernel_rows_from(port, server.addr())[0].tx_queue > 0).await;
    let row = kernel_rows_from(port, server.addr())[0];
    assert_eq!(row.state, ESTABLISHED, "{row:?}");

    cancel(req).await;
    // Our fd is gone. The kernel keeps the orphan in FIN_WAIT1 while it
    // still owes the (no longer reading) server the queued bytes: that is
    // the close in progress, owned by no one.
    assert_nothing_left(&client, server.addr(), Some(port), &[]);
    // Our FIN waits behind the bytes the deaf server never reads: it cannot
    // see the close, so it is told to close.
    assert_eq!(server.close_all_connections(), 1);
    server.wait_closed(1).await;
}
per_mode!(dropped_mid_write_closes_the_socket: h1, h1_tls, h2, h2c);

/// After an h2 request was dropped mid-write: no stream, no slot, no
/// waiter; the connection is open and idle (the server, deaf, cannot see
/// the reset).
fn assert_only_h2_stream_released(client: &Client, server: &TestServer) {
    let s = client.stats().total;
    assert_eq!(
        (s.dialing, s.busy, s.waiting, s.h2_streams, s.open, s.idle),
        (0, 0, 0, 0, 1, 1),
        "{s:?}"
    );
    assert_eq!(s.closed, 0, "{s:?}");
    assert_consistent(&s);
    let ours = kernel_sockets_to(server.addr());
    assert_eq!(ours.len(), 1, "{ours:?}");
}

/// On h2 the stalled stream is reset and the connection carries on.
async fn dropped_while_awaiting_headers_closes_the_connection(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let req = spawn_get(&client, mode.url(&server, "/?fault=stall"));
    server.wait_requests(1).await;
    until(|| client.stats().total.busy == 1).await;
    let port = our_only_socket(server.addr());

    cancel(req).await;
    if mode.is_h2() {
        assert_only_the_stream_is_gone(&client, &server).await;
        let res = client.get(mode.url(&server, "/")).send().await.unwrap();
        assert_eq!(res.text().await.unwrap(), "hello");
        assert_eq!(server.stats().accepted, 1);
        return;
    }
    assert_nothing_left(&client, server.addr(), Some(port), &[]);
    let seen = server.wait_closed(1).await;
    assert_eq!(
        seen.closed_for(leakless_testserver::CloseReason::Peer),
        1,
        "{seen:?}"
    );
    // The next request dials afresh and works.
    let res = client.get(mode.url(&server, "/")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "hello");
    assert_eq!(server.stats().accepted, 2);
}
per_mode!(dropped_while_awaiting_headers_closes_the_connection: h1, h1_tls, h2, h2c);

/// Reads the head and `after` body bytes, says so, then reads on.
fn spawn_body_reader(
    client: &Client,
    url: String,
    after: usize,
) -> (JoinHandle<()>, tokio::sync::oneshot::Receiver<()>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let client = client.clone();
    let task = tokio::spawn(async move {
        let mut res = client.get(url).send().await.unwrap();
        let mut got = 0;
        while got < after {
            got += res.chunk().await.unwrap().unwrap().len();
        }
        tx.send(()).unwrap();
        while res.chunk().await.unwrap().is_some() {}
        unreachable!("the body stalls");
    });
    (task, rx)
}

/// On h2 there is no drain: the stream is reset and the connection stays.
async fn dropped_mid_body_closes_a_remainder_too_large_to_drain(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let url = mode.url(&server, "/?fault=stall_body&after=10&size=1000000");
    let (task, mid_body) = spawn_body_reader(&client, url, 10);
    bounded(mid_body).await.unwrap();
    let port = our_only_socket(server.addr());

    cancel(task).await;
    if mode.is_h2() {
        assert_only_the_stream_is_gone(&client, &server).await;
        return;
    }
    // Too much is left to drain: the drop closes at once.
    let s = client.stats().total;
    assert_eq!(s.closed_by.get(CloseReason::DrainFailed), 1, "{s:?}");
    assert_eq!(
        (s.dialing, s.busy, s.waiting, s.open),
        (0, 0, 0, 0),
        "{s:?}"
    );
    assert_consistent(&s);
    assert!(kernel_sockets_to(server.addr()).is_empty());
    for row in kernel_rows_from(port, server.addr()) {
        assert_eq!(row.inode, 0, "{row:?}");
    }
    server.wait_closed(1).await;
}
per_mode!(dropped_mid_body_closes_a_remainder_too_large_to_drain: h1, h1_tls, h2, h2c);

// HTTP/1.1 only: draining is how HTTP/1.1 keeps a connection whose body
// was dropped; h2 resets the stream instead (the test above).
async fn dropped_mid_body_within_the_drain_limit_drains_then_closes_a_stalled_body(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(
        &server,
        Client::builder().drain_timeout(Duration::from_millis(30)),
    );
    let url = mode.url(&server, "/?fault=stall_body&after=10&size=1000");
    let (task, mid_body) = spawn_body_reader(&client, url, 10);
    bounded(mid_body).await.unwrap();
    let port = our_only_socket(server.addr());

    cancel(task).await;
    // The drain owns the connection (still busy) until it gives up.
    let s = quiescent(&client).await;
    assert_eq!(s.closed_by.get(CloseReason::DrainFailed), 1, "{s:?}");
    assert_eq!(s.open, 0, "{s:?}");
    assert_consistent(&s);
    assert!(kernel_sockets_to(server.addr()).is_empty());
    for row in kernel_rows_from(port, server.addr()) {
        assert_eq!(row.inode, 0, "{row:?}");
    }
    server.wait_closed(1).await;
}
per_mode!(dropped_mid_body_within_the_drain_limit_drains_then_closes_a_stalled_body: h1, h1_tls);

// ---------------------------------------------------------------------------
// Scenario 25: many requests, random cancellation, random server faults.

/// Set in the process that runs the stress test alone.
const ISOLATED: &str = "LEAKLESS_IT_ISOLATED";
const STRESS_WORKERS: usize = 32;

/// Runs `cancel::stress_in_a_process_of_its_own::{mode}` in a process of
/// its own: open file descriptors are counted per process, and the harness
/// runs the other tests on threads of this one.
fn in_a_process_of_its_own(mode: &str) {
    let test = format!("cancel::stress_in_a_process_of_its_own::{mode}");
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            test.as_str(),
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ISOLATED, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let (out, err) = (read(Box::new(stdout)), read(Box::new(stderr)));
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the stress process ran over 120 s:\n{}\n{}",
                out.join().unwrap(),
                err.join().unwrap()
            );
        }
        // Polling a child process: there is nothing to await.
        std::thread::sleep(Duration::from_millis(20));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(status.success(), "stress process failed:\n{out}\n{err}");
    assert!(
        out.contains("1 passed"),
        "the stress test did not run:\n{out}"
    );
    for line in out.lines().filter_map(|l| l.split_once("stress:")) {
        println!("stress:{}", line.1);
    }
}

#[test]
fn ten_thousand_requests_with_random_cancellation_and_faults_leave_nothing_behind() {
    in_a_process_of_its_own("h1");
}

/// Fewer requests per extra mode: the suite has to stay quick, and TLS in a
/// debug build is slow to handshake.
mod two_thousand_requests_with_random_cancellation_and_faults_leave_nothing_behind {
    #[test]
    fn h1_tls() {
        super::in_a_process_of_its_own("h1_tls");
    }

    #[test]
    fn h2() {
        super::in_a_process_of_its_own("h2");
    }

    #[test]
    fn h2c() {
        super::in_a_process_of_its_own("h2c");
    }
}

/// The stress itself, run alone in a child process by the tests above.
mod stress_in_a_process_of_its_own {
    use crate::support::Mode;

    fn run(mode: Mode, requests: usize) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let isolated = std::env::var_os(super::ISOLATED).is_some();
        rt.block_on(super::stress(mode, requests, isolated));
    }

    #[test]
    #[ignore = "run alone, in a process of its own, by ten_thousand_requests_with_..."]
    fn h1() {
        run(Mode::H1, 10_000);
    }

    #[test]
    #[ignore = "run alone, in a process of its own, by two_thousand_requests_with_..."]
    fn h1_tls() {
        run(Mode::H1Tls, 2_000);
    }

    #[test]
    #[ignore = "run alone, in a process of its own, by two_thousand_requests_with_..."]
    fn h2() {
        run(Mode::H2, 2_000);
    }

    #[test]
    #[ignore = "run alone, in a process of its own, by two_thousand_requests_with_..."]
    fn h2c() {
        run(Mode::H2c, 2_000);
    }
}

/// xorshift64*: deterministic, tiny, good enough to pick test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// How much of the body the caller reads before dropping the response.
#[derive(Clone, Copy, Debug)]
enum Read {
    All,
    Chunks(u32),
    Nothing,
}

/// How the caller gives up on the request, if it does.
#[derive(Clone, Copy, Debug)]
enum Cancel {
    Never,
    After(Duration),
    /// After the request future was polled this many times.
    AfterPolls(u32),
}

#[derive(Debug)]
struct Case {
    path: String,
    /// POST this many bytes, echoed back.
    post: Option<usize>,
    /// The server misbehaves on purpose: an error is expected.
    fault: bool,
    /// The body length a full read must see, when the case says.
    expect_len: Option<usize>,
    total: Option<Duration>,
    read: Read,
    cancel: Cancel,
}

impl Case {
    fn random(rng: &mut Rng, mode: Mode) -> Case {
        let size = |rng: &mut Rng| match rng.below(4) {
            0 => rng.below(10) as usize,
            1 | 2 => rng.below(20_000) as usize,
            _ => rng.below(200_000) as usize,
        };
        let mut case = Case {
            path: String::new(),
            post: None,
            fault: false,
            expect_len: None,
            total: None,
            read: match rng.below(10) {
                0..=5 => Read::All,
                6..=8 => Read::Chunks(rng.below(4) as u32),
                _ => Read::Nothing,
            },
            cancel: match rng.below(10) {
                0..=4 => Cancel::Never,
                5..=7 => Cancel::After(Duration::from_micros(rng.below(3000))),
                _ => Cancel::AfterPolls(rng.below(12) as u32),
            },
        };
        match rng.below(100) {
            0..=14 => {
                case.path = "/".into();
                case.expect_len = Some(5);
            }
            15..=29 => {
                let n = size(rng);
                case.path = format!("/?size={n}");
                case.expect_len = Some(n);
            }
            30..=41 => {
                let n = size(rng);
                let chunk = 1 + rng.below(20_000);
                case.path = format!("/?size={n}&chunked=1&chunk={chunk}");
                case.expect_len = Some(n);
            }
            42..=47 => {
                let n = size(rng);
                case.path = format!("/?size={n}&close=1");
                case.expect_len = Some(n);
            }
            48..=52 => {
                let n = size(rng);
                case.path = format!("/?size={n}&framing=close");
                case.expect_len = Some(n);
            }
            53..=57 => {
                case.path = format!("/?latency_ms={}", rng.below(3));
                case.expect_len = Some(5);
            }
            58..=64 => {
                let n = 1 + size(rng);
                case.path = "/?echo=1".into();
                case.post = Some(n);
                case.expect_len = Some(n);
            }
            // On h2 a close or reset takes the whole shared connection and
            // fails the other streams on it, which are not faulty cases:
            // h2 gets the per-stream faults instead.
            65..=69 if mode.is_h2() => case.path = "/?fault=rst_stream&code=2".into(),
            70..=74 if mode.is_h2() => case.path = "/?fault=refuse".into(),
            65..=69 => case.path = "/?fault=close".into(),
            70..=74 => case.path = "/?fault=reset".into(),
            75..=80 => {
                let n = 1 + size(rng) as u64;
                case.path = format!("/?fault=truncate&size={n}&after={}", rng.below(n));
            }
            81..=83 => case.path = "/?fault=stall".into(),
            84..=86 => {
                let n = 1 + size(rng) as u64;
                case.path = format!("/?fault=stall_body&size={n}&after={}", rng.below(n));
            }
            87..=91 => {
                case.path = "/?fault=endless".into();
                case.total = Some(Duration::from_millis(1 + rng.below(20)));
            }
            92..=95 => case.path = "/?raw=HTTP%2F1.1%20abc%0D%0A%0D%0A".into(),
            _ => case.path = "/?fault=close_after_headers&size=100".into(),
        }
        case.fault = case.expect_len.is_none();
        case
    }
}

/// Ready after being polled `n` times (waking itself in between), so a
/// `select!` against it cancels the other branch at its n-th await point.
async fn polls(n: u32) {
    let mut left = n;
    std::future::poll_fn(|cx| {
        if left == 0 {
            return std::task::Poll::Ready(());
        }
        left -= 1;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    })
    .await
}

#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    failed: u64,
    canceled: u64,
    /// Requests to well-behaved paths that failed without being canceled.
    plain_failures: Vec<String>,
}

async fn run_case(
    mode: Mode,
    client: &Client,
    server: &TestServer,
    case: &Case,
    tally: &mut Tally,
) {
    let work = async {
        let url = mode.url(server, &case.path);
        let mut req = match case.post {
            Some(n) => client.post(url).body(vec![b'p'; n]),
            None => client.get(url),
        };
        if let Some(t) = case.total {
            req = req.timeout(t);
        }
        let mut res = req.send().await?;
        match case.read {
            Read::All => {
                let mut n = 0;
                while let Some(b) = res.chunk().await? {
                    n += b.len();
                }
                if let Some(want) = case.expect_len {
                    assert_eq!(n, want, "body length of {case:?}");
                }
            }
            Read::Chunks(k) => {
                for _ in 0..k {
                    if res.chunk().await?.is_none() {
                        break;
                    }
                }
            }
            Read::Nothing => {}
        }
        Ok::<_, leakless::Error>(())
    };
    let done = match case.cancel {
        Cancel::Never => Some(work.await),
        Cancel::After(d) => tokio::time::timeout(d, work).await.ok(),
        Cancel::AfterPolls(n) => tokio::select! {
            biased;
            r = work => Some(r),
            () = polls(n) => None,
        },
    };
    match done {
        None => tally.canceled += 1,
        Some(Ok(())) => tally.ok += 1,
        Some(Err(e)) => {
            tally.failed += 1;
            if !case.fault {
                tally.plain_failures.push(format!("{case:?}: {e}"));
            }
        }
    }
}

async fn stress(mode: Mode, requests: usize, isolated: bool) {
    // Below the number of workers, some requests wait for a slot (some of
    // those waits are canceled too): 24 connections for h1, 6 of 4 streams
    // each for h2.
    let (cap, streams) = if mode.is_h2() { (6, 4) } else { (24, 1) };
    // Short timers end the stalls quickly; over TLS they allow for the
    // single-threaded server handshaking a burst of new connections (in a
    // debug build) before it answers.
    let timer = Duration::from_millis(if mode.is_tls() { 250 } else { 50 });
    let server =
        std::sync::Arc::new(mode.server(Config::new().history(0).h2_max_concurrent_streams(4)));
    let client = mode.client(
        &server,
        Client::builder()
            .max_conns_per_host(cap)
            .response_header_timeout(timer)
            .read_idle_timeout(timer)
            .drain_timeout(Duration::from_millis(10)),
    );
    let baseline = open_fds();
    let start = std::time::Instant::now();
    let workers: Vec<_> = (0..STRESS_WORKERS)
        .map(|w| {
            let (client, server) = (client.clone(), server.clone());
            tokio::spawn(async move {
                let mut rng = Rng(0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(w as u64 + 1));
                let mut tally = Tally::default();
                let share = requests / STRESS_WORKERS + usize::from(w < requests % STRESS_WORKERS);
                for _ in 0..share {
                    let case = Case::random(&mut rng, mode);
                    run_case(mode, &client, &server, &case, &mut tally).await;
                }
                tally
            })
        })
        .collect();
    let mut all = Tally::default();
    for w in workers {
        let t = tokio::time::timeout(Duration::from_secs(90), w)
            .await
            .expect("a worker hung")
            .unwrap();
        all.ok += t.ok;
        all.failed += t.failed;
        all.canceled += t.canceled;
        all.plain_failures.extend(t.plain_failures);
    }
    let ran = start.elapsed();
    assert_eq!(all.ok + all.failed + all.canceled, requests as u64);

    // Background drains finish within drain_timeout; then nothing is in flight.
    let s = quiescent(&client).await;
    let settled = start.elapsed();
    assert_eq!(s.open, s.idle, "{s:?}");
    assert_eq!(
        (s.busy, s.dialing, s.waiting, s.h2_streams),
        (0, 0, 0, 0),
        "{s:?}"
    );
    assert_consistent(&s);
    assert!(s.open <= cap, "{s:?}");
    // Well-behaved paths never fail unless canceled: a failure there is a
    // connection left in a bad state by an earlier case. Only a timeout on
    // an overloaded machine is excused.
    let bad: Vec<_> = all
        .plain_failures
        .iter()
        .filter(|e| !e.contains("timed out"))
        .collect();
    assert!(
        bad.is_empty(),
        "{} plain requests failed: {bad:#?}",
        bad.len()
    );

    // The kernel agrees: one ESTABLISHED socket per idle connection.
    let ours = kernel_sockets_to(server.addr());
    assert_eq!(ours.len(), s.idle, "{ours:?} vs {s:?}");
    assert!(ours.iter().all(|(_, st)| *st == ESTABLISHED), "{ours:?}");
    // The server has seen every other connection close.
    let idle = s.idle as u64;
    server
        .wait_for(Duration::from_secs(10), |st| st.open == idle)
        .await
        .unwrap();
    let fds = open_fds();
    if isolated {
        // Each idle connection is two descriptors here: ours and the
        // server's end (it runs in this process).
        assert_eq!(
            fds,
            baseline + 2 * s.idle,
            "fds: baseline {baseline}, {s:?}"
        );
    }

    // The pool is whole afterwards: as many requests at once as it can
    // carry fill it, and all its connections go idle.
    let burst = cap * streams;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(burst));
    let burst: Vec<_> = (0..burst)
        .map(|_| {
            let (client, url, barrier) = (client.clone(), mode.url(&server, "/"), barrier.clone());
            tokio::spawn(async move {
                let res = client.get(url).send().await.unwrap();
                barrier.wait().await;
                res.text().await.unwrap()
            })
        })
        .collect();
    for t in burst {
        assert_eq!(bounded(t).await.unwrap(), "hello");
    }
    let full = client.stats().total;
    assert_eq!(
        (full.open, full.idle, full.busy, full.h2_streams),
        (cap, cap, 0, 0),
        "{full:?}"
    );
    assert_consistent(&full);
    assert_eq!(kernel_sockets_to(server.addr()).len(), cap);
    server
        .wait_for(Duration::from_secs(10), |st| st.open == cap as u64)
        .await
        .unwrap();
    if isolated {
        assert_eq!(open_fds(), baseline + 2 * cap, "fds with {cap} idle");
    }

    drop(client);
    server
        .wait_for(Duration::from_secs(10), |st| st.open == 0)
        .await
        .unwrap();
    assert!(kernel_sockets_to(server.addr()).is_empty());
    if isolated {
        assert_eq!(open_fds(), baseline, "fds after dropping the client");
    }
    println!(
        "stress: {mode:?}: {} requests ({} ok, {} failed, {} canceled; {} plain timeouts) \
         in {ran:?}, settled at {settled:?}; {} dials, {} reuses, {} retries, \
         {} idle after it, fds {baseline} -> {fds}; closed by {:?}",
        requests,
        all.ok,
        all.failed,
        all.canceled,
        all.plain_failures.len(),
        s.created,
        s.reused,
        s.retries,
        s.idle,
        s.closed_by
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| format!("{}={n}", r.as_str()))
            .collect::<Vec<_>>(),
    );
}
