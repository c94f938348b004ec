//! Opening connections: resolve and connect TCP within `connect_timeout`,
//! then TLS with ALPN for `https`. Returns an opened transport, the
//! protocol to speak on it and how long each step took; knows nothing of
//! the pool, which decides what a connection is for.
//!
//! - `tcp`: name resolution and the TCP connect.
//! - `tls`: the rustls connector and the handshake.
//! - `transport`: the byte stream, TCP or TLS over TCP.

mod tcp;
mod tls;
mod transport;

use std::time::Duration;

use tokio::time::Instant;

pub(crate) use transport::Transport;

use self::tls::Tls;
use crate::{
    config::Config,
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

/// What every connection of a client is opened with. One per client: the
/// TLS connector is shared so sessions resume across reconnects.
#[derive(Debug)]
pub(crate) struct Connector {
    tls: Tls,
    connect_timeout: Duration,
    tls_handshake_timeout: Duration,
    http2_prior_knowledge: bool,
}

impl Connector {
    /// Builds the TLS connector; fails on roots or an identity rustls refuses.
    pub fn new(cfg: &Config) -> Result<Connector, Error> {
        Ok(Connector {
            tls: Tls::new(&cfg.tls_options, !cfg.disable_http2)?,
            connect_timeout: cfg.connect_timeout,
            tls_handshake_timeout: cfg.tls_handshake_timeout,
            http2_prior_knowledge: cfg.http2_prior_knowledge,
        })
    }

    /// TCP within `connect_timeout`, then TLS for `https` within
    /// `tls_handshake_timeout`.
    pub async fn connect(&self, route: &Route, tracer: &mut Tracer) -> Result<Opened, Error> {
        let limit = self.connect_timeout;
        let started = Instant::now();
        let tcp = match tokio::time::timeout(limit, tcp::connect(route, tracer)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => {
                return Err(Error::new(ErrorKind::Connect, "could not connect")
                    .with_phase(Phase::Connect)
                    .with_source(e));
            }
            Err(_) => return Err(Error::timeout(Phase::Connect, limit)),
        };
        // Requests are written whole; Nagle would only add latency.
        let _ = tcp.set_nodelay(true);
        let mut times = DialTimes {
            connect: started.elapsed(),
            tls: None,
        };
        let io = if route.is_tls() {
            let started = Instant::now();
            tracer.tls_start();
            let io = self
                .tls
                .handshake(tcp, route, self.tls_handshake_timeout)
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
