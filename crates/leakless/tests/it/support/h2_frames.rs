//! HTTP/2 in raw frames (RFC 9113 §4.1), for the small servers of tests
//! that need to send or see what the h2 crate would not.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The server's side of an h2c start: the client's preface read, our
/// (empty) SETTINGS sent; false if the client said something else or left.
pub async fn accept_h2c(tcp: &mut TcpStream) -> bool {
    let mut preface = [0u8; PREFACE.len()];
    if tcp.read_exact(&mut preface).await.is_err() || preface != PREFACE {
        return false;
    }
    let mut out = Vec::new();
    frame(&mut out, SETTINGS, 0, 0, &[]);
    tcp.write_all(&out).await.is_ok()
}

/// A plain server's answer to one frame from the client, appended to
/// `out`: its SETTINGS and PINGs acknowledged, and with `answer` a request
/// (HEADERS) answered 200 with no body.
pub fn reply(
    out: &mut Vec<u8>,
    (kind, flags, stream, payload): (u8, u8, u32, &[u8]),
    answer: bool,
) {
    match kind {
        SETTINGS if flags & ACK == 0 => frame(out, SETTINGS, ACK, 0, &[]),
        PING if flags & ACK == 0 => frame(out, PING, ACK, 0, payload),
        HEADERS if answer => frame(
            out,
            HEADERS,
            END_HEADERS | END_STREAM,
            stream,
            &[STATUS_200],
        ),
        _ => {}
    }
}

/// The next frame's type, flags, stream id and payload; `None` once the
/// client closed.
pub async fn read_frame(tcp: &mut TcpStream) -> Option<(u8, u8, u32, Vec<u8>)> {
    let mut head = [0u8; 9];
    tcp.read_exact(&mut head).await.ok()?;
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0; len];
    tcp.read_exact(&mut payload).await.ok()?;
    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
    Some((head[3], head[4], stream, payload))
}

/// Appends one HTTP/2 frame (RFC 9113 §4.1) to `out`.
pub fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
pub const HEADERS: u8 = 0x1;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const ACK: u8 = 0x1;
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const NO_ERROR: u32 = 0;
/// `:status: 200`, indexed in HPACK's static table.
pub const STATUS_200: u8 = 0x88;
/// SETTINGS_INITIAL_WINDOW_SIZE.
pub const INITIAL_WINDOW_SIZE: u16 = 0x4;
/// SETTINGS_MAX_FRAME_SIZE.
pub const MAX_FRAME_SIZE: u16 = 0x5;
