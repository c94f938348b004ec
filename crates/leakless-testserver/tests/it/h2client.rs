//! An HTTP/2 client for the tests, on the h2 crate: requests with bodies
//! sent and read under flow control, pings, and a view of the connection's
//! end.

use std::future::poll_fn;
use std::time::Duration;

use bytes::Bytes;
use h2::client::SendRequest;
use h2::{PingPong, RecvStream};
use http::{Method, Request, Response};
use leakless_testserver::TestServer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::client::LIMIT;
use crate::tlsclient;

/// One client connection: its streams, its pings, its task.
pub struct H2 {
    pub streams: Streams,
    pub ping: PingPong,
    /// The connection's task: ends when the connection does.
    pub conn: JoinHandle<Result<(), h2::Error>>,
}

impl std::ops::Deref for H2 {
    type Target = Streams;

    fn deref(&self) -> &Streams {
        &self.streams
    }
}

/// Opens streams on a connection; clone it to use it from many tasks.
#[derive(Clone)]
pub struct Streams {
    pub send: SendRequest<Bytes>,
    scheme: &'static str,
}

/// HTTP/2 with prior knowledge over cleartext.
pub async fn h2c(server: &TestServer) -> H2 {
    let tcp = TcpStream::connect(server.addr()).await.unwrap();
    handshake(tcp, "http").await
}

/// HTTP/2 over TLS, by ALPN.
pub async fn h2_tls(server: &TestServer) -> H2 {
    let cfg = tlsclient::config(server, &["h2"], None);
    let tls = tlsclient::connect(server, cfg, "localhost").await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    handshake(tls, "https").await
}

pub async fn handshake<T>(io: T, scheme: &'static str) -> H2
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (send, mut conn) = timeout(LIMIT, h2::client::handshake(io))
        .await
        .expect("h2 handshake timed out")
        .unwrap();
    let ping = conn.ping_pong().unwrap();
    let conn = tokio::spawn(conn);
    H2 {
        streams: Streams { send, scheme },
        ping,
        conn,
    }
}

pub struct Reply {
    pub head: http::response::Parts,
    pub body: Vec<u8>,
}

/// The head and the body's length: a 1 MiB body must not flood a failure.
impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} ({} body bytes)", self.head, self.body.len())
    }
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

impl Streams {
    fn request(&self, method: Method, path: &str) -> Request<()> {
        Request::builder()
            .method(method)
            .uri(format!("{}://localhost{path}", self.scheme))
            .body(())
            .unwrap()
    }

    /// Sends a request and returns the response head, its body still
    /// streaming.
    pub async fn start(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Response<RecvStream>, h2::Error> {
        let mut send = self.send.clone().ready().await?;
        let (resp, mut stream) = send.send_request(self.request(method, path), body.is_none())?;
        if let Some(body) = body {
            if let Err(e) = send_all(&mut stream, body).await {
                // The response (a reset, usually) says why better.
                return Err(timeout(LIMIT, resp)
                    .await
                    .ok()
                    .and_then(Result::err)
                    .unwrap_or(e));
            }
        }
        timeout(LIMIT, resp).await.expect("response timed out")
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
    ) -> Result<Reply, h2::Error> {
        let (head, body) = self.start(method, path, body).await?.into_parts();
        Ok(Reply {
            head,
            body: read_all(body).await?,
        })
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await.unwrap()
    }
}

impl H2 {
    /// Pings and waits up to `wait` for the pong.
    pub async fn ping(&mut self, wait: Duration) -> Option<()> {
        let ping = self.ping.ping(h2::Ping::opaque());
        match timeout(wait, ping).await {
            Ok(Ok(_)) => Some(()),
            Ok(Err(e)) => panic!("ping failed: {e}"),
            Err(_) => None,
        }
    }
}

/// Sends `body` as flow control allows, ending the stream.
pub async fn send_all(
    stream: &mut h2::SendStream<Bytes>,
    mut body: Bytes,
) -> Result<(), h2::Error> {
    if body.is_empty() {
        return stream.send_data(body, true);
    }
    while !body.is_empty() {
        stream.reserve_capacity(body.len());
        let room = loop {
            let room = stream.capacity();
            if room > 0 {
                break room;
            }
            match poll_fn(|cx| stream.poll_capacity(cx)).await {
                None => return Err(h2::Reason::CANCEL.into()),
                Some(r) => {
                    r?;
                }
            }
        };
        let piece = body.split_to(room.min(body.len()));
        stream.send_data(piece, body.is_empty())?;
    }
    Ok(())
}

/// Reads a body to its end, giving the window back as it goes.
pub async fn read_all(mut body: RecvStream) -> Result<Vec<u8>, h2::Error> {
    let mut out = Vec::new();
    while let Some(chunk) = timeout(LIMIT, body.data()).await.expect("body timed out") {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}
