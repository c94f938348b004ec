//! HTTP/2 over the `h2` crate: handshake, the driver task with keep-alive
//! pings, sending a request on a stream and mapping h2's errors.
//!
//! An HTTP/2 connection is shared: the pool keeps one entry per connection
//! (one slot toward `max_conns_per_host`) and hands out streams up to the
//! server's `MAX_CONCURRENT_STREAMS`. A stream holds a [`StreamGuard`]; its
//! drop gives the stream back. The driver task owns the connection: when
//! the peer closes, errors, or stops answering pings, the task ends and the
//! entry leaves the pool, so a dead connection is never handed out again.

use std::{future::poll_fn, sync::Arc, task::Poll, time::Duration};

use bytes::Bytes;
use h2::{
    PingPong, Reason,
    client::{Connection, ResponseFuture, SendRequest},
};
use http::{HeaderMap, Request, header};
use tokio::sync::Notify;

use crate::{
    body::Body,
    config::Config,
    conn::Transport,
    error::{Error, ErrorKind},
    pool::{HostKey, Shared, StreamGuard},
    request::Parts,
    stats::CloseReason,
    timeout::Phase,
};

/// What the pool keeps to steer a connection's driver task.
#[derive(Debug, Default)]
pub(crate) struct Control {
    /// The pool dropped the entry: end the connection.
    pub close: Notify,
    /// A request timed out on this connection: ping now to see if it is dead.
    pub check: Notify,
}

/// A stream on a shared connection, ready to carry one request.
#[derive(Debug)]
pub(crate) struct H2Stream {
    pub send: SendRequest<Bytes>,
    pub guard: StreamGuard,
    /// The first stream of a connection just dialed.
    pub fresh: bool,
    /// How long the connection had no stream before this one.
    pub idle_for: Option<Duration>,
}

/// A request that failed on a stream, with what the retry rule needs.
#[derive(Debug)]
pub(crate) struct Failed {
    pub error: Error,
    /// The server did not process it (REFUSED_STREAM, or GOAWAY before it):
    /// safe to send again whatever the method.
    pub unprocessed: bool,
}

/// Handshakes and waits one ping round trip, so the server's SETTINGS
/// (its stream limit above all) are known before any stream is counted.
pub(crate) async fn handshake(
    io: Transport,
    limit: Duration,
) -> Result<(SendRequest<Bytes>, Connection<Transport, Bytes>, PingPong), Error> {
    let setup = async {
        let (send, mut conn) = h2::client::Builder::new()
            .enable_push(false)
            .initial_window_size(1 << 20)
            .initial_connection_window_size(4 << 20)
            .handshake::<_, Bytes>(io)
            .await?;
        let mut pings = conn.ping_pong().expect("taken once, here");
        tokio::select! {
            res = &mut conn => {
                res?;
                return Err(h2::Error::from(Reason::PROTOCOL_ERROR));
            }
            pong = pings.ping(h2::Ping::opaque()) => { pong?; }
        }
        Ok((send, conn, pings))
    };
    match tokio::time::timeout(limit, setup).await {
        Ok(Ok(parts)) => Ok(parts),
        Ok(Err(e)) => Err(Error::new(ErrorKind::Connect, "HTTP/2 handshake failed")
            .with_source(e)
            .with_phase(Phase::Connect)),
        Err(_) => Err(Error::timeout(Phase::Connect, limit)),
    }
}

/// Runs the connection until it ends; then its entry leaves the pool.
pub(crate) fn spawn_driver(
    mut conn: Connection<Transport, Bytes>,
    mut pings: PingPong,
    shared: Arc<Shared>,
    key: HostKey,
    id: u64,
    control: Arc<Control>,
) {
    let interval = shared.config.http2_keep_alive_interval;
    let ping_limit = shared.config.http2_keep_alive_timeout;
    tokio::spawn(async move {
        let reason = loop {
            let tick = async {
                match interval {
                    Some(every) => tokio::time::sleep(every).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                res = &mut conn => break if res.is_ok() { CloseReason::ServerClosed } else { CloseReason::Error },
                _ = control.close.notified() => break CloseReason::ClientDropped,
                _ = tick => {}
                _ = control.check.notified() => {}
            }
            // Ping while still driving the connection: the pong arrives through it.
            let ping = tokio::time::timeout(ping_limit, pings.ping(h2::Ping::opaque()));
            tokio::select! {
                res = &mut conn => break if res.is_ok() { CloseReason::ServerClosed } else { CloseReason::Error },
                pong = ping => match pong {
                    Ok(Ok(_)) => {}
                    Ok(Err(_)) => break CloseReason::Error,
                    Err(_) => {
                        tracing::debug!(host = %key, "HTTP/2 ping unanswered for {ping_limit:?}: closing");
                        break CloseReason::Timeout;
                    }
                },
            }
        };
        drop(conn);
        shared.h2_gone(&key, id, reason);
    });
}

/// Sends the request on `stream` and waits for the response head.
pub(crate) async fn send(
    stream: &mut H2Stream,
    parts: &mut Parts,
    cfg: &Config,
) -> Result<http::Response<h2::RecvStream>, Failed> {
    let body = &mut parts.body;
    let mut req = Request::builder()
        .method(parts.method.clone())
        .uri(parts.uri.clone())
        .version(http::Version::HTTP_2);
    *req.headers_mut().expect("fresh builder") = h2_headers(&parts.headers);
    let req = req.body(()).map_err(|e| Failed {
        error: Error::new(ErrorKind::Request, "cannot make an HTTP/2 request of this")
            .with_source(e),
        unprocessed: true,
    })?;
    let send = &mut stream.send;
    let ready = poll_fn(|cx| send.poll_ready(cx)).await;
    let empty = body.is_empty();
    let started = ready.and_then(|()| send.send_request(req, empty));
    let (response, mut out) = started.map_err(|e| {
        stream.guard.mark_closing(CloseReason::ServerClosed);
        failed(e, "could not start a stream", Phase::WriteRequest)
    })?;
    let mut response = response;
    if !empty && let Err(error) = send_body(&mut out, body, cfg.read_idle_timeout).await {
        // Why did the stream close under the body? A REFUSED_STREAM (or a
        // GOAWAY before it) means unprocessed, so safe to send again; a
        // server may also answer early without reading the body.
        let settled = poll_fn(|cx| Poll::Ready(std::pin::Pin::new(&mut response).poll(cx))).await;
        return match settled {
            Poll::Ready(Ok(res)) => Ok(res),
            Poll::Ready(Err(e)) if e.reason() == Some(Reason::REFUSED_STREAM) || e.is_go_away() => {
                stream.guard.mark_closing(CloseReason::ServerClosed);
                Err(failed(
                    e,
                    "the server refused the stream",
                    Phase::WriteRequest,
                ))
            }
            _ => Err(Failed {
                error,
                unprocessed: false,
            }),
        };
    }
    let wrote = tokio::time::Instant::now();
    let head = await_head(response, cfg.response_header_timeout, &stream.guard).await?;
    stream.guard.ttfb = Some(wrote.elapsed());
    Ok(head)
}

async fn await_head(
    response: ResponseFuture,
    limit: Duration,
    guard: &StreamGuard,
) -> Result<http::Response<h2::RecvStream>, Failed> {
    match tokio::time::timeout(limit, response).await {
        Ok(Ok(res)) => Ok(res),
        Ok(Err(e)) => {
            if e.is_go_away() || e.is_io() {
                guard.mark_closing(CloseReason::ServerClosed);
            }
            Err(failed(
                e,
                "the stream failed before the response",
                Phase::ResponseHeaders,
            ))
        }
        Err(_) => {
            // The stream is reset as the future drops; the connection may be
            // dead too (golang/go#36026): ping it now rather than trust it.
            guard.check();
            Err(Failed {
                error: Error::timeout(Phase::ResponseHeaders, limit),
                unprocessed: false,
            })
        }
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
pub(crate) fn failed(e: h2::Error, what: &str, phase: Phase) -> Failed {
    let unprocessed =
        e.reason() == Some(Reason::REFUSED_STREAM) || (e.is_go_away() && e.is_remote());
    let kind = if e.is_io() || e.is_go_away() || e.is_reset() {
        ErrorKind::Io
    } else {
        ErrorKind::Protocol
    };
    Failed {
        error: Error::new(kind, what.to_owned())
            .with_phase(phase)
            .with_source(e),
        unprocessed,
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
