//! Opening connections: TCP, then TLS with ALPN when the URL is `https`.
//! An HTTP/1.1 connection is owned by one request at a time; an HTTP/2
//! connection is shared (see `h2`).

mod dial;
mod tls;
mod transport;

pub(crate) use dial::{Dialed, dial};
pub use tls::{Certificate, Identity};
pub(crate) use tls::{Tls, TlsOptions};
pub(crate) use transport::Transport;
