//! A response: its head, and the body that owns its connection.

use std::{net::SocketAddr, sync::OnceLock};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode, Uri, Version};
use url::Url;

use crate::{
    body::{Encoding, Incoming},
    config::TlsInfo,
    error::{Error, ErrorKind},
    http1::{fields::Fields, head::Head},
};

/// An HTTP response. Its body holds the connection until read to the end
/// or dropped; either way the connection is accounted for.
///
/// One allocation: a response is moved through every layer on its way
/// out, and moving half a kilobyte each time cost more than the box.
pub struct Response(Box<Inner>);

#[derive(Debug)]
struct Inner {
    status: StatusCode,
    version: Version,
    headers: Fields,
    body: Incoming,
    /// The URL asked for, kept as sent: most callers never ask for it as a
    /// [`Url`], so it is parsed only when they do (and boxed: a response
    /// is moved through every layer on its way out).
    uri: Uri,
    url: OnceLock<Box<Url>>,
    /// Typed extras, as `http::Response` has: a [`TlsInfo`] with `tls_info`.
    extensions: http::Extensions,
    remote: Option<SocketAddr>,
}

impl Response {
    /// `body` is called inside the initialiser: the 312-byte body is
    /// built where the box's contents are, not built apart and then
    /// copied in (a `memcpy` per response).
    pub(crate) fn new(
        head: Head,
        remote: Option<SocketAddr>,
        body: impl FnOnce() -> Incoming,
    ) -> Response {
        Response(Box::new(Inner {
            status: head.status,
            version: head.version,
            headers: head.headers,
            body: body(),
            uri: Uri::default(),
            url: OnceLock::new(),
            extensions: http::Extensions::new(),
            remote,
        }))
    }

    /// The URL this response answered (after redirects, the last hop's).
    pub(crate) fn set_uri(&mut self, uri: Uri) {
        self.0.uri = uri;
    }

    /// As `set_uri`, with the URL already parsed.
    pub(crate) fn set_url(&mut self, url: Url) {
        self.0.url = OnceLock::from(Box::new(url));
    }

    /// The final URL: the one requested, or after redirects the last hop's.
    pub fn url(&self) -> &Url {
        self.0.url.get_or_init(|| {
            Box::new(
                Url::parse(&self.0.uri.to_string())
                    .expect("a URI the client could send parses as a URL"),
            )
        })
    }

    /// An error of kind [`ErrorKind::Status`](crate::ErrorKind::Status)
    /// when the server answered 4xx or 5xx (see [`Error::status`]), the
    /// response itself otherwise. The response an error replaces is
    /// dropped: its connection is drained or closed as for any other.
    pub fn error_for_status(self) -> Result<Response, Error> {
        match self.status_error() {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }

    /// As [`error_for_status`](Response::error_for_status), keeping the response.
    pub fn error_for_status_ref(&self) -> Result<&Response, Error> {
        match self.status_error() {
            Some(e) => Err(e),
            None => Ok(self),
        }
    }

    fn status_error(&self) -> Option<Error> {
        let status = self.0.status;
        if !(status.is_client_error() || status.is_server_error()) {
            return None;
        }
        let url = self.url();
        let mut e = Error::new(ErrorKind::Status, format!("{url} answered {status}"))
            .with_status(status)
            .with_url(|| Some(url.clone()));
        if let Some(host) = url.host_str() {
            e = e.with_host(&match url.port_or_known_default() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            });
        }
        Some(e)
    }

    /// Decodes the body (it says `Content-Encoding: encoding`): the
    /// headers that describe the encoded body go, as in Go and reqwest.
    pub(crate) fn decode(&mut self, encoding: Encoding) {
        let headers = self.0.headers.map_mut();
        headers.remove(http::header::CONTENT_ENCODING);
        headers.remove(http::header::CONTENT_LENGTH);
        self.0.body.decode(encoding);
    }

    /// Sets the rest of the body aside and gives the connection back (or
    /// closes it) before returning; see `Incoming::discard`. Only a
    /// redirect or a refused hop needs this, so the future is boxed: the
    /// drain's state does not widen every request's future.
    pub(crate) fn discard(self) -> std::pin::Pin<Box<impl Future<Output = ()>>> {
        Box::pin(self.0.body.discard())
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.0.status
    }

    /// The HTTP version the server answered with.
    pub fn version(&self) -> Version {
        self.0.version
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        self.0.headers.map()
    }

    /// False only when the response has no `Content-Encoding` field: a
    /// look without building the header map.
    pub(crate) fn may_be_encoded(&self) -> bool {
        self.0.headers.may_be_encoded()
    }

    /// The body's length when the response gave one; `None` while the
    /// body is being decoded (its decoded length is not known up front).
    pub fn content_length(&self) -> Option<u64> {
        self.0.body.remaining()
    }

    /// The address of the server (or of the proxy) that answered; `None`
    /// over a unix socket.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.0.remote
    }

    /// The body as a stream of chunks (reqwest's `bytes_stream`); it holds
    /// the connection as the body does, and gives it back at the end.
    pub fn bytes_stream(
        self,
    ) -> impl futures_core::Stream<Item = Result<Bytes, Error>> + Send + 'static {
        Chunks { body: self.0.body }
    }

    /// The whole body parsed as JSON. The body is read to its end first,
    /// so the connection is back in the pool before parsing starts.
    #[cfg(feature = "json")]
    pub async fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, Error> {
        let url = self.url().clone();
        let bytes = self.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::Decode,
                "the response body is not the JSON expected",
            )
            .with_source(e)
            .with_url(|| Some(url))
        })
    }

    /// The next chunk of the body, `None` at the end (when the connection
    /// has already gone back to the pool).
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        self.0.body.chunk().await
    }

    /// The whole body.
    pub async fn bytes(mut self) -> Result<Bytes, Error> {
        let Some(first) = self.0.body.chunk().await? else {
            return Ok(Bytes::new());
        };
        let Some(second) = self.0.body.chunk().await? else {
            return Ok(first);
        };
        let hint = self.0.body.remaining().unwrap_or(0) as usize;
        let mut all = BytesMut::with_capacity(first.len() + second.len() + hint);
        all.extend_from_slice(&first);
        all.extend_from_slice(&second);
        while let Some(more) = self.0.body.chunk().await? {
            all.extend_from_slice(&more);
        }
        Ok(all.freeze())
    }

    /// The whole body as text; invalid UTF-8 becomes U+FFFD.
    pub async fn text(self) -> Result<String, Error> {
        let bytes = self.bytes().await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The body alone, as an [`http_body::Body`].
    pub fn into_body(self) -> Incoming {
        self.0.body
    }

    /// Typed extras: a [`TlsInfo`] when the client has `tls_info(true)`.
    pub fn extensions(&self) -> &http::Extensions {
        &self.0.extensions
    }

    /// Typed extras, to add your own.
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.0.extensions
    }

    /// What the connection's TLS negotiated (peer certificate, version,
    /// ALPN), when the client has `tls_info(true)` and the URL is https.
    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.0.extensions.get::<TlsInfo>()
    }

    /// Converts into an `http::Response` with the same head, extensions
    /// and body.
    pub fn into_http(self) -> http::Response<Incoming> {
        let mut res = http::Response::new(self.0.body);
        *res.status_mut() = self.0.status;
        *res.version_mut() = self.0.version;
        *res.headers_mut() = self.0.headers.into_map();
        *res.extensions_mut() = self.0.extensions;
        res
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl From<Response> for http::Response<Incoming> {
    fn from(res: Response) -> http::Response<Incoming> {
        res.into_http()
    }
}

/// A body as a stream of its chunks; see `Response::bytes_stream`.
struct Chunks {
    body: Incoming,
}

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, Error>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.get_mut().body.poll_chunk(cx)
    }
}
