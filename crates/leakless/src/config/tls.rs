//! TLS settings as plain data: trusted roots, a client identity, protocol
//! versions and the switches the builder collects, and what a connection
//! negotiated ([`TlsInfo`]). The connect layer turns the settings into a
//! rustls connector.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};

use crate::error::{Error, ErrorKind};

/// A trusted root certificate, added with
/// [`ClientBuilder::add_root_certificate`](crate::ClientBuilder::add_root_certificate).
#[derive(Clone, Debug)]
pub struct Certificate(pub(crate) CertificateDer<'static>);

impl Certificate {
    /// From DER bytes.
    pub fn from_der(der: impl Into<Vec<u8>>) -> Certificate {
        Certificate(CertificateDer::from(der.into()))
    }

    /// Every certificate in a PEM bundle.
    pub fn from_pem_bundle(pem: &[u8]) -> Result<Vec<Certificate>, Error> {
        let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem)
            .map(|c| c.map(Certificate))
            .collect();
        match certs {
            Ok(c) if !c.is_empty() => Ok(c),
            Ok(_) => Err(Error::new(
                ErrorKind::Builder,
                "no certificate found in the PEM data",
            )),
            Err(e) => Err(Error::new(
                ErrorKind::Builder,
                format!("invalid PEM certificate: {e}"),
            )),
        }
    }

    /// The first certificate of a PEM file.
    pub fn from_pem(pem: &[u8]) -> Result<Certificate, Error> {
        Ok(Certificate::from_pem_bundle(pem)?.remove(0))
    }
}

/// A client certificate chain and its private key, for mutual TLS.
#[derive(Debug)]
pub struct Identity {
    pub(crate) chain: Vec<CertificateDer<'static>>,
    pub(crate) key: PrivateKeyDer<'static>,
}

impl Clone for Identity {
    fn clone(&self) -> Identity {
        Identity {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl Identity {
    /// From a PEM certificate chain (leaf first) and a PEM private key
    /// (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Identity, Error> {
        let chain = Certificate::from_pem_bundle(chain_pem)?
            .into_iter()
            .map(|c| c.0)
            .collect();
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| Error::new(ErrorKind::Builder, format!("invalid PEM private key: {e}")))?;
        Ok(Identity { chain, key })
    }
}

/// What the builder collected about TLS.
#[derive(Clone, Debug)]
pub(crate) struct TlsOptions {
    pub roots: Vec<Certificate>,
    pub built_in_roots: bool,
    pub platform_roots: bool,
    pub identity: Option<Identity>,
    pub accept_invalid_certs: bool,
    pub min_version: Option<Version>,
    pub max_version: Option<Version>,
    /// Send the server name (SNI) in the handshake.
    pub sni: bool,
    /// Attach a [`TlsInfo`] to each response.
    pub info: bool,
}

impl Default for TlsOptions {
    fn default() -> TlsOptions {
        TlsOptions {
            roots: Vec::new(),
            built_in_roots: true,
            platform_roots: false,
            identity: None,
            accept_invalid_certs: false,
            min_version: None,
            max_version: None,
            sni: true,
            info: false,
        }
    }
}

/// A TLS protocol version, for
/// [`min_tls_version`](crate::ClientBuilder::min_tls_version) and
/// [`max_tls_version`](crate::ClientBuilder::max_tls_version).
///
/// leakless speaks TLS through rustls, which implements 1.2 and 1.3: a
/// minimum of 1.0 or 1.1 allows 1.2 and up, and a maximum below 1.2 is
/// refused by `build`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(u8);

impl Version {
    /// TLS 1.0.
    pub const TLS_1_0: Version = Version(0);
    /// TLS 1.1.
    pub const TLS_1_1: Version = Version(1);
    /// TLS 1.2.
    pub const TLS_1_2: Version = Version(2);
    /// TLS 1.3.
    pub const TLS_1_3: Version = Version(3);
}

/// What a TLS connection negotiated. With
/// [`tls_info(true)`](crate::ClientBuilder::tls_info) every response over
/// TLS carries one in its [`extensions`](crate::Response::extensions)
/// (reqwest's place for it); `Response::tls_info` finds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsInfo(Arc<Negotiated>);

/// One pointer in every lease and stream, whether or not it is asked for.
#[derive(Debug, PartialEq, Eq)]
struct Negotiated {
    peer_certificate: Option<Box<[u8]>>,
    version: Option<Version>,
    alpn: Option<Box<[u8]>>,
}

impl TlsInfo {
    pub(crate) fn new(
        peer_certificate: Option<&[u8]>,
        version: Option<Version>,
        alpn: Option<&[u8]>,
    ) -> TlsInfo {
        TlsInfo(Arc::new(Negotiated {
            peer_certificate: peer_certificate.map(Box::from),
            version,
            alpn: alpn.map(Box::from),
        }))
    }

    /// The server's leaf certificate, DER-encoded.
    pub fn peer_certificate(&self) -> Option<&[u8]> {
        self.0.peer_certificate.as_deref()
    }

    /// The protocol version the handshake settled on.
    pub fn version(&self) -> Option<Version> {
        self.0.version
    }

    /// The protocol ALPN chose (`b"h2"`, `b"http/1.1"`), if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.0.alpn.as_deref()
    }
}
