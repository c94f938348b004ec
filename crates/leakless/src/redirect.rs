//! Redirect policy: how many redirects a request follows and which ones
//! (Go's `CheckRedirect`, reqwest's `redirect::Policy`, same names).
//!
//! The default follows at most 10. Which method and body a hop keeps, and
//! which headers it drops, are fixed rules (Go's), not a policy: a policy
//! only says whether to follow.
//!
//! ```
//! use leakless::redirect::Policy;
//! let client = leakless::Client::builder()
//!     .redirect(Policy::custom(|attempt| {
//!         if attempt.previous().len() > 5 {
//!             attempt.error("too many redirects")
//!         } else if attempt.url().host_str() == Some("example.com") {
//!             attempt.stop()
//!         } else {
//!             attempt.follow()
//!         }
//!     }))
//!     .build()
//!     .unwrap();
//! # drop(client);
//! ```

use std::{fmt, sync::Arc};

use http::StatusCode;
use url::Url;

use crate::error::BoxError;

/// Whether to follow a redirect; set per client with
/// [`ClientBuilder::redirect`](crate::ClientBuilder::redirect) or per
/// request with [`RequestBuilder::redirect`](crate::RequestBuilder::redirect).
#[derive(Clone)]
pub struct Policy {
    inner: Kind,
}

#[derive(Clone)]
enum Kind {
    Limit(usize),
    None,
    Custom(Arc<dyn Fn(Attempt<'_>) -> Action + Send + Sync>),
}

/// One redirect about to be followed, as a custom policy sees it.
#[derive(Debug)]
pub struct Attempt<'a> {
    status: StatusCode,
    next: &'a Url,
    previous: &'a [Url],
}

/// What a policy decided; made by [`Attempt::follow`], [`Attempt::stop`]
/// or [`Attempt::error`].
#[derive(Debug)]
pub struct Action {
    inner: ActionKind,
}

#[derive(Debug)]
pub(crate) enum ActionKind {
    /// Follow the redirect.
    Follow,
    /// Return the redirect response as it is.
    Stop,
    /// End the request with this error.
    Error(BoxError),
}

impl Policy {
    /// Follow at most `max` redirects; one more is an error that names the chain.
    pub fn limited(max: usize) -> Policy {
        Policy {
            inner: Kind::Limit(max),
        }
    }

    /// Follow none: every redirect response is returned as it is.
    pub fn none() -> Policy {
        Policy { inner: Kind::None }
    }

    /// Decide each redirect with `policy`: it sees the status, the next
    /// URL and the URLs visited so far, and follows, stops (the redirect
    /// response is returned) or fails the request.
    pub fn custom<T>(policy: T) -> Policy
    where
        T: Fn(Attempt<'_>) -> Action + Send + Sync + 'static,
    {
        Policy {
            inner: Kind::Custom(Arc::new(policy)),
        }
    }

    /// Applies this policy to `attempt`.
    pub fn redirect(&self, attempt: Attempt<'_>) -> Action {
        match &self.inner {
            Kind::Custom(f) => f(attempt),
            Kind::Limit(max) if attempt.previous.len() > *max => {
                attempt.error(format!("more than {max} redirects"))
            }
            Kind::Limit(_) => attempt.follow(),
            Kind::None => attempt.stop(),
        }
    }

    /// Whether this policy never follows (no need to look at a 3xx).
    pub(crate) fn is_none(&self) -> bool {
        matches!(self.inner, Kind::None)
    }

    /// Decides one redirect: `previous` holds every URL requested so far,
    /// the one that answered `status` last.
    pub(crate) fn check(&self, status: StatusCode, next: &Url, previous: &[Url]) -> ActionKind {
        self.redirect(Attempt {
            status,
            next,
            previous,
        })
        .inner
    }
}

impl Default for Policy {
    /// Follows at most 10 redirects, as Go and reqwest do.
    fn default() -> Policy {
        Policy::limited(10)
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Kind::Limit(max) => write!(f, "Policy::limited({max})"),
            Kind::None => f.write_str("Policy::none()"),
            Kind::Custom(_) => f.write_str("Policy::custom(..)"),
        }
    }
}

impl<'a> Attempt<'a> {
    /// The redirect's status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Where the redirect points (its `Location`, resolved).
    pub fn url(&self) -> &Url {
        self.next
    }

    /// Every URL requested so far, the first request's first; the last
    /// one answered with this redirect.
    pub fn previous(&self) -> &[Url] {
        self.previous
    }

    /// Follow it.
    pub fn follow(self) -> Action {
        Action {
            inner: ActionKind::Follow,
        }
    }

    /// Do not follow: the redirect response is what `send` returns.
    pub fn stop(self) -> Action {
        Action {
            inner: ActionKind::Stop,
        }
    }

    /// Fail the request with `error` (an error of kind
    /// [`ErrorKind::Redirect`](crate::ErrorKind::Redirect) that carries it).
    pub fn error<E: Into<BoxError>>(self, error: E) -> Action {
        Action {
            inner: ActionKind::Error(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(n: usize) -> Vec<Url> {
        (0..n)
            .map(|i| Url::parse(&format!("http://h/{i}")).unwrap())
            .collect()
    }

    #[test]
    fn limited_follows_up_to_its_limit_then_errors() {
        let next = Url::parse("http://h/next").unwrap();
        let p = Policy::limited(2);
        assert!(matches!(
            p.check(StatusCode::FOUND, &next, &urls(2)),
            ActionKind::Follow
        ));
        match p.check(StatusCode::FOUND, &next, &urls(3)) {
            ActionKind::Error(e) => assert_eq!(e.to_string(), "more than 2 redirects"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            Policy::none().check(StatusCode::FOUND, &next, &urls(1)),
            ActionKind::Stop
        ));
    }

    #[test]
    fn custom_sees_status_next_and_chain() {
        let p = Policy::custom(|a| {
            assert_eq!(a.status(), StatusCode::SEE_OTHER);
            assert_eq!(a.url().path(), "/next");
            assert_eq!(a.previous().len(), 2);
            a.stop()
        });
        let next = Url::parse("http://h/next").unwrap();
        assert!(matches!(
            p.check(StatusCode::SEE_OTHER, &next, &urls(2)),
            ActionKind::Stop
        ));
    }
}
