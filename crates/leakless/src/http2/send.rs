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
use http::{HeaderMap, Request, header};
use tokio::time::Instant;

use crate::{
    attempt::{Failure, Fate, Outgoing},
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
    let mut head = Request::builder()
        .method(req.method.clone())
        .uri(req.uri.clone())
        .version(http::Version::HTTP_2);
    *head.headers_mut().expect("fresh builder") = h2_headers(req.headers);
    let head = head.body(()).map_err(|e| Failure {
        error: Error::new(ErrorKind::Request, "cannot make an HTTP/2 request of this")
            .with_source(e),
        got_nothing: true,
        unprocessed: true,
        fate: Fate::Keep,
    })?;
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
        // Why did the stream close under the body? A REFUSED_STREAM (or a
        // GOAWAY before it) means unprocessed, so safe to send again; a
        // server may also answer early without reading the body.
        let settled = poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut response).poll(cx))).await;
        return match settled {
            Poll::Ready(Ok(res)) => Ok((res, None)),
            Poll::Ready(Err(e)) if e.reason() == Some(Reason::REFUSED_STREAM) || e.is_go_away() => {
                Err(failed(
                    e,
                    "the server refused the stream",
                    Phase::WriteRequest,
                    Fate::StopNewStreams,
                ))
            }
            _ => Err(Failure {
                error,
                got_nothing: true,
                unprocessed: false,
                fate: Fate::Keep,
            }),
        };
    }
    let wrote = Instant::now();
    let head = await_head(response, head_limit).await?;
    Ok((head, Some(wrote.elapsed())))
}

async fn await_head(
    response: ResponseFuture,
    limit: Duration,
) -> Result<http::Response<h2::RecvStream>, Failure> {
    match tokio::time::timeout(limit, response).await {
        Ok(Ok(res)) => Ok(res),
        Ok(Err(e)) => {
            let fate = if e.is_go_away() || e.is_io() {
                Fate::StopNewStreams
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
/// carries the authority.
fn h2_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let banned = name == header::CONNECTION
            || name == header::TRANSFER_ENCODING
            || name == header::UPGRADE
            || name == header::HOST
            || name == header::CONTENT_LENGTH
            || name.as_str() == "keep-alive"
            || name.as_str() == "proxy-connection"
            || (name == header::TE && value != "trailers");
        if !banned {
            out.append(name, value.clone());
        }
    }
    out
}

/// Maps an h2 error met in `phase`; REFUSED_STREAM and GOAWAY mean "not
/// processed".
fn failed(e: h2::Error, what: &str, phase: Phase, fate: Fate) -> Failure {
    let unprocessed =
        e.reason() == Some(Reason::REFUSED_STREAM) || (e.is_go_away() && e.is_remote());
    let kind = if e.is_io() || e.is_go_away() || e.is_reset() {
        ErrorKind::Io
    } else {
        ErrorKind::Protocol
    };
    Failure {
        error: Error::new(kind, what.to_owned())
            .with_phase(phase)
            .with_source(e),
        got_nothing: true,
        unprocessed,
        fate,
    }
}

/// Maps an h2 error met while reading a body.
pub(crate) fn body_error(e: h2::Error) -> Error {
    Error::new(
        ErrorKind::Io,
        "the HTTP/2 stream failed while reading the body",
    )
    .with_source(e)
}
