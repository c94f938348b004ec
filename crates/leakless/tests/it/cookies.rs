//! Cookies: a jar that keeps what every hop set and sends it back where
//! RFC 6265 says it applies, so a chain through another host carries each
//! host only its own; a caller's own `Cookie` header stays behind on a
//! redirect to another origin (see redirect_security.rs). (That a `Secure`
//! cookie never goes to http cannot be shown on loopback: the jar counts
//! http://127.0.0.1 as a secure context, as browsers do.)

use std::sync::Arc;

use leakless::{Client, cookie::Jar};
use leakless_testserver::Reply;

use crate::support::*;

/// The cookies the last request for `path` carried, sorted (a jar's
/// order is its own).
fn cookie_of(server: &TestServer, path: &str) -> Option<String> {
    let line = server
        .requests()
        .into_iter()
        .rfind(|r| r.path == path)?
        .header("cookie")?
        .to_owned();
    let mut pairs: Vec<&str> = line.split("; ").collect();
    pairs.sort_unstable();
    Some(pairs.join("; "))
}

/// A redirect to `to` that sets `cookie` for every path.
fn hop(to: &str, cookie: &str) -> Reply {
    redirect_to(302, to).header("Set-Cookie", format!("{cookie}; Path=/"))
}

async fn set_cookie_from_every_hop_is_kept_and_sent_back(mode: Mode) {
    let server = mode.server(
        Config::new()
            .route("/a", hop("/b", "a=1"))
            .route("/b", hop("/c", "b=2")),
    );
    let client = mode.client(&server, Client::builder().cookie_store(true));
    let res = client.get(mode.url(&server, "/a")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "hello");
    assert_eq!(cookie_of(&server, "/a"), None);
    assert_eq!(cookie_of(&server, "/b").as_deref(), Some("a=1"));
    assert_eq!(cookie_of(&server, "/c").as_deref(), Some("a=1; b=2"));
    get_body(&client, mode.url(&server, "/later")).await;
    assert_eq!(cookie_of(&server, "/later").as_deref(), Some("a=1; b=2"));
    assert_accounted(&client, &[&server]).await;
}
per_mode!(set_cookie_from_every_hop_is_kept_and_sent_back: h1, h1_tls, h2, h2c);

/// 127.0.0.1 sets `a`, redirects to `localhost` (the same server, through
/// `resolve`), which sets `b` and sends the chain back: each host gets
/// only the cookie it set.
async fn a_chain_through_another_host_carries_each_host_only_its_cookies(mode: Mode) {
    let server = mode.server(Config::new());
    let (here, there) = (mode.url(&server, "/c"), mode.url(&server, "/b"));
    let there = there.replace("127.0.0.1", "localhost");
    server.update_config(|c| {
        *c = c
            .clone()
            .route("/a", hop(&there, "a=1"))
            .route("/b", hop(&here, "b=2"));
    });
    let client = mode.client(
        &server,
        Client::builder()
            .cookie_store(true)
            .resolve("localhost", server.addr()),
    );
    let res = client.get(mode.url(&server, "/a")).send().await.unwrap();
    assert_eq!(res.url().as_str(), here);
    assert_eq!(res.text().await.unwrap(), "hello");
    assert_eq!(cookie_of(&server, "/b"), None, "a=1 is 127.0.0.1's");
    assert_eq!(cookie_of(&server, "/c").as_deref(), Some("a=1"));
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_chain_through_another_host_carries_each_host_only_its_cookies: h1, h1_tls, h2, h2c);

async fn a_shared_jar_sends_its_cookies_and_a_caller_cookie_wins(mode: Mode) {
    let server = mode.server(Config::new());
    let jar = Arc::new(Jar::default());
    let url = mode.url(&server, "/");
    jar.add_cookie_str("session=abc", &url.parse().unwrap());
    let client = mode.client(&server, Client::builder().cookie_provider(jar.clone()));
    get_body(&client, mode.url(&server, "/one")).await;
    assert_eq!(cookie_of(&server, "/one").as_deref(), Some("session=abc"));
    read_body(
        client
            .get(mode.url(&server, "/two"))
            .header("cookie", "mine=1"),
    )
    .await;
    assert_eq!(cookie_of(&server, "/two").as_deref(), Some("mine=1"));
    let plain = mode.client(&server, Client::builder());
    assert_accounted(&client, &[&server]).await;
    drop(client);
    get_body(&plain, mode.url(&server, "/three")).await;
    assert_eq!(cookie_of(&server, "/three"), None, "no store, no cookies");
    assert_accounted(&plain, &[&server]).await;
}
per_mode!(a_shared_jar_sends_its_cookies_and_a_caller_cookie_wins: h1, h1_tls, h2, h2c);
