//! A certificate authority of the test's own, for servers the test runs
//! itself (the test server brings its own: `TestServer::ca_cert_der`).

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A fresh CA and one leaf it signed for `127.0.0.1` and `localhost`.
pub struct TestCa {
    ca_der: Vec<u8>,
    /// The leaf certificate, DER and PEM.
    pub leaf_der: Vec<u8>,
    pub leaf_pem: String,
    /// The leaf's private key (PKCS#8), DER and PEM.
    pub key_der: Vec<u8>,
    pub key_pem: String,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        TestCa {
            ca_der: ca.der().to_vec(),
            leaf_der: leaf.der().to_vec(),
            leaf_pem: leaf.pem(),
            key_der: key.serialize_der(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The CA's DER: what a client trusts to talk to the leaf.
    pub fn ca_der(&self) -> Vec<u8> {
        self.ca_der.clone()
    }

    /// The CA as a root certificate for a client.
    pub fn certificate(&self) -> leakless::Certificate {
        leakless::Certificate::from_der(self.ca_der())
    }
}
