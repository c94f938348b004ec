//! HTTP/2: prior knowledge and ALPN, the same replies as HTTP/1.1 (query
//! overrides, echo, large bodies under flow control), max concurrent
//! streams, and the accounting.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use leakless_testserver::{CloseReason, Config, ConnState, Reply, TestServer, Version};

use crate::client::{Client, LIMIT, hello};
use crate::h2client::{h2_tls, h2c};

#[tokio::test]
async fn prior_knowledge_on_the_cleartext_port() {
    let server = TestServer::start(Config::new());
    let c = h2c(&server).await;
    let r = c.get("/a?size=7").await;
    assert_eq!(r.head.status, 200);
    assert_eq!(r.body, hello(7));
    assert_eq!(r.header("content-length"), Some("7"));
    assert_eq!(r.header("x-conn-id"), Some("1"));
    assert_eq!(r.header("x-conn-seq"), Some("1"));
    assert_eq!(c.get("/").await.header("x-conn-seq"), Some("2"));
    // HTTP/1.1 still works next to it.
    assert_eq!(Client::connect(&server).await.get("/").await.body, hello(5));

    let s = server.stats();
    assert_eq!(
        (s.accepted, s.h2_conns, s.h2_streams, s.requests),
        (2, 1, 2, 3)
    );
    assert!(s.conns[&1].h2 && !s.conns[&2].h2);
    assert_eq!(s.conns[&1].requests, 2);
    let rec = &server.requests()[0];
    assert_eq!(rec.version, Version::Http2);
    assert_eq!(
        (rec.method.as_str(), rec.path.as_str()),
        ("GET", "/a?size=7")
    );
    assert_eq!(rec.authority.as_deref(), Some("localhost"));
    assert_eq!((rec.conn_id, rec.conn_seq, rec.tls), (1, 1, false));

    // The client's connection ends once its last handle is gone.
    drop(c);
    let s = server.wait_closed(2).await;
    assert_eq!(s.closed_for(CloseReason::Peer), 2);
}

#[tokio::test]
async fn alpn_h2_over_tls() {
    let server = TestServer::start(Config::new().tls(true));
    let c = h2_tls(&server).await;
    assert_eq!(c.get("/").await.body, hello(5));
    let s = server.stats();
    assert_eq!((s.tls_handshakes, s.h2_conns), (1, 1));
    assert_eq!(
        s.conns[&1].tls.as_ref().unwrap().alpn.as_deref(),
        Some("h2")
    );
    let rec = &server.requests()[0];
    assert!(rec.tls);
    assert_eq!(rec.version, Version::Http2);
}

#[tokio::test]
async fn prior_knowledge_can_be_turned_off() {
    let server = TestServer::start(Config::new().h2_prior_knowledge(false));
    let mut c = Client::connect(&server).await;
    c.send("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await;
    let r = c.response(false).await;
    assert_eq!(r.status, 400);
    let s = server.wait_closed(1).await;
    assert_eq!((s.h2_conns, s.bad_requests), (0, 1));
}

#[tokio::test]
async fn query_overrides_and_routes() {
    let server = TestServer::start(
        Config::new().route("/slow", Reply::new().latency(Duration::from_millis(50))),
    );
    let c = h2c(&server).await;
    let r = c.get("/?status=503&header=X-A:b&size=3").await;
    assert_eq!(
        (r.head.status.as_u16(), r.body.as_slice()),
        (503, &b"hel"[..])
    );
    assert_eq!(r.header("x-a"), Some("b"));
    let r = c.get("/?status=204").await;
    assert_eq!((r.head.status.as_u16(), r.body.len()), (204, 0));
    assert_eq!(r.header("content-length"), None);
    // Chunked framing has no meaning on HTTP/2: no length, same bytes.
    let r = c.get("/?size=10&chunked=1&chunk=3").await;
    assert_eq!((r.header("content-length"), &r.body), (None, &hello(10)));
    let r = c.call(Method::HEAD, "/?size=9", None).await.unwrap();
    assert_eq!((r.header("content-length"), r.body.len()), (Some("9"), 0));
    let r = c.get("/?size=0").await;
    assert_eq!((r.header("content-length"), r.body.len()), (Some("0"), 0));
    let r = c.get("/?size=x").await;
    assert_eq!(r.head.status, 400);
    assert_eq!(r.body, b"size=x: not a number\n");
    let r = c.get("/?raw=abc").await;
    assert_eq!(r.head.status, 501);
    let t = Instant::now();
    c.get("/slow").await;
    assert!(t.elapsed() >= Duration::from_millis(50));
}

#[tokio::test]
async fn large_bodies_both_ways_under_flow_control() {
    let server = TestServer::start(Config::new());
    let c = h2c(&server).await;
    const MIB: usize = 1 << 20;
    let body: Bytes = (0..MIB).map(|i| (i % 251) as u8).collect();
    let r = c
        .call(Method::POST, "/?echo=1", Some(body.clone()))
        .await
        .unwrap();
    assert_eq!(r.header("content-length"), Some("1048576"));
    assert!(r.body == body, "echoed body differs");
    assert_eq!(server.requests()[0].body.len(), MIB);
    let r = c.get(&format!("/?size={MIB}")).await;
    assert!(r.body == hello(MIB), "{} bytes", r.body.len());
}

#[tokio::test]
async fn max_concurrent_streams_is_advertised_and_held() {
    let server = TestServer::start(Config::new().h2_max_concurrent_streams(2));
    let c = h2c(&server).await;
    // The client opens streams before it has the server's SETTINGS; a first
    // exchange makes sure it knows the limit (else the h2 crate refuses the
    // excess on the server, as RFC 9113 allows).
    c.get("/").await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let streams = c.streams.clone();
        tasks.push(tokio::spawn(async move {
            streams.get("/?latency_ms=30").await.head.status
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let s = server.stats();
    assert_eq!((s.h2_streams, s.requests), (7, 7));
    assert_eq!(s.conns[&1].streams_open_max, 2);
    assert_eq!(s.conns[&1].streams_open, 0);
    assert_eq!(s.conns[&1].state, ConnState::Idle);
}

#[tokio::test]
async fn pings_are_answered_and_counted() {
    let server = TestServer::start(Config::new());
    let mut c = h2c(&server).await;
    c.get("/").await;
    assert!(c.ping(LIMIT).await.is_some());
    assert!(c.ping(LIMIT).await.is_some());
    // The pong comes after the PING was read: counted already.
    let s = server.stats();
    assert_eq!((s.h2_pings, s.conns[&1].pings), (2, 2));
}

#[tokio::test]
async fn close_all_says_goaway_then_closes() {
    let server = TestServer::start(Config::new());
    let c = h2c(&server).await;
    c.get("/").await;
    assert_eq!(server.close_all_connections(), 1);
    // The client's connection ends: GOAWAY(NO_ERROR), then EOF.
    let end = tokio::time::timeout(LIMIT, c.conn).await.unwrap().unwrap();
    assert!(
        end.is_ok() || end.unwrap_err().is_go_away(),
        "connection ended badly"
    );
    let s = server.wait_closed(1).await;
    assert_eq!((s.closed_for(CloseReason::CloseAll), s.h2_goaways), (1, 1));
}
