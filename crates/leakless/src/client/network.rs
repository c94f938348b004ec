//! `ClientBuilder`'s settings for how connections are made: name
//! resolution, the socket's options, and (further down) proxies, unix
//! sockets and TLS knobs. Names follow reqwest's; Go's are given where
//! they differ.

use std::{
    net::{IpAddr, SocketAddr},
    path::Path,
    sync::Arc,
    time::Duration,
};

use super::ClientBuilder;
use crate::{
    config::{Proxy, TlsVersion, proxies_from_env},
    dns::Resolve,
};

impl ClientBuilder {
    /// Go: `Transport.DialContext`'s resolver; reqwest: `dns_resolver`.
    /// Default: the system's resolver (getaddrinfo, on tokio's blocking
    /// pool). Resolution is bounded by `connect_timeout` together with the
    /// TCP connect; the URL's port replaces any port in the answers.
    pub fn dns_resolver(mut self, resolver: Arc<dyn Resolve>) -> Self {
        self.config.dial.resolver = Some(resolver);
        self
    }

    /// reqwest: `hickory_dns`. Default true when leakless is built with the
    /// `hickory-dns` feature: names are resolved by hickory-resolver, with
    /// its cache and the system's resolv.conf and hosts file, instead of
    /// getaddrinfo on tokio's blocking pool. A `dns_resolver` wins over it.
    #[cfg(feature = "hickory-dns")]
    pub fn hickory_dns(mut self, yes: bool) -> Self {
        self.config.dial.hickory = yes;
        self
    }

    /// curl: `--resolve`. Connects to `addr` for `domain` without asking
    /// any resolver; TLS verification, SNI, the Host header and the pool's
    /// key still use `domain`. The URL's port is used, `addr`'s ignored.
    pub fn resolve(self, domain: &str, addr: SocketAddr) -> Self {
        self.resolve_to_addrs(domain, &[addr])
    }

    /// As [`resolve`](Self::resolve), with several addresses: they are
    /// raced by Happy Eyeballs as a resolver's answer would be.
    pub fn resolve_to_addrs(mut self, domain: &str, addrs: &[SocketAddr]) -> Self {
        self.config
            .dial
            .overrides
            .insert(domain.to_ascii_lowercase(), addrs.to_vec());
        self
    }

    /// Go: `net.Dialer.FallbackDelay` (300 ms there). Default 250 ms, as
    /// RFC 8305 recommends. When a name has several addresses, how long
    /// one connection attempt runs alone before the next address is tried
    /// alongside it (at once when an attempt fails).
    pub fn happy_eyeballs_delay(mut self, d: Duration) -> Self {
        self.config.dial.fallback_delay = d;
        self
    }

    /// Go: `net.Dialer.LocalAddr`. Default `None`: the kernel chooses.
    /// Connections leave from this address; only the server's addresses of
    /// the same family are tried.
    pub fn local_address<T: Into<Option<IpAddr>>>(mut self, addr: T) -> Self {
        self.config.dial.local_address = addr.into();
        self
    }

    /// curl: `--interface`. Default `None`. Binds every connection to the
    /// network device `interface` (`SO_BINDTODEVICE`, Linux only; needs
    /// `CAP_NET_RAW` on older kernels).
    pub fn interface(mut self, interface: &str) -> Self {
        self.config.dial.interface = Some(interface.to_owned());
        self
    }

    /// Go: `net.Dialer.KeepAlive`. Default 15 s, as Go: TCP keep-alive
    /// probes after that long without traffic, then one every 15 s, so a
    /// peer that vanished is noticed. `None` turns them off.
    pub fn tcp_keepalive<D: Into<Option<Duration>>>(mut self, d: D) -> Self {
        self.config.dial.tcp_keepalive = d.into();
        self
    }

    /// Default true (Go's too): requests are written whole, and Nagle's
    /// algorithm would only delay them.
    pub fn tcp_nodelay(mut self, yes: bool) -> Self {
        self.config.dial.tcp_nodelay = yes;
        self
    }

    /// Go: `Transport.Proxy`; reqwest: `proxy`. Sends the requests `proxy`
    /// takes through it; several proxies are asked in the order added.
    /// Adding one turns off proxies from the environment.
    ///
    /// Connections through a proxy are pooled apart, keyed by target and
    /// proxy (`stats()` shows `target via proxy`), and
    /// `max_conns_per_host` caps each such pair.
    pub fn proxy(mut self, proxy: Proxy) -> Self {
        self.config.dial.proxies.from_env = false;
        self.config.dial.proxies.add(proxy);
        self
    }

    /// reqwest: `unix_socket`. Sends every request to the unix socket at
    /// `path` (a Docker daemon's `/var/run/docker.sock`, say) instead of
    /// dialing the URL's host; the URL still gives the Host header, and
    /// `https://` URLs speak TLS over the socket with the URL's host as
    /// the server name. Proxies do not apply. Connections are pooled under
    /// `host:port via unix:path`.
    pub fn unix_socket(mut self, path: impl AsRef<Path>) -> Self {
        self.config.dial.unix_socket = Some(Arc::from(path.as_ref()));
        self
    }

    /// Turns proxies off, those from the environment included.
    pub fn no_proxy(mut self) -> Self {
        self.config.dial.proxies = Default::default();
        self
    }

    /// Default: proxies come from the environment when none was added
    /// (Go's `ProxyFromEnvironment`): `HTTP_PROXY`, `HTTPS_PROXY`,
    /// `ALL_PROXY`, `NO_PROXY`, upper case or lower; see the README.
    pub(super) fn read_proxy_env(&mut self, var: impl Fn(&str) -> Option<String>) {
        let proxies = &mut self.config.dial.proxies;
        if proxies.from_env && proxies.is_empty() {
            for proxy in proxies_from_env(var) {
                proxies.add(proxy);
            }
        }
    }

    /// reqwest: `min_tls_version`; Go: `tls.Config.MinVersion`. Default
    /// TLS 1.2. Handshakes below it fail; rustls speaks 1.2 and 1.3, so
    /// 1.0 and 1.1 mean 1.2.
    pub fn min_tls_version(mut self, version: TlsVersion) -> Self {
        self.config.tls_options.min_version = Some(version);
        self
    }

    /// reqwest: `max_tls_version`; Go: `tls.Config.MaxVersion`. Default
    /// TLS 1.3. Below 1.2 `build` refuses it.
    pub fn max_tls_version(mut self, version: TlsVersion) -> Self {
        self.config.tls_options.max_version = Some(version);
        self
    }

    /// reqwest: `tls_sni`. Default true: the handshake names the host
    /// (SNI). False sends no name; the certificate is still checked
    /// against the URL's host.
    pub fn tls_sni(mut self, yes: bool) -> Self {
        self.config.tls_options.sni = yes;
        self
    }

    /// reqwest: `tls_info`. Default false. When true each response over
    /// TLS carries a [`TlsInfo`](crate::TlsInfo) in its extensions: the
    /// server's certificate, the version and the ALPN protocol.
    pub fn tls_info(mut self, yes: bool) -> Self {
        self.config.tls_options.info = yes;
        self
    }

    /// reqwest: `https_only`. Default false. When true an `http://` URL
    /// fails (`ErrorKind::Request`) and so does a redirect to one
    /// (`ErrorKind::Redirect`), before anything is sent.
    pub fn https_only(mut self, yes: bool) -> Self {
        self.config.dial.https_only = yes;
        self
    }
}
