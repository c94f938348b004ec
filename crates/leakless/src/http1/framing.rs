//! How long a response body is and whether its connection can be reused:
//! RFC 9112 §6.3 and §9.3, exactly.

use http::{Method, StatusCode, Version};

use crate::error::{Error, ErrorKind};

/// How the body of a response is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (HEAD, 1xx, 204, 304, or Content-Length: 0).
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Transfer-Encoding whose final coding is chunked.
    Chunked,
    /// Until the server closes the connection.
    Close,
}

/// What a response head says about its body and its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    pub framing: Framing,
    /// The connection may carry another request after this body.
    pub keep_alive: bool,
}

fn framing_error(what: &str) -> Error {
    Error::new(ErrorKind::Protocol, format!("bad response framing: {what}"))
}

/// What a head's fields say about framing, gathered field by field as the
/// head is parsed, so no map is needed to decide.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Signals {
    /// Every Content-Length value (across fields and comma lists) must be
    /// the same valid decimal number; the first fault is kept. Judged only
    /// if the response can have a body.
    content_length: Option<Result<u64, &'static str>>,
    transfer_encoding: bool,
    /// The last Transfer-Encoding coding so far is `chunked`.
    chunked_last: bool,
    close: bool,
    keep_alive: bool,
}

impl Signals {
    /// Takes in one field; most names are ruled out by length alone, so
    /// the length test is inlined into the parse loop and only the three
    /// names framing needs pay for a call.
    #[inline]
    pub fn see(&mut self, name: &[u8], value: &[u8]) {
        if matches!(name.len(), 14 | 17 | 10) {
            self.see_named(name, value);
        }
    }

    fn see_named(&mut self, name: &[u8], value: &[u8]) {
        match name.len() {
            14 if is(name, b"content-length") => self.content_length(value),
            17 if is(name, b"transfer-encoding") => {
                self.transfer_encoding = true;
                if let Some(last) = tokens(value).last() {
                    self.chunked_last = is(last, b"chunked");
                }
            }
            10 if is(name, b"connection") => {
                // One token, the usual value, is matched whole: the same
                // answer as the token walk, at a third of its cost.
                if is(value, b"keep-alive") {
                    self.keep_alive = true;
                } else if is(value, b"close") {
                    self.close = true;
                } else {
                    for token in tokens(value) {
                        self.close |= is(token, b"close");
                        self.keep_alive |= is(token, b"keep-alive");
                    }
                }
            }
            _ => {}
        }
    }

    fn content_length(&mut self, value: &[u8]) {
        if let Some(Err(_)) = self.content_length {
            return;
        }
        // One number, the usual value, without the comma walk.
        if !value.contains(&b',') {
            self.one_length(value.trim_ascii());
            return;
        }
        for part in value.split(|&b| b == b',') {
            self.one_length(part.trim_ascii());
            if let Some(Err(_)) = self.content_length {
                return;
            }
        }
    }

    /// One comma-separated part of a Content-Length value, trimmed.
    fn one_length(&mut self, part: &[u8]) {
        // At most 19 digits: below 10^19, which a u64 holds, so the sum
        // cannot overflow.
        let n = (!part.is_empty() && part.len() <= 19 && part.iter().all(u8::is_ascii_digit))
            .then(|| part.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')));
        self.content_length = match (n, self.content_length) {
            (None, _) => Some(Err("invalid Content-Length")),
            (Some(n), Some(Ok(found))) if found != n => {
                Some(Err("conflicting Content-Length values"))
            }
            (Some(n), _) => Some(Ok(n)),
        };
    }
}

/// `got` is `want` (lowercase letters and `-`) in any ASCII case. Setting
/// bit 5 lowercases a letter and leaves `-`; the only other byte it turns
/// into one of these is CR, which httparse lets into neither a name nor a
/// value. No early exit, so a fixed-length compare is a few vector ops
/// (`eq_ignore_ascii_case` was a third of the framing's cost per field).
pub(super) fn is<const N: usize>(got: &[u8], want: &[u8; N]) -> bool {
    debug_assert!(want.iter().all(|&b| b.is_ascii_lowercase() || b == b'-'));
    match <&[u8; N]>::try_from(got) {
        Ok(got) => {
            got.iter()
                .zip(want)
                .fold(0, |diff, (&g, &w)| diff | ((g | 0x20) ^ w))
                == 0
        }
        Err(_) => false,
    }
}

/// A field value's comma-separated tokens, trimmed, empty ones skipped.
fn tokens(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(|t| t.trim_ascii())
        .filter(|t| !t.is_empty())
}

/// Decides the framing of a final (non-1xx) response to `method`, from its
/// status line and what its fields said.
pub(crate) fn decide(
    method: &Method,
    status: StatusCode,
    version: Version,
    signals: &Signals,
) -> Result<Decision, Error> {
    let mut keep_alive = match version {
        Version::HTTP_11 => !signals.close,
        _ => signals.keep_alive && !signals.close,
    };
    let te = signals.transfer_encoding;
    if te && version != Version::HTTP_11 {
        // §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty
        // framing: close the connection after this message, whatever its
        // status.
        keep_alive = false;
    }
    let no_body = *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if no_body {
        // §6.3 rule 1 comes first: these end at the empty line "regardless
        // of the header fields present", so Content-Length and
        // Transfer-Encoding frame nothing and are not judged (a HEAD
        // response's Content-Length describes the GET's body).
        return Ok(Decision {
            framing: Framing::Empty,
            keep_alive,
        });
    }
    let cl = signals.content_length.transpose().map_err(framing_error)?;
    if te && cl.is_some() {
        // §6.3 lets a recipient treat this as an error, and for a client that
        // reuses connections it must: it is how responses get smuggled.
        return Err(framing_error("both Content-Length and Transfer-Encoding"));
    }
    let framing = if te {
        if signals.chunked_last {
            Framing::Chunked
        } else {
            keep_alive = false;
            Framing::Close
        }
    } else {
        match cl {
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
            None => {
                keep_alive = false;
                Framing::Close
            }
        }
    };
    Ok(Decision {
        framing,
        keep_alive,
    })
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::http1::head;

    fn decide_str(method: Method, s: &str) -> Result<Decision, Error> {
        let (head, signals) = head::parse(&mut BytesMut::from(s)).unwrap().unwrap();
        decide(&method, head.status, head.version, &signals)
    }

    fn get(s: &str) -> Result<Decision, Error> {
        decide_str(Method::GET, s)
    }

    #[test]
    fn names_and_tokens_match_in_any_case_and_only_at_their_length() {
        for got in [
            &b"content-length"[..],
            b"Content-Length",
            b"CONTENT-LENGTH",
            b"cOnTeNt-LeNgTh",
        ] {
            assert!(is(got, b"content-length"), "{got:?}");
        }
        for got in [
            &b"content-lengt"[..],
            b"content-lengths",
            b"content_length",
            b"content-lengtH ",
        ] {
            assert!(!is(got, b"content-length"), "{got:?}");
        }
        // Any byte from tab up but CR and LF (a superset of what httparse
        // lets into a name or a value) agrees with `eq_ignore_ascii_case`,
        // at each position.
        let want = b"keep-alive";
        for pos in 0..want.len() {
            for b in (0x09..=0xffu8).filter(|&b| b != b'\r' && b != b'\n') {
                let mut got = *want;
                got[pos] = b;
                assert_eq!(
                    is(&got, want),
                    got.eq_ignore_ascii_case(want),
                    "{b:#x} at {pos}"
                );
            }
        }
    }

    const fn d(framing: Framing, keep_alive: bool) -> Decision {
        Decision {
            framing,
            keep_alive,
        }
    }

    #[test]
    fn single_values_read_whole_agree_with_the_comma_walk() {
        for v in [
            &b"keep-alive"[..],
            b"Keep-Alive",
            b"close",
            b"CLOSE",
            b"keep-alive, close",
            b"close,keep-alive",
            b"upgrade",
            b"keep-alivex",
            b"keep-alive ,",
            b"",
            b",",
        ] {
            let mut fast = Signals::default();
            fast.see(b"Connection", v);
            let (mut close, mut keep_alive) = (false, false);
            for token in tokens(v) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
            assert_eq!((fast.close, fast.keep_alive), (close, keep_alive), "{v:?}");
        }
        for v in [
            &b"5"[..],
            b" 5 ",
            b"0005",
            b"5,5",
            b"5, 6",
            b"",
            b",",
            b"5,",
            b"x",
            b"9999999999999999999",
            b"10000000000000000000",
        ] {
            let mut fast = Signals::default();
            fast.see(b"content-length", v);
            let mut walked = Signals::default();
            for part in v.split(|&b| b == b',') {
                walked.one_length(part.trim_ascii());
                if let Some(Err(_)) = walked.content_length {
                    break;
                }
            }
            assert_eq!(fast.content_length, walked.content_length, "{v:?}");
        }
    }

    #[test]
    fn content_length_frames_and_keeps_alive() {
        let r = get("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").unwrap();
        assert_eq!(r, d(Framing::Length(5), true));
    }

    #[test]
    fn repeated_identical_content_length_is_one_length() {
        let r = get("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\n");
        assert_eq!(r.unwrap(), d(Framing::Length(5), true));
    }

    #[test]
    fn conflicting_or_invalid_content_length_is_an_error() {
        for bad in [
            "5\r\nContent-Length: 6",
            "-1",
            "5x",
            "",
            "1 2",
            "+5",
            "99999999999999999999",
        ] {
            let s = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\n");
            assert!(get(&s).unwrap_err().is_protocol(), "{bad:?}");
        }
    }

    #[test]
    fn content_length_with_transfer_encoding_is_an_error() {
        let s = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert!(get(s).unwrap_err().to_string().contains("both"));
    }

    #[test]
    fn chunked_only_when_it_is_the_last_coding() {
        let r = get("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n").unwrap();
        assert_eq!(r, d(Framing::Chunked, true));
        let r = get("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n").unwrap();
        assert_eq!(r, d(Framing::Close, false));
    }

    #[test]
    fn no_length_reads_to_close_and_is_never_reused() {
        assert_eq!(
            get("HTTP/1.1 200 OK\r\n\r\n").unwrap(),
            d(Framing::Close, false)
        );
    }

    #[test]
    fn head_204_304_have_no_body_whatever_the_headers() {
        let r = decide_str(
            Method::HEAD,
            "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n",
        );
        assert_eq!(r.unwrap(), d(Framing::Empty, true));
        for code in [204, 304] {
            let r = get(&format!("HTTP/1.1 {code} X\r\nContent-Length: 9\r\n\r\n")).unwrap();
            assert_eq!(r, d(Framing::Empty, true));
        }
        // §6.3 rule 1 precedes the Content-Length/Transfer-Encoding rules:
        // with no body to frame, they cannot be wrong.
        for fields in [
            "Content-Length: 5\r\nTransfer-Encoding: chunked",
            "Content-Length: 5, 6",
            "Content-Length: abc",
        ] {
            let s = format!("HTTP/1.1 200 OK\r\n{fields}\r\n\r\n");
            let r = decide_str(Method::HEAD, &s).unwrap();
            assert_eq!(r, d(Framing::Empty, true), "{fields}");
            let s = format!("HTTP/1.1 304 Not Modified\r\n{fields}\r\n\r\n");
            assert_eq!(get(&s).unwrap(), d(Framing::Empty, true), "{fields}");
        }
        let r = get("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").unwrap();
        assert_eq!(r, d(Framing::Empty, true));
    }

    #[test]
    fn connection_close_is_not_reused() {
        let r = get("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: foo, Close\r\n\r\n");
        assert_eq!(r.unwrap(), d(Framing::Length(1), false));
    }

    #[test]
    fn http10_is_reused_only_with_keep_alive() {
        let r = get("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").unwrap();
        assert_eq!(r, d(Framing::Length(1), false));
        let r = get("HTTP/1.0 200 OK\r\nContent-Length: 1\r\nConnection: keep-alive\r\n\r\n");
        assert_eq!(r.unwrap(), d(Framing::Length(1), true));
    }

    #[test]
    fn http10_with_transfer_encoding_is_never_reused_even_without_a_body() {
        // RFC 9112 §6.1: faulty framing; close after the message.
        for status in ["200 OK", "204 No Content"] {
            let s = format!(
                "HTTP/1.0 {status}\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
            );
            assert!(!get(&s).unwrap().keep_alive, "{status}");
        }
    }
}
