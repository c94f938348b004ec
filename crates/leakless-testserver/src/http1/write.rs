//! Writing one HTTP/1.1 response, or the fault that replaces it, byte for
//! byte.

use std::fmt::Write as _;
use std::io;

use tokio::io::AsyncWriteExt;

use crate::answer::{Answer, Src};
use crate::config::{Fault, Framing};
use crate::io::Io;
use crate::stats::CloseReason;

/// Everything the writer needs besides the socket: decided by the
/// connection loop, which owns keep-alive.
pub(crate) struct Plan<'a> {
    pub answer: &'a Answer,
    /// A HEAD request: head only, with the length a GET would get.
    pub head_only: bool,
    /// The request was HTTP/1.0: no chunked framing.
    pub http10: bool,
    /// Send `Connection: close` and close after the reply, for this reason.
    pub close: Option<CloseReason>,
    /// Value of a `Keep-Alive` header to send, if any.
    pub keep_alive: Option<String>,
    /// `(conn id, request seq)` for the `x-conn-*` headers, if wanted.
    pub conn: Option<(u64, u64)>,
}

/// What the connection does after the writer returns.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Reply complete; read the next request.
    Done,
    /// Close now, for this reason.
    Close(CloseReason),
    /// Hold the connection open until the client or the server closes it.
    Stall,
    /// A write failed: the client has gone.
    WriteFailed,
}

/// Writes the reply (or its fault) for `plan`.
pub(crate) async fn write<S: Io>(io: &mut S, plan: &Plan<'_>) -> Outcome {
    match write_inner(io, plan).await {
        Ok(outcome) => outcome,
        Err(_) => Outcome::WriteFailed,
    }
}

async fn write_inner<S: Io>(io: &mut S, plan: &Plan<'_>) -> io::Result<Outcome> {
    let reply = &plan.answer.reply;
    let done = plan.close.map_or(Outcome::Done, Outcome::Close);
    let body = &plan.answer.body;
    let has_body = !matches!(reply.status, 204 | 304);
    let mut framing = match reply.framing {
        Framing::Chunked if plan.http10 => Framing::ContentLength,
        f => f,
    };
    let (send, stall_after, finish) = match &reply.fault {
        None => (body.len(), false, true),
        Some(Fault::Stall) => return Ok(Outcome::Stall),
        // No streams to reset on HTTP/1.1: the connection goes instead.
        Some(Fault::CloseWithoutResponse | Fault::ResetStream(_)) => {
            return Ok(Outcome::Close(CloseReason::Fault));
        }
        Some(Fault::ResetWithoutResponse) => {
            // Best effort: without SO_LINGER the close is a FIN, still a close.
            let _ = io.reset_on_close();
            return Ok(Outcome::Close(CloseReason::Fault));
        }
        Some(Fault::Panic) => panic!("leakless-testserver: fault=panic requested"),
        Some(Fault::Raw(bytes)) => {
            io.write_all(bytes).await?;
            io.flush().await?;
            return Ok(done);
        }
        Some(Fault::StallAfterHeaders) => (0, true, false),
        Some(Fault::StallAfterBytes(n)) => (*n, true, false),
        Some(Fault::CloseAfterHeaders) => (0, false, false),
        Some(Fault::CloseAfterBytes(n)) => (*n, false, false),
        Some(Fault::EndlessBody) => {
            framing = if plan.http10 {
                Framing::UntilClose
            } else {
                Framing::Chunked
            };
            let mut w = Writer::new(io);
            head(&mut w.buf, plan, has_body.then_some((framing, u64::MAX)));
            if plan.head_only || !has_body {
                w.flush().await?;
                return Ok(Outcome::Stall);
            }
            return Err(endless(&mut w, framing).await);
        }
    };
    let mut w = Writer::new(io);
    head(&mut w.buf, plan, has_body.then_some((framing, body.len())));
    if has_body && !plan.head_only {
        let chunk = match framing {
            Framing::Chunked => reply.chunk_size.max(1),
            _ => usize::MAX,
        };
        write_body(&mut w, framing, chunk, body, send.min(body.len()), finish).await?;
    }
    w.flush().await?;
    Ok(match (&reply.fault, stall_after) {
        (None, _) => done,
        (Some(_), true) => Outcome::Stall,
        (Some(_), false) => Outcome::Close(CloseReason::Fault),
    })
}

/// Writes the status line and headers into `out`. `body` is the framing and
/// full length, or `None` for a status that has no body.
fn head(out: &mut Vec<u8>, plan: &Plan<'_>, body: Option<(Framing, u64)>) {
    let reply = &plan.answer.reply;
    let mut h = String::with_capacity(128);
    let _ = write!(h, "HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status));
    match body {
        Some((Framing::ContentLength, len)) => {
            let _ = write!(h, "Content-Length: {len}\r\n");
        }
        Some((Framing::Chunked, _)) => h.push_str("Transfer-Encoding: chunked\r\n"),
        Some((Framing::UntilClose, _)) | None => {}
    }
    if plan.answer.text {
        h.push_str("Content-Type: text/plain\r\n");
    }
    if plan.close.is_some() {
        h.push_str("Connection: close\r\n");
    } else if plan.http10 {
        h.push_str("Connection: keep-alive\r\n");
    }
    if let Some(ka) = &plan.keep_alive {
        let _ = write!(h, "Keep-Alive: {ka}\r\n");
    }
    if let Some((id, seq)) = plan.conn {
        let _ = write!(h, "x-conn-id: {id}\r\nx-conn-seq: {seq}\r\n");
    }
    for (name, value) in &reply.headers {
        let _ = write!(h, "{name}: {value}\r\n");
    }
    h.push_str("\r\n");
    out.extend_from_slice(h.as_bytes());
}

/// The first `send` bytes of `body`, framed; with `finish`, the chunked
/// terminator too.
async fn write_body<S: Io>(
    w: &mut Writer<'_, S>,
    framing: Framing,
    chunk: usize,
    body: &Src,
    send: u64,
    finish: bool,
) -> io::Result<()> {
    let chunked = framing == Framing::Chunked;
    let mut off = 0u64;
    while off < send {
        let n = (send - off).min(chunk as u64);
        if chunked {
            w.put(format!("{n:x}\r\n").as_bytes());
        }
        let end = off + n;
        while off < end {
            let piece = body.piece(off, end - off);
            w.put(&piece);
            off += piece.len() as u64;
            w.flush_if_full().await?;
        }
        if chunked {
            w.put(b"\r\n");
        }
    }
    if chunked && finish {
        w.put(b"0\r\n\r\n");
    }
    Ok(())
}

/// Writes body bytes until a write fails, the only way out.
async fn endless<S: Io>(w: &mut Writer<'_, S>, framing: Framing) -> io::Error {
    // A multiple of 5, so every chunk continues the `hello` pattern.
    const CHUNK: u64 = 16_380;
    let body = Src::Pattern(u64::MAX);
    loop {
        if let Err(e) = write_body(w, framing, CHUNK as usize, &body, CHUNK, false).await {
            return e;
        }
        if let Err(e) = w.flush().await {
            return e;
        }
    }
}

/// Batches small writes into one syscall: a 5-byte reply goes out as one
/// segment with its head, as real servers send it.
struct Writer<'a, S> {
    io: &'a mut S,
    buf: Vec<u8>,
}

impl<'a, S: Io> Writer<'a, S> {
    const FLUSH_AT: usize = 64 * 1024;

    fn new(io: &'a mut S) -> Self {
        Writer {
            io,
            buf: Vec::with_capacity(1024),
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    async fn flush_if_full(&mut self) -> io::Result<()> {
        if self.buf.len() >= Self::FLUSH_AT {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.io.write_all(&self.buf).await?;
            self.buf.clear();
        }
        self.io.flush().await
    }
}

/// Reason phrases for the statuses tests use; clients must not care.
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
