//! leakless: an HTTP client whose connection pool cannot leak.
//!
//! A connection is a value. Whoever holds it owns it: the pool while it is
//! idle, the request while it is being sent, the response body until it is
//! read. It goes back by being handed back and is closed by being dropped,
//! and both paths keep the counts exact. The pool is bounded by Go's
//! `http.Transport` limits plus a FIFO wait queue and a maximum lifetime,
//! and every phase of a request has a timeout.
//!
//! ```no_run
//! # async fn run() -> Result<(), leakless::Error> {
//! let client = leakless::Client::builder().max_conns_per_host(16).build()?;
//! let res = client.get("http://127.0.0.1:8080/").send().await?;
//! println!("{} {}", res.status(), res.text().await?);
//! println!("{:?}", client.stats().total);
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! Dependencies point one way, top to bottom: a module uses its own parent
//! and children and the layers below it, never one above (checked by the
//! unit test in `src/layers.rs`). `ARCHITECTURE.md` at the repository root
//! walks the path of a request and of a connection's return.
//!
//! | layer | module | what it holds |
//! |---|---|---|
//! | façade | `client/` | [`Client`], [`ClientBuilder`] (`builder`), [`RequestBuilder`] (`request`); `send`: the request's number and total deadline, handed to the policies; `metrics`: Prometheus exposition over the pool's stats; `count`: warns once when a process keeps creating clients |
//! | response | `exchange` | one exchange: checkout, one attempt on HTTP/1.1 or HTTP/2, the retry rule (Go's), the response |
//! | | `response` | [`Response`] |
//! | | `body/response`, `body/drain`, `body/decode` | [`Incoming`]: the response body that owns the connection's lease or stream; what it does when dropped early (bounded background drain, or close); the content decoder its bytes go through when compressed |
//! | policy | `policy/` | around one exchange: `hop` (the tracer, span and total deadline of one exchange), `redirect` (Go's rules for following one; each hop's response drained or closed before the next asks for a connection), `decompress` (Accept-Encoding offered, the final response decoded), `cookies` (the store asked and told at every hop) |
//! | pool | `pool/` | who holds a connection: `lease` (`Slot` and `Lease`, whose `Drop` is the one way a count goes down), `dial` (registering a freshly opened connection), `streams` (HTTP/2 stream handles), `host` (per-host counts, LIFO idle list, HTTP/2 entries), `hosts` (the host map: a host leaves when empty, recent ones keep their counts), `series` (the hosts Prometheus names, counters that never go down), `waiter` (FIFO queue), `reaper`, `leak` ([`Outstanding`] and the `leak_threshold` scanner) |
//! | protocols | `http1/` | our HTTP/1.1 engine: request encoding, head parsing (httparse), RFC 9112 body framing and decoding, the connection |
//! | | `http2/` | HTTP/2 over the h2 crate: the handshake, the driver loop with keep-alive pings, one request on a stream |
//! | connect | `connect/` | opening a connection: `dns` (overrides, a resolver), `eyeballs` (Happy Eyeballs within `connect_timeout`), `tcp` (one attempt, socket options), `tls` (rustls with ALPN), `transport`; returns what ALPN chose and the timings, knows nothing of the pool |
//! | vocabulary | `attempt` | what both protocols take (`Outgoing`) and report (`Failure`: what the retry rule needs, what the connection should suffer) |
//! | | `route` | a request's route (scheme, host, port), the pool's key |
//! | | [`redirect`] | the redirect [`Policy`](redirect::Policy): which redirects to follow |
//! | | `multipart` | `multipart/form-data` forms (feature `multipart`) |
//! | | `cookie` | `CookieStore` and the built-in `Jar` (feature `cookies`) |
//! | | `config/` | every setting and its default; TLS and dial options, [`Certificate`], [`Identity`] |
//! | | `dns` | [`dns::Resolve`]: the resolver plug-in's vocabulary |
//! | | `body/request` | [`Body`]: request bodies (bytes, strings, streams) |
//! | | `error`, `phase` | [`Error`]: what, where ([`Phase`], host), what to do |
//! | | `stats` | [`PoolStats`]: connections per state, counters, close reasons, latency histograms |
//! | | `trace` | [`Observer`] and its [`Event`]s; the per-request tracer and `tracing` span |
#![deny(missing_docs)]

// Vocabulary: plain types every layer may use.
mod attempt;
mod body;
mod config;
#[cfg(feature = "cookies")]
pub mod cookie;
pub mod dns;
mod error;
#[cfg(feature = "multipart")]
pub mod multipart;
mod phase;
pub mod redirect;
mod route;
mod stats;
mod trace;
// Connecting, then the protocols over a connection.
mod connect;
mod http1;
mod http2;
// Who holds a connection.
mod pool;
// One exchange and the response it yields.
mod exchange;
mod response;
// Policies around one exchange: redirects.
mod policy;
// The façade.
mod client;

#[doc(hidden)]
pub mod __private;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
#[cfg(test)]
mod layers;

pub use body::{Body, Incoming};
pub use bytes::Bytes;
pub use client::{Client, ClientBuilder, RequestBuilder};
pub use config::{Certificate, Identity, NoProxy, Proxy, TlsInfo};

/// TLS vocabulary, where reqwest has it: [`tls::Version`] for
/// `min_tls_version`, [`tls::TlsInfo`] on responses, and the certificate
/// types (also at the crate root).
pub mod tls {
    pub use crate::config::{Certificate, Identity, TlsInfo, TlsVersion as Version};
}
pub use error::{Error, ErrorKind, PoolState};
pub use http::{HeaderMap, Method, StatusCode, Version, header};
pub use phase::Phase;
pub use pool::Outstanding;
pub use response::Response;
pub use stats::{
    CloseReason, ClosedBy, Histogram, HostStats, LATENCY_BUCKETS, PoolStats, RECENT_HOSTS,
};
pub use trace::{Event, Observer, RequestInfo};
pub use url::Url;
