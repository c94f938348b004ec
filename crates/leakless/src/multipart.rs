//! `multipart/form-data` request bodies (RFC 7578), with reqwest's names:
//! a [`Form`] of named [`Part`]s, each text, bytes, a file or a stream.
//! A form of text and bytes is sent from memory and can be replayed (a
//! retry, a 307); a file or stream part makes it a stream, sent once.
//!
//! ```no_run
//! # async fn run(client: leakless::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use leakless::multipart::{Form, Part};
//! let form = Form::new()
//!     .text("title", "a report")
//!     .part("data", Part::bytes(&b"1,2,3"[..]).file_name("data.csv").mime_str("text/csv")?);
//! let res = client.post("http://127.0.0.1:8080/upload").multipart(form).send().await?;
//! # drop(res); Ok(()) }
//! ```

use std::{
    borrow::Cow,
    collections::VecDeque,
    fmt,
    hash::{BuildHasher, Hasher},
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue};
use http_body::{Frame, SizeHint};

use crate::{
    body::Body,
    error::{BoxError, Error, ErrorKind},
};

/// A multipart form: named parts, sent as `multipart/form-data`.
pub struct Form {
    boundary: String,
    parts: Vec<(Cow<'static, str>, Part)>,
}

/// One field of a [`Form`].
pub struct Part {
    data: Data,
    mime: Option<HeaderValue>,
    file_name: Option<Cow<'static, str>>,
    headers: HeaderMap,
}

enum Data {
    Bytes(Bytes),
    Stream(Body, Option<u64>),
}

impl Default for Form {
    fn default() -> Form {
        Form::new()
    }
}

impl Form {
    /// An empty form with a fresh random boundary.
    pub fn new() -> Form {
        // Random enough that no part contains it by chance: two 64-bit
        // values from the process's randomly keyed hasher.
        let random = || {
            std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish()
        };
        Form {
            boundary: format!("{:016x}-{:016x}", random(), random()),
            parts: Vec::new(),
        }
    }

    /// The boundary between parts.
    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    /// Adds a text field.
    pub fn text<T, U>(self, name: T, value: U) -> Form
    where
        T: Into<Cow<'static, str>>,
        U: Into<Cow<'static, str>>,
    {
        self.part(name, Part::text(value))
    }

    /// Adds a part.
    pub fn part<T>(mut self, name: T, part: Part) -> Form
    where
        T: Into<Cow<'static, str>>,
    {
        self.parts.push((name.into(), part));
        self
    }

    /// Adds the file at `path` as a part named `name`, with its file name;
    /// it is read as the request is sent.
    pub async fn file<T, U>(self, name: T, path: U) -> std::io::Result<Form>
    where
        T: Into<Cow<'static, str>>,
        U: AsRef<std::path::Path>,
    {
        Ok(self.part(name, Part::file(path).await?))
    }

    /// `multipart/form-data; boundary=...`, for the Content-Type header.
    pub(crate) fn content_type(&self) -> HeaderValue {
        HeaderValue::from_str(&format!("multipart/form-data; boundary={}", self.boundary))
            .expect("the boundary is hex")
    }

    /// The request body: in memory when every part is, else a stream
    /// (with a Content-Length when every stream part's length is known).
    pub(crate) fn into_body(self) -> Body {
        let mut segs: VecDeque<Seg> = VecDeque::new();
        let mut head = BytesMut::new();
        for (name, part) in self.parts {
            head.extend_from_slice(b"--");
            head.extend_from_slice(self.boundary.as_bytes());
            head.extend_from_slice(b"\r\n");
            part.write_headers(&name, &mut head);
            match part.data {
                Data::Bytes(b) => head.extend_from_slice(&b),
                Data::Stream(body, len) => {
                    segs.push_back(Seg::Bytes(head.split().freeze()));
                    segs.push_back(Seg::Stream(body, len));
                }
            }
            head.extend_from_slice(b"\r\n");
        }
        head.extend_from_slice(b"--");
        head.extend_from_slice(self.boundary.as_bytes());
        head.extend_from_slice(b"--\r\n");
        if segs.is_empty() {
            return Body::from(head.freeze());
        }
        segs.push_back(Seg::Bytes(head.freeze()));
        let len = segs.iter().try_fold(0u64, |acc, s| match s {
            Seg::Bytes(b) => Some(acc + b.len() as u64),
            Seg::Stream(_, len) => len.map(|l| acc + l),
        });
        Body::from_body(Streamed { segs, len })
    }
}

impl fmt::Debug for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Form")
            .field("boundary", &self.boundary)
            .field(
                "parts",
                &self.parts.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Part {
    fn new(data: Data) -> Part {
        Part {
            data,
            mime: None,
            file_name: None,
            headers: HeaderMap::new(),
        }
    }

    /// Text, sent as it is.
    pub fn text<T: Into<Cow<'static, str>>>(value: T) -> Part {
        Part::new(Data::Bytes(match value.into() {
            Cow::Borrowed(s) => Bytes::from_static(s.as_bytes()),
            Cow::Owned(s) => Bytes::from(s),
        }))
    }

    /// Bytes, sent as they are.
    pub fn bytes<T: Into<Cow<'static, [u8]>>>(value: T) -> Part {
        Part::new(Data::Bytes(match value.into() {
            Cow::Borrowed(b) => Bytes::from_static(b),
            Cow::Owned(b) => Bytes::from(b),
        }))
    }

    /// A body: in memory it is sent as bytes; a stream makes the whole
    /// request a stream, which is never replayed.
    pub fn stream<T: Into<Body>>(value: T) -> Part {
        let body = value.into();
        match body.as_full() {
            Some(b) => Part::new(Data::Bytes(b.clone())),
            None if body.is_empty() => Part::new(Data::Bytes(Bytes::new())),
            None => {
                let len = body.exact_len();
                Part::new(Data::Stream(body, len))
            }
        }
    }

    /// A stream of exactly `length` bytes, so the form can have a
    /// Content-Length.
    pub fn stream_with_length<T: Into<Body>>(value: T, length: u64) -> Part {
        let mut part = Part::stream(value);
        if let Data::Stream(_, len) = &mut part.data {
            *len = Some(length);
        }
        part
    }

    /// The file at `path`, read as the request is sent, named by its file
    /// name.
    pub async fn file<T: AsRef<std::path::Path>>(path: T) -> std::io::Result<Part> {
        let path = path.as_ref();
        let file = tokio::fs::File::open(path).await?;
        let len = file.metadata().await?.len();
        let stream = tokio_util::io::ReaderStream::new(file);
        let mut part = Part::stream_with_length(Body::wrap_stream(stream), len);
        if let Some(name) = path.file_name() {
            part.file_name = Some(Cow::Owned(name.to_string_lossy().into_owned()));
        }
        Ok(part)
    }

    /// Its `Content-Type`; an error if `mime` is not a valid header value.
    pub fn mime_str(mut self, mime: &str) -> Result<Part, Error> {
        let value = HeaderValue::from_str(mime).map_err(|e| {
            Error::new(ErrorKind::Request, format!("invalid MIME type {mime:?}")).with_source(e)
        })?;
        self.mime = Some(value);
        Ok(self)
    }

    /// Its file name, in `Content-Disposition`.
    pub fn file_name<T: Into<Cow<'static, str>>>(mut self, name: T) -> Part {
        self.file_name = Some(name.into());
        self
    }

    /// Extra headers for this part.
    pub fn headers(mut self, headers: HeaderMap) -> Part {
        self.headers = headers;
        self
    }

    fn write_headers(&self, name: &str, out: &mut BytesMut) {
        out.extend_from_slice(b"Content-Disposition: form-data; name=\"");
        escape(name, out);
        out.extend_from_slice(b"\"");
        if let Some(file) = &self.file_name {
            out.extend_from_slice(b"; filename=\"");
            escape(file, out);
            out.extend_from_slice(b"\"");
        }
        out.extend_from_slice(b"\r\n");
        if let Some(mime) = &self.mime {
            out.extend_from_slice(b"Content-Type: ");
            out.extend_from_slice(mime.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        for (k, v) in &self.headers {
            out.extend_from_slice(k.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}

impl fmt::Debug for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Part")
            .field("mime", &self.mime)
            .field("file_name", &self.file_name)
            .field("stream", &matches!(self.data, Data::Stream(..)))
            .finish()
    }
}

/// A name in `Content-Disposition` as browsers write it (the HTML form
/// encoding): `"` and line breaks percent-encoded, the rest as is.
fn escape(s: &str, out: &mut BytesMut) {
    for b in s.bytes() {
        match b {
            b'"' => out.extend_from_slice(b"%22"),
            b'\r' => out.extend_from_slice(b"%0D"),
            b'\n' => out.extend_from_slice(b"%0A"),
            b => out.extend_from_slice(&[b]),
        }
    }
}

enum Seg {
    Bytes(Bytes),
    Stream(Body, Option<u64>),
}

/// A form with stream parts: its segments in order.
struct Streamed {
    segs: VecDeque<Seg>,
    len: Option<u64>,
}

impl http_body::Body for Streamed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            match this.segs.front_mut() {
                None => return Poll::Ready(None),
                Some(Seg::Bytes(b)) => {
                    let b = std::mem::take(b);
                    this.segs.pop_front();
                    if !b.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(b))));
                    }
                }
                Some(Seg::Stream(body, _)) => match std::task::ready!(body.poll_data(cx)) {
                    Some(Ok(data)) => return Poll::Ready(Some(Ok(Frame::data(data)))),
                    Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                    None => {
                        this.segs.pop_front();
                    }
                },
            }
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self.len {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_in_memory_is_one_replayable_body() {
        let form = Form::new().text("a", "1").part(
            "f",
            Part::bytes(&b"x\"y"[..])
                .file_name("q\"uote.txt")
                .mime_str("text/plain")
                .unwrap(),
        );
        let boundary = form.boundary().to_owned();
        let body = form.into_body();
        assert!(body.is_replayable());
        let want = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"q%22uote.txt\"\r\n\
             Content-Type: text/plain\r\n\r\nx\"y\r\n--{boundary}--\r\n"
        );
        assert_eq!(body.as_full().unwrap(), want.as_bytes());
    }

    #[test]
    fn boundaries_differ() {
        assert_ne!(Form::new().boundary(), Form::new().boundary());
    }
}
