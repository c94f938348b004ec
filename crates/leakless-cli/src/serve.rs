//! `leakless serve`: the test server, run for people. The same server the
//! library's tests and `bench` use, with its behaviour set by flags and,
//! per request, by the query string; it records nothing, so it can run for
//! ever.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use clap::{Args, ValueEnum};
use leakless_testserver::{Config, ConnFault, Fault, Framing, TestServer};

use crate::duration;

/// Arguments of `leakless serve`.
#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Where to listen; port 0 picks a free one (the address is printed).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Delay before each reply: a duration (20ms) or a uniform range
    /// (5ms..20ms).
    #[arg(long, value_name = "DUR|LO..HI", value_parser = duration::parse_range)]
    pub latency: Option<(Duration, Duration)>,
    /// Body size of each reply (bytes; k and m suffixes are KiB and MiB).
    #[arg(long, value_name = "N", default_value = "5", value_parser = parse_size)]
    pub body_size: u64,
    /// Status code of each reply.
    #[arg(long, value_name = "CODE", default_value_t = 200,
          value_parser = clap::value_parser!(u16).range(200..=999))]
    pub status: u16,
    /// Chunked transfer encoding instead of Content-Length.
    #[arg(long)]
    pub chunked: bool,
    /// Close a connection idle this long between requests (and say so in a
    /// `Keep-Alive: timeout=N` header). Default: never.
    #[arg(long, value_name = "DUR", value_parser = duration::parse_positive)]
    pub keep_alive_timeout: Option<Duration>,
    /// Close a connection after this many responses (`Connection: close` on
    /// the last).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_requests_per_conn: Option<u64>,
    /// Serve TLS too, on the same port (a CA is made at start and written
    /// to a file for clients to trust).
    #[arg(long)]
    pub tls: bool,
    /// Offer HTTP/2 by ALPN over TLS. (HTTP/2 with prior knowledge, h2c, is
    /// always on: an HTTP/1.1 client never sends its preface.)
    #[arg(long, requires = "tls")]
    pub h2: bool,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS. Default: no limit.
    #[arg(long, value_name = "N")]
    pub h2_max_streams: Option<u32>,
    /// Misbehave on every request (or connection); per request the query's
    /// `fault=` does the same.
    #[arg(long, value_enum, value_name = "FAULT")]
    pub fault: Option<FaultArg>,
}

/// The faults the library's tests use, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FaultArg {
    /// Read the request, never answer.
    Stall,
    /// Send the head, then nothing.
    StallBody,
    /// A chunked body that never ends.
    Endless,
    /// Send the head, then close.
    CloseAfterHeaders,
    /// Send the head and half the body, then close.
    Truncate,
    /// Close without a response.
    Close,
    /// Reset (RST) without a response.
    Reset,
    /// An unparsable status line, then close.
    Malformed,
    /// Accept connections and never answer (TLS: never finish the handshake).
    AcceptStall,
    /// Accept connections and close them at once.
    AcceptClose,
}

/// Between two latency draws when --latency is a range.
const JITTER_TICK: Duration = Duration::from_millis(1);

pub fn run(args: ServeArgs) -> Result<i32, String> {
    let config = config(&args);
    let server = TestServer::start_on(args.addr, config)
        .map_err(|e| format!("--addr {}: {e}", args.addr))?;
    print!("{}", banner(&args, &server)?);
    match args.latency {
        Some((lo, hi)) if hi > lo => jitter(&server, lo, hi),
        _ => loop {
            std::thread::park();
        },
    }
}

fn config(args: &ServeArgs) -> Config {
    // history 0: a long-running server must not grow; conn headers off: a
    // server for people and load, not for assertions.
    let mut c = Config::new()
        .history(0)
        .conn_headers(false)
        .status(args.status)
        .body_size(args.body_size);
    if args.chunked {
        c = c.framing(Framing::Chunked);
    }
    if let Some((lo, _)) = args.latency {
        c = c.latency(lo);
    }
    if let Some(d) = args.keep_alive_timeout {
        c = c.keep_alive_timeout(d).advertise_keep_alive(true);
    }
    if let Some(n) = args.max_requests_per_conn {
        c = c.max_requests_per_conn(n);
    }
    if args.tls {
        c = if args.h2 {
            c.tls(true)
        } else {
            c.alpn(["http/1.1"])
        };
    }
    if let Some(n) = args.h2_max_streams {
        c = c.h2_max_concurrent_streams(n);
    }
    let half = args.body_size / 2;
    match args.fault {
        None => {}
        Some(FaultArg::Stall) => c = c.fault(Fault::Stall),
        Some(FaultArg::StallBody) => c = c.fault(Fault::StallAfterHeaders),
        Some(FaultArg::Endless) => c = c.fault(Fault::EndlessBody),
        Some(FaultArg::CloseAfterHeaders) => c = c.fault(Fault::CloseAfterHeaders),
        Some(FaultArg::Truncate) => c = c.fault(Fault::CloseAfterBytes(half)),
        Some(FaultArg::Close) => c = c.fault(Fault::CloseWithoutResponse),
        Some(FaultArg::Reset) => c = c.fault(Fault::ResetWithoutResponse),
        Some(FaultArg::Malformed) => {
            c = c.fault(Fault::Raw(b"HTTP/1.1 abc\r\n\r\n".to_vec()));
            c.reply.close = true;
        }
        Some(FaultArg::AcceptStall) => c = c.conn_fault(ConnFault::AcceptAndStall),
        Some(FaultArg::AcceptClose) => c = c.conn_fault(ConnFault::AcceptAndClose),
    }
    c
}

/// How to reach the server and what it understands.
fn banner(args: &ServeArgs, server: &TestServer) -> Result<String, String> {
    let url = server.url("/");
    let mut o = format!("leakless serve: listening on {url}\n");
    o.push_str("  HTTP/1.1, and HTTP/2 with prior knowledge (curl --http2-prior-knowledge) on the same port\n");
    if args.tls {
        let ca =
            std::env::temp_dir().join(format!("leakless-serve-{}-ca.pem", server.addr().port()));
        std::fs::write(&ca, server.ca_cert_pem())
            .map_err(|e| format!("cannot write the CA to {}: {e}", ca.display()))?;
        o.push_str(&format!(
            "  {}  TLS, ALPN {}; trust {}\n    curl --cacert {} {}\n",
            server.https_url("/"),
            if args.h2 { "h2, http/1.1" } else { "http/1.1" },
            ca.display(),
            ca.display(),
            server.https_url("/")
        ));
    }
    let latency = match args.latency {
        None => "no latency".to_string(),
        Some((lo, hi)) if lo == hi => format!("latency {lo:?}"),
        Some((lo, hi)) => format!("latency uniform in {lo:?}..{hi:?}"),
    };
    let keep_alive = match (args.keep_alive_timeout, args.max_requests_per_conn) {
        (None, None) => "keep-alive for ever".to_string(),
        (t, n) => {
            let mut parts = Vec::new();
            if let Some(t) = t {
                parts.push(format!("idle connections closed after {t:?}"));
            }
            if let Some(n) = n {
                parts.push(format!("closed after {n} requests"));
            }
            parts.join(", ")
        }
    };
    o.push_str(&format!(
        "  replies: {} with a {}-byte body{}, {latency}, {keep_alive}{}\n",
        args.status,
        args.body_size,
        if args.chunked { " (chunked)" } else { "" },
        args.fault
            .map(|f| format!(", fault {f:?}"))
            .unwrap_or_default()
    ));
    o.push_str(
        "  per request, in the query: size=N status=C latency_ms=MS chunked=1 framing=length|chunked|close\n\
         \x20   close=1 header=Name:Value echo=1 fault=stall|stall_body|endless|close_after_headers|truncate|close|reset\n\
         \x20   after=N (bytes before stall_body/truncate) raw=BYTES (percent-encoded response)\n",
    );
    o.push_str(&format!(
        "  try: curl -s '{url}?size=16&latency_ms=5'   or   leakless bench {url}\n\
         Ctrl-C stops.\n"
    ));
    Ok(o)
}

/// A range latency: the server's reply latency is redrawn every
/// [`JITTER_TICK`], so replies spread uniformly over the range (requests
/// within one tick share a draw). The test server takes one latency per
/// config; a per-request draw would need a distribution in its `Reply`.
fn jitter(server: &TestServer, lo: Duration, hi: Duration) -> ! {
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut state = seed | 1;
    let span = (hi - lo).as_nanos() as u64;
    loop {
        // xorshift64: a uniform draw with no dependency for it.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let d = lo + Duration::from_nanos(state % (span + 1));
        server.update_config(|c| c.reply.latency = d);
        std::thread::sleep(JITTER_TICK);
    }
}

/// `16384`, `16k`, `1m` (binary multiples).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.trim_end_matches("ib").trim_end_matches('b');
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1024),
        Some('m') => (&t[..t.len() - 1], 1024 * 1024),
        Some('g') => (&t[..t.len() - 1], 1024 * 1024 * 1024),
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .map(|n| n * mult)
        .map_err(|_| format!("invalid size {s:?}: expected bytes, e.g. 5, 16k, 1m"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("5").unwrap(), 5);
        assert_eq!(parse_size("16k").unwrap(), 16384);
        assert_eq!(parse_size("16KiB").unwrap(), 16384);
        assert_eq!(parse_size("1m").unwrap(), 1 << 20);
        assert!(parse_size("lots").is_err());
    }
}
