//! Reading one HTTP/1.1 request off a connection: the head via httparse,
//! the body by Content-Length or chunked.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::request::{RecordedRequest, Version, has_token};

/// Why no request could be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The client closed or reset the connection.
    Closed,
    /// Unparseable: answer with this status and close.
    Bad(u16, &'static str),
}

impl From<std::io::Error> for ReadError {
    fn from(_: std::io::Error) -> Self {
        ReadError::Closed
    }
}

/// What `read` returns: the recorded request plus what the connection loop
/// needs to decide keep-alive.
pub(crate) struct Request {
    pub rec: RecordedRequest,
    /// The client asked to close after this exchange.
    pub wants_close: bool,
}

const MAX_HEADERS: usize = 100;
const MAX_LINE: usize = 8 * 1024;

/// Reads one request. `buf` holds bytes already read from `io` and keeps any
/// bytes past this request (a pipelined next one).
pub(crate) async fn read<S>(
    io: &mut S,
    buf: &mut BytesMut,
    max_head: usize,
) -> Result<Request, ReadError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (rec, body) = loop {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => {
                let parsed = head(&req)?;
                buf.advance(n);
                break parsed;
            }
            Ok(httparse::Status::Partial) if buf.len() > max_head => {
                return Err(ReadError::Bad(431, "request head too large"));
            }
            Ok(httparse::Status::Partial) => fill(io, buf).await?,
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ReadError::Bad(431, "too many header fields"));
            }
            Err(_) => return Err(ReadError::Bad(400, "malformed request head")),
        }
    };
    let mut rec = rec;
    let wants_close = match rec.version {
        Version::Http11 | Version::Http2 => has_token(&rec.headers, "connection", "close"),
        Version::Http10 => !has_token(&rec.headers, "connection", "keep-alive"),
    };
    if body != BodyLen::Empty
        && rec.version == Version::Http11
        && rec
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
    {
        // curl waits up to a second for this before sending a large body.
        io.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
    }
    rec.body = match body {
        BodyLen::Empty => Vec::new(),
        BodyLen::Length(n) => read_exact(io, buf, n).await?,
        BodyLen::Chunked => read_chunked(io, buf).await?,
    };
    Ok(Request { rec, wants_close })
}

#[derive(Debug, PartialEq, Eq)]
enum BodyLen {
    Empty,
    Length(usize),
    Chunked,
}

/// The parsed head as owned data, and how its body is framed (RFC 9112 §6.3).
fn head(req: &httparse::Request<'_, '_>) -> Result<(RecordedRequest, BodyLen), ReadError> {
    let version = match req.version {
        Some(0) => Version::Http10,
        _ => Version::Http11,
    };
    let headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|h| {
            let value = String::from_utf8_lossy(h.value).into_owned();
            (h.name.to_owned(), value)
        })
        .collect();
    let rec = RecordedRequest {
        conn_id: 0,
        conn_seq: 0,
        method: req.method.unwrap_or_default().to_owned(),
        path: req.path.unwrap_or_default().to_owned(),
        version,
        headers,
        body: Vec::new(),
        authority: None,
        tls: false,
    };
    let te: Vec<&str> = rec
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect();
    if let Some(last) = te.last() {
        // A request whose final coding is not chunked has no knowable end.
        if !last.eq_ignore_ascii_case("chunked") {
            return Err(ReadError::Bad(400, "transfer-encoding without chunked"));
        }
        return Ok((rec, BodyLen::Chunked));
    }
    let mut len: Option<usize> = None;
    for (_, v) in rec
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        let n: usize = v
            .trim()
            .parse()
            .map_err(|_| ReadError::Bad(400, "invalid content-length"))?;
        if len.is_some_and(|l| l != n) {
            return Err(ReadError::Bad(400, "conflicting content-length"));
        }
        len = Some(n);
    }
    let body = match len {
        None | Some(0) => BodyLen::Empty,
        Some(n) => BodyLen::Length(n),
    };
    Ok((rec, body))
}

/// Reads more bytes into `buf`; EOF means the client went away mid-request.
async fn fill<S: AsyncRead + Unpin>(io: &mut S, buf: &mut BytesMut) -> Result<(), ReadError> {
    buf.reserve(8 * 1024);
    match io.read_buf(buf).await? {
        0 => Err(ReadError::Closed),
        _ => Ok(()),
    }
}

async fn read_exact<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut BytesMut,
    n: usize,
) -> Result<Vec<u8>, ReadError> {
    while buf.len() < n {
        fill(io, buf).await?;
    }
    Ok(buf.split_to(n).to_vec())
}

/// One CRLF-terminated line, without the CRLF.
async fn read_line<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut BytesMut,
) -> Result<Vec<u8>, ReadError> {
    loop {
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = buf.split_to(i).to_vec();
            buf.advance(2);
            return Ok(line);
        }
        if buf.len() > MAX_LINE {
            return Err(ReadError::Bad(400, "chunk line too long"));
        }
        fill(io, buf).await?;
    }
}

async fn read_chunked<S: AsyncRead + Unpin>(
    io: &mut S,
    buf: &mut BytesMut,
) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    loop {
        let line = read_line(io, buf).await?;
        let size = line.split(|&b| b == b';').next().unwrap_or_default();
        let size = std::str::from_utf8(size)
            .ok()
            .and_then(|s| usize::from_str_radix(s.trim(), 16).ok())
            .ok_or(ReadError::Bad(400, "invalid chunk size"))?;
        if size == 0 {
            // Trailer fields are read and dropped, up to the empty line.
            while !read_line(io, buf).await?.is_empty() {}
            return Ok(body);
        }
        body.extend_from_slice(&read_exact(io, buf, size).await?);
        if !read_line(io, buf).await?.is_empty() {
            return Err(ReadError::Bad(400, "chunk data longer than its size"));
        }
    }
}
