//! HTTP/2 frames on the wire (RFC 9113 §4.1), by hand: reading a frame's
//! 9-byte header, and writing the few frames the floods send.
//!
//! Everything well-behaved goes through the h2 crate. This exists for what
//! h2's server will not do: a header block that never ends, PINGs or
//! SETTINGS sent without pause. Every frame is
//!
//! ```text
//! length (24 bits) | type (8) | flags (8) | R (1) + stream id (31) | payload
//! ```

use bytes::{BufMut, BytesMut};

/// What an HTTP/2 client with prior knowledge sends first (RFC 9113 §3.4).
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Length of a frame header.
pub(crate) const HEADER_LEN: usize = 9;

/// Frame types (RFC 9113 §6).
pub(crate) const HEADERS: u8 = 0x1;
pub(crate) const RST_STREAM: u8 = 0x3;
pub(crate) const SETTINGS: u8 = 0x4;
pub(crate) const PING: u8 = 0x6;
pub(crate) const CONTINUATION: u8 = 0x9;

/// The ACK flag of SETTINGS and PING. The floods' header block never sets
/// END_HEADERS (0x4), the flag that would end it.
pub(crate) const ACK: u8 = 0x1;

/// `SETTINGS_MAX_CONCURRENT_STREAMS`, the setting the SETTINGS flood repeats.
pub(crate) const MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// A frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Head {
    /// Payload length.
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    pub(crate) fn parse(h: &[u8; HEADER_LEN]) -> Head {
        Head {
            len: usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]),
            kind: h[3],
            flags: h[4],
            stream: u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff,
        }
    }
}

/// Appends one frame to `out`.
pub(crate) fn put(out: &mut BytesMut, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len();
    assert!(len < 1 << 14, "within the default SETTINGS_MAX_FRAME_SIZE");
    out.reserve(HEADER_LEN + len);
    out.put_uint(len as u64, 3);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(stream & 0x7fff_ffff);
    out.put_slice(payload);
}

/// A SETTINGS frame carrying `params` (identifier, value).
pub(crate) fn settings(out: &mut BytesMut, params: &[(u16, u32)]) {
    let mut payload = Vec::with_capacity(params.len() * 6);
    for (id, value) in params {
        payload.extend_from_slice(&id.to_be_bytes());
        payload.extend_from_slice(&value.to_be_bytes());
    }
    put(out, SETTINGS, 0, 0, &payload);
}

/// A PING (or its ACK) with this opaque payload.
pub(crate) fn ping(out: &mut BytesMut, payload: [u8; 8], ack: bool) {
    put(out, PING, if ack { ACK } else { 0 }, 0, &payload);
}

/// HPACK (RFC 7541): `:status: 200` as static table entry 8, indexed.
pub(crate) const STATUS_200: u8 = 0x88;

/// HPACK (RFC 7541 §6.2.2): one header field as a literal without
/// indexing, its name new; both strings short (under 127 bytes) and not
/// Huffman-coded.
pub(crate) fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    assert!(name.len() < 127 && value.len() < 127, "one-byte lengths");
    out.push(0x00);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.push(value.len() as u8);
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_header_parses_back() {
        let mut out = BytesMut::new();
        put(&mut out, CONTINUATION, 0x4, 0x8000_0003, b"abc");
        let head: [u8; HEADER_LEN] = out[..HEADER_LEN].try_into().unwrap();
        let want = Head {
            len: 3,
            kind: CONTINUATION,
            flags: 0x4,
            stream: 3,
        };
        assert_eq!(Head::parse(&head), want);
        assert_eq!(&out[HEADER_LEN..], b"abc");
    }

    #[test]
    fn settings_and_ping_payloads() {
        let mut out = BytesMut::new();
        settings(&mut out, &[(MAX_CONCURRENT_STREAMS, 100)]);
        assert_eq!(&out[..], b"\0\0\x06\x04\0\0\0\0\0\0\x03\0\0\0\x64");
        out.clear();
        ping(&mut out, *b"12345678", true);
        assert_eq!(&out[..], b"\0\0\x08\x06\x01\0\0\0\x0012345678");
    }
}
