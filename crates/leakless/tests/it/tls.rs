//! TLS: verification and its errors, ALPN, mutual TLS, session resumption,
//! the handshake timeout, and HTTP/1.1 over TLS.
//! The other scenarios run over TLS too, through `Mode::H1Tls` and
//! `Mode::H2` in their own modules.

use std::time::Duration;

use leakless::{Client, ErrorKind, Identity, Phase, Version};
use leakless_testserver::{ClientAuth, ConnFault, ServerCert, Tls};

use crate::support::*;

#[tokio::test]
async fn https_picks_h2_by_alpn_and_verifies_the_certificate() {
    let server = TestServer::start(Config::new().tls(true));
    let client = trusting(&server, Client::builder());
    let res = client.get(server.https_url("/")).send().await.unwrap();
    assert_eq!(res.version(), Version::HTTP_2);
    assert_eq!(res.text().await.unwrap(), "hello");
}

#[tokio::test]
async fn disable_http2_speaks_http1_even_when_the_server_offers_h2() {
    let server = TestServer::start(Config::new().tls(true));
    let client = trusting(&server, Client::builder().disable_http2(true));
    for _ in 0..3 {
        let res = client.get(server.https_url("/")).send().await.unwrap();
        assert_eq!(res.version(), Version::HTTP_11);
        res.bytes().await.unwrap();
    }
    let s = server.stats();
    assert_eq!(
        (s.accepted, s.h2_conns, s.tls_handshakes),
        (1, 0, 1),
        "h1 over TLS reuses its connection"
    );
}

async fn cert_error(cert: ServerCert) -> leakless::Error {
    let server = TestServer::start(Config::new().tls_settings(Tls::new().cert(cert)));
    let client = trusting(&server, Client::builder());
    let err = client.get(server.https_url("/")).send().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err:?}");
    assert_eq!(err.phase(), Some(Phase::Tls));
    assert!(
        err.to_string().contains(&server.addr().port().to_string()),
        "names the host: {err}"
    );
    let s = client.stats().total;
    assert_eq!((s.open, s.created, s.closed), (0, 1, 1), "{s:?}");
    err
}

#[tokio::test]
async fn certificate_errors_say_which_host_and_why() {
    assert!(
        cert_error(ServerCert::Expired)
            .await
            .to_string()
            .contains("expired")
    );
    assert!(
        cert_error(ServerCert::WrongName)
            .await
            .to_string()
            .contains("not valid for this host name")
    );
    assert!(
        cert_error(ServerCert::SelfSigned)
            .await
            .to_string()
            .contains("unknown authority")
    );
}

#[tokio::test]
async fn unknown_ca_is_refused_without_add_root_certificate() {
    let server = TestServer::start(Config::new().tls(true));
    let err = Client::new()
        .get(server.https_url("/"))
        .send()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unknown authority"), "{err}");
}

#[tokio::test]
async fn danger_accept_invalid_certs_accepts_a_self_signed_server() {
    let server =
        TestServer::start(Config::new().tls_settings(Tls::new().cert(ServerCert::SelfSigned)));
    let client = Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    assert_eq!(get_body(&client, server.https_url("/")).await, "hello");
}

#[tokio::test]
async fn mutual_tls_sends_the_client_certificate() {
    let server =
        TestServer::start(Config::new().tls_settings(Tls::new().client_auth(ClientAuth::Required)));
    let without = trusting(&server, Client::builder());
    assert!(
        without.get(server.https_url("/")).send().await.is_err(),
        "the server requires a certificate"
    );
    let cert = server.client_cert("leakless-test");
    let id = Identity::from_pem(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes()).unwrap();
    let with = trusting(&server, Client::builder().identity(id));
    assert_eq!(get_body(&with, server.https_url("/")).await, "hello");
}

#[tokio::test]
async fn reconnects_resume_the_tls_session() {
    let server = TestServer::start(Config::new().tls(true).alpn(["http/1.1"]));
    let client = trusting(&server, Client::builder());
    for _ in 0..3 {
        let res = client
            .get(server.https_url("/?close=1"))
            .send()
            .await
            .unwrap();
        res.bytes().await.unwrap();
    }
    let s = server.wait_closed(3).await;
    assert_eq!(s.tls_handshakes, 3);
    assert!(
        s.tls_resumed >= 1,
        "later handshakes resume the session: {s:?}"
    );
}

#[tokio::test]
async fn tls_handshake_timeout_fires_against_a_silent_server() {
    let server = TestServer::start(
        Config::new()
            .tls(true)
            .conn_fault(ConnFault::AcceptAndStall),
    );
    let client = trusting(
        &server,
        Client::builder().tls_handshake_timeout(Duration::from_millis(150)),
    );
    let err = client.get(server.https_url("/")).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert_eq!(err.phase(), Some(Phase::Tls));
    assert!(err.to_string().contains("tls_handshake_timeout"), "{err}");
    let s = client.stats().total;
    assert_eq!(
        (s.open, s.closed_by.get(leakless::CloseReason::Timeout)),
        (0, 1)
    );
    server.wait_closed(1).await;
}

#[tokio::test]
async fn bad_pem_is_a_clear_builder_error() {
    let e = Identity::from_pem(b"not pem", b"not pem").unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");
    let e = leakless::Certificate::from_pem(
        b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("PEM"), "{e}");
}
