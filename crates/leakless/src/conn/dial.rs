//! Resolving and connecting within `connect_timeout`.

use std::{io, net::IpAddr};

use tokio::net::TcpStream;

use crate::{
    error::{Error, ErrorKind},
    h1::H1Conn,
    lease::{Lease, Slot},
    pool::HostKey,
    stats::CloseReason,
    timeout::Phase,
};

/// Dials for `slot`; on failure the slot is released with the reason.
pub(crate) async fn dial(mut slot: Slot, key: &HostKey) -> Result<Lease, Error> {
    let limit = slot.config().connect_timeout;
    match tokio::time::timeout(limit, connect(key)).await {
        Ok(Ok(stream)) => {
            // Requests are written whole; Nagle would only add latency.
            let _ = stream.set_nodelay(true);
            Ok(slot.connected(H1Conn::new(stream)))
        }
        Ok(Err(e)) => {
            slot.fail(CloseReason::Error);
            Err(Error::new(ErrorKind::Connect, "could not connect")
                .with_phase(Phase::Connect)
                .with_host(key.authority())
                .with_source(e))
        }
        Err(_) => {
            slot.fail(CloseReason::Timeout);
            Err(Error::timeout(Phase::Connect, limit).with_host(key.authority()))
        }
    }
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
