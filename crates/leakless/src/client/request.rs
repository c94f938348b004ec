//! `RequestBuilder`: method, URL, headers, body and a per-request deadline.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};

use super::Client;
use crate::{
    body::Body,
    error::{Error, ErrorKind},
    exchange::Parts,
    response::Response,
};

/// A request being built; [`send`](RequestBuilder::send) sends it.
/// A bad URL or header is reported by `send`, not by the builder methods.
#[derive(Debug)]
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder {
    client: Client,
    /// Boxed: the request moves through four futures on its way out, and
    /// a pointer is cheaper to move than the ~300 bytes of `Parts` (about
    /// 250 instructions of copies against one allocation).
    parts: Result<Box<Parts>, Error>,
}

impl RequestBuilder {
    #[track_caller]
    pub(crate) fn new(client: Client, method: Method, uri: Result<Uri, Error>) -> RequestBuilder {
        let site = std::panic::Location::caller();
        let parts = uri.map(|uri| {
            Box::new(Parts {
                method,
                uri,
                headers: HeaderMap::new(),
                plain: false,
                body: Body::empty(),
                timeout: None,
                site,
                redirect: None,
            })
        });
        RequestBuilder { client, parts }
    }

    /// Adds a header (appending, so a name may repeat).
    pub fn header<K, V>(mut self, name: K, value: V) -> RequestBuilder
    where
        K: TryInto<HeaderName>,
        K::Error: Into<http::Error>,
        V: TryInto<HeaderValue>,
        V::Error: Into<http::Error>,
    {
        if let Ok(parts) = &mut self.parts {
            match (name.try_into(), value.try_into()) {
                (Ok(n), Ok(v)) => {
                    parts.headers.append(n, v);
                }
                (Err(e), _) => self.parts = Err(bad_header(e.into())),
                (_, Err(e)) => self.parts = Err(bad_header(e.into())),
            }
        }
        self
    }

    /// Adds every header of `headers`.
    pub fn headers(mut self, headers: HeaderMap) -> RequestBuilder {
        if let Ok(parts) = &mut self.parts {
            for (name, value) in &headers {
                parts.headers.append(name, value.clone());
            }
        }
        self
    }

    /// `Authorization: Basic` with `username` and `password` (RFC 7617),
    /// marked sensitive (kept out of logs and dropped on a redirect to
    /// another origin).
    pub fn basic_auth<U, P>(self, username: U, password: Option<P>) -> RequestBuilder
    where
        U: std::fmt::Display,
        P: std::fmt::Display,
    {
        use base64::Engine as _;
        let pair = match password {
            Some(p) => format!("{username}:{p}"),
            None => format!("{username}:"),
        };
        let token = base64::engine::general_purpose::STANDARD.encode(pair);
        self.sensitive_header(format!("Basic {token}"))
    }

    /// `Authorization: Bearer token`, marked sensitive.
    pub fn bearer_auth<T: std::fmt::Display>(self, token: T) -> RequestBuilder {
        self.sensitive_header(format!("Bearer {token}"))
    }

    fn sensitive_header(mut self, value: String) -> RequestBuilder {
        if let Ok(parts) = &mut self.parts {
            match HeaderValue::try_from(value) {
                Ok(mut v) => {
                    v.set_sensitive(true);
                    parts.headers.insert(http::header::AUTHORIZATION, v);
                }
                Err(e) => self.parts = Err(bad_header(e.into())),
            }
        }
        self
    }

    /// Sets the body: bytes, strings, or a [`Body`] stream.
    pub fn body(mut self, body: impl Into<Body>) -> RequestBuilder {
        if let Ok(parts) = &mut self.parts {
            parts.body = body.into();
        }
        self
    }

    /// Sets the body to `json` serialized, and `Content-Type:
    /// application/json` unless a content type is set already.
    #[cfg(feature = "json")]
    pub fn json<T: serde::Serialize + ?Sized>(mut self, json: &T) -> RequestBuilder {
        if let Ok(parts) = &mut self.parts {
            match serde_json::to_vec(json) {
                Ok(body) => {
                    content_type(&mut parts.headers, "application/json");
                    parts.body = body.into();
                }
                Err(e) => self.parts = Err(serialize("JSON body", e)),
            }
        }
        self
    }

    /// Sets the body to `form` URL-encoded, and `Content-Type:
    /// application/x-www-form-urlencoded` unless a content type is set already.
    pub fn form<T: serde::Serialize + ?Sized>(mut self, form: &T) -> RequestBuilder {
        if let Ok(parts) = &mut self.parts {
            match serde_urlencoded::to_string(form) {
                Ok(body) => {
                    content_type(&mut parts.headers, "application/x-www-form-urlencoded");
                    parts.body = body.into();
                }
                Err(e) => self.parts = Err(serialize("form body", e)),
            }
        }
        self
    }

    /// Appends `query`, URL-encoded, to the URL's query string (a map, a
    /// struct, or a slice of pairs such as `&[("q", "rust")]`).
    pub fn query<T: serde::Serialize + ?Sized>(mut self, query: &T) -> RequestBuilder {
        if let Ok(parts) = &mut self.parts {
            let added = match serde_urlencoded::to_string(query) {
                Ok(q) => q,
                Err(e) => {
                    self.parts = Err(serialize("query", e));
                    return self;
                }
            };
            if added.is_empty() {
                return self;
            }
            let mut uri = std::mem::take(&mut parts.uri).into_parts();
            let (path, old) = match &uri.path_and_query {
                Some(pq) => (pq.path(), pq.query()),
                None => ("/", None),
            };
            let pq = match old {
                Some(old) if !old.is_empty() => format!("{path}?{old}&{added}"),
                _ => format!("{path}?{added}"),
            };
            match pq.parse() {
                Ok(pq) => {
                    uri.path_and_query = Some(pq);
                    match Uri::from_parts(uri) {
                        Ok(u) => parts.uri = u,
                        Err(e) => self.parts = Err(serialize("query", e)),
                    }
                }
                Err(e) => self.parts = Err(serialize("query", e)),
            }
        }
        self
    }

    /// Sets the body to a `multipart/form-data` form and its Content-Type
    /// (with the boundary). A form with a file or stream part is a stream:
    /// its request is never replayed (no retry, and a 307 or 308 is
    /// returned as it is).
    #[cfg(feature = "multipart")]
    pub fn multipart(mut self, form: crate::multipart::Form) -> RequestBuilder {
        if let Ok(parts) = &mut self.parts {
            parts
                .headers
                .insert(http::header::CONTENT_TYPE, form.content_type());
            parts.body = form.into_body();
        }
        self
    }

    /// The total deadline of this request, from `send` to the end of the
    /// body; overrides the client's `timeout`.
    pub fn timeout(mut self, d: Duration) -> RequestBuilder {
        if let Ok(parts) = &mut self.parts {
            parts.timeout = Some(d);
        }
        self
    }

    /// This request's redirect policy, instead of the client's
    /// ([`ClientBuilder::redirect`](crate::ClientBuilder::redirect)).
    pub fn redirect(mut self, policy: crate::redirect::Policy) -> RequestBuilder {
        if let Ok(parts) = &mut self.parts {
            parts.redirect = Some(policy);
        }
        self
    }

    /// Sends the request and waits for the response head.
    ///
    /// Dropping the returned future at any point leaves no socket, slot or
    /// waiter behind.
    #[track_caller]
    pub fn send(self) -> impl Future<Output = Result<Response, Error>> + Send + 'static {
        let site = std::panic::Location::caller();
        let RequestBuilder { client, parts } = self;
        async move {
            let mut parts = parts?;
            parts.site = site;
            client.send(parts).await
        }
    }
}

/// Sets `Content-Type` unless the caller did.
fn content_type(headers: &mut HeaderMap, value: &'static str) {
    headers
        .entry(http::header::CONTENT_TYPE)
        .or_insert(HeaderValue::from_static(value));
}

fn serialize(what: &str, e: impl Into<crate::error::BoxError>) -> Error {
    Error::new(ErrorKind::Request, format!("cannot serialize the {what}")).with_source(e)
}

fn bad_header(e: http::Error) -> Error {
    Error::new(ErrorKind::Request, "invalid header").with_source(e)
}

pub(crate) fn parse_uri<U>(url: U) -> Result<Uri, Error>
where
    U: TryInto<Uri>,
    U::Error: Into<http::Error>,
{
    url.try_into()
        .map_err(|e| Error::new(ErrorKind::Request, "invalid URL").with_source(e.into()))
}
