//! Parsing a response head with httparse into `http` types, within limits.

use std::mem::MaybeUninit;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Version};

use crate::{
    attempt::{MAX_HEAD_BYTES, MAX_HEADERS},
    error::{Error, ErrorKind},
};

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct Head {
    pub status: StatusCode,
    pub version: Version,
    pub headers: HeaderMap,
}

fn malformed(what: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Protocol,
        format!("malformed response head: {what}"),
    )
}

/// Parses one head from the front of `buf`. On success the head's bytes are
/// split off `buf` (header values share that one allocation: no copy per
/// value). `Ok(None)` means more bytes are needed.
pub(crate) fn parse(buf: &mut BytesMut) -> Result<Option<Head>, Error> {
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
    // Offsets instead of slices: the head is frozen into `Bytes` below and
    // each value becomes a cheap slice of it.
    let base = buf.as_ptr() as usize;
    let fields: Vec<(HeaderName, usize, usize)> = res
        .headers
        .iter()
        .map(|h| {
            let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(malformed)?;
            let start = h.value.as_ptr() as usize - base;
            Ok((name, start, start + h.value.len()))
        })
        .collect::<Result<_, Error>>()?;
    let bytes: Bytes = buf.split_to(len).freeze();
    let mut headers = HeaderMap::with_capacity(fields.len());
    for (name, start, end) in fields {
        let value = HeaderValue::from_maybe_shared(bytes.slice(start..end)).map_err(malformed)?;
        headers.append(name, value);
    }
    Ok(Some(Head {
        status,
        version,
        headers,
    }))
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
        parse(&mut BytesMut::from(s))
    }

    #[test]
    fn complete_head_is_split_off_and_body_bytes_stay() {
        let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello");
        let head = parse(&mut buf).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.version, Version::HTTP_11);
        assert_eq!(head.headers["x-a"], "b");
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
}
