//! Cookies (the `cookies` feature), with reqwest's names: a
//! [`CookieStore`] is asked for the `Cookie` header of every request and
//! told every `Set-Cookie`, redirect hops included; [`Jar`] is the one
//! built in, on the `cookie_store` crate (RFC 6265 domain, path, expiry
//! and public-suffix rules).

use std::sync::RwLock;

use http::HeaderValue;
use url::Url;

/// Where a client keeps cookies; set with
/// [`ClientBuilder::cookie_provider`](crate::ClientBuilder::cookie_provider).
pub trait CookieStore: Send + Sync {
    /// Stores the `Set-Cookie` values of a response from `url`.
    fn set_cookies(&self, cookie_headers: &mut dyn Iterator<Item = &HeaderValue>, url: &Url);
    /// The `Cookie` header for a request to `url`, if any cookie applies.
    fn cookies(&self, url: &Url) -> Option<HeaderValue>;
}

impl std::fmt::Debug for dyn CookieStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieStore")
    }
}

/// The built-in cookie jar; shareable between clients through an `Arc`.
#[derive(Debug, Default)]
pub struct Jar(RwLock<cookie_store::CookieStore>);

impl Jar {
    /// Adds a cookie as a `Set-Cookie` from `url` would.
    pub fn add_cookie_str(&self, cookie: &str, url: &Url) {
        let parsed = cookie_store::RawCookie::parse(cookie.to_owned()).ok();
        let mut store = self.0.write().unwrap_or_else(|p| p.into_inner());
        store.store_response_cookies(parsed.into_iter(), url);
    }
}

impl CookieStore for Jar {
    fn set_cookies(&self, cookie_headers: &mut dyn Iterator<Item = &HeaderValue>, url: &Url) {
        let cookies = cookie_headers.filter_map(|v| {
            let s = v.to_str().ok()?;
            cookie_store::RawCookie::parse(s.to_owned()).ok()
        });
        let mut store = self.0.write().unwrap_or_else(|p| p.into_inner());
        store.store_response_cookies(cookies, url);
    }

    fn cookies(&self, url: &Url) -> Option<HeaderValue> {
        let store = self.0.read().unwrap_or_else(|p| p.into_inner());
        let line = store
            .get_request_values(url)
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ");
        if line.is_empty() {
            return None;
        }
        HeaderValue::from_str(&line).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jar_keeps_cookies_by_domain_and_path() {
        let jar = Jar::default();
        let url = Url::parse("http://example.com/a/b").unwrap();
        jar.add_cookie_str("one=1; Path=/", &url);
        jar.add_cookie_str("two=2; Path=/a", &url);
        let all = jar.cookies(&url).unwrap();
        let mut pairs: Vec<&str> = all.to_str().unwrap().split("; ").collect();
        pairs.sort_unstable();
        assert_eq!(pairs, ["one=1", "two=2"]);
        let other = Url::parse("http://example.com/z").unwrap();
        assert_eq!(jar.cookies(&other).unwrap(), "one=1");
        assert!(
            jar.cookies(&Url::parse("http://other.org/").unwrap())
                .is_none()
        );
    }
}
