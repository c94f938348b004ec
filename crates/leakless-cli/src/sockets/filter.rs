//! Selecting sockets out of a sample: by owner, by remote, by local port.
//!
//! Applied in user space after the dump: the kernel's bytecode filter cannot
//! select by owner, and one dump of the whole table is cheap next to /proc.

use std::net::{IpAddr, SocketAddr};

use super::{SocketInfo, TcpState};

/// All conditions set must hold; an empty filter matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pids: Option<Vec<u32>>,
    remote_ip: Option<IpAddr>,
    remote_port: Option<u16>,
    local_ports: Option<(u16, u16)>,
    states: Option<Vec<TcpState>>,
}

impl Filter {
    pub fn new() -> Filter {
        Filter::default()
    }

    /// Sockets owned by one of these processes (needs owner resolution).
    pub fn pids(mut self, pids: impl IntoIterator<Item = u32>) -> Filter {
        self.pids = Some(pids.into_iter().collect());
        self
    }

    /// Sockets connected to this address and port (e.g. bench's target).
    pub fn remote(mut self, addr: SocketAddr) -> Filter {
        self.remote_ip = Some(addr.ip());
        self.remote_port = Some(addr.port());
        self
    }

    /// Sockets connected to this port on any address.
    pub fn remote_port(mut self, port: u16) -> Filter {
        self.remote_port = Some(port);
        self
    }

    /// Sockets whose local port lies in `lo..=hi` (e.g. a server's port).
    pub fn local_ports(mut self, lo: u16, hi: u16) -> Filter {
        self.local_ports = Some((lo, hi));
        self
    }

    pub fn states(mut self, states: impl IntoIterator<Item = TcpState>) -> Filter {
        self.states = Some(states.into_iter().collect());
        self
    }

    pub fn matches(&self, s: &SocketInfo) -> bool {
        if let Some(pids) = &self.pids {
            if !s.pid.is_some_and(|p| pids.contains(&p)) {
                return false;
            }
        }
        if self.remote_ip.is_some_and(|ip| s.remote.ip() != ip) {
            return false;
        }
        if self.remote_port.is_some_and(|p| s.remote.port() != p) {
            return false;
        }
        if let Some((lo, hi)) = self.local_ports {
            if !(lo..=hi).contains(&s.local.port()) {
                return false;
            }
        }
        if let Some(states) = &self.states {
            if !states.contains(&s.state) {
                return false;
            }
        }
        true
    }

    /// The matching sockets of a sample.
    pub fn apply<'a>(
        &'a self,
        sockets: &'a [SocketInfo],
    ) -> impl Iterator<Item = &'a SocketInfo> + 'a {
        sockets.iter().filter(move |s| self.matches(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(local: &str, remote: &str, state: TcpState, pid: Option<u32>) -> SocketInfo {
        SocketInfo {
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
            state,
            inode: 1,
            uid: 0,
            cookie: 1,
            recv_q: 0,
            send_q: 0,
            times: None,
            pid,
        }
    }

    #[test]
    fn conditions_combine() {
        let a = s(
            "127.0.0.1:40000",
            "127.0.0.1:8080",
            TcpState::Established,
            Some(7),
        );
        let b = s(
            "127.0.0.1:8080",
            "127.0.0.1:40000",
            TcpState::CloseWait,
            Some(8),
        );
        let all = [a.clone(), b.clone()];
        assert_eq!(Filter::new().apply(&all).count(), 2);
        assert!(Filter::new().pids([7]).matches(&a));
        assert!(!Filter::new().pids([7]).matches(&b));
        assert!(
            Filter::new()
                .remote("127.0.0.1:8080".parse().unwrap())
                .matches(&a)
        );
        assert!(!Filter::new().remote_port(8080).matches(&b));
        assert!(Filter::new().local_ports(8080, 8080).matches(&b));
        assert!(
            !Filter::new()
                .local_ports(8080, 8080)
                .states([TcpState::Established])
                .matches(&b)
        );
    }
}
