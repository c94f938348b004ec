//! One exchange: a request out, a response head back with the body that
//! holds its connection. A checkout, one attempt on HTTP/1.1 or HTTP/2,
//! and the retry rule: once more on a fresh connection when the first try
//! provably did nothing, or failed on a reused connection before any
//! response byte and replay is safe (Go's rule).
//!
//! Everything above (the façade, and policies such as redirects) deals in
//! whole exchanges and never touches a socket.

use std::time::Duration;

use http::{HeaderMap, Method, Uri};
use tokio::time::Instant;

use crate::{
    attempt::{Failure, Forward, Outgoing},
    body::{Body, Incoming},
    config::Config,
    error::Error,
    http1::{fields::Fields, framing::Decision, head::Head},
    http2,
    pool::{self, Checkout, Dialed, H2Stream, Lease, Pool, StreamGuard},
    response::Response,
    route::Route,
    trace::{Life, Tracer},
};

/// A request ready to go, owned (the protocols borrow it as [`Outgoing`]).
#[derive(Debug)]
pub(crate) struct Parts {
    pub method: Method,
    pub uri: Uri,
    /// The caller's headers; empty while `plain`.
    pub headers: HeaderMap,
    /// The request set no header of its own and goes out with the
    /// client's (`Config::plain_headers`), borrowed rather than cloned for
    /// every request until something changes them.
    pub plain: bool,
    pub body: Body,
    /// The total deadline of this request; overrides the client's.
    pub timeout: Option<Duration>,
    /// Where `send` was called: named in leak reports.
    pub site: &'static std::panic::Location<'static>,
    /// This request's redirect policy; overrides the client's.
    pub redirect: Option<crate::redirect::Policy>,
}

impl Parts {
    /// The headers to send.
    pub fn headers<'a>(&'a self, cfg: &'a Config) -> &'a HeaderMap {
        to_send(cfg, self.plain, &self.headers)
    }

    /// The headers, to change (the client's are copied in first).
    pub fn headers_mut(&mut self, cfg: &Config) -> &mut HeaderMap {
        if std::mem::take(&mut self.plain)
            && let Some((plain, _)) = &cfg.plain_headers
        {
            self.headers = plain.clone();
        }
        &mut self.headers
    }
}

/// The headers to send: the client's when `plain`, else `own`. Apart from
/// `Parts::headers` so a borrow of them leaves the body free.
fn to_send<'a>(cfg: &'a Config, plain: bool, own: &'a HeaderMap) -> &'a HeaderMap {
    match &cfg.plain_headers {
        Some((headers, _)) if plain => headers,
        _ => own,
    }
}

/// A response head with what holds its connection.
pub(crate) enum Exchanged {
    H1(Head, Decision, Lease),
    /// Boxed: unboxed it made every exchange's result 232 bytes, and each
    /// of the half-dozen moves on the way up a call to `memcpy`.
    H2(
        Box<(
            http::Response<h2::RecvStream>,
            StreamGuard,
            Option<std::net::SocketAddr>,
        )>,
    ),
}

impl Exchanged {
    /// The response, its body owning the connection until read or dropped.
    pub fn into_response(
        self,
        cfg: &Config,
        route: &Route,
        deadline: Option<(Instant, Duration)>,
        life: Life,
    ) -> Response {
        let (mut res, tls_info) = match self {
            Exchanged::H1(head, decision, lease) => {
                record(&life.span, head.status, head.version);
                let tls_info = lease.tls_info.clone();
                let remote = lease.conn.remote_addr();
                let body = || Incoming::h1(lease, decision, deadline, life);
                (Response::new(head, remote, body), tls_info)
            }
            Exchanged::H2(h2) => {
                let (res, guard, remote) = *h2;
                let tls_info = guard.tls_info.clone();
                let (head, recv) = res.into_parts();
                record(&life.span, head.status, head.version);
                let declared = head
                    .headers
                    .get(http::header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                let head = Head {
                    status: head.status,
                    version: head.version,
                    headers: Fields::from_map(head.headers),
                };
                let body = || Incoming::h2(recv, guard, declared, cfg, route, deadline, life);
                (Response::new(head, remote, body), tls_info)
            }
        };
        if let Some(info) = tls_info {
            res.extensions_mut().insert(info);
        }
        res
    }
}

/// What the response head says, on the hop's span (a disabled span, the
/// usual case, skips the formatting).
fn record(span: &tracing::Span, status: http::StatusCode, version: http::Version) {
    if !span.is_disabled() {
        span.record("status", status.as_u16());
        span.record("version", tracing::field::debug(version));
    }
}

/// Tries for a request that provably never reached the server: Go's
/// HTTP/2 transport makes up to 8 attempts (`retry <= 6`). A server that
/// closes each HTTP/2 connection after a few streams (nginx's
/// `keepalive_requests`) refuses the rest of a burst with GOAWAY, again on
/// each new connection, so a burst needs several rounds; each attempt is
/// also bounded by the request's deadline.
const MAX_UNPROCESSED_RETRIES: u32 = 7;

/// Checkout, send, read the head; again on a fresh connection when safe.
/// `span` is the hop's, told how many retries it took.
pub(crate) async fn exchange(
    pool: &Pool,
    route: &Route,
    parts: &mut Parts,
    tracer: &mut Tracer,
    span: &tracing::Span,
) -> Result<Exchanged, Error> {
    let cfg = pool.config();
    let replayable =
        parts.body.is_replayable() && is_replay_safe(&parts.method, parts.headers(cfg));
    let mut attempt = 0;
    loop {
        attempt += 1;
        tracer.get_conn();
        let checkout = match pool.checkout(route, parts.site).await {
            Ok(c) => c,
            Err(e) => {
                tracer.get_conn_failed(&e);
                return Err(e);
            }
        };
        let (reused, outcome) = match checkout {
            Checkout::Reused(lease) => (true, h1(cfg, lease, route, parts, tracer).await),
            Checkout::Stream(stream) => (true, h2(cfg, stream, route, parts, tracer).await),
            Checkout::Dial(slot) => {
                tracer.arm(
                    cfg.observer.as_ref(),
                    &parts.method,
                    route.authority(),
                    parts.site,
                );
                // Boxed: the dial (TLS state above all) would otherwise make
                // every request's future kilobytes larger, copied at each await.
                match Box::pin(pool::dial(slot, route, tracer)).await {
                    Ok(Dialed::H1(lease)) => (false, h1(cfg, lease, route, parts, tracer).await),
                    Ok(Dialed::H2(stream)) => (false, h2(cfg, stream, route, parts, tracer).await),
                    Err(e) => {
                        tracer.get_conn_failed(&e);
                        return Err(e);
                    }
                }
            }
        };
        let failure = match outcome {
            Ok(done) => {
                if !span.is_disabled() {
                    span.record("retries", attempt - 1);
                    span.record("reused", reused);
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
        let again = (attempt == 1 && stale) || (untouched && attempt <= MAX_UNPROCESSED_RETRIES);
        if !timed_out && again {
            pool.note_retry(route);
            if tracer.is_on() {
                tracer.retry(if untouched {
                    "the server did not process it (nothing written, REFUSED_STREAM, or a GOAWAY below its stream)"
                } else {
                    "a reused connection failed before any response byte, and the request is replayable"
                });
            }
            tracing::debug!(host = %route, error = %failure.error, "retrying on a new connection");
            continue;
        }
        let mut error = failure.error.with_host(route.authority());
        if failure.got_nothing && !failure.unprocessed && !timed_out && !error.is_protocol() {
            error.set_maybe_sent(true);
        }
        return Err(error);
    }
}

/// One attempt on an HTTP/1.1 connection of our own; on failure it is closed.
async fn h1(
    cfg: &Config,
    mut lease: Lease,
    route: &Route,
    parts: &mut Parts,
    tracer: &mut Tracer,
) -> Result<Exchanged, Failure> {
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
        authority: route.authority(),
        headers: to_send(cfg, parts.plain, &parts.headers),
        close: cfg.disable_keep_alives,
        forward: route.forward_proxy().map(|hop| Forward {
            credentials: hop.credentials.as_ref().map(|c| &c.basic),
        }),
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
                .read_head(&parts.method, cfg.response_header_timeout, wrote)
                .await;
            if head.is_ok() {
                let now = Instant::now();
                lease.conn.arrived_by(now);
                let after = now.saturating_duration_since(wrote);
                lease.set_ttfb(after);
                tracer.first_byte(after);
            }
            head
        }
        Err(failed) => Err(failed),
    };
    match sent {
        Ok((head, decision)) => Ok(Exchanged::H1(head, decision, lease)),
        Err(failure) => {
            // HTTP/1.1 failures leave the connection in an unknown state.
            let reason = failure.close_reason();
            lease.close(reason);
            tracer.conn_closed(reason);
            Err(failure)
        }
    }
}

/// One attempt on a stream of a shared HTTP/2 connection.
async fn h2(
    cfg: &Config,
    mut stream: Box<H2Stream>,
    route: &Route,
    parts: &mut Parts,
    tracer: &mut Tracer,
) -> Result<Exchanged, Failure> {
    if tracer.is_on() {
        tracer.got_conn(
            !stream.fresh,
            stream.idle_for,
            stream.ends.local,
            http::Version::HTTP_2,
        );
    }
    let out = Outgoing {
        method: &parts.method,
        uri: &parts.uri,
        authority: route.authority(),
        headers: to_send(cfg, parts.plain, &parts.headers),
        close: cfg.disable_keep_alives,
        forward: None,
    };
    let sent = http2::send(
        &mut stream.send,
        &out,
        &mut parts.body,
        cfg.read_idle_timeout,
        cfg.response_header_timeout,
    )
    .await;
    match sent {
        Ok((res, ttfb)) => {
            stream.guard.ttfb = ttfb;
            tracer.wrote_request(None);
            tracer.first_byte(ttfb.unwrap_or_default());
            Ok(Exchanged::H2(Box::new((
                res,
                stream.guard,
                stream.ends.remote,
            ))))
        }
        Err(failure) => {
            stream.guard.suffer(failure.fate);
            tracer.wrote_request(Some(&failure.error));
            // The stream is reset; the shared connection carries on.
            tracer.conn_returned();
            Err(failure)
        }
    }
}

/// Go's rule: idempotent methods, or an idempotency key, may be replayed.
fn is_replay_safe(method: &Method, headers: &HeaderMap) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    ) || headers.contains_key("idempotency-key")
        || headers.contains_key("x-idempotency-key")
}
