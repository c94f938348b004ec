//! Scenarios 1–7: reuse and keep-alive.

use std::time::Duration;

use leakless::{Client, CloseReason};

use crate::support::*;

#[tokio::test]
async fn sequential_requests_share_one_connection() {
    let server = TestServer::start(Config::new());
    let client = Client::new();
    for _ in 0..3 {
        let res = client.get(server.url("/")).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), "hello");
    }
    assert_eq!(server.stats().accepted, 1);
    let s = client.stats().total;
    assert_eq!((s.created, s.reused, s.idle, s.busy), (1, 2, 1, 0));
    assert_consistent(&s);
}

#[tokio::test]
async fn disabled_keep_alives_use_new_connections_and_send_close_once() {
    let server = TestServer::start(Config::new());
    let client = Client::builder().disable_keep_alives(true).build().unwrap();
    for _ in 0..3 {
        let res = client
            .get(server.url("/"))
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

#[tokio::test]
async fn connection_close_response_is_not_reused() {
    let server = TestServer::start(Config::new());
    let client = Client::new();
    let res = client.get(server.url("/?close=1")).send().await.unwrap();
    res.bytes().await.unwrap();
    let s = client.stats().total;
    assert_eq!((s.open, s.closed), (0, 1));
    assert_eq!(s.closed_by.get(CloseReason::NotReusable), 1);
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

async fn body_read_to_end_returns_connection_before_drop(path: &str) {
    let server = TestServer::start(Config::new());
    let client = Client::new();
    let mut res = client.get(server.url(path)).send().await.unwrap();
    let mut n = 0;
    while let Some(chunk) = res.chunk().await.unwrap() {
        n += chunk.len();
    }
    assert_eq!(n, 20000);
    // `res` is still alive: the connection went back when the end was read.
    let s = client.stats().total;
    assert_eq!((s.idle, s.busy), (1, 0), "{s:?}");
    drop(res);
}

#[tokio::test]
async fn reading_to_end_returns_connection_content_length() {
    body_read_to_end_returns_connection_before_drop("/?size=20000").await;
}

#[tokio::test]
async fn reading_to_end_returns_connection_chunked() {
    body_read_to_end_returns_connection_before_drop("/?size=20000&chunked=1&chunk=3000").await;
}

#[tokio::test]
async fn dropped_body_within_drain_limit_is_reused() {
    let server = TestServer::start(Config::new());
    let client = Client::new();
    let res = client.get(server.url("/?size=10000")).send().await.unwrap();
    drop(res);
    bounded(async {
        while client.stats().total.idle != 1 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    client
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(server.stats().accepted, 1);
}

#[tokio::test]
async fn dropped_body_over_drain_limit_is_closed() {
    let server = TestServer::start(Config::new());
    let client = Client::new();
    let res = client
        .get(server.url("/?size=200000"))
        .send()
        .await
        .unwrap();
    drop(res);
    let s = client.stats().total;
    assert_eq!((s.open, s.closed_by.get(CloseReason::DrainFailed)), (0, 1));
    server.wait_closed(1).await;
}

#[tokio::test]
async fn dropped_endless_body_closes_the_tcp_connection() {
    let server = TestServer::start(Config::new());
    let client = Client::new();
    let mut res = client
        .get(server.url("/?fault=endless"))
        .send()
        .await
        .unwrap();
    res.chunk().await.unwrap().expect("some body");
    drop(res);
    // The drain gives up past drain_limit; the server's writes then fail.
    server.wait_write_failures(1).await;
    server.wait_closed(1).await;
    let s = client.stats().total;
    assert_eq!((s.open, s.closed_by.get(CloseReason::DrainFailed)), (0, 1));
}

#[tokio::test]
async fn server_closed_idle_connection_is_replaced() {
    let server = TestServer::start(Config::new());
    let client = Client::new();
    client
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    server.wait_idle(1).await;
    assert_eq!(server.close_idle_connections(), 1);
    server.wait_closed(1).await;
    let res = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "hello");
    let s = client.stats().total;
    assert_eq!((s.open, s.idle, s.created), (1, 1, 2), "{s:?}");
    assert_consistent(&s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_closing_after_every_response_under_500_concurrent_requests() {
    let server = TestServer::start(Config::new().max_requests_per_conn(1));
    let client = Client::new();
    let tasks: Vec<_> = (0..500)
        .map(|_| {
            let (client, url) = (client.clone(), server.url("/"));
            tokio::spawn(async move { client.get(url).send().await?.bytes().await })
        })
        .collect();
    for t in tasks {
        assert_eq!(bounded(t).await.unwrap().unwrap(), "hello");
    }
    let s = client.stats().total;
    assert_eq!((s.open, s.busy, s.waiting), (0, 0, 0), "{s:?}");
    assert_consistent(&s);
}

#[tokio::test]
async fn request_racing_the_idle_timeout_does_not_fail() {
    let server = TestServer::start(Config::new().keep_alive_timeout(Duration::from_millis(30)));
    let client = Client::new();
    for i in 0..40u64 {
        client
            .get(server.url("/"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        // Idle for just about the server's keep-alive: the close races the reuse.
        tokio::time::sleep(Duration::from_micros(27_000 + i * 150)).await;
    }
    client
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
}
