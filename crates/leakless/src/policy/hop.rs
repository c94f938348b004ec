//! One hop of a request: its route, the observer's tracer and the
//! `tracing` span around one exchange, within the total deadline. The
//! tracer and span then ride in the response body until it ends. A
//! redirect is several hops, each with its own events under one id.

use http::StatusCode;
use tokio::time::Instant;
use tracing::Instrument;

use crate::{
    error::Error,
    exchange::{Parts, exchange},
    phase::Phase,
    pool::Pool,
    response::Response,
    trace::{Life, RequestInfo, Tracer},
};

/// Where a hop stands in its request.
pub(crate) struct Hop<'a> {
    /// The request's number for observers, shared by its hops.
    pub id: u64,
    /// Redirects followed before this hop.
    pub n: u32,
    /// When `send` was called, if anything needs it (see `Client::send`).
    pub started: Option<Instant>,
    /// The total deadline and the duration it came from.
    pub deadline: Option<(Instant, std::time::Duration)>,
    /// The redirect that led here: the status and the URL that answered it,
    /// and the URL this hop asks for.
    pub from: Option<(StatusCode, &'a str, &'a str)>,
}

/// Sends `parts` once (the exchange's own retries aside) and returns the
/// response, its body holding the connection.
pub(crate) async fn one(pool: &Pool, parts: &mut Parts, hop: Hop<'_>) -> Result<Response, Error> {
    let cfg = pool.config();
    let route = cfg.dial.route(&parts.uri)?;
    let mut tracer = Tracer::new(cfg.observer.as_ref(), hop.id, hop.n, || RequestInfo {
        id: hop.id,
        method: parts.method.clone(),
        host: route.authority().to_owned(),
        call_site: parts.site,
        hop: hop.n,
    });
    if let Some((status, from, to)) = hop.from {
        tracer.redirect(status, from, to);
    }
    let span = tracing::info_span!(
        "request",
        method = %parts.method,
        host = %route.authority(),
        status = tracing::field::Empty,
        version = tracing::field::Empty,
        reused = tracing::field::Empty,
        retries = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    );
    let mut life = Life {
        tracer,
        span,
        started: hop.started,
    };
    let total = |t| Error::timeout(Phase::Total, t).with_host(route.authority());
    let (tracer, span) = (&mut life.tracer, &life.span);
    // A disabled span (no subscriber wants it) is not entered at every
    // poll: the exchange is awaited bare.
    let outcome = match (hop.deadline, span.is_disabled()) {
        (None, true) => exchange(pool, &route, parts, tracer, span).await,
        (None, false) => {
            exchange(pool, &route, parts, tracer, span)
                .instrument(span.clone())
                .await
        }
        (Some((at, t)), true) => {
            tokio::time::timeout_at(at, exchange(pool, &route, parts, tracer, span))
                .await
                .unwrap_or_else(|_| Err(total(t)))
        }
        (Some((at, t)), false) => {
            let exchange = exchange(pool, &route, parts, tracer, span).instrument(span.clone());
            tokio::time::timeout_at(at, exchange)
                .await
                .unwrap_or_else(|_| Err(total(t)))
        }
    };
    match outcome {
        Ok(exchanged) => Ok(exchanged.into_response(cfg, &route, hop.deadline, life)),
        Err(e) => {
            if !life.span.is_disabled() {
                let _enter = life.span.enter();
                tracing::debug!(error = %e, "request failed");
            }
            Err(e)
        }
    }
}
