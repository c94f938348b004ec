//! The request path from the façade: the request's number and its total
//! deadline, then the policies (redirects and the rest), which send it in
//! one or more hops.

use std::sync::atomic::Ordering;

use tokio::time::Instant;

use super::Client;
use crate::{error::Error, exchange::Parts, policy, response::Response};

impl Client {
    pub(crate) async fn send(&self, parts: Parts) -> Result<Response, Error> {
        let pool = &self.inner.pool;
        let started = Instant::now();
        let total = parts.timeout.or(pool.config().timeout);
        // Only observers see the number: no shared counter to bump without one.
        let id = match pool.config().observer {
            Some(_) => self.inner.next_request.fetch_add(1, Ordering::Relaxed),
            None => 0,
        };
        let request = policy::Request {
            id,
            started,
            deadline: total.map(|t| (started + t, t)),
        };
        policy::send(pool, parts, request).await
    }
}
