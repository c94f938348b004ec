//! HTTP/2 scenarios (31–33, and 9 for h2): streams share connections up to
//! the server's limit, dead connections are found by ping, GOAWAY and
//! REFUSED_STREAM are retried, a dropped response resets only its stream.

use std::time::Duration;

use leakless::{Client, CloseReason, Version};

use crate::support::*;

fn h2c(builder: leakless::ClientBuilder) -> Client {
    builder.http2_prior_knowledge().build().unwrap()
}

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

#[tokio::test]
async fn h2c_prior_knowledge_carries_sequential_requests_on_one_connection() {
    let server = TestServer::start(Config::new());
    let client = h2c(Client::builder());
    for _ in 0..3 {
        let res = client.get(server.url("/")).send().await.unwrap();
        assert_eq!(res.version(), Version::HTTP_2);
        assert_eq!(res.text().await.unwrap(), "hello");
    }
    let s = client.stats().total;
    assert_eq!(
        (s.created, s.reused, s.open, s.idle, s.h2_streams),
        (1, 2, 1, 1, 0),
        "{s:?}"
    );
    assert_consistent(&s);
    assert_eq!(server.stats().h2_conns, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_never_race_two_dials_for_the_first_connection() {
    let server = TestServer::start(Config::new().latency(Duration::from_millis(20)));
    let client = h2c(Client::builder());
    let results = get_all(&client, (0..20).map(|_| server.url("/")).collect()).await;
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(
        server.stats().accepted,
        1,
        "one connection carries all 20 streams"
    );
    assert_eq!(client.stats().total.created, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_fill_the_servers_limit_then_a_second_connection_opens_within_the_cap() {
    let server = TestServer::start(
        Config::new()
            .h2_max_concurrent_streams(4)
            .latency(Duration::from_millis(100)),
    );
    let client = h2c(Client::builder().max_conns_per_host(2));
    let urls: Vec<String> = (0..8).map(|i| server.url(&format!("/?n={i}"))).collect();
    let run = tokio::spawn({
        let client = client.clone();
        async move { get_all(&client, urls).await }
    });
    // While all 8 are in flight: two connections, each at its limit of 4.
    bounded(async {
        while client.stats().total.h2_streams != 8 {
            tokio::task::yield_now().await;
        }
    })
    .await;
    let s = client.stats().total;
    assert_eq!(
        (s.open, s.busy, s.h2_streams),
        (2, 2, 8),
        "a busy h2 connection counts once: {s:?}"
    );
    assert!(run.await.unwrap().iter().all(|r| r.is_ok()));
    let st = server.stats();
    assert_eq!(st.accepted, 2);
    assert!(
        st.conns.values().all(|c| c.streams_open_max <= 4),
        "never past the server's limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_requests_at_cap_one_over_h2_make_one_dial_and_respect_the_stream_limit() {
    let server = TestServer::start(
        Config::new()
            .h2_max_concurrent_streams(3)
            .latency(Duration::from_millis(5)),
    );
    let client = h2c(Client::builder().max_conns_per_host(1));
    let results = get_all(&client, (0..10).map(|_| server.url("/")).collect()).await;
    assert!(results.iter().all(|r| r.is_ok()));
    assert_eq!(server.stats().accepted, 1);
    assert_eq!(client.stats().total.created, 1);
}

#[tokio::test]
async fn a_connection_whose_peer_stops_answering_pings_is_closed_and_not_handed_out_again() {
    let server = TestServer::start(Config::new());
    let client = h2c(Client::builder()
        .http2_keep_alive_interval(Duration::from_millis(50))
        .http2_keep_alive_timeout(Duration::from_millis(100)));
    client
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(server.silence_connections(), 1);
    bounded(async {
        while client.stats().total.open != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let s = client.stats().total;
    assert_eq!(s.closed_by.get(CloseReason::Timeout), 1, "{s:?}");
    assert_eq!(
        client
            .get(server.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "hello"
    );
    assert_eq!(client.stats().total.created, 2);
}

#[tokio::test]
async fn a_response_header_timeout_on_a_dead_connection_leaves_no_poisoned_connection() {
    let server = TestServer::start(Config::new());
    // No periodic pings: only the timeout itself may trigger the check.
    let client = h2c(Client::builder()
        .http2_keep_alive_interval(None)
        .http2_keep_alive_timeout(Duration::from_millis(100))
        .response_header_timeout(Duration::from_millis(150)));
    client
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    server.silence_connections();
    let err = client.get(server.url("/")).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    bounded(async {
        while client.stats().total.open != 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert_eq!(
        client
            .get(server.url("/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "hello"
    );
    let s = client.stats().total;
    assert_eq!((s.created, s.open), (2, 1), "{s:?}");
}

#[tokio::test]
async fn goaway_sends_later_requests_to_a_new_connection() {
    let server = TestServer::start(Config::new().h2_goaway_after(2));
    let client = h2c(Client::builder());
    for i in 0..5 {
        let res = client
            .get(server.url(&format!("/?n={i}")))
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

#[tokio::test]
async fn refused_streams_are_retried_on_a_new_connection() {
    let server = TestServer::start(Config::new().h2_refuse_streams(1));
    let client = h2c(Client::builder());
    // A POST too: REFUSED_STREAM guarantees the server did not process it.
    let res = client
        .post(server.url("/?echo=1"))
        .body("once")
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "once");
    let s = client.stats().total;
    assert_eq!(s.retries, 1, "{s:?}");
    assert_eq!(server.stats().h2_streams_refused, 1);
}

#[tokio::test]
async fn dropping_a_response_resets_only_its_stream() {
    let server = TestServer::start(Config::new());
    let client = h2c(Client::builder());
    let mut endless = client
        .get(server.url("/?fault=endless"))
        .send()
        .await
        .unwrap();
    endless.chunk().await.unwrap().unwrap();
    let other = client
        .get(server.url("/?size=100000"))
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

#[tokio::test]
async fn large_bodies_flow_both_ways_under_flow_control() {
    let server = TestServer::start(Config::new());
    let client = h2c(Client::builder());
    let big = vec![b'x'; 3 << 20];
    let res = client
        .post(server.url("/?echo=1"))
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.bytes().await.unwrap().len(), big.len());
    let res = client
        .get(server.url("/?size=5000000"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.bytes().await.unwrap().len(), 5_000_000);
}

#[tokio::test]
async fn idle_h2_connection_closes_after_idle_conn_timeout() {
    let server = TestServer::start(Config::new());
    let client = h2c(Client::builder().idle_conn_timeout(Duration::from_secs(90)));
    client
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(91)).await;
    tokio::task::yield_now().await;
    tokio::time::resume();
    let s = client.stats().total;
    assert_eq!(
        (s.open, s.closed_by.get(CloseReason::IdleTimeout)),
        (0, 1),
        "{s:?}"
    );
    server.wait_closed(1).await;
}

#[tokio::test]
async fn dropping_the_client_closes_idle_h2_connections() {
    let server = TestServer::start(Config::new());
    let client = h2c(Client::builder());
    client
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    drop(client);
    server.wait_closed(1).await;
}
