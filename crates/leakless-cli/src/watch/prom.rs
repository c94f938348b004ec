//! Prometheus text exposition of the latest sample, served on `--listen`.
//!
//! Labels are bounded by the snapshot (top-K endpoints + "other", at most
//! 25 processes, a fixed set of states and verdicts). Every metric is a gauge
//! but the sample counter: rates are exported already computed, because a
//! counter per folded endpoint would jump when an endpoint moves in or out
//! of the top K.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::snapshot::{ProcessView, Snapshot};
use super::verdict::Kind;

/// Escapes a label value (backslash, double quote, newline).
fn esc(s: &str) -> String {
    s.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

struct Metric<'a> {
    name: &'a str,
    help: &'a str,
    kind: &'a str,
    rows: Vec<(String, f64)>,
}

impl Metric<'_> {
    fn write(&self, out: &mut String) {
        if self.rows.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        for (labels, v) in &self.rows {
            if labels.is_empty() {
                let _ = writeln!(out, "{} {}", self.name, v);
            } else {
                let _ = writeln!(out, "{}{{{}}} {}", self.name, labels, v);
            }
        }
    }
}

fn gauge<'a>(name: &'a str, help: &'a str) -> Metric<'a> {
    Metric {
        name,
        help,
        kind: "gauge",
        rows: Vec::new(),
    }
}

fn plabels(p: &ProcessView) -> String {
    format!("pid=\"{}\",comm=\"{}\"", p.pid, esc(&p.comm))
}

/// The whole exposition for one snapshot.
pub fn render(s: &Snapshot) -> String {
    let mut sockets = gauge(
        "leakless_watch_sockets",
        "TCP sockets of the process per endpoint and state (TIME_WAIT: attributed by 4-tuple).",
    );
    let mut tw_un = gauge(
        "leakless_watch_time_wait_unattributed",
        "TIME_WAIT sockets to the endpoint that no earlier sample ties to the process.",
    );
    let mut opens = gauge(
        "leakless_watch_opens_per_second",
        "Sockets first seen per second, over the last 5 s.",
    );
    let mut closes = gauge(
        "leakless_watch_closes_per_second",
        "Sockets gone per second, over the last 5 s.",
    );
    let mut oldest = gauge(
        "leakless_watch_oldest_socket_age_seconds",
        "Age of the oldest open socket (since first seen).",
    );
    let mut idle = gauge(
        "leakless_watch_max_idle_seconds",
        "Longest time since data moved on an open socket (tcp_info).",
    );
    let mut verdict = gauge(
        "leakless_watch_verdict",
        "1 for the current verdict of the endpoint, 0 for the others.",
    );
    let mut pverdict = gauge(
        "leakless_watch_process_verdict",
        "1 for the worst current verdict of the process, 0 for the others.",
    );
    let mut fds = gauge(
        "leakless_watch_fds_open",
        "Open file descriptors of the process (and its descendants).",
    );
    let mut limit = gauge(
        "leakless_watch_fds_limit",
        "Soft RLIMIT_NOFILE of the process.",
    );
    let mut ports_free = gauge(
        "leakless_watch_ephemeral_ports_free",
        "Ephemeral ports left to a remote endpoint: ip_local_port_range less the sockets and TIME_WAIT to it.",
    );
    let mut go = gauge(
        "leakless_watch_go_goroutines",
        "Go (--pprof): net/http goroutines by what they do for a connection (body_unread, reading, in_flight, http2_conn, handler).",
    );
    let mut go_parked = gauge(
        "leakless_watch_go_parked_seconds",
        "Go (--pprof): the longest any goroutine of the role has been parked.",
    );
    for p in &s.processes {
        let pl = plabels(p);
        if let Some(n) = p.fds_open {
            fds.rows.push((pl.clone(), f64::from(n)));
        }
        if let Some(n) = p.fd_limit {
            limit.rows.push((pl.clone(), n as f64));
        }
        if let Some(k) = p.verdict {
            for kind in Kind::ALL {
                pverdict.rows.push((
                    format!("{pl},verdict=\"{}\"", kind.name()),
                    f64::from(u8::from(kind == k)),
                ));
            }
        }
        for (role, v) in p.go.iter().flat_map(|g| &g.roles) {
            let rl = format!("{pl},role=\"{}\"", role.name());
            go.rows.push((rl.clone(), f64::from(v.count)));
            go_parked.rows.push((rl, v.parked_max_s));
        }
        for e in &p.endpoints {
            let el = format!("{pl},endpoint=\"{}\"", esc(&e.endpoint));
            if let Some(n) = e.ephemeral_ports_free {
                ports_free.rows.push((el.clone(), f64::from(n)));
            }
            for (state, n) in &e.states {
                sockets
                    .rows
                    .push((format!("{el},state=\"{state}\""), f64::from(*n)));
            }
            tw_un
                .rows
                .push((el.clone(), f64::from(e.time_wait_unattributed)));
            opens.rows.push((el.clone(), e.opens_per_s));
            closes.rows.push((el.clone(), e.closes_per_s));
            oldest.rows.push((el.clone(), e.oldest_age_s));
            if let Some(i) = e.max_idle_s {
                idle.rows.push((el.clone(), i));
            }
            if let Some(k) = e.verdict {
                for kind in Kind::ALL {
                    verdict.rows.push((
                        format!("{el},verdict=\"{}\"", kind.name()),
                        f64::from(u8::from(kind == k)),
                    ));
                }
            }
        }
    }
    let mut host_tw = gauge(
        "leakless_watch_host_time_wait_unattributed",
        "TIME_WAIT sockets on the host no process could be tied to.",
    );
    host_tw
        .rows
        .push((String::new(), f64::from(s.unattributed_time_wait)));
    let mut ports = gauge(
        "leakless_watch_ephemeral_ports",
        "Ports in net.ipv4.ip_local_port_range: connections this host can have to one remote address and port.",
    );
    ports
        .rows
        .push((String::new(), f64::from(s.ephemeral_ports)));
    let samples = Metric {
        name: "leakless_watch_samples_total",
        help: "Samples taken since the watch started.",
        kind: "counter",
        rows: vec![(String::new(), s.sample as f64)],
    };
    let mut wall = gauge(
        "leakless_watch_sample_duration_seconds",
        "Wall time the last sample took.",
    );
    wall.rows.push((String::new(), s.cost.wall_ms / 1000.0));
    let mut cpu = gauge(
        "leakless_watch_sample_cpu_seconds",
        "CPU time the last sample took.",
    );
    cpu.rows.push((String::new(), s.cost.cpu_ms / 1000.0));

    let mut out = String::new();
    for m in [
        &sockets,
        &tw_un,
        &opens,
        &closes,
        &oldest,
        &idle,
        &verdict,
        &pverdict,
        &fds,
        &limit,
        &ports_free,
        &go,
        &go_parked,
        &host_tw,
        &ports,
        &samples,
        &wall,
        &cpu,
    ] {
        m.write(&mut out);
    }
    out
}

/// The text the listener serves; updated after every sample.
pub type Shared = Arc<Mutex<String>>;

/// Binds `addr` and serves `GET /metrics` from `shared` on a thread.
/// Returns the bound address (useful with port 0).
pub fn serve(addr: &str, shared: Shared) -> io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    let local = listener.local_addr()?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                // One scrape at a time is plenty; errors only lose that scrape.
                let _ = answer(conn, &shared);
            }
        })?;
    Ok(local)
}

fn answer(mut conn: TcpStream, shared: &Shared) -> io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    conn.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut buf = [0u8; 4096];
    let mut len = 0;
    while len < buf.len() && !buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut buf[len..])?;
        if n == 0 {
            break;
        }
        len += n;
    }
    let head = String::from_utf8_lossy(&buf[..len]);
    let path = head.split_whitespace().nth(1).unwrap_or("");
    let (status, ctype, body) = if path == "/metrics" || path.starts_with("/metrics?") {
        let text = shared.lock().map(|s| s.clone()).unwrap_or_default();
        ("200 OK", "text/plain; version=0.0.4; charset=utf-8", text)
    } else {
        (
            "404 Not Found",
            "text/plain",
            "leakless watch: metrics are on /metrics\n".to_string(),
        )
    };
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}
