//! The test server's own closes lose no reply: after a close it chose
//! (`Connection: close`, a GOAWAY), bytes the client still sends (a
//! WINDOW_UPDATE, a PING, a request that crossed the close) must not make
//! the server's kernel answer with a reset, which throws away the part of
//! the reply still queued in the server's socket: a client reading slowly
//! would see its response cut short by the server it is tested against.
//!
//! The client is raw bytes over a `TcpStream`, so that the test decides
//! when it reads and what it sends: it reads a large reply a little at a
//! time until the kernel shows the server's end past its close with bytes
//! still queued, sends a few bytes, then reads the rest.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use leakless_testserver::CloseReason;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::*;

/// Large enough that much of it is still queued in the server's socket
/// when the server closes.
const SIZE: usize = 1 << 20;
/// What the client reads per step while it waits for the server's close:
/// small against any socket buffer, so the server's queue is not drained
/// between two looks at it.
const STEP: usize = 4096;

#[tokio::test]
async fn a_connection_close_reply_read_slowly_arrives_whole_when_the_client_sends_after_the_close()
{
    let server = TestServer::start(Config::new());
    let mut tcp = connect(&server).await;
    let req = format!("GET /?size={SIZE}&close=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut keep = |bytes: &[u8]| {
        got.extend_from_slice(bytes);
        Vec::new()
    };
    read_slowly_past_the_close(&mut tcp, &server, &mut keep).await;
    // A request that crossed the close, as a pipelining client sends one.
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let end = read_to_the_end(&mut tcp, &mut keep).await;
    let head_len = 4 + got.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&got[..head_len]);
    assert!(head.contains("Connection: close"), "{head}");
    assert_eq!(
        (got.len() - head_len, end),
        (SIZE, "eof"),
        "the reply's body, then the close"
    );
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_for(CloseReason::ReplyClose), 1);
}

#[tokio::test]
async fn an_h2_reply_on_a_connection_going_away_read_slowly_arrives_whole_when_the_client_sends_after_the_close()
 {
    let server = TestServer::start(Config::new().h2_goaway_after(1));
    let (mut tcp, mut h2) = h2_get_on_a_connection_going_away(&server).await;
    let mut feed = |bytes: &[u8]| h2.feed(bytes);
    read_slowly_past_the_close(&mut tcp, &server, &mut feed).await;
    // A frame after the close, as a client reading its body sends
    // WINDOW_UPDATEs, or RST_STREAM for a stream it gave up.
    let mut ping = Vec::new();
    frame(&mut ping, PING, 0, 0, &[7; 8]);
    tcp.write_all(&ping).await.unwrap();
    let end = read_to_the_end(&mut tcp, &mut feed).await;
    assert_eq!(
        (h2.data, h2.ended, end),
        (SIZE, true, "eof"),
        "the reply's body, then the close"
    );
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_for(CloseReason::GoAway), 1);
}

/// Over HTTP/2 to `server`, which must say GOAWAY after one stream: a GET
/// for [`SIZE`] bytes whose request ends once the final GOAWAY came.
async fn h2_get_on_a_connection_going_away(server: &TestServer) -> (TcpStream, H2Reader) {
    // GOAWAY as soon as the stream is accepted: the connection closes once
    // the reply is written, most of it still queued in the server's socket.
    // The request's end waits for the final GOAWAY, so that the reply's
    // bytes all come after it.
    let mut tcp = connect(server).await;
    let mut out = PREFACE.to_vec();
    // SETTINGS_INITIAL_WINDOW_SIZE at its maximum and the connection's
    // window as wide: flow control never holds the reply up, the socket does.
    frame(&mut out, SETTINGS, 0, 0, &[0, 4, 0x7f, 0xff, 0xff, 0xff]);
    let widen = (0x7fff_ffff - 65_535u32).to_be_bytes();
    frame(&mut out, WINDOW_UPDATE, 0, 0, &widen);
    let block = get_block(&format!("/?size={SIZE}"));
    frame(&mut out, HEADERS, END_HEADERS, 1, &block);
    tcp.write_all(&out).await.unwrap();
    let mut h2 = H2Reader::default();
    let mut buf = vec![0; STEP];
    while h2.goaway_last != Some(1) {
        let n = bounded(tcp.read(&mut buf)).await.unwrap();
        assert_ne!(n, 0, "closed before the final GOAWAY");
        let answer = h2.feed(&buf[..n]);
        tcp.write_all(&answer).await.unwrap();
    }
    let mut end = Vec::new();
    frame(&mut end, DATA, END_STREAM, 1, &[]);
    tcp.write_all(&end).await.unwrap();
    (tcp, h2)
}

/// Bounds the linger: a client that never reads the rest, nor closes,
/// holds the server's connection task for 2 s at most.
#[tokio::test]
async fn a_close_lingering_for_a_client_that_never_reads_ends_within_two_seconds() {
    let server = TestServer::start(Config::new());
    let (_tcp, lingering) = h1_close_lingering(&server).await;
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_for(CloseReason::ReplyClose), 1);
    let took = lingering.elapsed();
    // 2 s of linger, and room for a loaded machine to schedule the end.
    assert!(took < Duration::from_secs(4), "lingered {took:?}");
}

/// Dropping the server does not wait out a linger: the close request cuts
/// it short, over HTTP/1.1 and over h2.
#[tokio::test]
async fn dropping_the_server_cuts_a_lingering_close_short() {
    let server = TestServer::start(Config::new());
    let (_h1, _) = h1_close_lingering(&server).await;
    assert_drops_at_once(server);

    let server = TestServer::start(Config::new().h2_goaway_after(1));
    let (mut tcp, mut h2) = h2_get_on_a_connection_going_away(&server).await;
    read_slowly_past_the_close(&mut tcp, &server, &mut |b| h2.feed(b)).await;
    assert_drops_at_once(server);
}

/// A connection to `server` whose reply (`Connection: close`, [`SIZE`]
/// bytes) is read only until the server has closed with bytes still
/// queued, then no more: the server's close lingers from about the instant
/// returned.
async fn h1_close_lingering(server: &TestServer) -> (TcpStream, Instant) {
    let mut tcp = connect(server).await;
    let req = format!("GET /?size={SIZE}&close=1 HTTP/1.1\r\nHost: t\r\n\r\n");
    tcp.write_all(req.as_bytes()).await.unwrap();
    read_slowly_past_the_close(&mut tcp, server, &mut |_| Vec::new()).await;
    (tcp, Instant::now())
}

/// Drops `server` (which closes its connections and joins its thread) and
/// fails if that took anywhere near a linger's 2 s.
fn assert_drops_at_once(server: TestServer) {
    let start = Instant::now();
    drop(server);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "the drop took {took:?}");
}

/// A connection to `server` whose small writes go out at once: Nagle's
/// algorithm would hold the bytes sent after the close until the server
/// acknowledged earlier ones, which it may delay until the reply is read.
async fn connect(server: &TestServer) -> TcpStream {
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp
}

/// Reads [`STEP`] bytes at a time, handing each read to `feed` and sending
/// what it answers, until the kernel shows the server's end of `tcp` past
/// its close (FIN_WAIT1: it shut its side) with bytes still queued to send.
async fn read_slowly_past_the_close(
    tcp: &mut TcpStream,
    server: &TestServer,
    feed: &mut impl FnMut(&[u8]) -> Vec<u8>,
) {
    let local = tcp.local_addr().unwrap();
    let mut buf = vec![0; STEP];
    for _ in 0..2 * SIZE / STEP {
        let end = socket(server.addr(), local).expect("the server's end of the connection");
        if end.state != ESTABLISHED {
            assert!(
                end.state == FIN_WAIT1 && end.send_queue as usize > STEP,
                "the server's queue drained before the test looked: {end:?}"
            );
            return;
        }
        let n = bounded(tcp.read(&mut buf)).await.unwrap();
        assert_ne!(n, 0, "the whole reply came before the server closed");
        let answer = feed(&buf[..n]);
        tcp.write_all(&answer).await.unwrap();
    }
    panic!("the server did not close after its reply");
}

/// Reads to the end of `tcp`, handing each read to `feed` (its answers go
/// out as long as the socket takes them): "eof" for a clean close,
/// "reset" for a reset.
async fn read_to_the_end(
    tcp: &mut TcpStream,
    feed: &mut impl FnMut(&[u8]) -> Vec<u8>,
) -> &'static str {
    let mut buf = vec![0; 64 * 1024];
    loop {
        match bounded(tcp.read(&mut buf)).await {
            Ok(0) => return "eof",
            Ok(n) => {
                let answer = feed(&buf[..n]);
                let _ = tcp.write_all(&answer).await;
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return "reset",
            Err(e) => panic!("reading the reply: {e}"),
        }
    }
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;

/// Appends one HTTP/2 frame (RFC 9113 §4.1) to `out`.
fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// A GET's header block in HPACK (RFC 7541): `:method GET` and
/// `:scheme http` from the static table, `:path` and `:authority` as
/// literals with indexed names, not Huffman-coded.
fn get_block(path: &str) -> Vec<u8> {
    assert!(path.len() < 127, "one-byte string length");
    let mut block = vec![0x82, 0x86, 0x04, path.len() as u8];
    block.extend_from_slice(path.as_bytes());
    block.extend_from_slice(&[0x01, 9]);
    block.extend_from_slice(b"localhost");
    block
}

/// The server's frames as they arrive: what stream 1's DATA carried, and
/// the answers the client owes (SETTINGS and PING acknowledgements; the
/// server's graceful GOAWAY waits for its PING's).
#[derive(Default)]
struct H2Reader {
    buf: Vec<u8>,
    data: usize,
    ended: bool,
    goaway_last: Option<u32>,
}

impl H2Reader {
    fn feed(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.buf.extend_from_slice(bytes);
        let mut answer = Vec::new();
        while self.buf.len() >= 9 {
            let h = &self.buf[..9];
            let len = u32::from_be_bytes([0, h[0], h[1], h[2]]) as usize;
            if self.buf.len() < 9 + len {
                break;
            }
            let (kind, flags) = (h[3], h[4]);
            let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
            let payload: Vec<u8> = self.buf.drain(..9 + len).skip(9).collect();
            match kind {
                DATA if stream == 1 => {
                    let pad = if flags & PADDED != 0 {
                        1 + usize::from(payload[0])
                    } else {
                        0
                    };
                    self.data += len - pad;
                    self.ended |= flags & END_STREAM != 0;
                }
                SETTINGS if flags & ACK == 0 => frame(&mut answer, SETTINGS, ACK, 0, &[]),
                PING if flags & ACK == 0 => frame(&mut answer, PING, ACK, 0, &payload),
                GOAWAY => {
                    let last = [payload[0], payload[1], payload[2], payload[3]];
                    self.goaway_last = Some(u32::from_be_bytes(last) & 0x7fff_ffff);
                }
                _ => {}
            }
        }
        answer
    }
}
