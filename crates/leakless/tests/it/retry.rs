//! Scenarios 28–30: the retry rule. A request that failed on a reused
//! connection before any response byte is replayed once on a new
//! connection if that is safe (Go's rule); otherwise its error says the
//! request may have reached the server. A fresh connection is never retried.
//!
//! The test server cannot aim at "the second request on a connection", so
//! the stale-connection cases use a small server of their own: it answers
//! the first request on each connection, and reads the second in full and
//! closes without a word, like a server whose keep-alive timer fired just
//! as the request came in.

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use leakless::{Body, Bytes, Client, CloseReason, ErrorKind, Phase};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

use crate::support::*;

/// A request as the one-answer server read it.
#[derive(Clone, Debug)]
struct Seen {
    /// 1, 2, ... in accept order.
    conn: usize,
    /// 1 for the first request on its connection.
    seq: usize,
    head: String,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

/// Answers the first request on each connection; closes on the second.
struct OneAnswerServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    accepted: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl OneAnswerServer {
    async fn start() -> OneAnswerServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
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
                    tokio::spawn(serve(sock, conn, seen.clone()));
                }
            }
        });
        OneAnswerServer {
            addr,
            seen,
            accepted,
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
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

async fn serve(mut sock: TcpStream, conn: usize, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut buf = Vec::new();
    for seq in 1.. {
        let Some((head, body)) = read_request(&mut sock, &mut buf).await else {
            return;
        };
        seen.lock().unwrap().push(Seen {
            conn,
            seq,
            head,
            body,
        });
        if seq > 1 {
            // Everything was read, so the close is a FIN, not a reset.
            return;
        }
        let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Conn: {conn}\r\n\r\nok");
        if sock.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// One request (head and Content-Length body) off `sock`; `None` at EOF.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
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

/// First request on a fresh client: answered, and its connection goes idle.
async fn warm_up(client: &Client, server: &OneAnswerServer) {
    let res = client.get(server.url("/warm")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "ok");
    let s = client.stats().total;
    assert_eq!((s.created, s.idle), (1, 1), "{s:?}");
}

#[tokio::test]
async fn get_on_a_reused_connection_the_server_closed_is_retried_once_on_a_new_one() {
    let server = OneAnswerServer::start().await;
    let client = Client::new();
    warm_up(&client, &server).await;

    let res = bounded(client.get(server.url("/again")).send())
        .await
        .unwrap();
    assert_eq!(res.headers()["x-conn"], "2");
    assert_eq!(res.text().await.unwrap(), "ok");

    let s = client.stats().total;
    assert_eq!(s.retries, 1, "{s:?}");
    assert_eq!((s.created, s.reused, s.open, s.idle), (2, 1, 1, 1), "{s:?}");
    assert_eq!(s.closed_by.get(CloseReason::Error), 1, "{s:?}");
    assert_consistent(&s);
    assert_eq!(server.accepted(), 2);
    let seen: Vec<_> = server
        .seen()
        .into_iter()
        .map(|r| (r.conn, r.seq, r.head.lines().next().unwrap().to_owned()))
        .collect();
    assert_eq!(
        seen,
        [
            (1, 1, "GET /warm HTTP/1.1".to_owned()),
            (1, 2, "GET /again HTTP/1.1".to_owned()),
            (2, 1, "GET /again HTTP/1.1".to_owned()),
        ]
    );
}

#[tokio::test]
async fn post_without_idempotency_key_is_not_retried_and_says_it_may_have_been_sent() {
    let server = OneAnswerServer::start().await;
    let client = Client::new();
    warm_up(&client, &server).await;

    let err = bounded(client.post(server.url("/order")).body("pay 10").send())
        .await
        .unwrap_err();
    assert!(err.is_maybe_sent(), "{err:?}");
    assert!(!err.is_timeout() && !err.is_protocol(), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Io);
    assert_eq!(err.phase(), Some(Phase::ResponseHeaders));
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
    assert_eq!(s.closed_by.get(CloseReason::Error), 1, "{s:?}");
    assert_consistent(&s);
    // It did reach the server, exactly once.
    assert_eq!(server.accepted(), 1);
    let posts: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|r| r.head.starts_with("POST"))
        .collect();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].body, b"pay 10");
}

#[tokio::test]
async fn post_with_idempotency_key_and_a_bytes_body_is_retried() {
    let server = OneAnswerServer::start().await;
    let client = Client::new();
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
        .filter(|r| r.head.starts_with("POST"))
        .collect();
    assert_eq!(posts.len(), 2, "{posts:?}");
    for (post, conn) in posts.iter().zip([1, 2]) {
        assert_eq!(post.conn, conn);
        assert_eq!(post.body, b"pay 10");
        assert_eq!(post.header("idempotency-key"), Some("k-42"));
    }
}

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

#[tokio::test]
async fn post_with_idempotency_key_but_a_streamed_body_is_not_retried() {
    let server = OneAnswerServer::start().await;
    let client = Client::new();
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

async fn fresh_connection_failure_is_not_retried(fault: &str) {
    let server = TestServer::start(Config::new());
    let client = Client::new();
    let err = bounded(client.get(server.url(&format!("/?fault={fault}"))).send())
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
    assert_eq!(s.closed_by.get(CloseReason::Error), 1, "{s:?}");
    assert_consistent(&s);
    let seen = server.wait_closed(1).await;
    assert_eq!((seen.accepted, seen.requests), (1, 1), "{seen:?}");
}

#[tokio::test]
async fn a_fresh_connection_closed_without_response_is_never_retried() {
    fresh_connection_failure_is_not_retried("close").await;
}

#[tokio::test]
async fn a_fresh_connection_reset_without_response_is_never_retried() {
    fresh_connection_failure_is_not_retried("reset").await;
}

#[tokio::test]
async fn a_fresh_connection_the_server_drops_at_accept_is_never_retried() {
    let server =
        TestServer::start(Config::new().conn_fault(leakless_testserver::ConnFault::AcceptAndClose));
    let client = Client::new();
    let err = bounded(client.get(server.url("/")).send())
        .await
        .unwrap_err();
    assert!(!err.is_timeout(), "{err:?}");
    let s = client.stats().total;
    assert_eq!((s.retries, s.created, s.open), (0, 1, 0), "{s:?}");
    assert_consistent(&s);
    server.wait_closed(1).await;
    assert_eq!(server.stats().accepted, 1);
}
