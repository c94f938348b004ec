//! TLS clients for the tests: tokio-rustls trusting the server's CA, with
//! the ring provider named (never the process default).

use std::io;
use std::sync::Arc;

use leakless_testserver::{ClientCert, TestServer};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::client::LIMIT;

/// A client config trusting `server`'s CA, offering `alpn`, with an
/// optional client certificate.
pub fn config(server: &TestServer, alpn: &[&str], cert: Option<&ClientCert>) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(server.ca_cert_der()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut cfg = match cert {
        None => builder.with_no_client_auth(),
        Some(c) => {
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.key_der.clone()));
            builder
                .with_client_auth_cert(vec![CertificateDer::from(c.cert_der.clone())], key)
                .unwrap()
        }
    };
    cfg.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Arc::new(cfg)
}

/// Connects and completes the handshake, naming the server `name`
/// (`"localhost"` sends SNI; an IP address does not).
pub async fn connect(
    server: &TestServer,
    cfg: Arc<ClientConfig>,
    name: &str,
) -> io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(server.addr()).await?;
    let name = ServerName::try_from(name.to_owned()).unwrap();
    tokio::time::timeout(LIMIT, TlsConnector::from(cfg).connect(name, tcp))
        .await
        .expect("TLS handshake timed out")
}

/// The rustls error behind a failed handshake, as text.
pub fn tls_error(e: &io::Error) -> String {
    match e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        Some(e) => format!("{e:?}"),
        None => format!("not a TLS error: {e:?}"),
    }
}

/// One HTTP/1.1 GET with `Connection: close` over any stream; returns the
/// whole response as text.
pub async fn get_close<S>(io: &mut S, path: &str) -> String
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let req = format!("GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    io.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    // The server closes with close_notify: a clean end, not an error.
    let end = tokio::time::timeout(LIMIT, io.read_to_end(&mut out))
        .await
        .expect("read timed out");
    if let Err(e) = end {
        assert!(out.is_empty(), "an unclean close after a response: {e}");
    }
    String::from_utf8(out).unwrap()
}
