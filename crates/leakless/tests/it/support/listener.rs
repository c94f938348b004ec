//! A listener that takes no connection: its accept queue is full.

use std::net::SocketAddr;

use socket2::{Domain, Socket, Type};

use super::{
    kernel::{self, ESTABLISHED, KernelSocket, SYN_SENT},
    wait::wait_for,
};

/// A loopback listener whose accept queue is full, checked in the kernel's
/// table: a connect to it stays in SYN_SENT (the SYN is dropped) until it
/// gives up.
pub struct SaturatedListener {
    _listener: std::net::TcpListener,
    addr: SocketAddr,
    _fillers: Vec<Socket>,
    filler_addrs: Vec<SocketAddr>,
}

impl SaturatedListener {
    pub fn new() -> SaturatedListener {
        SaturatedListener::at(([127, 0, 0, 1], 0).into())
    }

    /// One at `addr` (port 0: any free port), of `addr`'s family.
    pub fn at(addr: SocketAddr) -> SaturatedListener {
        let domain = Domain::for_address(addr);
        let sock = Socket::new(domain, Type::STREAM, None).unwrap();
        if addr.is_ipv6() {
            sock.set_only_v6(true).unwrap();
        }
        sock.bind(&addr.into()).unwrap();
        // Linux queues backlog + 1 connections; the next SYN is dropped.
        sock.listen(0).unwrap();
        let listener: std::net::TcpListener = sock.into();
        let addr = listener.local_addr().unwrap();
        let (mut fillers, mut filler_addrs) = (Vec::new(), Vec::new());
        for _ in 0..16 {
            let s = Socket::new(domain, Type::STREAM, None).unwrap();
            s.set_nonblocking(true).unwrap();
            let _ = s.connect(&addr.into());
            filler_addrs.push(s.local_addr().unwrap().as_socket().unwrap());
            fillers.push(s);
            // On loopback the handshake completes inside connect(), so a
            // socket still in SYN_SENT, with an established one queued
            // before it, means the queue is full.
            let local = *filler_addrs.last().unwrap();
            let hung = kernel::socket(local, addr).is_some_and(|s| s.state == SYN_SENT);
            let queued = kernel::sockets(filler_addrs.iter().copied(), addr)
                .iter()
                .any(|s| s.state == ESTABLISHED);
            if hung && queued {
                return SaturatedListener {
                    _listener: listener,
                    addr,
                    _fillers: fillers,
                    filler_addrs,
                };
            }
        }
        panic!(
            "could not fill the accept queue of {addr}: {:?}",
            kernel::sockets(filler_addrs, addr)
        );
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits for the one dial to it that a client under test makes, hung
    /// in SYN_SENT, and returns it. The wait yields and never sleeps on
    /// tokio's clock, so a paused clock stands still meanwhile.
    pub async fn wait_for_the_dial(&self) -> KernelSocket {
        let dials = wait_for(
            "a client's SYN_SENT socket",
            || self.dials(),
            |d| !d.is_empty(),
        )
        .await;
        assert_eq!(dials.len(), 1, "{dials:?}");
        assert_eq!(dials[0].state, SYN_SENT, "{dials:?}");
        dials[0]
    }

    /// Dials to it in SYN_SENT that this process holds, its own fillers
    /// aside: what a client under test is dialing.
    pub fn dials(&self) -> Vec<KernelSocket> {
        kernel::dialing_to(self.addr)
            .into_iter()
            .filter(|s| !self.filler_addrs.contains(&s.local))
            .collect()
    }

    /// `dial` is gone from the kernel, and no other dial to it is left.
    pub fn assert_no_dial_left(&self, dial: &KernelSocket) {
        let left = kernel::socket(dial.local, self.addr);
        assert!(left.is_none(), "{left:?}");
        let dials = self.dials();
        assert!(dials.is_empty(), "{dials:?}");
    }
}

/// A loopback address nothing listens on, for as long as this lives: a
/// socket bound there that never listens, so a connect to it is refused,
/// and no server (in this process or another) can take the port
/// meanwhile, as it could a port found free and let go.
pub struct RefusingAddr {
    _socket: Socket,
    addr: SocketAddr,
}

impl RefusingAddr {
    pub fn new() -> RefusingAddr {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        socket
            .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
            .unwrap();
        let addr = socket.local_addr().unwrap().as_socket().unwrap();
        RefusingAddr {
            _socket: socket,
            addr,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}
