//! The façade: [`Client`] and its builders. A client is a handle on one
//! pool; every request goes `RequestBuilder::send` → `Client::send` (the
//! total deadline, the observer's tracer and the span) → one exchange.
//!
//! - `builder`: [`ClientBuilder`], the Go-named settings and their defaults.
//! - `tower`: `Client` as a `tower_service::Service`.
//! - `network`: the builder's settings for how connections are made (DNS,
//!   socket options, proxies, unix sockets, TLS knobs).
//! - `request`: [`RequestBuilder`].
//! - `send`: the request path up to the response.
//! - `metrics`: Prometheus exposition over the pool's stats.
//! - `count`: warns once when a process keeps creating clients.

mod builder;
mod count;
mod metrics;
mod network;
mod request;
mod send;
mod tower;

use std::sync::{Arc, atomic::AtomicU64};

use http::{Method, Uri};

pub use builder::ClientBuilder;
pub use request::RequestBuilder;

use self::{count::Counted, request::parse_uri};
use crate::{
    body::Body,
    config::Config,
    connect::Connector,
    error::Error,
    exchange::Parts,
    pool::{Outstanding, Pool},
    response::Response,
    stats::PoolStats,
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
    /// Numbers requests for observers.
    next_request: AtomicU64,
    _counted: Counted,
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

    fn from_parts(config: Config, connector: Connector) -> Client {
        Client {
            inner: Arc::new(ClientRef {
                pool: Pool::new(config, connector),
                next_request: AtomicU64::new(0),
                _counted: Counted::new(),
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

    /// A PUT request.
    #[track_caller]
    pub fn put<U>(&self, url: U) -> RequestBuilder
    where
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
    {
        self.request(Method::PUT, url)
    }

    /// A PATCH request.
    #[track_caller]
    pub fn patch<U>(&self, url: U) -> RequestBuilder
    where
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
    {
        self.request(Method::PATCH, url)
    }

    /// A DELETE request.
    #[track_caller]
    pub fn delete<U>(&self, url: U) -> RequestBuilder
    where
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
    {
        self.request(Method::DELETE, url)
    }

    /// A HEAD request: the response has no body.
    #[track_caller]
    pub fn head<U>(&self, url: U) -> RequestBuilder
    where
        U: TryInto<Uri>,
        U::Error: Into<http::Error>,
    {
        self.request(Method::HEAD, url)
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
        let parts = Box::new(Parts {
            method: head.method,
            uri: head.uri,
            headers: head.headers,
            plain: false,
            body: body.into(),
            timeout: None,
            site,
            redirect: None,
        });
        let client = self.clone();
        async move { client.send(parts).await }
    }

    /// Adds this client's pool metrics to `registry` (names start with
    /// `leakless_`; see the README for the list). The registry holds the
    /// pool weakly: a dropped client just stops reporting.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        metrics::register(registry, self.inner.pool.downgrade());
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
    pub fn outstanding(&self) -> Vec<Outstanding> {
        self.inner.pool.outstanding()
    }

    /// A snapshot of the pool's connections and counters.
    pub fn stats(&self) -> PoolStats {
        self.inner.pool.stats()
    }
}
