//! Through real proxies (squid, tinyproxy, dante), started per test on
//! free loopback ports: forward and CONNECT, SOCKS5 with local or remote
//! resolution and with credentials, pool keys that include the proxy,
//! the cap held through the proxy in the kernel's table, and errors that
//! name the proxy, the target and the proxy's answer.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use leakless::{
    CloseReason, ErrorKind, Event, Observer, Phase, Proxy, RequestInfo,
    dns::{Name, Resolve, Resolving},
};

use crate::support::{proxies::*, *};

/// Our local addresses of the connections requests got (to the proxy).
#[derive(Clone, Default)]
struct Locals(Arc<Mutex<BTreeSet<SocketAddr>>>);

impl Observer for Locals {
    fn on_event(&self, _: &RequestInfo, event: &Event<'_>) {
        if let Event::GotConn {
            local_addr: Some(a),
            ..
        } = event
        {
            self.0.lock().unwrap().insert(*a);
        }
    }
}

fn key(mode: Mode, server: &TestServer, proxy: &str) -> String {
    format!("{} via {proxy}", mode.host_key(server.addr()))
}

#[tokio::test]
async fn http_goes_to_squid_in_absolute_form_on_one_reused_connection() {
    let Some(squid) = squid() else { return };
    let server = TestServer::start(Config::new());
    let client = Client::builder()
        .proxy(Proxy::http(squid.url("http", None)).unwrap())
        .build()
        .unwrap();
    for _ in 0..3 {
        let res = client.get(server.url("/")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{}", squid.logs());
        assert_eq!(res.text().await.unwrap(), "hello");
    }
    let stats = client.stats();
    let proxied = stats
        .host(&key(Mode::H1, &server, &squid.url("http", None)))
        .unwrap_or_else(|| panic!("{:?}", stats.hosts.keys()));
    assert_eq!((proxied.created, proxied.reused), (1, 2), "{proxied:?}");
    assert_eq!(server.stats().requests, 3);
}

/// HTTPS (h1 or h2 by ALPN) inside a CONNECT tunnel through squid: one
/// tunnel per target, reused by that target's requests only.
async fn https_tunnels_through_squid_one_tunnel_per_target(mode: Mode) {
    let Some(squid) = squid() else { return };
    let a = mode.server(Config::new());
    let b = mode.server(Config::new());
    let proxy_url = squid.url("http", None);
    let builder = Client::builder().proxy(Proxy::all(&proxy_url).unwrap());
    let builder = mode.builder(&b, mode.builder(&a, builder));
    let client = builder.build().unwrap();
    for server in [&a, &b, &a, &b] {
        let res = client.get(mode.url(server, "/")).send().await.unwrap();
        assert_eq!(res.version(), mode.version());
        assert_eq!(res.text().await.unwrap(), "hello");
    }
    assert_eq!((a.stats().accepted, b.stats().accepted), (1, 1));
    let stats = client.stats();
    for server in [&a, &b] {
        let s = stats.host(&key(mode, server, &proxy_url)).unwrap();
        assert_eq!((s.created, s.open), (1, 1), "{s:?}");
    }
    assert_eq!(stats.total.created, 2);
    // The Prometheus labels say the same.
    let text = client.prometheus_text();
    assert!(
        text.contains(&format!("host=\"{}\"", key(mode, &a, &proxy_url))),
        "{text}"
    );
}
per_mode!(https_tunnels_through_squid_one_tunnel_per_target: h1_tls, h2);

/// A custom proxy that goes through squid only once switched on.
async fn a_direct_connection_is_never_reused_for_a_proxied_request(mode: Mode) {
    let Some(squid) = squid() else { return };
    let server = mode.server(Config::new());
    let on = Arc::new(AtomicBool::new(false));
    let proxy_url = squid.url("http", None);
    let proxy = Proxy::custom({
        let (on, url) = (on.clone(), proxy_url.clone());
        move |_: &http::Uri| on.load(Ordering::Relaxed).then(|| url.clone())
    });
    let client = mode.client(&server, Client::builder().proxy(proxy));
    let url = mode.url(&server, "/");
    assert_eq!(get_body(&client, &url).await, "hello");
    on.store(true, Ordering::Relaxed);
    assert_eq!(get_body(&client, &url).await, "hello");
    assert_eq!(get_body(&client, &url).await, "hello");
    let stats = client.stats();
    let direct = stats.host(&mode.host_key(server.addr())).unwrap();
    let proxied = stats.host(&key(mode, &server, &proxy_url)).unwrap();
    assert_eq!((direct.created, direct.reused), (1, 0), "{direct:?}");
    assert_eq!((proxied.created, proxied.reused), (1, 1), "{proxied:?}");
    assert_eq!(server.stats().accepted, 2);
}
per_mode!(a_direct_connection_is_never_reused_for_a_proxied_request: h1, h1_tls, h2);

/// `tunnel(true)`: http:// goes through CONNECT too, so h2c works inside.
async fn http_through_a_tunnel_when_asked(mode: Mode) {
    let Some(squid) = squid() else { return };
    let server = mode.server(Config::new());
    let proxy = Proxy::all(squid.url("http", None)).unwrap().tunnel(true);
    let client = mode.client(&server, Client::builder().proxy(proxy));
    for _ in 0..2 {
        let res = client.get(mode.url(&server, "/")).send().await.unwrap();
        assert_eq!(res.version(), mode.version());
        assert_eq!(res.text().await.unwrap(), "hello");
    }
    assert_eq!(client.stats().total.created, 1);
    assert_eq!(server.stats().accepted, 1);
}
per_mode!(http_through_a_tunnel_when_asked: h1, h2c);

async fn the_cap_holds_through_the_proxy(mode: Mode) {
    let Some(squid) = squid() else { return };
    let server = mode.server(Config::new().latency(Duration::from_millis(50)));
    let locals = Locals::default();
    let proxy = Proxy::all(squid.url("http", None)).unwrap();
    let client = mode.client(
        &server,
        Client::builder()
            .proxy(proxy)
            .max_conns_per_host(2)
            .observer(locals.clone()),
    );
    let requests: Vec<_> = (0..12)
        .map(|_| {
            let (c, u) = (client.clone(), mode.url(&server, "/"));
            tokio::spawn(async move { get_body(&c, u).await })
        })
        .collect();
    // Sample our sockets to the proxy while the requests run.
    let mut most = 0;
    for _ in 0..200 {
        let seen: Vec<SocketAddr> = locals.0.lock().unwrap().iter().copied().collect();
        let held = sockets(seen, squid.addr)
            .into_iter()
            .filter(|s| s.is_held())
            .count();
        most = most.max(held);
        let s = client.stats().total;
        assert!(s.open <= 2, "{s:?}");
        if requests.iter().all(|r| r.is_finished()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for r in requests {
        assert_eq!(bounded(r).await.unwrap(), "hello");
    }
    let seen = locals.0.lock().unwrap().clone();
    assert!(
        (1..=2).contains(&seen.len()),
        "{} connections to the proxy at cap 2: {seen:?}",
        seen.len()
    );
    assert!(most <= 2, "{most} sockets to the proxy at once");
    assert_eq!(held_count(&seen, squid.addr), seen.len());
    let s = client.stats().total;
    assert_eq!(s.created, seen.len() as u64, "{s:?}");
}
// HTTP/2 multiplexes on one connection whatever the cap; its observer
// events carry no local address to find the socket by.
per_mode!(multi_thread the_cap_holds_through_the_proxy: h1, h1_tls);

fn held_count(locals: &BTreeSet<SocketAddr>, remote: SocketAddr) -> usize {
    sockets(locals.iter().copied(), remote)
        .iter()
        .filter(|s| s.is_held())
        .count()
}

#[tokio::test]
async fn a_407_to_connect_names_proxy_target_and_status_and_the_socket_is_counted_closed() {
    let Some(squid) = squid_with_auth() else {
        return;
    };
    let server = Mode::H1Tls.server(Config::new());
    for (creds, says) in [
        (None, "wants credentials"),
        (
            Some((SQUID_USER.0, "wrong")),
            "did not accept the credentials",
        ),
    ] {
        let proxy = Proxy::https(squid.url("http", creds)).unwrap();
        let client = Mode::H1Tls.client(&server, Client::builder().proxy(proxy));
        let e = client
            .get(Mode::H1Tls.url(&server, "/"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Proxy, "{e}");
        assert_eq!(e.phase(), Some(Phase::ProxyConnect), "{e}");
        let text = e.to_string();
        let (proxy, target) = (squid.url("http", None), server.addr().to_string());
        for part in [proxy.as_str(), target.as_str(), "407", says] {
            assert!(text.contains(part), "{part:?} missing from: {text}");
        }
        assert!(
            !text.contains("wrong") && !text.contains("s3cret"),
            "{text}"
        );
        let s = client.stats().total;
        assert_eq!((s.open, s.created, s.closed), (0, 1, 1), "{s:?}");
        assert_eq!(s.closed_by.get(CloseReason::Error), 1);
    }
    assert_eq!(server.stats().accepted, 0);
    // With the right credentials the tunnel opens.
    let proxy = Proxy::https(squid.url("http", Some(SQUID_USER))).unwrap();
    let client = Mode::H1Tls.client(&server, Client::builder().proxy(proxy));
    assert_eq!(
        get_body(&client, Mode::H1Tls.url(&server, "/")).await,
        "hello"
    );
}

#[tokio::test]
async fn forward_requests_carry_the_proxy_credentials() {
    let Some(tiny) = tinyproxy(Some(("alice", "s3cret"))) else {
        return;
    };
    let server = TestServer::start(Config::new());
    // Without them the proxy's 407 is the response, as from any server.
    let client = Client::builder()
        .proxy(Proxy::http(tiny.url("http", None)).unwrap())
        .build()
        .unwrap();
    let res = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 407);
    drop(res);
    let client = Client::builder()
        .proxy(
            Proxy::http(tiny.url("http", None))
                .unwrap()
                .basic_auth("alice", "s3cret"),
        )
        .build()
        .unwrap();
    assert_eq!(get_body(&client, server.url("/")).await, "hello");
    assert_eq!(server.stats().requests, 1);
}

/// Fails every lookup: proves the proxy resolved the name.
struct NoDns;

impl Resolve for NoDns {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move { Err(format!("this client resolves nothing ({name})").into()) })
    }
}

async fn socks5h_lets_dante_resolve_the_name(mode: Mode) {
    let Some(dante) = dante(false) else { return };
    let server = mode.server(Config::new());
    let proxy_url = dante.url("socks5h", None);
    let client = mode.client(
        &server,
        Client::builder()
            .proxy(Proxy::all(&proxy_url).unwrap())
            .dns_resolver(Arc::new(NoDns)),
    );
    let scheme = if mode.is_tls() { "https" } else { "http" };
    let url = format!("{scheme}://localhost:{}/", server.addr().port());
    for _ in 0..2 {
        let res = client.get(&url).send().await.unwrap();
        assert_eq!(res.version(), mode.version());
        assert_eq!(res.text().await.unwrap(), "hello");
    }
    assert_eq!(server.stats().accepted, 1);
    let key = format!(
        "{}localhost:{} via {proxy_url}",
        if mode.is_tls() { "https://" } else { "" },
        server.addr().port()
    );
    assert!(
        client.stats().hosts.contains_key(&key),
        "{:?}",
        client.stats().hosts.keys()
    );
}
per_mode!(socks5h_lets_dante_resolve_the_name: h1, h1_tls, h2);

async fn socks5_resolves_the_name_here(mode: Mode) {
    let Some(dante) = dante(false) else { return };
    let server = mode.server(Config::new());
    // A name only this client knows: dante could not resolve it.
    let client = mode.client(
        &server,
        Client::builder()
            .proxy(Proxy::all(dante.url("socks5", None)).unwrap())
            .resolve("localhost", server.addr()),
    );
    let scheme = if mode.is_tls() { "https" } else { "http" };
    let url = format!("{scheme}://localhost:{}/", server.addr().port());
    assert_eq!(get_body(&client, &url).await, "hello");
    let client = mode.client(
        &server,
        Client::builder()
            .proxy(Proxy::all(dante.url("socks5", None)).unwrap())
            .dns_resolver(Arc::new(NoDns)),
    );
    let e = client.get(&url).send().await.unwrap_err();
    assert!(e.to_string().contains("resolves nothing"), "{e}");
}
per_mode!(socks5_resolves_the_name_here: h1, h1_tls);

async fn socks5_with_a_password(mode: Mode) {
    let Some(dante) = dante(true) else { return };
    let server = mode.server(Config::new());
    let url = mode.url(&server, "/");
    let client = mode.client(
        &server,
        Client::builder().proxy(Proxy::all(dante.url("socks5", Some(SOCKS_USER))).unwrap()),
    );
    assert_eq!(get_body(&client, &url).await, "hello", "{}", dante.logs());
    for creds in [None, Some((SOCKS_USER.0, "wrong"))] {
        let client = mode.client(
            &server,
            Client::builder().proxy(Proxy::all(dante.url("socks5", creds)).unwrap()),
        );
        let e = client.get(&url).send().await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Proxy, "{e}");
        let text = e.to_string();
        assert!(
            text.contains(&dante.url("socks5", None)) && text.contains(&server.addr().to_string()),
            "{text}"
        );
        let s = client.stats().total;
        assert_eq!((s.open, s.created, s.closed), (0, 1, 1), "{s:?}");
    }
    assert_eq!(server.stats().accepted, 1);
}
per_mode!(socks5_with_a_password: h1, h1_tls);

#[tokio::test]
async fn a_proxy_that_never_answers_connect_times_out_in_its_own_phase() {
    // Accepts, then says nothing.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_addr = silent.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let client = Client::builder()
        .proxy(Proxy::all(format!("http://{proxy_addr}")).unwrap())
        .connect_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let e = client
        .get("https://example.test/")
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout(), "{e}");
    assert_eq!(e.phase(), Some(Phase::ProxyConnect), "{e}");
    let text = e.to_string();
    assert!(
        text.contains(&proxy_addr.to_string()) && text.contains("example.test:443"),
        "{text}"
    );
    assert!(text.contains("connect_timeout"), "{text}");
    let s = client.stats().total;
    assert_eq!((s.open, s.created, s.closed), (0, 1, 1), "{s:?}");
    hold.abort();
}

#[tokio::test]
async fn proxies_come_from_the_environment_and_loopback_stays_direct() {
    let Some(squid) = squid() else { return };
    let server = TestServer::start(Config::new());
    let proxy_url = squid.url("http", None);
    let out = run_alone_in_a_fresh_process(
        "proxy::environment_child",
        &[
            ("HTTP_PROXY", &proxy_url),
            ("NO_PROXY", "example.com"),
            ("LEAKLESS_TEST_PORT", &server.addr().port().to_string()),
        ],
        Duration::from_secs(60),
    );
    let port = server.addr().port();
    assert!(out.contains(&format!("127.0.0.1:{port}\n")), "{out}");
    assert!(
        out.contains(&format!("{SQUID_ONLY_NAME}:{port} via {proxy_url}\n")),
        "{out}"
    );
    assert_eq!(server.stats().requests, 2);
}

#[tokio::test]
#[ignore = "run by proxies_come_from_the_environment_and_loopback_stays_direct in a process of its own"]
async fn environment_child() {
    let port = std::env::var("LEAKLESS_TEST_PORT").unwrap();
    let client = Client::new();
    // Loopback never goes through a proxy from the environment (Go's rule).
    let direct = format!("http://127.0.0.1:{port}/");
    assert_eq!(get_body(&client, direct).await, "hello");
    let proxied = format!("http://{SQUID_ONLY_NAME}:{port}/");
    assert_eq!(get_body(&client, proxied).await, "hello");
    for key in client.stats().hosts.keys() {
        println!("{key}");
    }
}

/// `https://` proxy URLs: TLS to the proxy (nginx terminating TLS in
/// front of squid), then CONNECT and the target's own TLS inside it, or
/// absolute-form requests for http://.
async fn an_https_proxy_is_reached_over_tls(mode: Mode) {
    let Some(squid) = squid() else { return };
    let ca = TestCa::new();
    let Some(front) = tls_front(&ca, squid.addr) else {
        return;
    };
    let server = mode.server(Config::new());
    let proxy_url = format!("https://localhost:{}", front.addr.port());
    let builder = Client::builder()
        .proxy(Proxy::all(&proxy_url).unwrap())
        .add_root_certificate(leakless::Certificate::from_der(ca.ca_der()));
    let client = mode.client(&server, builder);
    for _ in 0..2 {
        let res = client.get(mode.url(&server, "/")).send().await.unwrap();
        assert_eq!(res.version(), mode.version());
        assert_eq!(res.text().await.unwrap(), "hello", "{}", front.logs());
    }
    let stats = client.stats();
    let s = stats
        .host(&key(mode, &server, &proxy_url))
        .unwrap_or_else(|| panic!("{:?}", stats.hosts.keys()));
    assert_eq!((s.created, s.reused), (1, 1), "{s:?}");
}
per_mode!(an_https_proxy_is_reached_over_tls: h1, h1_tls, h2);
