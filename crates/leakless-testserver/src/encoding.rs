//! Compressed bodies: the [`Encoding`]s a reply can name, each made with
//! its codec's reference crate, and a way to damage one on purpose, for
//! clients that must say so.

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

/// `plain` compressed with `encoding`; with `corrupt`, damaged in its
/// middle: past any header, into the compressed data or its checksum.
pub(crate) fn pack(encoding: Encoding, corrupt: bool, plain: &[u8]) -> Vec<u8> {
    let mut packed = encoding.compress(plain);
    if corrupt && packed.len() > 4 {
        let (at, len) = (packed.len() / 2, packed.len());
        for b in &mut packed[at..(at + 8).min(len)] {
            *b ^= 0xa5;
        }
    }
    packed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_encoding_compresses_and_names_itself() {
        let plain = b"hello".repeat(2_000);
        for e in [
            Encoding::Gzip,
            Encoding::Deflate,
            Encoding::Brotli,
            Encoding::Zstd,
        ] {
            let packed = pack(e, false, &plain);
            assert!(packed.len() < 1_000, "{e:?}: {}", packed.len());
            assert_ne!(pack(e, true, &plain), packed, "{e:?}");
            assert_eq!(Encoding::parse(e.token()), Ok(e));
        }
    }
}
