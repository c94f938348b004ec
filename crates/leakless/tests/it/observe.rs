//! Seeing inside the pool: observer event sequences (every start has its
//! end), latency histograms, stats invariants under faults, the leak
//! detector with the caller's file:line, Prometheus text checked by
//! promtool, and the client-per-request warning.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use leakless::{Client, Event, Observer, RequestInfo};
use tracing_subscriber::fmt::format::FmtSpan;

use crate::support::*;

/// Records events as short names, per request id.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<(u64, String)>>>);

impl Observer for Recorder {
    fn on_event(&self, req: &RequestInfo, event: &Event<'_>) {
        let name = match event {
            Event::GetConn => "GetConn".to_owned(),
            Event::GetConnFailed { .. } => "GetConnFailed".to_owned(),
            Event::DnsStart { .. } => "DnsStart".to_owned(),
            Event::DnsDone { error, .. } => {
                format!("DnsDone{}", if error.is_some() { "!" } else { "" })
            }
            Event::ConnectStart { .. } => "ConnectStart".to_owned(),
            Event::ConnectDone { error, .. } => {
                format!("ConnectDone{}", if error.is_some() { "!" } else { "" })
            }
            Event::TlsStart => "TlsStart".to_owned(),
            Event::TlsDone { error } => {
                format!("TlsDone{}", if error.is_some() { "!" } else { "" })
            }
            Event::GotConn {
                reused, was_idle, ..
            } => format!("GotConn(reused={reused},idle={was_idle})"),
            Event::WroteRequest { error } => {
                format!("WroteRequest{}", if error.is_some() { "!" } else { "" })
            }
            Event::FirstByte { .. } => "FirstByte".to_owned(),
            Event::BodyDone { error, .. } => {
                format!("BodyDone{}", if error.is_some() { "!" } else { "" })
            }
            Event::ConnReturned => "ConnReturned".to_owned(),
            Event::ConnClosed { reason } => format!("ConnClosed({})", reason.as_str()),
            Event::Retry { .. } => "Retry".to_owned(),
            _ => format!("{event:?}"),
        };
        self.0.lock().unwrap().push((req.id, name));
    }
}

impl Recorder {
    /// Events grouped by request, in request order.
    fn take_per_request(&self) -> Vec<Vec<String>> {
        let mut by: std::collections::BTreeMap<u64, Vec<String>> = Default::default();
        for (id, e) in std::mem::take(&mut *self.0.lock().unwrap()) {
            by.entry(id).or_default().push(e);
        }
        by.into_values().collect()
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
            .into_iter()
            .map(|(_, n)| n)
            .collect()
    }
}

/// Every start has its end, in order.
fn assert_balanced(events: &[String]) {
    let pairs = [
        ("GetConn", &["GotConn", "GetConnFailed"][..]),
        ("DnsStart", &["DnsDone"]),
        ("ConnectStart", &["ConnectDone"]),
        ("TlsStart", &["TlsDone"]),
        ("GotConn", &["ConnReturned", "ConnClosed"]),
        ("FirstByte", &["BodyDone"]),
    ];
    for (start, ends) in pairs {
        let mut open = 0i32;
        for e in events {
            if e.starts_with(start) && !e.starts_with("GetConnFailed") {
                open += 1;
            }
            if ends.iter().any(|end| e.starts_with(end)) {
                open -= 1;
                assert!(open >= 0, "{e} without {start}: {events:?}");
            }
        }
        assert_eq!(open, 0, "{start} left open: {events:?}");
    }
}

fn observed(builder: leakless::ClientBuilder) -> (Client, Recorder) {
    let rec = Recorder::default();
    (builder.observer(rec.clone()).build().unwrap(), rec)
}

#[tokio::test]
async fn fresh_then_reused_connection_event_sequences() {
    let server = TestServer::start(Config::new());
    let (client, rec) = observed(Client::builder());
    get_body(&client, server.url("/")).await;
    let fresh = rec.take();
    assert_eq!(
        fresh,
        [
            "GetConn",
            "ConnectStart",
            "ConnectDone",
            "GotConn(reused=false,idle=false)",
            "WroteRequest",
            "FirstByte",
            "BodyDone",
            "ConnReturned"
        ]
    );
    get_body(&client, server.url("/")).await;
    let reused = rec.take();
    assert_eq!(
        reused,
        [
            "GetConn",
            "GotConn(reused=true,idle=true)",
            "WroteRequest",
            "FirstByte",
            "BodyDone",
            "ConnReturned"
        ]
    );
}

/// An observer of new connections only.
#[derive(Clone, Default)]
struct NewConns(Recorder);

impl Observer for NewConns {
    fn on_event(&self, req: &RequestInfo, event: &Event<'_>) {
        self.0.on_event(req, event);
    }

    fn every_request(&self) -> bool {
        false
    }
}

#[tokio::test]
async fn an_observer_of_new_connections_hears_only_requests_that_open_one() {
    let server = TestServer::start(Config::new());
    let obs = NewConns::default();
    let client = Client::builder()
        .observer(obs.clone())
        .max_conns_per_host(2)
        .build()
        .unwrap();
    get_body(&client, server.url("/")).await;
    let fresh = obs.0.take_per_request();
    assert_eq!(
        fresh,
        [[
            "GetConn",
            "ConnectStart",
            "ConnectDone",
            "GotConn(reused=false,idle=false)",
            "WroteRequest",
            "FirstByte",
            "BodyDone",
            "ConnReturned"
        ]]
    );
    get_body(&client, server.url("/")).await;
    assert_eq!(
        obs.0.take(),
        Vec::<String>::new(),
        "a reused connection is not traced"
    );
    // Two at once: the idle connection serves one, a second is opened for
    // the other, and only that request is heard, under its own id.
    let (a, b) = tokio::join!(
        client.get(server.url("/")).send(),
        client.get(server.url("/")).send()
    );
    a.unwrap().bytes().await.unwrap();
    b.unwrap().bytes().await.unwrap();
    let heard = obs.0.take_per_request();
    assert_eq!(heard.len(), 1, "{heard:?}");
    assert_eq!(heard[0][3], "GotConn(reused=false,idle=false)", "{heard:?}");
    assert_balanced(&heard[0]);
    assert_eq!(client.stats().total.created, 2);
}

#[tokio::test]
async fn host_names_are_resolved_with_dns_events() {
    let server = TestServer::start(Config::new());
    let (client, rec) = observed(Client::builder());
    let url = format!("http://localhost:{}/", server.addr().port());
    get_body(&client, url).await;
    let events = rec.take();
    assert_eq!(
        &events[..3],
        ["GetConn", "DnsStart", "DnsDone"],
        "{events:?}"
    );
    assert_balanced(&events);
}

/// Our end of each connection GotConn handed a request, in order.
#[derive(Clone, Default)]
struct Locals(Arc<Mutex<Vec<Option<std::net::SocketAddr>>>>);

impl Observer for Locals {
    fn on_event(&self, _: &RequestInfo, event: &Event<'_>) {
        if let Event::GotConn { local_addr, .. } = event {
            self.0.lock().unwrap().push(*local_addr);
        }
    }
}

/// GotConn names our end of the connection, fresh or reused, on HTTP/2's
/// shared connections as on HTTP/1.1's: the address the server saw the
/// connection come from.
async fn got_conn_names_our_end_of_the_connection(mode: Mode) {
    let server = mode.server(Config::new());
    let locals = Locals::default();
    let client = mode.client(&server, Client::builder().observer(locals.clone()));
    get_body(&client, mode.url(&server, "/")).await;
    get_body(&client, mode.url(&server, "/")).await;
    let peers: Vec<_> = server.stats().conns.values().map(|c| c.peer).collect();
    assert_eq!(peers.len(), 1, "one connection carries both");
    let ours = Some(peers[0]);
    assert_eq!(*locals.0.lock().unwrap(), [ours, ours]);
}
per_mode!(got_conn_names_our_end_of_the_connection: h1, h1_tls, h2, h2c);

#[tokio::test]
async fn tls_and_h2_sequences_are_balanced() {
    let server = TestServer::start(Config::new().tls(true));
    let rec = Recorder::default();
    let client = trusting(&server, Client::builder().observer(rec.clone()));
    get_body(&client, server.https_url("/")).await;
    let events = rec.take();
    assert!(
        events.contains(&"TlsStart".to_owned()) && events.contains(&"TlsDone".to_owned()),
        "{events:?}"
    );
    assert_balanced(&events);
    let s = client.stats().total;
    assert_eq!((s.tls_time.count(), s.connect_time.count()), (1, 1));
}

#[tokio::test]
async fn a_failed_dial_ends_with_get_conn_failed() {
    let refusing = RefusingAddr::new();
    let (client, rec) = observed(Client::builder());
    client
        .get(format!("http://{}/", refusing.addr()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        rec.take(),
        ["GetConn", "ConnectStart", "ConnectDone!", "GetConnFailed"]
    );
}

#[tokio::test]
async fn a_refused_stream_shows_the_retry() {
    let server = TestServer::start(Config::new().h2_refuse_streams(1));
    let (client, rec) = observed(Client::builder().http2_prior_knowledge());
    get_body(&client, server.url("/")).await;
    let events = rec.take();
    let retry = events
        .iter()
        .position(|e| e == "Retry")
        .expect("a retry event");
    assert_eq!(events[retry + 1], "GetConn", "{events:?}");
    assert_balanced(&events);
}

#[tokio::test]
async fn each_timeout_closes_what_it_opened() {
    let server = TestServer::start(Config::new());
    let (client, rec) = observed(
        Client::builder()
            .response_header_timeout(Duration::from_millis(50))
            .read_idle_timeout(Duration::from_millis(50)),
    );
    client
        .get(server.url("/?fault=stall"))
        .send()
        .await
        .unwrap_err();
    let events = rec.take();
    assert_eq!(events.last().unwrap(), "ConnClosed(timeout)", "{events:?}");
    assert_balanced(&events);
    let mut res = client
        .get(server.url("/?fault=stall_body&size=10&after=3"))
        .send()
        .await
        .unwrap();
    assert!(res.chunk().await.unwrap().is_some());
    res.chunk().await.unwrap_err();
    let events = rec.take();
    assert_eq!(
        &events[events.len() - 2..],
        ["BodyDone!", "ConnClosed(timeout)"],
        "{events:?}"
    );
    assert_balanced(&events);
}

#[tokio::test]
async fn cancellation_at_each_await_point_still_ends_every_phase() {
    let server = TestServer::start(Config::new());
    let (client, rec) = observed(Client::builder().max_conns_per_host(1));
    // 0: dropped while awaiting headers.
    let _ = tokio::time::timeout(
        Duration::from_millis(30),
        client.get(server.url("/?fault=stall")).send(),
    )
    .await;
    // 1: holds the only slot; 2: dropped while waiting for it.
    let held = client.get(server.url("/")).send().await.unwrap();
    let _ = tokio::time::timeout(
        Duration::from_millis(30),
        client.get(server.url("/")).send(),
    )
    .await;
    // 1 dropped unread; 3: dropped mid-body. Both drain in the background.
    drop(held);
    let mut res = client
        .get(server.url("/?size=20000&chunked=1&chunk=1000"))
        .send()
        .await
        .unwrap();
    res.chunk().await.unwrap();
    drop(res);
    wait_for_stats(&client, "both drains done", |s| s.busy == 0).await;
    let requests = rec.take_per_request();
    assert_eq!(requests.len(), 4, "{requests:?}");
    assert_eq!(
        requests[0].last().unwrap(),
        "ConnClosed(canceled)",
        "{:?}",
        requests[0]
    );
    assert_eq!(requests[2], ["GetConn", "GetConnFailed"]);
    for dropped in [&requests[1], &requests[3]] {
        assert!(
            dropped.contains(&"BodyDone!".to_owned()),
            "dropped early: {dropped:?}"
        );
        assert_eq!(
            dropped.last().unwrap(),
            "ConnReturned",
            "drained and reused: {dropped:?}"
        );
    }
    for events in &requests {
        assert_balanced(events);
    }
}

#[tokio::test]
async fn histograms_count_every_request() {
    let server = TestServer::start(Config::new());
    let client = Client::new();
    for _ in 0..5 {
        get_body(&client, server.url("/")).await;
    }
    let s = client.stats().total;
    assert_eq!(s.pool_wait.count(), 5);
    assert_eq!(s.connect_time.count(), 1);
    assert_eq!(s.tls_time.count(), 0);
    assert_eq!(s.time_to_first_byte.count(), 5);
    assert!(s.time_to_first_byte.quantile(0.5).unwrap() < Duration::from_secs(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_invariants_hold_at_every_snapshot_under_load_with_faults() {
    let server = TestServer::start(Config::new());
    let client = Client::builder()
        .max_conns_per_host(8)
        .response_header_timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let checker = std::thread::spawn({
        let (client, stop) = (client.clone(), stop.clone());
        move || {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let s = client.stats();
                assert_consistent(&s.total);
                for h in s.hosts.values() {
                    assert_consistent(h);
                }
                n += 1;
            }
            n
        }
    });
    let faults = [
        "",
        "fault=close",
        "fault=truncate&size=100&after=10",
        "close=1",
        "fault=reset",
        "size=70000",
    ];
    let tasks: Vec<_> = (0..16)
        .map(|w| {
            let (c, u) = (client.clone(), server.url("/"));
            tokio::spawn(async move {
                for i in 0..40 {
                    let q = faults[(w + i) % faults.len()];
                    if let Ok(res) = c.get(format!("{u}?{q}")).send().await {
                        if i % 3 == 0 {
                            drop(res);
                        } else {
                            let _ = res.bytes().await;
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        bounded(t).await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(checker.join().unwrap() > 0);
}

/// Captures what the library logs at INFO and above, on this thread.
fn capture() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    capture_with(FmtSpan::NONE)
}

/// As `capture`, with the span events `spans` logged too.
fn capture_with(spans: FmtSpan) -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    #[derive(Clone)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    keep_a_second_dispatcher();
    let buf = Arc::new(Mutex::new(Vec::new()));
    let writer = Buf(buf.clone());
    let sub = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .with_span_events(spans)
        .with_writer(move || writer.clone())
        .finish();
    (buf, tracing::subscriber::set_default(sub))
}

/// While just one dispatcher is registered in the process, tracing-core
/// decides whether a callsite is wanted, the first time it is reached,
/// from the reaching thread's default alone. When that one dispatcher is a
/// test's thread-local subscriber and another test's thread reaches a
/// library span first (the `request` span of any request), the span is
/// switched off for good, and the test sees no span (it failed so whenever
/// the HTTP/2 flood tests ran beside it). A second dispatcher, kept for the
/// life of the process, makes it ask every registered one.
fn keep_a_second_dispatcher() {
    static SECOND: std::sync::OnceLock<tracing::Dispatch> = std::sync::OnceLock::new();
    SECOND.get_or_init(|| tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default()));
}

// The exchange runs inside its hop's span when a subscriber wants it, and
// is told that span (not whatever span is current) to record retries in.
async fn the_request_span_closes_with_its_status_version_reuse_and_retries(mode: Mode) {
    let (logs, _guard) = capture_with(FmtSpan::CLOSE);
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    for _ in 0..2 {
        assert_eq!(get_body(&client, mode.url(&server, "/")).await, "hello");
    }
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    let closed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("request{") && l.contains("close"))
        .collect();
    assert_eq!(closed.len(), 2, "{text}");
    let version = format!("version={:?}", mode.version());
    for (line, reused) in closed.iter().zip(["reused=false", "reused=true"]) {
        for field in [
            "method=GET",
            "status=200",
            &version,
            reused,
            "retries=0",
            "duration_ms=",
        ] {
            assert!(line.contains(field), "{field} in {line}");
        }
    }
}
per_mode!(the_request_span_closes_with_its_status_version_reuse_and_retries: h1, h2c);

#[tokio::test]
async fn a_response_held_past_the_threshold_is_reported_with_its_call_site_then_its_release() {
    let (logs, _guard) = capture();
    let server = TestServer::start(Config::new());
    let client = Client::builder()
        .leak_threshold(Duration::from_millis(100))
        .build()
        .unwrap();
    let line = line!() + 1;
    let held = client.get(server.url("/")).send().await.unwrap();
    let out = client.outstanding();
    assert_eq!(out.len(), 1);
    assert!(
        out[0].call_site.file().ends_with("observe.rs"),
        "{:?}",
        out[0].call_site
    );
    assert_eq!(out[0].call_site.line(), line);
    let site = format!("observe.rs:{line}");
    let text = || String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    tokio::time::pause();
    tokio::time::advance(Duration::from_millis(150)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    tokio::time::resume();
    let warned = text();
    assert!(
        warned.contains("WARN") && warned.contains(&site),
        "a WARN naming {site}: {warned}"
    );
    assert_eq!(
        warned.matches("has held its connection").count(),
        1,
        "reported once"
    );
    assert_eq!(client.stats().total.leaks_reported, 1);
    held.bytes().await.unwrap();
    let released = text();
    assert!(
        released.contains("INFO") && released.contains("released after"),
        "{released}"
    );
    assert!(client.outstanding().is_empty());
}

#[tokio::test]
async fn prometheus_text_has_the_pool_and_passes_promtool() {
    let server = TestServer::start(Config::new());
    let client = Client::new();
    for _ in 0..3 {
        get_body(&client, server.url("/")).await;
    }
    let text = client.prometheus_text();
    let host = server.addr().to_string();
    for want in [
        format!("leakless_pool_connections{{host=\"{host}\",state=\"idle\"}} 1"),
        format!("leakless_connections_created_total{{host=\"{host}\"}} 1"),
        format!("leakless_connection_reuses_total{{host=\"{host}\"}} 2"),
        format!("leakless_time_to_first_byte_seconds_count{{host=\"{host}\"}} 3"),
        "leakless_connections_closed_total{".to_owned(),
        "# TYPE leakless_pool_wait_seconds histogram".to_owned(),
    ] {
        assert!(text.contains(&want), "missing {want:?} in:\n{text}");
    }
    let Some(promtool) = which("promtool") else {
        assert!(
            std::env::var_os("LEAKLESS_REQUIRE_PROMTOOL").is_none(),
            "promtool is required (apt-get install prometheus)"
        );
        eprintln!("skipped promtool: not installed (apt-get install prometheus)");
        return;
    };
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{text}"
    );
}

#[tokio::test]
async fn metrics_in_a_registry_stop_when_the_client_is_dropped() {
    let mut registry = prometheus_client::registry::Registry::default();
    let client = Client::new();
    client.register_metrics(&mut registry);
    drop(client);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(!text.contains("leakless_pool_connections{"), "{text}");
}

/// Run in a process of its own: the warning is once per process.
#[test]
#[ignore = "run by creating_clients_in_a_loop_warns_once, in a process of its own"]
fn many_clients_child() {
    let (logs, _guard) = capture();
    for _ in 0..100 {
        drop(Client::new());
    }
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    println!(
        "WARNINGS={}",
        text.matches("keeps creating clients").count()
    );
}

#[test]
fn creating_clients_in_a_loop_warns_once() {
    let out =
        run_alone_in_a_fresh_process("observe::many_clients_child", &[], Duration::from_secs(60));
    assert!(out.contains("WARNINGS=1"), "{out}");
}
