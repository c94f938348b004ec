//! Keep-alive: reuse, Connection: close either way, HTTP/1.0, max requests
//! per connection, idle timeouts, closing idle connections on demand.

use std::time::{Duration, Instant};

use leakless_testserver::{CloseReason, Config, ConnState, TestServer};

use crate::client::Client;

#[tokio::test]
async fn requests_reuse_one_connection() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    for seq in 1..=3 {
        let r = c.get("/").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hello");
        assert_eq!(r.header("connection"), None);
        assert_eq!(r.header("x-conn-id"), Some("1"));
        assert_eq!(r.header("x-conn-seq"), Some(seq.to_string().as_str()));
    }
    let s = server.stats();
    assert_eq!((s.accepted, s.open, s.requests, s.closed), (1, 1, 3, 0));
    assert_eq!(s.requests_per_conn(), vec![3]);
    drop(c);
    let s = server.wait_closed(1).await;
    assert_eq!((s.closed_by_peer, s.closed_by_server, s.open), (1, 0, 0));
    assert_eq!(s.conns[&1].state, ConnState::Closed(CloseReason::Peer));
}

#[tokio::test]
async fn request_connection_close_is_honoured() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    c.send("GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .await;
    let r = c.response(false).await;
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_eof().await;
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_for(CloseReason::RequestClose), 1);
    assert_eq!(s.closed_by_server, 1);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    assert!(reqs[0].has_token("connection", "close"));
}

#[tokio::test]
async fn http10_closes_unless_keep_alive_asked() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    c.send("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await;
    let r = c.response(false).await;
    assert_eq!(r.header("connection"), Some("keep-alive"));
    // Chunked is not HTTP/1.0: it falls back to Content-Length.
    c.send("GET /?chunked=1 HTTP/1.0\r\n\r\n").await;
    let r = c.response(false).await;
    assert_eq!(r.header("content-length"), Some("5"));
    assert_eq!(r.header("connection"), Some("close"));
    c.expect_eof().await;
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_for(CloseReason::RequestClose), 1);
}

#[tokio::test]
async fn max_requests_per_conn_closes_after_the_nth() {
    let config = Config::new()
        .max_requests_per_conn(2)
        .keep_alive_timeout(Duration::from_secs(3))
        .advertise_keep_alive(true);
    let server = TestServer::start(config);
    let mut c = Client::connect(&server).await;
    let r = c.get("/").await;
    assert_eq!(r.header("connection"), None);
    assert_eq!(r.header("keep-alive"), Some("timeout=3, max=1"));
    let r = c.get("/").await;
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.header("keep-alive"), None);
    c.expect_eof().await;
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_for(CloseReason::MaxRequests), 1);
    assert_eq!(s.requests, 2);
}

#[tokio::test]
async fn max_requests_one_closes_every_connection() {
    let server = TestServer::start(Config::new().max_requests_per_conn(1));
    for _ in 0..5 {
        let mut c = Client::connect(&server).await;
        let r = c.get("/").await;
        assert_eq!(r.header("connection"), Some("close"));
        c.expect_eof().await;
    }
    let s = server.wait_closed(5).await;
    assert_eq!((s.accepted, s.requests, s.closed_by_server), (5, 5, 5));
}

#[tokio::test]
async fn keep_alive_timeout_closes_idle_connections() {
    let idle = Duration::from_millis(150);
    let server = TestServer::start(Config::new().keep_alive_timeout(idle));
    let mut c = Client::connect(&server).await;
    // A connection that has not sent a request yet is not idle: only the
    // time between requests counts.
    c.expect_silence(Duration::from_millis(250)).await;
    assert_eq!(server.stats().conns[&1].state, ConnState::New);
    c.get("/").await;
    let served = Instant::now();
    c.expect_eof().await;
    let s = server.wait_closed(1).await;
    // The server's timer starts when it has written the reply, a moment
    // before the client has read it: allow that moment.
    assert!(
        served.elapsed() >= idle - Duration::from_millis(20),
        "closed after {:?}",
        served.elapsed()
    );
    assert_eq!(s.closed_for(CloseReason::KeepAliveTimeout), 1);
    assert_eq!(s.closed_by_server, 1);
}

#[tokio::test]
async fn keep_alive_timeout_restarts_per_request() {
    // Gaps of 100 ms under a 400 ms timeout: 300 ms of slack for a loaded
    // 2-core machine, and 4 gaps still outlast one timeout.
    let server = TestServer::start(Config::new().keep_alive_timeout(Duration::from_millis(400)));
    let mut c = Client::connect(&server).await;
    for _ in 0..5 {
        c.get("/").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(server.stats().closed, 0);
}

#[tokio::test]
async fn close_idle_connections_closes_only_idle_ones() {
    let server = TestServer::start(Config::new());
    let mut a = Client::connect(&server).await;
    let mut b = Client::connect(&server).await;
    let mut fresh = Client::connect(&server).await;
    let mut busy = Client::connect(&server).await;
    a.get("/").await;
    b.get("/").await;
    busy.send("GET /?latency_ms=300 HTTP/1.1\r\n\r\n").await;
    server.wait_until(|s| s.idle == 2 && s.requests == 3).await;
    assert_eq!(server.close_idle_connections(), 2);
    a.expect_eof().await;
    b.expect_eof().await;
    let s = server.wait_closed(2).await;
    assert_eq!(s.closed_for(CloseReason::CloseIdle), 2);
    // The busy connection finishes its reply and stays; so does the new one.
    assert_eq!(busy.response(false).await.status, 200);
    assert_eq!(fresh.get("/").await.status, 200);
    assert_eq!(server.stats().open, 2);
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    c.send("GET /?size=1 HTTP/1.1\r\n\r\nGET /?size=2 HTTP/1.1\r\n\r\n")
        .await;
    assert_eq!(c.response(false).await.body, b"h");
    assert_eq!(c.response(false).await.body, b"he");
    assert_eq!(server.stats().requests_per_conn(), vec![2]);
}

#[tokio::test]
async fn set_config_applies_to_the_next_request() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    assert_eq!(c.get("/").await.header("connection"), None);
    server.update_config(|cfg| cfg.max_requests_per_conn = Some(1));
    assert_eq!(c.get("/").await.header("connection"), Some("close"));
    c.expect_eof().await;
    assert_eq!(server.config().max_requests_per_conn, Some(1));
}
