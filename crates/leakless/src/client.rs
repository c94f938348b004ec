//! `Client`: the request path, checkout → send → lease into the body.

use std::sync::Arc;

use http::{Method, Uri};
use tokio::time::Instant;

use crate::{
    body::Body,
    config::{ClientBuilder, Config},
    conn::{self, Dialed},
    error::Error,
    h1::{Outgoing, framing::Decision, head::Head},
    h2::{self, H2Stream},
    incoming::Incoming,
    lease::Lease,
    pool::{Checkout, HostKey, Pool, StreamGuard},
    request::{Parts, RequestBuilder, parse_uri},
    response::Response,
    stats::{CloseReason, PoolStats},
    timeout::Phase,
};

/// An HTTP client with a connection pool. Cheap to clone: clones share one
/// pool, so build one and pass clones around. When the last clone is
/// dropped, idle connections close and background tasks end.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<ClientRef>,
}

#[derive(Debug)]
struct ClientRef {
    pool: Pool,
}

impl Drop for ClientRef {
    fn drop(&mut self) {
        self.pool.shutdown();
    }
}

impl Default for Client {
    fn default() -> Client {
        Client::new()
    }
}

impl Client {
    /// A client with every default (see [`ClientBuilder`]).
    pub fn new() -> Client {
        ClientBuilder::default()
            .build()
            .expect("the default settings are valid")
    }

    /// Starts configuring a client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    pub(crate) fn from_config(config: Config) -> Client {
        Client {
            inner: Arc::new(ClientRef {
                pool: Pool::new(config),
            }),
        }
    }

    /// A GET request.
    pub fn get<U>(&self, url: U) -> RequestBuilder
    where
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
    {
        self.request(Method::GET, url)
    }

    /// A POST request.
    pub fn post<U>(&self, url: U) -> RequestBuilder
    where
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
    {
        self.request(Method::POST, url)
    }

    /// A request with any method.
    pub fn request<U>(&self, method: Method, url: U) -> RequestBuilder
    where
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
    {
        RequestBuilder::new(self.clone(), method, parse_uri(url))
    }

    /// Sends an `http::Request`.
    pub async fn execute<B: Into<Body>>(&self, req: http::Request<B>) -> Result<Response, Error> {
        let (head, body) = req.into_parts();
        let parts = Parts {
            method: head.method,
            uri: head.uri,
            headers: head.headers,
            body: body.into(),
            timeout: None,
        };
        self.send(parts).await
    }

    /// A snapshot of the pool's connections and counters.
    pub fn stats(&self) -> PoolStats {
        self.inner.pool.stats()
    }

    pub(crate) async fn send(&self, mut parts: Parts) -> Result<Response, Error> {
        let key = HostKey::from_uri(&parts.uri)?;
        let cfg = self.inner.pool.config();
        let total = parts.timeout.or(cfg.timeout);
        let deadline = total.map(|t| (Instant::now() + t, t));
        let exchange = self.exchange(&key, &mut parts);
        let exchanged = match deadline {
            None => exchange.await?,
            Some((at, t)) => match tokio::time::timeout_at(at, exchange).await {
                Ok(res) => res?,
                Err(_) => return Err(Error::timeout(Phase::Total, t).with_host(key.authority())),
            },
        };
        Ok(match exchanged {
            Exchanged::H1(head, decision, lease) => {
                Response::new(head, Incoming::h1(lease, decision, deadline))
            }
            Exchanged::H2(res, guard) => {
                let (head, recv) = res.into_parts();
                let declared = head
                    .headers
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                let body = Incoming::h2(recv, guard, declared, cfg, key.authority(), deadline);
                Response::new(
                    Head {
                        status: head.status,
                        version: head.version,
                        headers: head.headers,
                    },
                    body,
                )
            }
        })
    }

    /// Checkout, send, read the head; once more on a fresh connection when
    /// the first try provably did nothing, or failed on a reused connection
    /// before any response byte and replay is safe (Go's rule).
    async fn exchange(&self, key: &HostKey, parts: &mut Parts) -> Result<Exchanged, Error> {
        let pool = &self.inner.pool;
        let replayable =
            parts.body.is_replayable() && is_replay_safe(&parts.method, &parts.headers);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (reused, outcome) = match pool.checkout(key).await? {
                Checkout::Reused(lease) => (true, self.h1(lease, key, parts).await),
                Checkout::Stream(stream) => (true, self.h2(stream, parts).await),
                Checkout::Dial(slot) => match conn::dial(slot, key).await? {
                    Dialed::H1(lease) => (false, self.h1(lease, key, parts).await),
                    Dialed::H2(stream) => (false, self.h2(stream, parts).await),
                },
            };
            let failure = match outcome {
                Ok(done) => return Ok(done),
                Err(failure) => failure,
            };
            let timed_out = failure.error.is_timeout();
            let stale = reused && failure.got_nothing && replayable;
            let untouched = failure.unprocessed && parts.body.is_replayable();
            if attempt == 1 && !timed_out && (stale || untouched) {
                pool.note_retry(key);
                continue;
            }
            let mut error = failure.error.with_host(key.authority());
            if failure.got_nothing && !failure.unprocessed && !timed_out && !error.is_protocol() {
                error.set_maybe_sent(true);
            }
            return Err(error);
        }
    }

    async fn h1(
        &self,
        mut lease: Lease,
        key: &HostKey,
        parts: &mut Parts,
    ) -> Result<Exchanged, Failure> {
        let cfg = self.inner.pool.config();
        let out = Outgoing {
            method: &parts.method,
            uri: &parts.uri,
            authority: key.authority(),
            headers: &parts.headers,
            close: cfg.disable_keep_alives,
        };
        let sent = match lease
            .conn
            .write_request(&out, &mut parts.body, cfg.read_idle_timeout)
            .await
        {
            Ok(()) => {
                lease
                    .conn
                    .read_head(&parts.method, cfg.response_header_timeout)
                    .await
            }
            Err(failed) => Err(failed),
        };
        match sent {
            Ok((head, decision)) => Ok(Exchanged::H1(head, decision, lease)),
            Err(f) => {
                lease.close(if f.error.is_timeout() {
                    CloseReason::Timeout
                } else {
                    CloseReason::Error
                });
                Err(Failure {
                    error: f.error,
                    got_nothing: f.got_nothing,
                    unprocessed: f.wrote_nothing,
                })
            }
        }
    }

    async fn h2(&self, mut stream: H2Stream, parts: &mut Parts) -> Result<Exchanged, Failure> {
        let cfg = self.inner.pool.config();
        match h2::send(&mut stream, parts, cfg).await {
            Ok(res) => Ok(Exchanged::H2(res, stream.guard)),
            Err(f) => Err(Failure {
                error: f.error,
                got_nothing: true,
                unprocessed: f.unprocessed,
            }),
        }
    }
}

/// A response head with what holds its connection.
enum Exchanged {
    H1(Head, Decision, Lease),
    H2(http::Response<::h2::RecvStream>, StreamGuard),
}

/// A failed try, with what the retry rule needs.
struct Failure {
    error: Error,
    /// No byte of a response arrived.
    got_nothing: bool,
    /// The server provably did not process the request (nothing written,
    /// REFUSED_STREAM, GOAWAY before it).
    unprocessed: bool,
}

/// Go's rule: idempotent methods, or an idempotency key, may be replayed.
fn is_replay_safe(method: &Method, headers: &http::HeaderMap) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    ) || headers.contains_key("idempotency-key")
        || headers.contains_key("x-idempotency-key")
}
