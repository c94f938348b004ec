//! The servers and the clients that talk to them. One test server serves
//! TLS, HTTP/2 and h2c on one port with chaos on every connection; nginx
//! (when installed) serves HTTP/1.1 and h2c with its keep-alive limits
//! tiny. Each protocol has a client of its own, so each pool's counts are
//! its own, and each client's observer notes the 4-tuple of every
//! connection it uses, for the kernel check at the end.

use std::{
    collections::HashSet,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use leakless::{Certificate, Client, Event, Observer, RequestInfo};
use leakless_testserver::{Chaos, Config, TestServer};

use crate::nginx::Nginx;

/// Every request's total deadline.
pub const DEADLINE: Duration = Duration::from_secs(2);
/// How long a connection may sit idle in the pool.
pub const IDLE: Duration = Duration::from_secs(2);
/// How long an HTTP/2 connection to the test server lives.
const H2_LIFE: Duration = Duration::from_millis(300);
/// After the idle timeout, how long the checks wait for the reaper's pass
/// and the last closes (a loaded machine schedules late).
pub const IDLE_SLACK: Duration = Duration::from_millis(1500);

/// The servers under soak.
pub struct Servers {
    pub test: TestServer,
    /// The test server's chaos: what it struck, by kind.
    pub chaos: Chaos,
    pub nginx: Option<Nginx>,
}

impl Servers {
    pub fn start(seed: u64) -> Servers {
        let chaos = Chaos::new(seed);
        let config = Config::new()
            .tls(true)
            .history(0)
            .conn_headers(false)
            .chaos(chaos.clone());
        Servers {
            test: TestServer::start(config),
            chaos,
            nginx: Nginx::start(),
        }
    }
}

/// One protocol against one server, with its own client.
pub struct Target {
    pub name: &'static str,
    pub client: Client,
    /// `scheme://host:port`.
    pub base: String,
    pub nginx: bool,
    /// Every connection's (our end, their end).
    pub seen: Arc<Seen>,
}

impl Target {
    pub fn all(servers: &Servers) -> Vec<Target> {
        let test = servers.test.addr();
        let ca = servers.test.ca_cert_der();
        let mut out = vec![
            Target::new("h1", test, false, |b| b),
            Target::new("h1+tls", test, true, |b| {
                b.add_root_certificate(Certificate::from_der(ca.clone()))
                    .disable_http2(true)
            }),
            // An HTTP/2 connection carries every request for as long as it
            // lives: a short life makes new ones, each drawing its fault.
            Target::new("h2", test, true, |b| {
                b.add_root_certificate(Certificate::from_der(ca.clone()))
                    .max_conn_lifetime(H2_LIFE)
            }),
            Target::new("h2c", test, false, |b| {
                b.http2_prior_knowledge().max_conn_lifetime(H2_LIFE)
            }),
        ];
        if let Some(nginx) = &servers.nginx {
            let mut h1 = Target::new("nginx h1", nginx.h1, false, |b| b);
            let mut h2c = Target::new("nginx h2c", nginx.h2c, false, |b| b.http2_prior_knowledge());
            h1.nginx = true;
            h2c.nginx = true;
            out.extend([h1, h2c]);
        }
        out
    }

    fn new(
        name: &'static str,
        addr: SocketAddr,
        tls: bool,
        mode: impl FnOnce(leakless::ClientBuilder) -> leakless::ClientBuilder,
    ) -> Target {
        let seen = Arc::new(Seen {
            remote: addr,
            pairs: Mutex::default(),
        });
        let builder = Client::builder()
            .timeout(DEADLINE)
            .read_idle_timeout(Duration::from_secs(1))
            .idle_conn_timeout(IDLE)
            .max_conns_per_host(32)
            .pool_wait_timeout(Duration::from_secs(1))
            .http2_keep_alive_interval(Duration::from_millis(500))
            .http2_keep_alive_timeout(Duration::from_millis(500))
            .observer(SeenObserver(seen.clone()));
        let scheme = if tls { "https" } else { "http" };
        Target {
            name,
            client: mode(builder).build().expect("a client"),
            base: format!("{scheme}://{addr}"),
            nginx: false,
            seen,
        }
    }
}

/// The connections a client used, as (our end, the server's end).
pub struct Seen {
    remote: SocketAddr,
    pairs: Mutex<HashSet<(SocketAddr, SocketAddr)>>,
}

impl Seen {
    pub fn pairs(&self) -> Vec<(SocketAddr, SocketAddr)> {
        let pairs = self.pairs.lock().unwrap_or_else(|e| e.into_inner());
        pairs.iter().copied().collect()
    }
}

struct SeenObserver(Arc<Seen>);

impl Observer for SeenObserver {
    fn on_event(&self, _: &RequestInfo, event: &Event<'_>) {
        if let Event::GotConn {
            local_addr: Some(local),
            ..
        } = event
        {
            let mut pairs = self.0.pairs.lock().unwrap_or_else(|e| e.into_inner());
            pairs.insert((*local, self.0.remote));
        }
    }
}
