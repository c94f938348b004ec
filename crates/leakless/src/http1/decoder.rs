//! Body decoding: Content-Length, chunked (RFC 9112 §7.1) and read-to-close,
//! incrementally over whatever bytes have arrived.

use bytes::{Bytes, BytesMut};

use super::framing::Framing;
use crate::error::{Error, ErrorKind};

/// Longest chunk-size line (with extensions) and longest trailer section.
const MAX_LINE: usize = 16 * 1024;
const MAX_TRAILERS: usize = 64 * 1024;

/// One step of decoding.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Body bytes, in order.
    Data(Bytes),
    /// The buffer holds no complete piece: read more from the socket.
    NeedMore,
    /// The body ended; whatever is left in the buffer belongs to nobody.
    Done,
}

#[derive(Debug)]
enum State {
    Length(u64),
    Close,
    ChunkSize,
    ChunkData(u64),
    ChunkDataEnd,
    Trailers(usize),
    Done,
}

/// Decodes one response body from a read buffer the caller keeps filling.
#[derive(Debug)]
pub(crate) struct Decoder {
    state: State,
}

fn bad_chunk(what: &str) -> Error {
    Error::new(ErrorKind::Protocol, format!("bad chunked body: {what}"))
}

impl Decoder {
    pub fn new(framing: Framing) -> Decoder {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::Close => State::Close,
        };
        Decoder { state }
    }

    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Bytes of body still to come, when the framing says.
    pub fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// Takes the next piece of the body off the front of `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Step, Error> {
        loop {
            match self.state {
                State::Done => return Ok(Step::Done),
                State::Length(n) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let take = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
                    let left = n - take as u64;
                    self.state = if left == 0 {
                        State::Done
                    } else {
                        State::Length(left)
                    };
                    return Ok(Step::Data(buf.split_to(take).freeze()));
                }
                State::Close => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    return Ok(Step::Data(buf.split().freeze()));
                }
                State::ChunkSize => {
                    let Some(line) = take_line(buf, MAX_LINE, "chunk-size line too long")? else {
                        return Ok(Step::NeedMore);
                    };
                    let size = parse_chunk_size(&line)?;
                    self.state = if size == 0 {
                        State::Trailers(0)
                    } else {
                        State::ChunkData(size)
                    };
                }
                State::ChunkData(n) => {
                    if buf.is_empty() {
                        return Ok(Step::NeedMore);
                    }
                    let take = buf.len().min(usize::try_from(n).unwrap_or(usize::MAX));
                    let left = n - take as u64;
                    self.state = if left == 0 {
                        State::ChunkDataEnd
                    } else {
                        State::ChunkData(left)
                    };
                    return Ok(Step::Data(buf.split_to(take).freeze()));
                }
                State::ChunkDataEnd => {
                    if buf.len() < 2 {
                        return Ok(Step::NeedMore);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(bad_chunk("chunk data not followed by CRLF"));
                    }
                    let _ = buf.split_to(2);
                    self.state = State::ChunkSize;
                }
                State::Trailers(seen) => {
                    let Some(line) = take_line(buf, MAX_TRAILERS - seen, "trailers too long")?
                    else {
                        return Ok(Step::NeedMore);
                    };
                    self.state = if line.len() == 2 {
                        State::Done
                    } else if !is_field_line(&line) {
                        return Err(bad_chunk("malformed trailer field"));
                    } else {
                        State::Trailers(seen + line.len())
                    };
                }
            }
        }
    }

    /// The peer closed the connection: fine only for read-to-close bodies.
    pub fn eof(&mut self) -> Result<(), Error> {
        match self.state {
            State::Done => Ok(()),
            State::Close => {
                self.state = State::Done;
                Ok(())
            }
            State::Length(n) => Err(Error::new(
                ErrorKind::Protocol,
                format!("connection closed with {n} bytes of the body (per Content-Length) unsent"),
            )),
            _ => Err(bad_chunk("connection closed before the last chunk")),
        }
    }
}

/// Splits one CRLF-terminated line (CRLF included, at most `max` bytes)
/// off `buf`.
fn take_line(buf: &mut BytesMut, max: usize, too_long: &str) -> Result<Option<BytesMut>, Error> {
    match buf.iter().take(max).position(|&b| b == b'\n') {
        Some(i) if i == 0 || buf[i - 1] != b'\r' => Err(bad_chunk("line not ended by CRLF")),
        Some(i) => Ok(Some(buf.split_to(i + 1))),
        None if buf.len() >= max => Err(bad_chunk(too_long)),
        None => Ok(None),
    }
}

/// `chunk-size [ BWS ";" chunk-ext ] CRLF`; extensions are ignored.
fn parse_chunk_size(line: &[u8]) -> Result<u64, Error> {
    let line = &line[..line.len() - 2];
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(bad_chunk("invalid chunk size"));
    }
    let (hex, rest) = line.split_at(digits);
    // BWS is SP / HTAB only (RFC 9110 §5.6.3): a bare CR or any other
    // whitespace after the size is not a chunk-size line.
    let ext_at = rest
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(rest.len());
    let rest = &rest[ext_at..];
    if !rest.is_empty() && rest[0] != b';' {
        return Err(bad_chunk("invalid chunk size"));
    }
    if rest.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(bad_chunk("control character in chunk extension"));
    }
    // 1*HEXDIG: leading zeros are valid and count for nothing (§7.1).
    let zeros = hex.iter().take_while(|&&b| b == b'0').count();
    let hex = &hex[zeros..];
    if hex.len() > 16 {
        return Err(bad_chunk("chunk size overflows"));
    }
    Ok(hex.iter().fold(0u64, |n, &b| {
        let d = (b as char).to_digit(16).expect("hex digits only");
        n << 4 | u64::from(d)
    }))
}

/// `field-name ":" OWS field-value OWS CRLF` (RFC 9112 §5): a token, then
/// no control characters but HTAB. Obs-fold lines start with whitespace,
/// which is not a token character.
fn is_field_line(line: &[u8]) -> bool {
    let line = &line[..line.len() - 2];
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return false;
    };
    let (name, value) = (&line[..colon], &line[colon + 1..]);
    let tchar = |b: &u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(b);
    !name.is_empty()
        && name.iter().all(tchar)
        && value
            .iter()
            .all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` in pieces of `step` bytes; returns the body or the error.
    fn run(
        framing: Framing,
        input: &[u8],
        step: usize,
        eof: bool,
    ) -> Result<(Vec<u8>, bool), Error> {
        let mut dec = Decoder::new(framing);
        let mut buf = BytesMut::new();
        let mut body = Vec::new();
        for piece in input.chunks(step.max(1)) {
            buf.extend_from_slice(piece);
            loop {
                match dec.decode(&mut buf)? {
                    Step::Data(b) => body.extend_from_slice(&b),
                    Step::NeedMore => break,
                    Step::Done => return Ok((body, buf.is_empty())),
                }
            }
        }
        if eof {
            dec.eof()?;
        }
        Ok((body, dec.is_done() && buf.is_empty()))
    }

    #[test]
    fn content_length_stops_exactly_and_leaves_the_rest() {
        let mut dec = Decoder::new(Framing::Length(3));
        let mut buf = BytesMut::from("abcde");
        assert_eq!(
            dec.decode(&mut buf).unwrap(),
            Step::Data(Bytes::from("abc"))
        );
        assert_eq!(dec.decode(&mut buf).unwrap(), Step::Done);
        assert_eq!(&buf[..], b"de");
    }

    #[test]
    fn chunked_decodes_in_any_split() {
        let input = b"5;ext=1\r\nhello\r\n1 ; a=\"b\"\r\n!\r\n0\r\nX-T: 1\r\n\r\n";
        for step in 1..input.len() {
            let (body, clean) = run(Framing::Chunked, input, step, false).unwrap();
            assert_eq!(body, b"hello!", "step {step}");
            assert!(clean);
        }
    }

    #[test]
    fn invalid_chunk_sizes_are_errors() {
        for bad in [
            &b"x\r\n"[..],
            b"\r\n",
            b"5 x\r\n",
            b"11111111111111111\r\n",
            b"5\n",
        ] {
            let err = run(Framing::Chunked, bad, 64, false).unwrap_err();
            assert!(err.is_protocol(), "{bad:?}");
        }
    }

    #[test]
    fn chunk_size_whitespace_is_sp_or_htab_only() {
        // A bare CR (or form feed, or any other ASCII whitespace) after the
        // size was trimmed away and the line accepted.
        for bad in [
            &b"5\r\r\nhello\r\n0\r\n\r\n"[..],
            b"5\x0c\r\nhello\r\n0\r\n\r\n",
        ] {
            let err = run(Framing::Chunked, bad, 64, false).unwrap_err();
            assert!(err.is_protocol(), "{bad:?}");
        }
        let (body, clean) = run(
            Framing::Chunked,
            b"5 \t;x\r\nhello\r\n0\t\r\n\r\n",
            64,
            false,
        )
        .unwrap();
        assert_eq!((&body[..], clean), (&b"hello"[..], true));
    }

    #[test]
    fn leading_zeros_do_not_count_towards_overflow() {
        let input = b"00000000000000000005\r\nhello\r\n000000000000000000\r\n\r\n";
        let (body, clean) = run(Framing::Chunked, input, 7, false).unwrap();
        assert_eq!((&body[..], clean), (&b"hello"[..], true));
        assert!(run(Framing::Chunked, b"010000000000000000\r\n", 64, false).is_err());
        let max = b"0ffffffffffffffff\r\n";
        let mut dec = Decoder::new(Framing::Chunked);
        let mut buf = BytesMut::from(&max[..]);
        assert_eq!(dec.decode(&mut buf).unwrap(), Step::NeedMore);
    }

    #[test]
    fn trailers_must_be_field_lines() {
        for bad in [
            &b"0\r\nBad Name: x\r\n\r\n"[..],
            b"0\r\n: x\r\n\r\n",
            b"0\r\nX-A: a\r\n folded\r\n\r\n",
            b"0\r\nX-A: a\x01b\r\n\r\n",
            b"0\r\nX-A: a\rb\r\n\r\n",
        ] {
            assert!(run(Framing::Chunked, bad, 64, false).is_err(), "{bad:?}");
        }
        let ok = b"0\r\nX-A: a\tb \xff\r\nX-B:\r\n\r\n";
        assert_eq!(run(Framing::Chunked, ok, 3, false).unwrap(), (vec![], true));
    }

    /// A last chunk and trailer lines of exactly `total` bytes, then the
    /// final CRLF.
    fn trailers(total: usize) -> Vec<u8> {
        let line = |n: usize| format!("X: {}\r\n", "a".repeat(n - 5)).into_bytes();
        let mut t = b"0\r\n".to_vec();
        let mut rest = total;
        while rest >= 2000 {
            t.extend(line(1000));
            rest -= 1000;
        }
        t.extend(line(rest / 2));
        t.extend(line(rest - rest / 2));
        t.extend_from_slice(b"\r\n");
        t
    }

    #[test]
    fn trailer_limit_holds_at_its_exact_edge() {
        // The limit allowed one byte of slack per line, so the running total
        // could pass it and `MAX_TRAILERS - seen` underflow: a panic in
        // debug builds, no limit at all in release builds.
        let ok = trailers(MAX_TRAILERS - 2);
        assert_eq!(
            run(Framing::Chunked, &ok, 4096, false).unwrap(),
            (vec![], true)
        );
        for total in [MAX_TRAILERS - 1, MAX_TRAILERS, MAX_TRAILERS + 1] {
            let err = run(Framing::Chunked, &trailers(total), 4096, false).unwrap_err();
            assert!(
                err.to_string().contains("trailers too long"),
                "{total}: {err}"
            );
        }
    }

    #[test]
    fn chunk_data_must_end_with_crlf() {
        assert!(run(Framing::Chunked, b"1\r\nab\r\n", 64, false).is_err());
    }

    #[test]
    fn body_shorter_than_content_length_is_an_error() {
        let err = run(Framing::Length(10), b"abc", 64, true).unwrap_err();
        assert!(err.to_string().contains("7 bytes"), "{err}");
    }

    #[test]
    fn truncated_chunked_body_is_an_error() {
        assert!(run(Framing::Chunked, b"5\r\nhel", 64, true).is_err());
    }

    #[test]
    fn read_to_close_ends_at_eof() {
        let (body, done) = run(Framing::Close, b"all of it", 3, true).unwrap();
        assert_eq!(body, b"all of it");
        assert!(done);
    }

    #[test]
    fn over_long_chunk_line_and_trailers_are_refused() {
        let long_ext = format!("1;{}\r\n", "a".repeat(MAX_LINE));
        assert!(run(Framing::Chunked, long_ext.as_bytes(), 4096, false).is_err());
        let mut trailers = String::from("0\r\n");
        for _ in 0..MAX_TRAILERS / 10 {
            trailers.push_str("X-A: 1234\r\n");
        }
        assert!(run(Framing::Chunked, trailers.as_bytes(), 4096, false).is_err());
    }
}
