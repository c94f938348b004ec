//! How connections are opened, as plain data: who resolves names and
//! which names are pinned, the socket's options, the Happy Eyeballs delay,
//! proxies and a unix socket. The connect layer acts on it; the façade
//! asks it for each request's way there (`via`), part of the pool's key.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    path::Path,
    sync::Arc,
    time::Duration,
};

use http::Uri;

use super::Proxies;
use crate::{
    dns::Resolve,
    error::{Error, ErrorKind},
    route::{Route, Via},
};

/// What the builder collected about dialing.
#[derive(Clone, Debug)]
pub(crate) struct DialOptions {
    /// `dns_resolver`; else hickory or the system's (getaddrinfo).
    pub resolver: Option<Arc<dyn Resolve>>,
    /// `hickory_dns`: on by default when built with the feature.
    #[cfg_attr(not(feature = "hickory-dns"), allow(dead_code))]
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
    pub proxies: Proxies,
    /// `unix_socket`: every connection goes there.
    pub unix_socket: Option<Arc<Path>>,
    /// `https_only`: an `http://` URL is refused.
    pub https_only: bool,
}

impl DialOptions {
    /// Whether every request goes straight to its URL's host.
    #[inline]
    pub fn always_direct(&self) -> bool {
        self.unix_socket.is_none() && self.proxies.is_empty()
    }

    /// The route of a request for `uri`: its target and the way there.
    pub fn route(&self, uri: &Uri) -> Result<Route, Error> {
        let route = if self.always_direct() {
            Route::from_uri(uri)?
        } else {
            Route::new(uri, |tls, host, port| self.via(uri, tls, host, port))?
        };
        if self.https_only && !route.is_tls() {
            return Err(Error::new(
                ErrorKind::Request,
                format!("cannot send to {uri}: https_only is set and this URL is not https"),
            ));
        }
        Ok(route)
    }

    /// The way to the target of `uri`.
    pub fn via(&self, uri: &Uri, tls: bool, host: &str, port: u16) -> Result<Via, Error> {
        match &self.unix_socket {
            Some(path) => Ok(Via::Unix(path.clone())),
            None => self.proxies.via(uri, tls, host, port),
        }
    }
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
            proxies: Proxies::from_env(),
            unix_socket: None,
            https_only: false,
        }
    }
}
