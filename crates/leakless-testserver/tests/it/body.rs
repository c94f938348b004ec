//! Reply shapes: framing, sizes, HEAD, statuses, headers, latency, routes,
//! request bodies in both framings, and bad input.

use std::time::{Duration, Instant};

use leakless_testserver::{CloseReason, Config, Reply, TestServer, Version};

use crate::client::{Client, hello};

#[tokio::test]
async fn chunked_reply_in_small_chunks() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    c.send("GET /?size=10&chunked=1&chunk=4 HTTP/1.1\r\n\r\n")
        .await;
    let r = c.head().await;
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.header("content-length"), None);
    let mut raw = Vec::new();
    while !raw.ends_with(b"0\r\n\r\n") {
        raw.extend(c.take(1).await);
    }
    assert_eq!(raw, b"4\r\nhell\r\n4\r\nohel\r\n2\r\nlo\r\n0\r\n\r\n");
    // And the connection is still good.
    assert_eq!(c.get("/").await.body, b"hello");
}

#[tokio::test]
async fn large_bodies_keep_the_pattern() {
    let server = TestServer::start(Config::new().body_size(300_001));
    let mut c = Client::connect(&server).await;
    let r = c.get("/").await;
    assert_eq!(r.body, hello(300_001));
    let r = c.get("/?chunked=1&chunk=70000").await;
    assert_eq!(r.body, hello(300_001));
}

#[tokio::test]
async fn body_until_close() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    c.send("GET /?framing=close&size=7 HTTP/1.1\r\n\r\n").await;
    let r = c.response(false).await;
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(r.body, b"hellohe");
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_for(CloseReason::ReplyClose), 1);
}

#[tokio::test]
async fn head_gets_headers_only() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    c.send("HEAD /?size=100 HTTP/1.1\r\n\r\n").await;
    assert_eq!(c.response(true).await.header("content-length"), Some("100"));
    c.send("HEAD /?chunked=1 HTTP/1.1\r\n\r\n").await;
    let r = c.response(true).await;
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    // Had a body been sent, this would read it instead of the next reply.
    assert_eq!(c.get("/?size=2").await.body, b"he");
}

#[tokio::test]
async fn no_content_has_no_body_or_length() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    let r = c.get("/?status=204&size=100").await;
    assert_eq!(r.status, 204);
    assert!(r.head.starts_with("HTTP/1.1 204 No Content\r\n"));
    assert_eq!(r.header("content-length"), None);
    assert_eq!(c.get("/?status=503").await.status, 503);
}

#[tokio::test]
async fn headers_latency_and_routes() {
    let config = Config::new()
        .route("/down", Reply::new().status(503).header("Retry-After", "1"))
        .route("/slow", Reply::new().latency(Duration::from_millis(120)));
    let server = TestServer::start(config);
    let mut c = Client::connect(&server).await;
    let r = c.get("/down?header=X-A:%20b").await;
    assert_eq!(r.status, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("x-a"), Some("b"));
    let t = Instant::now();
    c.get("/slow").await;
    assert!(t.elapsed() >= Duration::from_millis(120));
    let t = Instant::now();
    c.get("/?latency_ms=60").await;
    assert!(t.elapsed() >= Duration::from_millis(60));
}

#[tokio::test]
async fn request_bodies_are_read_and_recorded() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    c.send("POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
        .await;
    c.response(false).await;
    c.send("POST /b?echo=1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;x=y\r\nde\r\n1\r\nf\r\n0\r\nT: 1\r\n\r\n")
        .await;
    assert_eq!(c.response(false).await.body, b"def");
    c.send("PUT /c HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        .await;
    let cont = c.head().await;
    assert_eq!(cont.status, 100);
    c.send("gh").await;
    assert_eq!(c.response(false).await.status, 200);
    let reqs = server.requests();
    let got: Vec<_> = reqs
        .iter()
        .map(|r| {
            (
                r.method.as_str(),
                r.path.as_str(),
                r.body.as_slice(),
                r.conn_seq,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("POST", "/a", &b"abc"[..], 1),
            ("POST", "/b?echo=1", &b"def"[..], 2),
            ("PUT", "/c", &b"gh"[..], 3),
        ]
    );
    assert_eq!(reqs[0].version, Version::Http11);
    assert_eq!(reqs[0].header("CONTENT-length"), Some("3"));
}

#[tokio::test]
async fn a_bad_query_value_is_a_400_that_keeps_the_connection() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    let r = c.get("/?size=lots").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body, b"size=lots: not a number\n");
    assert_eq!(c.get("/").await.status, 200);
}

#[tokio::test]
async fn a_malformed_request_is_a_400_and_a_close() {
    let server = TestServer::start(Config::new());
    let mut c = Client::connect(&server).await;
    c.send("GET / HTTP/1.1\r\nBad Header\r\n\r\n").await;
    let r = c.response(false).await;
    assert_eq!((r.status, r.header("connection")), (400, Some("close")));
    c.expect_eof().await;
    let s = server.wait_closed(1).await;
    assert_eq!((s.bad_requests, s.requests), (1, 0));
    assert_eq!(s.closed_for(CloseReason::BadRequest), 1);
}

#[tokio::test]
async fn conn_headers_can_be_turned_off() {
    let server = TestServer::start(Config::new().conn_headers(false));
    let mut c = Client::connect(&server).await;
    let r = c.get("/").await;
    assert_eq!(r.head, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
}
