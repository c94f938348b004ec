//! The misbehaving (and one well-behaved) HTTP/1.1 clients `watch` is tested
//! against, and the small loopback server they talk to.
//!
//! The server runs on threads of the test process; each client runs in a
//! child process (this same test binary re-executed with
//! `LEAKLESS_TEST_ROLE`), because `watch` targets a pid. Everything is
//! bounded: clients exit when the test closes their stdin or after
//! [`ROLE_DEADLINE`]; server threads stop when the server is dropped.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// A client role never runs longer than this, whatever the test does.
pub const ROLE_DEADLINE: Duration = Duration::from_secs(90);

#[derive(Clone, Copy, Debug)]
pub struct ServerCfg {
    /// Close a connection idle this long between requests.
    pub keepalive: Duration,
    /// Wait this long before answering (so connections live long enough to
    /// be sampled, as real requests do).
    pub delay: Duration,
    pub body: usize,
    /// Answer with `Connection: close` and close after every response.
    pub close: bool,
    /// With `close`: half-close (FIN) after the response, then give up on
    /// the connection this much later with an RST, as a peer whose
    /// FIN_WAIT_2 timed out answers the next segment.
    pub reset_after: Option<Duration>,
}

impl Default for ServerCfg {
    fn default() -> ServerCfg {
        ServerCfg {
            keepalive: Duration::from_secs(60),
            delay: Duration::ZERO,
            body: 64,
            close: false,
            reset_after: None,
        }
    }
}

/// A loopback HTTP/1.1 server; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    resets: Arc<AtomicUsize>,
}

impl Server {
    pub fn start(cfg: ServerCfg) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let resets = Arc::new(AtomicUsize::new(0));
        let (s, r) = (stop.clone(), resets.clone());
        thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (s, r) = (s.clone(), r.clone());
                        thread::spawn(move || {
                            let _ = serve_conn(conn, cfg, &s, &r);
                        });
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server { addr, stop, resets }
    }

    /// Connections reset so far (with `reset_after`): each RST has been
    /// sent, so the client's socket has left the kernel's table.
    pub fn resets(&self) -> usize {
        self.resets.load(Ordering::SeqCst)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve_conn(
    conn: TcpStream,
    cfg: ServerCfg,
    stop: &AtomicBool,
    resets: &AtomicUsize,
) -> io::Result<()> {
    conn.set_nonblocking(false)?;
    // Wake up regularly to notice `stop`; the keep-alive is checked by time.
    conn.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut writer = conn;
    let body = vec![b'x'; cfg.body];
    loop {
        let idle_since = Instant::now();
        let mut head = String::new();
        // Read one request head (GET, no body).
        loop {
            if stop.load(Ordering::SeqCst) || idle_since.elapsed() >= cfg.keepalive {
                return Ok(());
            }
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) => return Ok(()),
                Ok(_) => {
                    head.push_str(&line);
                    if line == "\r\n" {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    // read_line may have buffered a partial line: keep it.
                    head.push_str(&line);
                }
                Err(e) => return Err(e),
            }
        }
        thread::sleep(cfg.delay);
        let conn_hdr = if cfg.close { "close" } else { "keep-alive" };
        write!(
            writer,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: {conn_hdr}\r\n\r\n",
            body.len()
        )?;
        writer.write_all(&body)?;
        writer.flush()?;
        if cfg.close {
            // Close a moment later, as servers do, so the FIN arrives on its
            // own and not with the body (where the client's read of the body
            // would consume it too).
            thread::sleep(Duration::from_millis(20));
            if let Some(after) = cfg.reset_after {
                writer.shutdown(std::net::Shutdown::Write)?;
                let until = Instant::now() + after;
                while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(50));
                }
                // The reader's clone of the socket too: the RST goes out
                // when the last fd closes, before it is counted.
                drop(reader);
                reset(writer);
                resets.fetch_add(1, Ordering::SeqCst);
            }
            return Ok(());
        }
    }
}

/// Closes with SO_LINGER 0: the peer gets an RST, not a FIN.
fn reset(s: TcpStream) {
    let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
}

/// Sends a GET and reads the response head; returns the Content-Length.
fn request(conn: &mut TcpStream) -> io::Result<usize> {
    conn.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed before a response",
            ));
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    Ok(head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0))
}

/// A whole request/response on `conn`, body read to its end.
fn exchange(conn: &mut TcpStream) -> io::Result<()> {
    let len = request(conn)?;
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body)
}

fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).expect("connect to the test server")
}

/// Runs a role until `deadline`. Sleeps are short so the loop ends on time.
pub fn run_role(role: &str, addr: SocketAddr, deadline: Instant) {
    match role {
        // Reads each response to its Content-Length, then keeps the socket:
        // the server closes (Connection: close), the FIN is never read.
        "close_wait" => {
            let mut held = Vec::new();
            while Instant::now() < deadline {
                let mut c = connect(addr);
                exchange(&mut c).unwrap();
                held.push(c);
                thread::sleep(Duration::from_millis(150));
            }
        }
        // Reads only the response head of each request and holds the
        // connection: the body stays in Recv-Q, the server keeps it open.
        "established" => {
            let mut held = Vec::new();
            while Instant::now() < deadline {
                let mut c = connect(addr);
                request(&mut c).unwrap();
                held.push(c);
                thread::sleep(Duration::from_millis(150));
            }
        }
        // A new connection per request, closed by the client after reading
        // the response: TIME_WAIT piles up on the client side.
        "churn" => {
            while Instant::now() < deadline {
                let mut c = connect(addr);
                exchange(&mut c).unwrap();
                drop(c);
            }
        }
        // Four pooled keep-alive connections, opened over two seconds (a
        // pool warming up), each used every 50 ms.
        "healthy" => {
            let workers: Vec<_> = (0..4u64)
                .map(|i| {
                    thread::spawn(move || {
                        thread::sleep(Duration::from_millis(500 * i));
                        let mut c = connect(addr);
                        while Instant::now() < deadline {
                            exchange(&mut c).unwrap();
                            thread::sleep(Duration::from_millis(50));
                        }
                    })
                })
                .collect();
            for w in workers {
                let _ = w.join();
            }
        }
        // A pool of four connections used in a burst every 1.5 s that never
        // evicts idle ones; the server closes them after its short
        // keep-alive. A dead one is found on reuse (EOF), dropped, replaced.
        "stale_pool" => {
            let mut pool: Vec<TcpStream> = Vec::new();
            while Instant::now() < deadline {
                let mut used = Vec::new();
                for _ in 0..4 {
                    let mut c = pool.pop().unwrap_or_else(|| connect(addr));
                    if exchange(&mut c).is_err() {
                        c = connect(addr);
                        exchange(&mut c).unwrap();
                    }
                    used.push(c);
                }
                pool = used;
                thread::sleep(Duration::from_millis(1500));
            }
        }
        // A pool that opens six connections in a burst (a second in, so
        // the watch sees them ESTABLISHED first), uses each once, then
        // holds them idle: the server's keep-alive closes them, and the
        // CLOSE_WAIT set stays exactly as it is.
        "burst_idle" => {
            thread::sleep(Duration::from_millis(1000));
            let mut pool: Vec<TcpStream> = (0..6).map(|_| connect(addr)).collect();
            for c in &mut pool {
                exchange(c).unwrap();
            }
            while Instant::now() < deadline {
                thread::sleep(Duration::from_millis(100));
            }
            drop(pool);
        }
        // Its own server, then the CLOSE_WAIT leak against it: for a process
        // alone in a network namespace.
        "self_close_wait" => {
            let server = Server::start(ServerCfg {
                close: true,
                ..ServerCfg::default()
            });
            run_role("close_wait", server.addr, deadline);
        }
        other => panic!("unknown role {other}"),
    }
}
