//! The one request a run repeats: parsed once, cloned cheaply per send
//! (the URI and body are reference-counted), its body read to the end
//! without being kept.

use http::Uri;
use leakless::{
    Bytes, Client, HeaderMap, Method, RequestBuilder, header::HeaderName, header::HeaderValue,
};

use super::recorder::Outcome;

#[derive(Clone, Debug)]
pub struct Template {
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
}

impl Template {
    pub fn new(
        method: &str,
        uri: Uri,
        headers: &[String],
        body: Option<Bytes>,
    ) -> Result<Template, String> {
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("invalid method {method:?}"))?;
        let mut map = HeaderMap::new();
        for h in headers {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| format!("invalid header {h:?}: expected 'Name: value'"))?;
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| format!("invalid header name in {h:?}"))?;
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| format!("invalid header value in {h:?}"))?;
            map.append(name, value);
        }
        Ok(Template {
            method,
            uri,
            headers: map,
            body,
        })
    }

    /// The request, ready to send on `client`.
    pub fn request(&self, client: &Client) -> RequestBuilder {
        let mut req = client.request(self.method.clone(), self.uri.clone());
        if !self.headers.is_empty() {
            req = req.headers(self.headers.clone());
        }
        if let Some(body) = &self.body {
            req = req.body(body.clone());
        }
        req
    }

    /// Sends one request and reads its body to the end, which hands the
    /// connection back to the pool before this returns.
    pub async fn send(&self, client: &Client) -> Outcome {
        let mut res = match self.request(client).send().await {
            Ok(res) => res,
            Err(e) => return Outcome::Failed(e),
        };
        let mut bytes = 0;
        loop {
            match res.chunk().await {
                Ok(Some(chunk)) => bytes += chunk.len() as u64,
                Ok(None) => break,
                Err(e) => return Outcome::Failed(e),
            }
        }
        Outcome::Done {
            status: res.status().as_u16(),
            version: res.version(),
            bytes,
        }
    }
}

/// A URL the engine can load: http or https, with a host.
pub fn parse_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(format!("invalid URL {url:?}: use http:// or https://"));
    }
    if uri.host().is_none() {
        return Err(format!("invalid URL {url:?}: no host"));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_method_and_headers() {
        let t = Template::new(
            "post",
            "http://x/".parse().unwrap(),
            &["Accept: text/plain".into(), "x-a:1".into()],
            None,
        )
        .unwrap();
        assert_eq!(t.method, Method::POST);
        assert_eq!(t.headers["accept"], "text/plain");
        assert_eq!(t.headers["x-a"], "1");
        assert!(
            Template::new(
                "GET",
                "http://x/".parse().unwrap(),
                &["nocolon".into()],
                None
            )
            .is_err()
        );
    }
}
