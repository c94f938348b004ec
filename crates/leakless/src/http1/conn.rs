//! An HTTP/1.1 connection: the socket, its read buffer and its write buffer.
//! Owned by one request at a time; the request's own task does all the I/O.

use std::{
    future::poll_fn,
    io,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use bytes::BytesMut;
use http::Method;
use tokio::{
    io::AsyncWriteExt,
    time::{Instant, Sleep, sleep_until, timeout},
};

use super::{
    encode::{self, BodyLen},
    framing::{self, Decision},
    head::{self, Head},
};
use crate::{
    attempt::{Failure, Fate, Outgoing},
    body::Body,
    connect::Transport,
    error::{Error, ErrorKind},
    phase::Phase,
};

/// A new connection's read step; a 5-byte response fits many times over.
const READ_FIRST: usize = 8 * 1024;
/// The largest read step, so an idle connection's buffer stays bounded.
const READ_MAX: usize = 64 * 1024;
/// Bodies up to this size go out in the same write as the head.
const COALESCE: usize = 16 * 1024;

/// Why an idle connection cannot be reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unusable {
    /// The server closed it (EOF or reset).
    Closed,
    /// Bytes arrived that no request asked for.
    Unsolicited,
}

/// An open HTTP/1.1 connection.
#[derive(Debug)]
pub(crate) struct H1Conn {
    io: Transport,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    /// When the last bytes read arrived, if that is known: set when a
    /// response head is timed, forgotten at the next read. A body that
    /// came whole with its head leaves it set, and the pool takes it as the
    /// moment the connection went idle (the server's idle clock started
    /// then too) instead of reading the clock again.
    arrived: Option<Instant>,
    /// What the connection learns and keeps, boxed so the lease every
    /// request moves around stays small.
    kept: Box<Kept>,
}

/// What a connection keeps between requests besides its buffers.
#[derive(Debug)]
struct Kept {
    /// The peer's end, read when the connection opened.
    remote: Option<std::net::SocketAddr>,
    /// Our end, read the first time an observer asks (a `getsockname` per
    /// request otherwise), never when nobody does.
    local: std::sync::OnceLock<Option<std::net::SocketAddr>>,
    /// Room made for the next read: doubles (up to `READ_MAX`) each time a
    /// read fills it, so a connection carrying 16 KiB responses soon takes
    /// each in one `recv` and hands the body out as one `Bytes`, no copy.
    read_size: usize,
    /// The response-head deadline, armed again for each request: moving a
    /// registered timer later costs one atomic, where a new one per request
    /// took the timer driver's lock twice (to insert and to remove). Kept
    /// with the runtime it belongs to: a connection may outlive one runtime
    /// and serve another, whose timers are its own.
    head_timer: Option<(tokio::runtime::Id, Pin<Box<Sleep>>)>,
}

impl H1Conn {
    pub fn new(io: Transport) -> H1Conn {
        H1Conn {
            kept: Box::new(Kept {
                remote: io.peer_addr(),
                local: std::sync::OnceLock::new(),
                read_size: READ_FIRST,
                head_timer: None,
            }),
            io,
            rbuf: BytesMut::new(),
            wbuf: Vec::with_capacity(512),
            arrived: None,
        }
    }

    /// Everything buffered had arrived by `at` (a response head was just
    /// timed).
    pub fn arrived_by(&mut self, at: Instant) {
        self.arrived = Some(at);
    }

    /// When the last bytes read arrived, if nothing was read since it was
    /// known; once only.
    pub fn take_arrived(&mut self) -> Option<Instant> {
        self.arrived.take()
    }

    /// The peer's end of the socket.
    pub fn remote_addr(&self) -> Option<std::net::SocketAddr> {
        self.kept.remote
    }

    pub fn rbuf(&mut self) -> &mut BytesMut {
        &mut self.rbuf
    }

    /// Our end of the socket.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        *self.kept.local.get_or_init(|| self.io.local_addr())
    }

    /// Reads whatever the socket has into the read buffer; `Ok(0)` is EOF.
    /// `want`: body bytes the framing says are still to come, room for
    /// which is made at once (up to `READ_MAX`).
    pub fn poll_fill(
        &mut self,
        cx: &mut Context<'_>,
        want: Option<u64>,
    ) -> Poll<io::Result<usize>> {
        let room = want.map_or(self.kept.read_size, |w| {
            self.kept
                .read_size
                .max(usize::try_from(w).unwrap_or(usize::MAX).min(READ_MAX))
        });
        let spare = self.rbuf.capacity() - self.rbuf.len();
        // Half the step is enough to read into: reserving costs little but
        // not nothing, and a buffer whose old bytes were all handed out and
        // dropped is reused in place.
        if spare < room / 2 {
            self.rbuf.reserve(room);
        }
        let spare = self.rbuf.capacity() - self.rbuf.len();
        // Tokio's own read, not `try_read_buf`: it reads only once the
        // reactor saw the socket readable, and a read that leaves room in
        // the buffer drained the socket, so it forgets that readiness. The
        // idle check then costs no system call until something new (a
        // close, stray bytes) arrives; a close the reactor has seen stays.
        let read = tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.rbuf);
        if let Poll::Ready(Ok(n)) = read
            && n > 0
        {
            self.arrived = None;
            if n == spare {
                self.kept.read_size = (self.kept.read_size * 2).min(READ_MAX);
            }
        }
        read
    }

    /// Is this idle connection still fit to carry a request? Looks without
    /// consuming: a peek, and only when the reactor saw the socket readable.
    pub fn idle_check(&self) -> Result<(), Unusable> {
        if !self.rbuf.is_empty() {
            return Err(Unusable::Unsolicited);
        }
        // For TLS too: any bytes on an idle TLS connection are a close_notify
        // or garbage, never something to keep.
        match self.io.peek_ready() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Ok(0) | Err(_) => Err(Unusable::Closed),
            Ok(_) => Err(Unusable::Unsolicited),
        }
    }

    /// Writes the request head and body. Each write must make progress
    /// within `idle`. A failure leaves the connection fit only to close.
    pub async fn write_request(
        &mut self,
        req: &Outgoing<'_>,
        body: &mut Body,
        idle: Duration,
    ) -> Result<(), Failure> {
        let mut wrote = false;
        let res = self.write_inner(req, body, idle, &mut wrote).await;
        res.map_err(|error| Failure {
            error,
            got_nothing: true,
            // Not one byte reached the socket: the server cannot have seen it.
            unprocessed: !wrote,
            fate: Fate::Close,
        })
    }

    async fn write_inner(
        &mut self,
        req: &Outgoing<'_>,
        body: &mut Body,
        idle: Duration,
        wrote: &mut bool,
    ) -> Result<(), Error> {
        let len = BodyLen::of(body);
        let mut wbuf = std::mem::take(&mut self.wbuf);
        wbuf.clear();
        encode::head(&mut wbuf, req, len);
        let res = async {
            match body.as_full() {
                Some(data) if data.len() <= COALESCE => {
                    wbuf.extend_from_slice(data);
                    self.write(&wbuf, idle, wrote).await
                }
                Some(data) => {
                    self.write(&wbuf, idle, wrote).await?;
                    self.write(data, idle, wrote).await
                }
                None if len == BodyLen::None => self.write(&wbuf, idle, wrote).await,
                None => {
                    self.write(&wbuf, idle, wrote).await?;
                    self.write_stream(body, len, idle, wrote).await
                }
            }
        }
        .await;
        self.wbuf = wbuf;
        res
    }

    async fn write_stream(
        &mut self,
        body: &mut Body,
        len: BodyLen,
        idle: Duration,
        wrote: &mut bool,
    ) -> Result<(), Error> {
        let chunked = len == BodyLen::Chunked;
        let mut sent = 0u64;
        let mut frame = Vec::with_capacity(32);
        while let Some(data) = body.next_data().await? {
            if data.is_empty() {
                continue;
            }
            sent += data.len() as u64;
            if let BodyLen::Known(n) = len
                && sent > n
            {
                return Err(body_len_error(n, sent));
            }
            if chunked {
                frame.clear();
                frame.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                self.write(&frame, idle, wrote).await?;
                self.write(&data, idle, wrote).await?;
                self.write(b"\r\n", idle, wrote).await?;
            } else {
                self.write(&data, idle, wrote).await?;
            }
        }
        match len {
            BodyLen::Known(n) if sent != n => Err(body_len_error(n, sent)),
            BodyLen::Chunked => self.write(b"0\r\n\r\n", idle, wrote).await,
            _ => Ok(()),
        }
    }

    async fn write(&mut self, data: &[u8], idle: Duration, wrote: &mut bool) -> Result<(), Error> {
        let io = &mut self.io;
        let write = async {
            let mut rest = data;
            while !rest.is_empty() {
                let n = io.write(rest).await?;
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                *wrote = true;
                rest = &rest[n..];
            }
            // TLS buffers records; plain TCP has nothing to flush.
            io.flush().await
        };
        // A write that finishes at its first poll (the socket had room:
        // the usual request) needs no timer, nor the clock read to arm one.
        let mut write = std::pin::pin!(write);
        let done = match poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
            Poll::Ready(res) => Ok(res),
            Poll::Pending => timeout(idle, write).await,
        };
        match done {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Error::new(ErrorKind::Io, "could not send the request")
                .with_phase(Phase::WriteRequest)
                .with_source(e)),
            Err(_) => Err(Error::timeout(Phase::WriteRequest, idle)),
        }
    }

    /// Reads the response head, skipping interim 1xx responses, within
    /// `limit` of `sent` (when the request was written: the caller's clock
    /// read serves both this deadline and the time to first byte). A
    /// failure leaves the connection fit only to close.
    pub async fn read_head(
        &mut self,
        method: &Method,
        limit: Duration,
        sent: Instant,
    ) -> Result<(Head, Decision), Failure> {
        let mut got_any = !self.rbuf.is_empty();
        // Out of `self` while the read borrows it; back when it is done.
        let mut timer_slot = self.kept.head_timer.take();
        let read = async {
            loop {
                if let Some(found) = parse_final_head(method, &mut self.rbuf)? {
                    return Ok(found);
                }
                let n = poll_fn(|cx| self.poll_fill(cx, None)).await.map_err(|e| {
                    Error::new(ErrorKind::Io, "connection failed before the response")
                        .with_source(e)
                })?;
                if n == 0 {
                    let what = if self.rbuf.is_empty() {
                        "connection closed by the server before any response"
                    } else {
                        "connection closed by the server in the middle of the response head"
                    };
                    return Err(Error::new(ErrorKind::Io, what));
                }
                got_any = true;
            }
        };
        let mut read = std::pin::pin!(read);
        // As `tokio::time::timeout` does with a limit too far to add.
        let deadline = sent
            .checked_add(limit)
            .unwrap_or_else(|| sent + Duration::from_secs(86_400 * 365 * 30));
        let mut timer = head_timer(&mut timer_slot, deadline);
        let res = poll_fn(|cx| match read.as_mut().poll(cx) {
            Poll::Ready(res) => Poll::Ready(res),
            Poll::Pending => loop {
                match timer.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) if Instant::now() >= deadline => {
                        return Poll::Ready(Err(Error::timeout(Phase::ResponseHeaders, limit)));
                    }
                    // Left armed for an earlier request: only now moved.
                    Poll::Ready(()) => timer.as_mut().reset(deadline),
                }
            },
        })
        .await;
        self.kept.head_timer = timer_slot;
        res.map_err(|error| Failure {
            error: error.with_phase(Phase::ResponseHeaders),
            got_nothing: !got_any,
            unprocessed: false,
            fate: Fate::Close,
        })
    }
}

/// The timer in `slot`, due no later than `deadline`: the one kept if it
/// belongs to this runtime, else a new one kept in its place. A kept timer
/// still armed for an earlier request's deadline is left as it is: it can
/// only fire early, and the caller then moves it to `deadline`. So a
/// connection's timer moves once per `limit`, not once per request (a move
/// is the timer entry's update and a clock-to-tick conversion).
fn head_timer(
    slot: &mut Option<(tokio::runtime::Id, Pin<Box<Sleep>>)>,
    deadline: Instant,
) -> Pin<&mut Sleep> {
    let runtime = tokio::runtime::Handle::current().id();
    match slot {
        Some((id, timer)) if *id == runtime => {
            if timer.is_elapsed() || timer.deadline() > deadline {
                timer.as_mut().reset(deadline);
            }
        }
        _ => *slot = Some((runtime, Box::pin(sleep_until(deadline)))),
    }
    slot.as_mut().expect("just filled").1.as_mut()
}

/// Takes response heads off the front of `buf`, skipping interim 1xx ones,
/// up to the final head and its framing. `Ok(None)`: more bytes are needed.
/// Pure, so the property tests and the fuzz target drive exactly this.
pub(crate) fn parse_final_head(
    method: &Method,
    buf: &mut BytesMut,
) -> Result<Option<(Head, Decision)>, Error> {
    while let Some((head, signals)) = head::parse(buf)? {
        if head.status == http::StatusCode::SWITCHING_PROTOCOLS {
            // We never send Upgrade, and RFC 9110 §15.2.2 forbids switching
            // to a protocol the request did not ask for.
            return Err(Error::new(
                ErrorKind::Protocol,
                "unexpected 101 Switching Protocols",
            ));
        }
        if head.status.is_informational() {
            continue;
        }
        let decision = framing::decide(method, head.status, head.version, &signals)?;
        return Ok(Some((head, decision)));
    }
    Ok(None)
}

fn body_len_error(declared: u64, sent: u64) -> Error {
    Error::new(
        ErrorKind::Request,
        format!("request body stream declared {declared} bytes but yielded {sent}"),
    )
}

#[cfg(test)]
mod tests {
    use tokio::{
        io::AsyncWriteExt,
        net::{TcpListener, TcpStream},
    };

    use super::*;

    /// A connection to a loopback peer that has already written `n` bytes:
    /// on loopback they sit in our receive queue once its write returns.
    async fn sent(n: usize) -> (H1Conn, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let ours = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (mut peer, _) = listener.accept().await.unwrap();
        peer.write_all(&vec![b'x'; n]).await.unwrap();
        (H1Conn::new(Transport::Tcp(ours)), peer)
    }

    async fn fill(conn: &mut H1Conn, want: Option<u64>) -> usize {
        poll_fn(|cx| conn.poll_fill(cx, want)).await.unwrap()
    }

    #[tokio::test]
    async fn a_body_of_known_length_is_read_in_one_step() {
        let (mut conn, _peer) = sent(20_000).await;
        assert_eq!(fill(&mut conn, Some(20_000)).await, 20_000);
    }

    #[tokio::test]
    async fn the_read_step_doubles_each_time_a_read_fills_it() {
        let (mut conn, _peer) = sent(40_000).await;
        assert_eq!(fill(&mut conn, None).await, READ_FIRST);
        assert_eq!(conn.kept.read_size, 2 * READ_FIRST);
        assert_eq!(fill(&mut conn, None).await, 2 * READ_FIRST);
        assert_eq!(conn.kept.read_size, 4 * READ_FIRST);
        let rest = 40_000 - 3 * READ_FIRST;
        assert_eq!(fill(&mut conn, None).await, rest, "what is left");
        assert_eq!(conn.kept.read_size, 4 * READ_FIRST, "not filled: no growth");
        assert_eq!(conn.rbuf.len(), 40_000);
    }

    #[tokio::test]
    async fn a_huge_content_length_makes_room_only_up_to_the_bound() {
        let (mut conn, _peer) = sent(20_000).await;
        assert_eq!(fill(&mut conn, Some(1 << 40)).await, 20_000);
        assert!(conn.rbuf.capacity() <= READ_MAX, "{}", conn.rbuf.capacity());
    }
}
