//! Where a request goes and how it gets there: the pool's key. The
//! target (scheme, host, port) and the way there (direct, a proxy, a unix
//! socket), as Go's `connectMethodKey`, so that requests that cannot
//! share a connection never share a pool entry: a tunnel is never reused
//! for another target, nor a direct connection for a proxied request.

use std::{
    cell::RefCell,
    fmt,
    hash::{BuildHasher, Hash},
    path::Path,
    sync::Arc,
};

use http::{HeaderValue, Uri};

use crate::error::{Error, ErrorKind};

#[derive(Debug, PartialEq, Eq)]
struct Inner {
    tls: bool,
    host: Box<str>,
    port: u16,
    /// `host:port` as sent in the Host header and shown in stats and errors.
    authority: Box<str>,
    via: Via,
    /// Hashed once here: the pool looks the route up twice per request,
    /// and the reused route of `from_uri` carries its hash along.
    hash: u64,
}

/// The way to the target.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Via {
    Direct,
    Proxy(Arc<ProxyHop>),
    /// Every request goes to this unix socket (Host still from the URL).
    Unix(Arc<Path>),
}

/// What a proxy does for one route.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ProxyKind {
    /// HTTP/1.1 requests in absolute form on a connection to the proxy.
    Forward,
    /// A `CONNECT` tunnel to the target, then TLS (for https) inside it.
    Tunnel,
    /// SOCKS5; `remote_dns` (socks5h) lets the proxy resolve the name.
    Socks5 { remote_dns: bool },
}

/// One proxy on the way to a target.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct ProxyHop {
    pub kind: ProxyKind,
    /// TLS to the proxy itself (an `https://` proxy URL).
    pub tls: bool,
    pub host: Box<str>,
    pub port: u16,
    /// From the proxy URL's userinfo, or `basic_auth`.
    pub credentials: Option<Credentials>,
    /// The proxy's URL without credentials, for stats and errors.
    pub shown: Box<str>,
}

/// A proxy's user name and password: `Proxy-Authorization: Basic` for an
/// HTTP proxy, RFC 1929 for SOCKS5.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Credentials {
    pub user: Box<str>,
    pub password: Box<str>,
    /// `Basic base64(user:password)`, computed once.
    pub basic: HeaderValue,
}

/// A request's route, the pool's key; cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Route(Arc<Inner>);

impl Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

/// The hash of a route's key. The authority already holds host and port.
fn key_hash(tls: bool, authority: &str, via: &Via) -> u64 {
    // Seeded at random once per process, as a map's own hasher would be.
    static SEED: std::sync::OnceLock<foldhash::fast::RandomState> = std::sync::OnceLock::new();
    SEED.get_or_init(Default::default)
        .hash_one((tls, authority, via))
}

impl Route {
    /// A direct route to the URL's target.
    pub fn from_uri(uri: &Uri) -> Result<Route, Error> {
        // Requests mostly go where the thread's last one went, and building
        // a route (a format and three allocations) cost a tenth of a small
        // request. A direct route depends on the scheme and authority
        // alone, so the thread's last one serves any client.
        thread_local! {
            static LAST: RefCell<Option<(bool, Box<str>, Route)>> = const { RefCell::new(None) };
        }
        let key = match (uri.scheme_str(), uri.authority()) {
            (Some("http"), Some(a)) => (false, a.as_str()),
            (Some("https"), Some(a)) => (true, a.as_str()),
            _ => return Route::new(uri, |_, _, _| Ok(Via::Direct)),
        };
        let hit = LAST.with_borrow(|last| match last {
            Some((tls, authority, route)) if (*tls, &**authority) == key => Some(route.clone()),
            _ => None,
        });
        if let Some(route) = hit {
            return Ok(route);
        }
        let route = Route::new(uri, |_, _, _| Ok(Via::Direct))?;
        LAST.with_borrow_mut(|last| *last = Some((key.0, key.1.into(), route.clone())));
        Ok(route)
    }

    /// The URL's target, reached the way `via(tls, host, port)` says.
    pub fn new(
        uri: &Uri,
        via: impl FnOnce(bool, &str, u16) -> Result<Via, Error>,
    ) -> Result<Route, Error> {
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
        let via = via(tls, host, port)?;
        Ok(Route(Arc::new(Inner {
            tls,
            host: host.into(),
            port,
            hash: key_hash(tls, &authority, &via),
            authority: authority.into(),
            via,
        })))
    }

    pub fn via(&self) -> &Via {
        &self.0.via
    }

    /// The proxy on the way, if any.
    pub fn proxy(&self) -> Option<&ProxyHop> {
        match &self.0.via {
            Via::Proxy(hop) => Some(hop),
            _ => None,
        }
    }

    /// HTTP/1.1 requests go in absolute form to a forwarding proxy.
    #[inline]
    pub fn forward_proxy(&self) -> Option<&ProxyHop> {
        self.proxy().filter(|hop| hop.kind == ProxyKind::Forward)
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
        f.write_str(&self.0.authority)?;
        match &self.0.via {
            Via::Direct => Ok(()),
            Via::Proxy(hop) => write!(f, " via {}", hop.shown),
            Via::Unix(path) => write!(f, " via unix:{}", path.display()),
        }
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

    #[test]
    fn the_threads_last_route_is_reused_only_for_the_same_scheme_and_authority() {
        let route = |url: &str| Route::from_uri(&url.parse().unwrap()).unwrap();
        let a = route("http://a.test:8080/one");
        let again = route("http://a.test:8080/two?q");
        assert!(Arc::ptr_eq(&a.0, &again.0), "same target: the cached route");
        for (url, authority, tls) in [
            ("https://a.test:8080/", "a.test:8080", true),
            ("http://a.test:8081/", "a.test:8081", false),
            ("http://b.test:8080/", "b.test:8080", false),
            ("http://a.test/", "a.test:80", false),
        ] {
            let other = route(url);
            assert_eq!(
                (other.authority(), other.is_tls()),
                (authority, tls),
                "{url}"
            );
            assert_eq!(
                other,
                Route::new(&url.parse().unwrap(), |_, _, _| Ok(Via::Direct)).unwrap()
            );
        }
    }
}
