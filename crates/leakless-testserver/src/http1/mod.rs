//! One HTTP/1.1 connection: the keep-alive loop, idle timeouts, close
//! requests from the test, and the stalls faults ask for. Reading a request
//! is `read.rs`, writing its reply `write.rs`.

mod read;
mod write;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::answer::Answer;
use crate::config::Framing;
use crate::ctx::Ctx;
use crate::io::Io;
use crate::request::Version;
use crate::stats::{CloseReason, ConnState};
use read::ReadError;
use write::{Outcome, Plan};

/// Serves HTTP/1.1 on `io` until the connection closes; `buf` holds bytes
/// already read (the start of the first request).
pub(crate) async fn run<S: Io>(io: &mut S, buf: BytesMut, ctx: &Ctx) -> CloseReason {
    let reason = serve(io, buf, ctx).await;
    // A close the server chose is said properly: over TLS that is a
    // close_notify, without which a client must treat a body delimited by
    // the close as truncated; then the socket lingers until the client has
    // the whole reply (or a close is requested meanwhile). Faults and a
    // client that left get no goodbye; a close the test asked for, a short
    // one, so a client that reads nothing does not hold it up.
    let polite = !matches!(reason, CloseReason::Peer | CloseReason::Fault);
    if polite && !ctx.ledger.is_shut(ctx.id) {
        let requested = matches!(
            reason,
            CloseReason::CloseIdle | CloseReason::CloseAll | CloseReason::Shutdown
        );
        let limit = if requested { GOODBYE } else { LINGER };
        let _ = ctx
            .guarded(tokio::time::timeout(limit, io.shutdown()))
            .await;
    }
    reason
}

/// How long a polite close the test asked for may take.
const GOODBYE: Duration = Duration::from_millis(50);
/// How long a polite close the server chose may take: the socket's own
/// linger is as long, this bounds a close_notify the client never reads.
const LINGER: Duration = Duration::from_secs(2);

async fn serve<S: Io>(io: &mut S, mut buf: BytesMut, ctx: &Ctx) -> CloseReason {
    let (id, ledger, notify) = (ctx.id, &*ctx.ledger, &*ctx.notify);
    let mut served = 0u64;
    let mut waiting = ConnState::New;
    loop {
        let cfg = ctx.config(false);
        // Waiting for the first byte of the next request. Bytes already
        // buffered (a pipelined request) skip the wait.
        if buf.is_empty() {
            if let Some(reason) = ledger.enter(id, waiting) {
                return reason;
            }
            tokio::select! {
                biased;
                read = io.read_buf(&mut buf) => match read {
                    Ok(0) | Err(_) => return CloseReason::Peer,
                    Ok(_) => {}
                },
                () = notify.notified() => return ledger.requested_close(id),
                () = ctx.keep_alive_expired(waiting == ConnState::Idle) => {
                    return CloseReason::KeepAliveTimeout;
                }
            }
        }
        // The state change checks for a close requested while idle, so a
        // request racing `close_idle_connections` is dropped, as on a real
        // server that closes an idle connection just as a request arrives.
        if let Some(reason) = ledger.enter(id, ConnState::Busy) {
            return reason;
        }
        waiting = ConnState::Idle;
        let read = read::read(io, &mut buf, cfg.max_head_bytes);
        let mut req = match ctx.guarded(read).await {
            Err(reason) => return reason,
            Ok(Err(ReadError::Closed)) => return CloseReason::Peer,
            Ok(Err(ReadError::Bad(status, why))) => {
                ledger.bad_request();
                let _ = io.write_all(&error_response(status, why, true)).await;
                return CloseReason::BadRequest;
            }
            Ok(Ok(mut req)) => {
                req.rec.tls = ctx.tls;
                req
            }
        };
        served += 1;
        let seq = ledger.request(id, &req.rec);

        // Picked after the request is counted, so a test that changes the
        // config once it sees the count gets the new behaviour next time.
        let cfg = ctx.config(false);
        let body = Bytes::from(std::mem::take(&mut req.rec.body));
        let mut answer = Answer::choose(&cfg, &req.rec.path, req.rec.version, body);
        ctx.strike(served, &mut answer.reply, false);
        let reply = &answer.reply;
        let silence = reply.silence;
        let close = if req.wants_close {
            Some(CloseReason::RequestClose)
        } else if cfg.max_requests_per_conn.is_some_and(|max| served >= max) {
            Some(CloseReason::MaxRequests)
        } else if reply.close || reply.framing == Framing::UntilClose {
            Some(CloseReason::ReplyClose)
        } else {
            None
        };
        let keep_alive = match (close, cfg.advertise_keep_alive, cfg.keep_alive_timeout) {
            (None, true, Some(t)) => Some(match cfg.max_requests_per_conn {
                Some(max) => format!("timeout={}, max={}", t.as_secs(), max - served),
                None => format!("timeout={}", t.as_secs()),
            }),
            _ => None,
        };
        if !reply.latency.is_zero() {
            let sleep = tokio::time::sleep(reply.latency);
            if let Err(reason) = ctx.guarded(sleep).await {
                return reason;
            }
        }
        let plan = Plan {
            answer: &answer,
            head_only: req.rec.method == "HEAD",
            http10: req.rec.version == Version::Http10,
            close,
            keep_alive,
            conn: cfg.conn_headers.then_some((id, seq)),
        };
        match ctx.guarded(write::write(io, &plan)).await {
            Err(reason) => return reason,
            // Deaf from now on: the next read waits for the client's close.
            Ok(Outcome::Done) if silence => ledger.deafen(id),
            Ok(Outcome::Done) => {}
            Ok(Outcome::Close(reason)) => return reason,
            Ok(Outcome::WriteFailed) => {
                ledger.write_failed(id);
                return CloseReason::Peer;
            }
            Ok(Outcome::Stall) => return ctx.stall(io, &mut buf).await,
        }
    }
}

/// A complete small response for errors the server itself reports.
fn error_response(status: u16, why: &str, close: bool) -> Vec<u8> {
    let connection = if close { "Connection: close\r\n" } else { "" };
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{connection}\r\n{why}\n",
        write::reason(status),
        why.len() + 1,
    )
    .into_bytes()
}
