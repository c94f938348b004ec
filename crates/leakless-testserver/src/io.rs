//! [`Io`]: the byte streams the server speaks HTTP on, whatever sits
//! underneath: the socket, the socket with bytes replayed, TLS over either.

use std::io;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::server::TlsStream;

use crate::rewind::Rewind;
use crate::tcp::Tcp;

/// A byte stream the server can speak HTTP on: the socket, or TLS over it.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {
    /// Make the coming close a reset (RST) rather than a FIN.
    fn reset_on_close(&self) -> io::Result<()>;
}

impl Io for Tcp {
    fn reset_on_close(&self) -> io::Result<()> {
        Tcp::reset_on_close(self)
    }
}

impl<S: Io> Io for Rewind<S> {
    fn reset_on_close(&self) -> io::Result<()> {
        self.inner().reset_on_close()
    }
}

impl<S: Io> Io for TlsStream<S> {
    fn reset_on_close(&self) -> io::Result<()> {
        self.get_ref().0.reset_on_close()
    }
}
