//! The byte stream under a connection: TCP, a unix socket, or TLS over
//! either (or over TLS to an HTTPS proxy).

use std::{
    io,
    mem::MaybeUninit,
    net::SocketAddr,
    pin::Pin,
    task::{Context, Poll},
};

use tokio::{
    io::{AsyncRead, AsyncWrite, Interest, ReadBuf},
    net::{TcpStream, UnixStream},
};
use tokio_rustls::client::TlsStream;

/// Our end and the peer's end of a connection's TCP socket (a proxy's,
/// through one), read once when it is dialed: `None` on a unix socket.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Ends {
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
}

/// TCP, a unix socket, or TLS over another transport.
#[derive(Debug)]
pub(crate) enum Transport {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<TlsStream<Transport>>),
}

impl Transport {
    /// Our end of the TCP socket underneath; `None` on a unix socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            Transport::Tcp(s) => s.local_addr().ok(),
            Transport::Unix(_) => None,
            Transport::Tls(s) => s.get_ref().0.local_addr(),
        }
    }

    /// The peer's end of the TCP socket underneath (a proxy's, through
    /// one); `None` on a unix socket.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match self {
            Transport::Tcp(s) => s.peer_addr().ok(),
            Transport::Unix(_) => None,
            Transport::Tls(s) => s.get_ref().0.peer_addr(),
        }
    }

    /// Both ends of the TCP socket underneath, asked of the kernel now.
    pub fn ends(&self) -> Ends {
        Ends {
            local: self.local_addr(),
            remote: self.peer_addr(),
        }
    }

    /// The TLS session of the connection (the innermost one through an
    /// HTTPS proxy is the proxy's; the outermost is the target's).
    pub fn tls(&self) -> Option<&rustls::ClientConnection> {
        match self {
            Transport::Tls(s) => Some(s.get_ref().1),
            _ => None,
        }
    }

    /// The protocol ALPN chose, if TLS negotiated one.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.tls().and_then(|c| c.alpn_protocol())
    }

    /// Peeks one byte of the socket underneath without consuming it, and
    /// only if the reactor saw it readable: `WouldBlock` means nothing
    /// arrived, `Ok(0)` a close.
    pub fn peek_ready(&self) -> io::Result<usize> {
        let mut byte = [MaybeUninit::<u8>::uninit(); 1];
        match self {
            Transport::Tcp(s) => s.try_io(Interest::READABLE, || {
                socket2::SockRef::from(s).peek(&mut byte)
            }),
            Transport::Unix(s) => s.try_io(Interest::READABLE, || {
                socket2::SockRef::from(s).peek(&mut byte)
            }),
            Transport::Tls(s) => s.get_ref().0.peek_ready(),
        }
    }
}

macro_rules! each {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            Transport::Tcp($s) => $e,
            Transport::Unix($s) => $e,
            Transport::Tls($s) => $e,
        }
    };
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_read(cx, buf))
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), s => Pin::new(s).poll_write(cx, buf))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        each!(self.get_mut(), s => Pin::new(s).poll_shutdown(cx))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        each!(self.get_mut(), s => Pin::new(s).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        each!(self, s => s.is_write_vectored())
    }
}
