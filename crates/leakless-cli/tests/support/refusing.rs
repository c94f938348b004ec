//! A loopback address that refuses connections, for tests of an
//! unreachable target.

use std::net::SocketAddr;

use socket2::{Domain, Socket, Type};

/// A port bound and never listened on: a connect to it is refused (RST)
/// for as long as the returned socket lives. Without SO_REUSEADDR no other
/// socket can bind the port meanwhile, and connect() never picks it as a
/// local port, unlike a port bound, released and then used: another test
/// may listen on it in between.
pub fn refusing_addr() -> (Socket, SocketAddr) {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    let addr = s.local_addr().unwrap().as_socket().unwrap();
    (s, addr)
}
