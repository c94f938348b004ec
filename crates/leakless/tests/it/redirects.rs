//! Redirects: followed by default (at most 10), Go's method and header
//! rules, bad Locations as errors that name the chain, and each hop's
//! connection given back before the next asks for one. Every scenario ends
//! with the pool's books checked against themselves and the kernel.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use leakless::{
    Client, CloseReason, Error, Event, Observer, RequestInfo, StatusCode, redirect::Policy,
};
use leakless_testserver::Reply;

use crate::support::*;

/// The error `url` ends in, which must be a redirect error, and its text.
async fn redirect_error(client: &Client, url: String) -> (Error, String) {
    let e = client.get(url).send().await.unwrap_err();
    assert!(e.is_redirect(), "{e:?}");
    let msg = e.to_string();
    (e, msg)
}

/// The URLs of `paths` on `server`, as an error message lists a chain.
fn chain(mode: Mode, server: &TestServer, paths: &[&str]) -> String {
    let urls: Vec<String> = paths.iter().map(|p| mode.url(server, p)).collect();
    urls.join(" -> ")
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

/// Go's and reqwest's default: ten redirects followed, the eleventh an
/// error naming the chain.
async fn the_default_policy_follows_ten_redirects_and_not_eleven(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let res = client
        .get(mode.url(&server, "/?redirects=10"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.url().as_str(), mode.url(&server, "/"));
    res.bytes().await.unwrap();
    assert_eq!(client.stats().total.redirects, 10);
    let (e, msg) = redirect_error(&client, mode.url(&server, "/?redirects=11")).await;
    assert!(msg.contains("more than 10 redirects"), "{msg}");
    assert_eq!(
        e.url().unwrap().as_str(),
        mode.url(&server, "/?redirects=1")
    );
    assert_eq!(client.stats().total.redirects, 20);
    assert_eq!(server.stats().requests, 11 + 11);
    assert_accounted(&client, &[&server]).await;
}
per_mode!(the_default_policy_follows_ten_redirects_and_not_eleven: h1, h1_tls, h2, h2c);

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
/// have bodies: the observer sees each hop's redirect, its connection
/// asked for, and given back (drained) before the next hop asks for one,
/// so no hop ever waits for a slot.
async fn the_observer_sees_each_hop_give_its_connection_back_before_the_next_asks(mode: Mode) {
    let hop = |to: &str| redirect_to(302, to).body_size(1000);
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
per_mode!(the_observer_sees_each_hop_give_its_connection_back_before_the_next_asks: h1, h1_tls, h2, h2c);

/// A redirect whose body is past `drain_limit` (and past an HTTP/2
/// stream's window), followed on a host capped at one connection: what is
/// left of it is given up before the next hop asks for a connection.
async fn follow_a_redirect_too_large_to_drain(mode: Mode) -> (Client, TestServer) {
    let big = redirect_to(301, "/end").body_size(2_000_000);
    let server = mode.server(Config::new().route("/big", big));
    let client = mode.client(
        &server,
        Client::builder()
            .max_conns_per_host(1)
            .pool_wait_timeout(Duration::from_secs(2)),
    );
    let res = client.get(mode.url(&server, "/big")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.url().as_str(), mode.url(&server, "/end"));
    res.bytes().await.unwrap();
    assert_eq!(client.stats().total.redirects, 1);
    (client, server)
}

/// HTTP/1.1: the connection is closed before the next hop dials.
async fn a_redirect_too_large_to_drain_is_closed_before_the_next_hop(mode: Mode) {
    let (client, server) = follow_a_redirect_too_large_to_drain(mode).await;
    let s = client.stats().total;
    assert_eq!((s.created, s.closed), (2, 1), "{s:?}");
    assert_eq!(s.closed_by.get(CloseReason::DrainFailed), 1, "{s:?}");
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_redirect_too_large_to_drain_is_closed_before_the_next_hop: h1, h1_tls);

/// HTTP/2: only the redirect's stream is reset; the next hop goes on the
/// same connection.
async fn a_redirect_too_large_to_drain_resets_only_its_stream(mode: Mode) {
    let (client, server) = follow_a_redirect_too_large_to_drain(mode).await;
    let s = client.stats().total;
    assert_eq!((s.created, s.closed), (1, 0), "{s:?}");
    assert_eq!(server.stats().accepted, 1);
    wait_for(
        "the server to see the redirect's stream reset",
        || server.stats().h2_streams_reset,
        |&n| n == 1,
    )
    .await;
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_redirect_too_large_to_drain_resets_only_its_stream: h2, h2c);

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
    let (e, msg) = redirect_error(&client, mode.url(&server, "/x?redirects=3")).await;
    let paths = ["/x?redirects=3", "/x?redirects=2", "/x?redirects=1"];
    assert!(msg.contains(&chain(mode, &server, &paths)), "{msg}");
    assert!(msg.contains("more than 2 redirects"), "{msg}");
    assert_eq!(e.url().unwrap().as_str(), mode.url(&server, paths[2]));
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
    let (_, msg) = redirect_error(&client, mode.url(&server, "/p?redirects=1")).await;
    assert!(msg.contains("no redirects to /p, please"), "{msg}");
    assert!(msg.contains(&mode.url(&server, "/p?redirects=1")), "{msg}");
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
            let req = client
                .request(method.clone(), &url)
                .header("content-type", "text/plain")
                .body("the body");
            read_body(req).await;
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
        let req = client
            .patch(url)
            .header("content-type", "text/plain")
            .body("again");
        assert_eq!(read_body(req).await, "again");
        let last = last_request(&server);
        assert_eq!(last.method, "PATCH");
        assert_eq!(last.header("content-type"), Some("text/plain"));
    }
    assert_eq!(client.stats().total.redirects, 2);
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_307_or_308_sends_the_same_method_and_body_again: h1, h1_tls, h2, h2c);

/// Go: a streamed body cannot be sent again, so its 307 or 308 is the
/// answer, not an error.
async fn a_307_or_308_for_a_streamed_body_is_returned_as_it_is(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    for status in [307, 308] {
        let chunks: Vec<Result<leakless::Bytes, std::io::Error>> = vec![Ok("streamed".into())];
        let stream = futures_util::stream::iter(chunks);
        let res = client
            .post(mode.url(&server, &format!("/?redirects=1&redirect_status={status}")))
            .body(leakless::Body::wrap_stream(stream))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status);
        res.bytes().await.unwrap();
        assert_eq!(last_request(&server).body, b"streamed");
    }
    assert_eq!(server.stats().requests, 2);
    assert_eq!(client.stats().total.redirects, 0);
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_307_or_308_for_a_streamed_body_is_returned_as_it_is: h1, h1_tls, h2, h2c);

async fn bad_location(mode: Mode, location: Option<&str>, says: &str) {
    let hop = match location {
        Some(l) => redirect_to(302, l),
        None => Reply::new().status(302),
    };
    let server = mode.server(
        Config::new()
            .route("/a", redirect_to(307, "/b"))
            .route("/b", hop),
    );
    let client = mode.client(&server, Client::builder());
    let (_, msg) = redirect_error(&client, mode.url(&server, "/a")).await;
    let named = format!("302 answered by {}", chain(mode, &server, &["/a", "/b"]));
    assert!(msg.contains(&named), "{msg}");
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
    let slow = |to: &str| redirect_to(302, to).latency(hop);
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
    let here = mode
        .server(Config::new().route("/go", redirect_to(308, mode.url(&there, "/?redirects=1"))));
    let client = client_for_both(mode, &here, &there);
    read_body(client.get(mode.url(&here, "/go"))).await;
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
