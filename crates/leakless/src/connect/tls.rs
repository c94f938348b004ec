//! The TLS connector built from the client's TLS options (roots, client
//! identity, ALPN), and the handshake within `tls_handshake_timeout`, with
//! certificate errors that say why.

use std::{fmt, sync::Arc, time::Duration};

use rustls::{
    ClientConfig, RootCertStore,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    pki_types::{CertificateDer, ServerName, UnixTime},
};
use tokio_rustls::TlsConnector;

use super::transport::Transport;
use crate::{
    config::{TlsInfo, TlsOptions, TlsVersion as Version},
    error::{Error, ErrorKind},
    phase::Phase,
};

/// The connector every TLS connection of a client shares, so sessions are
/// resumed across reconnects (rustls keeps an in-memory session cache).
#[derive(Clone)]
pub(crate) struct Tls {
    connector: TlsConnector,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tls")
    }
}

impl Tls {
    pub fn new(opts: &TlsOptions, http2: bool) -> Result<Tls, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions(opts)?)
            .map_err(|e| Error::new(ErrorKind::Builder, format!("TLS setup failed: {e}")))?;
        let builder = if opts.accept_invalid_certs {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAll(provider)))
        } else {
            let mut roots = RootCertStore::empty();
            if opts.built_in_roots {
                roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            }
            if opts.platform_roots {
                // Unreadable entries in the platform store are skipped, as browsers do.
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
            }
            for cert in &opts.roots {
                roots.add(cert.0.clone()).map_err(|e| {
                    Error::new(
                        ErrorKind::Builder,
                        format!("cannot use that root certificate: {e}"),
                    )
                })?;
            }
            builder.with_root_certificates(roots)
        };
        let mut config = match &opts.identity {
            Some(id) => builder
                .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Builder,
                        format!("cannot use that client certificate and key: {e}"),
                    )
                })?,
            None => builder.with_no_client_auth(),
        };
        config.enable_sni = opts.sni;
        config.alpn_protocols = if http2 {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"http/1.1".to_vec()]
        };
        Ok(Tls {
            connector: TlsConnector::from(Arc::new(config)),
        })
    }

    /// The TLS handshake with `host` over `io`, within `limit`; errors
    /// name `authority`.
    pub async fn handshake(
        &self,
        io: Transport,
        host: &str,
        authority: &str,
        limit: Duration,
    ) -> Result<Transport, Error> {
        let name = ServerName::try_from(host.to_owned()).map_err(|_| {
            Error::new(
                ErrorKind::Request,
                format!("{host:?} is not a valid TLS server name"),
            )
        })?;
        match tokio::time::timeout(limit, self.connector.connect(name, io)).await {
            Ok(Ok(stream)) => Ok(Transport::Tls(Box::new(stream))),
            Ok(Err(e)) => Err(handshake_error(e)
                .with_phase(Phase::Tls)
                .with_host(authority)),
            Err(_) => Err(Error::timeout(Phase::Tls, limit).with_host(authority)),
        }
    }
}

/// The versions rustls may use between `min_tls_version` and
/// `max_tls_version`.
fn versions(opts: &TlsOptions) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, Error> {
    let min = opts.min_version.unwrap_or(Version::TLS_1_2);
    let max = opts.max_version.unwrap_or(Version::TLS_1_3);
    let all = [
        (Version::TLS_1_2, &rustls::version::TLS12),
        (Version::TLS_1_3, &rustls::version::TLS13),
    ];
    let chosen: Vec<_> = all
        .into_iter()
        .filter(|(v, _)| (min..=max).contains(v))
        .map(|(_, r)| r)
        .collect();
    if chosen.is_empty() {
        return Err(Error::new(
            ErrorKind::Builder,
            format!(
                "no TLS version between min_tls_version {min:?} and max_tls_version {max:?}: \
                 leakless (rustls) speaks TLS 1.2 and 1.3"
            ),
        ));
    }
    Ok(chosen)
}

/// What `io`'s outermost TLS session negotiated.
pub(super) fn info(io: &Transport) -> Option<TlsInfo> {
    let tls = io.tls()?;
    let version = tls.protocol_version().and_then(|v| match v {
        rustls::ProtocolVersion::TLSv1_2 => Some(Version::TLS_1_2),
        rustls::ProtocolVersion::TLSv1_3 => Some(Version::TLS_1_3),
        _ => None,
    });
    let leaf = tls.peer_certificates().and_then(|c| c.first());
    Some(TlsInfo::new(
        leaf.map(|c| c.as_ref()),
        version,
        tls.alpn_protocol(),
    ))
}

/// Says which certificate problem it was, in words.
fn handshake_error(e: std::io::Error) -> Error {
    use rustls::CertificateError as C;
    let tls = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    let why = match tls {
        Some(rustls::Error::InvalidCertificate(c)) => match c {
            C::Expired | C::ExpiredContext { .. } => "the server's certificate has expired".to_owned(),
            C::NotValidYet | C::NotValidYetContext { .. } => "the server's certificate is not valid yet".to_owned(),
            C::UnknownIssuer => {
                "the server's certificate was issued by an unknown authority (add its CA with add_root_certificate)"
                    .to_owned()
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "the server's certificate is not valid for this host name".to_owned()
            }
            C::Revoked => "the server's certificate is revoked".to_owned(),
            other => format!("the server's certificate is invalid ({other:?})"),
        },
        Some(rustls::Error::AlertReceived(rustls::AlertDescription::ProtocolVersion)) => {
            "TLS handshake failed: the server speaks no TLS version this client allows \
             (see min_tls_version and max_tls_version)"
                .to_owned()
        }
        Some(rustls::Error::PeerIncompatible(why)) => format!(
            "TLS handshake failed: the server cannot speak what this client allows \
             ({why:?}; see min_tls_version and max_tls_version)"
        ),
        Some(other) => format!("TLS handshake failed: {other}"),
        None => format!("TLS handshake failed: {e}"),
    };
    Error::new(ErrorKind::Tls, why)
}

/// `danger_accept_invalid_certs`: checks signatures, trusts any certificate.
#[derive(Debug)]
struct AcceptAll(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAll {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
