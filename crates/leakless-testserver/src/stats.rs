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
    /// Requests that could not be parsed (answered with 400 or 431), and
    /// HTTP/2 connections that broke the protocol.
    pub bad_requests: u64,
    /// TLS handshakes completed.
    pub tls_handshakes: u64,
    /// Of those, how many resumed an earlier session.
    pub tls_resumed: u64,
    /// TLS handshakes that failed (certificate rejected, no common ALPN
    /// protocol, client certificate missing or untrusted, not TLS at all);
    /// the error is in [`ConnStats::tls_error`].
    pub tls_failures: u64,
    /// Connections that spoke HTTP/2 (ALPN `h2` or the prior-knowledge
    /// preface).
    pub h2_conns: u64,
    /// HTTP/2 streams the clients opened (accepted by the server, including
    /// those it then refused). A stream's request is counted in
    /// [`ServerStats::requests`] once its body has been read in full.
    pub h2_streams: u64,
    /// HTTP/2 streams the server answered with `RST_STREAM(REFUSED_STREAM)`
    /// unprocessed ([`Config::h2_refuse_streams`], streams past
    /// [`Config::h2_goaway_after`], `?fault=refuse`).
    ///
    /// [`Config::h2_refuse_streams`]: crate::Config::h2_refuse_streams
    /// [`Config::h2_goaway_after`]: crate::Config::h2_goaway_after
    pub h2_streams_refused: u64,
    /// `RST_STREAM` frames the clients sent: streams they gave up on (a
    /// dropped response body, a timeout).
    pub h2_streams_reset: u64,
    /// `PING` frames the clients sent (not counting acknowledgements of the
    /// server's). Pings sent to a silent connection are not seen.
    pub h2_pings: u64,
    /// Frames a hostile server wrote ([`ConnFault::H2Flood`]): PINGs,
    /// SETTINGS or CONTINUATIONs.
    ///
    /// [`ConnFault::H2Flood`]: crate::ConnFault::H2Flood
    pub h2_flood_frames: u64,
    /// `GOAWAY` frames the server started sending (graceful or not): one per
    /// connection it shut down.
    pub h2_goaways: u64,
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
    /// The address the client connected to: with a server listening on
    /// `0.0.0.0`, which of the loopback addresses it dialed. With `peer`,
    /// the connection's 4-tuple.
    pub local: SocketAddr,
    /// Requests read in full on this connection.
    pub requests: u64,
    /// Writes on this connection that failed because the client had gone.
    pub write_failures: u64,
    /// What the connection is doing now.
    pub state: ConnState,
    /// The TLS session, once the handshake has completed.
    pub tls: Option<TlsInfo>,
    /// Why the TLS handshake failed, if it did.
    pub tls_error: Option<String>,
    /// Whether it speaks HTTP/2.
    pub h2: bool,
    /// HTTP/2 streams opened by the client on this connection.
    pub streams: u64,
    /// HTTP/2 streams being served now.
    pub streams_open: u64,
    /// The most HTTP/2 streams served at once on this connection: never
    /// above [`Config::h2_max_concurrent_streams`] for a client that obeys
    /// it.
    ///
    /// [`Config::h2_max_concurrent_streams`]: crate::Config::h2_max_concurrent_streams
    pub streams_open_max: u64,
    /// `RST_STREAM` frames the client sent on this connection.
    pub streams_reset: u64,
    /// `PING` frames the client sent on this connection.
    pub pings: u64,
}

impl ConnStats {
    pub(crate) fn new(peer: SocketAddr, local: SocketAddr) -> Self {
        ConnStats {
            peer,
            local,
            requests: 0,
            write_failures: 0,
            state: ConnState::New,
            tls: None,
            tls_error: None,
            h2: false,
            streams: 0,
            streams_open: 0,
            streams_open_max: 0,
            streams_reset: 0,
            pings: 0,
        }
    }
}

/// A completed TLS handshake, as the server saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsInfo {
    /// `"TLSv1.3"` or `"TLSv1.2"`.
    pub version: String,
    /// The protocol ALPN settled on, if any (`"h2"`, `"http/1.1"`).
    pub alpn: Option<String>,
    /// The server name the client asked for (SNI); clients send none for an
    /// IP address.
    pub sni: Option<String>,
    /// Whether an earlier session was resumed.
    pub resumed: bool,
    /// The client's certificate (DER), if it sent one.
    pub client_cert: Option<Vec<u8>>,
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
    /// Gone silent: it reads nothing more (PINGs included) and writes
    /// nothing new, but stays open until the client closes it or the
    /// server does ([`TestServer::silence_connections`],
    /// [`Config::h2_silent_after`], `?silence=1`).
    ///
    /// [`TestServer::silence_connections`]: crate::TestServer::silence_connections
    /// [`Config::h2_silent_after`]: crate::Config::h2_silent_after
    Silent,
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
    /// The TLS handshake failed (see [`ConnStats::tls_error`]); a client
    /// that hangs up mid-handshake is [`CloseReason::Peer`] instead.
    TlsHandshake,
    /// HTTP/2: [`Config::h2_goaway_after`] reached; GOAWAY was sent and the
    /// connection closed once its streams were done.
    ///
    /// [`Config::h2_goaway_after`]: crate::Config::h2_goaway_after
    GoAway,
    /// The connection's task panicked.
    Panicked,
}

impl CloseReason {
    /// Whether the server, not the client, decided to close.
    pub fn by_server(self) -> bool {
        self != CloseReason::Peer
    }
}
