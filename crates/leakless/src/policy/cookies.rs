//! The cookie store around each hop: its `Cookie` header on the request
//! (unless the caller set one), every `Set-Cookie` of the response stored,
//! redirect hops included. A caller's own `Cookie` follows the redirect
//! rule for credentials; the store's answers for each hop's own URL.

use http::header;
use url::Url;

use crate::{config::Config, exchange::Parts, response::Response};

/// Per request: whether the `Cookie` on it came from the store.
#[derive(Default)]
pub(super) struct Cookies {
    from_store: bool,
}

impl Cookies {
    /// Puts the store's cookies for `url` on `parts`, replacing the ones
    /// it put on the previous hop.
    pub fn add(&mut self, cfg: &Config, parts: &mut Parts, url: &Url) {
        let Some(store) = &cfg.cookie_store else {
            return;
        };
        if self.from_store {
            parts.headers_mut(cfg).remove(header::COOKIE);
            self.from_store = false;
        }
        if parts.headers(cfg).contains_key(header::COOKIE) {
            return;
        }
        if let Some(value) = store.cookies(url) {
            parts.headers_mut(cfg).insert(header::COOKIE, value);
            self.from_store = true;
        }
    }

    /// Stores what `res`, from `url`, set.
    pub fn store(&self, cfg: &Config, res: &Response, url: &Url) {
        if let Some(store) = &cfg.cookie_store {
            let mut set = res.headers().get_all(header::SET_COOKIE).iter();
            store.set_cookies(&mut set, url);
        }
    }
}
