//! The phases of a request and the timeout that bounds each.

use std::fmt;

/// A phase of a request: where it was when something failed or timed out.
///
/// Every phase has a bounded default timeout (see [`ClientBuilder`](crate::ClientBuilder)),
/// except [`Phase::Total`], which is off unless set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// Waiting for a connection slot because the host is at `max_conns_per_host`.
    PoolWait,
    /// Resolving the host name and opening the TCP connection.
    Connect,
    /// Asking a proxy for the way to the target: the `CONNECT` exchange,
    /// or the SOCKS5 handshake, after the TCP connect to the proxy.
    ProxyConnect,
    /// The TLS handshake.
    Tls,
    /// Writing the request head and body.
    WriteRequest,
    /// Waiting for and reading the response head.
    ResponseHeaders,
    /// Reading the response body.
    BodyRead,
    /// The request's total deadline (`timeout`), whatever the phase.
    Total,
}

impl Phase {
    /// The builder setting that bounds this phase: what to raise when it times out.
    pub fn setting(self) -> &'static str {
        match self {
            Phase::PoolWait => "pool_wait_timeout",
            Phase::Connect | Phase::ProxyConnect => "connect_timeout",
            Phase::Tls => "tls_handshake_timeout",
            Phase::WriteRequest | Phase::BodyRead => "read_idle_timeout",
            Phase::ResponseHeaders => "response_header_timeout",
            Phase::Total => "timeout",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::PoolWait => "pool wait",
            Phase::Connect => "connect",
            Phase::ProxyConnect => "proxy CONNECT",
            Phase::Tls => "TLS handshake",
            Phase::WriteRequest => "write request",
            Phase::ResponseHeaders => "response headers",
            Phase::BodyRead => "body read",
            Phase::Total => "total deadline",
        })
    }
}
