//! One HTTP/2 stream: read the request (releasing flow-control capacity as
//! it arrives), record it, then reply or misbehave as the [`Reply`] says.
//! Each stream is its own task, so a stalled or endless stream never holds
//! up the others.

use std::future::poll_fn;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream, SendStream};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};

use crate::answer::{Answer, PIECE, Src};
use crate::config::{Fault, Framing, Reply};
use crate::ctx::Ctx;
use crate::request::{RecordedRequest, Version};
use crate::stats::CloseReason;

/// What the connection learns when a stream's task ends.
#[derive(Debug)]
pub(crate) enum Done {
    /// Answered in full; the reply may ask the connection to close
    /// (GOAWAY) or to go deaf.
    Answered {
        close: bool,
        silence: bool,
    },
    /// Reset by the server with `REFUSED_STREAM`, unprocessed.
    Refused,
    /// Reset, stalled until the client gave up, or cut short on purpose.
    Abandoned,
    /// A fault asks for the whole connection to close, or reset.
    Close(CloseReason),
    Reset,
}

/// The `INTERNAL_ERROR` that cuts a body short: the stream-level twin of an
/// HTTP/1.1 connection closed mid-body.
const CUT: Reason = Reason::INTERNAL_ERROR;

pub(crate) async fn serve(
    req: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    ctx: Ctx,
) -> Done {
    let (parts, mut body) = req.into_parts();
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    // A stream reset is decided on the headers alone: the request is neither
    // read nor counted, which is what "unprocessed" promises the client.
    let early = Answer::choose(&ctx.ledger.config(), &target, Version::Http2, Bytes::new());
    if let Some(Fault::ResetStream(code)) = early.reply.fault {
        respond.send_reset(Reason::from(code));
        return match Reason::from(code) {
            Reason::REFUSED_STREAM => Done::Refused,
            _ => Done::Abandoned,
        };
    }
    let mut data = Vec::new();
    while let Some(chunk) = body.data().await {
        let Ok(chunk) = chunk else {
            // The client reset the stream (or the connection broke).
            return Done::Abandoned;
        };
        // Give the window back as soon as the bytes are ours, so a body
        // larger than the window keeps flowing.
        let _ = body.flow_control().release_capacity(chunk.len());
        data.extend_from_slice(&chunk);
    }
    let rec = RecordedRequest {
        conn_id: 0,
        conn_seq: 0,
        method: parts.method.to_string(),
        path: target.clone(),
        version: Version::Http2,
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                (n.as_str().to_owned(), v)
            })
            .collect(),
        body: data,
        authority: parts.uri.authority().map(ToString::to_string),
        tls: ctx.tls,
    };
    let seq = ctx.ledger.request(ctx.id, &rec);

    // Picked after the request is counted, as on HTTP/1.1.
    let cfg = ctx.config(true);
    let Answer {
        mut reply,
        body: src,
        text,
    } = Answer::choose(&cfg, &target, Version::Http2, Bytes::from(rec.body));
    ctx.strike(seq, &mut reply, true);
    if !reply.latency.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(reply.latency) => {}
            _ = poll_fn(|cx| respond.poll_reset(cx)) => return Done::Abandoned,
        }
    }
    match &reply.fault {
        Some(Fault::Stall) => {
            let _ = poll_fn(|cx| respond.poll_reset(cx)).await;
            return Done::Abandoned;
        }
        Some(Fault::CloseWithoutResponse) => return Done::Close(CloseReason::Fault),
        Some(Fault::ResetWithoutResponse) => return Done::Reset,
        Some(Fault::Panic) => panic!("leakless-testserver: fault=panic requested"),
        _ => {}
    }
    let head_only = parts.method == Method::HEAD;
    let has_body = !matches!(reply.status, 204 | 304);
    let endless = reply.fault == Some(Fault::EndlessBody);
    let conn = cfg.conn_headers.then_some((ctx.id, seq));
    let head = response(&reply, &src, has_body && !endless, text, conn);
    let no_body = !has_body || head_only || (src.len() == 0 && reply.fault.is_none());
    let mut send = match respond.send_response(head, no_body) {
        Ok(send) => send,
        Err(_) => {
            // Headers h2 refuses to send (connection-specific ones a test
            // added): the stream fails, visibly.
            respond.send_reset(CUT);
            return Done::Abandoned;
        }
    };
    if no_body {
        return done(&reply, endless);
    }
    let chunk = match reply.framing {
        Framing::Chunked => reply.chunk_size.max(1),
        _ => usize::MAX,
    };
    let len = src.len();
    let sent = match reply.fault {
        None => send_body(&mut send, &src, len, chunk, true).await,
        Some(Fault::EndlessBody) => {
            send_body(&mut send, &Src::Pattern(u64::MAX), u64::MAX, chunk, false).await
        }
        Some(Fault::StallAfterHeaders | Fault::CloseAfterHeaders) => Ok(()),
        Some(Fault::StallAfterBytes(n) | Fault::CloseAfterBytes(n)) => {
            send_body(&mut send, &src, n.min(len), chunk, false).await
        }
        Some(_) => unreachable!("handled above"),
    };
    if sent.is_err() {
        return Done::Abandoned;
    }
    match reply.fault {
        None => done(&reply, false),
        Some(Fault::CloseAfterHeaders | Fault::CloseAfterBytes(_)) => {
            // A reset drops the stream's frames still queued in h2, headers
            // included. The connection's task, woken by the queued frames,
            // runs before a yielding task resumes on this current-thread
            // runtime, and hands them to the socket first.
            tokio::task::yield_now().await;
            send.send_reset(CUT);
            Done::Abandoned
        }
        Some(_) => {
            let _ = poll_fn(|cx| send.poll_reset(cx)).await;
            Done::Abandoned
        }
    }
}

fn done(reply: &Reply, endless: bool) -> Done {
    if endless {
        return Done::Abandoned;
    }
    Done::Answered {
        close: reply.close,
        silence: reply.silence,
    }
}

/// The response head: status, length when known, the connection headers,
/// then the reply's own (skipping any that are not valid HTTP/2 fields).
fn response(
    reply: &Reply,
    src: &Src,
    length: bool,
    text: bool,
    conn: Option<(u64, u64)>,
) -> Response<()> {
    let mut head = Response::new(());
    *head.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let h = head.headers_mut();
    if length && reply.framing == Framing::ContentLength {
        h.insert(CONTENT_LENGTH, HeaderValue::from(src.len()));
    }
    if text {
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    }
    if let Some((id, seq)) = conn {
        h.insert("x-conn-id", HeaderValue::from(id));
        h.insert("x-conn-seq", HeaderValue::from(seq));
    }
    for (name, value) in &reply.headers {
        let name = HeaderName::from_bytes(name.as_bytes());
        let value = HeaderValue::from_str(value);
        if let (Ok(name), Ok(value)) = (name, value) {
            h.append(name, value);
        }
    }
    head
}

/// Sends the first `upto` bytes of `src` in pieces of at most `chunk`, each
/// only once flow control grants room for it; `end` closes the stream with
/// the last piece.
async fn send_body(
    send: &mut SendStream<Bytes>,
    src: &Src,
    upto: u64,
    chunk: usize,
    end: bool,
) -> Result<(), h2::Error> {
    if upto == 0 {
        return if end {
            send.send_data(Bytes::new(), true)
        } else {
            Ok(())
        };
    }
    let mut off = 0u64;
    while off < upto {
        let want = (upto - off).min(chunk as u64).min(PIECE as u64) as usize;
        send.reserve_capacity(want);
        // poll_capacity wakes only on an increase: room already granted
        // (left from a shorter piece) is read directly.
        let room = loop {
            let room = send.capacity();
            if room > 0 {
                break room;
            }
            match poll_fn(|cx| send.poll_capacity(cx)).await {
                None => return Err(Reason::CANCEL.into()),
                Some(Err(e)) => return Err(e),
                Some(Ok(_)) => {}
            }
        };
        let piece = src.piece(off, want.min(room) as u64);
        off += piece.len() as u64;
        send.send_data(piece, end && off == upto)?;
    }
    Ok(())
}
