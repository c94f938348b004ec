//! Parsing a response head with httparse, within limits. The fields stay
//! as received (`Fields`); what framing needs is gathered on the way.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::{StatusCode, Version};

use super::{
    fields::Fields,
    framing::{self, Signals},
};
use crate::{
    attempt::{MAX_HEAD_BYTES, MAX_HEADERS},
    error::{Error, ErrorKind},
};

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct Head {
    pub status: StatusCode,
    pub version: Version,
    pub headers: Fields,
}

fn malformed(what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!("malformed response head: {what}"),
    )
}

/// Parses one head from the front of `buf`, with what its fields say about
/// framing. On success the head's bytes are split off `buf` and kept whole
/// (a map of them is built only if asked for). `Ok(None)` means more bytes
/// are needed.
pub(crate) fn parse(buf: &mut BytesMut) -> Result<Option<(Head, Signals)>, Error> {
    if buf.is_empty() {
        return Ok(None);
    }
    // Uninitialised slots: zeroing 100 headers per parse was a third of the
    // engine's instructions per request.
    let mut slots: [MaybeUninit<httparse::Header<'_>>; MAX_HEADERS] =
        [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut []);
    let parsed = httparse::ParserConfig::default()
        .parse_response_with_uninit_headers(&mut res, buf, &mut slots);
    let len = match parsed {
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD_BYTES => return Err(too_long()),
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() > MAX_HEAD_BYTES => return Err(too_long()),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(malformed(format_args!(
                "more than {MAX_HEADERS} header fields"
            )));
        }
        Err(e) => return Err(malformed(e)),
    };
    let version = match res.version {
        Some(1) => Version::HTTP_11,
        _ => Version::HTTP_10,
    };
    let code = res.code.unwrap_or(0);
    let status =
        StatusCode::from_u16(code).map_err(|_| malformed(format_args!("status {code}")))?;
    let mut signals = Signals::default();
    let mut encoded = false;
    for field in res.headers.iter() {
        let name = field.name.as_bytes();
        signals.see(name, field.value);
        encoded |= name.len() == 16 && framing::is(name, b"content-encoding");
    }
    let count = res.headers.len();
    let bytes: Bytes = buf.split_to(len).freeze();
    let head = Head {
        status,
        version,
        headers: Fields::from_head(bytes, count, encoded),
    };
    Ok(Some((head, signals)))
}

fn too_long() -> Error {
    malformed(format_args!(
        "head longer than {} KiB",
        MAX_HEAD_BYTES / 1024
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Option<Head>, Error> {
        Ok(parse(&mut BytesMut::from(s))?.map(|(head, _)| head))
    }

    #[test]
    fn complete_head_is_split_off_and_body_bytes_stay() {
        let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello");
        let (head, _) = parse(&mut buf).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.version, Version::HTTP_11);
        assert_eq!(head.headers.map()["x-a"], "b");
        assert_eq!(&buf[..], b"hello");
    }

    #[test]
    fn partial_head_asks_for_more() {
        assert!(
            parse_str("HTTP/1.1 200 OK\r\nContent-Le")
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn malformed_status_line_is_a_protocol_error() {
        let err = parse_str("HTTP/1.1 2x0 OK\r\n\r\n").unwrap_err();
        assert!(err.is_protocol(), "{err}");
        assert!(
            parse_str("HTTX/1.1 200 OK\r\n\r\n")
                .unwrap_err()
                .is_protocol()
        );
    }

    #[test]
    fn invalid_header_is_a_protocol_error() {
        assert!(
            parse_str("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n")
                .unwrap_err()
                .is_protocol()
        );
    }

    #[test]
    fn obs_fold_is_refused() {
        let err = parse_str("HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\n\r\n").unwrap_err();
        assert!(err.is_protocol(), "{err}");
    }

    #[test]
    fn head_over_64_kib_is_refused_complete_or_not() {
        let big = format!("HTTP/1.1 200 OK\r\nX-A: {}\r\n", "a".repeat(MAX_HEAD_BYTES));
        assert!(parse_str(&big).unwrap_err().to_string().contains("64 KiB"));
        assert!(
            parse_str(&(big + "\r\n"))
                .unwrap_err()
                .to_string()
                .contains("64 KiB")
        );
    }

    #[test]
    fn more_than_100_headers_is_refused() {
        let mut s = String::from("HTTP/1.1 200 OK\r\n");
        for i in 0..=MAX_HEADERS {
            s.push_str(&format!("X-{i}: v\r\n"));
        }
        s.push_str("\r\n");
        assert!(
            parse_str(&s)
                .unwrap_err()
                .to_string()
                .contains("more than 100")
        );
    }

    #[test]
    fn http10_is_recognised() {
        let head = parse_str("HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.version, Version::HTTP_10);
    }

    /// What httparse itself reports, as a map.
    fn eager(s: &[u8]) -> http::HeaderMap {
        let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut res = httparse::Response::new(&mut slots);
        res.parse(s).unwrap();
        let mut map = http::HeaderMap::new();
        for h in res.headers.iter() {
            map.append(
                http::HeaderName::from_bytes(h.name.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(h.value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn the_kept_fields_build_the_map_httparse_saw() {
        let heads: [&[u8]; 5] = [
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-Id:a\r\nServer: s \t\r\n\r\nx",
            b"HTTP/1.1 200 OK\nX-A: 1\nx-a: \t2\n\n",
            b"HTTP/1.1 404 Not: Found\r\nX-Empty:\r\nX-Sp:   \r\nX-O: \xff\x80 z\r\n\r\n",
            b"HTTP/1.0 200\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA: b:c: d\r\nB: \"q\" , r\r\n\r\n",
        ];
        for raw in heads {
            let (head, _) = parse(&mut BytesMut::from(raw)).unwrap().unwrap();
            assert_eq!(
                head.headers.map(),
                &eager(raw),
                "{:?}",
                raw.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn a_content_encoding_field_is_noticed_whatever_its_case() {
        let encoded = |s: &str| {
            let (head, _) = parse(&mut BytesMut::from(s)).unwrap().unwrap();
            head.headers.may_be_encoded()
        };
        assert!(encoded("HTTP/1.1 200 OK\r\nCONTENT-encoding: gzip\r\n\r\n"));
        assert!(!encoded(
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-Content-Encoding: gzip\r\n\r\n"
        ));
    }
}
