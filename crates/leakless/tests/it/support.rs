//! Shared helpers: servers and clients in each protocol mode, bounded
//! waits, the kernel's view of a test's own sockets, and the few set-ups
//! several themes need (a saturated listener, a CA, a fresh process).

#![allow(dead_code)]

mod ca;
mod child;
pub mod h2_frames;
mod kernel;
mod listener;
#[macro_use]
mod mode;
pub mod proxies;
mod wait;

pub use ca::TestCa;
pub use child::run_alone_in_a_fresh_process;
pub use kernel::{
    CLOSE, CLOSE_WAIT, ESTABLISHED, FIN_WAIT1, KernelSocket, LAST_ACK, TIME_WAIT, client_sockets,
    held_client_sockets, open_fds, socket, sockets,
};
pub use leakless::{Client, ClientBuilder};
pub use leakless_testserver::{Config, TestServer};
pub use listener::{RefusingAddr, SaturatedListener};
pub use mode::Mode;
pub use wait::{bounded, nothing_in_flight, wait_for, wait_for_stats};

/// GETs `url` and reads the whole body; any failure fails the test.
pub async fn get_body(client: &Client, url: impl AsRef<str>) -> leakless::Bytes {
    client
        .get(url.as_ref())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
}

/// Sends `req` and reads the whole body; any failure fails the test.
pub async fn read_body(req: leakless::RequestBuilder) -> leakless::Bytes {
    req.send().await.unwrap().bytes().await.unwrap()
}

/// The last request `server` recorded.
pub fn last_request(server: &TestServer) -> leakless_testserver::RecordedRequest {
    server.requests().pop().expect("the server saw a request")
}

/// The pool at rest agrees with itself and with the kernel: no dial, busy
/// connection or waiter left, and as many of our sockets still held to
/// `servers` as the pool says are open.
pub async fn assert_accounted(client: &Client, servers: &[&TestServer]) {
    let s = wait_for_stats(client, "nothing in flight", nothing_in_flight).await;
    assert_consistent(&s);
    let held = wait_for(
        "the kernel to agree with the pool",
        || {
            servers
                .iter()
                .map(|srv| held_client_sockets(srv).len())
                .sum::<usize>()
        },
        |&n| n == client.stats().total.open,
    )
    .await;
    assert_eq!(held, s.open, "{s:?}");
}

/// Checks the pool's invariants on a snapshot.
pub fn assert_consistent(s: &leakless::HostStats) {
    assert_eq!(
        s.open,
        s.dialing + s.busy + s.idle,
        "open = dialing + busy + idle: {s:?}"
    );
    assert_eq!(
        s.created - s.closed,
        s.open as u64,
        "created - closed = open: {s:?}"
    );
}

/// On HTTP/2, after a stream was given up (failed, reset or dropped): the
/// shared connection is still open and idle with no stream counted, and
/// it serves the next request without a new dial.
pub async fn assert_the_h2_connection_carries_on(mode: Mode, client: &Client, server: &TestServer) {
    assert!(mode.is_h2(), "{mode:?}");
    let s = client.stats().total;
    assert_eq!(
        (s.open, s.idle, s.h2_streams, s.closed),
        (1, 1, 0, 0),
        "{s:?}"
    );
    assert_consistent(&s);
    assert_eq!(get_body(client, mode.url(server, "/")).await, "hello");
    assert_eq!(server.stats().accepted, 1);
}

/// A client for `mode` that trusts both servers' CAs.
pub fn client_for_both(mode: Mode, a: &TestServer, b: &TestServer) -> Client {
    mode.builder(b, mode.builder(a, Client::builder()))
        .build()
        .unwrap()
}

/// A `status` redirect to `location`.
pub fn redirect_to(status: u16, location: impl AsRef<str>) -> leakless_testserver::Reply {
    leakless_testserver::Reply::new()
        .status(status)
        .header("Location", location.as_ref())
}

/// A client that trusts `server`'s CA, built from `builder`.
pub fn trusting(server: &TestServer, builder: ClientBuilder) -> Client {
    builder
        .add_root_certificate(leakless::Certificate::from_der(server.ca_cert_der()))
        .build()
        .unwrap()
}

/// A program a test needs is missing: fails the test when `require` is
/// set in the environment (CI sets it), else says it is skipped.
pub fn not_installed(name: &str, package: &str, require: &str) {
    if std::env::var_os(require).is_some() {
        panic!("{name} is not installed: apt-get install {package} (.ci/run does)");
    }
    eprintln!("skipped: {name} is not installed (apt-get install {package})");
}

/// A loopback port free a moment ago, for a server that takes its port
/// from a config file.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The path of `bin` on `PATH`, if it is installed.
pub fn which(bin: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(bin))
        .find(|p| p.exists())
}
