//! Request bodies: nothing, bytes in memory (re-sendable, so retryable), or
//! a stream (sent chunked when its length is unknown; never replayed).

use std::{fmt, future::poll_fn, pin::Pin};

use bytes::Bytes;
use http_body::Body as HttpBody;

use crate::{
    error::{BoxError, Error, ErrorKind},
    phase::Phase,
};

type BoxBody = Pin<Box<dyn HttpBody<Data = Bytes, Error = BoxError> + Send + 'static>>;

/// A request body.
pub struct Body {
    inner: Inner,
}

enum Inner {
    Empty,
    Full(Bytes),
    Stream(BoxBody),
}

impl Body {
    /// No body.
    pub fn empty() -> Body {
        Body {
            inner: Inner::Empty,
        }
    }

    /// A body from any `http_body::Body` of `Bytes`. Its exact size hint, if
    /// it has one, becomes the Content-Length; otherwise it is sent chunked.
    /// Such a body cannot be replayed, so its request is never retried.
    pub fn from_body<B>(body: B) -> Body
    where
        B: HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        Body {
            inner: Inner::Stream(Box::pin(MapErr { inner: body })),
        }
    }

    /// A body from a stream of byte chunks; sent chunked.
    pub fn wrap_stream<S, E>(stream: S) -> Body
    where
        S: futures_core::Stream<Item = Result<Bytes, E>> + Send + 'static,
        E: Into<BoxError>,
    {
        Body::from_body(StreamBody { stream })
    }

    pub(crate) fn is_empty(&self) -> bool {
        matches!(self.inner, Inner::Empty)
    }

    pub(crate) fn is_replayable(&self) -> bool {
        !matches!(self.inner, Inner::Stream(_))
    }

    /// The length, when known before sending: always for bytes, for a
    /// stream when its size hint is exact.
    pub(crate) fn exact_len(&self) -> Option<u64> {
        match &self.inner {
            Inner::Empty => Some(0),
            Inner::Full(b) => Some(b.len() as u64),
            Inner::Stream(s) => s.size_hint().exact(),
        }
    }

    pub(crate) fn as_full(&self) -> Option<&Bytes> {
        match &self.inner {
            Inner::Full(b) => Some(b),
            _ => None,
        }
    }

    #[cfg(feature = "multipart")]
    /// Polls the next data chunk of a streamed body (`None` at its end, and
    /// for a body in memory, which `as_full` gives whole).
    pub(crate) fn poll_data(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Bytes, BoxError>>> {
        let Inner::Stream(s) = &mut self.inner else {
            return std::task::Poll::Ready(None);
        };
        loop {
            match std::task::ready!(s.as_mut().poll_frame(cx)) {
                None => return std::task::Poll::Ready(None),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return std::task::Poll::Ready(Some(Ok(data)));
                    }
                }
                Some(Err(e)) => return std::task::Poll::Ready(Some(Err(e))),
            }
        }
    }

    /// The next data chunk of a streamed body; trailers are not sent.
    pub(crate) async fn next_data(&mut self) -> Result<Option<Bytes>, Error> {
        let Inner::Stream(s) = &mut self.inner else {
            return Ok(None);
        };
        loop {
            match poll_fn(|cx| s.as_mut().poll_frame(cx)).await {
                None => return Ok(None),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        return Ok(Some(data));
                    }
                }
                Some(Err(e)) => {
                    return Err(
                        Error::new(ErrorKind::Request, "the request body stream failed")
                            .with_phase(Phase::WriteRequest)
                            .with_source(e),
                    );
                }
            }
        }
    }
}

impl Default for Body {
    fn default() -> Body {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Empty => f.write_str("Body::Empty"),
            Inner::Full(b) => write!(f, "Body::Full({} bytes)", b.len()),
            Inner::Stream(_) => f.write_str("Body::Stream"),
        }
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        if b.is_empty() {
            Body::empty()
        } else {
            Body {
                inner: Inner::Full(b),
            }
        }
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        Body::from(Bytes::from(v))
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Body::from(Bytes::from(s))
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Body::from(Bytes::from_static(s.as_bytes()))
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Body {
        Body::from(Bytes::from_static(s))
    }
}

impl From<()> for Body {
    fn from(_: ()) -> Body {
        Body::empty()
    }
}

pin_project_lite::pin_project! {
    struct MapErr<B> { #[pin] inner: B }
}

impl<B> HttpBody for MapErr<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, BoxError>>> {
        let inner = self.project().inner;
        inner
            .poll_frame(cx)
            .map(|o| o.map(|r| r.map_err(Into::into)))
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
}

pin_project_lite::pin_project! {
    struct StreamBody<S> { #[pin] stream: S }
}

impl<S, E> HttpBody for StreamBody<S>
where
    S: futures_core::Stream<Item = Result<Bytes, E>>,
{
    type Data = Bytes;
    type Error = E;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, E>>> {
        let stream = self.project().stream;
        stream
            .poll_next(cx)
            .map(|o| o.map(|r| r.map(http_body::Frame::data)))
    }
}
