//! HTTP/2 knobs and faults: GOAWAY after N streams, refused streams,
//! silence (after N streams, on command, per reply), stream faults that
//! leave the connection alone and connection faults that do not, and the
//! connection's own closes.

use std::time::Duration;

use bytes::Bytes;
use h2::Reason;
use http::{Method, Request};
use leakless_testserver::{CloseReason, Config, ConnState, TestServer};
use tokio::time::timeout;

use crate::client::{Client, LIMIT, hello};
use crate::h2client::{H2, Streams, h2_tls, h2c};

/// Long enough for an answer on loopback to have come if it ever would.
const QUIET: Duration = Duration::from_millis(150);

/// A GET whose response must not come within [`QUIET`].
async fn expect_no_answer(streams: &Streams, path: &str) {
    let mut send = streams.send.clone().ready().await.unwrap();
    let req = Request::get(format!("http://localhost{path}"))
        .body(())
        .unwrap();
    let (resp, _) = send.send_request(req, true).unwrap();
    assert!(timeout(QUIET, resp).await.is_err(), "an answer came");
}

/// Drops the client connection (its task holds the socket).
fn hang_up(c: H2) {
    c.conn.abort();
}

async fn wait_silent(server: &TestServer, id: u64) {
    let silent = |s: &leakless_testserver::ServerStats| {
        s.conns
            .get(&id)
            .is_some_and(|c| c.state == ConnState::Silent)
    };
    server.wait_for(LIMIT, silent).await.unwrap();
}

fn reason(e: &h2::Error) -> Option<Reason> {
    e.reason()
}

#[tokio::test]
async fn goaway_after_n_streams_then_close() {
    let server = TestServer::start(Config::new().h2_goaway_after(2));
    let c = h2c(&server).await;
    assert_eq!(c.get("/").await.body, hello(5));
    assert_eq!(c.get("/").await.body, hello(5));
    // GOAWAY, its PING round trip, the final GOAWAY, then the close.
    let end = timeout(LIMIT, c.conn).await.unwrap().unwrap();
    assert!(end.is_ok() || end.unwrap_err().is_go_away());
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_for(CloseReason::GoAway), 1);
    assert_eq!((s.h2_goaways, s.requests, s.h2_streams_refused), (1, 2, 0));
}

#[tokio::test]
async fn streams_racing_a_goaway_are_refused_unprocessed() {
    let server = TestServer::start(Config::new().h2_goaway_after(2));
    let c = h2c(&server).await;
    // Three more, sent together, before any GOAWAY can arrive.
    let mut send = c.send.clone().ready().await.unwrap();
    let mut pending = Vec::new();
    for _ in 0..4 {
        let req = Request::get("http://localhost/?latency_ms=20")
            .body(())
            .unwrap();
        pending.push(send.send_request(req, true).unwrap().0);
    }
    let (mut ok, mut refused) = (0, 0);
    for resp in pending {
        match timeout(LIMIT, resp).await.unwrap() {
            Ok(r) => {
                assert_eq!(r.status(), 200);
                ok += 1;
            }
            Err(e) => {
                assert!(
                    reason(&e) == Some(Reason::REFUSED_STREAM) || e.is_go_away(),
                    "{e:?}"
                );
                refused += 1;
            }
        }
    }
    assert_eq!((ok, refused), (2, 2));
    let s = server.wait_closed(1).await;
    assert_eq!(s.requests, 2);
    assert_eq!(s.closed_for(CloseReason::GoAway), 1);
}

#[tokio::test]
async fn the_first_streams_are_refused() {
    let server = TestServer::start(Config::new().h2_refuse_streams(1));
    let c = h2c(&server).await;
    let err = c.call(Method::GET, "/", None).await.unwrap_err();
    assert_eq!(reason(&err), Some(Reason::REFUSED_STREAM));
    // The same connection serves the next one.
    assert_eq!(c.get("/").await.body, hello(5));
    let s = server.stats();
    assert_eq!((s.h2_streams, s.h2_streams_refused, s.requests), (2, 1, 1));
    assert_eq!(s.conns[&1].streams_open, 0);
    assert_eq!(server.requests()[0].conn_seq, 1);
}

#[tokio::test]
async fn stream_resets_by_query() {
    let server = TestServer::start(Config::new());
    let c = h2c(&server).await;
    let err = c
        .call(Method::GET, "/?fault=refuse", None)
        .await
        .unwrap_err();
    assert_eq!(reason(&err), Some(Reason::REFUSED_STREAM));
    let err = c
        .call(Method::GET, "/?fault=rst_stream&code=8", None)
        .await
        .unwrap_err();
    assert_eq!(reason(&err), Some(Reason::CANCEL));
    let err = c
        .call(Method::GET, "/?fault=rst_stream", None)
        .await
        .unwrap_err();
    assert_eq!(reason(&err), Some(Reason::INTERNAL_ERROR));
    assert_eq!(c.get("/").await.body, hello(5));
    let s = server.stats();
    // Reset on the headers: not read, not counted as requests.
    assert_eq!((s.h2_streams, s.h2_streams_refused, s.requests), (4, 1, 1));
}

#[tokio::test]
async fn silent_after_n_streams_is_a_dead_peer() {
    let server = TestServer::start(Config::new().h2_silent_after(1));
    let mut c = h2c(&server).await;
    assert_eq!(c.get("/").await.body, hello(5));
    wait_silent(&server, 1).await;
    assert!(
        c.ping(QUIET).await.is_none(),
        "a silent connection answered a PING"
    );
    expect_no_answer(&c, "/").await;
    let s = server.stats();
    assert_eq!((s.h2_pings, s.h2_streams, s.requests, s.open), (0, 1, 1, 1));
    // The client gives up: its close is still seen.
    hang_up(c);
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_for(CloseReason::Peer), 1);
}

#[tokio::test]
async fn a_silent_connection_outlives_the_keep_alive_timeout() {
    let idle = Duration::from_millis(30);
    let server = TestServer::start(Config::new().keep_alive_timeout(idle).h2_silent_after(1));
    let c = h2c(&server).await;
    c.get("/").await;
    let mut h1 = Client::connect(&server).await;
    h1.get("/?silence=1").await;
    wait_silent(&server, 1).await;
    wait_silent(&server, 2).await;
    h1.expect_silence(QUIET).await;
    let s = server.stats();
    assert_eq!((s.open, s.h2_goaways), (2, 0));
    hang_up(c);
}

#[tokio::test]
async fn silent_after_zero_is_dead_from_the_start() {
    let server = TestServer::start(Config::new().h2_silent_after(0));
    let c = h2c(&server).await;
    expect_no_answer(&c, "/").await;
    wait_silent(&server, 1).await;
    assert_eq!(server.stats().requests, 0);
}

#[tokio::test]
async fn silence_on_command_over_tls_and_cleartext() {
    let server = TestServer::start(Config::new().tls(true));
    let mut tls = h2_tls(&server).await;
    tls.get("/").await;
    let mut clear = h2c(&server).await;
    clear.get("/").await;
    let mut h1 = Client::connect(&server).await;
    h1.get("/").await;
    assert_eq!(server.silence_connections(), 3);
    let s = server.stats();
    assert!(s.conns.values().all(|c| c.state == ConnState::Silent));
    assert!(tls.ping(QUIET).await.is_none());
    assert!(clear.ping(QUIET).await.is_none());
    h1.send("GET / HTTP/1.1\r\n\r\n").await;
    h1.expect_silence(QUIET).await;
    // Already silent: nothing more to silence.
    assert_eq!(server.silence_connections(), 0);
    hang_up(tls);
    hang_up(clear);
    drop(h1);
    let s = server.wait_closed(3).await;
    assert_eq!(s.closed_for(CloseReason::Peer), 3);
    // A new connection is not silent.
    assert_eq!(h2c(&server).await.get("/").await.body, hello(5));
}

#[tokio::test]
async fn close_all_closes_a_silent_connection_without_a_word() {
    let server = TestServer::start(Config::new());
    let c = h2c(&server).await;
    c.get("/").await;
    server.silence_connections();
    assert_eq!(server.close_all_connections(), 1);
    let s = server.wait_closed(1).await;
    assert_eq!((s.closed_for(CloseReason::CloseAll), s.h2_goaways), (1, 0));
    let end = timeout(LIMIT, c.conn).await.unwrap().unwrap();
    assert!(
        end.is_ok() || !end.unwrap_err().is_go_away(),
        "a GOAWAY came"
    );
}

#[tokio::test]
async fn silence_after_one_reply_by_query() {
    let server = TestServer::start(Config::new());
    let c = h2c(&server).await;
    assert_eq!(c.get("/?silence=1&size=3").await.body, b"hel");
    wait_silent(&server, 1).await;
    expect_no_answer(&c, "/").await;

    let mut h1 = Client::connect(&server).await;
    assert_eq!(h1.get("/?silence=1").await.body, hello(5));
    h1.send("GET / HTTP/1.1\r\n\r\n").await;
    h1.expect_silence(QUIET).await;
    wait_silent(&server, 2).await;
    drop(h1);
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_for(CloseReason::Peer), 1);
    assert_eq!(s.requests, 2);
}

#[tokio::test]
async fn a_dropped_response_stream_resets_only_that_stream() {
    let server = TestServer::start(Config::new());
    let c = h2c(&server).await;
    let resp = c.start(Method::GET, "/?fault=endless", None).await.unwrap();
    let mut body = resp.into_body();
    let mut got = 0;
    while got < 100_000 {
        let chunk = body.data().await.unwrap().unwrap();
        got += chunk.len();
        let _ = body.flow_control().release_capacity(chunk.len());
    }
    drop(body);
    let s = server
        .wait_for(LIMIT, |s| {
            s.h2_streams_reset == 1 && s.conns[&1].streams_open == 0
        })
        .await
        .unwrap();
    assert_eq!(s.conns[&1].streams_reset, 1);
    // The connection carries on.
    assert_eq!(c.get("/").await.body, hello(5));
    assert_eq!(server.stats().open, 1);
}

#[tokio::test]
async fn a_stalled_stream_holds_only_itself() {
    let server = TestServer::start(Config::new());
    let c = h2c(&server).await;
    let stalled = {
        let streams = c.streams.clone();
        tokio::spawn(async move { streams.call(Method::GET, "/?fault=stall", None).await })
    };
    server
        .wait_for(LIMIT, |s| {
            s.conns.get(&1).is_some_and(|c| c.streams_open == 1)
        })
        .await
        .unwrap();
    assert_eq!(c.get("/").await.body, hello(5));
    let s = server.stats();
    assert_eq!(
        (s.conns[&1].streams_open, s.conns[&1].state),
        (1, ConnState::Busy)
    );
    // Giving up on it resets it, and the server lets it go.
    stalled.abort();
    let s = server
        .wait_for(LIMIT, |s| s.conns[&1].streams_open == 0)
        .await
        .unwrap();
    assert_eq!(
        (s.h2_streams_reset, s.conns[&1].state),
        (1, ConnState::Idle)
    );
}

#[tokio::test]
async fn stall_after_bytes_then_truncate() {
    let server = TestServer::start(Config::new());
    let c = h2c(&server).await;
    let resp = c
        .start(Method::GET, "/?size=100&fault=stall_body&after=10", None)
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-length"], "100");
    let mut body = resp.into_body();
    let first = body.data().await.unwrap().unwrap();
    assert_eq!(&first[..], b"hellohello");
    assert!(timeout(QUIET, body.data()).await.is_err());
    drop(body);

    let resp = c
        .start(Method::GET, "/?size=100&fault=truncate&after=10", None)
        .await
        .unwrap();
    let mut body = resp.into_body();
    assert_eq!(&body.data().await.unwrap().unwrap()[..], b"hellohello");
    let err = body.data().await.unwrap().unwrap_err();
    assert_eq!(reason(&err), Some(Reason::INTERNAL_ERROR));
    let resp = c
        .start(Method::GET, "/?fault=close_after_headers", None)
        .await
        .unwrap();
    let err = crate::h2client::read_all(resp.into_body())
        .await
        .unwrap_err();
    assert_eq!(reason(&err), Some(Reason::INTERNAL_ERROR));
    // Stream faults: the connection is fine.
    assert_eq!(c.get("/").await.body, hello(5));
    assert_eq!(server.stats().closed, 0);
}

#[tokio::test]
async fn connection_faults_take_every_stream() {
    let server = TestServer::start(Config::new());
    for (fault, n) in [("close", 1), ("reset", 2)] {
        let c = h2c(&server).await;
        let stalled = {
            let streams = c.streams.clone();
            tokio::spawn(async move { streams.call(Method::GET, "/?fault=stall", None).await })
        };
        let err = c
            .call(Method::GET, &format!("/?fault={fault}"), None)
            .await
            .unwrap_err();
        assert!(err.is_io() || err.reason().is_some(), "{fault}: {err:?}");
        let other = timeout(LIMIT, stalled).await.unwrap().unwrap();
        assert!(other.is_err(), "{fault}: the stalled stream survived");
        let s = server.wait_closed(n).await;
        assert_eq!(s.closed_for(CloseReason::Fault), n);
    }
}

#[tokio::test]
async fn reply_close_is_a_goaway() {
    let server = TestServer::start(Config::new());
    let c = h2c(&server).await;
    assert_eq!(c.get("/?close=1").await.body, hello(5));
    timeout(LIMIT, c.conn).await.unwrap().unwrap().ok();
    let s = server.wait_closed(1).await;
    assert_eq!(
        (s.closed_for(CloseReason::ReplyClose), s.h2_goaways),
        (1, 1)
    );
}

#[tokio::test]
async fn max_requests_per_conn_applies_to_streams() {
    let server = TestServer::start(Config::new().max_requests_per_conn(1));
    let c = h2c(&server).await;
    assert_eq!(c.get("/").await.body, hello(5));
    timeout(LIMIT, c.conn).await.unwrap().unwrap().ok();
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_for(CloseReason::MaxRequests), 1);
}

#[tokio::test]
async fn keep_alive_timeout_and_close_idle() {
    let server = TestServer::start(Config::new().keep_alive_timeout(Duration::from_millis(50)));
    let c = h2c(&server).await;
    c.get("/").await;
    timeout(LIMIT, c.conn).await.unwrap().unwrap().ok();
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_for(CloseReason::KeepAliveTimeout), 1);

    let server = TestServer::start(Config::new());
    let idle = h2c(&server).await;
    idle.get("/").await;
    let busy = h2c(&server).await;
    let stalled = {
        let streams = busy.streams.clone();
        tokio::spawn(async move { streams.call(Method::GET, "/?fault=stall", None).await })
    };
    server
        .wait_for(LIMIT, |s| {
            s.idle == 1 && s.conns.get(&2).is_some_and(|c| c.streams_open == 1)
        })
        .await
        .unwrap();
    assert_eq!(server.close_idle_connections(), 1);
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_for(CloseReason::CloseIdle), 1);
    assert_eq!(s.conns[&2].state, ConnState::Busy);
    stalled.abort();
}

#[tokio::test]
async fn upload_to_a_stream_the_server_refuses_mid_body() {
    // A large POST the server answers early with a reset: the client's
    // send side fails, the connection lives.
    let server = TestServer::start(Config::new());
    let c = h2c(&server).await;
    let body = Bytes::from(vec![7u8; 1 << 20]);
    let err = c
        .call(Method::POST, "/?fault=rst_stream", Some(body))
        .await
        .unwrap_err();
    assert_eq!(reason(&err), Some(Reason::INTERNAL_ERROR));
    assert_eq!(c.get("/").await.body, hello(5));
}

#[test]
fn a_panicking_stream_fails_the_test_at_drop() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = TestServer::start(Config::new());
    rt.block_on(async {
        let c = h2c(&server).await;
        assert!(c.call(Method::GET, "/?fault=panic", None).await.is_err());
        let s = server.wait_closed(1).await;
        assert_eq!(s.closed_for(CloseReason::Panicked), 1);
    });
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(server)));
    let msg = dropped.expect_err("drop should panic");
    let msg = msg.downcast_ref::<String>().expect("a formatted message");
    assert!(msg.contains("fault=panic requested"), "{msg}");
}
