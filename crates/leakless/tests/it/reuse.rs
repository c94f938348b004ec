//! Reuse and keep-alive, over HTTP/1.1, HTTP/1.1 over TLS and HTTP/2
//! (where "the connection goes back" means its stream ends and the shared
//! connection shows idle).

use std::time::Duration;

use leakless::{Client, CloseReason};

use crate::support::*;

async fn sequential_requests_share_one_connection(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    for _ in 0..3 {
        let res = client.get(mode.url(&server, "/")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.version(), mode.version());
        assert_eq!(res.text().await.unwrap(), "hello");
    }
    let st = server.stats();
    assert_eq!(st.accepted, 1);
    assert_eq!(st.h2_conns, u64::from(mode.is_h2()));
    let s = client.stats().total;
    assert_eq!(
        (s.created, s.reused, s.idle, s.busy, s.h2_streams),
        (1, 2, 1, 0, 0),
        "{s:?}"
    );
    assert_consistent(&s);
}
per_mode!(sequential_requests_share_one_connection: h1, h1_tls, h2, h2c);

// HTTP/1.1 only: `Connection: close` is an HTTP/1.1 header (HTTP/2 forbids
// it), and an h2 connection is shared rather than kept alive per request.
async fn disabled_keep_alives_use_new_connections_and_send_close_once(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder().disable_keep_alives(true));
    for _ in 0..3 {
        let res = client
            .get(mode.url(&server, "/"))
            .header("connection", "close")
            .send()
            .await
            .unwrap();
        res.bytes().await.unwrap();
    }
    server.wait_closed(3).await;
    assert_eq!(server.stats().accepted, 3);
    for req in server.requests() {
        let closes = req
            .headers
            .iter()
            .filter(|(k, v)| k.eq_ignore_ascii_case("connection") && v == "close")
            .count();
        assert_eq!(closes, 1, "{:?}", req.headers);
    }
    let s = client.stats().total;
    assert_eq!((s.created, s.open), (3, 0));
    assert_eq!(s.closed_by.get(CloseReason::KeepAlivesDisabled), 3);
    assert_consistent(&s);
}
per_mode!(disabled_keep_alives_use_new_connections_and_send_close_once: h1, h1_tls);

/// On HTTP/2 the server's `close=1` is a GOAWAY after the reply: the
/// connection takes no new stream and closes once its last one is done.
async fn connection_close_response_is_not_reused(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let res = client
        .get(mode.url(&server, "/?close=1"))
        .send()
        .await
        .unwrap();
    res.bytes().await.unwrap();
    let s = if mode.is_h2() {
        // The driver task sees the GOAWAY and the close after it.
        wait_for_stats(&client, "the connection closed", |s| s.open == 0).await
    } else {
        client.stats().total
    };
    assert_eq!((s.open, s.closed), (0, 1), "{s:?}");
    let why = if mode.is_h2() {
        // The server closes after its GOAWAY; a write of ours (a
        // WINDOW_UPDATE) racing that close fails with EPIPE, which the
        // driver counts as an error rather than a clean close.
        s.closed_by.get(CloseReason::ServerClosed) + s.closed_by.get(CloseReason::Error)
    } else {
        s.closed_by.get(CloseReason::NotReusable)
    };
    assert_eq!(why, 1, "{s:?}");
    server.wait_closed(1).await;
    get_body(&client, mode.url(&server, "/")).await;
    assert_eq!(server.stats().accepted, 2);
    assert_eq!(client.stats().total.retries, 0);
}
per_mode!(connection_close_response_is_not_reused: h1, h1_tls, h2, h2c);

/// Reads `path`'s 20,000-byte body to its end, its length announced as
/// `content_length` says.
async fn body_read_to_end_returns_connection_before_drop(
    mode: Mode,
    path: &str,
    content_length: Option<u64>,
) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let mut res = client.get(mode.url(&server, path)).send().await.unwrap();
    assert_eq!(res.content_length(), content_length);
    let mut n = 0;
    while let Some(chunk) = res.chunk().await.unwrap() {
        n += chunk.len();
    }
    assert_eq!(n, 20000);
    // `res` is still alive: the connection (h2: the stream) went back when
    // the end was read.
    let s = client.stats().total;
    assert_eq!((s.idle, s.busy, s.h2_streams), (1, 0, 0), "{s:?}");
    drop(res);
}

async fn reading_to_end_returns_connection_content_length(mode: Mode) {
    body_read_to_end_returns_connection_before_drop(mode, "/?size=20000", Some(20000)).await;
}
per_mode!(reading_to_end_returns_connection_content_length: h1, h1_tls, h2, h2c);

/// HTTP/1.1: a chunked body; HTTP/2: DATA frames without a Content-Length.
async fn reading_to_end_returns_connection_without_content_length(mode: Mode) {
    let path = "/?size=20000&chunked=1&chunk=3000";
    body_read_to_end_returns_connection_before_drop(mode, path, None).await;
}
per_mode!(reading_to_end_returns_connection_without_content_length: h1, h1_tls, h2, h2c);

/// HTTP/1.1 drains the rest in the background and reuses the connection;
/// HTTP/2 resets just that stream and the connection is idle at once.
async fn dropped_body_within_drain_limit_is_reused(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let res = client
        .get(mode.url(&server, "/?size=10000"))
        .send()
        .await
        .unwrap();
    drop(res);
    if mode.is_h2() {
        let s = client.stats().total;
        assert_eq!((s.idle, s.busy, s.h2_streams), (1, 0, 0), "{s:?}");
    }
    wait_for_stats(&client, "the connection idle", |s| s.idle == 1).await;
    get_body(&client, mode.url(&server, "/")).await;
    assert_eq!(server.stats().accepted, 1);
    let s = client.stats().total;
    assert_eq!((s.created, s.reused, s.closed), (1, 1, 0), "{s:?}");
}
per_mode!(dropped_body_within_drain_limit_is_reused: h1, h1_tls, h2, h2c);

// HTTP/1.1 only: the drain limit is an HTTP/1.1 notion; dropping an h2
// response resets only its stream whatever is left (see
// dropped_endless_body_resets_only_its_stream).
async fn dropped_body_over_drain_limit_is_closed(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let res = client
        .get(mode.url(&server, "/?size=200000"))
        .send()
        .await
        .unwrap();
    drop(res);
    let s = client.stats().total;
    assert_eq!((s.open, s.closed_by.get(CloseReason::DrainFailed)), (0, 1));
    server.wait_closed(1).await;
}
per_mode!(dropped_body_over_drain_limit_is_closed: h1, h1_tls);

/// An endless body dropped after its first chunk.
async fn drop_an_endless_body(mode: Mode) -> (TestServer, Client) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let mut res = client
        .get(mode.url(&server, "/?fault=endless"))
        .send()
        .await
        .unwrap();
    res.chunk().await.unwrap().expect("some body");
    drop(res);
    (server, client)
}

async fn dropped_endless_body_closes_the_tcp_connection(mode: Mode) {
    let (server, client) = drop_an_endless_body(mode).await;
    // The drain gives up past drain_limit; the server's writes then fail.
    server.wait_write_failures(1).await;
    server.wait_closed(1).await;
    let s = client.stats().total;
    assert_eq!((s.open, s.closed_by.get(CloseReason::DrainFailed)), (0, 1));
}
per_mode!(dropped_endless_body_closes_the_tcp_connection: h1, h1_tls);

/// On HTTP/2 the endless body is one stream: dropping it resets that
/// stream (the server's writes to it stop), and the connection stays.
async fn dropped_endless_body_resets_only_its_stream(mode: Mode) {
    let (server, client) = drop_an_endless_body(mode).await;
    bounded(server.wait_until(|s| s.h2_streams_reset == 1)).await;
    assert_the_h2_connection_carries_on(mode, &client, &server).await;
}
per_mode!(dropped_endless_body_resets_only_its_stream: h2, h2c);

async fn server_closed_idle_connection_is_replaced(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    get_body(&client, mode.url(&server, "/")).await;
    server.wait_idle(1).await;
    assert_eq!(server.close_idle_connections(), 1);
    server.wait_closed(1).await;
    // The server's FIN (after its close_notify, on TLS) has reached our
    // socket: from here the client can tell, and must. On HTTP/2 the client
    // may close first, on the GOAWAY that precedes the FIN: its socket then
    // ends in TIME_WAIT once the FIN arrives.
    wait_for(
        "the server's FIN at our socket",
        || client_sockets(&server),
        |ours| {
            ours.iter()
                .all(|s| [CLOSE_WAIT, LAST_ACK, CLOSE, TIME_WAIT].contains(&s.state))
        },
    )
    .await;
    // And our reactor has seen it: the idle check peeks only at a socket
    // the reactor reported readable (one turn of the runtime's I/O driver).
    tokio::time::sleep(Duration::from_millis(1)).await;
    if mode.is_h2() {
        // The connection's driver task sees the GOAWAY and the close.
        let s = wait_for_stats(&client, "the connection closed", |s| s.open == 0).await;
        assert_eq!(s.closed_by.get(CloseReason::ServerClosed), 1, "{s:?}");
    }
    assert_eq!(get_body(&client, mode.url(&server, "/")).await, "hello");
    let s = client.stats().total;
    assert_eq!(
        (s.open, s.idle, s.created, s.retries),
        (1, 1, 2, 0),
        "{s:?}"
    );
    assert_consistent(&s);
}
per_mode!(server_closed_idle_connection_is_replaced: h1, h1_tls, h2, h2c);

/// On HTTP/2 "close after every response" is a GOAWAY after each stream:
/// the requests in flight on it finish or are refused and retried.
async fn server_closing_after_every_response_under_concurrent_requests(mode: Mode, n: usize) {
    let server = mode.server(Config::new().max_requests_per_conn(1));
    let client = mode.client(&server, Client::builder());
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let (client, url) = (client.clone(), mode.url(&server, "/"));
            tokio::spawn(async move { client.get(url).send().await?.bytes().await })
        })
        .collect();
    for t in tasks {
        match bounded(t).await.unwrap() {
            Ok(body) => assert_eq!(body, "hello"),
            Err(e) => panic!("{e:?}\n{:?}\n{:?}", client.stats().total, server.stats()),
        }
    }
    let s = wait_for_stats(&client, "nothing in flight", nothing_in_flight).await;
    assert_eq!((s.busy, s.waiting, s.h2_streams), (0, 0, 0), "{s:?}");
    let s = wait_for_stats(&client, "every connection closed", |s| s.open == 0).await;
    assert_consistent(&s);
}

async fn server_closing_after_every_response_under_500_concurrent_requests(mode: Mode) {
    server_closing_after_every_response_under_concurrent_requests(mode, 500).await;
}
per_mode!(multi_thread server_closing_after_every_response_under_500_concurrent_requests: h1);

// Fewer requests over TLS: each one is a handshake, and debug-build TLS is slow.
async fn server_closing_after_every_response_under_100_concurrent_requests(mode: Mode) {
    server_closing_after_every_response_under_concurrent_requests(mode, 100).await;
}
// Not h2: there "close after every response" is one stream per connection
// and a GOAWAY refusing the rest, so 100 concurrent streams need ~100
// connections in turn; a client retries unprocessed requests a bounded
// number of times (Go too), so most must fail. GOAWAY is tested in h2.rs.
per_mode!(multi_thread server_closing_after_every_response_under_100_concurrent_requests: h1_tls);

async fn request_racing_the_idle_timeout_does_not_fail(mode: Mode) {
    let server = mode.server(Config::new().keep_alive_timeout(Duration::from_millis(30)));
    let client = mode.client(&server, Client::builder());
    for i in 0..40u64 {
        get_body(&client, mode.url(&server, "/")).await;
        // Idle for just about the server's keep-alive: the close races the reuse.
        tokio::time::sleep(Duration::from_micros(27_000 + i * 150)).await;
    }
    get_body(&client, mode.url(&server, "/")).await;
}
per_mode!(request_racing_the_idle_timeout_does_not_fail: h1, h1_tls, h2, h2c);
