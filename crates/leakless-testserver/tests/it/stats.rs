//! Accounting: exact counts under concurrency, history limits, and waiting
//! without sleeps, including from a test whose tokio clock is paused.

use std::time::{Duration, Instant};

use leakless_testserver::{CloseReason, Config, TestServer};

use crate::client::Client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_are_exact_under_concurrency() {
    let server = std::sync::Arc::new(TestServer::start(Config::new()));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(&server).await;
            for _ in 0..4 {
                assert_eq!(c.get("/").await.status, 200);
            }
            // Half ask the server to close, half close (drop) themselves.
            if i % 2 == 0 {
                c.get("/?close=1").await;
                c.expect_eof().await;
            } else {
                c.get("/").await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let s = server.wait_closed(20).await;
    assert_eq!((s.accepted, s.requests, s.open, s.idle), (20, 100, 0, 0));
    assert_eq!((s.closed_by_server, s.closed_by_peer), (10, 10));
    assert_eq!(s.closed_for(CloseReason::ReplyClose), 10);
    assert!(s.requests_per_conn().iter().all(|&n| n == 5));
    let reqs = server.requests();
    assert_eq!(reqs.len(), 100);
    for id in 1..=20 {
        let seqs: Vec<u64> = reqs
            .iter()
            .filter(|r| r.conn_id == id)
            .map(|r| r.conn_seq)
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
    }
}

#[tokio::test]
async fn peer_ports_identify_client_sockets() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    c.get("/").await;
    let local = c.tcp.local_addr().unwrap();
    assert_eq!(server.stats().conns[&1].peer, local);
}

#[tokio::test]
async fn history_zero_records_nothing_but_counts_everything() {
    let server = TestServer::start(Config::new().history(0));
    for _ in 0..3 {
        let mut c = Client::connect(&server).await;
        c.get("/").await;
    }
    let s = server.wait_closed(3).await;
    assert_eq!((s.accepted, s.requests, s.closed_by_peer), (3, 3, 3));
    assert!(s.conns.is_empty());
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn history_keeps_the_newest() {
    let server = TestServer::start(Config::new().history(2));
    let mut c = Client::connect(&server).await;
    for n in 0..5 {
        c.get(&format!("/?n={n}")).await;
    }
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(paths, ["/?n=3", "/?n=4"]);
}

#[tokio::test(start_paused = true)]
async fn waiting_works_when_the_test_clock_is_paused() {
    let server = TestServer::start(Config::new().latency(Duration::from_millis(50)));
    let mut c = Client::connect(&server).await;
    c.send("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    // A tokio::time::timeout here would auto-advance and fire at once; the
    // server's clock is real.
    let s = server
        .wait_for(Duration::from_secs(5), |s| s.closed == 1)
        .await
        .unwrap();
    assert_eq!(s.closed_for(CloseReason::RequestClose), 1);
}

#[tokio::test(start_paused = true)]
async fn wait_for_times_out_in_real_time() {
    let server = TestServer::start(Config::new());
    let t = Instant::now();
    let err = server
        .wait_for(Duration::from_millis(100), |s| s.accepted == 1)
        .await
        .unwrap_err();
    assert!(t.elapsed() >= Duration::from_millis(100));
    assert_eq!(err.stats.accepted, 0);
    assert!(err.to_string().contains("accepted 0"), "{err}");
}

#[test]
fn wait_blocking_from_a_sync_test() {
    use std::io::Write;
    let server = TestServer::start(Config::new());
    let mut tcp = std::net::TcpStream::connect(server.addr()).unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let s = server
        .wait_blocking(Duration::from_secs(5), |s| s.requests == 1)
        .unwrap();
    assert_eq!(s.accepted, 1);
    let err = server
        .wait_blocking(Duration::from_millis(20), |s| s.requests == 2)
        .unwrap_err();
    assert_eq!(err.stats.requests, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_concurrent_dials_all_get_answers() {
    // Hundreds of dials at once: the backlog must absorb the burst, and closing
    // after every response must not lose one.
    let server = std::sync::Arc::new(TestServer::start(Config::new().max_requests_per_conn(1)));
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            let server = server.clone();
            tokio::spawn(async move {
                let mut c = Client::connect(&server).await;
                assert_eq!(c.get("/").await.body, b"hello");
                c.expect_eof().await;
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let s = server.wait_closed(500).await;
    assert_eq!((s.accepted, s.requests, s.open), (500, 500, 0));
    assert_eq!(s.closed_for(CloseReason::MaxRequests), 500);
}
