//! Dropping a request at any await point leaves no socket, slot or waiter
//! behind; over HTTP/1.1, HTTP/1.1 over TLS and HTTP/2. On HTTP/1.1 the
//! drop closes the connection; on HTTP/2 it resets the request's stream
//! and leaves the shared connection idle: what must not remain there is a
//! stream counted in `h2_streams` or a slot. Many requests under random
//! cancellation and faults are the `stress` module's.
//!
//! "No socket" is checked in the kernel's table, socket by socket (each by
//! its 4-tuple: see `support::kernel`). A socket we closed first may linger
//! there as an orphan (FIN_WAIT*, TIME_WAIT: no process holds it): that is
//! the kernel finishing our close, not a leak. What must not be there is a
//! socket we still hold, or one the server closed and we did not
//! (CLOSE_WAIT).

mod stress;

use std::time::Duration;

use leakless::{Client, CloseReason, Response};
use leakless_testserver::ConnFault;
use tokio::task::JoinHandle;

use crate::support::*;

/// A request under way: its server, its client, the client's one socket,
/// and the task awaiting the response.
type Started = (TestServer, Client, KernelSocket, JoinHandle<Reply>);

type Reply = Result<Response, leakless::Error>;

/// Spawns a GET of `url`, returning the response to the test.
fn spawn_get(client: &Client, url: String) -> JoinHandle<Reply> {
    let client = client.clone();
    tokio::spawn(async move { client.get(url).send().await })
}

/// Aborts `task` (dropping its future where it stands) and waits for that.
async fn cancel<T: std::fmt::Debug>(task: JoinHandle<T>) {
    task.abort();
    let joined = bounded(task).await;
    assert!(joined.unwrap_err().is_cancelled());
}

/// The one connection the client has to `server`, in the kernel: held by
/// us and established.
fn our_only_connection(server: &TestServer) -> KernelSocket {
    let ours = held_client_sockets(server);
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0].state, ESTABLISHED, "{ours:?}");
    ours[0]
}

/// After a cancellation: nothing in flight, counts consistent, the one
/// close counted as canceled, and each of the client's sockets `before` it
/// gone from the kernel or an orphan finishing a close we started.
fn assert_nothing_left(client: &Client, before: &[KernelSocket]) {
    let s = client.stats().total;
    assert_eq!(
        (s.dialing, s.busy, s.waiting, s.open),
        (0, 0, 0, 0),
        "{s:?}"
    );
    assert_consistent(&s);
    assert_eq!(s.closed_by.get(CloseReason::Canceled), 1, "{s:?}");
    for now in sockets(before.iter().map(|s| s.local), before[0].remote) {
        assert!(now.is_our_finished_close(), "not a close of ours: {now:?}");
    }
}

/// No process holds `ours` any more (it may linger as an orphan), nor any
/// other connection to `server`.
fn assert_released(ours: &KernelSocket, server: &TestServer) {
    let held = held_client_sockets(server);
    assert!(held.is_empty(), "{held:?}");
    for now in sockets([ours.local], ours.remote) {
        assert!(!now.is_held(), "still held: {now:?}");
    }
}

/// After a cancellation on HTTP/2: the stream was reset (the server saw
/// it) and the stream alone is gone.
async fn assert_only_the_stream_is_gone(client: &Client, server: &TestServer) {
    bounded(server.wait_until(|s| s.h2_streams_reset >= 1)).await;
    assert_only_the_stream_is_released(client, server);
}

/// After a cancellation on HTTP/2: no stream, slot or waiter is left, and
/// the shared connection is open, idle, and in the kernel still ours.
fn assert_only_the_stream_is_released(client: &Client, server: &TestServer) -> KernelSocket {
    let s = client.stats().total;
    assert_eq!(
        (s.dialing, s.busy, s.waiting, s.h2_streams, s.open, s.idle),
        (0, 0, 0, 0, 1, 1),
        "{s:?}"
    );
    assert_eq!(s.closed, 0, "{s:?}");
    assert_consistent(&s);
    our_only_connection(server)
}

/// On h2 the server allows one stream per connection, so the second
/// request waits for the first one's.
async fn dropped_while_waiting_for_a_slot_takes_nothing(mode: Mode) {
    let server = mode.server(Config::new().h2_max_concurrent_streams(1));
    let client = mode.client(&server, Client::builder().max_conns_per_host(1));
    let held = client
        .get(mode.url(&server, "/?size=10"))
        .send()
        .await
        .unwrap();
    let waiter = spawn_get(&client, mode.url(&server, "/"));
    wait_for_stats(&client, "one waiter", |s| s.waiting == 1).await;
    cancel(waiter).await;

    let s = client.stats().total;
    assert_eq!(
        (s.dialing, s.busy, s.waiting, s.open, s.created),
        (0, 1, 0, 1, 1),
        "{s:?}"
    );
    assert_eq!(s.closed, 0, "{s:?}");
    assert_consistent(&s);
    our_only_connection(&server);

    // The held connection comes back and serves the next request.
    held.bytes().await.unwrap();
    assert_eq!(get_body(&client, mode.url(&server, "/")).await, "hello");
    let s = client.stats().total;
    assert_eq!(
        (s.created, s.reused, s.open, s.idle, s.h2_streams),
        (1, 1, 1, 1, 0),
        "{s:?}"
    );
    assert_eq!(server.stats().accepted, 1);
}
per_mode!(dropped_while_waiting_for_a_slot_takes_nothing: h1, h1_tls, h2, h2c);

// One mode: the TCP connect comes before TLS and h2 and is the same for all.
#[tokio::test]
async fn dropped_mid_connect_closes_the_half_open_socket() {
    let listener = SaturatedListener::new();
    let client = Client::new();
    let req = spawn_get(&client, format!("http://{}/", listener.addr()));
    let dialing = listener.wait_for_the_dial().await;
    assert_eq!(client.stats().total.dialing, 1);

    cancel(req).await;
    // A socket closed in SYN_SENT leaves the table at once.
    listener.assert_no_dial_left(&dialing);
    assert_nothing_left(&client, &[dialing]);
}

/// The handshake (TLS, or h2c's preface) against a server that accepts and
/// never answers.
async fn dropped_mid_handshake_closes_the_socket(mode: Mode) {
    let server = mode.server(Config::new().conn_fault(ConnFault::AcceptAndStall));
    let client = mode.client(&server, Client::builder());
    let req = spawn_get(&client, mode.url(&server, "/"));
    // Accepted, so connected: the dial is in its TLS (or h2) handshake.
    server.wait_accepted(1).await;
    wait_for_stats(&client, "one dial", |s| s.dialing == 1).await;
    let ours = our_only_connection(&server);

    cancel(req).await;
    assert_nothing_left(&client, &[ours]);
    server.wait_closed(1).await;
}
per_mode!(dropped_mid_handshake_closes_the_socket: h1_tls, h2, h2c);

/// A request whose 16 MiB body, far larger than both socket buffers (h2:
/// than the stream's flow-control window), is stuck part-way: the
/// connection went deaf after a first reply (`silence=1`).
async fn start_a_stuck_write(mode: Mode) -> Started {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let res = client
        .get(mode.url(&server, "/?silence=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "hello");
    let ours = our_only_connection(&server);
    let body = vec![b'x'; 16 << 20];
    let req = tokio::spawn({
        let (client, url) = (client.clone(), mode.url(&server, "/upload"));
        async move { client.post(url).body(body).send().await }
    });
    (server, client, ours, req)
}

async fn dropped_mid_write_closes_the_socket(mode: Mode) {
    let (server, client, ours, req) = start_a_stuck_write(mode).await;
    // Busy means checked out; 16 MiB cannot fit, so once bytes sit unsent
    // in our queue the task is blocked mid-write.
    wait_for_stats(&client, "the upload's connection", |s| s.busy == 1).await;
    let now = wait_for(
        "bytes queued unsent on our socket",
        || sockets([ours.local], ours.remote),
        |s| s.first().is_some_and(|s| s.send_queue > 0),
    )
    .await;
    assert_eq!(now[0].state, ESTABLISHED, "{now:?}");

    cancel(req).await;
    // Our fd is gone. The kernel keeps the orphan in FIN_WAIT1 while it
    // still owes the (no longer reading) server the queued bytes: that is
    // the close in progress, owned by no one.
    assert_nothing_left(&client, &[ours]);
    // Our FIN waits behind the bytes the deaf server never reads: it cannot
    // see the close, so it is told to close.
    assert_eq!(server.close_all_connections(), 1);
    server.wait_closed(1).await;
}
per_mode!(dropped_mid_write_closes_the_socket: h1, h1_tls);

/// On HTTP/2 only the stream is given up; the deaf server cannot see its
/// reset, and the connection stays the client's until the client goes.
async fn dropped_mid_write_releases_the_stream_and_keeps_the_connection(mode: Mode) {
    let (server, client, ours, req) = start_a_stuck_write(mode).await;
    // The stream is open; its body cannot pass the window of a server that
    // reads nothing, so the task waits mid-write for credit.
    wait_for_stats(&client, "the upload's stream", |s| s.h2_streams == 1).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(!req.is_finished());
    cancel(req).await;
    // The deaf server cannot see the reset: only the client can tell.
    let now = assert_only_the_stream_is_released(&client, &server);
    assert_eq!(now.local, ours.local);
    // The connection is still ours (a deaf one, which keep-alive pings
    // would find): dropping the client closes it, and nothing remains.
    drop(client);
    server.wait_closed(1).await;
    assert_released(&ours, &server);
}
per_mode!(dropped_mid_write_releases_the_stream_and_keeps_the_connection: h2, h2c);

/// A request the server read and never answers, dropped while the client
/// awaits the response head.
async fn start_a_stalled_request(mode: Mode) -> Started {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let req = spawn_get(&client, mode.url(&server, "/?fault=stall"));
    server.wait_requests(1).await;
    wait_for_stats(&client, "the request's connection", |s| s.busy == 1).await;
    let ours = our_only_connection(&server);
    (server, client, ours, req)
}

async fn dropped_while_awaiting_headers_closes_the_connection(mode: Mode) {
    let (server, client, ours, req) = start_a_stalled_request(mode).await;
    cancel(req).await;
    assert_nothing_left(&client, &[ours]);
    let seen = server.wait_closed(1).await;
    assert_eq!(
        seen.closed_for(leakless_testserver::CloseReason::Peer),
        1,
        "{seen:?}"
    );
    // The next request dials afresh and works.
    assert_eq!(get_body(&client, mode.url(&server, "/")).await, "hello");
    assert_eq!(server.stats().accepted, 2);
}
per_mode!(dropped_while_awaiting_headers_closes_the_connection: h1, h1_tls);

async fn dropped_while_awaiting_headers_resets_only_the_stream(mode: Mode) {
    let (server, client, ours, req) = start_a_stalled_request(mode).await;
    cancel(req).await;
    assert_only_the_stream_is_gone(&client, &server).await;
    assert_eq!(our_only_connection(&server).local, ours.local);
    // The connection carries on.
    assert_eq!(get_body(&client, mode.url(&server, "/")).await, "hello");
    assert_eq!(server.stats().accepted, 1);
}
per_mode!(dropped_while_awaiting_headers_resets_only_the_stream: h2, h2c);

/// Reads the head and `after` body bytes, says so, then reads on.
fn spawn_body_reader(
    client: &Client,
    url: String,
    after: usize,
) -> (JoinHandle<()>, tokio::sync::oneshot::Receiver<()>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let client = client.clone();
    let task = tokio::spawn(async move {
        let mut res = client.get(url).send().await.unwrap();
        let mut got = 0;
        while got < after {
            got += res.chunk().await.unwrap().unwrap().len();
        }
        tx.send(()).unwrap();
        while res.chunk().await.unwrap().is_some() {}
        unreachable!("the body stalls");
    });
    (task, rx)
}

/// A body that stalls after 10 of its 1,000,000 bytes, dropped there.
async fn drop_a_stalled_body(mode: Mode) -> (TestServer, Client, KernelSocket) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let url = mode.url(&server, "/?fault=stall_body&after=10&size=1000000");
    let (task, mid_body) = spawn_body_reader(&client, url, 10);
    bounded(mid_body).await.unwrap();
    let ours = our_only_connection(&server);
    cancel(task).await;
    (server, client, ours)
}

async fn dropped_mid_body_closes_a_remainder_too_large_to_drain(mode: Mode) {
    let (server, client, ours) = drop_a_stalled_body(mode).await;
    // Too much is left to drain: the drop closes at once.
    let s = client.stats().total;
    assert_eq!(s.closed_by.get(CloseReason::DrainFailed), 1, "{s:?}");
    assert_eq!(
        (s.dialing, s.busy, s.waiting, s.open),
        (0, 0, 0, 0),
        "{s:?}"
    );
    assert_consistent(&s);
    assert_released(&ours, &server);
    server.wait_closed(1).await;
}
per_mode!(dropped_mid_body_closes_a_remainder_too_large_to_drain: h1, h1_tls);

/// HTTP/2 has no drain: the stream is reset and the connection stays.
async fn dropped_mid_body_resets_only_the_stream(mode: Mode) {
    let (server, client, ours) = drop_a_stalled_body(mode).await;
    assert_only_the_stream_is_gone(&client, &server).await;
    assert_eq!(our_only_connection(&server).local, ours.local);
}
per_mode!(dropped_mid_body_resets_only_the_stream: h2, h2c);

// HTTP/1.1 only: draining is how HTTP/1.1 keeps a connection whose body
// was dropped; h2 resets the stream instead (the test above).
async fn dropped_mid_body_within_the_drain_limit_drains_then_closes_a_stalled_body(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(
        &server,
        Client::builder().drain_timeout(Duration::from_millis(30)),
    );
    let url = mode.url(&server, "/?fault=stall_body&after=10&size=1000");
    let (task, mid_body) = spawn_body_reader(&client, url, 10);
    bounded(mid_body).await.unwrap();
    let ours = our_only_connection(&server);

    cancel(task).await;
    // The drain owns the connection (still busy) until it gives up.
    let s = wait_for_stats(&client, "the drain to give up", nothing_in_flight).await;
    assert_eq!(s.closed_by.get(CloseReason::DrainFailed), 1, "{s:?}");
    assert_eq!(s.open, 0, "{s:?}");
    assert_consistent(&s);
    assert_released(&ours, &server);
    server.wait_closed(1).await;
}
per_mode!(dropped_mid_body_within_the_drain_limit_drains_then_closes_a_stalled_body: h1, h1_tls);
