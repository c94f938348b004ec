//! [`RecordedRequest`]: a request as the server received it, over either
//! protocol; what tests inspect.

/// A request as the server received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    /// The connection it arrived on (ids as in [`ServerStats::conns`]).
    ///
    /// [`ServerStats::conns`]: crate::ServerStats::conns
    pub conn_id: u64,
    /// Its position on that connection: 1 for the first request.
    pub conn_seq: u64,
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target as sent, query included (`/a?size=3`).
    pub path: String,
    /// The HTTP version of the request line, or [`Version::Http2`].
    pub version: Version,
    /// Header fields in order, names as sent (not lowercased; HTTP/2 sends
    /// them lowercase). HTTP/2's pseudo-headers are not among them: see
    /// [`RecordedRequest::authority`] and [`RecordedRequest::path`].
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
    /// HTTP/2's `:authority`; `None` for HTTP/1.x (see its `Host` header).
    pub authority: Option<String>,
    /// Whether it arrived over TLS.
    pub tls: bool,
}

impl RecordedRequest {
    /// The first value of a header, name matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether any `name` header lists `token` (comma-separated,
    /// case-insensitive), e.g. `has_token("connection", "close")`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        has_token(&self.headers, name, token)
    }
}

/// An HTTP version on the request line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
    /// HTTP/2, over TLS (ALPN `h2`) or with prior knowledge.
    Http2,
}

/// Whether any `name` header lists `token` (comma-separated, any case).
pub(crate) fn has_token(headers: &[(String, String)], name: &str, token: &str) -> bool {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}
