//! One attempt at a request on one connection, as both protocols see it:
//! the neutral request they take ([`Outgoing`], the body passed beside it),
//! the bounds on the response head they read, and the one failure shape
//! they report ([`Failure`]), with what the retry rule needs and what the
//! connection should suffer, as data for the pool's side to apply.

use http::{HeaderMap, HeaderValue, Method, Uri};

use crate::{error::Error, stats::CloseReason};

/// The largest response head accepted, on either protocol: HTTP/1.1
/// counts its bytes, HTTP/2 its header list as `SETTINGS_MAX_HEADER_LIST_SIZE`
/// does (each field's name and value plus 32).
pub(crate) const MAX_HEAD_BYTES: usize = 64 * 1024;
/// The most header fields a response head may carry, on either protocol.
pub(crate) const MAX_HEADERS: usize = 100;

/// The request a protocol writes; the body travels beside it as `&mut Body`.
#[derive(Debug)]
pub(crate) struct Outgoing<'a> {
    pub method: &'a Method,
    pub uri: &'a Uri,
    /// `host:port`, for the Host header when the caller set none.
    pub authority: &'a str,
    pub headers: &'a HeaderMap,
    /// HTTP/1.1: send `Connection: close` (`disable_keep_alives`).
    pub close: bool,
    /// HTTP/1.1 to a forwarding proxy: the request line in absolute form.
    pub forward: Option<Forward<'a>>,
}

/// What a request to a forwarding proxy carries besides the request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Forward<'a> {
    /// `Proxy-Authorization`, from the proxy URL's credentials.
    pub credentials: Option<&'a HeaderValue>,
}

/// An attempt that failed, with what the retry rule needs to know.
#[derive(Debug)]
pub(crate) struct Failure {
    pub error: Error,
    /// Not one byte of a response arrived.
    pub got_nothing: bool,
    /// The server provably did not process the request: nothing of it was
    /// written, or HTTP/2 said REFUSED_STREAM, or a GOAWAY whose
    /// last-stream-id is below the request's stream. Safe to send again
    /// whatever the method.
    pub unprocessed: bool,
    /// What the connection should suffer.
    pub fate: Fate,
}

/// What a failed attempt means for its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Close it: an HTTP/1.1 connection in an unknown state.
    Close,
    /// HTTP/2: only this stream is gone; the connection carries on.
    Keep,
    /// HTTP/2: no new streams on it (GOAWAY, or the connection failed).
    StopNewStreams,
    /// HTTP/2: no answer in time; ping it now rather than trust it.
    Ping,
}

impl Failure {
    /// Why a connection closed after this failure is closed.
    pub fn close_reason(&self) -> CloseReason {
        if self.error.is_timeout() {
            CloseReason::Timeout
        } else {
            CloseReason::Error
        }
    }
}
