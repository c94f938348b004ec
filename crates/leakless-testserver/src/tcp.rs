//! The accepted socket: [`Tcp`], a `TcpStream` behind a [`Gate`] that can
//! make the connection go deaf or silent without closing it.
//!
//! Silence lives at the bottom of the stack, under TLS and HTTP/2, so one
//! mechanism serves every protocol: whatever sits on top (rustls, the h2
//! crate, the HTTP/1.1 loop) keeps running but sees no more bytes, and its
//! writes never reach the wire. A dead peer, as a client sees it.
//!
//! Its shutdown lingers: a close the server chose must not cost the client
//! the end of the reply (see [`Tcp::poll_linger`]).

use std::future::Future;
use std::io;
use std::os::fd::AsRawFd;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// How much of the connection still works (only ever moves towards
/// silence), and how it will close.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    state: AtomicU8,
    /// Close with a reset (RST): asked for by a fault on a protocol layer
    /// (h2) that owns the socket by then, so it is done when the socket drops.
    reset: AtomicBool,
}

const OPEN: u8 = 0;
/// Reads stop; writes already under way go out.
const DEAF: u8 = 1;
/// Reads and writes stop.
const SILENT: u8 = 2;

impl Gate {
    /// Stops reads: nothing the client sends is seen any more (PINGs, new
    /// streams, requests), but a reply still being written goes out.
    pub(crate) fn deafen(&self) {
        self.state.fetch_max(DEAF, Ordering::Relaxed);
    }

    /// Stops reads and writes at once.
    pub(crate) fn silence(&self) {
        self.state.fetch_max(SILENT, Ordering::Relaxed);
    }

    /// Whether reads have stopped (deaf or silent).
    pub(crate) fn is_shut(&self) -> bool {
        self.state.load(Ordering::Relaxed) != OPEN
    }

    fn writes_stopped(&self) -> bool {
        self.state.load(Ordering::Relaxed) == SILENT
    }

    /// Makes the socket's close a reset (RST) when it drops.
    pub(crate) fn reset_on_close(&self) {
        self.reset.store(true, Ordering::Relaxed);
    }
}

/// The longest a shutdown waits for the client to take the rest of the
/// reply: a client that stopped reading does not hold a close up for long.
const LINGER: Duration = Duration::from_secs(2);
/// How often a lingering shutdown looks at what the client has yet to
/// acknowledge: the kernel has no event for "all acknowledged".
const LINGER_TICK: Duration = Duration::from_millis(5);

/// The accepted socket and the gate the ledger can shut.
pub(crate) struct Tcp {
    tcp: TcpStream,
    gate: Arc<Gate>,
    /// Set once our side is shut: the timers of the lingering that follows.
    linger: Option<Linger>,
}

struct Linger {
    deadline: Pin<Box<Sleep>>,
    tick: Pin<Box<Sleep>>,
}

impl Tcp {
    pub(crate) fn new(tcp: TcpStream, gate: Arc<Gate>) -> Self {
        Tcp {
            tcp,
            gate,
            linger: None,
        }
    }

    /// Make the coming close a reset (RST) rather than a FIN.
    pub(crate) fn reset_on_close(&self) -> io::Result<()> {
        socket2::SockRef::from(&self.tcp).set_linger(Some(Duration::ZERO))
    }

    /// Resolves when the client has closed without sending anything; never
    /// resolves if it sent bytes, which must stay unread.
    pub(crate) async fn closed_unread(&self) {
        let mut byte = [0u8; 1];
        match self.tcp.peek(&mut byte).await {
            Ok(0) | Err(_) => {}
            // Unread bytes hide a later FIN from peek; only shutdown ends it.
            Ok(_) => std::future::pending().await,
        }
    }

    /// Ready once the client has closed (FIN) or reset the connection,
    /// without reading a byte: the only thing a shut gate still notices, so
    /// a client that gives up on a dead connection is counted as closing it.
    ///
    /// Edge-triggered readiness carries a read-closed flag (EPOLLRDHUP) even
    /// when unread data sits in front of the FIN, which `peek` cannot see
    /// past; plain data arrivals are acknowledged and waited out again.
    fn poll_hangup(&self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if ready!(self.tcp.poll_read_ready(cx)).is_err() {
                return Poll::Ready(());
            }
            // Readiness is set, so this resolves at once, with its flags.
            let ready = std::pin::pin!(self.tcp.ready(Interest::READABLE));
            let closed = match ready.poll(cx) {
                Poll::Ready(Ok(r)) => r.is_read_closed() || r.is_error(),
                Poll::Ready(Err(_)) => true,
                Poll::Pending => false,
            };
            if closed {
                return Poll::Ready(());
            }
            // Data, not a close: clear the readiness so the next poll waits
            // for the next edge instead of spinning.
            let _ = self.tcp.try_io(Interest::READABLE, || {
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            });
        }
    }

    /// After our FIN, until the client has acknowledged every byte we sent
    /// (the FIN included) or closed its side, or [`LINGER`] passed: reads
    /// and drops whatever the client still sends. Closing a socket with
    /// bytes unread, or one that bytes reach after it closed (a
    /// WINDOW_UPDATE, a RST_STREAM, a request that crossed the close), makes
    /// the kernel reset the connection and throw away the part of the reply
    /// still queued to send: a client reading slowly would lose its end.
    fn poll_linger(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let linger = self.linger.get_or_insert_with(|| Linger {
            deadline: Box::pin(tokio::time::sleep(LINGER)),
            tick: Box::pin(tokio::time::sleep(LINGER_TICK)),
        });
        let mut scratch = [0u8; 4096];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut self.tcp).poll_read(cx, &mut buf) {
                // The client closed: it sends nothing more.
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(()),
                Poll::Ready(Err(_)) => return Poll::Ready(()),
                Poll::Ready(Ok(())) => {}
                Poll::Pending => break,
            }
        }
        loop {
            if unacknowledged(&self.tcp) == 0 || linger.deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(());
            }
            ready!(linger.tick.as_mut().poll(cx));
            linger.tick.as_mut().reset(Instant::now() + LINGER_TICK);
        }
    }

    /// For a write while the gate is silent: pending for ever, or broken
    /// once the client has gone.
    fn poll_silent_write<T>(&self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        ready!(self.poll_hangup(cx));
        Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()))
    }
}

/// Bytes of ours the client has not acknowledged yet, the FIN counting as
/// one (`SIOCOUTQ`, which Linux numbers as `TIOCOUTQ`); 0 when the kernel
/// will not say.
fn unacknowledged(tcp: &TcpStream) -> i32 {
    let mut n: libc::c_int = 0;
    // SAFETY: the ioctl writes one int through the pointer, which lives
    // across the call; the descriptor is open for as long as `tcp` is.
    let r = unsafe { libc::ioctl(tcp.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
    if r < 0 { 0 } else { n }
}

impl Drop for Tcp {
    fn drop(&mut self) {
        if self.gate.reset.load(Ordering::Relaxed) {
            // Best effort: without SO_LINGER the close is a FIN.
            let _ = self.reset_on_close();
        }
    }
}

impl AsyncRead for Tcp {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.gate.is_shut() {
            // An EOF once the client hangs up: whatever is on top then ends
            // the connection as closed by the peer.
            ready!(this.poll_hangup(cx));
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for Tcp {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.gate.writes_stopped() {
            return this.poll_silent_write(cx);
        }
        Pin::new(&mut this.tcp).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.gate.writes_stopped() {
            return this.poll_silent_write(cx);
        }
        Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.gate.writes_stopped() {
            return this.poll_silent_write(cx);
        }
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    /// Our FIN, then the linger ([`Tcp::poll_linger`]).
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // A silent peer sends no FIN either.
        if this.gate.writes_stopped() {
            return this.poll_silent_write(cx);
        }
        if this.linger.is_none() {
            ready!(Pin::new(&mut this.tcp).poll_shutdown(cx))?;
        }
        this.poll_linger(cx).map(Ok)
    }
}
