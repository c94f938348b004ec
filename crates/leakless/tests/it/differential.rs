//! Differential test of our HTTP/1.1 engine against hyper's: the engine
//! must earn its keep. Each case's bytes are served over real loopback TCP
//! to the leakless `Client` and to hyper 1.x's low-level
//! `client::conn::http1`; both must agree on status, version, headers, body
//! and reusability, or both fail. Where they differ by design, the case
//! says so, with the RFC reason, and any other disagreement fails.
//!
//! Reusable means: leakless parked the connection idle once the body was
//! read (`stats().total.idle == 1`); hyper's `SendRequest` became ready and
//! its connection task is still running. Either way a second request must
//! then succeed on that same connection (the server answers it "second").

use std::{
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http_body_util::{BodyExt, Empty};
use hyper::{Request, header::HOST};
use leakless::{Bytes, Client, HeaderMap, Method, Version};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpStream},
    task::JoinSet,
};

use crate::support::bounded;

const SECOND: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond";

/// What one client made of a case.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Failed(String),
    Ok {
        status: u16,
        version: Version,
        headers: HeaderMap,
        body: Bytes,
        reusable: bool,
    },
}

/// One side's verdict, for documenting a difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Fails,
    NotReused,
    Reused,
}

impl Seen {
    fn verdict(&self) -> Verdict {
        match self {
            Seen::Failed(_) => Verdict::Fails,
            Seen::Ok { reusable: true, .. } => Verdict::Reused,
            Seen::Ok { .. } => Verdict::NotReused,
        }
    }
}

/// A difference by design: what we do, what hyper does, and why.
struct Differs {
    ours: Verdict,
    hyper: Verdict,
    why: &'static str,
}

struct Case {
    name: &'static str,
    method: Method,
    wire: Vec<u8>,
    /// The server closes after the bytes (read-to-close bodies, truncation);
    /// otherwise it keeps the connection and answers a next request.
    close: bool,
    differs: Option<Differs>,
}

fn case(name: &'static str, wire: impl AsRef<[u8]>) -> Case {
    Case {
        name,
        method: Method::GET,
        wire: wire.as_ref().to_vec(),
        close: false,
        differs: None,
    }
}

impl Case {
    fn closing(mut self) -> Case {
        self.close = true;
        self
    }

    fn head(mut self) -> Case {
        self.method = Method::HEAD;
        self
    }

    fn differs(mut self, ours: Verdict, hyper: Verdict, why: &'static str) -> Case {
        assert_ne!(ours, hyper, "{}: a difference must differ", self.name);
        self.differs = Some(Differs { ours, hyper, why });
        self
    }
}

use Verdict::{Fails, NotReused, Reused};

fn cases() -> Vec<Case> {
    let big = |n: usize| {
        format!(
            "HTTP/1.1 200 OK\r\nX-Big: {}\r\nContent-Length: 0\r\n\r\n",
            "a".repeat(n)
        )
    };
    let many = {
        let mut s = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..101 {
            s.push_str(&format!("X-{i}: v\r\n"));
        }
        s + "Content-Length: 0\r\n\r\n"
    };
    vec![
        // Valid framings and reuse rules.
        case("content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello"),
        case("content-length 0", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        case("repeated equal content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\nhello"),
        case("content-length with leading zeros", "HTTP/1.1 200 OK\r\nContent-Length: 005\r\n\r\nhello"),
        case("chunked with extensions and trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n1 ; q=\"x y\"\r\n!\r\n0\r\nX-T: 1\r\nX-U: \t2\r\n\r\n"),
        case("chunked upper-case hex and leading zeros", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00A\r\n0123456789\r\n000\r\n\r\n"),
        case("chunked size with 17 leading-zero digits", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n00000000000000005\r\nhello\r\n0\r\n\r\n"),
        case("chunked after gzip", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
        case("chunked in a second field", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
        case("transfer-encoding not ending in chunked reads to close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw until close").closing(),
        case("no length reads to close", "HTTP/1.1 200 OK\r\nX-A: b\r\n\r\nuntil the end").closing(),
        case("http/1.0 no length reads to close", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nuntil the end").closing(),
        case("http/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"),
        case("http/1.0 without keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        case("http/1.0 keep-alive then close", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"),
        case("connection close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"),
        case("connection close in a list", "HTTP/1.1 200 OK\r\nConnection: foo, Close\r\nContent-Length: 2\r\n\r\nok"),
        case("connection keep-alive on 1.1", "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok"),
        case("100 continue skipped", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        case("103 early hints skipped", "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 102 Processing\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"),
        case("head with content-length", "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n").head(),
        case("head with chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").head(),
        case("head with invalid content-length", "HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n").head(),
        case("204 with content-length", "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"),
        case("304 with content-length and chunked", "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n"),
        case("status without reason", "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok"),
        case("status 599 and odd reason", b"HTTP/1.1 599 Weird \xa0 Reason\r\nContent-Length: 2\r\n\r\nok"),
        case("bare LF in the head", "HTTP/1.1 200 OK\nX-A: b\nContent-Length: 2\n\nok"),
        case("empty and obs-text header values", b"HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Obs: caf\xc3\xa9 \xff\r\nX-Tab: a\tb\r\nContent-Length: 2\r\n\r\nok"),
        case("repeated header fields", "HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nX-A: 1\r\nSet-Cookie: b=2\r\nContent-Length: 2\r\n\r\nok"),
        case("100 header fields", {
            let mut s = String::from("HTTP/1.1 200 OK\r\n");
            for i in 0..99 {
                s.push_str(&format!("X-{i}: v\r\n"));
            }
            s + "Content-Length: 0\r\n\r\n"
        }),
        case("bytes after the body are never reused", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA"),
        case("a second response behind the first", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        case("bytes after a chunked body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nX"),
        case("body after a 204", "HTTP/1.1 204 No Content\r\n\r\nstray"),
        // Malformed responses.
        case("malformed status line", "HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n"),
        case("status code 099", "HTTP/1.1 099 Low\r\nContent-Length: 0\r\n\r\n"),
        case("not http", "HTTX/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        case("http/2.0 status line", "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n"),
        case("garbage", "garbage\r\n\r\n"),
        case("closed before any byte", "").closing(),
        case("closed in the head", "HTTP/1.1 200 OK\r\nContent-Le").closing(),
        case("invalid header name", "HTTP/1.1 200 OK\r\nBad Name: x\r\nContent-Length: 0\r\n\r\n"),
        case("control character in a header value", "HTTP/1.1 200 OK\r\nX-A: a\x01b\r\nContent-Length: 0\r\n\r\n"),
        case("obs-fold", "HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 0\r\n\r\n"),
        case("101 header fields", many),
        case("head of 500 KiB", big(500 * 1024)),
        case("conflicting content-length fields", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"),
        case("conflicting content-length list", "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!"),
        case("negative content-length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
        case("signed content-length", "HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\nhello"),
        case("empty content-length", "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n"),
        case("content-length overflow", "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"),
        case("body shorter than content-length", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").closing(),
        case("invalid chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n"),
        case("chunk size with leading space", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n"),
        case("chunk size overflow", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\nhello\r\n0\r\n\r\n"),
        case("bare LF after a chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n"),
        case("bare CR after a chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\r\nhello\r\n0\r\n\r\n"),
        case("bare LF after chunk data", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n"),
        case("bare LF in the last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\n\r\n"),
        case("bare LF in a chunk extension", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a\nb\r\nhello\r\n0\r\n\r\n"),
        case("bare LF ending the trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\n\r\n").closing(),
        case("bare LF inside the trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\nX-U: 2\r\n\r\n"),
        case("chunk data longer than its size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n0\r\n\r\n"),
        case("truncated chunked body", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel").closing(),
        case("chunked body without its last chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n").closing(),
        case("invalid trailer name", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad Name: x\r\n\r\n"),
        case("obs-fold in trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: a\r\n b\r\n\r\n"),
        // Differences by design.
        case("content-length with transfer-encoding", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            .differs(Fails, Reused, "RFC 9112 §6.3 rule 3: a message with both 'might indicate an attempt to perform request smuggling or response splitting and ought to be handled as an error'; on a connection that is reused it must be (hyper lets Transfer-Encoding win and even reuses the connection)"),
        case("content-length with a non-chunked transfer-encoding", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: gzip\r\n\r\nhello").closing()
            .differs(Fails, NotReused, "RFC 9112 §6.3 rule 3 as above (hyper reads to the close)"),
        case("http/1.0 with transfer-encoding", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
            .differs(NotReused, Fails, "RFC 9112 §6.1: treat the framing as faulty and close the connection after processing the message; hyper refuses the message instead"),
        case("http/1.0 204 with transfer-encoding", "HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n")
            .differs(NotReused, Reused, "RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means close after it, whatever the status; hyper looks at 204 first"),
        case("transfer-encoding ending in an empty list element", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, \r\n\r\n5\r\nhello\r\n0\r\n\r\n").closing()
            .differs(Reused, NotReused, "RFC 9110 §5.6.1: recipients MUST ignore empty list elements, so the last coding is chunked and the body is 'hello'; hyper takes the empty element as the last coding and reads the raw chunked bytes to the close"),
        case("head of 70 KiB", big(70 * 1024))
            .differs(Fails, Reused, "our limit caps a response head at 64 KiB; hyper's default buffer allows about 400 KiB"),
        case("101 switching protocols", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n")
            .differs(Fails, NotReused, "RFC 9110 §15.2.2: a server MUST NOT switch to a protocol the request did not offer in Upgrade, and we never send Upgrade; hyper hands the 101 back as the response"),
        case("NUL in a chunk extension", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=\x00\r\nhello\r\n0\r\n\r\n")
            .differs(Fails, Reused, "RFC 9112 §7.1.1: chunk-ext is tokens and quoted-strings; a control character cannot occur, and NUL is where parsers disagree (hyper skips extensions byte by byte)"),
        case("trailers over 16 KiB", format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: {}\r\n\r\n", "a".repeat(20 * 1024)))
            .differs(Reused, Fails, "limits, not RFC: our trailer section limit is 64 KiB like the head's; hyper's is 16 KiB"),
    ]
}

/// Serves `wire` as the answer to the first request on every connection,
/// then (unless `close`) "second" to any later request on it.
async fn serve(
    wire: Arc<Vec<u8>>,
    close: bool,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut conns = JoinSet::new();
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            conns.spawn(answer(sock, wire.clone(), close));
        }
    });
    (addr, task)
}

async fn answer(mut sock: TcpStream, wire: Arc<Vec<u8>>, close: bool) -> io::Result<()> {
    let mut buf = Vec::new();
    let mut first = true;
    loop {
        // One request head (the clients send no request body).
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = sock.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        buf.drain(..end);
        if first {
            sock.write_all(&wire).await?;
            if close {
                return sock.shutdown().await;
            }
            first = false;
        } else {
            sock.write_all(SECOND).await?;
        }
    }
}

async fn run_leakless(addr: std::net::SocketAddr, method: &Method, close: bool) -> Seen {
    let client = Client::new();
    let url = format!("http://{addr}/");
    let res = match client.request(method.clone(), &url).send().await {
        Ok(res) => res,
        Err(e) => return failed_leakless(&client, format!("head: {e}")),
    };
    let (status, version, headers) = (res.status().as_u16(), res.version(), res.headers().clone());
    let body = match res.bytes().await {
        Ok(body) => body,
        Err(e) => return failed_leakless(&client, format!("body: {e}")),
    };
    let s = client.stats().total;
    let reusable = s.idle == 1;
    if reusable {
        // (A closing server has nothing to say to a second request.)
        if !close {
            let again = client
                .get(&url)
                .send()
                .await
                .expect("second request on the idle connection");
            assert_eq!(again.bytes().await.unwrap(), "second");
            assert_eq!(
                client.stats().total.reused,
                1,
                "the second request reused the connection"
            );
        }
    } else {
        // Not reusable: closed at once, never parked.
        assert_eq!((s.open, s.idle), (0, 0), "{s:?}");
    }
    Seen::Ok {
        status,
        version,
        headers,
        body,
        reusable,
    }
}

fn failed_leakless(client: &Client, what: String) -> Seen {
    let s = client.stats().total;
    assert_eq!(
        (s.open, s.idle),
        (0, 0),
        "a failed connection is closed: {s:?}"
    );
    Seen::Failed(what)
}

/// tokio's TcpStream as hyper's IO (hyper-util's TokioIo, without the crate).
struct Io(TcpStream);

impl hyper::rt::Read for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let mut tmp = vec![0u8; buf.remaining().min(64 * 1024)];
        let mut rb = ReadBuf::new(&mut tmp);
        std::task::ready!(Pin::new(&mut self.0).poll_read(cx, &mut rb))?;
        buf.put_slice(rb.filled());
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for Io {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

fn hyper_request(method: &Method, addr: std::net::SocketAddr) -> Request<Empty<Bytes>> {
    Request::builder()
        .method(method.as_str())
        .uri("/")
        .header(HOST, addr.to_string())
        .body(Empty::new())
        .unwrap()
}

async fn run_hyper(addr: std::net::SocketAddr, method: &Method) -> Seen {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(Io(stream))
        .await
        .unwrap();
    let mut conn = tokio::spawn(conn);
    let res = match sender.send_request(hyper_request(method, addr)).await {
        Ok(res) => res,
        Err(e) => return Seen::Failed(format!("head: {e}")),
    };
    let (parts, body) = res.into_parts();
    let body = match body.collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) => return Seen::Failed(format!("body: {e}")),
    };
    // Reusable: the sender turns ready and the connection task lives on
    // after it has seen whatever followed the body.
    let ready = matches!(
        tokio::time::timeout(Duration::from_secs(2), sender.ready()).await,
        Ok(Ok(()))
    );
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
    let reusable = ready && !conn.is_finished();
    if reusable {
        let again = sender
            .send_request(hyper_request(&Method::GET, addr))
            .await
            .expect("hyper's second request");
        assert_eq!(
            again.into_body().collect().await.unwrap().to_bytes(),
            "second"
        );
    } else {
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut conn).await;
    }
    conn.abort();
    Seen::Ok {
        status: parts.status.as_u16(),
        version: parts.version,
        headers: parts.headers,
        body,
        reusable,
    }
}

/// In a documented difference where both read a response, the heads still
/// match (the body may not: it is what the framing decides).
fn same_head(a: &Seen, b: &Seen) -> bool {
    match (a, b) {
        (
            Seen::Ok {
                status: s1,
                version: v1,
                headers: h1,
                ..
            },
            Seen::Ok {
                status: s2,
                version: v2,
                headers: h2,
                ..
            },
        ) => (s1, v1, h1) == (s2, v2, h2),
        _ => true,
    }
}

#[tokio::test]
async fn leakless_and_hyper_agree_on_every_response() {
    let mut problems = Vec::new();
    for case in cases() {
        let wire = Arc::new(case.wire.clone());
        let (addr, server) = serve(wire, case.close).await;
        let ours = bounded(run_leakless(addr, &case.method, case.close)).await;
        let theirs = bounded(run_hyper(addr, &case.method)).await;
        server.abort();
        eprintln!(
            "{:>60}: leakless {:?}, hyper {:?}",
            case.name,
            ours.verdict(),
            theirs.verdict()
        );
        let agree = match &case.differs {
            None => match (&ours, &theirs) {
                (Seen::Failed(_), Seen::Failed(_)) => true,
                (a, b) => a == b,
            },
            Some(d) => {
                ours.verdict() == d.ours && theirs.verdict() == d.hyper && same_head(&ours, &theirs)
            }
        };
        if !agree {
            let why = case.differs.as_ref().map_or("", |d| d.why);
            problems.push(format!(
                "{}:\n  leakless: {ours:?}\n  hyper:    {theirs:?}\n  documented: {why}",
                case.name
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} disagreements:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Writes every case (up to 8 KiB) as a seed for the fuzz target, in its
/// input layout (`leakless::fuzzing::check`: flags, split seed, bytes).
/// `cargo test -p leakless --test it write_fuzz_seeds -- --ignored`
#[test]
#[ignore = "writes files: run by hand to refresh fuzz/seeds"]
fn write_fuzz_seeds() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
    std::fs::create_dir_all(&dir).unwrap();
    for case in cases().into_iter().filter(|c| c.wire.len() <= 8192) {
        let head = u8::from(case.method == Method::HEAD);
        let close = if case.close { 2 } else { 0 };
        let mut data = vec![head | close | (3 << 2), 0x5a];
        data.extend_from_slice(&case.wire);
        let name: String = case
            .name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        std::fs::write(dir.join(name), data).unwrap();
    }
}
