//! A tiny raw HTTP/1.1 client over `tokio::net::TcpStream`: the tests check
//! the server's bytes, so they must not go through a client that hides them.

use std::io;
use std::time::Duration;

use leakless_testserver::TestServer;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Long enough never to fire on a healthy run, short enough to fail fast.
pub const LIMIT: Duration = Duration::from_secs(5);

pub struct Client {
    pub tcp: TcpStream,
    buf: Vec<u8>,
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The head exactly as received.
    pub head: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub fn hello(n: usize) -> Vec<u8> {
    (0..n).map(|i| b"hello"[i % 5]).collect()
}

impl Client {
    pub async fn connect(server: &TestServer) -> Client {
        let tcp = TcpStream::connect(server.addr()).await.unwrap();
        Client {
            tcp,
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, raw: &str) {
        self.tcp.write_all(raw.as_bytes()).await.unwrap();
    }

    pub async fn get(&mut self, path: &str) -> Response {
        self.send(&format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"))
            .await;
        self.response(false).await
    }

    /// Reads more bytes; `Ok(0)` on EOF.
    async fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = timeout(LIMIT, self.tcp.read(&mut chunk))
            .await
            .expect("read timed out")?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    async fn fill_or_eof_panic(&mut self) {
        if self.fill().await.unwrap() == 0 {
            panic!(
                "unexpected EOF; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// Reads only the head.
    pub async fn head(&mut self) -> Response {
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            self.fill_or_eof_panic().await;
        };
        let head: Vec<u8> = self.buf.drain(..end).collect();
        let head = String::from_utf8(head).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let headers = lines
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.to_owned(), v.trim().to_owned())
            })
            .collect();
        Response {
            status,
            headers,
            body: Vec::new(),
            head,
        }
    }

    /// Reads a whole response; `head_only` for HEAD requests.
    pub async fn response(&mut self, head_only: bool) -> Response {
        let mut resp = self.head().await;
        if head_only || resp.status == 204 || resp.status == 304 {
            return resp;
        }
        if resp.header("transfer-encoding") == Some("chunked") {
            loop {
                let line = self.line().await;
                let size = usize::from_str_radix(&line, 16).unwrap();
                if size == 0 {
                    assert_eq!(self.line().await, "", "no trailers expected");
                    break;
                }
                resp.body.extend(self.take(size).await);
                assert_eq!(self.line().await, "");
            }
        } else if let Some(len) = resp.header("content-length") {
            let len = len.parse().unwrap();
            resp.body = self.take(len).await;
        } else {
            resp.body = self.read_to_eof().await;
        }
        resp
    }

    pub async fn line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..i + 2).collect();
                return String::from_utf8(line[..i].to_vec()).unwrap();
            }
            self.fill_or_eof_panic().await;
        }
    }

    pub async fn take(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            self.fill_or_eof_panic().await;
        }
        self.buf.drain(..n).collect()
    }

    /// Everything up to EOF (panics on a reset).
    pub async fn read_to_eof(&mut self) -> Vec<u8> {
        while self.fill().await.unwrap() > 0 {}
        std::mem::take(&mut self.buf)
    }

    /// Asserts the server closed: EOF with nothing more sent.
    pub async fn expect_eof(&mut self) {
        let rest = self.read_to_eof().await;
        assert!(
            rest.is_empty(),
            "bytes before EOF: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }

    /// Asserts that nothing arrives for `quiet`, and the connection is open.
    pub async fn expect_silence(&mut self, quiet: Duration) {
        let mut chunk = [0u8; 1024];
        match timeout(quiet, self.tcp.read(&mut chunk)).await {
            Err(_) => {}
            Ok(r) => panic!(
                "expected silence, got {r:?} ({:?})",
                &chunk[..*r.as_ref().unwrap_or(&0)]
            ),
        }
    }

    /// Reads until an error or EOF and returns which.
    pub async fn read_end(&mut self) -> io::Result<usize> {
        loop {
            match self.fill().await {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    }
}
