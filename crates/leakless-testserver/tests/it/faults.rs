//! Each fault, per connection and per request, and what the accounting says
//! about it.

use std::time::Duration;

use leakless_testserver::{CloseReason, Config, ConnFault, ConnState, Fault, Reply, TestServer};

use crate::client::{Client, hello};

const QUIET: Duration = Duration::from_millis(100);

#[tokio::test]
async fn accept_and_stall_holds_until_the_client_closes() {
    let server = TestServer::start(Config::new().conn_fault(ConnFault::AcceptAndStall));
    let mut c = Client::connect(&server).await;
    c.send("GET / HTTP/1.1\r\n\r\n").await;
    c.expect_silence(QUIET).await;
    let s = server.stats();
    assert_eq!((s.accepted, s.requests), (1, 0));
    assert_eq!(s.conns[&1].state, ConnState::Stalled);
    drop(c);
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_by_peer, 1);
}

#[tokio::test]
async fn accept_and_stall_unread_sees_a_silent_client_go() {
    let server = TestServer::start(Config::new().conn_fault(ConnFault::AcceptAndStallUnread));
    let c = Client::connect(&server).await;
    server
        .wait_until(|s| {
            s.conns
                .get(&1)
                .is_some_and(|c| c.state == ConnState::Stalled)
        })
        .await;
    drop(c);
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_by_peer, 1);
}

#[tokio::test]
async fn accept_and_close() {
    let server = TestServer::start(Config::new().conn_fault(ConnFault::AcceptAndClose));
    let mut c = Client::connect(&server).await;
    c.expect_eof().await;
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_for(CloseReason::Fault), 1);
}

#[tokio::test]
async fn stall_leaves_other_connections_working() {
    let server = TestServer::start(Config::new());
    let mut stalled = Client::connect(&server).await;
    stalled.send("GET /?fault=stall HTTP/1.1\r\n\r\n").await;
    stalled.expect_silence(QUIET).await;
    let mut fast = Client::connect(&server).await;
    assert_eq!(fast.get("/").await.body, b"hello");
    assert_eq!(server.stats().conns[&1].state, ConnState::Stalled);
    assert_eq!(server.close_all_connections(), 2);
    stalled.expect_eof().await;
    fast.expect_eof().await;
    let s = server.wait_closed(2).await;
    assert_eq!(s.closed_for(CloseReason::CloseAll), 2);
}

#[tokio::test]
async fn stall_after_headers_sends_the_head_only() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    c.send("GET /?fault=stall_body&size=10 HTTP/1.1\r\n\r\n")
        .await;
    let r = c.head().await;
    assert_eq!(r.header("content-length"), Some("10"));
    c.expect_silence(QUIET).await;
    drop(c);
    assert_eq!(server.wait_closed(1).await.closed_by_peer, 1);
}

#[tokio::test]
async fn stall_after_bytes_sends_part_of_the_body() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    c.send("GET /?fault=stall_body&after=3&size=10 HTTP/1.1\r\n\r\n")
        .await;
    c.head().await;
    assert_eq!(c.take(3).await, b"hel");
    c.expect_silence(QUIET).await;
}

#[tokio::test]
async fn endless_body_runs_until_the_client_leaves() {
    let server = TestServer::start(Config::new().fault(Fault::EndlessBody));
    let mut c = Client::connect(&server).await;
    c.send("GET / HTTP/1.1\r\n\r\n").await;
    let r = c.head().await;
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    // Read a megabyte of chunks: the pattern continues across them.
    let mut body = Vec::new();
    while body.len() < 1 << 20 {
        let size = usize::from_str_radix(&c.line().await, 16).unwrap();
        assert!(size > 0, "an endless body ended");
        body.extend(c.take(size).await);
        assert_eq!(c.line().await, "");
    }
    assert_eq!(body, hello(body.len()));
    drop(c);
    // The failed write is counted before the close.
    let s = server.wait_closed(1).await;
    assert_eq!((s.write_failures, s.closed_by_peer), (1, 1));
    assert_eq!(s.conns[&1].write_failures, 1);
}

#[tokio::test]
async fn close_after_headers() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    c.send("GET /?fault=close_after_headers HTTP/1.1\r\n\r\n")
        .await;
    assert_eq!(c.head().await.header("content-length"), Some("5"));
    c.expect_eof().await;
    assert_eq!(
        server.wait_closed(1).await.closed_for(CloseReason::Fault),
        1
    );
}

#[tokio::test]
async fn truncate_sends_a_short_body() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    c.send("GET /?fault=truncate&after=3&size=10 HTTP/1.1\r\n\r\n")
        .await;
    assert_eq!(c.head().await.header("content-length"), Some("10"));
    assert_eq!(c.read_to_eof().await, b"hel");
}

#[tokio::test]
async fn truncate_chunked_leaves_the_last_chunk_open() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    c.send("GET /?fault=truncate&after=4&size=10&chunked=1&chunk=3 HTTP/1.1\r\n\r\n")
        .await;
    c.head().await;
    assert_eq!(c.read_to_eof().await, b"3\r\nhel\r\n1\r\nl\r\n");
}

#[tokio::test]
async fn close_without_response() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    c.send("GET /?fault=close HTTP/1.1\r\n\r\n").await;
    c.expect_eof().await;
    let s = server.wait_closed(1).await;
    assert_eq!((s.requests, s.closed_for(CloseReason::Fault)), (1, 1));
}

#[tokio::test]
async fn reset_without_response() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    c.send("GET /?fault=reset HTTP/1.1\r\n\r\n").await;
    let err = c.read_end().await.expect_err("expected a reset");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
}

#[tokio::test]
async fn raw_bytes_then_keep_going() {
    let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec();
    let config = Config::new().route("/raw", Reply::new().fault(Fault::Raw(raw)));
    let server = TestServer::start(config);
    let mut c = Client::connect(&server).await;
    let r = c.get("/raw").await;
    assert_eq!(r.head, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
    assert_eq!(r.body, b"ok");
    assert_eq!(c.get("/").await.body, b"hello");
}

#[tokio::test]
async fn raw_from_the_query_with_close() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    c.send("GET /?raw=HTTP%2F1.1+abc%0D%0A%0D%0A&close=1 HTTP/1.1\r\n\r\n")
        .await;
    assert_eq!(c.read_to_eof().await, b"HTTP/1.1 abc\r\n\r\n");
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_for(CloseReason::ReplyClose), 1);
}

#[test]
fn a_server_panic_fails_the_test_at_drop() {
    use std::io::{Read, Write};
    let server = TestServer::start(Config::new());
    let mut tcp = std::net::TcpStream::connect(server.addr()).unwrap();
    tcp.write_all(b"GET /?fault=panic HTTP/1.1\r\n\r\n")
        .unwrap();
    let mut rest = Vec::new();
    tcp.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let s = server
        .wait_blocking(Duration::from_secs(5), |s| s.closed == 1)
        .unwrap();
    assert_eq!(s.closed_for(CloseReason::Panicked), 1);
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(server)));
    let msg = dropped.expect_err("drop should panic");
    let msg = msg.downcast_ref::<String>().expect("a formatted message");
    assert!(msg.contains("fault=panic requested"), "{msg}");
}
