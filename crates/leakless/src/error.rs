//! One opaque error type that says what happened, where, and what to do.

use std::{error::Error as StdError, fmt, time::Duration};

use http::StatusCode;
use url::Url;

use crate::phase::Phase;

pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// What went wrong, broadly. Match on it through [`Error::kind`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The client was configured with values that cannot work.
    Builder,
    /// The URL or request cannot be sent (bad scheme, no host, ...).
    Request,
    /// The TCP connection could not be opened.
    Connect,
    /// The TLS handshake failed (certificate, protocol); the message says why.
    Tls,
    /// A proxy refused the way to the target (a `CONNECT` answered other
    /// than 2xx, such as 407, or a SOCKS5 failure); the message names the
    /// proxy, the target and the proxy's answer.
    Proxy,
    /// A phase ran out of time; see [`Error::phase`].
    Timeout,
    /// No connection slot became free within `pool_wait_timeout`.
    PoolWait,
    /// The connection failed while sending or receiving.
    Io,
    /// The server broke the protocol: HTTP/1.1 framing rules, or HTTP/2
    /// as the h2 crate enforces it; a response head over 64 KiB or 100
    /// fields is refused on both.
    Protocol,
    /// The response body is larger than `max_body_size`.
    BodyTooLarge,
    /// The request or body was dropped before it completed (only seen by
    /// an [`Observer`](crate::Observer)).
    Canceled,
    /// A redirect could not be followed: no or a bad `Location`, too many
    /// hops, or the redirect policy said so. The message names the chain.
    Redirect,
    /// The body could not be decoded: a corrupt compressed stream (the
    /// message names the encoding) or JSON that does not parse.
    Decode,
    /// [`Response::error_for_status`](crate::Response::error_for_status):
    /// the server answered 4xx or 5xx; see [`Error::status`].
    Status,
}

/// The pool's state when a pool-wait timed out (HikariCP reports the same).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolState {
    /// `max_conns_per_host`.
    pub limit: usize,
    /// Connections being dialed.
    pub dialing: usize,
    /// Connections carrying a request or an unread body.
    pub busy: usize,
    /// Idle connections.
    pub idle: usize,
    /// Requests waiting for a slot, this one included.
    pub waiting: usize,
}

/// An error from the client. It names the phase and host where that applies,
/// and its `Display` ends with what to do about it.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: ErrorKind,
    phase: Option<Phase>,
    host: Option<String>,
    message: String,
    source: Option<BoxError>,
    maybe_sent: bool,
    pool: Option<PoolState>,
    elapsed: Option<Duration>,
    status: Option<StatusCode>,
    url: Option<Url>,
}

impl Error {
    /// Cold, as are `timeout` and `with_host`: the hint moves the failure
    /// branches that call them out of the request path's code.
    #[cold]
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                phase: None,
                host: None,
                message: message.into(),
                source: None,
                maybe_sent: false,
                pool: None,
                elapsed: None,
                status: None,
                url: None,
            }),
        }
    }

    #[cold]
    pub(crate) fn timeout(phase: Phase, after: Duration) -> Error {
        Error::new(ErrorKind::Timeout, "timed out")
            .with_phase(phase)
            .with_elapsed(after)
    }

    pub(crate) fn with_phase(mut self, phase: Phase) -> Error {
        self.inner.phase = Some(phase);
        self
    }

    #[cold]
    pub(crate) fn with_host(mut self, host: &str) -> Error {
        if self.inner.host.is_none() {
            self.inner.host = Some(host.to_owned());
        }
        self
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Error {
        self.inner.source = Some(source.into());
        self
    }

    pub(crate) fn with_pool(mut self, pool: PoolState) -> Error {
        self.inner.pool = Some(pool);
        self
    }

    pub(crate) fn with_elapsed(mut self, elapsed: Duration) -> Error {
        self.inner.elapsed = Some(elapsed);
        self
    }

    pub(crate) fn with_status(mut self, status: StatusCode) -> Error {
        self.inner.status = Some(status);
        self
    }

    /// Names the URL the request was for, unless an earlier step did.
    pub(crate) fn with_url(mut self, url: impl FnOnce() -> Option<Url>) -> Error {
        if self.inner.url.is_none() {
            self.inner.url = url();
        }
        self
    }

    pub(crate) fn set_maybe_sent(&mut self, maybe: bool) {
        self.inner.maybe_sent = maybe;
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.inner.kind
    }

    /// The phase the request was in, when it got that far.
    pub fn phase(&self) -> Option<Phase> {
        self.inner.phase
    }

    /// The `host:port` the request was for, when known.
    pub fn host(&self) -> Option<&str> {
        self.inner.host.as_deref()
    }

    /// The status of the response this error came from
    /// ([`Response::error_for_status`](crate::Response::error_for_status)).
    pub fn status(&self) -> Option<StatusCode> {
        self.inner.status
    }

    /// The URL of the request (the hop, after redirects) that failed.
    pub fn url(&self) -> Option<&Url> {
        self.inner.url.as_ref()
    }

    /// A redirect could not be followed ([`ErrorKind::Redirect`]).
    pub fn is_redirect(&self) -> bool {
        self.inner.kind == ErrorKind::Redirect
    }

    /// The body could not be decoded ([`ErrorKind::Decode`]).
    pub fn is_decode(&self) -> bool {
        self.inner.kind == ErrorKind::Decode
    }

    /// Made by `error_for_status` ([`ErrorKind::Status`]).
    pub fn is_status(&self) -> bool {
        self.inner.kind == ErrorKind::Status
    }

    /// The pool's counts when a pool-wait timed out.
    pub fn pool_state(&self) -> Option<PoolState> {
        self.inner.pool
    }

    /// Some phase (or the total deadline) ran out of time.
    pub fn is_timeout(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Timeout | ErrorKind::PoolWait)
    }

    /// The TCP connection could not be opened (or timed out opening).
    pub fn is_connect(&self) -> bool {
        self.inner.kind == ErrorKind::Connect || self.inner.phase == Some(Phase::Connect)
    }

    /// No connection slot became free within `pool_wait_timeout`.
    pub fn is_pool_wait(&self) -> bool {
        self.inner.kind == ErrorKind::PoolWait
    }

    /// The response broke the protocol (malformed head, bad framing).
    pub fn is_protocol(&self) -> bool {
        self.inner.kind == ErrorKind::Protocol
    }

    /// The request may have reached the server, so it was not retried: a
    /// replay could repeat a side effect. Add an `Idempotency-Key` header to
    /// let the client retry such requests.
    pub fn is_maybe_sent(&self) -> bool {
        self.inner.maybe_sent
    }

    fn advice(&self) -> Option<String> {
        let i = &self.inner;
        Some(match (i.kind, i.phase) {
            (ErrorKind::PoolWait, _) => {
                "every connection to this host is busy: raise max_conns_per_host or \
                 pool_wait_timeout, or look for responses whose bodies are never read or dropped"
                    .into()
            }
            (ErrorKind::Timeout, Some(phase)) => format!(
                "the server did not answer in time: check it, or raise {} if it is just slow",
                phase.setting()
            ),
            (ErrorKind::Tls, _) => {
                "check the server's certificate, or trust its CA with add_root_certificate".into()
            }
            (ErrorKind::Proxy, _) => {
                "check the proxy's address and credentials (the userinfo of its URL), and that it \
                 allows this target; NO_PROXY or no_proxy() bypass it"
                    .into()
            }
            (ErrorKind::Connect, _) => {
                "check that the server is up and the host and port are right".into()
            }
            (ErrorKind::Protocol, _) => {
                "the server sent a malformed response; the connection was closed".into()
            }
            (ErrorKind::BodyTooLarge, _) => {
                "raise max_body_size if such bodies are expected; the connection was closed".into()
            }
            (ErrorKind::Redirect, _) => {
                "fix the server's Location, or set a redirect Policy (Policy::none() returns \
                 the redirect response as it is)"
                    .into()
            }
            (ErrorKind::Io, _) if i.maybe_sent => {
                "the request may have reached the server, so it was not retried; add an \
                 Idempotency-Key header to make it safe to retry"
                    .into()
            }
            _ => return None,
        })
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.write_str(&i.message)?;
        if let Some(elapsed) = i.elapsed {
            write!(f, " after {elapsed:?}")?;
        }
        match (&i.phase, &i.host) {
            (Some(p), Some(h)) => write!(f, " ({p}, {h})")?,
            (Some(p), None) => write!(f, " ({p})")?,
            (None, Some(h)) => write!(f, " ({h})")?,
            (None, None) => {}
        }
        if let Some(p) = i.pool {
            write!(
                f,
                " [limit {}, dialing {}, busy {}, idle {}, waiting {}]",
                p.limit, p.dialing, p.busy, p.idle, p.waiting
            )?;
        }
        if let Some(src) = &i.source {
            write!(f, ": {src}")?;
        }
        if let Some(advice) = self.advice() {
            write!(f, "; {advice}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let i = &self.inner;
        f.debug_struct("leakless::Error")
            .field("kind", &i.kind)
            .field("phase", &i.phase)
            .field("host", &i.host)
            .field("message", &i.message)
            .field("maybe_sent", &i.maybe_sent)
            .field("pool", &i.pool)
            .field("status", &i.status)
            .field("url", &i.url.as_ref().map(Url::as_str))
            .field("source", &i.source)
            .finish()
    }
}

impl StdError for Error {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_deref()
            .map(|e| e as &(dyn StdError + 'static))
    }
}
