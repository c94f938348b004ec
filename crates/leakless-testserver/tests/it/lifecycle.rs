//! Start, address, shutdown.

use leakless_testserver::{Config, TestServer};

use crate::client::Client;

#[test]
fn start_from_sync_code_and_url() {
    let server = TestServer::start(Config::new());
    assert!(server.addr().ip().is_loopback());
    assert_ne!(server.addr().port(), 0);
    assert_eq!(
        server.url("/a?b=1"),
        format!("http://{}/a?b=1", server.addr())
    );
    assert_eq!(server.url("x"), format!("http://{}/x", server.addr()));
}

#[test]
fn start_on_a_taken_port_fails() {
    let a = TestServer::start(Config::new());
    let b = TestServer::start_on(a.addr(), Config::new());
    assert!(b.is_err());
}

#[tokio::test]
async fn drop_closes_every_connection() {
    let server = TestServer::start(Config::new());
    let mut idle = Client::connect(&server).await;
    idle.get("/").await;
    let mut stalled = Client::connect(&server).await;
    stalled.send("GET /?fault=endless HTTP/1.1\r\n\r\n").await;
    stalled.head().await;
    let mut fresh = Client::connect(&server).await;
    server.wait_accepted(3).await;
    let addr = server.addr();
    drop(server);
    idle.expect_eof().await;
    fresh.expect_eof().await;
    // The endless body stops, mid-chunk or not, and the socket closes.
    let _ = stalled.read_end().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
