//! Resolving a host name and opening TCP to the first address that answers.

use std::{
    io,
    net::{IpAddr, SocketAddr},
};

use tokio::net::TcpStream;

use crate::{route::Route, trace::Tracer};

/// Connects to the route's host: an IP address directly, a name through
/// the system resolver, trying each address in turn.
pub(super) async fn connect(route: &Route, tracer: &mut Tracer) -> io::Result<TcpStream> {
    if let Ok(ip) = route.host().parse::<IpAddr>() {
        return connect_to((ip, route.port()).into(), tracer).await;
    }
    tracer.dns_start(route.host());
    let found: io::Result<Vec<SocketAddr>> = tokio::net::lookup_host((route.host(), route.port()))
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
