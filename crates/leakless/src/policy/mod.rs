//! The policies around one exchange: redirects (each hop's response set
//! aside before the next asks for a connection), and the final response's
//! URL. They deal in whole exchanges and responses and never touch a socket.
//!
//! - `hop`: one exchange with its tracer, span and the total deadline.
//! - `redirect`: Go's rules for following a redirect (method, body,
//!   headers, Referer) and for a bad `Location`.
//! - `decompress`: `Accept-Encoding` offered, the final response decoded.
//! - `cookies`: the cookie store asked and told at every hop.

#[cfg(feature = "cookies")]
mod cookies;
mod decompress;
mod hop;
mod redirect;

use std::time::Duration;

use tokio::time::Instant;
use url::Url;

use self::hop::Hop;
use http::{HeaderMap, Method};

use crate::{config::Config, error::Error, exchange::Parts, pool::Pool, response::Response};

/// What the façade fixed for a request before its first hop.
pub(crate) struct Request {
    /// Its number for observers.
    pub id: u64,
    /// When `send` was called, if anything needs it.
    pub started: Option<Instant>,
    pub deadline: Option<(Instant, Duration)>,
}

/// Sends `parts` and follows redirects as the policy says; the response
/// returned is the last hop's.
pub(crate) async fn send(
    pool: &Pool,
    mut parts: Box<Parts>,
    req: Request,
) -> Result<Response, Error> {
    let cfg = pool.config();
    let decoding = match &cfg.plain_headers {
        // A request that set no header of its own (the usual GET) goes
        // with the ones built with the client, not even cloned.
        Some((_, offers)) if parts.headers.is_empty() && parts.method != Method::HEAD => {
            parts.plain = true;
            *offers
        }
        _ => with_defaults(cfg, &parts.method, &mut parts.headers),
    };
    let per_request = parts.redirect.take();
    let policy = per_request.as_ref().unwrap_or(&cfg.redirect);
    // Every URL requested so far; filled only once a redirect is seen.
    let mut chain: Vec<Url> = Vec::new();
    let mut from: Option<(http::StatusCode, Url)> = None;
    #[cfg(feature = "cookies")]
    let mut cookies = cookies::Cookies::default();
    loop {
        // Only a client with a cookie store needs each hop's URL parsed.
        #[cfg(feature = "cookies")]
        let hop_url = match &cfg.cookie_store {
            Some(_) => url_of(&parts, &chain),
            None => None,
        };
        #[cfg(feature = "cookies")]
        if let Some(url) = &hop_url {
            cookies.add(cfg, &mut parts, url);
        }
        let to = from
            .as_ref()
            .map(|_| chain.last().expect("a redirect fills the chain").as_str());
        let hop = Hop {
            id: req.id,
            n: chain.len().saturating_sub(1) as u32,
            started: req.started,
            deadline: req.deadline,
            from: match (&from, to) {
                (Some((status, url)), Some(to)) => Some((*status, url.as_str(), to)),
                _ => None,
            },
        };
        // The response lives only in this block and leaves it as its
        // (boxed) set-aside, so it is held across no await below: this
        // future stays the size of the hop every request waits on.
        let (status, set_aside, next) = {
            let res = match hop::one(pool, &mut parts, hop).await {
                Ok(res) => res,
                Err(e) => return Err(e.with_url(|| url_of(&parts, &chain))),
            };
            #[cfg(feature = "cookies")]
            if let Some(url) = &hop_url {
                cookies.store(cfg, &res, url);
            }
            let next = match redirect::next(cfg, policy, &res, &parts, &mut chain) {
                Ok(Some(next)) => Ok(next),
                Ok(None) => {
                    let mut res = res;
                    if decoding {
                        decompress::decode(cfg, &parts.method, &mut res);
                    }
                    return Ok(finish(res, parts.uri, chain));
                }
                Err(e) => Err(e),
            };
            (res.status(), res.discard(), next)
        };
        let next = match next {
            Ok(next) => next,
            Err(e) => {
                set_aside.await;
                return Err(e.with_url(|| url_of(&parts, &chain)));
            }
        };
        if let Ok(route) = cfg.dial.route(&parts.uri) {
            pool.note_redirect(&route);
        }
        // The connection goes back (or is closed) before the next hop asks
        // for one: a chain never holds two, and a host at its cap of one
        // still serves it. Bounded by the total deadline as well.
        match req.deadline {
            None => set_aside.await,
            Some((at, _)) => {
                let _ = tokio::time::timeout_at(at, set_aside).await;
            }
        }
        let previous = chain.last().expect("filled by redirect::next").clone();
        redirect::apply(cfg, &mut parts, status, &previous, &next)?;
        chain.push(next);
        from = Some((status, previous));
    }
}

/// Adds the client's default headers that `headers` lacks, then offers
/// its encodings (not for HEAD); whether it did. `ClientBuilder::build`
/// runs it once on no headers: `Config::plain_headers`.
pub(crate) fn with_defaults(cfg: &Config, method: &Method, headers: &mut HeaderMap) -> bool {
    for (name, value) in &cfg.default_headers {
        if !headers.contains_key(name) {
            headers.insert(name, value.clone());
        }
    }
    decompress::offer(cfg, method, headers)
}

/// The final response, told its URL.
fn finish(mut res: Response, uri: http::Uri, mut chain: Vec<Url>) -> Response {
    match chain.pop() {
        Some(url) => res.set_url(url),
        None => res.set_uri(uri),
    }
    res
}

/// The URL of the hop that failed, for the error.
fn url_of(parts: &Parts, chain: &[Url]) -> Option<Url> {
    chain
        .last()
        .cloned()
        .or_else(|| Url::parse(&parts.uri.to_string()).ok())
}
