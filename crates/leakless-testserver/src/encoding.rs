//! Compressed bodies as data: a reply with an [`Encoding`] sends its body
//! compressed with that codec, says so in `Content-Encoding`, and frames
//! the compressed bytes. `corrupt` damages the compressed stream in its
//! middle, for clients that must say so.

use bytes::Bytes;

use crate::{answer::Src, config::Reply};

/// A `Content-Encoding` the server can compress with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encoding {
    /// `gzip` (RFC 1952).
    Gzip,
    /// `deflate`: a zlib stream (RFC 1950), as the HTTP token means.
    Deflate,
    /// `br` (Brotli).
    Brotli,
    /// `zstd` (Zstandard).
    Zstd,
}

impl Encoding {
    /// The `Content-Encoding` token.
    pub fn token(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Deflate => "deflate",
            Encoding::Brotli => "br",
            Encoding::Zstd => "zstd",
        }
    }

    /// The encoding a query value names (`gzip`, `deflate`, `br`, `zstd`).
    pub(crate) fn parse(s: &str) -> Result<Encoding, String> {
        Ok(match s {
            "gzip" => Encoding::Gzip,
            "deflate" => Encoding::Deflate,
            "br" => Encoding::Brotli,
            "zstd" => Encoding::Zstd,
            _ => return Err(format!("encoding={s}: want gzip|deflate|br|zstd")),
        })
    }

    /// `data` compressed.
    pub fn compress(self, data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        match self {
            Encoding::Gzip => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).expect("writing to a Vec");
                e.finish().expect("writing to a Vec")
            }
            Encoding::Deflate => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).expect("writing to a Vec");
                e.finish().expect("writing to a Vec")
            }
            Encoding::Brotli => {
                let mut out = Vec::new();
                let params = brotli::enc::BrotliEncoderParams {
                    quality: 4,
                    ..Default::default()
                };
                brotli::BrotliCompress(&mut &data[..], &mut out, &params)
                    .expect("writing to a Vec");
                out
            }
            Encoding::Zstd => zstd::bulk::compress(data, 1).expect("compressing in memory"),
        }
    }
}

/// The body `reply` asks for, compressed when it names an encoding, with
/// its `Content-Encoding` header added.
pub(crate) fn apply(reply: &mut Reply, body: Src) -> Src {
    let Some(encoding) = reply.encoding else {
        return body;
    };
    let plain = body.to_vec();
    let mut packed = encoding.compress(&plain);
    if reply.corrupt && packed.len() > 4 {
        // Past any header, into the compressed data (or its checksum).
        let (at, len) = (packed.len() / 2, packed.len());
        for b in &mut packed[at..(at + 8).min(len)] {
            *b ^= 0xa5;
        }
    }
    reply
        .headers
        .push(("Content-Encoding".to_owned(), encoding.token().to_owned()));
    Src::Bytes(Bytes::from(packed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_encoding_compresses_and_names_itself() {
        for e in [
            Encoding::Gzip,
            Encoding::Deflate,
            Encoding::Brotli,
            Encoding::Zstd,
        ] {
            let mut r = Reply {
                encoding: Some(e),
                ..Reply::default()
            };
            let src = apply(&mut r, Src::Pattern(10_000));
            assert!(src.len() < 1_000, "{e:?}: {}", src.len());
            assert_eq!(
                r.headers,
                vec![("Content-Encoding".into(), e.token().into())]
            );
            assert_eq!(Encoding::parse(e.token()), Ok(e));
        }
    }
}
