//! Opening connections: resolve and connect TCP within `connect_timeout`,
//! then TLS with ALPN for `https`. Returns an opened transport, the
//! protocol to speak on it and how long each step took; knows nothing of
//! the pool, which decides what a connection is for.
//!
//! - `dns`: name resolution (overrides, a custom resolver, the system's).
//! - `eyeballs`: Happy Eyeballs, the race between a name's addresses.
//! - `hickory`: the hickory-resolver plug-in (the `hickory-dns` feature).
//! - `tcp`: one TCP attempt with the socket's options.
//! - `tls`: the rustls connector and the handshake.
//! - `transport`: the byte stream, TCP or TLS over TCP.

mod dns;
mod eyeballs;
#[cfg(feature = "hickory-dns")]
mod hickory;
mod tcp;
mod tls;
mod transport;

use std::{io, net::IpAddr, time::Duration};

use tokio::{net::TcpStream, time::Instant};

pub(crate) use transport::Transport;

use self::{dns::Resolver, tls::Tls};
use crate::{
    config::{Config, DialOptions},
    error::{Error, ErrorKind},
    phase::Phase,
    route::Route,
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
    resolver: Resolver,
    dial: DialOptions,
    connect_timeout: Duration,
    tls_handshake_timeout: Duration,
    http2_prior_knowledge: bool,
}

impl Connector {
    /// Builds the TLS connector; fails on roots or an identity rustls refuses.
    pub fn new(cfg: &Config) -> Result<Connector, Error> {
        Ok(Connector {
            tls: Tls::new(&cfg.tls_options, !cfg.disable_http2)?,
            resolver: Resolver::new(&cfg.dial),
            dial: cfg.dial.clone(),
            connect_timeout: cfg.connect_timeout,
            tls_handshake_timeout: cfg.tls_handshake_timeout,
            http2_prior_knowledge: cfg.http2_prior_knowledge,
        })
    }

    /// TCP within `connect_timeout`, then TLS for `https` within
    /// `tls_handshake_timeout`.
    pub async fn connect(
        &self,
        route: &Route,
        tracer: &mut Tracer,
        report: &mut DialReport,
    ) -> Result<Opened, Error> {
        let limit = self.connect_timeout;
        let started = Instant::now();
        let dial = self.tcp(route.host(), route.port(), tracer, report);
        let tcp = match tokio::time::timeout(limit, dial).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => {
                return Err(Error::new(ErrorKind::Connect, "could not connect")
                    .with_phase(Phase::Connect)
                    .with_source(e));
            }
            Err(_) => return Err(Error::timeout(Phase::Connect, limit)),
        };
        let mut times = DialTimes {
            connect: started.elapsed(),
            tls: None,
        };
        let io = if route.is_tls() {
            let started = Instant::now();
            tracer.tls_start();
            let io = self
                .tls
                .handshake(Transport::Tcp(tcp), route, self.tls_handshake_timeout)
                .await?;
            tracer.tls_done(None);
            times.tls = Some(started.elapsed());
            io
        } else {
            Transport::Tcp(tcp)
        };
        let http2 = match io.alpn() {
            Some(proto) => proto == b"h2",
            None => !route.is_tls() && self.http2_prior_knowledge,
        };
        Ok(Opened {
            io,
            protocol: if http2 {
                Protocol::Http2
            } else {
                Protocol::Http1
            },
            times,
        })
    }
}

impl Connector {
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
}
