//! Per-host cap, FIFO waiters, idle caps, timers on idle connections,
//! and the cap as the kernel sees it; over HTTP/1.1, HTTP/1.1 over TLS and
//! HTTP/2. An h2 connection is one slot however many streams
//! it carries, so the h2 runs that need a request to wait for a slot cap
//! the server at one stream per connection.

use std::time::Duration;

use leakless::{Client, CloseReason, Phase};
use leakless_testserver::ConnFault;

use crate::support::*;

/// A server on which a second concurrent request needs a second
/// connection in every mode: on h2, one stream per connection.
fn one_at_a_time(mode: Mode) -> TestServer {
    mode.server(Config::new().h2_max_concurrent_streams(1))
}

/// On h2 the ten are streams multiplexed on the one connection.
async fn ten_concurrent_requests_at_cap_one_make_exactly_one_dial(mode: Mode) {
    let server = mode.server(Config::new().latency(Duration::from_millis(2)));
    let client = mode.client(&server, Client::builder().max_conns_per_host(1));
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (client, url) = (client.clone(), mode.url(&server, "/"));
            tokio::spawn(async move { client.get(url).send().await?.bytes().await })
        })
        .collect();
    for t in tasks {
        bounded(t).await.unwrap().unwrap();
    }
    let st = server.stats();
    assert_eq!(st.accepted, 1);
    assert_eq!(st.tls_handshakes, u64::from(mode.is_tls()));
    let s = client.stats().total;
    assert_eq!((s.created, s.reused), (1, 9));
    if mode.is_h2() {
        assert_eq!(st.h2_streams, 10);
        assert!(
            st.conns.values().all(|c| c.streams_open_max > 1),
            "the streams overlapped: {st:?}"
        );
    }
}
per_mode!(multi_thread ten_concurrent_requests_at_cap_one_make_exactly_one_dial: h1, h1_tls, h2, h2c);

/// The dial hangs in the TCP connect (h1: a full accept queue), or in the
/// TLS or HTTP/2 handshake (a server that accepts and never answers).
async fn dial_in_progress_counts_toward_cap(mode: Mode) {
    let listener = SaturatedListener::new();
    let server = mode.server(Config::new().conn_fault(ConnFault::AcceptAndStall));
    let url = match mode {
        Mode::H1 => format!("http://{}/", listener.addr()),
        _ => mode.url(&server, "/"),
    };
    let client = mode.client(&server, Client::builder().max_conns_per_host(1));
    let first = tokio::spawn({
        let (c, u) = (client.clone(), url.clone());
        async move { c.get(u).send().await.map(drop) }
    });
    wait_for_stats(&client, "one dial", |s| s.dialing == 1).await;
    let second = tokio::spawn({
        let (c, u) = (client.clone(), url.clone());
        async move { c.get(u).send().await.map(drop) }
    });
    wait_for_stats(&client, "one waiter", |s| s.waiting == 1).await;
    let s = client.stats().total;
    assert_eq!(
        (s.open, s.dialing, s.waiting, s.created),
        (1, 1, 1, 1),
        "{s:?}"
    );
    first.abort();
    second.abort();
    let _ = first.await;
    let _ = second.await;
    let s = client.stats().total;
    assert_eq!((s.open, s.dialing, s.waiting), (0, 0, 0), "{s:?}");
    assert_consistent(&s);
    if mode != Mode::H1 {
        assert_eq!(server.wait_closed(1).await.accepted, 1);
    }
}
per_mode!(dial_in_progress_counts_toward_cap: h1, h1_tls, h2, h2c);

// A canceled waiter frees nothing it did not take: see
// cancel::dropped_while_waiting_for_a_slot_takes_nothing.

/// On h2 what is handed off is the connection's one stream.
async fn waiters_are_served_first_come_first_served_by_direct_hand_off(mode: Mode) {
    let server = one_at_a_time(mode);
    let client = mode.client(&server, Client::builder().max_conns_per_host(1));
    let held = client.get(mode.url(&server, "/")).send().await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for i in 0..5 {
        let url = mode.url(&server, &format!("/?n={i}"));
        let (c, u, tx) = (client.clone(), url, tx.clone());
        tasks.push(tokio::spawn(async move {
            let res = c.get(u).send().await.unwrap();
            tx.send(i).unwrap();
            res.bytes().await.unwrap();
        }));
        wait_for_stats(&client, "the waiters so far", |s| s.waiting == i + 1).await;
    }
    held.bytes().await.unwrap();
    for t in tasks {
        bounded(t).await.unwrap();
    }
    let order: Vec<usize> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert_eq!(order, [0, 1, 2, 3, 4]);
    let s = client.stats().total;
    assert_eq!(
        (s.created, s.reused),
        (1, 5),
        "handed straight to each waiter: {s:?}"
    );
    assert_eq!(server.stats().accepted, 1);
}
per_mode!(waiters_are_served_first_come_first_served_by_direct_hand_off: h1, h1_tls, h2, h2c);

/// On h2, "busy 1" is the one connection, its only stream taken.
async fn pool_wait_timeout_error_says_host_limit_and_counts(mode: Mode) {
    let server = one_at_a_time(mode);
    let client = mode.client(
        &server,
        Client::builder()
            .max_conns_per_host(1)
            .pool_wait_timeout(Duration::from_secs(5)),
    );
    let held = client.get(mode.url(&server, "/")).send().await.unwrap();
    // Only a timer can end the wait now: let tokio's clock jump to it.
    tokio::time::pause();
    let err = client.get(mode.url(&server, "/")).send().await.unwrap_err();
    tokio::time::resume();
    assert!(err.is_pool_wait() && err.is_timeout(), "{err:?}");
    assert_eq!(err.phase(), Some(Phase::PoolWait));
    let state = err.pool_state().unwrap();
    assert_eq!(
        (state.limit, state.busy, state.idle, state.waiting),
        (1, 1, 0, 1)
    );
    let msg = err.to_string();
    let host = server.addr().to_string();
    for part in [
        host.as_str(),
        "limit 1",
        "busy 1",
        "idle 0",
        "waiting 1",
        "max_conns_per_host",
    ] {
        assert!(msg.contains(part), "{part:?} missing from: {msg}");
    }
    assert_eq!(client.stats().total.waiting, 0);
    drop(held);
}
per_mode!(pool_wait_timeout_error_says_host_limit_and_counts: h1, h1_tls, h2, h2c);

// Not h2: three concurrent responses are three streams on one shared
// connection, and the idle caps govern HTTP/1.1's idle lists (as Go's
// MaxIdleConns* do).
async fn three_responses_with_idle_cap_two_leave_two_idle(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder().max_idle_conns_per_host(2));
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(client.get(mode.url(&server, "/")).send().await.unwrap());
    }
    assert_eq!(client.stats().total.busy, 3);
    for res in held {
        res.bytes().await.unwrap();
    }
    let s = client.stats().total;
    assert_eq!(
        (s.idle, s.open, s.closed_by.get(CloseReason::PoolFull)),
        (2, 2, 1),
        "{s:?}"
    );
    server.wait_closed(1).await;
}
per_mode!(three_responses_with_idle_cap_two_leave_two_idle: h1, h1_tls);

// Not h2: see three_responses_with_idle_cap_two_leave_two_idle.
async fn global_idle_cap_closes_the_least_recently_used_hosts_connection(mode: Mode) {
    let servers: Vec<TestServer> = (0..5).map(|_| mode.server(Config::new())).collect();
    let mut builder = Client::builder().max_idle_conns(4);
    for server in &servers {
        builder = mode.builder(server, builder);
    }
    let client = builder.build().unwrap();
    for server in &servers {
        get_body(&client, mode.url(server, "/")).await;
    }
    let stats = client.stats();
    assert_eq!(stats.total.idle, 4);
    let first = stats.host(&mode.host_key(servers[0].addr())).unwrap();
    assert_eq!(
        (first.idle, first.closed_by.get(CloseReason::PoolFull)),
        (0, 1),
        "{first:?}"
    );
    for server in &servers[1..] {
        assert_eq!(stats.host(&mode.host_key(server.addr())).unwrap().idle, 1);
    }
    servers[0].wait_closed(1).await;
}
per_mode!(global_idle_cap_closes_the_least_recently_used_hosts_connection: h1, h1_tls);

fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Background tasks a client runs while it holds `conns` h2 connections
/// and something is idle: the reaper, plus one driver per h2 connection.
fn client_tasks(mode: Mode, conns: usize) -> usize {
    1 + if mode.is_h2() { conns } else { 0 }
}

/// On h2 the two responses are two streams on one connection.
async fn idle_list_drains_after_idle_conn_timeout_and_the_reaper_stops(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(
        &server,
        Client::builder().idle_conn_timeout(Duration::from_secs(90)),
    );
    let (a, b) = (
        client.get(mode.url(&server, "/")).send().await.unwrap(),
        client.get(mode.url(&server, "/")).send().await.unwrap(),
    );
    a.bytes().await.unwrap();
    b.bytes().await.unwrap();
    let conns = if mode.is_h2() { 1 } else { 2 };
    assert_eq!(
        (client.stats().total.idle, alive_tasks()),
        (conns, client_tasks(mode, 1)),
        "one reaper runs (and on h2 the connection's driver)"
    );
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(89)).await;
    assert_eq!(client.stats().total.idle, conns, "not before the timeout");
    tokio::time::advance(Duration::from_secs(2)).await;
    tokio::task::yield_now().await;
    tokio::time::resume();
    let s = client.stats().total;
    assert_eq!(
        (s.idle, s.open, s.closed_by.get(CloseReason::IdleTimeout)),
        (0, 0, conns as u64),
        "{s:?}"
    );
    wait_for("no task left", alive_tasks, |&n| n == 0).await;
    server.wait_closed(conns as u64).await;
}
per_mode!(idle_list_drains_after_idle_conn_timeout_and_the_reaper_stops: h1, h1_tls, h2, h2c);

/// The server's idle clock starts when it has sent the response: a body
/// that came whole with its head counts as idle from its arrival, however
/// long the response was held before its body was read.
async fn a_connection_is_idle_from_when_its_whole_response_arrived(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(
        &server,
        Client::builder().idle_conn_timeout(Duration::from_secs(10)),
    );
    let res = client.get(mode.url(&server, "/")).send().await.unwrap();
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(8)).await;
    assert_eq!(res.text().await.unwrap(), "hello");
    assert_eq!(client.stats().total.idle, 1, "idle once its body is read");
    tokio::time::advance(Duration::from_secs(3)).await;
    tokio::task::yield_now().await;
    tokio::time::resume();
    let s = client.stats().total;
    assert_eq!(
        (s.idle, s.closed_by.get(CloseReason::IdleTimeout)),
        (0, 1),
        "11 s after the response arrived, 3 s after its body was read: {s:?}"
    );
    server.wait_closed(1).await;
}
per_mode!(a_connection_is_idle_from_when_its_whole_response_arrived: h1, h1_tls);

async fn dropping_the_client_closes_idle_connections_and_stops_the_reaper(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    get_body(&client, mode.url(&server, "/")).await;
    assert_eq!(alive_tasks(), client_tasks(mode, 1));
    drop(client);
    wait_for("no task left", alive_tasks, |&n| n == 0).await;
    server.wait_closed(1).await;
    let held = held_client_sockets(&server);
    assert!(held.is_empty(), "{held:?}");
}
per_mode!(dropping_the_client_closes_idle_connections_and_stops_the_reaper: h1, h1_tls, h2, h2c);

/// On h2 the connection closes as its last stream ends.
async fn a_body_outliving_its_client_is_closed_when_it_ends(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let res = client.get(mode.url(&server, "/")).send().await.unwrap();
    drop(client);
    assert_eq!(res.text().await.unwrap(), "hello");
    server.wait_closed(1).await;
    wait_for("no task left", alive_tasks, |&n| n == 0).await;
}
per_mode!(a_body_outliving_its_client_is_closed_when_it_ends: h1, h1_tls, h2, h2c);

async fn connection_older_than_max_conn_lifetime_is_not_reused(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(
        &server,
        Client::builder().max_conn_lifetime(Duration::from_secs(60)),
    );
    get_body(&client, mode.url(&server, "/")).await;
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(61)).await;
    tokio::time::resume();
    get_body(&client, mode.url(&server, "/")).await;
    let s = client.stats().total;
    assert_eq!(
        (s.created, s.reused, s.closed_by.get(CloseReason::Lifetime)),
        (2, 0, 1),
        "{s:?}"
    );
    assert_eq!(server.wait_closed(1).await.accepted, 2);
}
per_mode!(connection_older_than_max_conn_lifetime_is_not_reused: h1, h1_tls, h2, h2c);

/// On h2 the server allows two streams per connection, so the cap's four
/// connections carry eight requests and the other 32 wait.
async fn overload_never_holds_more_sockets_than_the_cap(mode: Mode) {
    const CAP: usize = 4;
    let server = mode.server(
        Config::new()
            .latency(Duration::from_millis(5))
            .h2_max_concurrent_streams(2),
    );
    let client = mode.client(
        &server,
        Client::builder()
            .max_conns_per_host(CAP)
            .pool_wait_timeout(Duration::from_millis(400)),
    );
    let server = std::sync::Arc::new(server);
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    let done = std::sync::Arc::new(AtomicBool::new(false));
    // The load runs until the server has served 200 requests (well past
    // the cap's worth at once) and the kernel has been sampled 20 times
    // meanwhile, or 10 s.
    let enough = std::sync::Arc::new(AtomicBool::new(false));
    let sampler = std::thread::spawn({
        let (done, enough, server) = (done.clone(), enough.clone(), server.clone());
        move || {
            let (mut max, mut samples) = (0, 0);
            while !done.load(Relaxed) {
                if samples >= 20 && server.stats().requests >= 200 {
                    enough.store(true, Relaxed);
                }
                let live = held_client_sockets(&server)
                    .iter()
                    .filter(|s| s.state == ESTABLISHED)
                    .count();
                max = max.max(live);
                samples += 1;
                // A sampling interval, not a wait for anything.
                std::thread::sleep(Duration::from_millis(1));
            }
            (max, samples)
        }
    });
    let tasks: Vec<_> = (0..CAP * 10)
        .map(|_| {
            let (c, u, enough) = (client.clone(), mode.url(&server, "/"), enough.clone());
            let until = std::time::Instant::now() + Duration::from_secs(10);
            tokio::spawn(async move {
                let mut outcomes = (0, 0);
                while !enough.load(Relaxed) && std::time::Instant::now() < until {
                    match c.get(u.clone()).send().await {
                        Ok(res) => {
                            res.bytes().await.unwrap();
                            outcomes.0 += 1;
                        }
                        Err(e) => {
                            assert!(e.is_pool_wait(), "only pool-wait timeouts may fail: {e}");
                            outcomes.1 += 1;
                        }
                    }
                }
                outcomes
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += bounded(t).await.unwrap().0;
    }
    done.store(true, Relaxed);
    let (max, samples) = sampler.join().unwrap();
    assert!(samples >= 5, "the sampler ran {samples} times");
    assert!(
        max <= CAP,
        "kernel saw {max} sockets to the server, cap {CAP}"
    );
    assert!(ok > 0);
    assert!(server.stats().accepted <= CAP as u64);
    let s = client.stats().total;
    assert!(s.open <= CAP && s.waiting == 0 && s.busy == 0, "{s:?}");
    assert_eq!(s.h2_streams, 0, "{s:?}");
}
per_mode!(multi_thread overload_never_holds_more_sockets_than_the_cap: h1, h1_tls, h2, h2c);
