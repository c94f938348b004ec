//! HTTP/2: streams share connections up to the server's limit, dead
//! connections are found by ping, GOAWAY and REFUSED_STREAM are retried, a
//! dropped response resets only its stream.
//! Each runs over TLS (h2 by ALPN) and over TCP (h2c, prior knowledge);
//! the scenarios shared with HTTP/1.1 (reuse, idle timeout, dropping the
//! client, ...) run over h2 in their own modules.

use std::time::Duration;

use leakless::{Client, CloseReason};

use crate::support::*;

async fn get_all(
    client: &Client,
    urls: Vec<String>,
) -> Vec<Result<leakless::Bytes, leakless::Error>> {
    let tasks: Vec<_> = urls
        .into_iter()
        .map(|u| {
            let c = client.clone();
            tokio::spawn(async move { c.get(u).send().await?.bytes().await })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(bounded(t).await.unwrap());
    }
    out
}

async fn concurrent_requests_never_race_two_dials_for_the_first_connection(mode: Mode) {
    let server = mode.server(Config::new().latency(Duration::from_millis(20)));
    let client = mode.client(&server, Client::builder());
    let results = get_all(&client, (0..20).map(|_| mode.url(&server, "/")).collect()).await;
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(
        server.stats().accepted,
        1,
        "one connection carries all 20 streams"
    );
    assert_eq!(client.stats().total.created, 1);
}
per_mode!(multi_thread concurrent_requests_never_race_two_dials_for_the_first_connection: h2, h2c);

async fn streams_fill_the_servers_limit_then_a_second_connection_opens_within_the_cap(mode: Mode) {
    let server = mode.server(
        Config::new()
            .h2_max_concurrent_streams(4)
            .latency(Duration::from_millis(100)),
    );
    let client = mode.client(&server, Client::builder().max_conns_per_host(2));
    // All 8 sent at once; each response is held unread, so its stream
    // stays open on the client's side until the test has looked (a moment
    // when all 8 are merely in flight can pass unseen on a loaded machine).
    let sent: Vec<_> = (0..8)
        .map(|i| {
            let (c, u) = (client.clone(), mode.url(&server, &format!("/?n={i}")));
            tokio::spawn(async move { c.get(u).send().await })
        })
        .collect();
    let mut held = Vec::new();
    for t in sent {
        held.push(bounded(t).await.unwrap().unwrap());
    }
    // Two connections, each at its limit of 4.
    let s = client.stats().total;
    assert_eq!(
        (s.open, s.busy, s.h2_streams),
        (2, 2, 8),
        "a busy h2 connection counts once: {s:?}"
    );
    for res in held {
        assert_eq!(bounded(res.bytes()).await.unwrap(), "hello");
    }
    let st = server.stats();
    assert_eq!(st.accepted, 2);
    assert!(
        st.conns.values().all(|c| c.streams_open_max <= 4),
        "never past the server's limit"
    );
}
per_mode!(multi_thread streams_fill_the_servers_limit_then_a_second_connection_opens_within_the_cap: h2, h2c);

async fn ten_concurrent_requests_at_cap_one_over_h2_make_one_dial_and_respect_the_stream_limit(
    mode: Mode,
) {
    let server = mode.server(
        Config::new()
            .h2_max_concurrent_streams(3)
            .latency(Duration::from_millis(5)),
    );
    let client = mode.client(&server, Client::builder().max_conns_per_host(1));
    let results = get_all(&client, (0..10).map(|_| mode.url(&server, "/")).collect()).await;
    assert!(results.iter().all(|r| r.is_ok()));
    let st = server.stats();
    assert_eq!(st.accepted, 1);
    assert!(
        st.conns.values().all(|c| c.streams_open_max <= 3),
        "never past the server's limit of 3 streams: {st:?}"
    );
    assert_eq!(client.stats().total.created, 1);
}
per_mode!(multi_thread ten_concurrent_requests_at_cap_one_over_h2_make_one_dial_and_respect_the_stream_limit: h2, h2c);

async fn a_connection_whose_peer_stops_answering_pings_is_closed_and_not_handed_out_again(
    mode: Mode,
) {
    let server = mode.server(Config::new());
    let client = mode.client(
        &server,
        Client::builder()
            .http2_keep_alive_interval(Duration::from_millis(50))
            .http2_keep_alive_timeout(Duration::from_millis(100)),
    );
    get_body(&client, mode.url(&server, "/")).await;
    assert_eq!(server.silence_connections(), 1);
    wait_for_stats(&client, "the dead connection closed", |s| s.open == 0).await;
    let s = client.stats().total;
    assert_eq!(s.closed_by.get(CloseReason::Timeout), 1, "{s:?}");
    assert_eq!(get_body(&client, mode.url(&server, "/")).await, "hello");
    assert_eq!(client.stats().total.created, 2);
}
per_mode!(a_connection_whose_peer_stops_answering_pings_is_closed_and_not_handed_out_again: h2, h2c);

async fn a_response_header_timeout_on_a_dead_connection_leaves_no_poisoned_connection(mode: Mode) {
    let server = mode.server(Config::new());
    // No periodic pings: only the timeout itself may trigger the check.
    let client = mode.client(
        &server,
        Client::builder()
            .http2_keep_alive_interval(None)
            .http2_keep_alive_timeout(Duration::from_millis(100))
            .response_header_timeout(Duration::from_millis(150)),
    );
    get_body(&client, mode.url(&server, "/")).await;
    server.silence_connections();
    let err = client.get(mode.url(&server, "/")).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    wait_for_stats(&client, "the dead connection closed", |s| s.open == 0).await;
    assert_eq!(get_body(&client, mode.url(&server, "/")).await, "hello");
    let s = client.stats().total;
    assert_eq!((s.created, s.open), (2, 1), "{s:?}");
}
per_mode!(a_response_header_timeout_on_a_dead_connection_leaves_no_poisoned_connection: h2, h2c);

async fn goaway_sends_later_requests_to_a_new_connection(mode: Mode) {
    let server = mode.server(Config::new().h2_goaway_after(2));
    let client = mode.client(&server, Client::builder());
    for i in 0..5 {
        let res = client
            .get(mode.url(&server, &format!("/?n={i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.text().await.unwrap(), "hello", "request {i}");
    }
    let st = server.stats();
    assert!(st.h2_goaways >= 1 && st.accepted >= 2, "{st:?}");
    for conn in st.conns.values() {
        assert!(
            conn.streams <= 2,
            "no stream past GOAWAY's last-stream-id: {conn:?}"
        );
    }
}
per_mode!(goaway_sends_later_requests_to_a_new_connection: h2, h2c);

async fn refused_streams_are_retried_on_a_new_connection(mode: Mode) {
    let server = mode.server(Config::new().h2_refuse_streams(1));
    let client = mode.client(&server, Client::builder());
    // A POST too: REFUSED_STREAM guarantees the server did not process it.
    let res = client
        .post(mode.url(&server, "/?echo=1"))
        .body("once")
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "once");
    let s = client.stats().total;
    assert_eq!(s.retries, 1, "{s:?}");
    assert_eq!(server.stats().h2_streams_refused, 1);
}
per_mode!(refused_streams_are_retried_on_a_new_connection: h2, h2c);

async fn dropping_a_response_resets_only_its_stream(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let mut endless = client
        .get(mode.url(&server, "/?fault=endless"))
        .send()
        .await
        .unwrap();
    endless.chunk().await.unwrap().unwrap();
    let other = client
        .get(mode.url(&server, "/?size=100000"))
        .send()
        .await
        .unwrap();
    drop(endless);
    assert_eq!(other.bytes().await.unwrap().len(), 100_000);
    server.wait_until(|s| s.h2_streams_reset >= 1).await;
    let s = client.stats().total;
    assert_eq!(
        (s.created, s.open, s.h2_streams),
        (1, 1, 0),
        "the connection carries on: {s:?}"
    );
    assert_eq!(server.stats().accepted, 1);
}
per_mode!(dropping_a_response_resets_only_its_stream: h2, h2c);

async fn large_bodies_flow_both_ways_under_flow_control(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let big = vec![b'x'; 3 << 20];
    let res = client
        .post(mode.url(&server, "/?echo=1"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.bytes().await.unwrap().len(), big.len());
    let res = client
        .get(mode.url(&server, "/?size=5000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.bytes().await.unwrap().len(), 5_000_000);
}
per_mode!(large_bodies_flow_both_ways_under_flow_control: h2, h2c);

/// Ten requests in flight on one connection when the server says GOAWAY
/// after five streams: the other five are refused (REFUSED_STREAM,
/// unprocessed) and must be retried on a new connection, not on the one
/// that is going away.
async fn streams_refused_by_a_goaway_are_retried_on_a_new_connection(mode: Mode) {
    let server = mode.server(
        Config::new()
            .h2_goaway_after(5)
            .latency(Duration::from_millis(20)),
    );
    let client = mode.client(&server, Client::builder());
    // The others wait for the first request's dial (never two dials racing
    // for a host's first h2 connection), then share its connection.
    let results = get_all(
        &client,
        (0..10)
            .map(|i| mode.url(&server, &format!("/?n={i}")))
            .collect(),
    )
    .await;
    let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failed.is_empty(),
        "{failed:#?}\n{:?}\n{:?}",
        client.stats().total,
        server.stats()
    );
    let st = server.stats();
    assert_eq!((st.h2_streams_refused, st.accepted), (5, 2), "{st:?}");
    // Each refused request once; a request that found the connection
    // already going away before its stream started is retried too.
    let retries = client.stats().total.retries;
    assert!((5..=10).contains(&retries), "{retries}");
}
per_mode!(streams_refused_by_a_goaway_are_retried_on_a_new_connection: h2, h2c);
