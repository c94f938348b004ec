//! TLS settings as plain data: trusted roots, a client identity, and the
//! switches the builder collects. The connect layer turns them into a
//! rustls connector.

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
}

impl Default for TlsOptions {
    fn default() -> TlsOptions {
        TlsOptions {
            roots: Vec::new(),
            built_in_roots: true,
            platform_roots: false,
            identity: None,
            accept_invalid_certs: false,
        }
    }
}
