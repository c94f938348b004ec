//! TLS as data: [`Tls`] says which certificate the server shows, which
//! protocols it offers in ALPN and whether it wants a client certificate.
//! The certificates themselves are made at run time (`pki.rs`).

/// TLS settings, for [`Config::tls`].
///
/// With TLS on, a connection whose first byte opens a TLS handshake record
/// is served over TLS; any other connection is still served in cleartext,
/// so one port answers both [`TestServer::url`] and
/// [`TestServer::https_url`]. Clients trust [`TestServer::ca_cert_der`].
///
/// A client's handshake timeout is tested with
/// [`ConnFault::AcceptAndStall`]: the server accepts, reads the
/// ClientHello and never answers it.
///
/// [`Config::tls`]: crate::Config::tls
/// [`TestServer::url`]: crate::TestServer::url
/// [`TestServer::https_url`]: crate::TestServer::https_url
/// [`TestServer::ca_cert_der`]: crate::TestServer::ca_cert_der
/// [`ConnFault::AcceptAndStall`]: crate::ConnFault::AcceptAndStall
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    /// The certificate the server presents.
    pub cert: ServerCert,
    /// Protocols offered in ALPN, in the server's order of preference.
    /// Default `["h2", "http/1.1"]`. A client that offers ALPN with none of
    /// these fails the handshake (`no_application_protocol`); one that offers
    /// none gets HTTP/1.1, or HTTP/2 if it starts with the h2 preface.
    pub alpn: Vec<String>,
    /// Whether the server asks for a client certificate (mTLS).
    pub client_auth: ClientAuth,
    /// Extra CA certificates (DER) that client certificates may chain to,
    /// besides the server's own CA (which signs
    /// [`TestServer::client_cert`]).
    ///
    /// [`TestServer::client_cert`]: crate::TestServer::client_cert
    pub client_roots: Vec<Vec<u8>>,
    /// Offer TLS 1.2 only, never 1.3 (default false: both).
    pub tls12_only: bool,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            cert: ServerCert::Valid,
            alpn: vec!["h2".to_owned(), "http/1.1".to_owned()],
            client_auth: ClientAuth::None,
            client_roots: Vec::new(),
            tls12_only: false,
        }
    }
}

impl Tls {
    /// A valid certificate, ALPN `h2` and `http/1.1`, no client certificate.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`Tls::cert`].
    pub fn cert(mut self, cert: ServerCert) -> Self {
        self.cert = cert;
        self
    }

    /// Sets [`Tls::alpn`], e.g. `["http/1.1"]` for a server without HTTP/2
    /// over TLS, `["h2"]` for one without HTTP/1.1, `[]` for no ALPN.
    pub fn alpn<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<String>,
    {
        self.alpn = protocols.into_iter().map(Into::into).collect();
        self
    }

    /// Sets [`Tls::client_auth`].
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }

    /// Sets [`Tls::tls12_only`]: a server that never speaks TLS 1.3.
    pub fn tls12_only(mut self) -> Self {
        self.tls12_only = true;
        self
    }

    /// Adds a CA (DER) to [`Tls::client_roots`].
    pub fn client_root(mut self, ca_der: impl Into<Vec<u8>>) -> Self {
        self.client_roots.push(ca_der.into());
        self
    }
}

/// Which certificate the server presents. Every one is made at run time;
/// all but [`ServerCert::SelfSigned`] are signed by the server's CA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ServerCert {
    /// Valid now, for `localhost`, `127.0.0.1` and `::1`.
    Valid,
    /// Right names, but expired (valid during the year 2000 only).
    Expired,
    /// Valid now, but only for `wrong.example`: a name mismatch for any URL
    /// the client can reach the server by.
    WrongName,
    /// Valid now, right names, but self-signed: an unknown issuer even to a
    /// client that trusts the server's CA.
    SelfSigned,
}

/// Whether the server asks for a client certificate during the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ClientAuth {
    /// Never asks.
    None,
    /// Asks; a client without one is served, one with a certificate that
    /// does not chain to a trusted CA fails the handshake.
    Optional,
    /// Asks, and fails the handshake without a trusted client certificate.
    Required,
}
