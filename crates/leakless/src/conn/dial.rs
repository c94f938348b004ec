//! Resolving and connecting within `connect_timeout`, the TLS handshake
//! within `tls_handshake_timeout`, and what ALPN (or prior knowledge) chose.

use std::{
    io,
    net::{IpAddr, SocketAddr},
};

use tokio::net::TcpStream;

use super::transport::Transport;
use crate::{
    error::{Error, ErrorKind},
    h1::H1Conn,
    h2::{self, H2Stream},
    lease::{Lease, Slot},
    pool::{DialTimes, HostKey},
    stats::CloseReason,
    timeout::Phase,
    trace::Tracer,
};

/// A finished dial: an HTTP/1.1 connection of our own, or the first stream
/// of a new shared HTTP/2 connection.
#[derive(Debug)]
pub(crate) enum Dialed {
    H1(Lease),
    H2(H2Stream),
}

/// Dials for `slot`; on failure the slot is released with the reason.
pub(crate) async fn dial(
    mut slot: Slot,
    key: &HostKey,
    tracer: &mut Tracer,
) -> Result<Dialed, Error> {
    match open(&slot, key, tracer).await {
        Ok((Opened::H1(io), times)) => Ok(Dialed::H1(slot.connected(H1Conn::new(io), times))),
        Ok((Opened::H2(parts), times)) => {
            let (send, conn, pings) = *parts;
            let shared = slot.shared.clone();
            let (stream, id, control) = shared.add_h2(slot, send, times);
            h2::spawn_driver(conn, pings, shared, key.clone(), id, control);
            Ok(Dialed::H2(stream))
        }
        Err(e) => {
            slot.fail(if e.is_timeout() {
                CloseReason::Timeout
            } else {
                CloseReason::Error
            });
            let e = e.with_host(key.authority());
            tracer.dial_failed(&e);
            Err(e)
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

async fn open(
    slot: &Slot,
    key: &HostKey,
    tracer: &mut Tracer,
) -> Result<(Opened, DialTimes), Error> {
    let cfg = slot.config();
    let limit = cfg.connect_timeout;
    let started = tokio::time::Instant::now();
    let tcp = match tokio::time::timeout(limit, connect(key, tracer)).await {
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
    let mut times = DialTimes {
        connect: started.elapsed(),
        tls: None,
    };
    let io = if key.is_tls() {
        let tls = cfg.tls.as_ref().expect("build() sets up TLS");
        let started = tokio::time::Instant::now();
        tracer.tls_start();
        let io = tls.handshake(tcp, key, cfg.tls_handshake_timeout).await?;
        tracer.tls_done(None);
        times.tls = Some(started.elapsed());
        io
    } else {
        Transport::Tcp(tcp)
    };
    let speak_h2 = match io.alpn() {
        Some(proto) => proto == b"h2",
        None => !key.is_tls() && cfg.http2_prior_knowledge,
    };
    if speak_h2 {
        let (send, conn, pings) = h2::handshake(io, limit).await?;
        return Ok((Opened::H2(Box::new((send, conn, pings))), times));
    }
    Ok((Opened::H1(io), times))
}

async fn connect(key: &HostKey, tracer: &mut Tracer) -> io::Result<TcpStream> {
    if let Ok(ip) = key.host().parse::<IpAddr>() {
        return connect_to((ip, key.port()).into(), tracer).await;
    }
    tracer.dns_start(key.host());
    let found: io::Result<Vec<SocketAddr>> = tokio::net::lookup_host((key.host(), key.port()))
        .await
        .map(Iterator::collect);
    tracer.dns_done(found.as_deref().unwrap_or(&[]), found.as_ref().err());
    let mut last = None;
    for addr in found? {
        match connect_to(addr, tracer).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, "the name resolved to no address")
    }))
}

async fn connect_to(addr: SocketAddr, tracer: &mut Tracer) -> io::Result<TcpStream> {
    tracer.connect_start(addr);
    let res = TcpStream::connect(addr).await;
    tracer.connect_done(addr, res.as_ref().err());
    res
}
