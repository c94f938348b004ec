//! One HTTP/2 connection on the h2 crate: accepting streams (each served by
//! `stream.rs` in its own task), and the connection's knobs: refused
//! streams, GOAWAY after N streams, keep-alive timeout, close requests from
//! the test, and going deaf after N streams. A hostile server
//! ([`ConnFault::H2Flood`]) is `flood.rs` instead, in raw frames.

mod flood;
mod stream;

use std::future::poll_fn;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2::Reason;
use h2::server::{Connection, SendResponse};
use http::Request;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::task::JoinSet;

use crate::config::ConnFault;
use crate::ctx::Ctx;
use crate::io::Io;
use crate::ledger::Ledger;
use crate::rewind::Rewind;
use crate::stats::{CloseReason, ConnState};
use crate::tap::Tap;
use stream::Done;

/// How long a close requested by the test waits for its GOAWAY to go out;
/// a client that reads nothing must not hold the close up.
const GOAWAY_FLUSH: Duration = Duration::from_millis(50);

/// Serves HTTP/2 on `io` until the connection closes; `buf` holds bytes
/// already read (all or part of the client's preface).
pub(crate) async fn run<S: Io>(io: S, buf: BytesMut, ctx: &Ctx) -> CloseReason {
    let (id, ledger, notify) = (ctx.id, &*ctx.ledger, &*ctx.notify);
    ledger.h2_started(id);
    let cfg = ctx.config(true);
    if let Some(ConnFault::H2Flood(flood)) = cfg.conn_fault {
        return flood::run(io, buf, flood, ctx).await;
    }
    let mut builder = h2::server::Builder::new();
    if let Some(n) = cfg.h2_max_concurrent_streams {
        builder.max_concurrent_streams(n);
    }
    if let Some(n) = cfg.h2_initial_window_size {
        builder.initial_window_size(n);
    }
    let io = Rewind::new(buf.freeze(), io).tapped(Tap::new(id, ctx.ledger.clone()));
    let mut conn = match ctx.guarded(builder.handshake::<_, Bytes>(io)).await {
        Err(reason) => return reason,
        Ok(Err(e)) => return broken(ledger, &e),
        Ok(Ok(conn)) => conn,
    };
    if cfg.h2_silent_after == Some(0) {
        ledger.deafen(id);
    }
    let mut streams: JoinSet<Done> = JoinSet::new();
    // Streams past the silence, kept unanswered: dropping them would reset
    // them, which a dead peer does not do.
    let mut held: Vec<(Request<h2::RecvStream>, SendResponse<Bytes>)> = Vec::new();
    let mut opened = 0u64;
    let mut answered = 0u64;
    // Set once GOAWAY is on its way: the reason the connection will close
    // for when its last stream is done.
    let mut closing: Option<CloseReason> = None;
    let mut state = None;
    loop {
        let now = match (opened, streams.is_empty()) {
            (0, _) => ConnState::New,
            (_, true) => ConnState::Idle,
            (_, false) => ConnState::Busy,
        };
        if state != Some(now) {
            state = Some(now);
            if let Some(reason) = ledger.enter(id, now) {
                return shut(&mut conn, reason, ledger, id).await;
            }
        }
        let cfg = ctx.config(true);
        let idle = now == ConnState::Idle && closing.is_none();
        tokio::select! {
            biased;
            () = notify.notified() => {
                let reason = ledger.requested_close(id);
                return shut(&mut conn, reason, ledger, id).await;
            }
            Some(joined) = streams.join_next() => {
                let done = match joined {
                    Ok(done) => done,
                    // On to `serve`, which records the close as a panic.
                    Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                    Err(_) => Done::Abandoned,
                };
                ledger.stream_closed(id, matches!(done, Done::Refused));
                match done {
                    Done::Answered { close, silence } => {
                        answered += 1;
                        if close {
                            go_away(&mut conn, &mut closing, CloseReason::ReplyClose, ledger);
                        }
                        if silence || cfg.h2_silent_after == Some(answered) {
                            ledger.deafen(id);
                        }
                    }
                    Done::Refused | Done::Abandoned => {}
                    Done::Close(reason) => return reason,
                    Done::Reset => {
                        // h2 owns the socket: the reset happens as it drops.
                        ledger.reset_on_close(id);
                        return CloseReason::Fault;
                    }
                }
            }
            accepted = conn.accept() => match accepted {
                // Closed: by the client, or by us once GOAWAY's streams were done.
                None => return closing.unwrap_or(CloseReason::Peer),
                Some(Err(e)) => return closing.unwrap_or_else(|| broken(ledger, &e)),
                Some(Ok((req, mut respond))) => {
                    opened += 1;
                    ledger.stream_opened(id);
                    let limit = cfg.h2_goaway_after.map(|n| (n, CloseReason::GoAway));
                    let max = cfg.max_requests_per_conn.map(|n| (n, CloseReason::MaxRequests));
                    let limit = match (limit, max) {
                        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
                        (a, b) => a.or(b),
                    };
                    // Past a GOAWAY, or one of the first N: unprocessed, and
                    // RFC 9113 §8.7 lets the client retry it.
                    if closing.is_some() || opened <= cfg.h2_refuse_streams {
                        respond.send_reset(Reason::REFUSED_STREAM);
                        ledger.stream_closed(id, true);
                        continue;
                    }
                    if cfg.h2_silent_after.is_some_and(|n| opened > n) || ledger.is_shut(id) {
                        held.push((req, respond));
                        continue;
                    }
                    streams.spawn(stream::serve(req, respond, ctx.clone()));
                    if let Some((n, reason)) = limit {
                        if opened >= n {
                            go_away(&mut conn, &mut closing, reason, ledger);
                        }
                    }
                }
            },
            () = ctx.keep_alive_expired(idle) => {
                go_away(&mut conn, &mut closing, CloseReason::KeepAliveTimeout, ledger);
            }
        }
    }
}

/// Starts a graceful GOAWAY (2^31-1, a PING round trip, then the last
/// stream accepted); the connection closes once its streams are done.
fn go_away<T, B>(
    conn: &mut Connection<T, B>,
    closing: &mut Option<CloseReason>,
    reason: CloseReason,
    ledger: &Ledger,
) where
    T: AsyncRead + AsyncWrite + Unpin,
    B: bytes::Buf,
{
    if closing.is_some() {
        return;
    }
    *closing = Some(reason);
    ledger.goaway_sent();
    conn.graceful_shutdown();
}

/// Closes now for a close the test requested: GOAWAY with the last stream
/// accepted, a moment to flush it, then the socket goes.
async fn shut<T, B>(
    conn: &mut Connection<T, B>,
    reason: CloseReason,
    ledger: &Ledger,
    id: u64,
) -> CloseReason
where
    T: AsyncRead + AsyncWrite + Unpin,
    B: bytes::Buf,
{
    // A silent connection says nothing, not even goodbye.
    if !ledger.is_shut(id) {
        ledger.goaway_sent();
        conn.abrupt_shutdown(Reason::NO_ERROR);
        let flushed = poll_fn(|cx| conn.poll_closed(cx));
        let _ = tokio::time::timeout(GOAWAY_FLUSH, flushed).await;
    }
    reason
}

/// Why a connection h2 gave up on closed: the client went away or said
/// GOAWAY (its call), or it broke the protocol (a bad request).
fn broken(ledger: &Ledger, e: &h2::Error) -> CloseReason {
    if e.is_io() || e.is_remote() {
        return CloseReason::Peer;
    }
    ledger.bad_request();
    CloseReason::BadRequest
}
