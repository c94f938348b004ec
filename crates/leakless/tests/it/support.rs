//! Shared helpers: servers, clients, and the kernel's view of our sockets.

#![allow(dead_code)]

use std::{collections::HashSet, fs, net::SocketAddr, time::Duration};

pub use leakless::{Client, ClientBuilder};
pub use leakless_testserver::{Config, TestServer};

/// Awaits `fut` but fails the test instead of hanging.
pub async fn bounded<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), fut)
        .await
        .expect("bounded wait exceeded 20 s")
}

/// Inode numbers of this process's sockets, from /proc/self/fd.
fn own_socket_inodes() -> HashSet<u64> {
    let mut inodes = HashSet::new();
    for entry in fs::read_dir("/proc/self/fd")
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Ok(target) = fs::read_link(entry.path()) {
            let t = target.to_string_lossy();
            if let Some(n) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                if let Ok(n) = n.parse() {
                    inodes.insert(n);
                }
            }
        }
    }
    inodes
}

/// TCP states as /proc/net/tcp numbers them.
pub const ESTABLISHED: u8 = 1;

/// This process's TCP sockets whose remote end is `server`, as the kernel
/// sees them (/proc/self/net/tcp* joined with /proc/self/fd): `(local port, state)`.
pub fn kernel_sockets_to(server: SocketAddr) -> Vec<(u16, u8)> {
    let inodes = own_socket_inodes();
    kernel_rows_to(server)
        .into_iter()
        .filter(|r| inodes.contains(&r.inode))
        .map(|r| (r.local_port, r.state))
        .collect()
}

/// Number of open file descriptors of this process.
pub fn open_fds() -> usize {
    fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Checks the pool's invariants on a snapshot.
pub fn assert_consistent(s: &leakless::HostStats) {
    assert_eq!(
        s.open,
        s.dialing + s.busy + s.idle,
        "open = dialing + busy + idle: {s:?}"
    );
    assert_eq!(
        s.created - s.closed,
        s.open as u64,
        "created - closed = open: {s:?}"
    );
}

/// The other TCP states tests look for, numbered as in /proc/net/tcp.
pub const SYN_SENT: u8 = 2;
pub const FIN_WAIT1: u8 = 4;
pub const FIN_WAIT2: u8 = 5;
pub const TIME_WAIT: u8 = 6;
pub const CLOSE: u8 = 7;
pub const CLOSE_WAIT: u8 = 8;

/// One row of the kernel's TCP table for this network namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TcpRow {
    pub local_port: u16,
    pub remote_port: u16,
    pub state: u8,
    /// Bytes queued to send (not yet acknowledged by the peer).
    pub tx_queue: u64,
    /// 0 when no process holds the socket any more (an orphan after
    /// close(): FIN_WAIT*, TIME_WAIT, ...).
    pub inode: u64,
}

/// Every TCP socket in this network namespace whose remote end is
/// `server`'s port, whoever holds it, orphans included: what the kernel
/// really has, where [`kernel_sockets_to`] only shows sockets we hold.
pub fn kernel_rows_to(server: SocketAddr) -> Vec<TcpRow> {
    // The table lists every socket in the network namespace, other
    // processes' included (tens of thousands on a busy machine): look at
    // the remote address first and split only the rows that match.
    let suffix = format!(":{:04X}", server.port());
    let mut out = Vec::new();
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let mut fields = line.split_whitespace();
            let (Some(_), Some(local), Some(remote)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if !remote.ends_with(&suffix) {
                continue;
            }
            let f: Vec<&str> = fields.collect();
            if f.len() < 7 {
                continue;
            }
            let port =
                |s: &str| u16::from_str_radix(s.rsplit(':').next().unwrap_or(""), 16).unwrap_or(0);
            out.push(TcpRow {
                local_port: port(local),
                remote_port: server.port(),
                state: u8::from_str_radix(f[0], 16).unwrap_or(0),
                tx_queue: f[1]
                    .split(':')
                    .next()
                    .and_then(|q| u64::from_str_radix(q, 16).ok())
                    .unwrap_or(0),
                inode: f[6].parse().unwrap_or(0),
            });
        }
    }
    out
}

/// The kernel's rows for the socket from our `local_port` to `server`.
pub fn kernel_rows_from(local_port: u16, server: SocketAddr) -> Vec<TcpRow> {
    kernel_rows_to(server)
        .into_iter()
        .filter(|r| r.local_port == local_port)
        .collect()
}

/// A loopback listener whose accept queue is full, checked in the kernel's
/// table: a connect to it stays in SYN_SENT (the SYN is dropped) until it
/// gives up. Keep both values alive while it is used.
pub fn saturated_listener() -> (std::net::TcpListener, Vec<socket2::Socket>) {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    sock.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    // Linux queues backlog + 1 connections; the next SYN is dropped.
    sock.listen(0).unwrap();
    let listener: std::net::TcpListener = sock.into();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..16 {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&addr.into());
        let port = s.local_addr().unwrap().as_socket().unwrap().port();
        fillers.push(s);
        // On loopback the handshake completes inside connect(), so a socket
        // still in SYN_SENT, with an established one queued before it,
        // means the queue is full.
        let rows = kernel_rows_to(addr);
        let queued = rows.iter().any(|r| r.state == ESTABLISHED);
        let hung = rows
            .iter()
            .any(|r| r.local_port == port && r.state == SYN_SENT);
        if queued && hung {
            return (listener, fillers);
        }
    }
    panic!(
        "could not fill the accept queue of {addr}: {:?}",
        kernel_rows_to(addr)
    );
}

/// Waits, polling, until the pool has nothing in flight (no dial, no busy
/// connection, e.g. a background drain, no waiter) and returns the snapshot.
/// Only for tests on real time: the poll interval is a real sleep.
pub async fn quiescent(client: &leakless::Client) -> leakless::HostStats {
    bounded(async {
        loop {
            let s = client.stats().total;
            if s.dialing == 0 && s.busy == 0 && s.waiting == 0 {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
}

/// A client that trusts `server`'s CA, built from `builder`.
pub fn trusting(server: &TestServer, builder: leakless::ClientBuilder) -> leakless::Client {
    builder
        .add_root_certificate(leakless::Certificate::from_der(server.ca_cert_der()))
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// Protocol modes: one scenario body, run over each protocol it applies to.

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

/// Polls until `cond` holds, yielding in between (no timers: fine on a
/// current-thread runtime where another task needs the thread, and on a
/// paused clock).
pub async fn until(mut cond: impl FnMut() -> bool) {
    bounded(async {
        while !cond() {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// Polls until `cond` holds, sleeping 1 ms in between (real time: for what
/// the server's thread or the kernel must do).
pub async fn eventually(mut cond: impl FnMut() -> bool) {
    bounded(async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
}

/// Polls `client`'s stats until `cond` holds, sleeping 1 ms in between
/// (real time: for what another task or the server's thread must do, e.g.
/// an HTTP/2 connection's driver noticing that its peer closed).
pub async fn until_stats(
    client: &Client,
    cond: impl Fn(&leakless::HostStats) -> bool,
) -> leakless::HostStats {
    bounded(async {
        loop {
            let s = client.stats().total;
            if cond(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
}
