//! The response body. It owns what holds the connection: the HTTP/1.1
//! lease, or the HTTP/2 stream's guard. Reading to the end gives it back at
//! that moment; dropping early drains (HTTP/1.1, see `drain`) or resets just
//! that stream (HTTP/2). Nothing else can hold a connection.

use std::{
    fmt,
    future::poll_fn,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::{
    decode::{Decoder as ContentDecoder, Encoding},
    drain,
};
use crate::{
    config::Config,
    error::{Error, ErrorKind},
    http1::{
        decoder::{Decoder, Step},
        framing::Decision,
    },
    http2,
    phase::Phase,
    pool::{Lease, StreamGuard},
    route::Route,
    stats::CloseReason,
    trace::Life,
};

enum Source {
    Done,
    H1 {
        lease: Lease,
        decoder: Decoder,
        keep_alive: bool,
    },
    H2 {
        recv: h2::RecvStream,
        guard: StreamGuard,
        declared: Option<u64>,
    },
}

/// A response body streaming from its connection. Implements
/// [`http_body::Body`]; most callers use [`Response::bytes`](crate::Response::bytes)
/// or [`Response::chunk`](crate::Response::chunk) instead.
pub struct Incoming {
    source: Source,
    /// Named in errors. The route itself (one reference count) rather than
    /// a copy of its authority: a copy was an allocation per response.
    host: Option<Route>,
    read_idle: Duration,
    idle_timer: Option<Pin<Box<Sleep>>>,
    progressed: bool,
    deadline: Option<(Instant, Duration)>,
    deadline_timer: Option<Pin<Box<Sleep>>>,
    max_size: Option<u64>,
    received: u64,
    /// The observer's tracer and the span, until the body ends.
    life: Option<Life>,
    /// Decodes a compressed body; the wire's bytes go through it, and
    /// `max_size` counts what comes out.
    decoder: Option<Box<ContentDecoder>>,
    decoded: u64,
}

impl Incoming {
    fn with(
        source: Source,
        cfg: &Config,
        host: &Route,
        deadline: Option<(Instant, Duration)>,
        life: Life,
    ) -> Incoming {
        Incoming {
            source,
            host: Some(host.clone()),
            read_idle: cfg.read_idle_timeout,
            idle_timer: None,
            progressed: false,
            deadline,
            deadline_timer: None,
            max_size: cfg.max_body_size,
            received: 0,
            life: Some(life),
            decoder: None,
            decoded: 0,
        }
    }

    pub(crate) fn h1(
        lease: Lease,
        decision: Decision,
        deadline: Option<(Instant, Duration)>,
        life: Life,
    ) -> Incoming {
        let decoder = Decoder::new(decision.framing);
        let mut body = Incoming::with(Source::Done, lease.config(), lease.route(), deadline, life);
        body.source = Source::H1 {
            lease,
            decoder,
            keep_alive: decision.keep_alive,
        };
        if let Source::H1 { decoder, .. } = &body.source
            && decoder.is_done()
        {
            // No body: the connection goes back before the caller sees the head.
            body.finish();
        }
        body
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn h2(
        recv: h2::RecvStream,
        guard: StreamGuard,
        declared: Option<u64>,
        cfg: &Config,
        host: &Route,
        deadline: Option<(Instant, Duration)>,
        life: Life,
    ) -> Incoming {
        let mut body = Incoming::with(
            Source::H2 {
                recv,
                guard,
                declared,
            },
            cfg,
            host,
            deadline,
            life,
        );
        if let Source::H2 { recv, .. } = &body.source
            && recv.is_end_stream()
        {
            body.finish();
        }
        body
    }

    /// An empty, already finished body.
    pub(crate) fn empty() -> Incoming {
        Incoming {
            source: Source::Done,
            host: None,
            read_idle: Duration::ZERO,
            idle_timer: None,
            progressed: false,
            deadline: None,
            deadline_timer: None,
            max_size: None,
            received: 0,
            life: None,
            decoder: None,
            decoded: 0,
        }
    }

    /// The next chunk of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        poll_fn(|cx| self.poll_chunk(cx)).await.transpose()
    }

    /// Sets the rest of the body aside, on this task: an HTTP/1.1
    /// connection is drained within `drain_limit` and `drain_timeout` and
    /// is back in the pool, or closed, when this returns; an unfinished
    /// HTTP/2 stream is reset. For a redirect being followed, whose
    /// connection must be free before the next hop asks for one.
    pub(crate) async fn discard(mut self) {
        let mut life = self.life.take();
        if let Some(life) = &mut life
            && !self.is_finished()
        {
            life.tracer.body_done(None);
            life.end(None);
        }
        match std::mem::replace(&mut self.source, Source::Done) {
            Source::H1 {
                lease,
                decoder,
                keep_alive,
            } => drain::discard(lease, decoder, keep_alive, life).await,
            Source::H2 { .. } => {
                if let Some(life) = &mut life {
                    life.tracer.conn_returned();
                }
            }
            Source::Done => {}
        }
    }

    /// Decodes the body from here on (it says `Content-Encoding: encoding`).
    pub(crate) fn decode(&mut self, encoding: Encoding) {
        self.decoder = Some(Box::new(ContentDecoder::new(encoding)));
    }

    /// Bytes still to come, when the response said (Content-Length) and
    /// the body is not being decoded.
    pub fn remaining(&self) -> Option<u64> {
        if self.decoder.is_some() {
            return None;
        }
        match &self.source {
            Source::Done => Some(0),
            Source::H1 { decoder, .. } => decoder.remaining(),
            Source::H2 { declared, .. } => declared.map(|d| d.saturating_sub(self.received)),
        }
    }

    /// The end was reached (or an error ended it) and the connection is gone.
    pub fn is_finished(&self) -> bool {
        matches!(self.source, Source::Done) && self.decoder.as_ref().is_none_or(|d| d.is_done())
    }

    pub(crate) fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Error>>> {
        if self.decoder.is_some() {
            self.poll_decoded(cx)
        } else {
            self.poll_wire(cx)
        }
    }

    // Without any codec feature the encoding type has no value: the error
    // arm cannot be reached.
    #[cfg_attr(
        not(any(
            feature = "gzip",
            feature = "brotli",
            feature = "zstd",
            feature = "deflate"
        )),
        allow(unreachable_code, unused_variables)
    )]
    /// The decoded body: wire bytes into the decoder until it has output.
    /// The wire ends (and gives its connection back) at or before the
    /// decoded end.
    fn poll_decoded(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        loop {
            let wire_done = matches!(self.source, Source::Done);
            let Some(dec) = self.decoder.as_mut() else {
                return Poll::Ready(None);
            };
            let out = if !dec.wants_input() {
                dec.step()
            } else if wire_done {
                dec.finish()
            } else {
                match self.poll_wire(cx) {
                    Poll::Ready(Some(Ok(data))) => {
                        if let Some(dec) = &mut self.decoder {
                            dec.push(data);
                        }
                        continue;
                    }
                    Poll::Ready(None) => continue,
                    other => return other,
                }
            };
            match out {
                Ok(Some(data)) => return Poll::Ready(Some(self.accept_decoded(data))),
                Ok(None) if wire_done && dec.is_done() => return Poll::Ready(None),
                Ok(None) => {}
                Err(e) => {
                    let e = Error::new(
                        ErrorKind::Decode,
                        format!("the {}-encoded body is corrupt", dec.encoding()),
                    )
                    .with_source(e);
                    self.decoder = None;
                    return Poll::Ready(Some(Err(self.fail(e, CloseReason::Error))));
                }
            }
        }
    }

    /// Counts decoded bytes against `max_body_size`.
    fn accept_decoded(&mut self, data: Bytes) -> Result<Bytes, Error> {
        self.decoded += data.len() as u64;
        match self.max_size {
            Some(max) if self.decoded > max => {
                self.decoder = None;
                Err(self.fail(too_large(max), CloseReason::Error))
            }
            _ => Ok(data),
        }
    }

    /// The body as it comes off the connection.
    fn poll_wire(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        if matches!(self.source, Source::Done) {
            return Poll::Ready(None);
        }
        // A body that keeps arriving never gets to `poll_timers`: check the
        // total deadline per chunk, and spend tokio's cooperative budget so
        // a fast body yields like any socket read instead of starving the
        // runtime (and every timer on it). Tests:
        // timeouts::total_deadline_interrupts_an_endless_body and
        // timeouts::a_body_that_never_runs_dry_still_lets_other_timers_fire.
        if let Some((at, total)) = self.deadline
            && Instant::now() >= at
        {
            let e = Error::timeout(Phase::Total, total);
            return Poll::Ready(Some(Err(self.fail(e, CloseReason::Timeout))));
        }
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let polled = self.poll_source(cx);
        if polled.is_ready() {
            coop.made_progress();
        }
        polled
    }

    fn poll_source(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        let polled = match &mut self.source {
            Source::Done => return Poll::Ready(None),
            Source::H1 { .. } => self.poll_h1(cx),
            Source::H2 { recv, .. } => loop {
                match recv.poll_data(cx) {
                    Poll::Ready(Some(Ok(data))) => {
                        // Our window opens as the caller consumes.
                        let _ = recv.flow_control().release_capacity(data.len());
                        if data.is_empty() {
                            continue;
                        }
                        break Poll::Ready(Some(Ok(data)));
                    }
                    Poll::Ready(Some(Err(e))) => {
                        break Poll::Ready(Some(Err((http2::body_error(e), CloseReason::Error))));
                    }
                    Poll::Ready(None) => break Poll::Ready(None),
                    Poll::Pending => break Poll::Pending,
                }
            },
        };
        match polled {
            Poll::Ready(Some(Ok(data))) => Poll::Ready(Some(self.accept(data))),
            Poll::Ready(Some(Err((e, reason)))) => Poll::Ready(Some(Err(self.fail(e, reason)))),
            Poll::Ready(None) => {
                self.finish();
                Poll::Ready(None)
            }
            Poll::Pending => self.poll_timers(cx),
        }
    }

    /// One HTTP/1.1 step: decode what is buffered, else read the socket.
    fn poll_h1(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, (Error, CloseReason)>>> {
        let Source::H1 { lease, decoder, .. } = &mut self.source else {
            unreachable!("checked by the caller")
        };
        loop {
            match decoder.decode(lease.conn.rbuf()) {
                Err(e) => return Poll::Ready(Some(Err((e, CloseReason::Error)))),
                Ok(Step::Data(data)) => return Poll::Ready(Some(Ok(data))),
                Ok(Step::Done) => return Poll::Ready(None),
                Ok(Step::NeedMore) => {}
            }
            match lease.conn.poll_fill(cx, decoder.remaining()) {
                Poll::Ready(Ok(0)) => {
                    return match decoder.eof() {
                        Ok(()) => Poll::Ready(None),
                        Err(e) => Poll::Ready(Some(Err((e, CloseReason::Error)))),
                    };
                }
                Poll::Ready(Ok(_)) => self.progressed = true,
                Poll::Ready(Err(e)) => {
                    let e = Error::new(ErrorKind::Io, "connection failed while reading the body")
                        .with_source(e);
                    return Poll::Ready(Some(Err((e, CloseReason::Error))));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Counts a chunk against `max_body_size`; ends the body when it was the last.
    fn accept(&mut self, data: Bytes) -> Result<Bytes, Error> {
        self.received += data.len() as u64;
        if let Some(life) = &mut self.life {
            life.tracer.body_bytes(data.len());
        }
        // Decoded bodies count what comes out of the decoder instead.
        if let Some(max) = self.max_size
            && self.decoder.is_none()
            && (self.received > max || self.remaining().is_some_and(|r| self.received + r > max))
        {
            return Err(self.fail(too_large(max), CloseReason::Error));
        }
        self.progressed = true;
        let ended = match &self.source {
            Source::H1 { decoder, .. } => decoder.is_done(),
            Source::H2 { recv, .. } => recv.is_end_stream(),
            Source::Done => false,
        };
        if ended {
            self.finish();
        }
        Ok(data)
    }

    /// Nothing to read: arm the idle and total timers and see if one fired.
    fn poll_timers(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        if let Some((at, total)) = self.deadline {
            let timer = self
                .deadline_timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(at)));
            if timer.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Some(Err(
                    self.fail(Error::timeout(Phase::Total, total), CloseReason::Timeout)
                )));
            }
        }
        let idle = self.read_idle;
        match &mut self.idle_timer {
            None => self.idle_timer = Some(Box::pin(tokio::time::sleep(idle))),
            Some(t) if self.progressed => t.as_mut().reset(Instant::now() + idle),
            Some(_) => {}
        }
        self.progressed = false;
        let timer = self.idle_timer.as_mut().expect("set above");
        if timer.as_mut().poll(cx).is_ready() {
            let e = Error::timeout(Phase::BodyRead, idle);
            return Poll::Ready(Some(Err(self.fail(e, CloseReason::Timeout))));
        }
        Poll::Pending
    }

    /// The body ended: an HTTP/1.1 connection goes back now (or is closed
    /// when the response ruled out reuse or left bytes behind); an HTTP/2
    /// stream is given back.
    fn finish(&mut self) {
        let mut life = self.life.take();
        let tracer = life.as_mut().map(|l| &mut l.tracer);
        match std::mem::replace(&mut self.source, Source::Done) {
            Source::H1 {
                mut lease,
                keep_alive,
                ..
            } => {
                if keep_alive && lease.conn.rbuf().is_empty() {
                    lease.release();
                    if let Some(t) = tracer {
                        t.body_done(None);
                        t.conn_returned();
                    }
                } else {
                    let reason = lease.not_reusable();
                    if let Some(t) = tracer {
                        t.body_done(None);
                        t.conn_closed(reason);
                    }
                }
            }
            Source::H2 { .. } => {
                if let Some(t) = tracer {
                    t.body_done(None);
                    t.conn_returned();
                }
            }
            Source::Done => {}
        }
        if let Some(life) = &mut life {
            life.end(None);
        }
    }

    fn fail(&mut self, e: Error, reason: CloseReason) -> Error {
        let e = if e.phase().is_none() {
            e.with_phase(Phase::BodyRead)
        } else {
            e
        };
        let e = match &self.host {
            Some(h) => e.with_host(h.authority()),
            None => e,
        };
        let mut life = self.life.take();
        if let Some(life) = &mut life {
            life.tracer.body_done(Some(&e));
        }
        match std::mem::replace(&mut self.source, Source::Done) {
            Source::H1 { lease, .. } => {
                lease.close(reason);
                if let Some(life) = &mut life {
                    life.tracer.conn_closed(reason);
                }
            }
            Source::H2 { guard, .. } => {
                if reason == CloseReason::Timeout {
                    guard.check();
                }
                if let Some(life) = &mut life {
                    life.tracer.conn_returned();
                }
            }
            Source::Done => {}
        }
        if let Some(life) = &mut life {
            life.end(Some(&e));
        }
        e
    }
}

fn too_large(max: u64) -> Error {
    Error::new(
        ErrorKind::BodyTooLarge,
        format!("response body over the {max}-byte limit"),
    )
}

impl Default for Incoming {
    fn default() -> Incoming {
        Incoming::empty()
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        let mut life = self.life.take();
        if let Some(life) = &mut life
            && !matches!(self.source, Source::Done)
        {
            let dropped = Error::new(
                ErrorKind::Canceled,
                "the response was dropped before its end",
            );
            life.tracer.body_done(Some(&dropped));
            life.end(Some(&dropped));
        }
        match std::mem::replace(&mut self.source, Source::Done) {
            Source::H1 {
                lease,
                decoder,
                keep_alive,
            } => drain::on_drop(lease, decoder, keep_alive, life),
            // An HTTP/2 stream dropped early is reset by h2 (RST_STREAM
            // CANCEL): only that stream, the connection carries on.
            Source::H2 { .. } => {
                if let Some(life) = &mut life {
                    life.tracer.conn_returned();
                }
            }
            Source::Done => {}
        }
    }
}

impl http_body::Body for Incoming {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.get_mut()
            .poll_chunk(cx)
            .map(|o| o.map(|r| r.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        self.is_finished()
    }

    fn size_hint(&self) -> SizeHint {
        match self.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("finished", &self.is_finished())
            .field("received", &self.received)
            .field("remaining", &self.remaining())
            .finish()
    }
}
