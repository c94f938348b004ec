//! Not API. The HTTP/1.1 response reader (head parse, framing, body decode)
//! over bytes in memory, for the cargo-fuzz target in `fuzz/` (feature
//! `fuzzing`) and for this crate's own property tests. It drives exactly the
//! engine's pure parts in the order `H1Conn::read_head` and `Incoming` do,
//! with the socket replaced by a list of pieces.

use bytes::BytesMut;
use http::{HeaderMap, Method, Version};

use crate::http1::{
    conn::parse_final_head,
    decoder::{Decoder, Step},
    framing::Framing,
};

/// How the body was delimited (a public mirror of the engine's framing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFraming {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked.
    Chunked,
    /// Until the peer closes.
    Close,
}

/// Where reading stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The body ended. `reusable`: the connection could carry the next
    /// request (the response allowed it and no byte was left over).
    Complete {
        /// The connection would go back to the pool.
        reusable: bool,
    },
    /// The input ran out without EOF before the end: the reader would wait.
    NeedMore,
    /// The head was refused, or EOF came before it was complete.
    HeadError,
    /// The body was refused, or EOF came before its end.
    BodyError,
}

/// What the reader made of its input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Status of the final response, once its head was parsed.
    pub status: Option<u16>,
    /// Its version.
    pub version: Option<Version>,
    /// Its header fields.
    pub headers: HeaderMap,
    /// Its framing.
    pub framing: Option<BodyFraming>,
    /// Whether the head allowed reuse.
    pub keep_alive: bool,
    /// Bytes of input up to the end of the final head (1xx heads included).
    pub head_len: usize,
    /// The decoded body, as far as it got.
    pub body: Vec<u8>,
    /// How it ended.
    pub end: End,
}

/// The socket, replaced by pieces of input.
struct Wire<'a> {
    pieces: std::slice::Iter<'a, &'a [u8]>,
    fed: usize,
}

impl Wire<'_> {
    /// One "read": the next piece into `buf`; false when none is left.
    fn fill(&mut self, buf: &mut BytesMut) -> bool {
        match self.pieces.next() {
            Some(p) => {
                buf.extend_from_slice(p);
                self.fed += p.len();
                true
            }
            None => false,
        }
    }

    fn rest_is_empty(&mut self) -> bool {
        self.pieces.all(|p| p.is_empty())
    }
}

/// Reads one response to `method` from `pieces`, as if each piece were one
/// read from the socket; after the last one the peer closes when `eof`.
/// Panics only when the engine breaks one of its own invariants.
pub fn read_response(method: &Method, pieces: &[&[u8]], eof: bool) -> Outcome {
    let total: usize = pieces.iter().map(|p| p.len()).sum();
    let mut out = Outcome {
        status: None,
        version: None,
        headers: HeaderMap::new(),
        framing: None,
        keep_alive: false,
        head_len: 0,
        body: Vec::new(),
        end: End::NeedMore,
    };
    let mut buf = BytesMut::new();
    let mut wire = Wire {
        pieces: pieces.iter(),
        fed: 0,
    };
    let (head, decision) = loop {
        let before = buf.len();
        match parse_final_head(method, &mut buf) {
            Err(_) => {
                out.end = End::HeadError;
                return out;
            }
            Ok(Some(found)) => break found,
            Ok(None) => {
                // 1xx heads may have been taken off; nothing was added.
                assert!(buf.len() <= before, "partial parse grew the buffer");
                if !wire.fill(&mut buf) {
                    out.end = if eof { End::HeadError } else { End::NeedMore };
                    return out;
                }
            }
        }
    };
    assert!(
        !head.status.is_informational(),
        "an interim or 101 head was returned as final"
    );
    out.head_len = wire.fed - buf.len();
    out.status = Some(head.status.as_u16());
    out.version = Some(head.version);
    out.headers = head.headers.into_map();
    out.keep_alive = decision.keep_alive;
    out.framing = Some(match decision.framing {
        Framing::Empty => BodyFraming::Empty,
        Framing::Length(n) => BodyFraming::Length(n),
        Framing::Chunked => BodyFraming::Chunked,
        Framing::Close => BodyFraming::Close,
    });
    let mut dec = Decoder::new(decision.framing);
    // Each step takes bytes, asks for more, or ends: bound the loop so a
    // step that does none of these fails instead of hanging.
    let mut steps = 0usize;
    loop {
        steps += 1;
        assert!(steps <= 2 * total + 8, "decoder stopped making progress");
        // The order of `Incoming::poll_chunk`: decode, then read more.
        match dec.decode(&mut buf) {
            Err(_) => {
                out.end = End::BodyError;
                return out;
            }
            Ok(Step::Data(data)) => {
                assert!(!data.is_empty(), "empty data step");
                out.body.extend_from_slice(&data);
                if dec.is_done() {
                    break;
                }
            }
            Ok(Step::Done) => break,
            Ok(Step::NeedMore) => {
                if !wire.fill(&mut buf) {
                    if !eof {
                        out.end = End::NeedMore;
                        return out;
                    }
                    match dec.eof() {
                        Ok(()) => break,
                        Err(_) => {
                            out.end = End::BodyError;
                            return out;
                        }
                    }
                }
            }
        }
    }
    assert!(dec.is_done(), "body ended with the decoder not done");
    // Bytes left in the buffer, or still to arrive, belong to no request:
    // `Incoming::finish` closes the connection, or the idle check discards it.
    let leftover = !buf.is_empty() || !wire.rest_is_empty();
    out.end = End::Complete {
        reusable: decision.keep_alive && !leftover,
    };
    out
}

/// Cuts `input` into pieces of 1..=`max` bytes chosen by a seeded xorshift.
pub fn split(input: &[u8], seed: u64, max: usize) -> Vec<&[u8]> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut rest = input;
    let mut pieces = Vec::new();
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let n = (state % max.max(1) as u64) as usize + 1;
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        pieces.push(piece);
        rest = tail;
    }
    pieces
}

/// The fuzz target. Byte 0: bit 0 HEAD (else GET), bit 1 the peer closes
/// after the input, bits 2.. the largest piece; byte 1 seeds the split; the
/// rest is what the server sent. Reads it whole, in pieces and (when short)
/// a byte at a time; all three must agree, and the result must obey the
/// framing's invariants. Panics on any violation.
pub fn check(data: &[u8]) {
    let [flags, seed, input @ ..] = data else {
        return;
    };
    let method = if flags & 1 == 1 {
        Method::HEAD
    } else {
        Method::GET
    };
    let eof = flags & 2 == 2;
    let max = 1 + usize::from(flags >> 2) * 4;
    let whole = read_response(&method, &[input], eof);
    let split_run = read_response(&method, &split(input, u64::from(*seed), max), eof);
    assert_eq!(whole, split_run, "the split changed the result");
    if input.len() <= 2048 {
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let bytewise = read_response(&method, &bytes, eof);
        assert_eq!(whole, bytewise, "byte-at-a-time reading changed the result");
    }
    invariants(&method, input, eof, &whole);
}

/// What must hold of any outcome, whatever the input.
pub fn invariants(method: &Method, input: &[u8], eof: bool, out: &Outcome) {
    let after_head = input.len() - out.head_len;
    assert!(out.body.len() <= after_head, "body longer than the input");
    let Some(framing) = out.framing else {
        assert!(out.body.is_empty() && out.status.is_none());
        assert!(matches!(out.end, End::HeadError | End::NeedMore));
        return;
    };
    let status = out.status.expect("framing implies a head");
    assert!((200..=999).contains(&status), "final status {status}");
    let no_body = *method == Method::HEAD || status == 204 || status == 304;
    if no_body {
        assert_eq!(framing, BodyFraming::Empty, "HEAD/204/304 with a body");
    }
    if let End::Complete { reusable: true } = out.end {
        assert!(out.keep_alive && framing != BodyFraming::Close);
    }
    match framing {
        BodyFraming::Empty => {
            assert!(out.body.is_empty());
            assert!(matches!(out.end, End::Complete { .. }));
        }
        BodyFraming::Length(n) => {
            assert!(n > 0, "Length(0) must be Empty");
            let got = out.body.len() as u64;
            match out.end {
                End::Complete { .. } => assert_eq!(got, n, "Length framing yielded {got}"),
                End::NeedMore => assert!(got < n && !eof),
                End::BodyError => assert!(got < n && eof, "Length body error with {got}/{n}"),
                End::HeadError => unreachable!("head error after a head"),
            }
            assert_eq!(
                &input[out.head_len..out.head_len + out.body.len()],
                &out.body[..]
            );
        }
        BodyFraming::Chunked => {
            if let End::Complete { .. } = out.end {
                // At least "0\r\n\r\n" of framing around the data.
                assert!(
                    out.body.len() + 5 <= after_head,
                    "chunked body without framing"
                );
            }
        }
        BodyFraming::Close => {
            assert!(!out.keep_alive, "read-to-close must not be reused");
            match out.end {
                End::Complete { reusable } => {
                    assert!(eof && !reusable);
                    assert_eq!(
                        &out.body[..],
                        &input[out.head_len..],
                        "read-to-close lost bytes"
                    );
                }
                End::NeedMore => assert!(!eof),
                other => panic!("read-to-close ended with {other:?}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The fuzz target, build-checked and run without cargo-fuzz: over the
    //! seed corpus (the differential test's cases) in every mode, then over
    //! seeded random mutations of it, a bounded number of times.

    use super::*;

    fn seeds() -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds");
        let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .expect("fuzz/seeds")
            .map(|e| std::fs::read(e.unwrap().path()).unwrap())
            .collect();
        seeds.sort();
        assert!(seeds.len() > 50, "fuzz/seeds holds {} files", seeds.len());
        seeds
    }

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    const TOKENS: &[&[u8]] = &[
        b"\r\n",
        b"\n",
        b"\r",
        b"\r\n\r\n",
        b"Content-Length: 3\r\n",
        b"Transfer-Encoding: chunked\r\n",
        b"Connection: close\r\n",
        b"Connection: keep-alive\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n",
        b"0\r\n\r\n",
        b"ffffffffffffffff",
        b";a=\"b\"",
        b": ",
        b" ",
        b"\t",
        b"\0",
    ];

    fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
        for _ in 0..1 + rng.below(6) {
            let at = rng.below(data.len() + 1);
            match rng.below(6) {
                0 if at < data.len() => data[at] = rng.next() as u8,
                1 if at < data.len() => {
                    let end = (at + 1 + rng.below(8)).min(data.len());
                    data.drain(at..end);
                }
                2 => {
                    let t = TOKENS[rng.below(TOKENS.len())];
                    data.splice(at..at, t.iter().copied());
                }
                3 if at < data.len() => {
                    // Duplicate a slice (repeats fields, chunks, responses).
                    let end = (at + 1 + rng.below(64)).min(data.len());
                    let piece = data[at..end].to_vec();
                    data.splice(at..at, piece);
                }
                4 => data.truncate(at.max(2)),
                _ => data.insert(at, rng.next() as u8),
            }
        }
    }

    #[test]
    fn seeds_hold_in_every_mode() {
        for seed in seeds() {
            for flags in 0..16u8 {
                let mut data = seed.clone();
                // HEAD or GET, EOF or not, pieces of 1 to 13 bytes.
                data[0] = flags;
                data[1] = flags.wrapping_mul(37);
                check(&data);
            }
            check(&seed);
        }
    }

    #[test]
    fn mutated_and_random_inputs_never_break_an_invariant() {
        let seeds = seeds();
        let mut rng = Rng(0x1eaf_1e55);
        for _ in 0..3000 {
            let mut data = if rng.below(8) == 0 {
                (0..rng.below(96)).map(|_| rng.next() as u8).collect()
            } else {
                seeds[rng.below(seeds.len())].clone()
            };
            mutate(&mut rng, &mut data);
            check(&data);
        }
    }
}
