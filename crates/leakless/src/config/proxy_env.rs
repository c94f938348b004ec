//! Proxies from the environment, read as Go's `httpproxy.FromEnvironment`
//! and curl read them: `HTTP_PROXY` for http:// URLs, `HTTPS_PROXY` for
//! https:// ones, `ALL_PROXY` for either when the specific one is unset
//! (curl's), each upper case first, then lower case; `NO_PROXY` lists the
//! hosts that go direct, and `localhost` and loopback addresses always do
//! (Go's rule). `HTTP_PROXY` is ignored when `REQUEST_METHOD` is set: in a
//! CGI program a request's `Proxy:` header arrives as `HTTP_PROXY`
//! ("httpoxy").
//!
//! The variables are read through a lookup function, so tests pass a
//! table instead of changing the process's environment.

use super::{NoProxy, Proxy};

/// The proxies the environment asks for, through `var`.
pub(crate) fn from_env(var: impl Fn(&str) -> Option<String>) -> Vec<Proxy> {
    let get = |upper: &str, lower: &str| {
        [upper, lower].into_iter().find_map(|name| {
            var(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (name.to_owned(), v))
        })
    };
    let cgi = var("REQUEST_METHOD").is_some_and(|v| !v.is_empty());
    let no_proxy = get("NO_PROXY", "no_proxy")
        .and_then(|(_, v)| NoProxy::from_string(&v))
        .unwrap_or_default()
        .with_loopback();
    let all = get("ALL_PROXY", "all_proxy");
    let http = match get("HTTP_PROXY", "http_proxy") {
        Some((name, _)) if cgi => {
            tracing::warn!(
                "{name} is ignored: REQUEST_METHOD is set, so this may be a CGI program, where \
                 {name} can come from a request's Proxy header"
            );
            None
        }
        found => found,
    }
    .or_else(|| all.clone());
    let https = get("HTTPS_PROXY", "https_proxy").or(all);
    let mut out = Vec::new();
    type Make = fn(&str) -> Result<Proxy, crate::error::Error>;
    for (found, make) in [
        (http, (|u| Proxy::http(u)) as Make),
        (https, (|u| Proxy::https(u)) as Make),
    ] {
        let Some((name, url)) = found else { continue };
        match make(url.trim()) {
            Ok(proxy) => out.push(proxy.no_proxy(Some(no_proxy.clone()))),
            Err(e) => tracing::warn!("{name} is ignored: {e}"),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use http::Uri;

    use super::*;
    use crate::{config::Proxies, route::Via};

    /// Where `url` goes with `env` set: the proxy's URL, or "direct".
    fn route(env: &[(&str, &str)], url: &str) -> String {
        let mut proxies = Proxies::default();
        let lookup = |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        for p in from_env(lookup) {
            proxies.add(p);
        }
        let uri: Uri = url.parse().unwrap();
        let tls = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let host = uri
            .host()
            .unwrap()
            .trim_start_matches('[')
            .trim_end_matches(']');
        match proxies.via(&uri, tls, host, port).unwrap() {
            Via::Proxy(hop) => hop.shown.to_string(),
            _ => "direct".to_owned(),
        }
    }

    #[test]
    fn environment_table() {
        type Env = &'static [(&'static str, &'static str)];
        let cases: &[(Env, &str, &str)] = &[
            (&[], "http://example.com/", "direct"),
            (
                &[("HTTP_PROXY", "proxy:3128")],
                "http://example.com/",
                "http://proxy:3128",
            ),
            (
                &[("HTTP_PROXY", "proxy:3128")],
                "https://example.com/",
                "direct",
            ),
            (
                &[("http_proxy", "http://lower:1")],
                "http://example.com/",
                "http://lower:1",
            ),
            (
                &[
                    ("HTTP_PROXY", "http://upper:1"),
                    ("http_proxy", "http://lower:1"),
                ],
                "http://example.com/",
                "http://upper:1",
            ),
            (
                &[("HTTP_PROXY", ""), ("http_proxy", "http://lower:1")],
                "http://example.com/",
                "http://lower:1",
            ),
            (
                &[("HTTPS_PROXY", "https://sec:8443")],
                "https://example.com/",
                "https://sec:8443",
            ),
            (
                &[("https_proxy", "socks5h://s:1080")],
                "https://example.com/",
                "socks5h://s:1080",
            ),
            (
                &[("ALL_PROXY", "socks5://all:1080")],
                "http://example.com/",
                "socks5://all:1080",
            ),
            (
                &[("all_proxy", "socks5://all:1080")],
                "https://example.com/",
                "socks5://all:1080",
            ),
            (
                &[
                    ("ALL_PROXY", "socks5://all:1080"),
                    ("HTTPS_PROXY", "http://sec:3128"),
                ],
                "https://example.com/",
                "http://sec:3128",
            ),
            // httpoxy: HTTP_PROXY (either case) is not trusted in CGI.
            (
                &[("HTTP_PROXY", "http://evil:1"), ("REQUEST_METHOD", "GET")],
                "http://example.com/",
                "direct",
            ),
            (
                &[("http_proxy", "http://evil:1"), ("REQUEST_METHOD", "GET")],
                "http://example.com/",
                "direct",
            ),
            (
                &[("HTTPS_PROXY", "http://sec:1"), ("REQUEST_METHOD", "GET")],
                "https://example.com/",
                "http://sec:1",
            ),
            // NO_PROXY, either case, and Go's loopback rule.
            (
                &[("HTTP_PROXY", "p:1"), ("NO_PROXY", "example.com")],
                "http://www.example.com/",
                "direct",
            ),
            (
                &[("HTTP_PROXY", "p:1"), ("no_proxy", ".example.com")],
                "http://example.com/",
                "http://p:1",
            ),
            (
                &[("HTTP_PROXY", "p:1"), ("NO_PROXY", "10.0.0.0/8")],
                "http://10.1.2.3/",
                "direct",
            ),
            (
                &[("HTTP_PROXY", "p:1"), ("NO_PROXY", "*")],
                "http://example.com/",
                "direct",
            ),
            (&[("HTTP_PROXY", "p:1")], "http://localhost:8080/", "direct"),
            (&[("HTTP_PROXY", "p:1")], "http://127.0.0.1/", "direct"),
            (&[("HTTP_PROXY", "p:1")], "http://[::1]/", "direct"),
            // A value that is not a proxy URL is ignored, not fatal.
            (
                &[("HTTP_PROXY", "gopher://x:70")],
                "http://example.com/",
                "direct",
            ),
        ];
        for (env, url, want) in cases {
            assert_eq!(route(env, url), *want, "{env:?} {url}");
        }
    }
}
