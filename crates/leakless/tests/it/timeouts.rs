//! Every phase is bounded, and the error names it; over HTTP/1.1, HTTP/1.1
//! over TLS and HTTP/2. (The silent TLS server is in tls.rs.) On HTTP/2 a
//! timed-out request resets its stream, not the shared connection: the
//! connection is pinged, found alive and kept.
//!
//! Timer logic runs on tokio's paused clock where it can: the test pauses
//! only once the one thing left is a timer that should fire (the request
//! is on the wire and the server will never answer), so the runtime's
//! auto-advance jumps straight to it and the elapsed time is exact.

use std::time::Duration;

use leakless::{Client, CloseReason, ErrorKind, Phase};
use leakless_testserver::ConnFault;
use tokio::time::Instant;

use crate::support::*;

/// One request read to the end, on real time: the connection is then idle.
async fn warm_up(mode: Mode, client: &Client, server: &TestServer) {
    assert_eq!(get_body(client, mode.url(server, "/")).await, "hello");
    assert_eq!(client.stats().total.idle, 1);
}

/// On the paused clock, `idle` after the warm-up, a request the server reads
/// and never answers: its error and how long it took.
async fn unanswered_after(
    mode: Mode,
    client: &Client,
    server: &TestServer,
    idle: Duration,
) -> (leakless::Error, Duration) {
    tokio::time::pause();
    tokio::time::advance(idle).await;
    let start = Instant::now();
    let err = client
        .get(mode.url(server, "/?fault=stall"))
        .send()
        .await
        .unwrap_err();
    let elapsed = start.elapsed();
    tokio::time::resume();
    (err, elapsed)
}

/// After a timeout on HTTP/2: the stream was reset (the server saw it),
/// and the connection is still there, idle, with no stream counted.
async fn assert_only_the_stream_was_reset(client: &Client, server: &TestServer) {
    bounded(server.wait_until(|s| s.h2_streams_reset == 1)).await;
    let s = client.stats().total;
    assert_eq!(
        (s.open, s.idle, s.busy, s.h2_streams, s.closed),
        (1, 1, 0, 0, 0),
        "{s:?}"
    );
    assert_consistent(&s);
    let st = server.stats();
    assert_eq!((st.accepted, st.closed), (1, 0), "{st:?}");
}

/// After a timeout on HTTP/1.1: the one connection is closed, counted as
/// closed by a timeout.
fn assert_its_one_connection_closed_by_the_timeout(client: &Client) {
    let s = client.stats().total;
    assert_eq!(
        (s.open, s.closed_by.get(CloseReason::Timeout)),
        (0, 1),
        "{s:?}"
    );
    assert_consistent(&s);
}

async fn response_header_timeout_fires_when_the_server_never_answers(mode: Mode) {
    let server = mode.server(Config::new());
    let limit = Duration::from_secs(7);
    let client = mode.client(&server, Client::builder().response_header_timeout(limit));
    warm_up(mode, &client, &server).await;

    // The request goes out on the idle connection; the server reads it and
    // never answers, so the header timer is the only thing that can happen.
    let (err, elapsed) = unanswered_after(mode, &client, &server, Duration::ZERO).await;

    assert!(
        elapsed >= limit && elapsed < limit + Duration::from_millis(100),
        "{elapsed:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.is_timeout() && !err.is_maybe_sent(), "{err:?}");
    assert_eq!(err.phase(), Some(Phase::ResponseHeaders));
    let host = server.addr().to_string();
    assert_eq!(err.host(), Some(host.as_str()));
    let text = err.to_string();
    for part in [
        "timed out after 7s",
        "response headers",
        &host,
        "response_header_timeout",
    ] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }

    if mode.is_h2() {
        assert_only_the_stream_was_reset(&client, &server).await;
        let res = bounded(client.get(mode.url(&server, "/")).send())
            .await
            .unwrap();
        assert_eq!(res.text().await.unwrap(), "hello");
        assert_eq!(client.stats().total.created, 1);
        return;
    }
    // The connection is closed, by us, and the server sees it go.
    let s = client.stats().total;
    assert_eq!((s.open, s.busy), (0, 0), "{s:?}");
    assert_eq!(s.closed_by.get(CloseReason::Timeout), 1, "{s:?}");
    let seen = server.wait_closed(1).await;
    assert_eq!(
        seen.closed_for(leakless_testserver::CloseReason::Peer),
        1,
        "{seen:?}"
    );
    let held = held_client_sockets(&server);
    assert!(held.is_empty(), "{held:?}");

    // A fast path still works, on a new connection.
    let res = bounded(client.get(mode.url(&server, "/")).send())
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "hello");
    let s = client.stats().total;
    assert_eq!((s.created, s.idle), (2, 1), "{s:?}");
    assert_consistent(&s);
    assert_eq!(server.stats().accepted, 2);
}
per_mode!(response_header_timeout_fires_when_the_server_never_answers: h1, h1_tls, h2, h2c);

/// Each request's response-head limit counts from its own write, not from
/// an earlier request's: an HTTP/1.1 connection keeps its timer armed from
/// the request before and moves it only when it fires; an HTTP/2 stream
/// has a timer of its own.
async fn response_header_timeout_counts_from_each_requests_own_write(mode: Mode) {
    let server = mode.server(Config::new());
    let limit = Duration::from_secs(7);
    let client = mode.client(&server, Client::builder().response_header_timeout(limit));
    warm_up(mode, &client, &server).await;
    // 5 s on, the warm-up's deadline is 2 s away, this request's 7 s.
    let (err, elapsed) = unanswered_after(mode, &client, &server, Duration::from_secs(5)).await;
    assert!(
        elapsed >= limit && elapsed < limit + Duration::from_millis(100),
        "{elapsed:?}"
    );
    assert_eq!(err.phase(), Some(Phase::ResponseHeaders), "{err}");
    if mode.is_h2() {
        assert_only_the_stream_was_reset(&client, &server).await;
    } else {
        assert_its_one_connection_closed_by_the_timeout(&client);
    }
}
per_mode!(response_header_timeout_counts_from_each_requests_own_write: h1, h1_tls, h2, h2c);

// HTTP/1.1 only: over TLS or h2c a server that only accepts stalls the
// handshake, which is the dial's timeout (tls.rs), not this one.
#[tokio::test]
async fn response_header_timeout_fires_on_a_fresh_connection_the_server_only_accepted() {
    // Real time: the dial has to finish before any timer may run.
    let server = TestServer::start(Config::new().conn_fault(ConnFault::AcceptAndStall));
    let client = Client::builder()
        .response_header_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let start = Instant::now();
    let err = bounded(client.get(server.url("/")).send())
        .await
        .unwrap_err();
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert_eq!(err.phase(), Some(Phase::ResponseHeaders), "{err}");
    assert!(err.is_timeout(), "{err}");
    assert_eq!(err.host(), Some(server.addr().to_string().as_str()));
    server.wait_closed(1).await;

    server.update_config(|c| c.conn_fault = None);
    let res = bounded(client.get(server.url("/")).send()).await.unwrap();
    assert_eq!(res.text().await.unwrap(), "hello");
    let s = client.stats().total;
    assert_eq!(
        (s.created, s.idle, s.closed_by.get(CloseReason::Timeout)),
        (2, 1, 1),
        "{s:?}"
    );
    assert_consistent(&s);
}

async fn read_idle_timeout_fires_while_the_body_stalls(mode: Mode) {
    let server = mode.server(Config::new());
    let idle = Duration::from_secs(5);
    let client = mode.client(&server, Client::builder().read_idle_timeout(idle));
    warm_up(mode, &client, &server).await;

    // Head and three body bytes arrive on real time, then the body stalls.
    let mut res = bounded(
        client
            .get(mode.url(&server, "/?fault=stall_body&after=3&size=100"))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(res.content_length(), Some(100));
    let mut got = Vec::new();
    while got.len() < 3 {
        got.extend_from_slice(&bounded(res.chunk()).await.unwrap().unwrap());
    }
    assert_eq!(got, b"hel");

    tokio::time::pause();
    let start = Instant::now();
    let err = res.chunk().await.unwrap_err();
    let elapsed = start.elapsed();
    tokio::time::resume();

    assert!(
        elapsed >= idle && elapsed < idle + Duration::from_millis(100),
        "{elapsed:?}"
    );
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(err.phase(), Some(Phase::BodyRead), "{err}");
    assert_eq!(err.host(), Some(server.addr().to_string().as_str()));
    let text = err.to_string();
    assert!(
        text.contains("body read") && text.contains("read_idle_timeout"),
        "{text}"
    );
    // The body is over: no more chunks, and the connection is gone (h2:
    // the stream).
    assert!(res.chunk().await.unwrap().is_none());
    if mode.is_h2() {
        assert_only_the_stream_was_reset(&client, &server).await;
        drop(res);
        let held = held_client_sockets(&server);
        assert_eq!(held.len(), 1, "{held:?}");
        return;
    }
    assert_its_one_connection_closed_by_the_timeout(&client);
    server.wait_closed(1).await;
    drop(res);
    let held = held_client_sockets(&server);
    assert!(held.is_empty(), "{held:?}");
}
per_mode!(read_idle_timeout_fires_while_the_body_stalls: h1, h1_tls, h2, h2c);

// HTTP/1.1: a write that finishes at once arms no timer, so this is the
// one path that does: the server never reads, the socket's buffers fill,
// and the upload's next write must end at read_idle_timeout.
#[tokio::test]
async fn read_idle_timeout_ends_an_upload_the_server_never_reads() {
    let server = TestServer::start(Config::new().conn_fault(ConnFault::AcceptAndStallUnread));
    let idle = Duration::from_millis(200);
    let client = Client::builder().read_idle_timeout(idle).build().unwrap();
    // Far more than loopback's send and receive buffers hold together.
    let body = vec![b'x'; 64 << 20];
    let start = Instant::now();
    let err = bounded(client.post(server.url("/")).body(body).send())
        .await
        .unwrap_err();
    assert!(start.elapsed() >= idle, "{:?}", start.elapsed());
    assert_eq!(err.phase(), Some(Phase::WriteRequest), "{err}");
    assert!(err.is_timeout(), "{err}");
    assert!(err.to_string().contains("read_idle_timeout"), "{err}");
    assert_its_one_connection_closed_by_the_timeout(&client);
}

// One mode: the TCP connect comes before TLS and h2 and is the same for all.
#[tokio::test]
async fn connect_timeout_fires_against_a_full_accept_queue() {
    let listener = SaturatedListener::new();
    let addr = listener.addr();
    let limit = Duration::from_secs(3);
    let client = Client::builder().connect_timeout(limit).build().unwrap();

    tokio::time::pause();
    let start = Instant::now();
    let req = tokio::spawn({
        let client = client.clone();
        async move { client.get(format!("http://{addr}/")).send().await }
    });
    // While the wait yields the runtime is never idle, so the paused clock
    // stands still: see the client's SYN hang in the kernel's table first.
    let dialing = listener.wait_for_the_dial().await;
    assert_eq!(client.stats().total.dialing, 1);

    let err = req.await.unwrap().unwrap_err();
    let elapsed = start.elapsed();
    tokio::time::resume();
    assert!(
        elapsed >= limit && elapsed < limit + Duration::from_millis(100),
        "{elapsed:?}"
    );
    assert!(err.is_connect() && err.is_timeout(), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert_eq!(err.phase(), Some(Phase::Connect));
    assert_eq!(err.host(), Some(addr.to_string().as_str()));
    assert!(err.to_string().contains("connect_timeout"), "{err}");
    // The half-open socket is gone from the kernel, not just from the pool.
    listener.assert_no_dial_left(&dialing);
    let s = client.stats().total;
    assert_eq!(
        (
            s.open,
            s.dialing,
            s.created,
            s.closed_by.get(CloseReason::Timeout)
        ),
        (0, 0, 1, 1),
        "{s:?}"
    );
    assert_consistent(&s);
}

async fn total_deadline_interrupts_an_endless_body(mode: Mode) {
    // The body never stops arriving, so no idle timer can fire: only the
    // total deadline ends it. Real time, since the socket is never idle.
    // The reader is slower than the server (it blocks a moment per chunk),
    // so the socket never runs dry and the read never waits: the deadline
    // must be checked while data flows, not only while waiting for it.
    let server = mode.server(Config::new());
    let deadline = Duration::from_millis(300);
    let client = mode.client(&server, Client::builder().timeout(deadline));
    let start = Instant::now();
    let mut res = bounded(client.get(mode.url(&server, "/?fault=endless")).send())
        .await
        .unwrap();
    let mut received = 0usize;
    let err = bounded(async {
        loop {
            match res.chunk().await {
                Ok(Some(b)) => {
                    received += b.len();
                    std::thread::sleep(Duration::from_micros(500));
                }
                Ok(None) => panic!("an endless body ended"),
                Err(e) => return e,
            }
        }
    })
    .await;
    let elapsed = start.elapsed();
    assert!(received > 0);
    assert!(
        elapsed >= deadline && elapsed < deadline * 3,
        "{elapsed:?} for a {deadline:?} deadline"
    );
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert_eq!(err.phase(), Some(Phase::Total), "{err}");
    assert_eq!(err.host(), Some(server.addr().to_string().as_str()));
    assert!(err.to_string().contains("total deadline"), "{err}");
    if mode.is_h2() {
        assert_only_the_stream_was_reset(&client, &server).await;
        return;
    }
    let s = client.stats().total;
    assert_eq!(
        (s.open, s.closed_by.get(CloseReason::Timeout)),
        (0, 1),
        "{s:?}"
    );
    // The server's writes fail once we are gone.
    server.wait_write_failures(1).await;
    server.wait_closed(1).await;
}
per_mode!(total_deadline_interrupts_an_endless_body: h1, h1_tls, h2, h2c);

async fn per_request_timeout_overrides_the_clients_and_names_the_total_phase(mode: Mode) {
    let server = mode.server(Config::new());
    // The client's own deadline is far later: only the request's can fire.
    let client = mode.client(&server, Client::builder().timeout(Duration::from_secs(60)));
    warm_up(mode, &client, &server).await;
    tokio::time::pause();
    let start = Instant::now();
    let err = client
        .get(mode.url(&server, "/?fault=stall"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .unwrap_err();
    let elapsed = start.elapsed();
    tokio::time::resume();
    assert!(elapsed >= Duration::from_secs(2) && elapsed < Duration::from_millis(2100));
    assert_eq!(err.phase(), Some(Phase::Total), "{err}");
    assert_eq!(err.host(), Some(server.addr().to_string().as_str()));
    if mode.is_h2() {
        assert_only_the_stream_was_reset(&client, &server).await;
        return;
    }
    server.wait_closed(1).await;
    let s = client.stats().total;
    assert_eq!((s.open, s.busy), (0, 0), "{s:?}");
    // Closed, though recorded as Canceled rather than Timeout: the deadline
    // drops the exchange, and the lease inside it cannot tell why.
    assert_eq!(s.closed, 1, "{s:?}");
    assert_consistent(&s);
}
per_mode!(per_request_timeout_overrides_the_clients_and_names_the_total_phase: h1, h1_tls, h2, h2c);

async fn a_body_that_never_runs_dry_still_lets_other_timers_fire(mode: Mode) {
    // Current-thread runtime: a body read that never returns Pending would
    // keep this thread for ever. A watchdog thread ends the body after 10 s
    // of real time so that a regression fails instead of hanging.
    let server = std::sync::Arc::new(mode.server(Config::new()));
    let client = mode.client(&server, Client::builder());
    let mut res = client
        .get(mode.url(&server, "/?fault=endless"))
        .send()
        .await
        .unwrap();
    let (stop, stopped) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn({
        let server = server.clone();
        move || {
            if stopped.recv_timeout(Duration::from_secs(10)).is_err() {
                server.close_all_connections();
            }
        }
    });
    let reader = tokio::spawn(async move {
        let mut received = 0usize;
        while let Ok(Some(b)) = res.chunk().await {
            received += b.len();
            // Slower than the server: the socket always has more.
            std::thread::sleep(Duration::from_micros(200));
        }
        received
    });
    let start = std::time::Instant::now();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let waited = start.elapsed();
    reader.abort();
    let _ = reader.await;
    let _ = stop.send(());
    watchdog.join().unwrap();
    assert!(
        waited < Duration::from_secs(5),
        "a 50 ms timer fired after {waited:?}: the body read starved the runtime"
    );
}
per_mode!(a_body_that_never_runs_dry_still_lets_other_timers_fire: h1, h1_tls, h2, h2c);

/// A response head is timed on the clock of the runtime that asked for it.
/// An HTTP/1.1 connection keeps its timer between requests, tagged with
/// its runtime; an HTTP/2 connection is driven by a task on the runtime
/// that dialed it. Reused from a second runtime (the first still running),
/// the stall paused there ends exactly at the limit, where a timer of the
/// first runtime would fire on real time instead.
fn a_connection_reused_from_another_runtime_times_out_on_that_runtimes_clock(mode: Mode) {
    let server = mode.server(Config::new());
    let limit = Duration::from_secs(3);
    let client = mode.client(&server, Client::builder().response_header_timeout(limit));
    let first = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    first.block_on(warm_up(mode, &client, &server));
    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    second.block_on(async {
        tokio::time::pause();
        let start = Instant::now();
        let err = client
            .get(mode.url(&server, "/?fault=stall"))
            .send()
            .await
            .unwrap_err();
        let elapsed = start.elapsed();
        tokio::time::resume();
        assert_eq!(err.phase(), Some(Phase::ResponseHeaders), "{err}");
        assert!(
            elapsed >= limit && elapsed < limit + Duration::from_millis(100),
            "{elapsed:?}"
        );
    });
    let s = client.stats().total;
    assert_eq!(
        (s.created, s.reused),
        (1, 1),
        "the connection was reused: {s:?}"
    );
    drop(first);
}

mod a_connection_reused_from_another_runtime_times_out_on_that_runtimes_clock {
    use super::*;

    #[test]
    fn h1() {
        a_connection_reused_from_another_runtime_times_out_on_that_runtimes_clock(Mode::H1);
    }

    #[test]
    fn h2c() {
        a_connection_reused_from_another_runtime_times_out_on_that_runtimes_clock(Mode::H2c);
    }
}
