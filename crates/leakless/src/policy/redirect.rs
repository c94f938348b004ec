//! Following a redirect, by Go's rules: which statuses are redirects, the
//! method and body of the next hop, which headers it loses, its Referer,
//! and a clear error for a `Location` that cannot be followed.

use http::{HeaderMap, Method, StatusCode, Uri, header};
use url::Url;

use crate::{
    body::Body,
    config::Config,
    error::{Error, ErrorKind},
    exchange::Parts,
    redirect::{ActionKind, Policy},
    response::Response,
};

/// Headers that carry credentials: never sent to another origin (a
/// different scheme, host or port) than the one they were set for. Once
/// dropped they stay dropped for the rest of the chain.
const SENSITIVE: [header::HeaderName; 4] = [
    header::AUTHORIZATION,
    header::COOKIE,
    header::PROXY_AUTHORIZATION,
    header::WWW_AUTHENTICATE,
];

/// Headers that describe a body, dropped with it.
const BODY: [header::HeaderName; 4] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::TRANSFER_ENCODING,
];

/// Where `res` redirects to, if it is a redirect the policy follows.
/// `chain` holds every URL requested so far (this hop's is added the
/// first time); `None`: `res` is the final response.
pub(super) fn next(
    cfg: &Config,
    policy: &Policy,
    res: &Response,
    parts: &Parts,
    chain: &mut Vec<Url>,
) -> Result<Option<Url>, Error> {
    let status = res.status();
    if !is_redirect(status) || policy.is_none() {
        return Ok(None);
    }
    // Go: a 307 or 308 must send the body again; a stream cannot be, so
    // the redirect itself is the answer.
    if keeps_body(status) && !parts.body.is_replayable() {
        return Ok(None);
    }
    if chain.is_empty() {
        let first = Url::parse(&parts.uri.to_string()).map_err(|e| {
            fail(
                status,
                chain,
                &format!("the request URL is not a URL ({e})"),
            )
        })?;
        chain.push(first);
    }
    let here = chain.last().expect("just filled");
    let Some(location) = res.headers().get(header::LOCATION) else {
        return Err(fail(status, chain, "it has no Location header"));
    };
    let location = match location.to_str() {
        Ok(l) => l,
        Err(_) => return Err(fail(status, chain, "its Location is not ASCII text")),
    };
    let mut to = here.join(location).map_err(|e| {
        fail(
            status,
            chain,
            &format!("its Location {location:?} is not a URL ({e})"),
        )
    })?;
    if !matches!(to.scheme(), "http" | "https") {
        let why = format!("its Location {location:?} is not an http(s) URL");
        return Err(fail(status, chain, &why));
    }
    to.set_fragment(None);
    scheme_allowed(cfg, &to).map_err(|why| fail(status, chain, &why))?;
    match policy.check(status, &to, chain) {
        ActionKind::Follow => Ok(Some(to)),
        ActionKind::Stop => Ok(None),
        ActionKind::Error(e) => Err(Error::new(
            ErrorKind::Redirect,
            format!(
                "the redirect policy stopped at {to} ({})",
                named(status, chain)
            ),
        )
        .with_source(e)),
    }
}

/// Whether a redirect to `to` may be followed at all, whatever the policy:
/// an `https_only` client refuses one to anything but `https://`.
fn scheme_allowed(cfg: &Config, to: &Url) -> Result<(), String> {
    if cfg.dial.https_only && to.scheme() != "https" {
        return Err(format!("https_only forbids following it to {to}"));
    }
    Ok(())
}

/// Turns `parts` into the request for the next hop, `to`, after `status`
/// from `from`.
pub(super) fn apply(
    cfg: &Config,
    parts: &mut Parts,
    status: StatusCode,
    from: &Url,
    to: &Url,
) -> Result<(), Error> {
    let uri: Uri = to.as_str().parse().map_err(|e: http::uri::InvalidUri| {
        Error::new(
            ErrorKind::Redirect,
            format!("cannot follow the {status} redirect from {from} to {to}"),
        )
        .with_source(e)
    })?;
    if !keeps_body(status) {
        // Go: 301, 302 and 303 turn anything but GET and HEAD into a GET
        // without a body.
        if parts.method != Method::GET && parts.method != Method::HEAD {
            parts.method = Method::GET;
        }
        parts.body = Body::empty();
        drop_all(parts.headers_mut(cfg), &BODY);
    }
    let headers = parts.headers_mut(cfg);
    if !same_origin(from, to) {
        drop_all(headers, &SENSITIVE);
        // A Host set by the caller named the first origin.
        headers.remove(header::HOST);
    }
    headers.remove(header::REFERER);
    if cfg.referer
        && let Some(referer) = referer(from, to)
    {
        headers.insert(header::REFERER, referer);
    }
    parts.uri = uri;
    Ok(())
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// 307 and 308 repeat the request as it was, body included.
fn keeps_body(status: StatusCode) -> bool {
    matches!(status.as_u16(), 307 | 308)
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// The Referer for a hop from `from`: its URL without credentials or
/// fragment, and none from https to http (it would leak a private URL).
fn referer(from: &Url, to: &Url) -> Option<http::HeaderValue> {
    if from.scheme() == "https" && to.scheme() == "http" {
        return None;
    }
    let mut r = from.clone();
    let _ = r.set_username("");
    let _ = r.set_password(None);
    r.set_fragment(None);
    http::HeaderValue::from_str(r.as_str()).ok()
}

fn drop_all(headers: &mut HeaderMap, names: &[header::HeaderName]) {
    for name in names {
        headers.remove(name);
    }
}

/// The error for a redirect that cannot be followed, naming the chain.
fn fail(status: StatusCode, chain: &[Url], why: &str) -> Error {
    Error::new(
        ErrorKind::Redirect,
        format!(
            "cannot follow the redirect: {why} ({})",
            named(status, chain)
        ),
    )
}

/// `302 after http://a/ -> http://a/b`: the chain so far, the last hop's status.
fn named(status: StatusCode, chain: &[Url]) -> String {
    let urls: Vec<&str> = chain.iter().map(Url::as_str).collect();
    format!("{} answered by {}", status.as_u16(), urls.join(" -> "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn origin_is_scheme_host_and_port() {
        let a = url("http://h/x");
        assert!(same_origin(&a, &url("http://h:80/y")));
        assert!(!same_origin(&a, &url("http://h:81/")));
        assert!(!same_origin(&a, &url("https://h/")));
        assert!(!same_origin(&a, &url("http://g/")));
    }

    #[test]
    fn referer_drops_credentials_and_is_never_sent_from_https_to_http() {
        let r = referer(&url("http://u:p@h/x#f"), &url("http://g/")).unwrap();
        assert_eq!(r, "http://h/x");
        assert!(referer(&url("https://h/x"), &url("http://h/")).is_none());
        assert!(referer(&url("http://h/x"), &url("https://h/")).is_some());
    }

    #[test]
    fn the_error_names_the_chain() {
        let e = fail(
            StatusCode::FOUND,
            &[url("http://a/1"), url("http://a/2")],
            "it has no Location header",
        );
        let s = e.to_string();
        assert!(
            s.contains("302 answered by http://a/1 -> http://a/2"),
            "{s}"
        );
        assert!(s.contains("no Location"), "{s}");
    }
}
