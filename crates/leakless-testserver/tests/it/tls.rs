//! TLS: certificates made at start, ALPN, the certificate errors a client
//! must report, client certificates, resumption, and the silent handshake.

use std::time::Duration;

use leakless_testserver::{
    ClientAuth, CloseReason, Config, ConnFault, ServerCert, TestServer, Tls, Version,
};

use crate::client::{Client, hello};
use crate::tlsclient::{config, connect, get_close, tls_error};

#[tokio::test]
async fn https_and_http_on_one_port() {
    let server = TestServer::start(Config::new().tls(true));
    assert_eq!(
        server.https_url("/a"),
        format!("https://{}/a", server.addr())
    );
    let mut tls = connect(&server, config(&server, &["http/1.1"], None), "localhost")
        .await
        .unwrap();
    let reply = get_close(&mut tls, "/?size=7").await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nhellohe"), "{reply}");
    // The same port still speaks cleartext.
    let mut plain = Client::connect(&server).await;
    assert_eq!(plain.get("/").await.body, hello(5));

    let s = server.wait_closed(1).await;
    assert_eq!((s.tls_handshakes, s.tls_failures, s.requests), (1, 0, 2));
    let info = s.conns[&1].tls.clone().unwrap();
    assert_eq!(info.alpn.as_deref(), Some("http/1.1"));
    assert_eq!(info.sni.as_deref(), Some("localhost"));
    assert!(!info.resumed);
    assert!(info.version.starts_with("TLSv1."));
    assert!(s.conns[&2].tls.is_none());
    let reqs = server.requests();
    assert!(reqs[0].tls && !reqs[1].tls);
    assert_eq!(reqs[0].version, Version::Http11);
}

#[tokio::test]
async fn an_ip_address_is_a_valid_name_too() {
    let server = TestServer::start(Config::new().tls(true));
    let mut tls = connect(&server, config(&server, &[], None), "127.0.0.1")
        .await
        .unwrap();
    assert!(get_close(&mut tls, "/").await.ends_with("hello"));
    let s = server.wait_closed(1).await;
    let info = s.conns[&1].tls.clone().unwrap();
    // No ALPN offered: HTTP/1.1. No SNI for an address.
    assert_eq!((info.alpn, info.sni), (None, None));
}

#[test]
fn the_ca_is_there_in_both_encodings_from_sync_code() {
    let server = TestServer::start(Config::new());
    let pem = server.ca_cert_pem();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(!server.ca_cert_der().is_empty());
    // Stable for the server's life; another server has its own.
    assert_eq!(server.ca_cert_der(), server.ca_cert_der());
    let other = TestServer::start(Config::new());
    assert_ne!(server.ca_cert_der(), other.ca_cert_der());
}

#[tokio::test]
async fn without_tls_a_client_hello_is_garbage() {
    let server = TestServer::start(Config::new());
    let err = connect(&server, config(&server, &[], None), "localhost")
        .await
        .unwrap_err();
    // The server answers 400 in cleartext, which is no TLS record.
    assert!(
        tls_error(&err).contains("InvalidContentType") || err.to_string().contains("corrupt"),
        "{err:?}"
    );
    let s = server.wait_closed(1).await;
    assert_eq!(s.closed_for(CloseReason::BadRequest), 1);
}

async fn handshake_error(cert: ServerCert) -> (String, TestServer) {
    let server = TestServer::start(Config::new().tls_settings(Tls::new().cert(cert)));
    let err = connect(&server, config(&server, &[], None), "localhost")
        .await
        .unwrap_err();
    server.wait_closed(1).await;
    (tls_error(&err), server)
}

#[tokio::test]
async fn certificate_errors_clients_must_name() {
    let (err, server) = handshake_error(ServerCert::Expired).await;
    assert!(err.contains("Expired"), "{err}");
    let s = server.stats();
    // The client's alert fails the server's handshake too.
    assert_eq!((s.tls_handshakes, s.tls_failures), (0, 1));
    assert_eq!(s.closed_for(CloseReason::TlsHandshake), 1);
    assert!(
        s.conns[&1]
            .tls_error
            .as_deref()
            .unwrap()
            .contains("Certificate")
    );

    let (err, _) = handshake_error(ServerCert::WrongName).await;
    assert!(err.contains("NotValidForName"), "{err}");
    let (err, _) = handshake_error(ServerCert::SelfSigned).await;
    assert!(err.contains("UnknownIssuer"), "{err}");
}

#[tokio::test]
async fn untrusted_ca_is_an_unknown_issuer() {
    let server = TestServer::start(Config::new().tls(true));
    let stranger = TestServer::start(Config::new());
    let err = connect(&server, config(&stranger, &[], None), "localhost")
        .await
        .unwrap_err();
    assert!(tls_error(&err).contains("UnknownIssuer"));
}

#[tokio::test]
async fn alpn_offers_only_what_it_is_told() {
    let server = TestServer::start(Config::new().alpn(["http/1.1"]));
    let tls = connect(
        &server,
        config(&server, &["h2", "http/1.1"], None),
        "localhost",
    )
    .await
    .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    // A client that wants h2 only gets no common protocol.
    let err = connect(&server, config(&server, &["h2"], None), "localhost")
        .await
        .unwrap_err();
    assert!(
        tls_error(&err).contains("NoApplicationProtocol"),
        "{}",
        tls_error(&err)
    );

    let h2_only = TestServer::start(Config::new().alpn(["h2"]));
    let tls = connect(
        &h2_only,
        config(&h2_only, &["h2", "http/1.1"], None),
        "localhost",
    )
    .await
    .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
}

#[tokio::test]
async fn client_certificates() {
    let tls = Tls::new().client_auth(ClientAuth::Required);
    let server = TestServer::start(Config::new().tls_settings(tls));
    let mine = server.client_cert("client-1");
    assert!(mine.pem().contains("PRIVATE KEY"));

    let mut ok = connect(&server, config(&server, &[], Some(&mine)), "localhost")
        .await
        .unwrap();
    assert!(get_close(&mut ok, "/").await.ends_with("hello"));
    let s = server.wait_closed(1).await;
    let info = s.conns[&1].tls.clone().unwrap();
    assert_eq!(info.client_cert.as_deref(), Some(&mine.cert_der[..]));

    // No certificate, or one from another server's CA: refused. With TLS
    // 1.3 the client learns it on its first read, after its handshake.
    let stranger = TestServer::start(Config::new()).client_cert("client-1");
    for cert in [None, Some(&stranger)] {
        let before = server.stats().tls_failures;
        if let Ok(mut tls) = connect(&server, config(&server, &[], cert), "localhost").await {
            let reply = get_close(&mut tls, "/").await;
            assert_eq!(reply, "");
        }
        server
            .wait_for(crate::client::LIMIT, |s| s.tls_failures == before + 1)
            .await
            .unwrap();
    }

    // Optional: served without one.
    let tls = Tls::new().client_auth(ClientAuth::Optional);
    let optional = TestServer::start(Config::new().tls_settings(tls));
    let mut anon = connect(&optional, config(&optional, &[], None), "localhost")
        .await
        .unwrap();
    assert!(get_close(&mut anon, "/").await.ends_with("hello"));
}

#[tokio::test]
async fn client_roots_trust_a_ca_the_test_brings() {
    let other = TestServer::start(Config::new());
    let tls = Tls::new()
        .client_auth(ClientAuth::Required)
        .client_root(other.ca_cert_der());
    let server = TestServer::start(Config::new().tls_settings(tls));
    let theirs = other.client_cert("elsewhere");
    let mut tls = connect(&server, config(&server, &[], Some(&theirs)), "localhost")
        .await
        .unwrap();
    assert!(get_close(&mut tls, "/").await.ends_with("hello"));
}

#[tokio::test]
async fn sessions_resume_on_the_next_connection() {
    let server = TestServer::start(Config::new().tls(true));
    let cfg = config(&server, &["http/1.1"], None);
    for _ in 0..2 {
        let mut tls = connect(&server, cfg.clone(), "localhost").await.unwrap();
        assert!(get_close(&mut tls, "/").await.ends_with("hello"));
    }
    let s = server.wait_closed(2).await;
    assert_eq!((s.tls_handshakes, s.tls_resumed), (2, 1));
    assert!(s.conns[&2].tls.as_ref().unwrap().resumed);
}

#[tokio::test]
async fn a_silent_tls_peer_never_answers_the_hello() {
    let server = TestServer::start(
        Config::new()
            .tls(true)
            .conn_fault(ConnFault::AcceptAndStall),
    );
    let tcp = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let handshake = tokio_rustls::TlsConnector::from(config(&server, &[], None)).connect(name, tcp);
    assert!(
        tokio::time::timeout(Duration::from_millis(150), handshake)
            .await
            .is_err()
    );
    let s = server.wait_closed(1).await;
    assert_eq!((s.tls_handshakes, s.closed_by_peer), (0, 1));
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_handshake_is_the_peer() {
    let server = TestServer::start(Config::new().tls(true));
    let mut c = Client::connect(&server).await;
    // A TLS record header, then nothing.
    tokio::io::AsyncWriteExt::write_all(&mut c.tcp, &[0x16, 0x03, 0x01])
        .await
        .unwrap();
    drop(c);
    let s = server.wait_closed(1).await;
    assert_eq!((s.closed_for(CloseReason::Peer), s.tls_failures), (1, 0));
}

#[tokio::test]
async fn keep_alive_and_a_clean_close_over_tls() {
    let server = TestServer::start(Config::new().tls(true));
    let mut tls = connect(&server, config(&server, &["http/1.1"], None), "localhost")
        .await
        .unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut tls, b"GET /?size=2 HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    // A body delimited by the close: complete only because the server says
    // close_notify before it closes (get_close checks the end is clean).
    let both = get_close(&mut tls, "/?framing=close&size=3").await;
    assert!(both.contains("\r\n\r\nhe"), "{both}");
    assert!(both.ends_with("\r\n\r\nhel"), "{both}");
    let s = server.wait_closed(1).await;
    assert_eq!((s.requests, s.conns[&1].requests), (2, 2));
    assert_eq!(s.closed_for(CloseReason::RequestClose), 1);
}
