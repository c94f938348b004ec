//! What the server does, as plain data: [`Config`] for the server and its
//! connections, [`Reply`] for one response, [`Fault`] and [`ConnFault`] for
//! the ways it misbehaves on purpose.

use std::time::Duration;

/// How the server behaves. Plain data with public fields and builder-style
/// shortcuts; swap it at run time with [`TestServer::set_config`].
///
/// Requests pick their reply in this order: the route whose path equals the
/// request's path (query excluded), else [`Config::reply`]; then the query
/// string's overrides (see the crate docs) are applied on top.
///
/// [`TestServer::set_config`]: crate::TestServer::set_config
#[derive(Clone, Debug)]
pub struct Config {
    /// The reply for requests no route matches.
    pub reply: Reply,
    /// Exact-path routes, first match wins. The path excludes the query.
    pub routes: Vec<(String, Reply)>,
    /// Close a connection that has been idle this long between two requests.
    /// `None`: never (until shutdown). A connection that has not sent its
    /// first request yet is not idle in this sense.
    pub keep_alive_timeout: Option<Duration>,
    /// Send `Keep-Alive: timeout=N` (whole seconds, rounded down) on
    /// keep-alive responses when [`Config::keep_alive_timeout`] is set, plus
    /// `, max=M` (requests left) when [`Config::max_requests_per_conn`] is.
    pub advertise_keep_alive: bool,
    /// The Nth response on a connection carries `Connection: close` and the
    /// server closes after it. `Some(1)`: close after every response.
    pub max_requests_per_conn: Option<u64>,
    /// Misbehave for whole connections, before any request is read. Applies to
    /// connections accepted after it is set.
    pub conn_fault: Option<ConnFault>,
    /// Add `x-conn-id` (the server's connection id, as in [`ServerStats`])
    /// and `x-conn-seq` (1 for the first request on the connection) to
    /// replies, so a client test can tell which connection served a response.
    ///
    /// [`ServerStats`]: crate::ServerStats
    pub conn_headers: bool,
    /// How many recorded requests and closed connections' entries to keep,
    /// oldest dropped first. Counters stay exact regardless; `0` records
    /// nothing, which is what a long-running `leakless serve` wants.
    pub history: usize,
    /// Largest request head accepted; larger ones get `431` and a close.
    pub max_head_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            reply: Reply::default(),
            routes: Vec::new(),
            keep_alive_timeout: None,
            advertise_keep_alive: false,
            max_requests_per_conn: None,
            conn_fault: None,
            conn_headers: true,
            history: 100_000,
            max_head_bytes: 64 * 1024,
        }
    }
}

impl Config {
    /// The default configuration: `200`, body `hello`, keep-alive for ever.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the reply for requests no route matches.
    pub fn reply(mut self, reply: Reply) -> Self {
        self.reply = reply;
        self
    }

    /// Adds an exact-path route (`"/slow"`), matched before the default reply.
    pub fn route(mut self, path: impl Into<String>, reply: Reply) -> Self {
        self.routes.push((path.into(), reply));
        self
    }

    /// Sets [`Config::keep_alive_timeout`].
    pub fn keep_alive_timeout(mut self, idle: Duration) -> Self {
        self.keep_alive_timeout = Some(idle);
        self
    }

    /// Sets [`Config::advertise_keep_alive`].
    pub fn advertise_keep_alive(mut self, on: bool) -> Self {
        self.advertise_keep_alive = on;
        self
    }

    /// Sets [`Config::max_requests_per_conn`].
    pub fn max_requests_per_conn(mut self, n: u64) -> Self {
        self.max_requests_per_conn = Some(n);
        self
    }

    /// Sets [`Config::conn_fault`].
    pub fn conn_fault(mut self, fault: ConnFault) -> Self {
        self.conn_fault = Some(fault);
        self
    }

    /// Sets [`Config::conn_headers`].
    pub fn conn_headers(mut self, on: bool) -> Self {
        self.conn_headers = on;
        self
    }

    /// Sets [`Config::history`].
    pub fn history(mut self, n: usize) -> Self {
        self.history = n;
        self
    }

    /// Shortcut: the default reply's status.
    pub fn status(mut self, status: u16) -> Self {
        self.reply.status = status;
        self
    }

    /// Shortcut: the default reply's body size in bytes.
    pub fn body_size(mut self, bytes: u64) -> Self {
        self.reply.body_size = bytes;
        self
    }

    /// Shortcut: the default reply's framing.
    pub fn framing(mut self, framing: Framing) -> Self {
        self.reply.framing = framing;
        self
    }

    /// Shortcut: the default reply's latency.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.reply.latency = latency;
        self
    }

    /// Shortcut: the default reply's fault.
    pub fn fault(mut self, fault: Fault) -> Self {
        self.reply.fault = Some(fault);
        self
    }

    /// The reply for a request path (query already stripped).
    pub(crate) fn reply_for(&self, path: &str) -> &Reply {
        self.routes
            .iter()
            .find(|(p, _)| p == path)
            .map_or(&self.reply, |(_, r)| r)
    }
}

/// One response: what it says and how it is framed, delayed or broken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Status code. 204 and 304 never carry a body or framing headers.
    pub status: u16,
    /// Body size in bytes: `hello` repeated and cut to this length, so a
    /// client can check any byte (`b"hello"[offset % 5]`).
    pub body_size: u64,
    /// How the body's end is marked.
    pub framing: Framing,
    /// Chunk size for [`Framing::Chunked`] (at least 1).
    pub chunk_size: usize,
    /// Delay between reading the request and writing the first byte of the
    /// reply (or acting on its fault). Measured on the server's own clock.
    pub latency: Duration,
    /// Extra response headers, written as given after the server's own.
    pub headers: Vec<(String, String)>,
    /// Misbehave instead of (or while) replying.
    pub fault: Option<Fault>,
    /// Send `Connection: close` and close after this response (with
    /// [`Fault::Raw`]: close after the raw bytes).
    pub close: bool,
    /// The body is the request's body instead of the `hello` pattern.
    pub echo: bool,
}

impl Default for Reply {
    fn default() -> Self {
        Reply {
            status: 200,
            body_size: 5,
            framing: Framing::ContentLength,
            chunk_size: 4096,
            latency: Duration::ZERO,
            headers: Vec::new(),
            fault: None,
            close: false,
            echo: false,
        }
    }
}

impl Reply {
    /// `200`, body `hello`, Content-Length framing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`Reply::status`].
    pub fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Sets [`Reply::body_size`].
    pub fn body_size(mut self, bytes: u64) -> Self {
        self.body_size = bytes;
        self
    }

    /// Sets [`Reply::framing`].
    pub fn framing(mut self, framing: Framing) -> Self {
        self.framing = framing;
        self
    }

    /// Chunked framing in chunks of `chunk_size` bytes.
    pub fn chunked(mut self, chunk_size: usize) -> Self {
        self.framing = Framing::Chunked;
        self.chunk_size = chunk_size.max(1);
        self
    }

    /// Sets [`Reply::latency`].
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Adds a response header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets [`Reply::fault`].
    pub fn fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// Sets [`Reply::close`].
    pub fn close(mut self) -> Self {
        self.close = true;
        self
    }

    /// Sets [`Reply::echo`].
    pub fn echo(mut self) -> Self {
        self.echo = true;
        self
    }
}

/// How a response body's end is marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length: N`.
    ContentLength,
    /// `Transfer-Encoding: chunked`, chunks of [`Reply::chunk_size`]. HTTP/1.0
    /// requests get Content-Length instead, as RFC 9112 requires.
    Chunked,
    /// No length; the server closes the connection after the body.
    UntilClose,
}

/// A per-request fault: the server reads the request, waits for the reply's
/// latency, then does this instead of (or part of) replying.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Never answer. The connection stays open until the client closes it or
    /// the server closes it ([`TestServer::close_all_connections`], shutdown).
    ///
    /// [`TestServer::close_all_connections`]: crate::TestServer::close_all_connections
    Stall,
    /// Send the head (with the full Content-Length, or chunked), then stall.
    StallAfterHeaders,
    /// Send the head and this many body bytes (framed), then stall.
    StallAfterBytes(u64),
    /// A chunked body that never ends, written as fast as the client reads.
    /// When the client goes away the failed write is counted in
    /// [`ServerStats::write_failures`].
    ///
    /// [`ServerStats::write_failures`]: crate::ServerStats::write_failures
    EndlessBody,
    /// Send the head, then close the connection.
    CloseAfterHeaders,
    /// Send the head and this many body bytes (framed), then close: a body
    /// shorter than its Content-Length.
    CloseAfterBytes(u64),
    /// Close without writing anything.
    CloseWithoutResponse,
    /// Reset (RST, via `SO_LINGER` 0) without writing anything.
    ResetWithoutResponse,
    /// Write exactly these bytes as the response, then carry on reading the
    /// next request (or close if [`Reply::close`] is set).
    Raw(Vec<u8>),
    /// Panic in the connection's task. It exists to test that a server
    /// failure fails the test: dropping the [`TestServer`] then panics.
    ///
    /// [`TestServer`]: crate::TestServer
    Panic,
}

/// A connection-level fault, applied right after accept.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnFault {
    /// Accept, never answer; hold the socket until the client closes it or
    /// the server shuts down. Bytes the client sends are read and thrown
    /// away, which is how the client's close is seen and counted.
    AcceptAndStall,
    /// Accept and never read a byte, so the client's writes eventually
    /// block. The client's close is counted only if it sent nothing;
    /// otherwise the socket is held until the server closes it.
    AcceptAndStallUnread,
    /// Accept, then close at once.
    AcceptAndClose,
}
