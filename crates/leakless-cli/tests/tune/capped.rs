//! A loopback HTTP/1.1 server with a known capacity: at most `workers`
//! requests are served at once, each taking `service` time, and a
//! connection idle for `keep_alive` is closed. The test server has no
//! concurrency cap, and a knee needs one: past `workers`, requests queue
//! and latency grows while throughput stays flat.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

pub struct Capped {
    addr: SocketAddr,
}

/// A counting semaphore: the server's worker slots.
struct Slots {
    free: Mutex<usize>,
    freed: Condvar,
}

impl Slots {
    fn acquire(&self) {
        let mut free = self.free.lock().unwrap();
        while *free == 0 {
            free = self.freed.wait(free).unwrap();
        }
        *free -= 1;
    }

    fn release(&self) {
        *self.free.lock().unwrap() += 1;
        self.freed.notify_one();
    }
}

impl Capped {
    /// Starts the server on a free loopback port; it lives until the test
    /// process exits (threads are cheap, tests are short).
    pub fn start(workers: usize, service: Duration, keep_alive: Duration) -> Capped {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let slots = Arc::new(Slots {
            free: Mutex::new(workers),
            freed: Condvar::new(),
        });
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let slots = slots.clone();
                std::thread::spawn(move || serve(conn, &slots, service, keep_alive));
            }
        });
        Capped { addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

/// One connection: requests without bodies, answered in order; the read
/// timeout between requests is the keep-alive timeout.
fn serve(mut conn: TcpStream, slots: &Slots, service: Duration, keep_alive: Duration) {
    let _ = conn.set_nodelay(true);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        // Waiting for (the rest of) a request head; idle too long: close.
        let _ = conn.set_read_timeout(Some(keep_alive));
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        buf.drain(..end);
        slots.acquire();
        std::thread::sleep(service);
        slots.release();
        let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";
        if conn.write_all(reply).is_err() {
            return;
        }
    }
}
