//! The request path from the façade: the request's number and its total
//! deadline, then the policies (redirects and the rest), which send it in
//! one or more hops.

use std::{future::Future, sync::atomic::Ordering};

use tokio::time::Instant;

use super::Client;
use crate::{error::Error, exchange::Parts, policy, response::Response};

impl Client {
    /// Not an `async fn`: a layer of futures is copied whole each time the
    /// one above builds and awaits it, so the façade awaits the policies'
    /// future directly (about 130 instructions per request less). Inlined,
    /// so that future is built where it is awaited, not built and copied.
    #[inline]
    pub(crate) fn send(
        &self,
        parts: Box<Parts>,
    ) -> impl Future<Output = Result<Response, Error>> + Send + '_ {
        let pool = &self.inner.pool;
        let total = parts.timeout.or(pool.config().timeout);
        // The clock is read only for what needs the start: a total deadline,
        // or a `tracing` subscriber that may want the request span's
        // duration (a level check is one atomic load; the read is not free).
        let started =
            (total.is_some() || tracing::level_enabled!(tracing::Level::INFO)).then(Instant::now);
        // Only observers see the number: no shared counter to bump without one.
        let id = match pool.config().observer {
            Some(_) => self.inner.next_request.fetch_add(1, Ordering::Relaxed),
            None => 0,
        };
        let request = policy::Request {
            id,
            started,
            deadline: total.zip(started).map(|(t, at)| (at + t, t)),
        };
        policy::send(pool, parts, request)
    }
}
