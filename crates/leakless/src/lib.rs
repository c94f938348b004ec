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
//! | module | what it holds |
//! |---|---|
//! | `client` | [`Client`], the request path: checkout → send → lease into the body, the retry rule |
//! | `request` | [`RequestBuilder`] |
//! | `config` | [`ClientBuilder`]: Go-named limits and timeouts, every default documented once |
//! | `timeout` | [`Phase`]: where a request was when it failed |
//! | `error` | [`Error`]: what, where (phase, host), what to do |
//! | `pool/` | per-host counts and limits, LIFO idle lists, shared HTTP/2 entries, global LRU cap, FIFO waiters, the reaper |
//! | `lease` | `Slot` and `Lease`: the accounting guards whose `Drop` is the one way a count goes down |
//! | `conn/` | dialing: TCP within `connect_timeout`, TLS (rustls) with ALPN, the `Transport` enum |
//! | `h2` | HTTP/2 over the h2 crate: handshake, the driver task with keep-alive pings, streams |
//! | `h1/` | our HTTP/1.1 engine: request encoding, head parsing (httparse), RFC 9112 body framing |
//! | `body` | [`Body`]: request bodies (bytes, strings, streams) |
//! | `incoming` | [`Incoming`]: the response body that owns the connection's lease |
//! | `drain` | what an early-dropped body does: bounded background drain, or close |
//! | `response` | [`Response`] |
//! | `stats` | [`PoolStats`]: connections per state, counters, close reasons, latency histograms |
//! | `trace` | [`Observer`] and its [`Event`]s; the per-request tracer and `tracing` span |
//! | `census` | counts clients to warn once when a process builds one per request |
//! | `metrics` | Prometheus exposition: a collector over `stats()`, bounded host labels |
//! | `leak` | outstanding leases with their call sites; the `leak_threshold` scanner |
#![deny(missing_docs)]

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod body;
mod census;
mod client;
mod config;
mod conn;
mod drain;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
mod h1;
mod h2;
mod incoming;
mod leak;
mod lease;
mod metrics;
mod pool;
mod request;
mod response;
mod stats;
mod timeout;
mod trace;

pub use body::Body;
pub use bytes::Bytes;
pub use client::Client;
pub use config::ClientBuilder;
pub use conn::{Certificate, Identity};
pub use error::{Error, ErrorKind, PoolState};
pub use http::{HeaderMap, Method, StatusCode, Version, header};
pub use incoming::Incoming;
pub use leak::Outstanding;
pub use request::RequestBuilder;
pub use response::Response;
pub use stats::{CloseReason, ClosedBy, Histogram, HostStats, LATENCY_BUCKETS, PoolStats};
pub use timeout::Phase;
pub use trace::{Event, Observer, RequestInfo};
