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

/// The header names of a connection's last response, in order, each with
/// its bytes as sent. A server sends the same names in the same order
/// response after response: comparing bytes costs a fraction of parsing
/// a standard name and spares a custom one its allocation.
#[derive(Debug, Default)]
pub(crate) struct Names(Vec<(Box<[u8]>, HeaderName)>);

/// Names kept per connection: the first this many fields of a head.
const NAMES_KEPT: usize = 32;

impl Names {
    /// The name at `index` of this head: the last head's at the same place
    /// when the bytes are the same (so valid), else parsed and kept.
    fn name(&mut self, index: usize, raw: &[u8]) -> Result<HeaderName, Error> {
        if let Some((last, name)) = self.0.get(index)
            && **last == *raw
        {
            return Ok(name.clone());
        }
        let name = HeaderName::from_bytes(raw).map_err(malformed)?;
        let kept = (raw.into(), name.clone());
        if index < self.0.len() {
            self.0[index] = kept;
        } else if index == self.0.len() && index < NAMES_KEPT {
            self.0.push(kept);
        }
        Ok(name)
    }
}

/// Parses one head from the front of `buf`. On success the head's bytes are
/// split off `buf` (header values share that one allocation: no copy per
/// value). `Ok(None)` means more bytes are needed. `names`: the
/// connection's, so its names are parsed once.
pub(crate) fn parse(buf: &mut BytesMut, names: &mut Names) -> Result<Option<Head>, Error> {
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
    // Offsets instead of slices, on the stack (zeroing 1.6 KB costs less
    // than a `Vec`): the head is frozen into `Bytes` below and each name
    // and value becomes a cheap slice of it. Heads are at most 64 KiB, so
    // offsets fit in `u32`.
    let base = buf.as_ptr() as usize;
    let mut fields = [[0u32; 4]; MAX_HEADERS];
    let count = res.headers.len();
    for (field, h) in fields.iter_mut().zip(res.headers.iter()) {
        let name = h.name.as_ptr() as usize - base;
        let value = h.value.as_ptr() as usize - base;
        *field = [name, name + h.name.len(), value, value + h.value.len()].map(|n| n as u32);
    }
    let bytes: Bytes = buf.split_to(len).freeze();
    let mut headers = HeaderMap::with_capacity(count);
    for (index, &[name_start, name_end, value_start, value_end]) in
        fields[..count].iter().enumerate()
    {
        let name = names.name(index, &bytes[name_start as usize..name_end as usize])?;
        let value =
            HeaderValue::from_maybe_shared(bytes.slice(value_start as usize..value_end as usize))
                .map_err(malformed)?;
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
        parse(&mut BytesMut::from(s), &mut Names::default())
    }

    #[test]
    fn complete_head_is_split_off_and_body_bytes_stay() {
        let mut buf = BytesMut::from("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello");
        let head = parse(&mut buf, &mut Names::default()).unwrap().unwrap();
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

    #[test]
    fn a_connections_names_give_the_same_heads_as_fresh_parses() {
        let heads = [
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-Id: a\r\nServer: s\r\n\r\n",
            "HTTP/1.1 200 OK\r\nCONTENT-length: 2\r\nX-Id: b\r\nServer: t\r\n\r\n",
            "HTTP/1.1 404 Not Found\r\nX-Other: c\r\nContent-Length: 3\r\n\r\n",
            "HTTP/1.1 200 OK\r\nX-Id: d\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nX-Id: a\r\nServer: s\r\n\r\n",
        ];
        let mut names = Names::default();
        for raw in heads {
            let kept = parse(&mut BytesMut::from(raw), &mut names)
                .unwrap()
                .unwrap();
            let fresh = parse_str(raw).unwrap().unwrap();
            assert_eq!(kept.status, fresh.status, "{raw:?}");
            assert_eq!(kept.headers, fresh.headers, "{raw:?}");
        }
        let shown: Vec<&str> = names.0.iter().map(|(_, n)| n.as_str()).collect();
        assert_eq!(shown, ["content-length", "x-id", "server"]);
    }

    #[test]
    fn a_name_that_differs_from_the_last_one_only_in_a_bad_byte_is_refused() {
        let mut names = Names::default();
        parse(
            &mut BytesMut::from("HTTP/1.1 200 OK\r\nX-Ab: 1\r\n\r\n"),
            &mut names,
        )
        .unwrap();
        let err = parse(
            &mut BytesMut::from("HTTP/1.1 200 OK\r\nX-A\x01: 1\r\n\r\n"),
            &mut names,
        );
        assert!(err.unwrap_err().is_protocol());
    }
}
