//! What a run loads: a URL given on the command line, or the embedded test
//! server started on loopback; its addresses (for the reachability check
//! and for telling our sockets to it apart), and the client settings that
//! follow from it.

use std::io;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::fd::AsRawFd;
use std::time::Duration;

use http::Uri;
use leakless_testserver::{Config, TestServer};

use super::args::BenchArgs;
use crate::load::parse_url;

pub struct Target {
    pub uri: Uri,
    /// Every address the host resolved to: sockets to any of them are the run's.
    pub addrs: Vec<SocketAddr>,
    /// The embedded server, when no URL was given. Dropped after the report.
    pub server: Option<TestServer>,
    /// The embedded server's CA, for `--http2` (h2 by ALPN needs TLS).
    pub ca_der: Option<Vec<u8>>,
}

impl Target {
    /// Starts the embedded server when `args.url` is absent or a bare path.
    pub fn prepare(args: &BenchArgs) -> Result<Target, String> {
        match args.url.as_deref() {
            Some(url) if !url.starts_with('/') => Self::remote(url),
            path => Ok(Self::embedded(args, path.unwrap_or("/"))),
        }
    }

    fn remote(url: &str) -> Result<Target, String> {
        let uri = parse_url(url)?;
        let default_port = if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        };
        let host = uri.host().expect("parse_url requires a host");
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = uri.port_u16().unwrap_or(default_port);
        let addrs: Vec<SocketAddr> = (host, port)
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .map(crate::sockets::normalize)
            .collect();
        if addrs.is_empty() {
            return Err(format!("cannot resolve {host}: no addresses"));
        }
        Ok(Target {
            uri,
            addrs,
            server: None,
            ca_der: None,
        })
    }

    fn embedded(args: &BenchArgs, path: &str) -> Target {
        // Records nothing (constant memory however long the run) and adds no
        // per-connection headers: a server for load, not for assertions.
        let tls = args.request.http2;
        let config = Config::new().history(0).conn_headers(false).tls(tls);
        let server = TestServer::start(config);
        let url = if tls {
            server.https_url(path)
        } else {
            server.url(path)
        };
        let ca_der = tls.then(|| server.ca_cert_der());
        Target {
            uri: url.parse().expect("the test server's URL is valid"),
            addrs: vec![server.addr()],
            server: Some(server),
            ca_der,
        }
    }

    pub fn is_embedded(&self) -> bool {
        self.server.is_some()
    }

    /// One TCP connect to the first address that answers, closed with a
    /// reset so the check leaves no TIME_WAIT behind: an unreachable target
    /// fails in one line instead of after a run of connect errors.
    pub fn check_reachable(&self, within: Duration) -> Result<(), String> {
        let mut last: Option<io::Error> = None;
        for addr in &self.addrs {
            match TcpStream::connect_timeout(addr, within) {
                Ok(tcp) => {
                    reset_on_close(&tcp);
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        let host = self.uri.authority().map_or("?", |a| a.as_str());
        let why = last.map_or_else(|| "no address".to_string(), |e| e.to_string());
        Err(format!("cannot reach {host}: {why}"))
    }
}

/// SO_LINGER 0: close sends RST, so the socket skips TIME_WAIT.
fn reset_on_close(tcp: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt reads `size_of::<linger>()` bytes from a valid
    // pointer to a live value, on a socket fd `tcp` owns.
    unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
