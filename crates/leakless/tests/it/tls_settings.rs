//! TLS settings: `tls_info` on responses (peer certificate, version,
//! ALPN), `min_tls_version` against a server that stops at TLS 1.2,
//! `tls_sni(false)`, and `https_only` for URLs and redirects.

use leakless::{Client, ErrorKind, tls};
use leakless_testserver::{Reply, Tls};

use crate::support::*;

async fn tls_info_tells_the_peer_certificate_version_and_alpn(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder().tls_info(true));
    let mut seen = Vec::new();
    for i in 0..2 {
        let res = client.get(mode.url(&server, "/")).send().await.unwrap();
        let info = res.tls_info().expect("tls_info(true) attaches it").clone();
        assert_eq!(res.extensions().get::<tls::TlsInfo>(), Some(&info));
        seen.push(info);
        if i == 0 {
            assert_eq!(res.text().await.unwrap(), "hello");
        } else {
            // Through the ecosystem's type too.
            let res: http::Response<leakless::Incoming> = res.into();
            assert!(res.extensions().get::<tls::TlsInfo>().is_some());
        }
    }
    assert_eq!(seen[0], seen[1], "the reused connection says the same");
    let info = &seen[0];
    assert_eq!(info.version(), Some(tls::Version::TLS_1_3));
    let alpn: &[u8] = if mode.is_h2() { b"h2" } else { b"http/1.1" };
    assert_eq!(info.alpn(), Some(alpn));
    let cert = info.peer_certificate().expect("the server's leaf");
    assert_eq!(cert[0], 0x30, "DER");
    assert!(
        cert.windows(9).any(|w| w == b"localhost"),
        "a leaf for localhost"
    );
    assert_ne!(
        cert,
        server.ca_cert_der().as_slice(),
        "the leaf, not the CA"
    );
    assert_eq!(server.stats().accepted, 1);
    // Off by default.
    let client = mode.client(&server, Client::builder());
    let res = client.get(mode.url(&server, "/")).send().await.unwrap();
    assert!(res.tls_info().is_none());
}
per_mode!(tls_info_tells_the_peer_certificate_version_and_alpn: h1_tls, h2);

async fn min_tls_version_refuses_a_server_stuck_at_tls_1_2(mode: Mode) {
    let server = mode.server(Config::new().tls_settings(Tls::new().tls12_only()));
    let client = mode.client(
        &server,
        Client::builder().min_tls_version(tls::Version::TLS_1_3),
    );
    let e = client.get(mode.url(&server, "/")).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    assert!(e.to_string().contains("min_tls_version"), "{e}");
    let s = client.stats().total;
    assert_eq!((s.open, s.created, s.closed), (0, 1, 1), "{s:?}");
    // The default floor is 1.2: the same server is fine.
    let client = mode.client(&server, Client::builder().tls_info(true));
    let res = client.get(mode.url(&server, "/")).send().await.unwrap();
    assert_eq!(
        res.tls_info().unwrap().version(),
        Some(tls::Version::TLS_1_2)
    );
    assert_eq!(res.version(), mode.version());
}
per_mode!(min_tls_version_refuses_a_server_stuck_at_tls_1_2: h1_tls, h2);

#[test]
fn a_max_tls_version_below_1_2_is_refused_by_build() {
    let e = Client::builder()
        .max_tls_version(tls::Version::TLS_1_1)
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Builder, "{e}");
    assert!(e.to_string().contains("1.2 and 1.3"), "{e}");
}

async fn tls_sni_false_sends_no_name_but_still_checks_it(mode: Mode) {
    let server = mode.server(Config::new());
    let url = format!("https://localhost:{}/", server.addr().port());
    let client = mode.client(&server, Client::builder());
    assert_eq!(get_body(&client, &url).await, "hello");
    let client = mode.client(&server, Client::builder().tls_sni(false));
    assert_eq!(get_body(&client, &url).await, "hello");
    let sni: Vec<_> = server
        .stats()
        .conns
        .values()
        .map(|c| c.tls.as_ref().unwrap().sni.clone())
        .collect();
    assert_eq!(sni.len(), 2);
    assert!(sni.contains(&Some("localhost".to_owned())), "{sni:?}");
    assert!(sni.contains(&None), "{sni:?}");
    // The certificate is still checked against the URL's name.
    let wrong = format!("https://wrong.test:{}/", server.addr().port());
    let client = mode.client(
        &server,
        Client::builder()
            .tls_sni(false)
            .resolve("wrong.test", server.addr()),
    );
    let e = client.get(wrong).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
}
per_mode!(tls_sni_false_sends_no_name_but_still_checks_it: h1_tls, h2);

#[tokio::test]
async fn https_only_refuses_an_http_url_before_dialing() {
    let server = TestServer::start(Config::new());
    let client = Client::builder().https_only(true).build().unwrap();
    let e = client.get(server.url("/")).send().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Request, "{e}");
    assert!(e.to_string().contains("https_only"), "{e}");
    assert_eq!(client.stats().total.created, 0);
    assert_eq!(server.stats().accepted, 0);
}

async fn https_only_refuses_a_redirect_to_http(mode: Mode) {
    let plain = TestServer::start(Config::new());
    let server = mode.server(Config::new().route(
        "/away",
        Reply::new().status(302).header("location", plain.url("/")),
    ));
    let client = mode.client(&server, Client::builder().https_only(true));
    let e = client
        .get(mode.url(&server, "/away"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Redirect, "{e}");
    assert!(e.to_string().contains("https_only"), "{e}");
    assert_eq!(plain.stats().accepted, 0);
    // The redirect's own connection went back to the pool.
    let s = wait_for_stats(&client, "the hop's connection back", nothing_in_flight).await;
    assert_eq!((s.open, s.idle), (1, 1), "{s:?}");
    // Without it the redirect is followed.
    let client = mode.client(&server, Client::builder());
    assert_eq!(get_body(&client, mode.url(&server, "/away")).await, "hello");
    assert_eq!(plain.stats().accepted, 1);
}
per_mode!(https_only_refuses_a_redirect_to_http: h1_tls, h2);
