//! `Client` as a tower `Service`, composed with tower's timeout and
//! concurrency limit: dropping a request at each layer (the timeout
//! firing, a caller giving up while queued at the limit, a response body
//! dropped unread) leaves no socket, slot or waiter behind.

use std::{future::poll_fn, task::Poll, time::Duration};

use leakless::Incoming;
use tower::{Service, ServiceBuilder, ServiceExt};

use crate::support::*;

fn get(url: String) -> http::Request<&'static str> {
    http::Request::get(url).body("").unwrap()
}

/// After `client` gave up a request: nothing in flight, and the kernel
/// holds exactly the connections the pool says are open.
async fn nothing_left_behind(mode: Mode, client: &Client, server: &TestServer) {
    let s = wait_for_stats(client, "the request's claim gone", nothing_in_flight).await;
    assert_consistent(&s);
    let held = wait_for(
        "the kernel to agree with the pool",
        || held_client_sockets(server).len(),
        |&n| n == s.open,
    )
    .await;
    if mode.is_h2() {
        assert_eq!(held, 1, "the shared connection stays");
    }
}

async fn a_tower_timeout_drops_the_request_and_leaves_nothing_behind(mode: Mode) {
    let server = mode.server(Config::new().latency(Duration::from_secs(5)));
    let client = mode.client(&server, Client::builder());
    let svc = ServiceBuilder::new()
        .timeout(Duration::from_millis(200))
        .service(client.clone());
    let e = bounded(svc.oneshot(get(mode.url(&server, "/"))))
        .await
        .unwrap_err();
    assert!(e.is::<tower::timeout::error::Elapsed>(), "{e}");
    nothing_left_behind(mode, &client, &server).await;
    let s = client.stats().total;
    if !mode.is_h2() {
        assert_eq!((s.open, s.closed), (0, 1), "{s:?}");
    }
}
per_mode!(a_tower_timeout_drops_the_request_and_leaves_nothing_behind: h1, h1_tls, h2);

async fn a_caller_dropped_while_queued_at_the_concurrency_limit_leaves_nothing(mode: Mode) {
    let server = mode.server(Config::new().latency(Duration::from_millis(300)));
    let client = mode.client(&server, Client::builder());
    let svc = ServiceBuilder::new()
        .concurrency_limit(1)
        .timeout(Duration::from_secs(10))
        .service(client.clone());
    let first = tokio::spawn(svc.clone().oneshot(get(mode.url(&server, "/"))));
    wait_for_stats(&client, "the first request in flight", |s| s.busy == 1).await;
    // A second caller waits for tower's permit, never reaching the pool,
    // and gives up there.
    let mut second = svc.clone();
    let ready =
        poll_fn(|cx| Poll::Ready(Service::<http::Request<&str>>::poll_ready(&mut second, cx)))
            .await;
    assert!(ready.is_pending(), "the limit holds it");
    let s = client.stats().total;
    assert_eq!((s.waiting, s.created), (0, 1), "{s:?}");
    drop(second);
    let res: http::Response<Incoming> = bounded(first).await.unwrap().unwrap();
    assert_eq!(res.status(), 200);
    drop(res);
    nothing_left_behind(mode, &client, &server).await;
    // The permit came back: the next request goes through.
    let res = bounded(svc.oneshot(get(mode.url(&server, "/"))))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    drop(res);
    nothing_left_behind(mode, &client, &server).await;
    assert_eq!(server.stats().requests, 2);
}
per_mode!(a_caller_dropped_while_queued_at_the_concurrency_limit_leaves_nothing: h1, h1_tls, h2);

async fn a_body_dropped_unread_behind_tower_closes_or_returns_its_connection(mode: Mode) {
    let server = mode.server(Config::new().body_size(1 << 20));
    let client = mode.client(&server, Client::builder());
    // `&Client` is a service too.
    let svc = ServiceBuilder::new().concurrency_limit(4).service(&client);
    let res = bounded(svc.oneshot(get(mode.url(&server, "/"))))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), mode.version());
    drop(res);
    nothing_left_behind(mode, &client, &server).await;
}
per_mode!(a_body_dropped_unread_behind_tower_closes_or_returns_its_connection: h1, h1_tls, h2);
