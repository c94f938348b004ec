//! [`Tap`]: reads HTTP/2 frame headers as they pass from the client to the
//! h2 crate (it sees the bytes a [`Rewind`] reads), to count what h2
//! handles without telling anyone: PINGs (it answers them itself) and
//! RST_STREAMs on streams it already forgot.
//!
//! [`Rewind`]: crate::rewind::Rewind

use std::sync::Arc;

use crate::frame::{ACK, HEADER_LEN, Head, PING, PREFACE, RST_STREAM};
use crate::ledger::Ledger;

pub(crate) struct Tap {
    id: u64,
    ledger: Arc<Ledger>,
    /// Bytes of the client preface still to pass before the first frame.
    preface_left: usize,
    /// The frame header being gathered, and how much of it is in.
    header: [u8; HEADER_LEN],
    have: usize,
    /// Payload bytes of the current frame still to pass.
    skip: usize,
}

impl Tap {
    pub(crate) fn new(id: u64, ledger: Arc<Ledger>) -> Self {
        Tap {
            id,
            ledger,
            preface_left: PREFACE.len(),
            header: [0; HEADER_LEN],
            have: 0,
            skip: 0,
        }
    }

    /// Counts the frames that start in `bytes`, the next bytes read.
    pub(crate) fn saw(&mut self, bytes: &[u8]) {
        let (pings, resets) = self.feed(bytes);
        if pings + resets > 0 {
            self.ledger.h2_frames(self.id, pings, resets);
        }
    }

    /// Walks the frame boundaries in `bytes`; returns (pings, resets) seen.
    fn feed(&mut self, mut bytes: &[u8]) -> (u64, u64) {
        let (mut pings, mut resets) = (0, 0);
        let n = self.preface_left.min(bytes.len());
        self.preface_left -= n;
        bytes = &bytes[n..];
        while !bytes.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(bytes.len());
                self.skip -= n;
                bytes = &bytes[n..];
                continue;
            }
            let n = (HEADER_LEN - self.have).min(bytes.len());
            self.header[self.have..self.have + n].copy_from_slice(&bytes[..n]);
            self.have += n;
            bytes = &bytes[n..];
            if self.have < HEADER_LEN {
                break;
            }
            self.have = 0;
            let head = Head::parse(&self.header);
            self.skip = head.len;
            match head.kind {
                PING if head.flags & ACK == 0 => pings += 1,
                RST_STREAM => resets += 1,
                _ => {}
            }
        }
        (pings, resets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    /// A frame header by hand: `frame::put` refuses payloads over 16 KiB.
    fn frame(kind: u8, flags: u8, payload: usize) -> Vec<u8> {
        let mut f = vec![(payload >> 16) as u8, (payload >> 8) as u8, payload as u8];
        f.extend_from_slice(&[kind, flags, 0, 0, 0, 1]);
        f.resize(HEADER_LEN + payload, 0xAA);
        f
    }

    #[test]
    fn counts_pings_and_resets_across_any_split() {
        let mut wire = PREFACE.to_vec();
        wire.extend(frame(0x4, 0, 12)); // SETTINGS
        wire.extend(frame(PING, 0, 8));
        wire.extend(frame(PING, ACK, 8)); // an ACK of ours: not counted
        wire.extend(frame(0x0, 0, 70_000)); // DATA, longer than 64 KiB
        wire.extend(frame(RST_STREAM, 0, 4));
        wire.extend(frame(PING, 0, 8));
        for split in [1, 2, 5, 9, 24, 100, wire.len()] {
            let ledger = Arc::new(Ledger::new(Config::new()));
            let mut tap = Tap::new(1, ledger);
            let (mut pings, mut resets) = (0, 0);
            for piece in wire.chunks(split) {
                let (p, r) = tap.feed(piece);
                pings += p;
                resets += r;
            }
            assert_eq!((pings, resets), (2, 1), "split {split}");
        }
    }
}
