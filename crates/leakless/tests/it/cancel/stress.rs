//! Many requests, random cancellation, random server faults: afterwards
//! nothing is left behind (no socket, descriptor, slot, stream or waiter)
//! and the pool is whole. Each mode runs alone in a fresh process of this
//! binary: open file descriptors are counted per process, and the test
//! harness runs the other tests on threads of this one.

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use leakless::{Client, Event, Observer, RequestInfo};

use crate::support::*;

/// Set in the process that runs the stress test alone.
const ISOLATED: &str = "LEAKLESS_IT_ISOLATED";
const STRESS_WORKERS: usize = 32;

/// Runs `cancel::stress::alone::{mode}` in a fresh process and passes on
/// its summary line.
fn in_a_process_of_its_own(mode: &str) {
    let out = run_alone_in_a_fresh_process(
        &format!("cancel::stress::alone::{mode}"),
        &[(ISOLATED, "1")],
        Duration::from_secs(120),
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

/// The stress itself, run alone in a fresh process by the tests above.
mod alone {
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

/// Every local address the client reported for a connection (HTTP/1.1's
/// `GotConn` carries it; HTTP/2's does not), so that the kernel check
/// looks at each connection the client ever used, by its 4-tuple.
#[derive(Clone, Default)]
struct LocalAddrs(Arc<Mutex<HashSet<SocketAddr>>>);

impl Observer for LocalAddrs {
    fn on_event(&self, _: &RequestInfo, event: &Event<'_>) {
        if let Event::GotConn {
            local_addr: Some(addr),
            ..
        } = event
        {
            self.0.lock().unwrap().insert(*addr);
        }
    }
}

/// The client's local addresses: each connection it reported, and each
/// the server has open (the server keeps no history here).
fn local_addrs(server: &TestServer, reported: &LocalAddrs) -> HashSet<SocketAddr> {
    let mut locals = reported.0.lock().unwrap().clone();
    locals.extend(server.stats().conns.values().map(|c| c.peer));
    locals
}

/// The sockets from `locals` to `server` that a process still holds,
/// each looked up by its 4-tuple.
fn held(locals: HashSet<SocketAddr>, server: &TestServer) -> Vec<KernelSocket> {
    sockets(locals, server.addr())
        .into_iter()
        .filter(KernelSocket::is_held)
        .collect()
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
    let server = Arc::new(mode.server(Config::new().history(0).h2_max_concurrent_streams(4)));
    let reported = LocalAddrs::default();
    let client = mode.client(
        &server,
        Client::builder()
            .observer(reported.clone())
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
    let s = wait_for_stats(&client, "nothing in flight", nothing_in_flight).await;
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
    let ours = held(local_addrs(&server, &reported), &server);
    assert_eq!(ours.len(), s.idle, "{ours:?} vs {s:?}");
    assert!(ours.iter().all(|s| s.state == ESTABLISHED), "{ours:?}");
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

    // The pool is whole afterwards: as many responses at once as it can
    // carry, held unread, fill it, and all its connections go idle. The
    // requests go one at a time until all are held: sent at once, they had
    // the single-threaded server handshake every new connection (TLS, in a
    // debug build) while the stress's short response-header timers ran for
    // the requests already sent, and on a loaded machine those fired.
    let mut responses = Vec::new();
    for _ in 0..cap * streams {
        let res = bounded(client.get(mode.url(&server, "/")).send()).await;
        responses.push(res.unwrap());
    }
    let holding = client.stats().total;
    let h2_streams = if mode.is_h2() { cap * streams } else { 0 };
    assert_eq!(
        (holding.open, holding.busy, holding.h2_streams),
        (cap, cap, h2_streams),
        "{holding:?}"
    );
    for res in responses {
        assert_eq!(bounded(res.text()).await.unwrap(), "hello");
    }
    let full = client.stats().total;
    assert_eq!(
        (full.open, full.idle, full.busy, full.h2_streams),
        (cap, cap, 0, 0),
        "{full:?}"
    );
    assert_consistent(&full);
    assert_eq!(held(local_addrs(&server, &reported), &server).len(), cap);
    server
        .wait_for(Duration::from_secs(10), |st| st.open == cap as u64)
        .await
        .unwrap();
    if isolated {
        assert_eq!(open_fds(), baseline + 2 * cap, "fds with {cap} idle");
    }

    // Looked at again once the client is gone (the server forgets closed
    // connections).
    let locals = local_addrs(&server, &reported);
    drop(client);
    // The client's last descriptors go with its tasks (the reaper, an
    // HTTP/2 connection's driver), which may end after the server has seen
    // the close.
    let alive = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    wait_for("the client's tasks to end", alive, |&n| n == 0).await;
    server
        .wait_for(Duration::from_secs(10), |st| st.open == 0)
        .await
        .unwrap();
    let left = held(locals, &server);
    assert!(left.is_empty(), "{left:?}");
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
