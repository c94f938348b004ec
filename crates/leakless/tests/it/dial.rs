//! Dialing: Happy Eyeballs between a name's addresses (one that never
//! answers the SYN, one that does), `resolve` overrides and custom
//! resolvers (the name stays the pool's key, SNI and Host), and the
//! socket's options as the kernel has them (local address, device,
//! keep-alive).

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use leakless::{
    CloseReason, ErrorKind, Event, Observer, RequestInfo,
    dns::{Addrs, Name, Resolve, Resolving},
};

use crate::support::*;

/// Connect events, as `Start addr` / `Done addr` / `Done! addr`.
#[derive(Clone, Default)]
struct Attempts(Arc<Mutex<Vec<String>>>);

impl Observer for Attempts {
    fn on_event(&self, _: &RequestInfo, event: &Event<'_>) {
        let line = match event {
            Event::ConnectStart { addr } => format!("Start {addr}"),
            Event::ConnectDone { addr, error } => {
                format!("Done{} {addr}", if error.is_some() { "!" } else { "" })
            }
            _ => return,
        };
        self.0.lock().unwrap().push(line);
    }
}

impl Attempts {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// `localhost` (a name the test server's certificate holds) at the
/// server's port: the first address hangs in SYN_SENT (a full accept queue
/// on [::1]), the second is the server on 127.0.0.1.
async fn eyeballs_pick_the_address_that_answers_within_the_fallback_delay(mode: Mode) {
    let server = mode.server(Config::new());
    let port = server.addr().port();
    let hung = SaturatedListener::at(([0, 0, 0, 0, 0, 0, 0, 1], port).into());
    let attempts = Attempts::default();
    let client = mode.client(
        &server,
        Client::builder()
            .resolve_to_addrs("localhost", &[hung.addr(), server.addr()])
            .connect_timeout(Duration::from_secs(30))
            .observer(attempts.clone()),
    );
    let url = format!(
        "{}://localhost:{port}/",
        if mode.is_tls() { "https" } else { "http" }
    );
    let started = Instant::now();
    let req = tokio::spawn({
        let (client, url) = (client.clone(), url.clone());
        async move { get_body(&client, url).await }
    });
    // The race holds one slot while both attempts are in flight.
    let dial = hung.wait_for_the_dial().await;
    let s = client.stats().total;
    assert!(s.open <= 1 && s.created == 1, "{s:?}");
    assert_eq!(bounded(req).await.unwrap(), "hello");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(10),
        "connected after {took:?}: the fallback delay is 250 ms, connect_timeout 30 s"
    );
    // The loser was closed at once and counted as such.
    hung.assert_no_dial_left(&dial);
    let s = client.stats().total;
    assert_eq!((s.open, s.created, s.closed), (1, 2, 1), "{s:?}");
    assert_eq!(s.closed_by.get(CloseReason::LostRace), 1, "{s:?}");
    assert_consistent(&s);
    assert_eq!(
        attempts.take(),
        [
            format!("Start {}", hung.addr()),
            format!("Start {}", server.addr()),
            format!("Done {}", server.addr()),
            format!("Done! {}", hung.addr()),
        ]
    );
    // The pool's key is the name, and the connection is reused.
    let key = if mode.is_tls() {
        format!("https://localhost:{port}")
    } else {
        format!("localhost:{port}")
    };
    assert!(client.stats().hosts.contains_key(&key), "{key}");
    assert_eq!(get_body(&client, &url).await, "hello");
    assert_eq!(server.stats().accepted, 1);
    if mode.is_tls() {
        let tls = server
            .stats()
            .conns
            .values()
            .next()
            .unwrap()
            .tls
            .clone()
            .unwrap();
        assert_eq!(tls.sni.as_deref(), Some("localhost"));
    }
}
per_mode!(eyeballs_pick_the_address_that_answers_within_the_fallback_delay: h1, h1_tls, h2);

async fn a_refused_address_starts_the_next_attempt_at_once(mode: Mode) {
    let server = mode.server(Config::new());
    let port = server.addr().port();
    // Nothing listens on [::1] at that port: refused at once.
    let refused: SocketAddr = ([0, 0, 0, 0, 0, 0, 0, 1], port).into();
    let attempts = Attempts::default();
    let client = mode.client(
        &server,
        Client::builder()
            .resolve_to_addrs("localhost", &[refused, server.addr()])
            .happy_eyeballs_delay(Duration::from_secs(60))
            .observer(attempts.clone()),
    );
    let scheme = if mode.is_tls() { "https" } else { "http" };
    let started = Instant::now();
    let body = get_body(&client, format!("{scheme}://localhost:{port}/")).await;
    assert_eq!(body, "hello");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "waited for the 60 s fallback delay instead of the failure"
    );
    assert_eq!(
        attempts.take(),
        [
            format!("Start {refused}"),
            format!("Done! {refused}"),
            format!("Start {}", server.addr()),
            format!("Done {}", server.addr()),
        ]
    );
    // A failed attempt is not a loser: nothing was counted besides the dial.
    let s = client.stats().total;
    assert_eq!((s.open, s.created, s.closed), (1, 1, 0), "{s:?}");
}
per_mode!(a_refused_address_starts_the_next_attempt_at_once: h1, h1_tls, h2);

#[tokio::test]
async fn every_address_refused_names_each_in_the_error() {
    let a: SocketAddr = ([0, 0, 0, 0, 0, 0, 0, 1], 9).into();
    let b: SocketAddr = ([127, 0, 0, 1], 9).into();
    let client = Client::builder()
        .resolve_to_addrs("nowhere.test", &[a, b])
        .build()
        .unwrap();
    let e = client
        .get("http://nowhere.test:9/")
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Connect, "{e}");
    let text = e.to_string();
    assert!(
        text.contains("[::1]:9") && text.contains("127.0.0.1:9"),
        "{text}"
    );
    assert!(text.contains("nowhere.test:9"), "{text}");
    let s = client.stats().total;
    assert_eq!((s.open, s.created, s.closed), (0, 1, 1), "{s:?}");
}

/// Answers every name with its address, counting the questions.
struct OneAddress {
    addr: SocketAddr,
    asked: Mutex<Vec<String>>,
}

impl Resolve for OneAddress {
    fn resolve(&self, name: Name) -> Resolving {
        self.asked.lock().unwrap().push(name.as_str().to_owned());
        let addr = self.addr;
        Box::pin(async move { Ok(Box::new(std::iter::once(addr)) as Addrs) })
    }
}

async fn a_custom_resolver_is_asked_and_the_url_port_is_used(mode: Mode) {
    let server = mode.server(Config::new());
    // Port 1 in the answer: ignored, the URL's port is used.
    let resolver = Arc::new(OneAddress {
        addr: ([127, 0, 0, 1], 1).into(),
        asked: Mutex::new(Vec::new()),
    });
    let client = mode.client(&server, Client::builder().dns_resolver(resolver.clone()));
    let scheme = if mode.is_tls() { "https" } else { "http" };
    let url = format!("{scheme}://localhost:{}/", server.addr().port());
    assert_eq!(get_body(&client, &url).await, "hello");
    assert_eq!(get_body(&client, &url).await, "hello");
    // Asked once: the second request reused the connection.
    assert_eq!(*resolver.asked.lock().unwrap(), ["localhost"]);
}
per_mode!(a_custom_resolver_is_asked_and_the_url_port_is_used: h1, h1_tls, h2);

#[tokio::test]
async fn a_resolve_override_beats_the_resolver_and_ignores_its_port() {
    let server = TestServer::start(Config::new());
    let resolver = Arc::new(OneAddress {
        addr: ([127, 0, 0, 1], 1).into(),
        asked: Mutex::new(Vec::new()),
    });
    let client = Client::builder()
        .dns_resolver(resolver.clone())
        .resolve("Pinned.Test", ([127, 0, 0, 1], 1).into())
        .build()
        .unwrap();
    let url = format!("http://pinned.test:{}/", server.addr().port());
    assert_eq!(get_body(&client, url).await, "hello");
    assert!(resolver.asked.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_resolver_failure_says_so_in_the_connect_phase() {
    struct Fails;
    impl Resolve for Fails {
        fn resolve(&self, name: Name) -> Resolving {
            Box::pin(async move { Err(format!("no such host {name}").into()) })
        }
    }
    let client = Client::builder()
        .dns_resolver(Arc::new(Fails))
        .build()
        .unwrap();
    let e = client.get("http://gone.test/").send().await.unwrap_err();
    assert!(e.is_connect(), "{e}");
    assert!(e.to_string().contains("no such host gone.test"), "{e}");
    let s = client.stats().total;
    assert_eq!((s.open, s.created, s.closed), (0, 1, 1), "{s:?}");
}

async fn connections_leave_from_the_local_address(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(
        &server,
        Client::builder().local_address(Some([127, 0, 0, 2].into())),
    );
    assert_eq!(get_body(&client, mode.url(&server, "/")).await, "hello");
    let peers: Vec<_> = server.stats().conns.values().map(|c| c.peer).collect();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].ip().to_string(), "127.0.0.2");
}
per_mode!(connections_leave_from_the_local_address: h1, h1_tls, h2);

#[tokio::test]
async fn a_device_binds_the_socket_and_an_unknown_one_is_a_connect_error() {
    let server = TestServer::start(Config::new());
    let client = Client::builder().interface("lo").build().unwrap();
    assert_eq!(get_body(&client, server.url("/")).await, "hello");
    let client = Client::builder().interface("nosuchdev0").build().unwrap();
    let e = client.get(server.url("/")).send().await.unwrap_err();
    assert!(e.is_connect(), "{e}");
    assert!(e.to_string().contains("nosuchdev0"), "{e}");
    let s = client.stats().total;
    assert_eq!((s.open, s.created, s.closed), (0, 1, 1), "{s:?}");
}

async fn tcp_keepalive_is_on_at_15_s_unless_turned_off(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    get_body(&client, mode.url(&server, "/")).await;
    let ours = held_client_sockets(&server);
    assert_eq!(ours.len(), 1, "{ours:?}");
    let next_probe = ours[0]
        .keepalive
        .expect("a keep-alive timer on the idle socket");
    assert!(next_probe <= Duration::from_secs(15), "{next_probe:?}");

    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder().tcp_keepalive(None));
    get_body(&client, mode.url(&server, "/")).await;
    let ours = held_client_sockets(&server);
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert_eq!(ours[0].keepalive, None, "{ours:?}");
}
per_mode!(tcp_keepalive_is_on_at_15_s_unless_turned_off: h1, h1_tls, h2);
