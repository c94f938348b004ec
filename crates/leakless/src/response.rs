//! A response: its head, and the body that owns its connection.

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode, Version};

use crate::{body::Incoming, error::Error, http1::head::Head};

/// An HTTP response. Its body holds the connection until read to the end
/// or dropped; either way the connection is accounted for.
#[derive(Debug)]
pub struct Response {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Incoming,
}

impl Response {
    pub(crate) fn new(head: Head, body: Incoming) -> Response {
        Response {
            status: head.status,
            version: head.version,
            headers: head.headers,
            body,
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The HTTP version the server answered with.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The body's length when the response gave one.
    pub fn content_length(&self) -> Option<u64> {
        self.body.remaining()
    }

    /// The next chunk of the body, `None` at the end (when the connection
    /// has already gone back to the pool).
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        self.body.chunk().await
    }

    /// The whole body.
    pub async fn bytes(mut self) -> Result<Bytes, Error> {
        let Some(first) = self.body.chunk().await? else {
            return Ok(Bytes::new());
        };
        let Some(second) = self.body.chunk().await? else {
            return Ok(first);
        };
        let hint = self.body.remaining().unwrap_or(0) as usize;
        let mut all = BytesMut::with_capacity(first.len() + second.len() + hint);
        all.extend_from_slice(&first);
        all.extend_from_slice(&second);
        while let Some(more) = self.body.chunk().await? {
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
        self.body
    }

    /// Converts into an `http::Response` with the same head and body.
    pub fn into_http(self) -> http::Response<Incoming> {
        let mut res = http::Response::new(self.body);
        *res.status_mut() = self.status;
        *res.version_mut() = self.version;
        *res.headers_mut() = self.headers;
        res
    }
}
