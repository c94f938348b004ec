//! Scenarios 35–36: a malformed or oversized response gives a clear error,
//! and its connection is closed, never reused.
//!
//! Each case runs on a reused connection (a good request first), so that
//! "never reused" is tested where it matters: had the broken connection
//! gone back to the pool, the request after it would have taken it.

use leakless::{Client, CloseReason, Error, ErrorKind, Phase};
use leakless_testserver::{CloseReason as ServerClose, Fault, Reply};

use crate::support::*;

/// A route answering with exactly these bytes (and keeping the connection,
/// so any close the server sees is the client's).
fn raw(path: &str, bytes: impl Into<Vec<u8>>) -> (String, Reply) {
    (
        path.to_owned(),
        Reply::new().fault(Fault::Raw(bytes.into())),
    )
}

fn bad_server() -> TestServer {
    let many_headers: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    let big_header = format!("X-Big: {}\r\n", "a".repeat(70 * 1024));
    let routes = [
        raw(
            "/status-line",
            "HTTP/1.1 abc\r\nContent-Length: 2\r\n\r\nok",
        ),
        raw(
            "/header",
            "HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 2\r\n\r\nok",
        ),
        raw(
            "/big-head",
            format!("HTTP/1.1 200 OK\r\n{big_header}Content-Length: 2\r\n\r\nok"),
        ),
        raw(
            "/many-headers",
            format!("HTTP/1.1 200 OK\r\n{many_headers}Content-Length: 2\r\n\r\nok"),
        ),
        raw(
            "/chunk-size",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        ),
        raw(
            "/cl-and-te",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        raw(
            "/bad-length",
            "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\nhello",
        ),
        raw(
            "/conflicting-lengths",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ),
    ];
    let mut config = Config::new();
    config.routes.extend(routes);
    TestServer::start(config)
}

/// Sends `path` on a reused connection and reads the body; returns the
/// error and checks the connection was closed by the client for it and
/// that the next request dials anew.
async fn fails_and_closes(path: &str) -> Error {
    let server = bad_server();
    let client = Client::new();
    let good = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(good.text().await.unwrap(), "hello");

    let result = async { client.get(server.url(path)).send().await?.bytes().await };
    let err = bounded(result)
        .await
        .expect_err("a malformed response must fail");
    assert_eq!(
        err.host(),
        Some(server.addr().to_string().as_str()),
        "{err}"
    );

    let s = client.stats().total;
    assert_eq!((s.open, s.busy, s.idle), (0, 0, 0), "{path}: {s:?}");
    assert_eq!(s.closed_by.get(CloseReason::Error), 1, "{path}: {s:?}");
    assert_eq!(s.retries, 0, "{path}: a response arrived, nothing to retry");
    assert_consistent(&s);
    let seen = server.wait_closed(1).await;
    assert_eq!(seen.closed_for(ServerClose::Peer), 1, "{path}: {seen:?}");
    assert!(kernel_sockets_to(server.addr()).is_empty());

    let next = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(next.text().await.unwrap(), "hello");
    assert_eq!(
        server.stats().accepted,
        2,
        "{path}: the next request dials anew"
    );
    let s = client.stats().total;
    assert_eq!((s.created, s.reused), (2, 1), "{path}: {s:?}");
    err
}

fn assert_protocol(err: &Error, phase: Phase, says: &str) {
    assert!(err.is_protocol(), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert_eq!(err.phase(), Some(phase), "{err}");
    assert!(!err.is_maybe_sent(), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(says), "{says:?} missing from: {text}");
    assert!(
        text.contains("malformed response; the connection was closed"),
        "{text}"
    );
}

#[tokio::test]
async fn malformed_status_line_is_a_protocol_error_and_closes() {
    let err = fails_and_closes("/status-line").await;
    assert_protocol(&err, Phase::ResponseHeaders, "malformed response head");
    assert!(err.to_string().contains("status"), "{err}");
}

#[tokio::test]
async fn invalid_header_is_a_protocol_error_and_closes() {
    let err = fails_and_closes("/header").await;
    assert_protocol(&err, Phase::ResponseHeaders, "malformed response head");
    assert!(err.to_string().contains("header"), "{err}");
}

#[tokio::test]
async fn header_block_over_64_kib_is_refused_and_closes() {
    let err = fails_and_closes("/big-head").await;
    assert_protocol(&err, Phase::ResponseHeaders, "head longer than 64 KiB");
}

#[tokio::test]
async fn more_than_100_headers_is_refused_and_closes() {
    let err = fails_and_closes("/many-headers").await;
    assert_protocol(&err, Phase::ResponseHeaders, "more than 100 header fields");
}

#[tokio::test]
async fn invalid_chunk_size_is_a_protocol_error_and_closes() {
    let err = fails_and_closes("/chunk-size").await;
    assert_protocol(&err, Phase::BodyRead, "bad chunked body");
}

#[tokio::test]
async fn content_length_with_transfer_encoding_is_refused_and_closes() {
    let err = fails_and_closes("/cl-and-te").await;
    assert_protocol(
        &err,
        Phase::ResponseHeaders,
        "both Content-Length and Transfer-Encoding",
    );
}

#[tokio::test]
async fn invalid_content_length_is_refused_and_closes() {
    let err = fails_and_closes("/bad-length").await;
    assert_protocol(&err, Phase::ResponseHeaders, "invalid Content-Length");
    let err = fails_and_closes("/conflicting-lengths").await;
    assert_protocol(&err, Phase::ResponseHeaders, "conflicting Content-Length");
}

#[tokio::test]
async fn body_shorter_than_content_length_fails_and_is_not_reused() {
    // The server closes after 3 of 10 bytes: the body ends early.
    let server = TestServer::start(Config::new());
    let client = Client::new();
    let good = client.get(server.url("/")).send().await.unwrap();
    good.bytes().await.unwrap();
    let mut res = client
        .get(server.url("/?fault=truncate&after=3&size=10"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.content_length(), Some(10));
    let mut got = Vec::new();
    let err = bounded(async {
        loop {
            match res.chunk().await {
                Ok(Some(b)) => got.extend_from_slice(&b),
                Ok(None) => panic!("a truncated body ended cleanly: {got:?}"),
                Err(e) => return e,
            }
        }
    })
    .await;
    assert_eq!(got, b"hel");
    assert_protocol(&err, Phase::BodyRead, "7 bytes of the body");
    assert!(err.to_string().contains("Content-Length"), "{err}");
    let s = client.stats().total;
    assert_eq!(
        (s.open, s.closed_by.get(CloseReason::Error)),
        (0, 1),
        "{s:?}"
    );
    assert_consistent(&s);
    server.wait_closed(1).await;
    client
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(server.stats().accepted, 2);
}

async fn body_over_max_body_size(query: &str) {
    let server = TestServer::start(Config::new());
    let client = Client::builder().max_body_size(1000).build().unwrap();
    // Exactly at the limit is fine.
    let ok = client.get(server.url("/?size=1000")).send().await.unwrap();
    assert_eq!(ok.bytes().await.unwrap().len(), 1000);

    let res = client.get(server.url(query)).send().await.unwrap();
    let err = bounded(res.bytes()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BodyTooLarge, "{err:?}");
    assert_eq!(err.phase(), Some(Phase::BodyRead));
    let text = err.to_string();
    assert!(
        text.contains("1000-byte limit") && text.contains("max_body_size"),
        "{text}"
    );
    let s = client.stats().total;
    assert_eq!((s.open, s.busy), (0, 0), "{s:?}");
    assert_eq!(s.closed_by.get(CloseReason::Error), 1, "{s:?}");
    assert_consistent(&s);
    server.wait_closed(1).await;
    assert!(kernel_sockets_to(server.addr()).is_empty());
    // The next request dials anew and works.
    let res = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "hello");
    assert_eq!(server.stats().accepted, 2);
}

#[tokio::test]
async fn body_over_max_body_size_by_content_length_fails_and_closes() {
    body_over_max_body_size("/?size=5000").await;
}

#[tokio::test]
async fn chunked_body_over_max_body_size_fails_and_closes() {
    body_over_max_body_size("/?size=5000&chunked=1&chunk=300").await;
}

#[tokio::test]
async fn close_delimited_body_over_max_body_size_fails_and_closes() {
    body_over_max_body_size("/?size=5000&framing=close").await;
}
