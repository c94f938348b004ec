//! The server's certificates, made at run time with rcgen (a CA, a leaf per
//! [`ServerCert`], client certificates on demand), and the rustls server
//! configs built from them.
//!
//! Configs are cached per [`Tls`] value: rustls keeps its session cache in
//! the config, so reusing it is what lets a client resume a session on its
//! next connection.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, date_time_ymd,
};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ServerConfig, WebPkiClientVerifier};

use crate::tls::{ClientAuth, ServerCert, Tls};

/// A client certificate and its key, signed by the server's CA, for mTLS
/// tests: see [`TestServer::client_cert`].
///
/// [`TestServer::client_cert`]: crate::TestServer::client_cert
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientCert {
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// Its private key, PKCS#8 DER (ECDSA P-256).
    pub key_der: Vec<u8>,
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PKCS#8 PEM.
    pub key_pem: String,
}

impl ClientCert {
    /// Certificate then key, PEM: what identity-from-PEM APIs take.
    pub fn pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }
}

/// Made on first use: a server that never speaks TLS pays nothing.
#[derive(Default)]
pub(crate) struct Pki {
    certs: OnceLock<Certs>,
    configs: Mutex<Vec<(Tls, Arc<ServerConfig>)>>,
}

struct Certs {
    ca: CertifiedIssuer<'static, KeyPair>,
    leaves: Vec<(ServerCert, CertificateDer<'static>, Vec<u8>)>,
}

/// The names a valid leaf covers: every way a test reaches loopback.
const NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

impl Pki {
    fn certs(&self) -> &Certs {
        self.certs.get_or_init(|| {
            Certs::generate().expect("leakless-testserver: cannot make certificates")
        })
    }

    /// Makes the certificates now, so the first handshake is not the one
    /// that pays for them.
    pub(crate) fn prepare(&self) {
        self.certs();
    }

    pub(crate) fn ca_der(&self) -> Vec<u8> {
        self.certs().ca.der().to_vec()
    }

    pub(crate) fn ca_pem(&self) -> String {
        self.certs().ca.pem()
    }

    pub(crate) fn client_cert(&self, name: &str) -> ClientCert {
        self.certs()
            .client(name)
            .expect("leakless-testserver: cannot make a client certificate")
    }

    /// The rustls config for `tls`, built once per distinct value.
    pub(crate) fn server_config(&self, tls: &Tls) -> Result<Arc<ServerConfig>, rustls::Error> {
        let mut configs = self.configs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, cfg)) = configs.iter().find(|(t, _)| t == tls) {
            return Ok(cfg.clone());
        }
        let cfg = Arc::new(self.build(tls)?);
        configs.push((tls.clone(), cfg.clone()));
        Ok(cfg)
    }

    fn build(&self, tls: &Tls) -> Result<ServerConfig, rustls::Error> {
        let certs = self.certs();
        // The provider is named, not taken from the process default: the
        // client under test may install its own, and two would panic.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = if tls.tls12_only {
            &[&rustls::version::TLS12]
        } else {
            rustls::DEFAULT_VERSIONS
        };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)?;
        let builder = match tls.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            auth => builder.with_client_cert_verifier(client_verifier(
                certs,
                &tls.client_roots,
                auth,
                provider,
            )?),
        };
        let (_, leaf, key) = certs
            .leaves
            .iter()
            .find(|(kind, _, _)| *kind == tls.cert)
            .expect("a leaf for every ServerCert");
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.clone()));
        let mut cfg = builder.with_single_cert(vec![leaf.clone()], key)?;
        cfg.alpn_protocols = tls.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Ok(cfg)
    }
}

fn client_verifier(
    certs: &Certs,
    extra: &[Vec<u8>],
    auth: ClientAuth,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots.add(certs.ca.der().clone())?;
    for der in extra {
        roots.add(CertificateDer::from(der.clone()))?;
    }
    let mut verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
    if auth == ClientAuth::Optional {
        verifier = verifier.allow_unauthenticated();
    }
    verifier
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))
}

impl Certs {
    fn generate() -> Result<Certs, rcgen::Error> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        // Named after its key: two servers' CAs must differ by name, or a
        // client trusting the wrong one sees a bad signature, not an
        // unknown issuer.
        let key = KeyPair::generate()?;
        let tag: String = key.public_key_raw()[1..9]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let name = format!("leakless-testserver CA {tag}");
        ca.distinguished_name.push(DnType::CommonName, name);
        let ca = CertifiedIssuer::self_signed(ca, key)?;
        let mut leaves = Vec::new();
        for kind in [
            ServerCert::Valid,
            ServerCert::Expired,
            ServerCert::WrongName,
            ServerCert::SelfSigned,
        ] {
            let names: &[&str] = match kind {
                ServerCert::WrongName => &["wrong.example"],
                _ => &NAMES,
            };
            let mut params = leaf_params(names, ExtendedKeyUsagePurpose::ServerAuth)?;
            if kind == ServerCert::Expired {
                params.not_before = date_time_ymd(2000, 1, 1);
                params.not_after = date_time_ymd(2001, 1, 1);
            }
            let key = KeyPair::generate()?;
            let cert = match kind {
                ServerCert::SelfSigned => params.self_signed(&key)?,
                _ => params.signed_by(&key, &ca)?,
            };
            leaves.push((kind, cert.der().clone(), key.serialize_der()));
        }
        Ok(Certs { ca, leaves })
    }

    fn client(&self, name: &str) -> Result<ClientCert, rcgen::Error> {
        // A name that is not a DNS name still works as the subject's CN.
        let mut params = leaf_params(&[name], ExtendedKeyUsagePurpose::ClientAuth)
            .or_else(|_| leaf_params(&[], ExtendedKeyUsagePurpose::ClientAuth))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.ca)?;
        Ok(ClientCert {
            cert_der: cert.der().to_vec(),
            key_der: key.serialize_der(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

fn leaf_params(
    names: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> Result<CertificateParams, rcgen::Error> {
    let mut params =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())?;
    params.distinguished_name.push(
        DnType::CommonName,
        names.first().copied().unwrap_or("client"),
    );
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    // Fixed dates, far on both sides of any test run's clock.
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2100, 1, 1);
    Ok(params)
}
