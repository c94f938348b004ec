//! Protocol modes: one scenario body, run over each protocol it applies to.

use std::net::SocketAddr;

use leakless::{Client, ClientBuilder};
use leakless_testserver::{Config, TestServer};

/// How a scenario talks to its server. The test server serves all of them
/// on one port; the client picks by URL scheme and builder options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// HTTP/1.1 over TCP.
    H1,
    /// HTTP/1.1 over TLS: the server offers h2 and http/1.1 by ALPN and the
    /// client says `disable_http2`, so the client's choice is what is tested.
    H1Tls,
    /// HTTP/2 over TLS, chosen by ALPN.
    H2,
    /// HTTP/2 over TCP by prior knowledge.
    H2c,
}

impl Mode {
    pub fn is_tls(self) -> bool {
        matches!(self, Mode::H1Tls | Mode::H2)
    }

    pub fn is_h2(self) -> bool {
        matches!(self, Mode::H2 | Mode::H2c)
    }

    /// The version responses must say.
    pub fn version(self) -> leakless::Version {
        if self.is_h2() {
            leakless::Version::HTTP_2
        } else {
            leakless::Version::HTTP_11
        }
    }

    /// The server's config for this mode: TLS turned on (with the default
    /// settings, ALPN h2 and http/1.1) unless `config` already set it.
    pub fn config(self, config: Config) -> Config {
        if self.is_tls() && config.tls.is_none() {
            config.tls(true)
        } else {
            config
        }
    }

    /// A test server for this mode.
    pub fn server(self, config: Config) -> TestServer {
        TestServer::start(self.config(config))
    }

    /// `builder` set up for this mode against `server`: its CA trusted on
    /// TLS, `disable_http2` for h1 over TLS, prior knowledge for h2c.
    pub fn builder(self, server: &TestServer, builder: ClientBuilder) -> ClientBuilder {
        self.builder_trusting(server.ca_cert_der(), builder)
    }

    /// As [`Mode::builder`], trusting the CA `ca_der` (a server of the
    /// test's own).
    pub fn builder_trusting(self, ca_der: Vec<u8>, builder: ClientBuilder) -> ClientBuilder {
        let builder = if self.is_tls() {
            builder.add_root_certificate(leakless::Certificate::from_der(ca_der))
        } else {
            builder
        };
        match self {
            Mode::H1 | Mode::H2 => builder,
            Mode::H1Tls => builder.disable_http2(true),
            Mode::H2c => builder.http2_prior_knowledge(),
        }
    }

    /// A client for this mode against `server`, built from `builder`.
    pub fn client(self, server: &TestServer, builder: ClientBuilder) -> Client {
        self.builder(server, builder).build().unwrap()
    }

    /// The URL of `path` on `server` in this mode's scheme.
    pub fn url(self, server: &TestServer, path: &str) -> String {
        self.url_at(server.addr(), path)
    }

    /// The URL of `path` at `addr` in this mode's scheme.
    pub fn url_at(self, addr: SocketAddr, path: &str) -> String {
        let scheme = if self.is_tls() { "https" } else { "http" };
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("{scheme}://{addr}{slash}{path}")
    }

    /// The key of `addr` in [`leakless::PoolStats::hosts`].
    pub fn host_key(self, addr: SocketAddr) -> String {
        if self.is_tls() {
            format!("https://{addr}")
        } else {
            addr.to_string()
        }
    }
}

/// `Mode` by the name of the test function a [`per_mode!`] makes for it.
macro_rules! mode {
    (h1) => {
        $crate::support::Mode::H1
    };
    (h1_tls) => {
        $crate::support::Mode::H1Tls
    };
    (h2) => {
        $crate::support::Mode::H2
    };
    (h2c) => {
        $crate::support::Mode::H2c
    };
}

/// Runs the scenario `async fn $name(mode: Mode)` once per listed mode: a
/// module `$name` with one test per mode (`h1`, `h1_tls`, `h2`, `h2c`), so
/// the test's full name says the behaviour and then the protocol, e.g.
/// `reuse::sequential_requests_share_one_connection::h2`. Prefix
/// `multi_thread` for a two-worker runtime.
///
/// The name must hold in every listed mode, as checked there: where
/// HTTP/1.1 and HTTP/2 behave differently (a connection closed on h1 is a
/// stream reset on h2, a count of connections is a count of streams), the
/// scenario is two, each named for what it checks.
macro_rules! per_mode {
    (multi_thread $name:ident: $($mode:ident),+ $(,)?) => {
        per_mode!(@with [tokio::test(flavor = "multi_thread", worker_threads = 2)] $name: $($mode),+);
    };
    ($name:ident: $($mode:ident),+ $(,)?) => {
        per_mode!(@with [tokio::test] $name: $($mode),+);
    };
    (@with [$attr:meta] $name:ident: $($mode:ident),+) => {
        mod $name {
            $(
                #[$attr]
                async fn $mode() {
                    super::$name(mode!($mode)).await
                }
            )+
        }
    };
}
