//! [`TestServer`]: the listener, the thread and runtime it runs on, the
//! accept loop, and shutdown. Waiting on events lives in `wait.rs`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::runtime;
use tokio::sync::Notify;
use tokio::task::{JoinError, JoinSet};

use crate::config::Config;
use crate::conn;
use crate::ctx::Ctx;
use crate::ledger::Ledger;
use crate::pki::{ClientCert, Pki};
use crate::request::RecordedRequest;
use crate::stats::ServerStats;

/// A real HTTP/1.1 and HTTP/2 server on loopback, cleartext or TLS on one
/// port, running on its own thread and tokio runtime, so a test that pauses
/// its own clock (`tokio::time::pause`) does not freeze it.
///
/// Dropping it closes every connection, stops the thread and joins it; if
/// the server panicked (a connection task or the accept loop), the drop
/// panics, failing the test, unless the thread is already panicking.
pub struct TestServer {
    addr: SocketAddr,
    pub(crate) ledger: Arc<Ledger>,
    pki: Arc<Pki>,
    stop: Arc<Notify>,
    /// The server's runtime, for timers that must run on real time.
    pub(crate) runtime: runtime::Handle,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server on `127.0.0.1` at a free port and returns once it is
    /// listening. Panics if it cannot (a test has nothing better to do).
    pub fn start(config: Config) -> TestServer {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        Self::start_on(loopback, config).expect("leakless-testserver: cannot start")
    }

    /// Starts a server listening on `addr` (port 0 picks a free one) and
    /// returns once it is listening.
    pub fn start_on(addr: SocketAddr, config: Config) -> io::Result<TestServer> {
        let listener = listen(addr)?;
        let addr = listener.local_addr()?;
        let pki = Arc::new(Pki::default());
        if config.tls.is_some() {
            pki.prepare();
        }
        let ledger = Arc::new(Ledger::new(config));
        let stop = Arc::new(Notify::new());
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(format!("testsrv:{}", addr.port()))
            .spawn({
                let (ledger, stop, pki) = (ledger.clone(), stop.clone(), pki.clone());
                move || {
                    let built = runtime::Builder::new_current_thread().enable_all().build();
                    let rt = match built {
                        Ok(rt) => rt,
                        Err(e) => return drop(tx.send(Err(e))),
                    };
                    let listener = {
                        let _enter = rt.enter();
                        TcpListener::from_std(listener)
                    };
                    let listener = match listener {
                        Ok(l) => l,
                        Err(e) => return drop(tx.send(Err(e))),
                    };
                    let _ = tx.send(Ok(rt.handle().clone()));
                    rt.block_on(accept_loop(listener, ledger, pki, stop));
                }
            })?;
        let runtime = rx
            .recv()
            .map_err(|_| io::Error::other("server thread died while starting"))??;
        Ok(TestServer {
            addr,
            ledger,
            pki,
            stop,
            runtime,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/path`; the leading `/` is optional.
    pub fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("http://{}{slash}{path}", self.addr)
    }

    /// `https://ADDR/path`; the leading `/` is optional. Needs
    /// [`Config::tls`]; the certificate also covers `localhost`, for clients
    /// that resolve it to `127.0.0.1`.
    pub fn https_url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        format!("https://{}{slash}{path}", self.addr)
    }

    /// The CA certificate (DER) that signs the server's certificates: what a
    /// client trusts to talk to it. Made at start with TLS on, else on first
    /// use; the same for the server's whole life.
    pub fn ca_cert_der(&self) -> Vec<u8> {
        self.pki.ca_der()
    }

    /// [`TestServer::ca_cert_der`] as PEM.
    pub fn ca_cert_pem(&self) -> String {
        self.pki.ca_pem()
    }

    /// A fresh client certificate for `name` (its CN, and DNS name when it
    /// is one), signed by the server's CA, so the server trusts it under
    /// [`ClientAuth::Required`]. Another server's certificates are
    /// untrusted here: a ready-made wrong one.
    ///
    /// [`ClientAuth::Required`]: crate::ClientAuth::Required
    pub fn client_cert(&self, name: &str) -> ClientCert {
        self.pki.client_cert(name)
    }

    /// Every open connection goes silent at once: it reads nothing more
    /// (requests, PINGs) and writes nothing more, yet stays open until the
    /// client closes it (counted as [`CloseReason::Peer`]) or the server
    /// does. A peer that died without a word. Returns how many went silent.
    ///
    /// [`CloseReason::Peer`]: crate::CloseReason::Peer
    pub fn silence_connections(&self) -> usize {
        self.ledger.silence_all()
    }

    /// The current configuration.
    pub fn config(&self) -> Config {
        (*self.ledger.config()).clone()
    }

    /// Replaces the configuration. Requests read from now on use it; a
    /// connection fault applies to connections accepted from now on; a
    /// keep-alive timeout to connections going idle from now on.
    pub fn set_config(&self, config: Config) {
        self.ledger.set_config(config);
    }

    /// Changes the configuration in place (see [`TestServer::set_config`]).
    pub fn update_config(&self, change: impl FnOnce(&mut Config)) {
        let mut config = self.config();
        change(&mut config);
        self.set_config(config);
    }

    /// A consistent snapshot of the counters.
    pub fn stats(&self) -> ServerStats {
        self.ledger.stats()
    }

    /// Requests received so far, oldest first (up to [`Config::history`]).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.ledger.requests()
    }

    /// Closes every connection that is idle between requests right now (a
    /// server's idle timeout, on demand); connections that have not sent a
    /// first request are not idle. Returns how many; wait for them with
    /// [`TestServer::wait_closed`]. A request that arrives on one of them
    /// before its close is dropped unanswered, as on a real server.
    pub fn close_idle_connections(&self) -> usize {
        self.ledger.close_idle()
    }

    /// Closes every open connection, whatever it is doing (stalls, endless
    /// bodies, requests in flight). Returns how many.
    pub fn close_all_connections(&self) -> usize {
        self.ledger.close_all()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.ledger.shutdown();
        self.stop.notify_one();
        let joined = self.thread.take().map(JoinHandle::join);
        if std::thread::panicking() {
            return;
        }
        if let Some(Err(panic)) = joined {
            std::panic::resume_unwind(panic);
        }
        let panics = self.ledger.panics();
        if !panics.is_empty() {
            panic!(
                "leakless-testserver: {} connection task(s) panicked: {}",
                panics.len(),
                panics.join("; ")
            );
        }
    }
}

impl std::fmt::Debug for TestServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// A listening socket with a deep backlog: hundreds of concurrent dials
/// (a pool test opening hundreds at once) must queue, not be refused while the loop catches up.
fn listen(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    // `leakless serve --addr` restarted at once must not fail on TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

async fn accept_loop(listener: TcpListener, ledger: Arc<Ledger>, pki: Arc<Pki>, stop: Arc<Notify>) {
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            () = stop.notified() => break,
            Some(done) = tasks.join_next() => reap(&ledger, done),
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Replies are written whole; Nagle would only add delay.
                    let _ = stream.set_nodelay(true);
                    let Ok(local) = stream.local_addr() else { continue };
                    if let Some((id, notify, gate)) = ledger.accept(peer, local) {
                        let chaos = ledger.config().chaos.as_ref().map(|c| Arc::new(c.draw(id)));
                        let ctx = Ctx { id, ledger: ledger.clone(), notify, pki: pki.clone(), tls: false, chaos };
                        tasks.spawn(conn::serve(stream, gate, ctx));
                    }
                }
                // Out of descriptors and the like: keep the listener, retry.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
        }
    }
    drop(listener);
    // Every connection was asked to close; give them a moment to do it
    // themselves (recording why), then abort what is left.
    let drain = async {
        while let Some(done) = tasks.join_next().await {
            reap(&ledger, done);
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        tasks.abort_all();
        while let Some(done) = tasks.join_next().await {
            reap(&ledger, done);
        }
    }
}

/// Keeps a connection task's panic for Drop to report.
fn reap(ledger: &Ledger, done: Result<(), JoinError>) {
    let Err(err) = done else { return };
    if !err.is_panic() {
        return;
    }
    let panic = err.into_panic();
    let msg = if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    };
    ledger.panicked(msg);
}
