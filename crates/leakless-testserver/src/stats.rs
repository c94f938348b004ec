//! The server's accounting as plain snapshots: [`ServerStats`], one
//! [`ConnStats`] per connection, and why each connection closed.

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// A consistent snapshot of the server's counters.
///
/// Every field is updated under one lock, so a snapshot never shows a
/// half-done change (e.g. `closed` moved but `open` not yet).
///
/// When each count moves, relative to what a client can see:
/// - `accepted`: right after `accept` returns, before anything is read.
/// - `requests`: when a request has been read in full, before the reply's
///   first byte is written. So once a client holds a response, its request
///   is counted.
/// - `closed`: after the socket is closed. A client may see the EOF a moment
///   before the count moves: wait for it ([`TestServer::wait_closed`]).
///
/// [`TestServer::wait_closed`]: crate::TestServer::wait_closed
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerStats {
    /// Connections accepted.
    pub accepted: u64,
    /// Connections closed, for any reason.
    pub closed: u64,
    /// Connections the server chose to close ([`CloseReason::by_server`]).
    pub closed_by_server: u64,
    /// Connections the client closed or reset first.
    pub closed_by_peer: u64,
    /// Closed connections by reason.
    pub closes: BTreeMap<CloseReason, u64>,
    /// Connections open now: `accepted - closed`.
    pub open: u64,
    /// Open connections waiting between requests ([`ConnState::Idle`]).
    pub idle: u64,
    /// Requests read in full, on all connections.
    pub requests: u64,
    /// Writes that failed because the client had gone (e.g. an endless body
    /// the client stopped reading and closed).
    pub write_failures: u64,
    /// Requests that could not be parsed (answered with 400 or 431).
    pub bad_requests: u64,
    /// Per connection, by connection id (1, 2, ... in accept order). Closed
    /// connections stay listed until [`Config::history`] pushes them out.
    ///
    /// [`Config::history`]: crate::Config::history
    pub conns: BTreeMap<u64, ConnStats>,
}

impl ServerStats {
    /// How many connections closed for this reason.
    pub fn closed_for(&self, reason: CloseReason) -> u64 {
        self.closes.get(&reason).copied().unwrap_or(0)
    }

    /// Requests served per connection, in connection id order (only
    /// connections still in the history).
    pub fn requests_per_conn(&self) -> Vec<u64> {
        self.conns.values().map(|c| c.requests).collect()
    }
}

/// One connection's accounting.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnStats {
    /// The client's address: its local port identifies the client socket.
    pub peer: SocketAddr,
    /// Requests read in full on this connection.
    pub requests: u64,
    /// Writes on this connection that failed because the client had gone.
    pub write_failures: u64,
    /// What the connection is doing now.
    pub state: ConnState,
}

/// What a connection is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnState {
    /// Accepted, no byte of a first request yet.
    New,
    /// Between two requests: the keep-alive timeout runs and
    /// [`TestServer::close_idle_connections`] applies.
    ///
    /// [`TestServer::close_idle_connections`]: crate::TestServer::close_idle_connections
    Idle,
    /// Reading a request, waiting out latency, or writing a reply.
    Busy,
    /// Held open on purpose by a fault ([`Fault::Stall`] and friends).
    ///
    /// [`Fault::Stall`]: crate::Fault::Stall
    Stalled,
    /// Closed, and why.
    Closed(CloseReason),
}

/// Why a connection closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// The client closed or reset the connection (EOF or error on read, or
    /// a write that failed).
    Peer,
    /// The request asked for it: `Connection: close`, or HTTP/1.0 without
    /// `Connection: keep-alive`.
    RequestClose,
    /// The reply asked for it: [`Reply::close`], `?close=1`, or a body
    /// delimited by close.
    ///
    /// [`Reply::close`]: crate::Reply::close
    ReplyClose,
    /// [`Config::max_requests_per_conn`] reached.
    ///
    /// [`Config::max_requests_per_conn`]: crate::Config::max_requests_per_conn
    MaxRequests,
    /// Idle longer than [`Config::keep_alive_timeout`].
    ///
    /// [`Config::keep_alive_timeout`]: crate::Config::keep_alive_timeout
    KeepAliveTimeout,
    /// [`TestServer::close_idle_connections`].
    ///
    /// [`TestServer::close_idle_connections`]: crate::TestServer::close_idle_connections
    CloseIdle,
    /// [`TestServer::close_all_connections`].
    ///
    /// [`TestServer::close_all_connections`]: crate::TestServer::close_all_connections
    CloseAll,
    /// A fault closed or reset it on purpose.
    Fault,
    /// The request could not be parsed.
    BadRequest,
    /// The server is shutting down.
    Shutdown,
    /// The connection's task panicked.
    Panicked,
}

impl CloseReason {
    /// Whether the server, not the client, decided to close.
    pub fn by_server(self) -> bool {
        self != CloseReason::Peer
    }
}
