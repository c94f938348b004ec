//! The SOCKS5 handshake (RFC 1928) through tokio-socks, with RFC 1929
//! user/password when the proxy URL carries credentials. `socks5h://`
//! sends the target's name for the proxy to resolve; `socks5://` sends an
//! address the client resolved.

use std::net::SocketAddr;

use tokio_socks::{TargetAddr, tcp::Socks5Stream};

use super::Transport;
use crate::{
    error::{Error, ErrorKind},
    phase::Phase,
    route::ProxyHop,
};

/// Where the proxy should connect: a name, or an address resolved here.
pub(super) enum Target<'a> {
    Name(&'a str, u16),
    Addr(SocketAddr),
}

/// Asks the proxy at the other end of `io` for `target`.
pub(super) async fn connect(
    io: Transport,
    hop: &ProxyHop,
    target: Target<'_>,
    authority: &str,
) -> Result<Transport, Error> {
    let target = match target {
        Target::Name(host, port) => TargetAddr::Domain(host.into(), port),
        Target::Addr(addr) => TargetAddr::Ip(addr),
    };
    let done = match &hop.credentials {
        Some(c) => {
            Socks5Stream::connect_with_password_and_socket(io, target, &c.user, &c.password).await
        }
        None => Socks5Stream::connect_with_socket(io, target).await,
    };
    match done {
        Ok(stream) => Ok(stream.into_inner()),
        Err(e) => {
            let hint = match e {
                tokio_socks::Error::PasswordAuthFailure(_) => ": it did not accept the credentials",
                tokio_socks::Error::NoAcceptableAuthMethods if hop.credentials.is_none() => {
                    ": it wants credentials (user:password@ in the proxy URL)"
                }
                _ => "",
            };
            Err(Error::new(
                ErrorKind::Proxy,
                format!(
                    "the SOCKS5 proxy {} refused to connect to {authority}: {e}{hint}",
                    hop.shown
                ),
            )
            .with_phase(Phase::ProxyConnect))
        }
    }
}
