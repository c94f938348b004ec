//! One request on an HTTP/2 stream: the head, the body as flow control
//! allows, then the response head. Failures come back in the shared shape,
//! saying whether the server processed the request and what the
//! connection should suffer (no new streams, or a ping now).

use std::{future::poll_fn, task::Poll, time::Duration};

use bytes::Bytes;
use h2::{
    Reason,
    client::{ResponseFuture, SendRequest},
};
use http::{HeaderMap, HeaderName, HeaderValue, Request, header};
use tokio::time::Instant;

use crate::{
    attempt::{Failure, Fate, MAX_HEAD_BYTES, MAX_HEADERS, Outgoing},
    body::Body,
    error::{Error, ErrorKind},
    phase::Phase,
};

/// A response head, and how long the server took to send it after the
/// request was written (`None` when it answered before the body was sent).
pub(crate) type Answer = (http::Response<h2::RecvStream>, Option<Duration>);

/// Sends `req` on a new stream of `conn` and waits for the response head,
/// writes within `idle` each, the head within `head_limit`.
pub(crate) async fn send(
    conn: &mut SendRequest<Bytes>,
    req: &Outgoing<'_>,
    body: &mut Body,
    idle: Duration,
    head_limit: Duration,
) -> Result<Answer, Failure> {
    // Built in place rather than through `Request::builder`: the builder's
    // checks cannot fail on values that are already typed.
    let mut head = Request::new(());
    *head.method_mut() = req.method.clone();
    *head.uri_mut() = req.uri.clone();
    *head.version_mut() = http::Version::HTTP_2;
    *head.headers_mut() = h2_headers(req.headers);
    // h2 wants it before each stream: it reports a dead connection, and
    // waits while h2 holds a stream it could not open yet (the server's
    // limit reached). About 100 instructions; the pool's count keeps us
    // under the limit, so it is ready at once.
    let ready = poll_fn(|cx| conn.poll_ready(cx)).await;
    let empty = body.is_empty();
    let started = ready.and_then(|()| conn.send_request(head, empty));
    let (response, mut out) = started.map_err(|e| {
        failed(
            e,
            "could not start a stream",
            Phase::WriteRequest,
            Fate::StopNewStreams,
        )
    })?;
    let mut response = response;
    if !empty && let Err(error) = send_body(&mut out, body, idle).await {
        // Why did the stream close under the body? Refused (see
        // `unprocessed`) means safe to send again; a server may also answer
        // early without reading the body.
        let settled = poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut response).poll(cx))).await;
        return match settled {
            Poll::Ready(Ok(res)) => Ok((res, None)),
            Poll::Ready(Err(e)) if unprocessed(&e) => Err(failed(
                e,
                "the server refused the stream",
                Phase::WriteRequest,
                Fate::StopNewStreams,
            )),
            // A window the server never opened looks like a dead
            // connection: ping it rather than trust it.
            _ if error.is_timeout() => Err(Failure {
                error,
                got_nothing: true,
                unprocessed: false,
                fate: Fate::Ping,
            }),
            _ => Err(Failure {
                error,
                got_nothing: true,
                unprocessed: false,
                fate: Fate::Keep,
            }),
        };
    }
    let wrote = Instant::now();
    let head = await_head(response, wrote, head_limit).await?;
    Ok((head, Some(wrote.elapsed())))
}

/// Waits for the response head, at most `limit` after `wrote` (the clock
/// read that also times the server's answer).
async fn await_head(
    response: ResponseFuture,
    wrote: Instant,
    limit: Duration,
) -> Result<http::Response<h2::RecvStream>, Failure> {
    // A limit too far to add to the clock never fires (as tokio's `timeout`).
    let head = match wrote.checked_add(limit) {
        Some(at) => tokio::time::timeout_at(at, response).await,
        None => Ok(response.await),
    };
    match head {
        // The HTTP/1.1 engine's bound on fields; h2 bounds only the bytes.
        Ok(Ok(res)) if res.headers().len() > MAX_HEADERS => Err(Failure {
            error: Error::new(
                ErrorKind::Protocol,
                format!("malformed response head: more than {MAX_HEADERS} header fields"),
            )
            .with_phase(Phase::ResponseHeaders),
            got_nothing: false,
            unprocessed: false,
            fate: Fate::Close,
        }),
        Ok(Ok(res)) => Ok(res),
        Ok(Err(e)) => {
            let fate = if e.is_go_away() || e.is_io() {
                Fate::StopNewStreams
            } else if e.is_library() {
                // h2 caught the server breaking the protocol on this stream.
                Fate::Close
            } else {
                Fate::Keep
            };
            Err(failed(
                e,
                "the stream failed before the response",
                Phase::ResponseHeaders,
                fate,
            ))
        }
        // The stream is reset as the future drops; the connection may be
        // dead too (golang/go#36026): ping it now rather than trust it.
        Err(_) => Err(Failure {
            error: Error::timeout(Phase::ResponseHeaders, limit),
            got_nothing: true,
            unprocessed: false,
            fate: Fate::Ping,
        }),
    }
}

async fn send_body(
    out: &mut h2::SendStream<Bytes>,
    body: &mut Body,
    idle: Duration,
) -> Result<(), Error> {
    if let Some(full) = body.as_full() {
        return send_data(out, full.clone(), true, idle).await;
    }
    while let Some(chunk) = body.next_data().await? {
        send_data(out, chunk, false, idle).await?;
    }
    send_data(out, Bytes::new(), true, idle).await
}

/// Sends `data` as flow control allows, each wait for window bounded by `idle`.
async fn send_data(
    out: &mut h2::SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
    idle: Duration,
) -> Result<(), Error> {
    let io = |e: h2::Error| {
        Error::new(ErrorKind::Io, "could not send the request body")
            .with_phase(Phase::WriteRequest)
            .with_source(e)
    };
    if data.is_empty() {
        return out.send_data(data, end).map_err(io);
    }
    while !data.is_empty() {
        out.reserve_capacity(data.len());
        let granted = match tokio::time::timeout(idle, poll_fn(|cx| out.poll_capacity(cx))).await {
            Err(_) => return Err(Error::timeout(Phase::WriteRequest, idle)),
            Ok(None) => {
                return Err(
                    Error::new(ErrorKind::Io, "the stream closed while sending the body")
                        .with_phase(Phase::WriteRequest),
                );
            }
            Ok(Some(Err(e))) => return Err(io(e)),
            Ok(Some(Ok(n))) => n,
        };
        let chunk = data.split_to(granted.min(data.len()));
        out.send_data(chunk, end && data.is_empty()).map_err(io)?;
    }
    Ok(())
}

/// HTTP/2 forbids connection-specific fields (RFC 9113 §8.2.2); the URL
/// carries the authority. h2 takes the map by value and the caller keeps
/// its own for a retry, so it is copied once: cloned whole when nothing is
/// banned (the usual case; a clone copies the buckets without hashing each
/// name again), else rebuilt without the banned fields.
fn h2_headers(headers: &HeaderMap) -> HeaderMap {
    if !headers.iter().any(|(name, value)| banned(name, value)) {
        return headers.clone();
    }
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        if !banned(name, value) {
            out.append(name, value.clone());
        }
    }
    out
}

fn banned(name: &HeaderName, value: &HeaderValue) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::HOST
        || name == header::CONTENT_LENGTH
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
        || (name == header::TE && value != "trailers")
}

/// Maps an h2 error met in `phase`, `what` failed unless the error says
/// better, and whether the server processed the request.
fn failed(e: h2::Error, what: &str, phase: Phase, fate: Fate) -> Failure {
    let unprocessed = unprocessed(&e);
    // The server did send something: a reset is its answer (not a stale
    // connection, so not retried as one), a break h2 caught is bytes.
    let answered = e.is_library() || (e.is_reset() && e.is_remote());
    Failure {
        error: error(e, what, phase),
        got_nothing: !answered,
        unprocessed,
        fate,
    }
}

/// Whether `e` says the server did not process the stream, so that the
/// request may go again whatever its method: the server refused it
/// (RST_STREAM REFUSED_STREAM), or its GOAWAY left it out. h2 fails a
/// stream with the server's GOAWAY only if the stream's id is above the
/// GOAWAY's last-stream-id, or if it was not open yet (RFC 9113 §6.8);
/// one at or below it runs on, and fails as I/O if the connection then
/// ends: the server may have processed that one.
fn unprocessed(e: &h2::Error) -> bool {
    let refused = e.is_reset() && e.reason() == Some(Reason::REFUSED_STREAM);
    e.is_remote() && (refused || e.is_go_away())
}

/// Maps an h2 error met while reading a body.
pub(crate) fn body_error(e: h2::Error) -> Error {
    error(
        e,
        "the HTTP/2 stream failed while reading the body",
        Phase::BodyRead,
    )
}

/// An h2 error as ours: what the server did when h2 can tell (h2's own
/// text, kept as the source, says "stream error received: internal error"
/// or "connection error detected: enhance your calm"), else `what`
/// failed. A break of the protocol that h2 caught is a protocol error.
fn error(e: h2::Error, what: &str, phase: Phase) -> Error {
    let kind = if !e.is_library() && (e.is_io() || e.is_go_away() || e.is_reset()) {
        ErrorKind::Io
    } else {
        ErrorKind::Protocol
    };
    let message = server_did(&e, phase).unwrap_or_else(|| what.to_owned());
    Error::new(kind, message).with_phase(phase).with_source(e)
}

/// What the server did, in words, for the h2 errors that carry a reason:
/// a reset or GOAWAY it sent, or a break of the protocol that made h2 end
/// the stream or the connection.
fn server_did(e: &h2::Error, phase: Phase) -> Option<String> {
    let reason = e.reason()?;
    let head = MAX_HEAD_BYTES / 1024;
    let said = if e.is_remote() && e.is_reset() {
        format!("the server reset the stream (RST_STREAM {reason:?})")
    } else if e.is_remote() && e.is_go_away() {
        format!("the server closed the connection (GOAWAY {reason:?})")
    } else if e.is_library() && reason == Reason::ENHANCE_YOUR_CALM {
        format!(
            "the server went past HTTP/2's flood limits (a response head over {head} KiB, \
             endless CONTINUATION frames, or a flood of tiny frames); the connection was \
             closed (GOAWAY ENHANCE_YOUR_CALM)"
        )
    } else if e.is_library() && e.is_reset() && phase == Phase::ResponseHeaders {
        format!(
            "the server sent a malformed response head, or one over {head} KiB; \
             the stream was reset ({reason:?})"
        )
    } else if e.is_library() && e.is_reset() {
        format!("the server broke HTTP/2 on this stream; it was reset ({reason:?})")
    } else if e.is_library() && e.is_go_away() {
        format!("the server broke HTTP/2; the connection was closed (GOAWAY {reason:?})")
    } else {
        return None;
    };
    Some(said)
}
