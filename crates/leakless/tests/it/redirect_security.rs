//! What a redirect does not carry to another origin: the caller's
//! credentials (`Authorization`, `Cookie`, `Proxy-Authorization`,
//! `WWW-Authenticate`) stay behind when the host, port or scheme changes,
//! and no `Referer` goes from https to http. Every scenario ends with the
//! pool's books checked against themselves and the kernel.

use leakless::Client;
use leakless_testserver::RecordedRequest;

use crate::support::*;

const CREDENTIALS: [&str; 4] = [
    "authorization",
    "cookie",
    "proxy-authorization",
    "www-authenticate",
];

/// GETs `url`, which redirects, with every credential header and one
/// other; returns the request `landed_on` saw last (the redirect's
/// target).
async fn land_with_credentials(
    client: &Client,
    url: String,
    landed_on: &TestServer,
) -> RecordedRequest {
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
    let landed = last_request(landed_on);
    assert_eq!(landed.path, "/landing");
    assert_eq!(landed.header("x-other"), Some("kept"));
    landed
}

fn assert_no_credentials(landed: &RecordedRequest) {
    for name in CREDENTIALS {
        assert_eq!(landed.header(name), None, "{name} went to another origin");
    }
}

async fn credentials_follow_a_redirect_on_the_same_origin(mode: Mode) {
    let server = mode.server(Config::new().route("/go", redirect_to(302, "/landing")));
    let client = mode.client(&server, Client::builder());
    let landed = land_with_credentials(&client, mode.url(&server, "/go"), &server).await;
    for name in CREDENTIALS {
        assert!(landed.header(name).is_some(), "{name}");
    }
    assert_accounted(&client, &[&server]).await;
}
per_mode!(credentials_follow_a_redirect_on_the_same_origin: h1, h1_tls, h2, h2c);

/// 127.0.0.1 redirects to `localhost` on the same port and scheme (the
/// same server, through the client's `resolve`): another host, so the
/// credentials stay behind.
async fn credentials_are_not_sent_to_another_host(mode: Mode) {
    let server = mode.server(Config::new());
    let elsewhere = mode
        .url(&server, "/landing")
        .replace("127.0.0.1", "localhost");
    server.update_config(|c| *c = c.clone().route("/go", redirect_to(302, &elsewhere)));
    let client = mode.client(
        &server,
        Client::builder().resolve("localhost", server.addr()),
    );
    let landed = land_with_credentials(&client, mode.url(&server, "/go"), &server).await;
    assert_no_credentials(&landed);
    let hosts: Vec<String> = client.stats().hosts.into_keys().collect();
    let port = server.addr().port();
    let scheme = if mode.is_tls() { "https://" } else { "" };
    assert_eq!(
        hosts,
        [
            format!("{scheme}127.0.0.1:{port}"),
            format!("{scheme}localhost:{port}")
        ],
        "one connection per host"
    );
    assert_accounted(&client, &[&server]).await;
}
per_mode!(credentials_are_not_sent_to_another_host: h1, h1_tls, h2, h2c);

async fn credentials_are_not_sent_to_another_port(mode: Mode) {
    let there = mode.server(Config::new());
    let here =
        mode.server(Config::new().route("/go", redirect_to(302, mode.url(&there, "/landing"))));
    let client = client_for_both(mode, &here, &there);
    let landed = land_with_credentials(&client, mode.url(&here, "/go"), &there).await;
    assert!(last_request(&here).header("authorization").is_some());
    assert_no_credentials(&landed);
    assert_eq!(
        landed.header("referer"),
        Some(mode.url(&here, "/go").as_str())
    );
    assert_accounted(&client, &[&here, &there]).await;
}
per_mode!(credentials_are_not_sent_to_another_port: h1, h1_tls, h2, h2c);

/// https to http or http to https: another scheme, so the credentials
/// stay behind. A Referer goes only upwards (http to https), never from
/// https to a cleartext server.
async fn credentials_are_not_sent_to_another_scheme(mode: Mode) {
    let other = if mode.is_tls() { Mode::H1 } else { Mode::H1Tls };
    let there = other.server(Config::new());
    let here =
        mode.server(Config::new().route("/go", redirect_to(301, other.url(&there, "/landing"))));
    let ca = leakless::Certificate::from_der(there.ca_cert_der());
    let client = mode.client(&here, Client::builder().add_root_certificate(ca));
    let landed = land_with_credentials(&client, mode.url(&here, "/go"), &there).await;
    assert_no_credentials(&landed);
    let referer = (!mode.is_tls()).then(|| mode.url(&here, "/go"));
    assert_eq!(landed.header("referer"), referer.as_deref());
    assert_accounted(&client, &[&here, &there]).await;
}
per_mode!(credentials_are_not_sent_to_another_scheme: h1, h1_tls, h2, h2c);

/// From https to http no Referer tells the cleartext server where the
/// request came from, even on the same host and with no credentials.
async fn no_referer_goes_from_https_to_http(mode: Mode) {
    let plain = Mode::H1.server(Config::new());
    let secure =
        mode.server(Config::new().route("/go", redirect_to(302, Mode::H1.url(&plain, "/landing"))));
    let client = mode.client(&secure, Client::builder());
    read_body(client.get(mode.url(&secure, "/go"))).await;
    let landed = last_request(&plain);
    assert_eq!(landed.path, "/landing");
    assert_eq!(landed.header("referer"), None);
    assert_accounted(&client, &[&secure, &plain]).await;
}
per_mode!(no_referer_goes_from_https_to_http: h1_tls, h2);
