//! [`Answer`]: the one place a request's reply is chosen, for HTTP/1.1 and
//! HTTP/2 alike (the route or default [`Reply`], then the query's
//! overrides), and [`Src`], where its body's bytes come from.

use bytes::Bytes;

use crate::config::{Config, Fault, Reply};
use crate::request::Version;
use crate::{encoding, hops, query};

/// What to answer one request with.
pub(crate) struct Answer {
    pub reply: Reply,
    /// The body's bytes (the reply's framing and faults say how many go out).
    pub body: Src,
    /// The body is the server's own explanation, sent as `text/plain`.
    pub text: bool,
}

impl Answer {
    /// The answer under `cfg` to a request for `target` (path and query)
    /// over `version`; `request_body` is what an echo reply sends back.
    pub(crate) fn choose(
        cfg: &Config,
        target: &str,
        version: Version,
        request_body: Bytes,
    ) -> Answer {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut reply = cfg.reply_for(path).clone();
        if let Err(why) = query::apply(&mut reply, query) {
            return Answer::explain(400, format!("{why}\n"));
        }
        // Raw bytes would break the framing of every other stream.
        if version == Version::Http2 && matches!(reply.fault, Some(Fault::Raw(_))) {
            return Answer::explain(501, "fault=raw is HTTP/1.1 only\n".to_owned());
        }
        if hops::redirect(&mut reply, path, query) {
            return Answer {
                reply,
                body: Src::Pattern(0),
                text: false,
            };
        }
        let body = if reply.echo {
            Src::Bytes(request_body)
        } else {
            Src::Pattern(reply.body_size)
        };
        let body = match reply.encoding {
            None => body,
            Some(e) => {
                let packed = encoding::pack(e, reply.corrupt, &body.to_vec());
                reply
                    .headers
                    .push(("Content-Encoding".to_owned(), e.token().to_owned()));
                Src::Bytes(Bytes::from(packed))
            }
        };
        Answer {
            reply,
            body,
            text: false,
        }
    }

    /// The server's own error: `status` with `why` as a plain-text body.
    fn explain(status: u16, why: String) -> Answer {
        Answer {
            reply: Reply::default().status(status),
            body: Src::Bytes(Bytes::from(why)),
            text: true,
        }
    }
}

/// Where body bytes come from.
pub(crate) enum Src {
    /// `hello` repeated, this long: served without copying.
    Pattern(u64),
    /// Exactly these bytes.
    Bytes(Bytes),
}

impl Src {
    /// Every byte, in memory (for compressing).
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        match self {
            Src::Pattern(n) => (0..*n as usize).map(|i| b"hello"[i % 5]).collect(),
            Src::Bytes(b) => b.to_vec(),
        }
    }

    pub(crate) fn len(&self) -> u64 {
        match self {
            Src::Pattern(n) => *n,
            Src::Bytes(b) => b.len() as u64,
        }
    }

    /// Up to `max` bytes from `off`, at most [`PIECE`] of them (at least one
    /// if any are left).
    pub(crate) fn piece(&self, off: u64, max: u64) -> Bytes {
        let max = max.min(PIECE as u64) as usize;
        match self {
            Src::Pattern(_) => {
                let start = (off % 5) as usize;
                Bytes::from_static(&PATTERN[start..start + max])
            }
            Src::Bytes(b) => {
                let start = off as usize;
                b.slice(start..start + max.min(b.len() - start))
            }
        }
    }
}

/// The longest piece handed out: a pattern slice from any start in 0..5
/// still fits in [`PATTERN`].
pub(crate) const PIECE: usize = PATTERN.len() - 5;
/// `hello` repeated, so `PATTERN[off % 5..]` continues the body at `off`.
static PATTERN: [u8; 65535] = {
    let mut p = [0u8; 65535];
    let mut i = 0;
    while i < p.len() {
        p[i] = b"hello"[i % 5];
        i += 1;
    }
    p
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_continues_across_pieces() {
        let src = Src::Pattern(200_000);
        let mut out = Vec::new();
        let mut off = 0;
        while off < 200_000 {
            let p = src.piece(off, 200_000 - off);
            out.extend_from_slice(&p);
            off += p.len() as u64;
        }
        assert!(out.iter().enumerate().all(|(i, b)| *b == b"hello"[i % 5]));
    }

    #[test]
    fn a_bad_query_is_explained_and_raw_is_http1_only() {
        let cfg = Config::new();
        let a = Answer::choose(&cfg, "/?size=lots", Version::Http11, Bytes::new());
        assert_eq!((a.reply.status, a.text), (400, true));
        assert!(matches!(&a.body, Src::Bytes(b) if &b[..] == b"size=lots: not a number\n"));
        let raw = "/?raw=abc";
        let a = Answer::choose(&cfg, raw, Version::Http11, Bytes::new());
        assert_eq!(a.reply.fault, Some(Fault::Raw(b"abc".to_vec())));
        let a = Answer::choose(&cfg, raw, Version::Http2, Bytes::new());
        assert_eq!((a.reply.status, a.text), (501, true));
    }
}
