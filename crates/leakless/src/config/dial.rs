//! How connections are opened, as plain data: who resolves names and
//! which names are pinned, the socket's options, the Happy Eyeballs delay.
//! The connect layer acts on it.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use crate::dns::Resolve;

/// What the builder collected about dialing.
#[derive(Clone, Debug)]
pub(crate) struct DialOptions {
    /// `dns_resolver`; else hickory or the system's (getaddrinfo).
    pub resolver: Option<Arc<dyn Resolve>>,
    /// `hickory_dns`: on by default when built with the feature.
    pub hickory: bool,
    /// `resolve` / `resolve_to_addrs`: names answered without asking any
    /// resolver, keyed in lower case.
    pub overrides: HashMap<String, Vec<SocketAddr>>,
    /// Happy Eyeballs: how long an attempt gets before the next address
    /// is tried alongside it.
    pub fallback_delay: Duration,
    pub local_address: Option<IpAddr>,
    /// SO_BINDTODEVICE.
    pub interface: Option<String>,
    pub tcp_keepalive: Option<Duration>,
    pub tcp_nodelay: bool,
}

impl Default for DialOptions {
    fn default() -> DialOptions {
        DialOptions {
            resolver: None,
            hickory: cfg!(feature = "hickory-dns"),
            overrides: HashMap::new(),
            // RFC 8305 recommends 250 ms (Go uses 300 ms).
            fallback_delay: Duration::from_millis(250),
            local_address: None,
            interface: None,
            // Go's net.Dialer default: probes after 15 s idle, every 15 s.
            tcp_keepalive: Some(Duration::from_secs(15)),
            tcp_nodelay: true,
        }
    }
}
