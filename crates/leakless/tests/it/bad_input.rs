//! A malformed or oversized response gives a clear error, and its
//! connection is closed, never reused.
//!
//! Each case runs on a reused connection (a good request first), so that
//! "never reused" is tested where it matters: had the broken connection
//! gone back to the pool, the request after it would have taken it.
//!
//! The malformed heads and framings are HTTP/1.1 bytes: they run over
//! plain TCP and over TLS, not over HTTP/2 (whose framing the h2 crate
//! checks, and where the test server answers a raw reply with 501). The
//! truncated body and the size limit run over HTTP/2 too, where they
//! end the stream and the connection carries on.

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

fn bad_server(mode: Mode) -> TestServer {
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
    mode.server(config)
}

/// Sends `path` on a reused connection and reads the body; returns the
/// error and checks the connection was closed by the client for it and
/// that the next request dials anew.
async fn fails_and_closes(mode: Mode, path: &str) -> Error {
    let server = bad_server(mode);
    let client = mode.client(&server, Client::builder());
    let good = client.get(mode.url(&server, "/")).send().await.unwrap();
    assert_eq!(good.text().await.unwrap(), "hello");

    let result = async {
        client
            .get(mode.url(&server, path))
            .send()
            .await?
            .bytes()
            .await
    };
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
    let held = held_client_sockets(&server);
    assert!(held.is_empty(), "{held:?}");

    let next = client.get(mode.url(&server, "/")).send().await.unwrap();
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

async fn malformed_status_line_is_a_protocol_error_and_closes(mode: Mode) {
    let err = fails_and_closes(mode, "/status-line").await;
    assert_protocol(&err, Phase::ResponseHeaders, "malformed response head");
    assert!(err.to_string().contains("status"), "{err}");
}
per_mode!(malformed_status_line_is_a_protocol_error_and_closes: h1, h1_tls);

async fn invalid_header_is_a_protocol_error_and_closes(mode: Mode) {
    let err = fails_and_closes(mode, "/header").await;
    assert_protocol(&err, Phase::ResponseHeaders, "malformed response head");
    assert!(err.to_string().contains("header"), "{err}");
}
per_mode!(invalid_header_is_a_protocol_error_and_closes: h1, h1_tls);

async fn header_block_over_64_kib_is_refused_and_closes(mode: Mode) {
    let err = fails_and_closes(mode, "/big-head").await;
    assert_protocol(&err, Phase::ResponseHeaders, "head longer than 64 KiB");
}
per_mode!(header_block_over_64_kib_is_refused_and_closes: h1, h1_tls);

async fn more_than_100_headers_is_refused_and_closes(mode: Mode) {
    let err = fails_and_closes(mode, "/many-headers").await;
    assert_protocol(&err, Phase::ResponseHeaders, "more than 100 header fields");
}
per_mode!(more_than_100_headers_is_refused_and_closes: h1, h1_tls);

async fn invalid_chunk_size_is_a_protocol_error_and_closes(mode: Mode) {
    let err = fails_and_closes(mode, "/chunk-size").await;
    assert_protocol(&err, Phase::BodyRead, "bad chunked body");
}
per_mode!(invalid_chunk_size_is_a_protocol_error_and_closes: h1, h1_tls);

async fn content_length_with_transfer_encoding_is_refused_and_closes(mode: Mode) {
    let err = fails_and_closes(mode, "/cl-and-te").await;
    assert_protocol(
        &err,
        Phase::ResponseHeaders,
        "both Content-Length and Transfer-Encoding",
    );
}
per_mode!(content_length_with_transfer_encoding_is_refused_and_closes: h1, h1_tls);

async fn invalid_content_length_is_refused_and_closes(mode: Mode) {
    let err = fails_and_closes(mode, "/bad-length").await;
    assert_protocol(&err, Phase::ResponseHeaders, "invalid Content-Length");
    let err = fails_and_closes(mode, "/conflicting-lengths").await;
    assert_protocol(&err, Phase::ResponseHeaders, "conflicting Content-Length");
}
per_mode!(invalid_content_length_is_refused_and_closes: h1, h1_tls);

/// A body the server cuts short after 3 of its 10 bytes (HTTP/1.1: it
/// closes the connection; HTTP/2: it resets the stream), read on a reused
/// connection; returns the read's error.
async fn read_a_truncated_body(mode: Mode, client: &Client, server: &TestServer) -> Error {
    get_body(client, mode.url(server, "/")).await;
    let mut res = client
        .get(mode.url(server, "/?fault=truncate&after=3&size=10"))
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
    err
}

async fn body_shorter_than_content_length_fails_and_is_not_reused(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let err = read_a_truncated_body(mode, &client, &server).await;
    if mode.is_tls() && err.kind() == ErrorKind::Io {
        // The server's abrupt close comes without a close_notify, which
        // rustls reports first: an I/O error reading the body. (Plain TCP
        // gets the decoder's own account of the missing bytes below.)
        assert_eq!(err.phase(), Some(Phase::BodyRead), "{err}");
        assert!(format!("{err:?}").contains("close_notify"), "{err:?}");
    } else {
        assert_protocol(&err, Phase::BodyRead, "7 bytes of the body");
        assert!(err.to_string().contains("Content-Length"), "{err}");
    }
    let s = client.stats().total;
    assert_eq!(
        (s.open, s.closed_by.get(CloseReason::Error)),
        (0, 1),
        "{s:?}"
    );
    assert_consistent(&s);
    server.wait_closed(1).await;
    get_body(&client, mode.url(&server, "/")).await;
    assert_eq!(server.stats().accepted, 2);
}
per_mode!(body_shorter_than_content_length_fails_and_is_not_reused: h1, h1_tls);

/// On HTTP/2 the server resets the stream: the body fails, the stream is
/// gone and the connection carries on.
async fn body_shorter_than_content_length_fails_and_the_connection_carries_on(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let err = read_a_truncated_body(mode, &client, &server).await;
    assert_eq!(err.kind(), ErrorKind::Io, "{err:?}");
    assert_eq!(err.phase(), Some(Phase::BodyRead), "{err}");
    assert_eq!(
        err.host(),
        Some(server.addr().to_string().as_str()),
        "{err}"
    );
    assert_the_h2_connection_carries_on(mode, &client, &server).await;
}
per_mode!(body_shorter_than_content_length_fails_and_the_connection_carries_on: h2, h2c);

/// A body over `max_body_size` (1000 bytes), read to its error; HTTP/1.1
/// closes the connection, HTTP/2 gives up the stream (reset, unless the
/// server had already sent it all) and the connection carries on.
async fn body_over_max_body_size(mode: Mode, query: &str) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder().max_body_size(1000));
    // Exactly at the limit is fine.
    assert_eq!(
        get_body(&client, mode.url(&server, "/?size=1000"))
            .await
            .len(),
        1000
    );

    let res = client.get(mode.url(&server, query)).send().await.unwrap();
    let err = bounded(res.bytes()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BodyTooLarge, "{err:?}");
    assert_eq!(err.phase(), Some(Phase::BodyRead));
    let text = err.to_string();
    assert!(
        text.contains("1000-byte limit") && text.contains("max_body_size"),
        "{text}"
    );
    if mode.is_h2() {
        return assert_the_h2_connection_carries_on(mode, &client, &server).await;
    }
    let s = client.stats().total;
    assert_eq!((s.open, s.busy), (0, 0), "{s:?}");
    assert_eq!(s.closed_by.get(CloseReason::Error), 1, "{s:?}");
    assert_consistent(&s);
    server.wait_closed(1).await;
    let held = held_client_sockets(&server);
    assert!(held.is_empty(), "{held:?}");
    // The next request dials anew and works.
    assert_eq!(get_body(&client, mode.url(&server, "/")).await, "hello");
    assert_eq!(server.stats().accepted, 2);
}

async fn body_over_max_body_size_by_content_length_fails_and_closes(mode: Mode) {
    body_over_max_body_size(mode, "/?size=5000").await;
}
per_mode!(body_over_max_body_size_by_content_length_fails_and_closes: h1, h1_tls);

async fn body_over_max_body_size_by_content_length_fails_and_the_connection_carries_on(mode: Mode) {
    body_over_max_body_size(mode, "/?size=5000").await;
}
per_mode!(body_over_max_body_size_by_content_length_fails_and_the_connection_carries_on: h2, h2c);

async fn chunked_body_over_max_body_size_fails_and_closes(mode: Mode) {
    body_over_max_body_size(mode, "/?size=5000&chunked=1&chunk=300").await;
}
per_mode!(chunked_body_over_max_body_size_fails_and_closes: h1, h1_tls);

/// DATA frames with no Content-Length: HTTP/2's counterpart of chunked.
async fn body_without_content_length_over_max_body_size_fails_and_the_connection_carries_on(
    mode: Mode,
) {
    body_over_max_body_size(mode, "/?size=5000&chunked=1&chunk=300").await;
}
per_mode!(body_without_content_length_over_max_body_size_fails_and_the_connection_carries_on: h2, h2c);

// HTTP/1.1 only: a body delimited by the connection's close has no h2
// counterpart (the stream's END_STREAM ends every h2 body).
async fn close_delimited_body_over_max_body_size_fails_and_closes(mode: Mode) {
    body_over_max_body_size(mode, "/?size=5000&framing=close").await;
}
per_mode!(close_delimited_body_over_max_body_size_fails_and_closes: h1, h1_tls);
