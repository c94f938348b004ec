//! Content decoding: a compressed body in, the decoded bytes out, chunk by
//! chunk and bounded per chunk (a small input can inflate hugely), with
//! the codecs behind async-compression driven push-style. The body that
//! owns the connection feeds it; this knows nothing of connections.

use std::{fmt, io};

use bytes::{Buf, Bytes, BytesMut};
use compression_codecs::{
    DecodeV2,
    core::util::{PartialBuffer, WriteBuffer},
};
use http::HeaderValue;

/// The most decoded bytes one step hands out.
const CHUNK: usize = 32 * 1024;

/// A `Content-Encoding` this build can decode (each is a cargo feature).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encoding {
    #[cfg(feature = "gzip")]
    Gzip,
    #[cfg(feature = "brotli")]
    Brotli,
    #[cfg(feature = "zstd")]
    Zstd,
    #[cfg(feature = "deflate")]
    Deflate,
}

impl Encoding {
    /// Every encoding of this build, in the order `Accept-Encoding` offers them.
    pub const ALL: &[Encoding] = &[
        #[cfg(feature = "gzip")]
        Encoding::Gzip,
        #[cfg(feature = "brotli")]
        Encoding::Brotli,
        #[cfg(feature = "zstd")]
        Encoding::Zstd,
        #[cfg(feature = "deflate")]
        Encoding::Deflate,
    ];

    /// The encoding a `Content-Encoding` value names, if this build has it
    /// (one coding only: a stack of them is left to the caller).
    pub fn from_header(value: &HeaderValue) -> Option<Encoding> {
        let v = value.to_str().ok()?.trim();
        Encoding::ALL
            .iter()
            .copied()
            .find(|e| v.eq_ignore_ascii_case(e.token()) || (e.is_gzip() && v == "x-gzip"))
    }

    /// The HTTP token.
    pub fn token(self) -> &'static str {
        match self {
            #[cfg(feature = "gzip")]
            Encoding::Gzip => "gzip",
            #[cfg(feature = "brotli")]
            Encoding::Brotli => "br",
            #[cfg(feature = "zstd")]
            Encoding::Zstd => "zstd",
            #[cfg(feature = "deflate")]
            Encoding::Deflate => "deflate",
        }
    }

    fn is_gzip(self) -> bool {
        self.token() == "gzip"
    }

    /// Gzip members and zstd frames may follow one another in one body.
    fn concatenates(self) -> bool {
        matches!(self.token(), "gzip" | "zstd")
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.token())
    }
}

/// One body's decoder.
pub(crate) struct Decoder {
    encoding: Encoding,
    /// Made on the first bytes: `deflate` is a zlib stream by the RFC, but
    /// some servers send raw deflate, told apart by the first two bytes.
    codec: Option<Box<dyn DecodeV2 + Send>>,
    /// Compressed bytes not consumed yet.
    input: Bytes,
    /// The last step filled its output: the codec may hold more.
    full: bool,
    /// The codec could do nothing with the input it has: it needs more.
    starved: bool,
    /// A gzip member or zstd frame just ended: the body may end here, or
    /// another may follow.
    between: bool,
    /// The codec saw the end of its stream.
    ended: bool,
    /// Everything is out.
    done: bool,
}

impl Decoder {
    pub fn new(encoding: Encoding) -> Decoder {
        Decoder {
            encoding,
            codec: None,
            input: Bytes::new(),
            full: false,
            starved: false,
            between: false,
            ended: false,
            done: false,
        }
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// It needs more compressed bytes to go on (after the stream's end it
    /// takes and ignores whatever follows).
    pub fn wants_input(&self) -> bool {
        (self.input.is_empty() && !self.full) || self.starved
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// More compressed bytes.
    pub fn push(&mut self, data: Bytes) {
        self.starved = false;
        if self.input.is_empty() {
            self.input = data;
        } else {
            let mut joined = BytesMut::with_capacity(self.input.len() + data.len());
            joined.extend_from_slice(&self.input);
            joined.extend_from_slice(&data);
            self.input = joined.freeze();
        }
    }

    /// The next decoded bytes from what was pushed; `None` when it needs
    /// more input (see `wants_input`) or has nothing more to give.
    pub fn step(&mut self) -> io::Result<Option<Bytes>> {
        if self.ended {
            // Whatever follows the end of the stream is not ours to decode.
            self.input.clear();
            return self.finish_step();
        }
        while (!self.input.is_empty() || self.full) && !self.starved {
            if self.codec.is_none() {
                self.codec = Some(self.make_codec());
            }
            let codec = self.codec.as_mut().expect("made above");
            if self.between && !self.input.is_empty() {
                codec.reinit()?;
                self.between = false;
            }
            let mut out = BytesMut::zeroed(CHUNK);
            let mut input = PartialBuffer::new(&self.input[..]);
            let mut output = WriteBuffer::new_initialized(&mut out[..]);
            let ended = if self.input.is_empty() {
                // Output the codec held back when the last step filled up.
                codec.flush(&mut output)?;
                false
            } else {
                codec.decode(&mut input, &mut output)?
            };
            let (used, made) = (input.written_len(), output.written_len());
            self.input.advance(used);
            if ended {
                if self.encoding.concatenates() {
                    self.between = true;
                } else {
                    self.ended = true;
                    self.input.clear();
                }
            }
            self.full = made == CHUNK && !self.ended;
            if made > 0 {
                out.truncate(made);
                return Ok(Some(out.freeze()));
            }
            if self.ended {
                return self.finish_step();
            }
            if used == 0 {
                // Nothing consumed, nothing made: it needs more than this.
                self.full = false;
                self.starved = !self.input.is_empty();
                return Ok(None);
            }
        }
        Ok(None)
    }

    /// The compressed body ended: the rest of the output, or an error when
    /// the stream was cut short.
    pub fn finish(&mut self) -> io::Result<Option<Bytes>> {
        if let Some(out) = self.step()? {
            return Ok(Some(out));
        }
        if self.done {
            return Ok(None);
        }
        if self.codec.is_none() || (self.between && !self.full) {
            // An empty body, or one that ended with a whole member.
            self.done = true;
            return Ok(None);
        }
        if self.starved {
            return Err(cut_short());
        }
        // The codec's own end-of-input check: a cut stream fails here.
        self.finish_step()
    }

    /// No more input: whatever the codec still holds, until it says it
    /// is through.
    fn finish_step(&mut self) -> io::Result<Option<Bytes>> {
        if self.done {
            return Ok(None);
        }
        let codec = self.codec.as_mut().expect("only after some input");
        let mut out = BytesMut::zeroed(CHUNK);
        let mut output = WriteBuffer::new_initialized(&mut out[..]);
        let through = codec.finish(&mut output)?;
        let made = output.written_len();
        if made > 0 {
            out.truncate(made);
            return Ok(Some(out.freeze()));
        }
        if !through {
            return Err(cut_short());
        }
        self.ended = true;
        self.done = true;
        Ok(None)
    }

    fn make_codec(&self) -> Box<dyn DecodeV2 + Send> {
        match self.encoding {
            #[cfg(feature = "gzip")]
            Encoding::Gzip => Box::new(compression_codecs::GzipDecoder::new()),
            #[cfg(feature = "brotli")]
            Encoding::Brotli => Box::new(compression_codecs::BrotliDecoder::new()),
            #[cfg(feature = "zstd")]
            Encoding::Zstd => Box::new(compression_codecs::ZstdDecoder::new()),
            #[cfg(feature = "deflate")]
            Encoding::Deflate => {
                // RFC 1950: CMF says deflate (method 8) and CMF.FLG is a
                // multiple of 31. Raw deflate rarely passes both.
                let zlib = self.input.len() < 2
                    || (self.input[0] & 0x0f == 8
                        && (u16::from(self.input[0]) << 8 | u16::from(self.input[1])) % 31 == 0);
                if zlib {
                    Box::new(compression_codecs::ZlibDecoder::new())
                } else {
                    Box::new(compression_codecs::DeflateDecoder::new())
                }
            }
        }
    }
}

fn cut_short() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the body ended before the end of the compressed stream",
    )
}

impl fmt::Debug for Decoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decoder")
            .field("encoding", &self.encoding)
            .field("pending", &self.input.len())
            .field("ended", &self.ended)
            .finish()
    }
}

#[cfg(all(test, feature = "gzip", feature = "deflate"))]
mod tests {
    use super::*;

    /// A gzip member of `hello` repeated `n` times, made by hand-free means:
    /// the stored (uncompressed) deflate block format plus the gzip frame.
    fn stored_gzip(data: &[u8]) -> Vec<u8> {
        let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        out.extend_from_slice(&stored_deflate(data));
        let crc = crc32(data);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out
    }

    fn stored_deflate(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut chunks = data.chunks(65_535).peekable();
        while let Some(c) = chunks.next() {
            out.push(u8::from(chunks.peek().is_none()));
            out.extend_from_slice(&(c.len() as u16).to_le_bytes());
            out.extend_from_slice(&(!(c.len() as u16)).to_le_bytes());
            out.extend_from_slice(c);
        }
        out
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    fn decode_all(enc: Encoding, wire: &[u8], split: usize) -> io::Result<Vec<u8>> {
        let mut d = Decoder::new(enc);
        let mut out = Vec::new();
        for piece in wire.chunks(split) {
            d.push(Bytes::copy_from_slice(piece));
            while let Some(b) = d.step()? {
                assert!(b.len() <= CHUNK);
                out.extend_from_slice(&b);
            }
            assert!(d.wants_input() || d.is_done());
        }
        while let Some(b) = d.finish()? {
            out.extend_from_slice(&b);
        }
        Ok(out)
    }

    #[test]
    fn gzip_in_any_split_comes_back_whole_in_bounded_chunks() {
        let data = b"hello".repeat(30_000);
        let wire = stored_gzip(&data);
        for split in [1, 7, 4096, wire.len()] {
            assert_eq!(
                decode_all(Encoding::Gzip, &wire, split).unwrap(),
                data,
                "{split}"
            );
        }
    }

    #[test]
    fn concatenated_gzip_members_are_one_body() {
        let mut wire = stored_gzip(b"one ");
        wire.extend_from_slice(&stored_gzip(b"two"));
        assert_eq!(decode_all(Encoding::Gzip, &wire, 3).unwrap(), b"one two");
    }

    #[test]
    fn a_cut_stream_and_a_bad_checksum_are_errors() {
        let wire = stored_gzip(b"hello world");
        let e = decode_all(Encoding::Gzip, &wire[..wire.len() - 4], 5).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        let mut bad = wire.clone();
        let n = bad.len();
        bad[n - 8] ^= 1;
        assert!(decode_all(Encoding::Gzip, &bad, 5).is_err());
    }

    #[test]
    fn deflate_takes_zlib_or_raw() {
        let data = b"raw deflate";
        assert_eq!(
            decode_all(Encoding::Deflate, &stored_deflate(data), 4).unwrap(),
            data
        );
    }

    #[test]
    fn names_are_read_from_the_header() {
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(Encoding::from_header(&v("GZIP")), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_header(&v("x-gzip")), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_header(&v("gzip, br")), None);
        assert_eq!(Encoding::from_header(&v("identity")), None);
    }
}
