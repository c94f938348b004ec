//! What the server does, as plain data: [`Config`] for the server and its
//! connections, [`Reply`] for one response, [`Fault`] and [`ConnFault`] for
//! the ways it misbehaves on purpose.

use std::time::Duration;

use crate::chaos::Chaos;
use crate::tls::Tls;

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
    /// Serve TLS too (see [`Tls`]): connections that open with a TLS
    /// handshake get it, others stay cleartext. `None`: cleartext only, and
    /// a ClientHello is answered like any other garbage (400, close).
    pub tls: Option<Tls>,
    /// Serve HTTP/2 to a connection that opens with its preface (prior
    /// knowledge, h2c), in cleartext or over TLS without ALPN `h2`. Off: the
    /// preface is a bad HTTP/1.1 request (400, close), as on an HTTP/1.1-only
    /// server. Over TLS, ALPN `h2` means HTTP/2 whatever this says.
    pub h2_prior_knowledge: bool,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS` for new connections; `None`:
    /// no limit. Streams past it are reset with `REFUSED_STREAM` by the h2
    /// crate itself, before the server sees them (not in
    /// [`ServerStats::h2_streams`] nor `h2_streams_refused`). That happens to
    /// a client that opens streams before the server's SETTINGS arrive,
    /// which RFC 9113 §5.1.2 allows and a client must survive.
    ///
    /// [`ServerStats::h2_streams`]: crate::ServerStats::h2_streams
    pub h2_max_concurrent_streams: Option<u32>,
    /// HTTP/2: after this many streams on a connection, send GOAWAY
    /// (graceful: the first GOAWAY says 2^31-1, the final one the last stream
    /// accepted), serve the streams accepted so far, then close
    /// ([`CloseReason::GoAway`]). Streams the client opened past the Nth
    /// before it saw the GOAWAY are reset with `REFUSED_STREAM`,
    /// unprocessed, so a client may retry them.
    ///
    /// [`CloseReason::GoAway`]: crate::CloseReason::GoAway
    pub h2_goaway_after: Option<u64>,
    /// HTTP/2: refuse the first N streams on each connection with
    /// `RST_STREAM(REFUSED_STREAM)`, unprocessed and not counted as
    /// requests.
    pub h2_refuse_streams: u64,
    /// HTTP/2: once N streams on a connection are answered in full, the
    /// connection goes deaf: it reads nothing more, so PINGs, new streams and
    /// WINDOW_UPDATEs go unanswered, while the socket stays open
    /// ([`ConnState::Silent`]). A dead peer, for keep-alive ping tests. `0`:
    /// right after the HTTP/2 handshake.
    ///
    /// [`ConnState::Silent`]: crate::ConnState::Silent
    pub h2_silent_after: Option<u64>,
    /// HTTP/2 `SETTINGS_INITIAL_WINDOW_SIZE`: how many bytes of a request
    /// body a client may send on a stream before the server opens its window
    /// further; `None`: h2's default (65,535). `Some(0)` is a window the
    /// server never opens: the server opens a window only as it reads bytes,
    /// and none can arrive, so an upload stalls at its first byte while
    /// requests without a body are served.
    pub h2_initial_window_size: Option<u32>,
    /// Misbehave at random, per connection (see [`Chaos`]): each accepted
    /// connection draws its own mischief. For soak runs.
    pub chaos: Option<Chaos>,
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
            tls: None,
            h2_prior_knowledge: true,
            h2_max_concurrent_streams: None,
            h2_goaway_after: None,
            h2_refuse_streams: 0,
            h2_silent_after: None,
            h2_initial_window_size: None,
            chaos: None,
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

    /// Turns TLS on with the default [`Tls`] settings (a valid certificate,
    /// ALPN `h2` and `http/1.1`), or off.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on.then(Tls::default);
        self
    }

    /// Turns TLS on with these settings.
    pub fn tls_settings(mut self, tls: Tls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Turns TLS on (if it is not) and sets the protocols ALPN offers:
    /// `["http/1.1"]`, `["h2"]`, or none.
    pub fn alpn<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.tls = Some(self.tls.take().unwrap_or_default().alpn(protocols));
        self
    }

    /// Sets [`Config::h2_prior_knowledge`].
    pub fn h2_prior_knowledge(mut self, on: bool) -> Self {
        self.h2_prior_knowledge = on;
        self
    }

    /// Sets [`Config::h2_max_concurrent_streams`].
    pub fn h2_max_concurrent_streams(mut self, n: u32) -> Self {
        self.h2_max_concurrent_streams = Some(n);
        self
    }

    /// Sets [`Config::h2_goaway_after`].
    pub fn h2_goaway_after(mut self, streams: u64) -> Self {
        self.h2_goaway_after = Some(streams);
        self
    }

    /// Sets [`Config::h2_refuse_streams`].
    pub fn h2_refuse_streams(mut self, streams: u64) -> Self {
        self.h2_refuse_streams = streams;
        self
    }

    /// Sets [`Config::h2_silent_after`].
    pub fn h2_silent_after(mut self, streams: u64) -> Self {
        self.h2_silent_after = Some(streams);
        self
    }

    /// Sets [`Config::h2_initial_window_size`].
    pub fn h2_initial_window_size(mut self, bytes: u32) -> Self {
        self.h2_initial_window_size = Some(bytes);
        self
    }

    /// Sets [`Config::chaos`].
    pub fn chaos(mut self, chaos: Chaos) -> Self {
        self.chaos = Some(chaos);
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
    /// [`Fault::Raw`]: close after the raw bytes). HTTP/2: send GOAWAY after
    /// this stream and close once the connection's streams are done.
    pub close: bool,
    /// The body is the request's body instead of the `hello` pattern.
    pub echo: bool,
    /// After this response the connection goes deaf: it reads nothing more
    /// (requests, PINGs) and stays open ([`ConnState::Silent`]).
    ///
    /// [`ConnState::Silent`]: crate::ConnState::Silent
    pub silence: bool,
    /// Answer with a chain of this many redirects first (each
    /// [`Reply::redirect_status`], `Location` back to the same path with one
    /// fewer), then this reply.
    pub redirects: u32,
    /// The status of each redirect of [`Reply::redirects`]; default 302.
    pub redirect_status: u16,
    /// Send the body compressed with this encoding (`Content-Encoding`).
    pub encoding: Option<crate::Encoding>,
    /// With [`Reply::encoding`]: damage the compressed stream in its middle.
    pub corrupt: bool,
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
            silence: false,
            redirects: 0,
            redirect_status: 302,
            encoding: None,
            corrupt: false,
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

    /// Sets [`Reply::redirects`] and [`Reply::redirect_status`].
    pub fn redirects(mut self, hops: u32, status: u16) -> Self {
        self.redirects = hops;
        self.redirect_status = status;
        self
    }

    /// Sets [`Reply::encoding`].
    pub fn encoding(mut self, encoding: crate::Encoding) -> Self {
        self.encoding = Some(encoding);
        self
    }

    /// Sets [`Reply::silence`].
    pub fn silence(mut self) -> Self {
        self.silence = true;
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
///
/// On HTTP/2 a fault hits the stream, and the connection's other streams
/// carry on, except where a variant says it hits the connection:
/// [`Fault::Stall`] and the stalls hold the stream open,
/// [`Fault::CloseAfterHeaders`] and [`Fault::CloseAfterBytes`] end it with
/// `RST_STREAM(INTERNAL_ERROR)`, [`Fault::CloseWithoutResponse`] and
/// [`Fault::ResetWithoutResponse`] close or reset the whole connection (no
/// GOAWAY), and [`Fault::Raw`] is answered `501` (raw bytes would break the
/// framing of every stream).
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
    /// HTTP/2: reset the stream with this error code (`RST_STREAM`) instead
    /// of answering; 7 is `REFUSED_STREAM` (unprocessed, safe to retry), 2
    /// `INTERNAL_ERROR`. HTTP/1.1 has no streams: the connection closes
    /// without a response.
    ResetStream(u32),
}

/// A connection-level fault, applied right after accept.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnFault {
    /// Accept, never answer; hold the socket until the client closes it or
    /// the server shuts down. Bytes the client sends are read and thrown
    /// away, which is how the client's close is seen and counted.
    ///
    /// With TLS this is the silent TLS peer, for handshake timeouts: the
    /// ClientHello is read and never answered.
    AcceptAndStall,
    /// Accept and never read a byte, so the client's writes eventually
    /// block. The client's close is counted only if it sent nothing;
    /// otherwise the socket is held until the server closes it.
    AcceptAndStallUnread,
    /// Accept, then close at once.
    AcceptAndClose,
    /// HTTP/2 only: a hostile server, written as raw frames because the h2
    /// crate's server cannot misbehave this way (see [`H2Flood`]). An
    /// HTTP/1.1 connection is served as usual.
    H2Flood(H2Flood),
}

/// What a hostile HTTP/2 server sends in answer to the first request, for
/// as long as the client stays connected.
///
/// Until that request the connection is proper HTTP/2 (the server's
/// SETTINGS, acknowledgements of the client's SETTINGS and PINGs); from the
/// request's HEADERS on, the server reads and drops whatever the client
/// sends and answers nothing, PINGs included, so only the client can end
/// it. Frames written are counted in [`ServerStats::h2_flood_frames`].
///
/// [`ServerStats::h2_flood_frames`]: crate::ServerStats::h2_flood_frames
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum H2Flood {
    /// A response HEADERS frame without END_HEADERS, then CONTINUATION
    /// frames that never end it, each a small literal header field: a header
    /// block that grows for ever (the "CONTINUATION flood").
    Continuation,
    /// PING frames, without pause.
    Ping,
    /// SETTINGS frames (`SETTINGS_MAX_CONCURRENT_STREAMS` = 100), without
    /// pause; each asks the client for an acknowledgement.
    Settings,
}
