//! The request path: the total deadline around one exchange, the
//! observer's tracer and the `tracing` span, which then ride in the body
//! until it ends.

use std::sync::atomic::Ordering;

use tokio::time::Instant;
use tracing::Instrument;

use super::Client;
use crate::{
    error::Error,
    exchange::{Parts, exchange},
    phase::Phase,
    response::Response,
    route::Route,
    trace::{Life, RequestInfo, Tracer},
};

impl Client {
    pub(crate) async fn send(&self, mut parts: Parts) -> Result<Response, Error> {
        let route = Route::from_uri(&parts.uri)?;
        let pool = &self.inner.pool;
        let cfg = pool.config();
        let started = Instant::now();
        let total = parts.timeout.or(cfg.timeout);
        let deadline = total.map(|t| (started + t, t));
        let tracer = Tracer::new(cfg.observer.as_ref(), || RequestInfo {
            id: self.inner.next_request.fetch_add(1, Ordering::Relaxed),
            method: parts.method.clone(),
            host: route.authority().to_owned(),
            call_site: parts.site,
        });
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
            started,
        };
        let exchange =
            exchange(pool, &route, &mut parts, &mut life.tracer).instrument(life.span.clone());
        let outcome = match deadline {
            None => exchange.await,
            Some((at, t)) => match tokio::time::timeout_at(at, exchange).await {
                Ok(res) => res,
                Err(_) => Err(Error::timeout(Phase::Total, t).with_host(route.authority())),
            },
        };
        match outcome {
            Ok(exchanged) => Ok(exchanged.into_response(cfg, &route, deadline, life)),
            Err(e) => {
                if !life.span.is_disabled() {
                    let _enter = life.span.enter();
                    tracing::debug!(error = %e, "request failed");
                }
                Err(e)
            }
        }
    }
}
