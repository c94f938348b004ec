//! Resolving and connecting within `connect_timeout`, the TLS handshake
//! within `tls_handshake_timeout`, and what ALPN (or prior knowledge) chose.

use std::{io, net::IpAddr};

use tokio::net::TcpStream;

use super::transport::Transport;
use crate::{
    error::{Error, ErrorKind},
    h1::H1Conn,
    h2::{self, H2Stream},
    lease::{Lease, Slot},
    pool::HostKey,
    stats::CloseReason,
    timeout::Phase,
};

/// A finished dial: an HTTP/1.1 connection of our own, or the first stream
/// of a new shared HTTP/2 connection.
#[derive(Debug)]
pub(crate) enum Dialed {
    H1(Lease),
    H2(H2Stream),
}

/// Dials for `slot`; on failure the slot is released with the reason.
pub(crate) async fn dial(mut slot: Slot, key: &HostKey) -> Result<Dialed, Error> {
    match open(&slot, key).await {
        Ok(Opened::H1(io)) => Ok(Dialed::H1(slot.connected(H1Conn::new(io)))),
        Ok(Opened::H2(parts)) => {
            let (send, conn, pings) = *parts;
            let shared = slot.shared.clone();
            let (stream, id, control) = shared.add_h2(slot, send);
            h2::spawn_driver(conn, pings, shared, key.clone(), id, control);
            Ok(Dialed::H2(stream))
        }
        Err(e) => {
            slot.fail(if e.is_timeout() {
                CloseReason::Timeout
            } else {
                CloseReason::Error
            });
            Err(e.with_host(key.authority()))
        }
    }
}

enum Opened {
    H1(Transport),
    /// Boxed: the connection state is large and lives only until spawned.
    H2(Box<H2Parts>),
}

type H2Parts = (
    ::h2::client::SendRequest<bytes::Bytes>,
    ::h2::client::Connection<Transport, bytes::Bytes>,
    ::h2::PingPong,
);

async fn open(slot: &Slot, key: &HostKey) -> Result<Opened, Error> {
    let cfg = slot.config();
    let limit = cfg.connect_timeout;
    let tcp = match tokio::time::timeout(limit, connect(key)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            return Err(Error::new(ErrorKind::Connect, "could not connect")
                .with_phase(Phase::Connect)
                .with_source(e));
        }
        Err(_) => return Err(Error::timeout(Phase::Connect, limit)),
    };
    // Requests are written whole; Nagle would only add latency.
    let _ = tcp.set_nodelay(true);
    let io = if key.is_tls() {
        let tls = cfg.tls.as_ref().expect("build() sets up TLS");
        tls.handshake(tcp, key, cfg.tls_handshake_timeout).await?
    } else {
        Transport::Tcp(tcp)
    };
    let speak_h2 = match io.alpn() {
        Some(proto) => proto == b"h2",
        None => !key.is_tls() && cfg.http2_prior_knowledge,
    };
    if speak_h2 {
        let (send, conn, pings) = h2::handshake(io, limit).await?;
        return Ok(Opened::H2(Box::new((send, conn, pings))));
    }
    Ok(Opened::H1(io))
}

async fn connect(key: &HostKey) -> io::Result<TcpStream> {
    if let Ok(ip) = key.host().parse::<IpAddr>() {
        return TcpStream::connect((ip, key.port())).await;
    }
    let mut last = None;
    for addr in tokio::net::lookup_host((key.host(), key.port())).await? {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, "the name resolved to no address")
    }))
}
