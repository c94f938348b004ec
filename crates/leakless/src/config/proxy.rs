//! Proxies as plain data: which requests go through which proxy (reqwest's
//! `Proxy`, Go's `Transport.Proxy`), and the hop each route takes. The
//! connect layer speaks to the proxy; the route carries the hop so that
//! the pool keys connections by it.

use std::{fmt, sync::Arc};

use base64::Engine;
use http::{HeaderValue, Uri};

use super::NoProxy;
use crate::{
    error::{Error, ErrorKind},
    route::{Credentials, ProxyHop, ProxyKind, Via},
};

/// A proxy for some or all requests; give it to
/// [`ClientBuilder::proxy`](crate::ClientBuilder::proxy).
///
/// The URL's scheme says how to talk to the proxy: `http://` (CONNECT
/// tunnels for https targets, absolute-form requests for http ones),
/// `https://` (the same, over TLS to the proxy), `socks5://` (the client
/// resolves the target's name) or `socks5h://` (the proxy does). A URL
/// without a scheme is `http://`. Credentials in the URL
/// (`http://user:pass@proxy:3128`) are sent as Basic
/// `Proxy-Authorization`, or as SOCKS5 user/password.
///
/// ```
/// let proxy = leakless::Proxy::https("http://proxy.internal:3128")?
///     .no_proxy(leakless::NoProxy::from_string("localhost, .internal"));
/// let client = leakless::Client::builder().proxy(proxy).build()?;
/// # drop(client);
/// # Ok::<(), leakless::Error>(())
/// ```
#[derive(Clone)]
pub struct Proxy {
    which: Which,
    no_proxy: Option<NoProxy>,
    tunnel_http: bool,
    credentials: Option<(String, String)>,
}

type Custom = Arc<dyn Fn(&Uri) -> Option<Result<ProxyUrl, Error>> + Send + Sync>;

#[derive(Clone)]
enum Which {
    Http(ProxyUrl),
    Https(ProxyUrl),
    All(ProxyUrl),
    Custom(Custom),
}

/// A parsed proxy URL.
#[derive(Clone, Debug)]
pub(crate) struct ProxyUrl {
    scheme: &'static str,
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (which, url) = match &self.which {
            Which::Http(u) => ("http", Some(u)),
            Which::Https(u) => ("https", Some(u)),
            Which::All(u) => ("all", Some(u)),
            Which::Custom(_) => ("custom", None),
        };
        f.debug_struct("Proxy")
            .field("for", &which)
            .field(
                "url",
                &url.map(|u| format!("{}://{}:{}", u.scheme, u.host, u.port)),
            )
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl Proxy {
    /// Proxies `http://` requests only.
    pub fn http(url: impl AsRef<str>) -> Result<Proxy, Error> {
        Ok(Proxy::new(Which::Http(ProxyUrl::parse(url.as_ref())?)))
    }

    /// Proxies `https://` requests only.
    pub fn https(url: impl AsRef<str>) -> Result<Proxy, Error> {
        Ok(Proxy::new(Which::Https(ProxyUrl::parse(url.as_ref())?)))
    }

    /// Proxies every request.
    pub fn all(url: impl AsRef<str>) -> Result<Proxy, Error> {
        Ok(Proxy::new(Which::All(ProxyUrl::parse(url.as_ref())?)))
    }

    /// Asks `f` for each request: `Some(proxy URL)` to go through it,
    /// `None` to go direct. A URL that does not parse fails the request.
    pub fn custom<F, U>(f: F) -> Proxy
    where
        F: Fn(&Uri) -> Option<U> + Send + Sync + 'static,
        U: AsRef<str>,
    {
        Proxy::new(Which::Custom(Arc::new(move |uri| {
            f(uri).map(|u| ProxyUrl::parse(u.as_ref()))
        })))
    }

    fn new(which: Which) -> Proxy {
        Proxy {
            which,
            no_proxy: None,
            tunnel_http: false,
            credentials: None,
        }
    }

    /// Credentials for the proxy, replacing any in its URL.
    pub fn basic_auth(mut self, user: &str, password: &str) -> Proxy {
        self.credentials = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// Hosts that go direct instead (see [`NoProxy`]).
    pub fn no_proxy(mut self, no_proxy: Option<NoProxy>) -> Proxy {
        self.no_proxy = no_proxy;
        self
    }

    /// curl: `--proxytunnel`. Default false: `http://` requests go to an
    /// HTTP proxy in absolute form. When true they go through a `CONNECT`
    /// tunnel too, like `https://` ones (and may speak h2c inside it).
    pub fn tunnel(mut self, yes: bool) -> Proxy {
        self.tunnel_http = yes;
        self
    }
}

impl ProxyUrl {
    pub(crate) fn parse(text: &str) -> Result<ProxyUrl, Error> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::Builder,
                format!("invalid proxy URL {:?}: {why}", redact(text)),
            )
        };
        let with_scheme;
        let text = if text.contains("://") {
            text
        } else {
            with_scheme = format!("http://{text}");
            &with_scheme
        };
        let uri: Uri = text
            .parse()
            .map_err(|_| bad("it does not parse as a URL"))?;
        let (scheme, default_port) = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref()
        {
            Some("http") => ("http", 80),
            Some("https") => ("https", 443),
            Some("socks5") => ("socks5", 1080),
            Some("socks5h") => ("socks5h", 1080),
            Some(other) => {
                return Err(bad(&format!(
                    "unsupported scheme {other:?} (use http, https, socks5 or socks5h)"
                )));
            }
            None => return Err(bad("no scheme")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let credentials = authority.as_str().rsplit_once('@').map(|(info, _)| {
            let (user, password) = info.split_once(':').unwrap_or((info, ""));
            (decode(user), decode(password))
        });
        Ok(ProxyUrl {
            scheme,
            host: host.to_owned(),
            port: authority.port_u16().unwrap_or(default_port),
            credentials,
        })
    }

    /// The hop for a target of the given scheme.
    fn hop(
        &self,
        tls_target: bool,
        tunnel_http: bool,
        creds: Option<&(String, String)>,
    ) -> ProxyHop {
        let kind = match self.scheme {
            "socks5" => ProxyKind::Socks5 { remote_dns: false },
            "socks5h" => ProxyKind::Socks5 { remote_dns: true },
            _ if tls_target || tunnel_http => ProxyKind::Tunnel,
            _ => ProxyKind::Forward,
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let credentials = creds.or(self.credentials.as_ref()).map(|(user, password)| {
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            let mut basic = HeaderValue::try_from(format!("Basic {token}"))
                .expect("base64 is a valid header value");
            basic.set_sensitive(true);
            Credentials {
                user: user.as_str().into(),
                password: password.as_str().into(),
                basic,
            }
        });
        ProxyHop {
            kind,
            tls: self.scheme == "https",
            host: self.host.as_str().into(),
            port: self.port,
            credentials,
            shown: format!("{}://{host}:{}", self.scheme, self.port).into(),
        }
    }
}

fn decode(part: &str) -> String {
    percent_encoding::percent_decode_str(part)
        .decode_utf8_lossy()
        .into_owned()
}

/// A URL for an error message: its password replaced.
fn redact(url: &str) -> String {
    match url
        .split_once("://")
        .and_then(|(s, rest)| Some((s, rest.split_once('@')?)))
    {
        Some((scheme, (info, host))) => {
            let user = info.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}

/// A client's proxies, each with its hops built once.
#[derive(Clone, Debug, Default)]
pub(crate) struct Proxies {
    rules: Vec<Rule>,
    /// None added: read the environment when the client is built.
    pub from_env: bool,
}

#[derive(Clone, Debug)]
struct Rule {
    proxy: Proxy,
    http: Option<Arc<ProxyHop>>,
    https: Option<Arc<ProxyHop>>,
}

impl Proxies {
    /// None yet: the environment's, unless some are added.
    pub fn from_env() -> Proxies {
        Proxies {
            rules: Vec::new(),
            from_env: true,
        }
    }

    pub fn add(&mut self, proxy: Proxy) {
        let creds = proxy.credentials.as_ref();
        let hop = |u: &ProxyUrl, tls| Some(Arc::new(u.hop(tls, proxy.tunnel_http, creds)));
        let (http, https) = match &proxy.which {
            Which::Http(u) => (hop(u, false), None),
            Which::Https(u) => (None, hop(u, true)),
            Which::All(u) => (hop(u, false), hop(u, true)),
            Which::Custom(_) => (None, None),
        };
        self.rules.push(Rule { proxy, http, https });
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The way to `host:port` for `uri`: the first proxy that takes it.
    pub fn via(&self, uri: &Uri, tls: bool, host: &str, port: u16) -> Result<Via, Error> {
        for rule in &self.rules {
            if rule
                .proxy
                .no_proxy
                .as_ref()
                .is_some_and(|n| n.matches(host, port))
            {
                continue;
            }
            let fixed = if tls { &rule.https } else { &rule.http };
            if let Some(hop) = fixed {
                return Ok(Via::Proxy(hop.clone()));
            }
            if let Which::Custom(f) = &rule.proxy.which {
                if let Some(url) = f(uri) {
                    let url = url.map_err(|e| e.with_host(&format!("{host}:{port}")))?;
                    let creds = rule.proxy.credentials.as_ref();
                    return Ok(Via::Proxy(Arc::new(url.hop(
                        tls,
                        rule.proxy.tunnel_http,
                        creds,
                    ))));
                }
            }
        }
        Ok(Via::Direct)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hop_of(proxies: &Proxies, url: &str) -> Option<Arc<ProxyHop>> {
        let uri: Uri = url.parse().unwrap();
        let tls = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        match proxies.via(&uri, tls, uri.host().unwrap(), port).unwrap() {
            Via::Proxy(hop) => Some(hop),
            _ => None,
        }
    }

    #[test]
    fn urls_parse_with_default_schemes_ports_and_credentials() {
        let u = ProxyUrl::parse("proxy.internal").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port),
            ("http", "proxy.internal", 80)
        );
        let u = ProxyUrl::parse("socks5h://bob:p%40ss@[::1]:9050").unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port),
            ("socks5h", "::1", 9050)
        );
        assert_eq!(u.credentials, Some(("bob".into(), "p@ss".into())));
        let u = ProxyUrl::parse("HTTPS://p:8443").unwrap();
        assert_eq!((u.scheme, u.port), ("https", 8443));
        let e = ProxyUrl::parse("ftp://u:secret@p:21")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ftp") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn each_proxy_takes_its_schemes_and_the_kind_follows_the_target() {
        let mut p = Proxies::default();
        p.add(Proxy::https("http://tunnel:3128").unwrap());
        p.add(Proxy::http("http://fwd:3128").unwrap());
        let https = hop_of(&p, "https://a.test/").unwrap();
        assert_eq!(
            (&*https.shown, https.kind),
            ("http://tunnel:3128", ProxyKind::Tunnel)
        );
        let http = hop_of(&p, "http://a.test/").unwrap();
        assert_eq!(
            (&*http.shown, http.kind),
            ("http://fwd:3128", ProxyKind::Forward)
        );

        let mut p = Proxies::default();
        p.add(Proxy::all("socks5://s:1080").unwrap().tunnel(true));
        assert_eq!(
            hop_of(&p, "http://a.test/").unwrap().kind,
            ProxyKind::Socks5 { remote_dns: false }
        );
        let mut p = Proxies::default();
        p.add(Proxy::all("http://t:3128").unwrap().tunnel(true));
        assert_eq!(
            hop_of(&p, "http://a.test/").unwrap().kind,
            ProxyKind::Tunnel
        );
    }

    #[test]
    fn credentials_become_a_sensitive_basic_header() {
        let mut p = Proxies::default();
        p.add(Proxy::all("http://alice:open%20sesame@p:3128").unwrap());
        let hop = hop_of(&p, "http://a.test/").unwrap();
        let c = hop.credentials.as_ref().unwrap();
        assert_eq!(c.basic, "Basic YWxpY2U6b3BlbiBzZXNhbWU=");
        assert!(c.basic.is_sensitive());
        assert!(!hop.shown.contains("alice"));
        let mut p = Proxies::default();
        p.add(
            Proxy::all("http://alice:x@p:3128")
                .unwrap()
                .basic_auth("bob", "y"),
        );
        let hop = hop_of(&p, "http://a.test/").unwrap();
        assert_eq!(&*hop.credentials.as_ref().unwrap().user, "bob");
    }

    #[test]
    fn no_proxy_and_custom_decide_per_request() {
        let mut p = Proxies::default();
        p.add(
            Proxy::all("http://p:3128")
                .unwrap()
                .no_proxy(NoProxy::from_string(".internal")),
        );
        assert!(hop_of(&p, "http://db.internal/").is_none());
        assert!(hop_of(&p, "http://example.com/").is_some());

        let mut p = Proxies::default();
        p.add(Proxy::custom(|uri: &Uri| {
            (uri.host() == Some("via.test")).then_some("socks5h://s:1080")
        }));
        assert!(hop_of(&p, "http://other.test/").is_none());
        let hop = hop_of(&p, "https://via.test/").unwrap();
        assert_eq!(hop.kind, ProxyKind::Socks5 { remote_dns: true });

        let mut p = Proxies::default();
        p.add(Proxy::custom(|_: &Uri| Some("gopher://x")));
        let uri: Uri = "http://a.test/".parse().unwrap();
        let e = p.via(&uri, false, "a.test", 80).unwrap_err();
        assert!(e.to_string().contains("gopher"), "{e}");
    }
}
