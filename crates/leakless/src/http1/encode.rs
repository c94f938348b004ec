//! Writing a request head into a reusable buffer.

use http::{Method, header};

use crate::{attempt::Outgoing, body::Body};

/// How the request body is delimited on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyLen {
    /// No body at all.
    None,
    /// `Content-Length: n`.
    Known(u64),
    /// `Transfer-Encoding: chunked`: the length is not known up front.
    Chunked,
}

impl BodyLen {
    pub fn of(body: &Body) -> BodyLen {
        if body.is_empty() {
            return BodyLen::None;
        }
        match body.exact_len() {
            Some(n) => BodyLen::Known(n),
            None => BodyLen::Chunked,
        }
    }
}

/// Appends `METHOD path HTTP/1.1` (`http://host:port/path` to a
/// forwarding proxy), `Host`, the caller's headers and our framing
/// headers. The framing headers are ours alone: a caller's Content-Length
/// or Transfer-Encoding could desynchronise the connection.
pub(crate) fn head(buf: &mut Vec<u8>, req: &Outgoing<'_>, body: BodyLen) {
    let (method, uri, authority, headers, close) =
        (req.method, req.uri, req.authority, req.headers, req.close);
    buf.extend_from_slice(method.as_str().as_bytes());
    buf.push(b' ');
    if req.forward.is_some() {
        buf.extend_from_slice(b"http://");
        buf.extend_from_slice(authority.as_bytes());
    }
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    buf.extend_from_slice(if target.is_empty() {
        b"/"
    } else {
        target.as_bytes()
    });
    buf.extend_from_slice(b" HTTP/1.1\r\n");
    if !headers.contains_key(header::HOST) {
        buf.extend_from_slice(b"host: ");
        buf.extend_from_slice(authority.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
    for (name, value) in headers {
        if name == header::CONTENT_LENGTH || name == header::TRANSFER_ENCODING {
            continue;
        }
        if close && name == header::CONNECTION && value.as_bytes().eq_ignore_ascii_case(b"close") {
            // We send `Connection: close` ourselves, exactly once.
            continue;
        }
        buf.extend_from_slice(name.as_str().as_bytes());
        buf.extend_from_slice(b": ");
        buf.extend_from_slice(value.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }
    if let Some(credentials) = req.forward.and_then(|f| f.credentials) {
        if !headers.contains_key(header::PROXY_AUTHORIZATION) {
            buf.extend_from_slice(b"proxy-authorization: ");
            buf.extend_from_slice(credentials.as_bytes());
            buf.extend_from_slice(b"\r\n");
        }
    }
    match body {
        BodyLen::Known(n) => {
            buf.extend_from_slice(b"content-length: ");
            buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
            buf.extend_from_slice(b"\r\n");
        }
        // RFC 9110 §8.6: a method that expects content says it has none.
        BodyLen::None if expects_body(method) => buf.extend_from_slice(b"content-length: 0\r\n"),
        BodyLen::None => {}
        BodyLen::Chunked => buf.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    if close {
        buf.extend_from_slice(b"connection: close\r\n");
    }
    buf.extend_from_slice(b"\r\n");
}

fn expects_body(method: &Method) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue, Uri};

    use super::*;
    use crate::attempt::Forward;

    fn encode(method: Method, uri: &str, headers: HeaderMap, body: BodyLen, close: bool) -> String {
        encode_via(method, uri, headers, body, close, None)
    }

    fn encode_via(
        method: Method,
        uri: &str,
        headers: HeaderMap,
        body: BodyLen,
        close: bool,
        forward: Option<Forward<'_>>,
    ) -> String {
        let mut buf = Vec::new();
        let uri: Uri = uri.parse().unwrap();
        let req = Outgoing {
            method: &method,
            uri: &uri,
            authority: "example.com:80",
            headers: &headers,
            close,
            forward,
        };
        head(&mut buf, &req, body);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn to_a_forwarding_proxy_the_target_is_absolute_with_its_credentials() {
        let basic = HeaderValue::from_static("Basic YTpi");
        let fwd = Forward {
            credentials: Some(&basic),
        };
        let s = encode_via(
            Method::GET,
            "http://example.com/a?b=1",
            HeaderMap::new(),
            BodyLen::None,
            false,
            Some(fwd),
        );
        assert_eq!(
            s,
            "GET http://example.com:80/a?b=1 HTTP/1.1\r\nhost: example.com:80\r\n\
             proxy-authorization: Basic YTpi\r\n\r\n"
        );
    }

    #[test]
    fn get_has_request_line_host_and_nothing_else() {
        let s = encode(
            Method::GET,
            "http://example.com/a?b=1",
            HeaderMap::new(),
            BodyLen::None,
            false,
        );
        assert_eq!(s, "GET /a?b=1 HTTP/1.1\r\nhost: example.com:80\r\n\r\n");
    }

    #[test]
    fn empty_path_becomes_slash() {
        let s = encode(
            Method::GET,
            "http://example.com",
            HeaderMap::new(),
            BodyLen::None,
            false,
        );
        assert!(s.starts_with("GET / HTTP/1.1\r\n"));
    }

    #[test]
    fn framing_headers_are_ours_and_close_is_sent_once() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("999"));
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
        let s = encode(Method::POST, "http://e/", h, BodyLen::Known(3), true);
        assert_eq!(s.matches("content-length").count(), 1);
        assert!(s.contains("content-length: 3\r\n"));
        assert_eq!(
            s.to_ascii_lowercase().matches("connection: close").count(),
            1
        );
    }

    #[test]
    fn post_without_body_says_zero_and_streams_are_chunked() {
        assert!(
            encode(
                Method::POST,
                "http://e/",
                HeaderMap::new(),
                BodyLen::None,
                false
            )
            .contains("content-length: 0")
        );
        let s = encode(
            Method::PUT,
            "http://e/",
            HeaderMap::new(),
            BodyLen::Chunked,
            false,
        );
        assert!(s.contains("transfer-encoding: chunked\r\n"));
    }

    #[test]
    fn callers_host_header_wins() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("other"));
        let s = encode(Method::GET, "http://e/", h, BodyLen::None, false);
        assert!(s.contains("host: other\r\n") && !s.contains("example.com"));
    }
}
