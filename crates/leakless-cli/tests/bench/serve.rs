//! `leakless serve`: prints where it listens, then answers like the test
//! server it is, with the flags' replies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::leakless;

/// A running `leakless serve`; killed on drop.
struct Serve {
    child: Child,
    addr: String,
    banner: String,
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        let mut child = leakless()
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        // The banner ends with "Ctrl-C stops."; read up to it.
        while !banner.contains("Ctrl-C stops.") {
            if out.read_line(&mut banner).unwrap() == 0 {
                panic!("serve exited early:\n{banner}");
            }
        }
        let first = banner.lines().next().unwrap();
        let url = first
            .strip_prefix("leakless serve: listening on ")
            .unwrap_or_else(|| panic!("first line: {first}"));
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        Serve {
            child,
            addr,
            banner,
        }
    }

    /// One HTTP/1.1 request; the whole response (the server closes: `close=1`).
    fn get(&self, target: &str) -> String {
        let mut tcp = TcpStream::connect(&self.addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let sep = if target.contains('?') { '&' } else { '?' };
        write!(tcp, "GET {target}{sep}close=1 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut reply = String::new();
        tcp.read_to_string(&mut reply).unwrap();
        reply
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn prints_its_address_and_the_query_language_and_answers() {
    let s = Serve::start(&[]);
    assert!(s.addr.starts_with("127.0.0.1:") && !s.addr.ends_with(":0"));
    assert!(s.banner.contains("size=N"), "{}", s.banner);
    let reply = s.get("/?size=3");
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nhel"), "{reply}");
}

#[test]
fn flags_shape_the_replies() {
    let s = Serve::start(&[
        "--body-size",
        "16k",
        "--status",
        "201",
        "--latency",
        "30ms..40ms",
    ]);
    let t = Instant::now();
    let reply = s.get("/");
    assert!(
        t.elapsed() >= Duration::from_millis(30),
        "{:?}",
        t.elapsed()
    );
    assert!(reply.starts_with("HTTP/1.1 201"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("content-length: 16384"),
        "{reply}"
    );
    let fault = Serve::start(&["--fault", "malformed"]);
    assert!(fault.get("/").starts_with("HTTP/1.1 abc"));
}

#[test]
fn bench_against_serve() {
    let s = Serve::start(&["--max-requests-per-conn", "5"]);
    let url = format!("http://{}/", s.addr);
    let (code, v, err) = super::bench_json(&[&url, "-n", "50", "-c", "1"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["embedded_server"], false);
    assert_eq!(v["server_sockets_end"], serde_json::Value::Null);
    // The server closes every 5th response: 10 connections for 50 requests.
    assert_eq!(v["connections"]["opened"], 10, "{v:#}");
    assert_eq!(v["connections"]["closed"]["not_reusable"], 10, "{v:#}");
}

#[test]
fn another_clients_time_wait_is_not_ours() {
    let s = Serve::start(&[]);
    let url = format!("http://{}/", s.addr);
    // A: keeps its connections, closes none during the run.
    let a = leakless()
        .args(["bench", &url, "-d", "1500ms", "-c", "2", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // B, meanwhile: keeps no idle connection, so it closes one per request
    // and the TIME_WAIT is on its side, to the same target.
    let (code, b, err) =
        super::bench_json(&[&url, "-n", "100", "-c", "2", "--max-idle-per-host", "0"]);
    assert_eq!(code, 0, "{err}");
    assert!(b["sockets_end"]["TIME_WAIT"].as_u64().unwrap() > 0, "{b:#}");
    let a = a.wait_with_output().unwrap();
    let a: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    assert_eq!(a["connections"]["closed_total"], 0, "{a:#}");
    assert_eq!(
        a["sockets_end"]["TIME_WAIT"], 0,
        "B's closes are not A's: {a:#}"
    );
    assert_eq!(a["sockets_end"]["ESTABLISHED"], 2, "{a:#}");
}
