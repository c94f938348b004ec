//! A hostile HTTP/2 server: the raw-frame floods (a header block that never
//! ends, PINGs, SETTINGS) and a window never opened for an upload, met with
//! an h2-crate client.

use std::time::Duration;

use bytes::Bytes;
use h2::Reason;
use h2::client::ResponseFuture;
use http::{Method, Request};
use leakless_testserver::{CloseReason, Config, ConnFault, H2Flood, ServerStats, TestServer};
use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::client::{LIMIT, hello};
use crate::h2client::{H2, h2_tls, h2c, send_all};

/// Long enough for an answer on loopback to have come if it ever would.
const QUIET: Duration = Duration::from_millis(150);

/// Enough flood frames to know the flood is on and the client keeps
/// answering it; far below what a second of loopback carries.
const FLOODED: u64 = 20_000;

fn flooding(flood: H2Flood) -> TestServer {
    TestServer::start(Config::new().conn_fault(ConnFault::H2Flood(flood)))
}

/// Sends a GET: the request that sets the flood off.
async fn get(c: &H2) -> ResponseFuture {
    let mut send = c.send.clone().ready().await.unwrap();
    let req = Request::get("http://localhost/").body(()).unwrap();
    send.send_request(req, true).unwrap().0
}

/// Waits until the flood has sent at least [`FLOODED`] frames (and checks
/// the GET got no answer meanwhile), then hangs up: the server sees the
/// client go, and counts its close. Soon over, so a flood at full speed
/// takes little CPU from the tests running next to it.
async fn flood_until_hang_up(server: &TestServer, c: H2, resp: ResponseFuture) -> ServerStats {
    server
        .wait_for(LIMIT, |s| s.h2_flood_frames >= FLOODED)
        .await
        .unwrap();
    // A zero timeout still polls the response once.
    assert!(
        timeout(Duration::ZERO, resp).await.is_err(),
        "an answer came"
    );
    c.conn.abort();
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_for(CloseReason::Peer), 1, "{s:?}");
    assert_eq!((s.h2_conns, s.h2_streams, s.open), (1, 1, 0));
    s
}

#[tokio::test]
async fn a_continuation_flood_is_cut_off_by_the_clients_header_limit() {
    let server = flooding(H2Flood::Continuation);
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    let (send, conn) = h2::client::Builder::new()
        .max_header_list_size(64 * 1024)
        .handshake::<_, Bytes>(tcp)
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let mut send = send.ready().await.unwrap();
    let req = Request::get("http://localhost/").body(()).unwrap();
    let (resp, _) = send.send_request(req, true).unwrap();
    let e = timeout(LIMIT, resp).await.unwrap().unwrap_err();
    // h2 counts the CONTINUATION frames a 64 KiB block can need and says
    // GOAWAY at the first one past it.
    assert!(e.is_go_away() && e.is_library(), "{e}");
    assert_eq!(e.reason(), Some(Reason::ENHANCE_YOUR_CALM), "{e}");
    assert!(timeout(LIMIT, conn).await.unwrap().unwrap().is_err());
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_for(CloseReason::Peer), 1, "{s:?}");
    assert!(s.h2_flood_frames > 5, "{s:?}");
}

#[tokio::test]
async fn a_ping_flood_lasts_until_the_client_hangs_up() {
    let server = flooding(H2Flood::Ping);
    let c = h2c(&server).await;
    let resp = get(&c).await;
    let s = flood_until_hang_up(&server, c, resp).await;
    // The client's handshake PING was answered; nothing after.
    assert_eq!(s.conns[&1].streams, 1);
}

#[tokio::test]
async fn a_settings_flood_lasts_until_the_client_hangs_up() {
    let server = flooding(H2Flood::Settings);
    let c = h2c(&server).await;
    let resp = get(&c).await;
    flood_until_hang_up(&server, c, resp).await;
}

#[tokio::test]
async fn floods_come_over_tls_too() {
    let server = TestServer::start(
        Config::new()
            .tls(true)
            .conn_fault(ConnFault::H2Flood(H2Flood::Ping)),
    );
    let c = h2_tls(&server).await;
    let resp = get(&c).await;
    flood_until_hang_up(&server, c, resp).await;
}

#[tokio::test]
async fn a_window_never_opened_stalls_an_upload_but_not_a_get() {
    let server = TestServer::start(Config::new().h2_initial_window_size(0));
    let c = h2c(&server).await;
    assert_eq!(c.get("/").await.body, hello(5));
    let mut send = c.send.clone().ready().await.unwrap();
    let req = Request::builder()
        .method(Method::POST)
        .uri("http://localhost/?echo=1")
        .body(())
        .unwrap();
    let (_resp, mut stream) = send.send_request(req, false).unwrap();
    let upload = send_all(&mut stream, Bytes::from_static(b"x"));
    assert!(timeout(QUIET, upload).await.is_err(), "the window opened");
    // The stream is open and waiting for its body; the GET was the only
    // request read.
    let s = server.stats();
    assert_eq!((s.h2_streams, s.requests), (2, 1), "{s:?}");
    assert_eq!(s.conns[&1].streams_open, 1, "{s:?}");
}
