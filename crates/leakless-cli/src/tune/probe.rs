//! What the server does with connections between requests: how long it
//! keeps an idle one, whether it says so (`Keep-Alive: timeout=`), and
//! whether it closes after N requests (`Connection: close`).
//!
//! The idle time is found two ways at once:
//! - actively, through the library: one client with a pool of one per
//!   trial, a request, an idle wait, a second request; `stats().created`
//!   says whether the second one reused the connection. Trials run in
//!   parallel on a grid over `--probe-max`, then on a finer grid inside the
//!   bracket [survived, closed] (a binary search done in one round trip of
//!   wall time instead of log2(n) sequential waits). This catches servers
//!   and middleboxes that drop connections silently.
//! - passively, on http://: a raw TCP exchange, then waiting for the
//!   server's FIN; the time from the response's last byte to the FIN is the
//!   timeout itself, to the millisecond.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use leakless::{Client, ClientBuilder, Error, HeaderMap, Version};
use serde::Serialize;

use crate::load::Template;

/// Trials per grid round: enough that the first round's bracket is a tenth
/// of --probe-max, few enough to be gentle on the server.
const GRID: u32 = 10;
/// The sequential run that looks for "closes after N requests": bounded in
/// requests and in time so a slow endpoint does not stall the probe.
const SEQ_MAX_REQUESTS: u64 = 200;
const SEQ_MAX_TIME: Duration = Duration::from_secs(3);

/// One response's connection-relevant facts.
#[derive(Clone, Debug)]
pub struct Seen {
    pub status: u16,
    pub version: Version,
    pub headers: HeaderMap,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Probe {
    /// The raw `Keep-Alive` header of the first response, if any.
    pub keep_alive_header: Option<String>,
    /// Its `timeout=`, seconds.
    pub advertised_timeout_s: Option<f64>,
    /// Its `max=` (requests left on the connection after the first).
    pub advertised_max: Option<u64>,
    /// The server closed (or said `Connection: close`) after this many
    /// requests on one connection; `None`: not within `requests_tried`.
    pub closes_after_requests: Option<u64>,
    pub requests_tried: u64,
    /// The idle probe; `None` when skipped (--no-probe-keep-alive, or the
    /// server closes after every response).
    pub idle: Option<Idle>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Idle {
    /// The server's idle timeout as measured; `None`: it kept the
    /// connection for all of `probe_max_s`.
    pub timeout_s: Option<f64>,
    /// The longest idle wait after which the connection was reused.
    pub survived_s: Option<f64>,
    /// The shortest idle wait after which it was gone.
    pub closed_by_s: Option<f64>,
    /// http:// only: time from the response's end to the server's FIN.
    pub fin_after_s: Option<f64>,
    pub probe_max_s: f64,
    /// Trials that finished (those cut short after a death are not counted).
    pub trials: u32,
}

/// Sends `t` once on `client`, reads the body to the end, keeps the head.
pub async fn exchange(client: &Client, t: &Template) -> Result<Seen, Error> {
    let mut res = t.request(client).send().await?;
    // Read to the end: only then is the connection back in the pool.
    while res.chunk().await?.is_some() {}
    Ok(Seen {
        status: res.status().as_u16(),
        version: res.version(),
        headers: res.headers().clone(),
    })
}

/// A client that keeps exactly one connection for as long as the server does.
fn single(base: &ClientBuilder) -> Result<Client, String> {
    base.clone()
        .max_conns_per_host(1)
        .max_idle_conns_per_host(1)
        .idle_conn_timeout(None)
        .build()
        .map_err(|e| e.to_string())
}

/// `timeout=5, max=100` → (Some(5.0), Some(100)).
pub fn parse_keep_alive(v: &str) -> (Option<f64>, Option<u64>) {
    let mut out = (None, None);
    for part in v.split(',') {
        let Some((k, val)) = part.split_once('=') else {
            continue;
        };
        let val = val.trim().trim_matches('"');
        match k.trim().to_ascii_lowercase().as_str() {
            "timeout" => out.0 = val.parse().ok(),
            "max" => out.1 = val.parse().ok(),
            _ => {}
        }
    }
    out
}

fn says_close(h: &HeaderMap) -> bool {
    h.get_all("connection").iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.to_ascii_lowercase().contains("close"))
    })
}

/// The header facts and "closes after N": one connection, requests in a
/// row until it closes or the bounds run out.
pub async fn requests_per_conn(
    base: &ClientBuilder,
    t: &Template,
    first: &Seen,
) -> Result<Probe, String> {
    let mut p = Probe::default();
    if let Some(v) = first
        .headers
        .get("keep-alive")
        .and_then(|v| v.to_str().ok())
    {
        p.keep_alive_header = Some(v.to_string());
        (p.advertised_timeout_s, p.advertised_max) = parse_keep_alive(v);
    }
    let client = single(base)?;
    let start = Instant::now();
    let mut n = 0;
    while n < SEQ_MAX_REQUESTS && start.elapsed() < SEQ_MAX_TIME {
        let seen = exchange(&client, t).await.map_err(|e| e.to_string())?;
        n += 1;
        // A new dial means the previous connection ended after n-1.
        let created = client.stats().total.created;
        if created > 1 {
            p.closes_after_requests = Some(n - 1);
            break;
        }
        if says_close(&seen.headers) {
            p.closes_after_requests = Some(n);
            break;
        }
    }
    p.requests_tried = n;
    Ok(p)
}

/// One trial: a request, `idle` of silence, a request. `Some(idle)` really
/// waited (measured, not nominal) and whether the connection survived.
async fn trial(base: ClientBuilder, t: Template, idle: Duration) -> Option<(f64, bool)> {
    let client = single(&base).ok()?;
    exchange(&client, &t).await.ok()?;
    let done = Instant::now();
    tokio::time::sleep(idle).await;
    let waited = done.elapsed().as_secs_f64();
    exchange(&client, &t).await.ok()?;
    let s = client.stats().total;
    Some((waited, s.created == 1 && s.reused >= 1))
}

/// Runs the trials of one grid at once; returns the measured waits the
/// connection survived, and those after which it was gone. Trials end in
/// the order of their waits, so at the first death every longer wait is
/// cancelled: it would only confirm the death, after up to --probe-max.
async fn grid(base: &ClientBuilder, t: &Template, waits: &[Duration]) -> (Vec<f64>, Vec<f64>) {
    let mut set = tokio::task::JoinSet::new();
    let mut longer = Vec::new();
    for &w in waits {
        let handle = set.spawn(trial(base.clone(), t.clone(), w));
        longer.push((w, handle));
    }
    let mut alive = Vec::new();
    let mut dead = Vec::new();
    while let Some(joined) = set.join_next().await {
        let Ok(Some((waited, survived))) = joined else {
            continue;
        };
        if survived {
            alive.push(waited);
        } else {
            dead.push(waited);
            for (w, handle) in &longer {
                if w.as_secs_f64() > waited {
                    handle.abort();
                }
            }
        }
    }
    (alive, dead)
}

/// The idle probe: a coarse grid over (0, max], then a fine one inside the
/// bracket; the passive FIN watch runs beside them on http://.
pub async fn idle(base: &ClientBuilder, t: &Template, max: Duration) -> Idle {
    let fin = (t.uri.scheme_str() == Some("http")).then(|| {
        let t = t.clone();
        std::thread::spawn(move || fin_after(&t, max))
    });
    let coarse: Vec<Duration> = (1..=GRID).map(|i| max * i / GRID).collect();
    let (mut alive, mut dead) = grid(base, t, &coarse).await;
    if let Some(hi) = dead.iter().copied().reduce(f64::min) {
        let lo = alive
            .iter()
            .copied()
            .filter(|&a| a < hi)
            .fold(0.0, f64::max);
        let fine: Vec<Duration> = (1..GRID)
            .map(|i| Duration::from_secs_f64(lo + (hi - lo) * i as f64 / GRID as f64))
            .collect();
        let (a, d) = grid(base, t, &fine).await;
        alive.extend(a);
        dead.extend(d);
    }
    let closed_by = dead.iter().copied().reduce(f64::min);
    let survived = alive
        .iter()
        .copied()
        .filter(|&a| closed_by.is_none_or(|d| a < d))
        .reduce(f64::max);
    let fin_after = fin.and_then(|h| h.join().ok().flatten());
    // The FIN is exact when it agrees with the trials (a server closing
    // idle connections from a timer); otherwise the last survival is the
    // safe figure: the connection certainly lived that long.
    let timeout = match (fin_after, survived, closed_by) {
        (_, _, None) => None,
        (Some(f), s, Some(d)) if s.is_none_or(|s| f >= s - 0.05) && f <= d + 0.05 => Some(f),
        (_, Some(s), Some(_)) => Some(s),
        (_, None, Some(d)) => Some(d / 2.0),
    };
    Idle {
        timeout_s: timeout,
        survived_s: survived,
        closed_by_s: closed_by,
        fin_after_s: fin_after,
        probe_max_s: max.as_secs_f64(),
        trials: (alive.len() + dead.len()) as u32,
    }
}

/// http:// only: one HTTP/1.1 exchange on a raw socket, then the time from
/// the last byte received to the server's FIN, if it comes within `max`.
fn fin_after(t: &Template, max: Duration) -> Option<f64> {
    let host = t.uri.host()?.trim_start_matches('[').trim_end_matches(']');
    let port = t.uri.port_u16().unwrap_or(80);
    let addr = (host, port).to_socket_addrs().ok()?.next()?;
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).ok()?;
    let path = t.uri.path_and_query().map_or("/", |p| p.as_str());
    let authority = t.uri.authority().map_or(host, |a| a.as_str());
    let mut head = format!("{} {path} HTTP/1.1\r\nHost: {authority}\r\n", t.method);
    for (k, v) in &t.headers {
        head.push_str(&format!("{}: {}\r\n", k, v.to_str().unwrap_or("")));
    }
    let body = t.body.as_deref().unwrap_or(&[]);
    if !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    tcp.write_all(head.as_bytes()).ok()?;
    tcp.write_all(body).ok()?;
    // Anything arriving moves "the last byte"; a one-response exchange
    // sends nothing more until the FIN.
    let start = Instant::now();
    let mut last = None;
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = max.saturating_sub(start.elapsed());
        if left.is_zero() {
            return None;
        }
        tcp.set_read_timeout(Some(left)).ok()?;
        match tcp.read(&mut buf) {
            Ok(0) => return last.map(|l: Instant| l.elapsed().as_secs_f64()),
            Ok(_) => last = Some(Instant::now()),
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive_header() {
        assert_eq!(
            parse_keep_alive("timeout=5, max=100"),
            (Some(5.0), Some(100))
        );
        assert_eq!(parse_keep_alive("timeout=3"), (Some(3.0), None));
        assert_eq!(parse_keep_alive("Max=7 , foo"), (None, Some(7)));
        assert_eq!(parse_keep_alive(""), (None, None));
    }
}
