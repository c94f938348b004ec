//! `Client`: the request path, checkout → send → lease into the body.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use http::{Method, Uri};
use tokio::time::Instant;
use tracing::Instrument;

use crate::{
    body::Body,
    census::Census,
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
    trace::{Life, RequestInfo, Tracer},
};

/// An HTTP client with a connection pool. Cheap to clone: clones share one
/// pool, so build one and pass clones around. When the last clone is
/// dropped, idle connections close and background tasks end.
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<ClientRef>,
}

#[derive(Debug)]
pub(crate) struct ClientRef {
    pub(crate) pool: Pool,
    next_request: AtomicU64,
    _census: Census,
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
                next_request: AtomicU64::new(0),
                _census: Census::enter(),
            }),
        }
    }

    /// A GET request.
    #[track_caller]
    pub fn get<U>(&self, url: U) -> RequestBuilder
    where
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
    {
        self.request(Method::GET, url)
    }

    /// A POST request.
    #[track_caller]
    pub fn post<U>(&self, url: U) -> RequestBuilder
    where
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
    {
        self.request(Method::POST, url)
    }

    /// A request with any method.
    #[track_caller]
    pub fn request<U>(&self, method: Method, url: U) -> RequestBuilder
    where
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
    {
        RequestBuilder::new(self.clone(), method, parse_uri(url))
    }

    /// Sends an `http::Request`.
    #[track_caller]
    pub fn execute<B: Into<Body>>(
        &self,
        req: http::Request<B>,
    ) -> impl Future<Output = Result<Response, Error>> + Send + 'static {
        let site = std::panic::Location::caller();
        let (head, body) = req.into_parts();
        let parts = Parts {
            method: head.method,
            uri: head.uri,
            headers: head.headers,
            body: body.into(),
            timeout: None,
            site,
        };
        let client = self.clone();
        async move { client.send(parts).await }
    }

    /// Adds this client's pool metrics to `registry` (names start with
    /// `leakless_`; see the README for the list). The registry holds the
    /// client weakly: a dropped client just stops reporting.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        crate::metrics::register(registry, Arc::downgrade(&self.inner));
    }

    /// This client's metrics in the Prometheus text format, ready to serve
    /// on `/metrics`.
    pub fn prometheus_text(&self) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        self.register_metrics(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
            .expect("writing to a String");
        out
    }

    /// Every response (or lease) that holds a connection now, oldest first,
    /// with its age and the call site that sent it.
    pub fn outstanding(&self) -> Vec<crate::leak::Outstanding> {
        self.inner.pool.outstanding()
    }

    /// A snapshot of the pool's connections and counters.
    pub fn stats(&self) -> PoolStats {
        self.inner.pool.stats()
    }

    pub(crate) async fn send(&self, mut parts: Parts) -> Result<Response, Error> {
        let key = HostKey::from_uri(&parts.uri)?;
        let cfg = self.inner.pool.config();
        let started = Instant::now();
        let total = parts.timeout.or(cfg.timeout);
        let deadline = total.map(|t| (started + t, t));
        let tracer = Tracer::new(cfg.observer.as_ref(), || RequestInfo {
            id: self.inner.next_request.fetch_add(1, Ordering::Relaxed),
            method: parts.method.clone(),
            host: key.authority().to_owned(),
            call_site: parts.site,
        });
        let span = tracing::info_span!(
            "request",
            method = %parts.method,
            host = %key.authority(),
            status = tracing::field::Empty,
            version = tracing::field::Empty,
            reused = tracing::field::Empty,
            retries = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        let mut life = Life {
            tracer,
            span,
            started,
        };
        let exchange = self
            .exchange(&key, &mut parts, &mut life.tracer)
            .instrument(life.span.clone());
        let outcome = match deadline {
            None => exchange.await,
            Some((at, t)) => match tokio::time::timeout_at(at, exchange).await {
                Ok(res) => res,
                Err(_) => Err(Error::timeout(Phase::Total, t).with_host(key.authority())),
            },
        };
        let exchanged = match outcome {
            Ok(exchanged) => exchanged,
            Err(e) => {
                if !life.span.is_disabled() {
                    let _enter = life.span.enter();
                    tracing::debug!(error = %e, "request failed");
                }
                return Err(e);
            }
        };
        let (head, body) = match exchanged {
            Exchanged::H1(head, decision, lease) => {
                life.span.record("reused", lease.uses > 1);
                (head, Incoming::h1(lease, decision, deadline, life))
            }
            Exchanged::H2(res, guard) => {
                let (head, recv) = res.into_parts();
                let declared = head
                    .headers
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                let head = Head {
                    status: head.status,
                    version: head.version,
                    headers: head.headers,
                };
                (
                    head,
                    Incoming::h2(recv, guard, declared, cfg, key.authority(), deadline, life),
                )
            }
        };
        Ok(Response::new(head, body))
    }

    /// Checkout, send, read the head; once more on a fresh connection when
    /// the first try provably did nothing, or failed on a reused connection
    /// before any response byte and replay is safe (Go's rule).
    async fn exchange(
        &self,
        key: &HostKey,
        parts: &mut Parts,
        tracer: &mut Tracer,
    ) -> Result<Exchanged, Error> {
        let pool = &self.inner.pool;
        let replayable =
            parts.body.is_replayable() && is_replay_safe(&parts.method, &parts.headers);
        let span = tracing::Span::current();
        let mut attempt = 0;
        loop {
            attempt += 1;
            tracer.get_conn();
            let checkout = match pool.checkout(key, parts.site).await {
                Ok(c) => c,
                Err(e) => {
                    tracer.get_conn_failed(&e);
                    return Err(e);
                }
            };
            let (reused, outcome) = match checkout {
                Checkout::Reused(lease) => (true, self.h1(lease, key, parts, tracer).await),
                Checkout::Stream(stream) => (true, self.h2(stream, parts, tracer).await),
                // Boxed: the dial (TLS state above all) would otherwise make every
                // request's future kilobytes larger, copied at each await.
                Checkout::Dial(slot) => match Box::pin(conn::dial(slot, key, tracer)).await {
                    Ok(Dialed::H1(lease)) => (false, self.h1(lease, key, parts, tracer).await),
                    Ok(Dialed::H2(stream)) => (false, self.h2(stream, parts, tracer).await),
                    Err(e) => {
                        tracer.get_conn_failed(&e);
                        return Err(e);
                    }
                },
            };
            let failure = match outcome {
                Ok(done) => {
                    if !span.is_disabled() {
                        span.record("retries", attempt - 1);
                    }
                    return Ok(done);
                }
                Err(failure) => failure,
            };
            let timed_out = failure.error.is_timeout();
            let stale = reused && failure.got_nothing && replayable;
            let untouched = failure.unprocessed && parts.body.is_replayable();
            // A stale reuse is retried once (Go's rule). A request the server
            // provably never saw may go again a few times: each failure also
            // marks its connection closing, so the next try goes elsewhere
            // (several connections can be in GOAWAY at once).
            let again =
                (attempt == 1 && stale) || (untouched && attempt <= MAX_UNPROCESSED_RETRIES);
            if !timed_out && again {
                pool.note_retry(key);
                if tracer.is_on() {
                    tracer.retry(if untouched {
                        "the server did not process it (nothing written, REFUSED_STREAM or GOAWAY)"
                    } else {
                        "a reused connection failed before any response byte, and the request is replayable"
                    });
                }
                tracing::debug!(host = %key, error = %failure.error, "retrying on a new connection");
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
        tracer: &mut Tracer,
    ) -> Result<Exchanged, Failure> {
        let cfg = self.inner.pool.config();
        if tracer.is_on() {
            tracer.got_conn(
                lease.uses > 1,
                lease.idle_for,
                lease.conn.local_addr(),
                http::Version::HTTP_11,
            );
        }
        let out = Outgoing {
            method: &parts.method,
            uri: &parts.uri,
            authority: key.authority(),
            headers: &parts.headers,
            close: cfg.disable_keep_alives,
        };
        let written = lease
            .conn
            .write_request(&out, &mut parts.body, cfg.read_idle_timeout)
            .await;
        tracer.wrote_request(written.as_ref().err().map(|f| &f.error));
        let sent = match written {
            Ok(()) => {
                let wrote = Instant::now();
                let head = lease
                    .conn
                    .read_head(&parts.method, cfg.response_header_timeout)
                    .await;
                if head.is_ok() {
                    let after = wrote.elapsed();
                    lease.set_ttfb(after);
                    tracer.first_byte(after);
                }
                head
            }
            Err(failed) => Err(failed),
        };
        match sent {
            Ok((head, decision)) => Ok(Exchanged::H1(head, decision, lease)),
            Err(f) => {
                let reason = if f.error.is_timeout() {
                    CloseReason::Timeout
                } else {
                    CloseReason::Error
                };
                lease.close(reason);
                tracer.conn_closed(reason);
                Err(Failure {
                    error: f.error,
                    got_nothing: f.got_nothing,
                    unprocessed: f.wrote_nothing,
                })
            }
        }
    }

    async fn h2(
        &self,
        mut stream: H2Stream,
        parts: &mut Parts,
        tracer: &mut Tracer,
    ) -> Result<Exchanged, Failure> {
        let cfg = self.inner.pool.config();
        if tracer.is_on() {
            tracer.got_conn(!stream.fresh, stream.idle_for, None, http::Version::HTTP_2);
        }
        match h2::send(&mut stream, parts, cfg).await {
            Ok(res) => {
                tracer.wrote_request(None);
                tracer.first_byte(stream.guard.ttfb.unwrap_or_default());
                Ok(Exchanged::H2(res, stream.guard))
            }
            Err(f) => {
                tracer.wrote_request(Some(&f.error));
                // The stream is reset; the shared connection carries on.
                tracer.conn_returned();
                Err(Failure {
                    error: f.error,
                    got_nothing: true,
                    unprocessed: f.unprocessed,
                })
            }
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

/// Tries for a request that provably never reached the server.
const MAX_UNPROCESSED_RETRIES: u32 = 3;

/// Go's rule: idempotent methods, or an idempotency key, may be replayed.
fn is_replay_safe(method: &Method, headers: &http::HeaderMap) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    ) || headers.contains_key("idempotency-key")
        || headers.contains_key("x-idempotency-key")
}
