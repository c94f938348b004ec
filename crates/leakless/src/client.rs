//! `Client`: the request path, checkout → send → lease into the body.

use std::sync::Arc;

use http::{Method, Uri};
use tokio::time::Instant;

use crate::{
    body::Body,
    config::{ClientBuilder, Config},
    conn,
    error::Error,
    h1::{Outgoing, framing::Decision, head::Head},
    incoming::Incoming,
    lease::Lease,
    pool::{Checkout, HostKey, Pool},
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
        Client::from_config(Config::default())
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
        let total = parts.timeout.or(self.inner.pool.config().timeout);
        let deadline = total.map(|t| (Instant::now() + t, t));
        let exchange = self.exchange(&key, &mut parts);
        let (head, decision, lease) = match deadline {
            None => exchange.await?,
            Some((at, t)) => match tokio::time::timeout_at(at, exchange).await {
                Ok(res) => res?,
                Err(_) => return Err(Error::timeout(Phase::Total, t).with_host(key.authority())),
            },
        };
        Ok(Response::new(
            head,
            Incoming::new(lease, decision, deadline),
        ))
    }

    /// Checkout, write, read the head; once more on a fresh connection when
    /// a reused one failed before any response byte and replay is safe.
    async fn exchange(
        &self,
        key: &HostKey,
        parts: &mut Parts,
    ) -> Result<(Head, Decision, Lease), Error> {
        let pool = &self.inner.pool;
        let cfg = pool.config();
        let replayable =
            parts.body.is_replayable() && is_replay_safe(&parts.method, &parts.headers);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut lease = match pool.checkout(key).await? {
                Checkout::Reused(lease) => lease,
                Checkout::Dial(slot) => conn::dial(slot, key).await?,
            };
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
            let failed = match sent {
                Ok((head, decision)) => return Ok((head, decision, lease)),
                Err(failed) => failed,
            };
            let reused = lease.is_reused();
            lease.close(if failed.error.is_timeout() {
                CloseReason::Timeout
            } else {
                CloseReason::Error
            });
            let stale = reused && failed.got_nothing && !failed.error.is_timeout();
            if attempt == 1 && stale && (replayable || failed.wrote_nothing) {
                pool.note_retry(key);
                continue;
            }
            let mut error = failed.error.with_host(key.authority());
            if failed.got_nothing
                && !failed.wrote_nothing
                && !error.is_timeout()
                && !error.is_protocol()
            {
                error.set_maybe_sent(true);
            }
            return Err(error);
        }
    }
}

/// Go's rule: idempotent methods, or an idempotency key, may be replayed.
fn is_replay_safe(method: &Method, headers: &http::HeaderMap) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    ) || headers.contains_key("idempotency-key")
        || headers.contains_key("x-idempotency-key")
}
