//! The response body. It owns the connection's lease: reading to the end
//! hands the connection back at that moment; dropping it early drains in the
//! background or closes (see `drain`). Nothing else can hold a connection.

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

use crate::{
    drain,
    error::{Error, ErrorKind},
    h1::{
        decoder::{Decoder, Step},
        framing::Decision,
    },
    lease::Lease,
    stats::CloseReason,
    timeout::Phase,
};

/// A response body streaming from its connection. Implements
/// [`http_body::Body`]; most callers use [`Response::bytes`](crate::Response::bytes)
/// or [`Response::chunk`](crate::Response::chunk) instead.
pub struct Incoming {
    lease: Option<Lease>,
    decoder: Decoder,
    keep_alive: bool,
    read_idle: Duration,
    idle_timer: Option<Pin<Box<Sleep>>>,
    progressed: bool,
    deadline: Option<(Instant, Duration)>,
    deadline_timer: Option<Pin<Box<Sleep>>>,
    max_size: Option<u64>,
    received: u64,
}

impl Incoming {
    pub(crate) fn new(
        lease: Lease,
        decision: Decision,
        deadline: Option<(Instant, Duration)>,
    ) -> Incoming {
        let cfg = lease.config();
        let (read_idle, max_size) = (cfg.read_idle_timeout, cfg.max_body_size);
        let mut body = Incoming {
            lease: Some(lease),
            decoder: Decoder::new(decision.framing),
            keep_alive: decision.keep_alive,
            read_idle,
            idle_timer: None,
            progressed: false,
            deadline,
            deadline_timer: None,
            max_size,
            received: 0,
        };
        if body.decoder.is_done() {
            // No body: the connection goes back before the caller sees the head.
            body.finish();
        }
        body
    }

    /// An empty, already finished body.
    pub(crate) fn empty() -> Incoming {
        Incoming {
            lease: None,
            decoder: Decoder::new(crate::h1::framing::Framing::Empty),
            keep_alive: false,
            read_idle: Duration::ZERO,
            idle_timer: None,
            progressed: false,
            deadline: None,
            deadline_timer: None,
            max_size: None,
            received: 0,
        }
    }

    /// The next chunk of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        poll_fn(|cx| self.poll_chunk(cx)).await.transpose()
    }

    /// Bytes still to come, when the response said (Content-Length).
    pub fn remaining(&self) -> Option<u64> {
        self.decoder.remaining()
    }

    /// The end was reached (or an error ended it) and the connection is gone.
    pub fn is_finished(&self) -> bool {
        self.lease.is_none()
    }

    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        if self.lease.is_none() {
            return Poll::Ready(None);
        }
        // A body that keeps arriving never gets to `poll_timers`: check the
        // total deadline per chunk, and spend tokio's cooperative budget so
        // a fast body yields like any socket read instead of starving the
        // runtime (and every timer on it).
        if let Some((at, total)) = self.deadline
            && Instant::now() >= at
        {
            let e = Error::timeout(Phase::Total, total);
            return Poll::Ready(Some(Err(self.fail(e, CloseReason::Timeout))));
        }
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let polled = self.poll_chunk_inner(cx);
        if polled.is_ready() {
            coop.made_progress();
        }
        polled
    }

    fn poll_chunk_inner(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Error>>> {
        loop {
            let Some(lease) = self.lease.as_mut() else {
                return Poll::Ready(None);
            };
            match self.decoder.decode(lease.conn.rbuf()) {
                Err(e) => return Poll::Ready(Some(Err(self.fail(e, CloseReason::Error)))),
                Ok(Step::Data(data)) => {
                    self.received += data.len() as u64;
                    if let Some(max) = self.max_size
                        && (self.received > max
                            || self
                                .decoder
                                .remaining()
                                .is_some_and(|r| self.received + r > max))
                    {
                        let e = Error::new(
                            ErrorKind::BodyTooLarge,
                            format!("response body over the {max}-byte limit"),
                        );
                        return Poll::Ready(Some(Err(self.fail(e, CloseReason::Error))));
                    }
                    self.progressed = true;
                    if self.decoder.is_done() {
                        self.finish();
                    }
                    return Poll::Ready(Some(Ok(data)));
                }
                Ok(Step::Done) => {
                    self.finish();
                    return Poll::Ready(None);
                }
                Ok(Step::NeedMore) => {}
            }
            match lease.conn.poll_fill(cx) {
                Poll::Ready(Ok(0)) => match self.decoder.eof() {
                    Ok(()) => {
                        self.finish();
                        return Poll::Ready(None);
                    }
                    Err(e) => return Poll::Ready(Some(Err(self.fail(e, CloseReason::Error)))),
                },
                Poll::Ready(Ok(_)) => self.progressed = true,
                Poll::Ready(Err(e)) => {
                    let e = Error::new(ErrorKind::Io, "connection failed while reading the body")
                        .with_source(e);
                    return Poll::Ready(Some(Err(self.fail(e, CloseReason::Error))));
                }
                Poll::Pending => return self.poll_timers(cx),
            }
        }
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

    /// The body ended: the connection goes back now, or is closed when the
    /// response ruled out reuse or left bytes behind.
    fn finish(&mut self) {
        if let Some(mut lease) = self.lease.take() {
            if self.keep_alive && lease.conn.rbuf().is_empty() {
                lease.release();
            } else {
                lease.not_reusable();
            }
        }
    }

    fn fail(&mut self, e: Error, reason: CloseReason) -> Error {
        let lease = self.lease.take();
        let host = lease.as_ref().map(|l| l.key().authority().to_owned());
        if let Some(lease) = lease {
            lease.close(reason);
        }
        let e = if e.phase().is_none() {
            e.with_phase(Phase::BodyRead)
        } else {
            e
        };
        match host {
            Some(h) => e.with_host(&h),
            None => e,
        }
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Some(lease) = self.lease.take() {
            let decoder = std::mem::replace(
                &mut self.decoder,
                Decoder::new(crate::h1::framing::Framing::Empty),
            );
            drain::on_drop(lease, decoder, self.keep_alive);
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
        self.lease.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        match self.decoder.remaining() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

impl fmt::Debug for Incoming {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incoming")
            .field("finished", &self.lease.is_none())
            .field("received", &self.received)
            .field("remaining", &self.decoder.remaining())
            .finish()
    }
}
