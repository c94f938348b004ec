//! Opening connections: the first hop (TCP to the target or to its proxy,
//! or a unix socket) within `connect_timeout`; through a proxy, the
//! `CONNECT` or SOCKS5 exchange within `connect_timeout` again; then TLS
//! with ALPN for `https`. Returns an opened transport, the protocol to
//! speak on it and how long each step took; knows nothing of the pool,
//! which decides what a connection is for.
//!
//! - `dns`: name resolution (overrides, a custom resolver, the system's).
//! - `eyeballs`: Happy Eyeballs, the race between a name's addresses.
//! - `hickory`: the hickory-resolver plug-in (the `hickory-dns` feature).
//! - `socks`, `tunnel`: the SOCKS5 and `CONNECT` exchanges with a proxy.
//! - `tcp`: one TCP attempt with the socket's options.
//! - `tls`: the rustls connector and the handshake.
//! - `transport`: the byte stream: TCP, a unix socket, TLS over either.

mod dns;
mod eyeballs;
#[cfg(feature = "hickory-dns")]
mod hickory;
mod socks;
mod tcp;
mod tls;
mod transport;
mod tunnel;

use std::{io, net::IpAddr, sync::OnceLock, time::Duration};

use tokio::{
    net::{TcpStream, UnixStream},
    time::Instant,
};

pub(crate) use transport::{Ends, Transport};

use self::{dns::Resolver, tls::Tls};
use crate::{
    config::{Config, DialOptions, TlsInfo},
    error::{Error, ErrorKind},
    phase::Phase,
    route::{ProxyHop, ProxyKind, Route, Via},
    trace::Tracer,
};

/// How long a connection took to set up, for the histograms.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct DialTimes {
    pub connect: Duration,
    pub tls: Option<Duration>,
}

/// The protocol to speak on a fresh connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Http1,
    Http2,
}

/// A connection just opened, not yet speaking HTTP.
#[derive(Debug)]
pub(crate) struct Opened {
    pub io: Transport,
    /// What ALPN chose, or prior knowledge for `http://`.
    pub protocol: Protocol,
    pub times: DialTimes,
    /// What TLS negotiated, when `tls_info` asks for it.
    pub tls_info: Option<TlsInfo>,
}

/// What a dial did besides its outcome, for the pool's counts.
#[derive(Debug, Default)]
pub(crate) struct DialReport {
    /// Happy Eyeballs attempts that connected too late or were still
    /// connecting when another won: closed unused.
    pub lost_race: u32,
}

/// What every connection of a client is opened with. One per client: the
/// TLS connector is shared so sessions resume across reconnects.
#[derive(Debug)]
pub(crate) struct Connector {
    tls: Tls,
    /// TLS to `https://` proxies: ALPN `http/1.1` only; built on first use.
    proxy_tls: OnceLock<Result<Tls, String>>,
    tls_options: crate::config::TlsOptions,
    resolver: Resolver,
    dial: DialOptions,
    connect_timeout: Duration,
    tls_handshake_timeout: Duration,
    http2_prior_knowledge: bool,
    tls_info: bool,
}

impl Connector {
    /// Builds the TLS connector; fails on roots or an identity rustls refuses.
    pub fn new(cfg: &Config) -> Result<Connector, Error> {
        Ok(Connector {
            tls: Tls::new(&cfg.tls_options, !cfg.disable_http2)?,
            proxy_tls: OnceLock::new(),
            tls_options: cfg.tls_options.clone(),
            resolver: Resolver::new(&cfg.dial),
            dial: cfg.dial.clone(),
            connect_timeout: cfg.connect_timeout,
            tls_handshake_timeout: cfg.tls_handshake_timeout,
            http2_prior_knowledge: cfg.http2_prior_knowledge,
            tls_info: cfg.tls_options.info,
        })
    }

    /// The first hop, then through the proxy, then TLS for `https`.
    pub async fn connect(
        &self,
        route: &Route,
        tracer: &mut Tracer,
        report: &mut DialReport,
    ) -> Result<Opened, Error> {
        let limit = self.connect_timeout;
        let started = Instant::now();
        let io = match tokio::time::timeout(limit, self.first_hop(route, tracer, report)).await {
            Ok(Ok(io)) => io,
            Ok(Err(e)) => {
                let what = match route.via() {
                    Via::Direct => "could not connect".to_owned(),
                    Via::Proxy(hop) => format!("could not connect to the proxy {}", hop.shown),
                    Via::Unix(path) => {
                        format!("could not connect to the unix socket {}", path.display())
                    }
                };
                return Err(Error::new(ErrorKind::Connect, what)
                    .with_phase(Phase::Connect)
                    .with_source(e));
            }
            Err(_) => return Err(Error::timeout(Phase::Connect, limit)),
        };
        let mut times = DialTimes {
            connect: started.elapsed(),
            tls: None,
        };
        let io = match route.proxy() {
            Some(hop) => self.through(io, hop, route).await?,
            None => io,
        };
        let io = if route.is_tls() {
            let started = Instant::now();
            tracer.tls_start();
            let limit = self.tls_handshake_timeout;
            let io = self
                .tls
                .handshake(io, route.host(), route.authority(), limit)
                .await?;
            tracer.tls_done(None);
            times.tls = Some(started.elapsed());
            io
        } else {
            io
        };
        let http2 = match io.alpn() {
            Some(proto) => proto == b"h2",
            // A forwarding proxy takes HTTP/1.1 requests in absolute form.
            None => {
                !route.is_tls() && self.http2_prior_knowledge && route.forward_proxy().is_none()
            }
        };
        let tls_info = if self.tls_info && route.is_tls() {
            tls::info(&io)
        } else {
            None
        };
        Ok(Opened {
            io,
            protocol: if http2 {
                Protocol::Http2
            } else {
                Protocol::Http1
            },
            times,
            tls_info,
        })
    }

    /// TCP to the target or its proxy, or the unix socket.
    async fn first_hop(
        &self,
        route: &Route,
        tracer: &mut Tracer,
        report: &mut DialReport,
    ) -> io::Result<Transport> {
        let (host, port) = match route.via() {
            Via::Direct => (route.host(), route.port()),
            Via::Proxy(hop) => (&*hop.host, hop.port),
            Via::Unix(path) => return Ok(Transport::Unix(UnixStream::connect(path).await?)),
        };
        Ok(Transport::Tcp(self.tcp(host, port, tracer, report).await?))
    }

    /// Resolves `host` (an IP address is used as it is) and races its
    /// addresses.
    async fn tcp(
        &self,
        host: &str,
        port: u16,
        tracer: &mut Tracer,
        report: &mut DialReport,
    ) -> io::Result<TcpStream> {
        let addrs = match host.parse::<IpAddr>() {
            Ok(ip) => vec![(ip, port).into()],
            Err(_) => {
                tracer.dns_start(host);
                let found = self.resolver.lookup(host, port).await;
                tracer.dns_done(found.as_deref().unwrap_or(&[]), found.as_ref().err());
                found?
            }
        };
        eyeballs::race(addrs, &self.dial, tracer, &mut report.lost_race).await
    }

    /// Over a connection to `hop`: TLS to the proxy if its URL says
    /// https, then the tunnel or SOCKS5 exchange, within `connect_timeout`.
    async fn through(
        &self,
        io: Transport,
        hop: &ProxyHop,
        route: &Route,
    ) -> Result<Transport, Error> {
        let io = if hop.tls {
            let tls = self
                .proxy_tls
                .get_or_init(|| Tls::new(&self.tls_options, false).map_err(|e| e.to_string()));
            let tls = tls
                .as_ref()
                .map_err(|e| Error::new(ErrorKind::Builder, e.clone()))?;
            let shown = hop.shown.trim_start_matches("https://");
            tls.handshake(io, &hop.host, shown, self.tls_handshake_timeout)
                .await
                .map_err(|e| e.with_host(route.authority()))?
        } else {
            io
        };
        let limit = self.connect_timeout;
        let exchange = async {
            match hop.kind {
                ProxyKind::Forward => Ok(io),
                ProxyKind::Tunnel => tunnel::connect(io, hop, route.authority()).await,
                ProxyKind::Socks5 { remote_dns } => {
                    let target = self.socks_target(route, remote_dns).await?;
                    socks::connect(io, hop, target, route.authority()).await
                }
            }
        };
        match tokio::time::timeout(limit, exchange).await {
            Ok(done) => done,
            Err(_) => Err(
                Error::timeout(Phase::ProxyConnect, limit).with_source(format!(
                    "no answer from the proxy {} for {}",
                    hop.shown,
                    route.authority()
                )),
            ),
        }
    }

    /// `socks5h`: the name, for the proxy to resolve; `socks5`: the first
    /// address the client's own resolution finds.
    async fn socks_target<'r>(
        &self,
        route: &'r Route,
        remote_dns: bool,
    ) -> Result<socks::Target<'r>, Error> {
        if let Ok(ip) = route.host().parse::<IpAddr>() {
            return Ok(socks::Target::Addr((ip, route.port()).into()));
        }
        if remote_dns {
            return Ok(socks::Target::Name(route.host(), route.port()));
        }
        let found = self.resolver.lookup(route.host(), route.port()).await;
        match found.as_deref() {
            Ok([first, ..]) => Ok(socks::Target::Addr(*first)),
            _ => Err(Error::new(
                ErrorKind::Connect,
                format!("could not resolve {} for the SOCKS5 proxy", route.host()),
            )
            .with_phase(Phase::ProxyConnect)
            .with_source(
                found
                    .err()
                    .map_or_else(|| "no address".to_owned(), |e| e.to_string()),
            )),
        }
    }
}
