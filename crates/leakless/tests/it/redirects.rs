//! Redirects: followed by default (at most 10), Go's method and header
//! rules, bad Locations as errors that name the chain, and each hop's
//! connection given back before the next asks for one. Every scenario ends
//! with the pool's books checked against themselves and the kernel.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use leakless::{Client, CloseReason, Event, Observer, RequestInfo, StatusCode, redirect::Policy};
use leakless_testserver::{RecordedRequest, Reply};

use crate::support::*;

/// The pool at rest agrees with itself and with the kernel: no dial, busy
/// connection or waiter left, and as many of our sockets still held to
/// `servers` as the pool says are open.
pub async fn assert_accounted(client: &Client, servers: &[&TestServer]) {
    let s = wait_for_stats(client, "nothing in flight", nothing_in_flight).await;
    assert_consistent(&s);
    let held = wait_for(
        "the kernel to agree with the pool",
        || {
            servers
                .iter()
                .map(|srv| held_client_sockets(srv).len())
                .sum::<usize>()
        },
        |&n| n == client.stats().total.open,
    )
    .await;
    assert_eq!(held, s.open, "{s:?}");
}

/// A client for `mode` that trusts both servers' CAs.
fn client_for_both(mode: Mode, a: &TestServer, b: &TestServer) -> Client {
    mode.builder(b, mode.builder(a, Client::builder()))
        .build()
        .unwrap()
}

fn last_request(server: &TestServer) -> RecordedRequest {
    server.requests().pop().expect("the server saw a request")
}

async fn a_chain_is_followed_on_one_connection_to_its_end(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let res = client
        .get(mode.url(&server, "/start?redirects=3&size=7"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.url().as_str(), mode.url(&server, "/start?size=7"));
    assert_eq!(res.text().await.unwrap(), "hellohe");
    let paths: Vec<String> = server.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        [
            "/start?redirects=3&size=7",
            "/start?redirects=2&size=7",
            "/start?redirects=1&size=7",
            "/start?size=7"
        ]
    );
    let s = client.stats().total;
    assert_eq!((s.redirects, s.created, s.reused), (3, 1, 3), "{s:?}");
    assert_eq!(server.stats().accepted, 1);
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_chain_is_followed_on_one_connection_to_its_end: h1, h1_tls, h2, h2c);

async fn the_url_of_a_response_not_redirected_is_the_one_requested(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let url = mode.url(&server, "/plain?n=1");
    let res = client.get(&url).send().await.unwrap();
    assert_eq!(res.url().as_str(), url);
    res.bytes().await.unwrap();
    assert_eq!(client.stats().total.redirects, 0);
    assert_accounted(&client, &[&server]).await;
}
per_mode!(the_url_of_a_response_not_redirected_is_the_one_requested: h1, h1_tls, h2, h2c);

/// Records which events each hop saw, in order.
#[derive(Clone, Default)]
struct Hops(Arc<Mutex<Vec<(u64, u32, String)>>>);

impl Observer for Hops {
    fn on_event(&self, req: &RequestInfo, event: &Event<'_>) {
        let what = match event {
            Event::Redirect { status, from, to } => {
                format!("redirect {} {from} -> {to}", status.as_u16())
            }
            Event::GetConn => "get".into(),
            Event::ConnReturned => "returned".into(),
            Event::ConnClosed { reason } => format!("closed {}", reason.as_str()),
            _ => return,
        };
        self.0.lock().unwrap().push((req.id, req.hop, what));
    }
}

/// A host capped at one connection serves a whole chain whose redirects
/// have bodies: each is drained and its connection back in the pool
/// before the next hop asks for one, so no hop ever waits for a slot.
async fn each_hop_gives_its_connection_back_before_the_next_asks(mode: Mode) {
    let hop = |to: &str| {
        Reply::new()
            .status(302)
            .header("Location", to)
            .body_size(1000)
    };
    let server = mode.server(Config::new().route("/a", hop("/b")).route("/b", hop("/c")));
    let hops = Hops::default();
    let client = mode.client(
        &server,
        Client::builder()
            .max_conns_per_host(1)
            .pool_wait_timeout(Duration::from_secs(2))
            .observer(hops.clone()),
    );
    let res = client.get(mode.url(&server, "/a")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "hello");
    let seen: Vec<(u32, String)> = hops
        .0
        .lock()
        .unwrap()
        .iter()
        .map(|(id, hop, what)| {
            assert_eq!(*id, 0, "one request, one id");
            (*hop, what.clone())
        })
        .collect();
    let (a, b, c) = (
        mode.url(&server, "/a"),
        mode.url(&server, "/b"),
        mode.url(&server, "/c"),
    );
    let expected: Vec<(u32, String)> = vec![
        (0, "get".into()),
        (0, "returned".into()),
        (1, format!("redirect 302 {a} -> {b}")),
        (1, "get".into()),
        (1, "returned".into()),
        (2, format!("redirect 302 {b} -> {c}")),
        (2, "get".into()),
        (2, "returned".into()),
    ];
    assert_eq!(seen, expected);
    let s = client.stats().total;
    assert_eq!((s.created, s.redirects), (1, 2), "{s:?}");
    assert!(s.pool_wait.count() == 3, "{s:?}");
    assert_accounted(&client, &[&server]).await;
}
per_mode!(each_hop_gives_its_connection_back_before_the_next_asks: h1, h1_tls, h2, h2c);

/// HTTP/1.1: a redirect whose body is past `drain_limit` is not drained:
/// its connection is closed before the next hop dials, so a host capped
/// at one connection still serves the chain.
async fn a_redirect_too_large_to_drain_is_closed_before_the_next_hop(mode: Mode) {
    let big = Reply::new()
        .status(301)
        .header("Location", "/end")
        .body_size(200_000);
    let server = mode.server(Config::new().route("/big", big));
    let client = mode.client(
        &server,
        Client::builder()
            .max_conns_per_host(1)
            .pool_wait_timeout(Duration::from_secs(2)),
    );
    let res = client.get(mode.url(&server, "/big")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.bytes().await.unwrap();
    let s = client.stats().total;
    assert_eq!((s.created, s.closed, s.redirects), (2, 1, 1), "{s:?}");
    assert_eq!(s.closed_by.get(CloseReason::DrainFailed), 1, "{s:?}");
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_redirect_too_large_to_drain_is_closed_before_the_next_hop: h1, h1_tls);

async fn policy_none_returns_the_redirect_as_it_is(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder().redirect(Policy::none()));
    let res = client
        .get(mode.url(&server, "/?redirects=1&redirect_status=308"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(res.headers()["location"], "/?redirect_status=308");
    res.bytes().await.unwrap();
    assert_eq!(server.stats().requests, 1);
    assert_eq!(client.stats().total.redirects, 0);
    assert_accounted(&client, &[&server]).await;
}
per_mode!(policy_none_returns_the_redirect_as_it_is: h1, h1_tls, h2, h2c);

async fn one_redirect_past_the_limit_is_an_error_naming_the_chain(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder().redirect(Policy::limited(2)));
    let e = client
        .get(mode.url(&server, "/x?redirects=3"))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_redirect(), "{e:?}");
    let msg = e.to_string();
    let chain = format!(
        "{} -> {} -> {}",
        mode.url(&server, "/x?redirects=3"),
        mode.url(&server, "/x?redirects=2"),
        mode.url(&server, "/x?redirects=1"),
    );
    assert!(msg.contains(&chain), "{msg}");
    assert!(msg.contains("more than 2 redirects"), "{msg}");
    assert_eq!(
        e.url().unwrap().as_str(),
        mode.url(&server, "/x?redirects=1")
    );
    assert_eq!(server.stats().requests, 3);
    assert_accounted(&client, &[&server]).await;
}
per_mode!(one_redirect_past_the_limit_is_an_error_naming_the_chain: h1, h1_tls, h2, h2c);

async fn a_custom_policy_sees_the_chain_and_can_stop(mode: Mode) {
    let server = mode.server(Config::new());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let policy = Policy::custom(move |a| {
        log.lock().unwrap().push((
            a.status().as_u16(),
            a.url().path().to_owned(),
            a.previous().len(),
        ));
        if a.previous().len() == 2 {
            a.stop()
        } else {
            a.follow()
        }
    });
    let client = mode.client(&server, Client::builder().redirect(policy));
    let res = client
        .get(mode.url(&server, "/p?redirects=5&redirect_status=303"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.url().as_str(),
        mode.url(&server, "/p?redirects=4&redirect_status=303")
    );
    drop(res);
    assert_eq!(
        *seen.lock().unwrap(),
        [(303, "/p".to_owned(), 1), (303, "/p".to_owned(), 2)]
    );
    assert_eq!(client.stats().total.redirects, 1);
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_custom_policy_sees_the_chain_and_can_stop: h1, h1_tls, h2, h2c);

async fn a_custom_policy_can_fail_the_request(mode: Mode) {
    let server = mode.server(Config::new());
    let policy = Policy::custom(|a| a.error("no redirects to /p, please"));
    let client = mode.client(&server, Client::builder().redirect(policy));
    let e = client
        .get(mode.url(&server, "/p?redirects=1"))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_redirect(), "{e:?}");
    assert!(e.to_string().contains("no redirects to /p, please"), "{e}");
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_custom_policy_can_fail_the_request: h1, h1_tls, h2, h2c);

async fn a_request_policy_overrides_the_clients(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder().redirect(Policy::none()));
    let res = client
        .get(mode.url(&server, "/?redirects=2"))
        .redirect(Policy::limited(5))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.bytes().await.unwrap();
    assert_eq!(client.stats().total.redirects, 2);
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_request_policy_overrides_the_clients: h1, h1_tls, h2, h2c);

async fn post_becomes_a_get_without_body_after_301_302_and_303(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    for status in [301, 302, 303] {
        let url = mode.url(&server, &format!("/?redirects=1&redirect_status={status}"));
        for method in [leakless::Method::POST, leakless::Method::PUT] {
            let res = client
                .request(method.clone(), &url)
                .header("content-type", "text/plain")
                .body("the body")
                .send()
                .await
                .unwrap();
            res.bytes().await.unwrap();
            let reqs = server.requests();
            let (first, last) = (&reqs[reqs.len() - 2], &reqs[reqs.len() - 1]);
            assert_eq!(
                (first.method.as_str(), &first.body[..]),
                (method.as_str(), &b"the body"[..])
            );
            assert_eq!(last.method, "GET", "{status} {method}");
            assert!(last.body.is_empty(), "{status}");
            assert_eq!(last.header("content-type"), None, "{status}");
            assert_eq!(last.header("content-length"), None, "{status}");
        }
    }
    assert_accounted(&client, &[&server]).await;
}
per_mode!(post_becomes_a_get_without_body_after_301_302_and_303: h1, h1_tls, h2, h2c);

async fn head_stays_head_after_a_303(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let res = client
        .head(mode.url(&server, "/?redirects=1&redirect_status=303"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(last_request(&server).method, "HEAD");
    drop(res);
    assert_accounted(&client, &[&server]).await;
}
per_mode!(head_stays_head_after_a_303: h1, h1_tls, h2, h2c);

async fn a_307_or_308_sends_the_same_method_and_body_again(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    for status in [307, 308] {
        let url = mode.url(
            &server,
            &format!("/?redirects=1&redirect_status={status}&echo=1"),
        );
        let res = client
            .patch(url)
            .header("content-type", "text/plain")
            .body("again")
            .send()
            .await
            .unwrap();
        assert_eq!(res.text().await.unwrap(), "again");
        let last = last_request(&server);
        assert_eq!(last.method, "PATCH");
        assert_eq!(last.header("content-type"), Some("text/plain"));
    }
    assert_eq!(client.stats().total.redirects, 2);
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_307_or_308_sends_the_same_method_and_body_again: h1, h1_tls, h2, h2c);

/// Go: a streamed body cannot be sent again, so its 307 is the answer,
/// not an error.
async fn a_307_for_a_streamed_body_is_returned_as_it_is(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let chunks: Vec<Result<leakless::Bytes, std::io::Error>> = vec![Ok("streamed".into())];
    let res = client
        .post(mode.url(&server, "/?redirects=1&redirect_status=307"))
        .body(leakless::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 307);
    res.bytes().await.unwrap();
    assert_eq!(server.stats().requests, 1);
    assert_eq!(last_request(&server).body, b"streamed");
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_307_for_a_streamed_body_is_returned_as_it_is: h1, h1_tls, h2, h2c);

const CREDENTIALS: [&str; 4] = [
    "authorization",
    "cookie",
    "proxy-authorization",
    "www-authenticate",
];

async fn send_with_credentials(client: &Client, url: String) {
    let res = client
        .get(url)
        .header("authorization", "Bearer secret")
        .header("cookie", "session=secret")
        .header("proxy-authorization", "Basic c2VjcmV0")
        .header("www-authenticate", "Basic realm=x")
        .header("x-other", "kept")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.bytes().await.unwrap();
}

async fn credentials_are_not_sent_to_another_port(mode: Mode) {
    let there = mode.server(Config::new());
    let to = mode.url(&there, "/landing");
    let here =
        mode.server(Config::new().route("/go", Reply::new().status(302).header("Location", to)));
    let client = client_for_both(mode, &here, &there);
    send_with_credentials(&client, mode.url(&here, "/go")).await;
    let first = last_request(&here);
    let landed = last_request(&there);
    for name in CREDENTIALS {
        assert!(first.header(name).is_some(), "{name}");
        assert_eq!(landed.header(name), None, "{name} went to another port");
    }
    assert_eq!(landed.header("x-other"), Some("kept"));
    assert_eq!(
        landed.header("referer"),
        Some(mode.url(&here, "/go").as_str())
    );
    assert_accounted(&client, &[&here, &there]).await;
}
per_mode!(credentials_are_not_sent_to_another_port: h1, h1_tls, h2, h2c);

async fn credentials_follow_a_redirect_on_the_same_origin(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    send_with_credentials(&client, mode.url(&server, "/?redirects=1")).await;
    let landed = last_request(&server);
    for name in CREDENTIALS {
        assert!(landed.header(name).is_some(), "{name}");
    }
    assert_accounted(&client, &[&server]).await;
}
per_mode!(credentials_follow_a_redirect_on_the_same_origin: h1, h1_tls, h2, h2c);

/// From https to http: credentials stay behind (another scheme) and no
/// Referer tells the cleartext server where the request came from.
async fn no_referer_or_credentials_go_from_https_to_http(mode: Mode) {
    let plain = Mode::H1.server(Config::new());
    let to = Mode::H1.url(&plain, "/landing");
    let secure =
        mode.server(Config::new().route("/go", Reply::new().status(301).header("Location", to)));
    let client = mode.client(&secure, Client::builder());
    send_with_credentials(&client, mode.url(&secure, "/go")).await;
    let landed = last_request(&plain);
    assert_eq!(landed.header("referer"), None);
    for name in CREDENTIALS {
        assert_eq!(landed.header(name), None, "{name}");
    }
    assert_accounted(&client, &[&secure, &plain]).await;
}
per_mode!(no_referer_or_credentials_go_from_https_to_http: h1_tls, h2);

async fn bad_location(mode: Mode, location: Option<&str>, says: &str) {
    let mut hop = Reply::new().status(302);
    if let Some(l) = location {
        hop = hop.header("Location", l);
    }
    let server = mode.server(
        Config::new()
            .route("/a", Reply::new().status(307).header("Location", "/b"))
            .route("/b", hop),
    );
    let client = mode.client(&server, Client::builder());
    let e = client
        .get(mode.url(&server, "/a"))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_redirect(), "{e:?}");
    let msg = e.to_string();
    let chain = format!(
        "302 answered by {} -> {}",
        mode.url(&server, "/a"),
        mode.url(&server, "/b")
    );
    assert!(msg.contains(&chain), "{msg}");
    assert!(msg.contains(says), "{msg}");
    assert_accounted(&client, &[&server]).await;
}

async fn a_redirect_without_location_is_an_error_naming_the_chain(mode: Mode) {
    bad_location(mode, None, "no Location").await;
}
per_mode!(a_redirect_without_location_is_an_error_naming_the_chain: h1, h1_tls, h2, h2c);

async fn a_location_that_is_not_a_url_is_an_error_naming_the_chain(mode: Mode) {
    bad_location(mode, Some("http://[::1"), "is not a URL").await;
}
per_mode!(a_location_that_is_not_a_url_is_an_error_naming_the_chain: h1, h1_tls, h2, h2c);

async fn a_location_that_is_not_http_is_an_error_naming_the_chain(mode: Mode) {
    bad_location(mode, Some("ftp://127.0.0.1/file"), "not an http(s) URL").await;
}
per_mode!(a_location_that_is_not_http_is_an_error_naming_the_chain: h1, h1_tls, h2, h2c);

/// Three hops of 1 s each cannot fit a 2.5 s total deadline, though each
/// alone would: the request fails at its second or third hop, however
/// slow the machine makes each one.
async fn the_total_timeout_spans_every_hop(mode: Mode) {
    let hop = Duration::from_secs(1);
    let slow = |to: &str| Reply::new().status(302).header("Location", to).latency(hop);
    let server = mode.server(
        Config::new()
            .route("/a", slow("/b"))
            .route("/b", slow("/c"))
            .route("/c", Reply::new().latency(hop)),
    );
    let total = Duration::from_millis(2500);
    let client = mode.client(&server, Client::builder().timeout(total));
    let start = std::time::Instant::now();
    let e = client
        .get(mode.url(&server, "/a"))
        .send()
        .await
        .unwrap_err();
    assert!(start.elapsed() >= total, "{:?}", start.elapsed());
    assert!(e.is_timeout(), "{e:?}");
    assert_eq!(e.phase(), Some(leakless::Phase::Total), "{e:?}");
    let at = e.url().unwrap().path().to_owned();
    assert!(at == "/b" || at == "/c", "timed out at {at}");
    assert_accounted(&client, &[&server]).await;
}
per_mode!(the_total_timeout_spans_every_hop: h1, h1_tls, h2, h2c);

async fn redirects_are_counted_on_the_host_that_answered_them(mode: Mode) {
    let there = mode.server(Config::new());
    let to = mode.url(&there, "/?redirects=1");
    let here =
        mode.server(Config::new().route("/go", Reply::new().status(308).header("Location", to)));
    let client = client_for_both(mode, &here, &there);
    client
        .get(mode.url(&here, "/go"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let stats = client.stats();
    let count = |srv: &TestServer| stats.host(&mode.host_key(srv.addr())).unwrap().redirects;
    assert_eq!(
        (count(&here), count(&there), stats.total.redirects),
        (1, 1, 2)
    );
    assert!(
        client
            .prometheus_text()
            .contains("leakless_redirects_followed_total")
    );
    assert_accounted(&client, &[&here, &there]).await;
}
per_mode!(redirects_are_counted_on_the_host_that_answered_them: h1, h1_tls, h2, h2c);
