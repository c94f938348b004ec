//! The retry rule. A request that failed on a reused connection before
//! any response byte is replayed once on a new connection if that is safe
//! (Go's rule); otherwise its error says the request may have reached the
//! server. A fresh connection is never retried.
//! All over HTTP/1.1, HTTP/1.1 over TLS and HTTP/2 (TLS and h2c).
//!
//! The test server cannot aim at "the second request on a connection", so
//! the stale-connection cases use a small server of their own: it answers
//! the first request on each connection, and reads the second in full and
//! closes without a word, like a server whose keep-alive timer fired just
//! as the request came in. On HTTP/2 the close is the TCP connection's,
//! with no GOAWAY: the server may have processed the stream, so only a
//! safe request may go again. (GOAWAY and REFUSED_STREAM, which say the
//! server did not process it, are tested in h2.rs and goaway.rs.)

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use leakless::{Body, Bytes, Client, CloseReason, ErrorKind, Phase};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::TcpListener,
};

use crate::support::*;

/// A request as the one-answer server read it.
#[derive(Clone, Debug)]
struct Seen {
    /// 1, 2, ... in accept order.
    conn: usize,
    /// 1 for the first request on its connection.
    seq: usize,
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn line(&self) -> (usize, usize, String) {
        (
            self.conn,
            self.seq,
            format!("{} {}", self.method, self.path),
        )
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// Answers the first request on each connection; closes on the second.
struct OneAnswerServer {
    mode: Mode,
    addr: SocketAddr,
    /// The CA a client must trust, for TLS.
    ca_der: Vec<u8>,
    seen: Log,
    accepted: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl OneAnswerServer {
    async fn start(mode: Mode) -> OneAnswerServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (acceptor, ca_der) = tls_acceptor(mode);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(Mutex::new(0));
        let task = tokio::spawn({
            let (seen, accepted) = (seen.clone(), accepted.clone());
            async move {
                loop {
                    let (sock, _) = listener.accept().await.unwrap();
                    let conn = {
                        let mut n = accepted.lock().unwrap();
                        *n += 1;
                        *n
                    };
                    let (seen, acceptor) = (seen.clone(), acceptor.clone());
                    tokio::spawn(async move {
                        match acceptor {
                            None => serve(mode, sock, conn, seen).await,
                            Some(acceptor) => {
                                if let Ok(tls) = acceptor.accept(sock).await {
                                    serve(mode, tls, conn, seen).await;
                                }
                            }
                        }
                    });
                }
            }
        });
        OneAnswerServer {
            mode,
            addr,
            ca_der,
            seen,
            accepted,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        self.mode.url_at(self.addr, path)
    }

    fn client(&self) -> Client {
        self.mode
            .builder_trusting(self.ca_der.clone(), Client::builder())
            .build()
            .unwrap()
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn accepted(&self) -> usize {
        *self.accepted.lock().unwrap()
    }
}

impl Drop for OneAnswerServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// For TLS modes: an acceptor with a fresh CA's leaf for 127.0.0.1 (ALPN
/// h2 or http/1.1 as the mode says), and the CA's DER.
fn tls_acceptor(mode: Mode) -> (Option<tokio_rustls::TlsAcceptor>, Vec<u8>) {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    if !mode.is_tls() {
        return (None, Vec::new());
    }
    let ca = TestCa::new();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![ca.leaf_der.clone().into()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ca.key_der.clone())),
        )
        .unwrap();
    config.alpn_protocols = vec![if mode.is_h2() { "h2" } else { "http/1.1" }.into()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    (Some(acceptor), ca.ca_der())
}

async fn serve<S>(mode: Mode, io: S, conn: usize, seen: Log)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if mode.is_h2() {
        serve_h2(io, conn, seen).await
    } else {
        serve_h1(io, conn, seen).await
    }
}

async fn serve_h1<S: AsyncRead + AsyncWrite + Unpin>(mut sock: S, conn: usize, seen: Log) {
    let mut buf = Vec::new();
    for seq in 1.. {
        let Some((head, body)) = read_request(&mut sock, &mut buf).await else {
            return;
        };
        let mut lines = head.lines();
        let mut first = lines.next().unwrap_or("").split(' ');
        let (method, path) = (first.next().unwrap_or(""), first.next().unwrap_or(""));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        seen.lock().unwrap().push(Seen {
            conn,
            seq,
            method: method.to_owned(),
            path: path.to_owned(),
            headers,
            body,
        });
        if seq > 1 {
            // Everything was read, so the close is a FIN, not a reset.
            let _ = sock.shutdown().await;
            return;
        }
        let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Conn: {conn}\r\n\r\nok");
        if sock.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// One request (head and Content-Length body) off `sock`; `None` at EOF.
async fn read_request<S: AsyncRead + Unpin>(
    sock: &mut S,
    buf: &mut Vec<u8>,
) -> Option<(String, Vec<u8>)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (n, v) = l.split_once(':')?;
                    n.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = buf[end + 4..end + 4 + len].to_vec();
                buf.drain(..end + 4 + len);
                return Some((head, body));
            }
        }
        let mut chunk = [0u8; 4096];
        match sock.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The same on HTTP/2: each stream's request is read in full; the first
/// is answered, the second brings the whole connection down (no GOAWAY,
/// no RST_STREAM: the socket just closes).
async fn serve_h2<S>(io: S, conn: usize, seen: Log)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Ok(mut h2) = h2::server::handshake(io).await else {
        return;
    };
    // A stream that wants the connection gone sends its response handle
    // here, so that it drops with the connection rather than resetting
    // the stream first.
    let (kill, mut killed) = tokio::sync::mpsc::unbounded_channel();
    let mut seq = 0;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = killed.recv() => return,
            accepted = h2.accept() => accepted,
        };
        let Some(Ok((req, mut respond))) = accepted else {
            return;
        };
        seq += 1;
        let (seen, kill) = (seen.clone(), kill.clone());
        tokio::spawn(async move {
            let (parts, mut body) = req.into_parts();
            let mut got = Vec::new();
            while let Some(chunk) = body.data().await {
                let Ok(chunk) = chunk else { return };
                let _ = body.flow_control().release_capacity(chunk.len());
                got.extend_from_slice(&chunk);
            }
            seen.lock().unwrap().push(Seen {
                conn,
                seq,
                method: parts.method.to_string(),
                path: parts
                    .uri
                    .path_and_query()
                    .map_or("/", |p| p.as_str())
                    .to_owned(),
                headers: parts
                    .headers
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned()))
                    .collect(),
                body: got,
            });
            if seq > 1 {
                let _ = kill.send(respond);
                return;
            }
            let head = http::Response::builder()
                .header("content-length", "2")
                .header("x-conn", conn.to_string())
                .body(())
                .unwrap();
            if let Ok(mut out) = respond.send_response(head, false) {
                let _ = out.send_data(Bytes::from_static(b"ok"), true);
            }
        });
    }
}

/// First request on a fresh client: answered, and its connection goes idle.
async fn warm_up(client: &Client, server: &OneAnswerServer) {
    let res = client.get(server.url("/warm")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "ok");
    let s = client.stats().total;
    assert_eq!((s.created, s.idle), (1, 1), "{s:?}");
}

/// The one connection that failed under a request was closed, for an
/// error. On HTTP/2 two parties see the peer go: the failed stream (which
/// marks the connection gone: ServerClosed) and the connection's driver
/// task (EOF or reset: Error), whichever is first.
fn assert_closed_for_the_failure(mode: Mode, s: &leakless::HostStats) {
    let error = s.closed_by.get(CloseReason::Error);
    let counted = if mode.is_h2() {
        error + s.closed_by.get(CloseReason::ServerClosed)
    } else {
        error
    };
    assert_eq!((s.closed, counted), (1, 1), "{s:?}");
}

async fn get_on_a_reused_connection_the_server_closed_is_retried_once_on_a_new_one(mode: Mode) {
    let server = OneAnswerServer::start(mode).await;
    let client = server.client();
    warm_up(&client, &server).await;

    let res = bounded(client.get(server.url("/again")).send())
        .await
        .unwrap();
    assert_eq!(res.version(), mode.version());
    assert_eq!(res.headers()["x-conn"], "2");
    assert_eq!(res.text().await.unwrap(), "ok");

    let s = client.stats().total;
    assert_eq!(s.retries, 1, "{s:?}");
    assert_eq!((s.created, s.reused, s.open, s.idle), (2, 1, 1, 1), "{s:?}");
    assert_closed_for_the_failure(mode, &s);
    assert_consistent(&s);
    assert_eq!(server.accepted(), 2);
    let seen: Vec<_> = server.seen().iter().map(Seen::line).collect();
    assert_eq!(
        seen,
        [
            (1, 1, "GET /warm".to_owned()),
            (1, 2, "GET /again".to_owned()),
            (2, 1, "GET /again".to_owned()),
        ]
    );
}
per_mode!(get_on_a_reused_connection_the_server_closed_is_retried_once_on_a_new_one: h1, h1_tls, h2, h2c);

async fn post_without_idempotency_key_is_not_retried_and_says_it_may_have_been_sent(mode: Mode) {
    let server = OneAnswerServer::start(mode).await;
    let client = server.client();
    warm_up(&client, &server).await;

    let err = bounded(client.post(server.url("/order")).body("pay 10").send())
        .await
        .unwrap_err();
    assert!(err.is_maybe_sent(), "{err:?}");
    assert!(!err.is_timeout() && !err.is_protocol(), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Io);
    assert_eq!(err.phase(), Some(Phase::ResponseHeaders), "{err:?}");
    assert_eq!(err.host(), Some(server.addr.to_string().as_str()));
    let text = err.to_string();
    for part in [
        "may have reached the server",
        "not retried",
        "Idempotency-Key",
    ] {
        assert!(text.contains(part), "{part:?} missing from: {text}");
    }

    let s = client.stats().total;
    assert_eq!((s.retries, s.created, s.open), (0, 1, 0), "{s:?}");
    assert_closed_for_the_failure(mode, &s);
    assert_consistent(&s);
    // It did reach the server, exactly once.
    assert_eq!(server.accepted(), 1);
    let posts: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].body, b"pay 10");
}
per_mode!(post_without_idempotency_key_is_not_retried_and_says_it_may_have_been_sent: h1, h1_tls, h2, h2c);

async fn post_with_idempotency_key_and_a_bytes_body_is_retried(mode: Mode) {
    let server = OneAnswerServer::start(mode).await;
    let client = server.client();
    warm_up(&client, &server).await;

    let res = bounded(
        client
            .post(server.url("/order"))
            .header("Idempotency-Key", "k-42")
            .body(Bytes::from_static(b"pay 10"))
            .send(),
    )
    .await
    .unwrap();
    assert_eq!(res.text().await.unwrap(), "ok");
    let s = client.stats().total;
    assert_eq!((s.retries, s.created), (1, 2), "{s:?}");
    assert_consistent(&s);
    // Sent twice, whole and with the same key: once on the stale
    // connection, once on the new one.
    let posts: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2, "{posts:?}");
    for (post, conn) in posts.iter().zip([1, 2]) {
        assert_eq!(post.conn, conn);
        assert_eq!(post.body, b"pay 10");
        assert_eq!(post.header("idempotency-key"), Some("k-42"));
    }
}
per_mode!(post_with_idempotency_key_and_a_bytes_body_is_retried: h1, h1_tls, h2, h2c);

/// A streamed body of one chunk: it cannot be sent twice.
struct OneChunk(Option<Bytes>);

impl http_body::Body for OneChunk {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        Poll::Ready(self.0.take().map(|b| Ok(http_body::Frame::data(b))))
    }
}

async fn post_with_idempotency_key_but_a_streamed_body_is_not_retried(mode: Mode) {
    let server = OneAnswerServer::start(mode).await;
    let client = server.client();
    warm_up(&client, &server).await;

    let body = Body::from_body(OneChunk(Some(Bytes::from_static(b"pay 10"))));
    let err = bounded(
        client
            .post(server.url("/order"))
            .header("Idempotency-Key", "k-43")
            .body(body)
            .send(),
    )
    .await
    .unwrap_err();
    assert!(err.is_maybe_sent(), "{err:?}");
    let s = client.stats().total;
    assert_eq!((s.retries, s.created), (0, 1), "{s:?}");
    assert_eq!(server.accepted(), 1);
}
per_mode!(post_with_idempotency_key_but_a_streamed_body_is_not_retried: h1, h1_tls, h2, h2c);

/// On HTTP/2 `close` and `reset` take the whole connection, GOAWAY-less.
async fn fresh_connection_failure_is_not_retried(mode: Mode, fault: &str) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let err = bounded(
        client
            .get(mode.url(&server, &format!("/?fault={fault}")))
            .send(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io, "{err:?}");
    assert_eq!(err.phase(), Some(Phase::ResponseHeaders), "{err:?}");
    // A GET: had it been retried it would have failed the same way twice.
    assert!(err.is_maybe_sent(), "{err:?}");
    let s = client.stats().total;
    assert_eq!(
        (s.retries, s.created, s.reused, s.open),
        (0, 1, 0, 0),
        "{s:?}"
    );
    assert_closed_for_the_failure(mode, &s);
    assert_consistent(&s);
    let seen = server.wait_closed(1).await;
    assert_eq!((seen.accepted, seen.requests), (1, 1), "{seen:?}");
}

async fn a_fresh_connection_closed_without_response_is_never_retried(mode: Mode) {
    fresh_connection_failure_is_not_retried(mode, "close").await;
}
per_mode!(a_fresh_connection_closed_without_response_is_never_retried: h1, h1_tls, h2, h2c);

async fn a_fresh_connection_reset_without_response_is_never_retried(mode: Mode) {
    fresh_connection_failure_is_not_retried(mode, "reset").await;
}
per_mode!(a_fresh_connection_reset_without_response_is_never_retried: h1, h1_tls, h2, h2c);

/// Over TLS the handshake fails, over h2c the h2 one: a dial error,
/// never retried either.
async fn a_fresh_connection_the_server_drops_at_accept_is_never_retried(mode: Mode) {
    let server =
        mode.server(Config::new().conn_fault(leakless_testserver::ConnFault::AcceptAndClose));
    let client = mode.client(&server, Client::builder());
    let err = bounded(client.get(mode.url(&server, "/")).send())
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    let s = client.stats().total;
    assert_eq!((s.retries, s.created, s.open), (0, 1, 0), "{s:?}");
    assert_consistent(&s);
    server.wait_closed(1).await;
    assert_eq!(server.stats().accepted, 1);
}
per_mode!(a_fresh_connection_the_server_drops_at_accept_is_never_retried: h1, h1_tls, h2, h2c);
