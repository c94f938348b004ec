//! Where a request goes and how it gets there: the pool's key. Today
//! (scheme, host, port); it grows with the connect layer (a proxy, a unix
//! socket path), as Go's `connectMethodKey` does, so that requests that
//! cannot share a connection never share a pool entry.

use std::{fmt, hash::Hash, sync::Arc};

use http::Uri;

use crate::error::{Error, ErrorKind};

#[derive(Debug, PartialEq, Eq)]
struct Inner {
    tls: bool,
    host: Box<str>,
    port: u16,
    /// `host:port` as sent in the Host header and shown in stats and errors.
    authority: Box<str>,
}

/// A request's route, the pool's key; cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Route(Arc<Inner>);

impl Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // The authority already holds host and port.
        self.0.tls.hash(state);
        self.0.authority.hash(state);
    }
}

impl Route {
    pub fn from_uri(uri: &Uri) -> Result<Route, Error> {
        let bad =
            |what: &str| Error::new(ErrorKind::Request, format!("cannot send to {uri}: {what}"));
        let tls = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            Some(other) => return Err(bad(&format!("unsupported scheme {other:?}"))),
            None => return Err(bad("the URL has no scheme (http://...)")),
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("the URL has no host"))?;
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let authority = format!("{host}:{port}");
        // Brackets belong to the URL syntax, not to the address.
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Ok(Route(Arc::new(Inner {
            tls,
            host: host.into(),
            port,
            authority: authority.into(),
        })))
    }

    pub fn is_tls(&self) -> bool {
        self.0.tls
    }

    pub fn host(&self) -> &str {
        &self.0.host
    }

    pub fn port(&self) -> u16 {
        self.0.port
    }

    /// `host:port`.
    pub fn authority(&self) -> &str {
        &self.0.authority
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.tls {
            f.write_str("https://")?;
        }
        f.write_str(&self.0.authority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_has_default_port_and_strips_ipv6_brackets() {
        let k = Route::from_uri(&"http://example.com/x".parse().unwrap()).unwrap();
        assert_eq!(
            (k.host(), k.port(), k.authority()),
            ("example.com", 80, "example.com:80")
        );
        let k = Route::from_uri(&"http://[::1]:8080/".parse().unwrap()).unwrap();
        assert_eq!((k.host(), k.authority()), ("::1", "[::1]:8080"));
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let e = Route::from_uri(&"/relative".parse().unwrap()).unwrap_err();
        assert!(e.to_string().contains("no scheme"), "{e}");
        let e = Route::from_uri(&"ftp://x/".parse().unwrap()).unwrap_err();
        assert!(e.to_string().contains("ftp"), "{e}");
    }
}
