//! One TCP connection attempt to one address, with the socket's options:
//! the local address or device to bind, keep-alive probes, no Nagle.

use std::{io, net::SocketAddr};

use socket2::{SockRef, TcpKeepalive};
use tokio::net::{TcpSocket, TcpStream};

use crate::config::DialOptions;

/// Opens TCP to `addr` with the client's socket options.
pub(super) async fn connect(addr: SocketAddr, opts: &DialOptions) -> io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(device) = &opts.interface {
        bind_device(&socket, device)?;
    }
    if let Some(ip) = opts.local_address {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    if let Some(idle) = opts.tcp_keepalive {
        // The first probe after `idle` without traffic, then one each
        // `idle` (Go sets both to the same value).
        let keepalive = TcpKeepalive::new().with_time(idle).with_interval(idle);
        SockRef::from(&socket).set_tcp_keepalive(&keepalive)?;
    }
    let tcp = socket.connect(addr).await?;
    tcp.set_nodelay(opts.tcp_nodelay)?;
    Ok(tcp)
}

#[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
fn bind_device(socket: &TcpSocket, device: &str) -> io::Result<()> {
    socket.bind_device(Some(device.as_bytes())).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot bind to the network interface {device:?}: {e}"),
        )
    })
}

#[cfg(not(any(target_os = "android", target_os = "fuchsia", target_os = "linux")))]
fn bind_device(_: &TcpSocket, device: &str) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        format!("binding to the network interface {device:?} (SO_BINDTODEVICE) needs Linux"),
    ))
}
