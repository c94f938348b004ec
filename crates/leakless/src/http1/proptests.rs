//! Property tests of the engine: random valid responses (any status, header
//! fields, Content-Length or chunked with random chunk sizes, extensions and
//! trailers, read-to-close, HEAD/204/304, interim 1xx, HTTP/1.0 keep-alive
//! variants, bytes left over) are read back through head parse + framing +
//! decode (`crate::fuzzing::read_response`, the order the connection uses)
//! whole, in random pieces, a byte at a time and split at every single
//! point. Status, headers and body must come back exactly, and the reuse
//! decision must be the one RFC 9112 §6.3/§9.3 gives.

use http::{HeaderMap, HeaderName, HeaderValue, Method, Version};
use proptest::{collection::vec, prelude::*, sample::select};

use crate::fuzzing::{BodyFraming, End, Outcome, read_response};

/// Header or trailer fields: name, value.
type Fields = Vec<(String, Vec<u8>)>;

#[derive(Clone, Debug)]
enum Kind {
    /// Content-Length, written in one of several equivalent styles.
    Length { style: u8 },
    /// Chunked: where to cut the body, each size line's spelling and
    /// extension, the trailers, and how Transfer-Encoding is written.
    Chunked {
        cuts: Vec<usize>,
        lines: Vec<(u8, &'static str)>,
        last_ext: &'static str,
        trailers: Fields,
        te: u8,
    },
    /// Neither: the body runs to the close.
    Close,
}

#[derive(Clone, Debug)]
struct Resp {
    interim: Vec<(u16, Fields)>,
    http10: bool,
    head_method: bool,
    status: u16,
    reason: Option<String>,
    fields: Fields,
    connection: Vec<&'static str>,
    body: Vec<u8>,
    kind: Kind,
    leftover: Vec<u8>,
    bare_lf: bool,
}

/// What reading `Resp` must give.
struct Expected {
    status: u16,
    version: Version,
    headers: HeaderMap,
    framing: BodyFraming,
    body: Vec<u8>,
    reusable: bool,
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,10}".prop_map(|n| format!("X-{n}"))
}

/// A field value as httparse hands it over: visible ASCII, obs-text and
/// inner spaces/tabs, never leading or trailing whitespace (it trims those).
fn value() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        8 => 0x21u8..=0x7e,
        2 => Just(b' '),
        1 => Just(b'\t'),
        1 => 0x80u8..=0xff,
    ];
    vec(byte, 0..24).prop_map(|mut v| {
        while v.last().is_some_and(|b| *b == b' ' || *b == b'\t') {
            v.pop();
        }
        while v.first().is_some_and(|b| *b == b' ' || *b == b'\t') {
            v.remove(0);
        }
        v
    })
}

fn fields(max: usize) -> impl Strategy<Value = Fields> {
    vec((name(), value()), 0..max)
}

const EXTS: &[&str] = &[
    "",
    "",
    ";a",
    ";a=b",
    " ;name=\"quoted ; value\"",
    "\t;x=1;y",
    "; sp = \"q\"",
];

const CONNECTION: &[&str] = &[
    "close",
    "Close",
    "keep-alive",
    "Keep-Alive",
    "foo, close",
    "keep-alive, close",
    "upgrade",
    " ,keep-alive,",
];

fn kind() -> impl Strategy<Value = Kind> {
    let line = (any::<u8>(), select(EXTS));
    prop_oneof![
        3 => (0u8..4).prop_map(|style| Kind::Length { style }),
        4 => (
            vec(1usize..40, 0..8),
            vec(line, 9),
            select(EXTS),
            fields(3),
            0u8..5,
        )
            .prop_map(|(cuts, lines, last_ext, trailers, te)| Kind::Chunked {
                cuts,
                lines,
                last_ext,
                trailers,
                te,
            }),
        1 => Just(Kind::Close),
    ]
}

fn resp() -> impl Strategy<Value = Resp> {
    let interim = vec((select(&[100u16, 102, 103, 199][..]), fields(3)), 0..3);
    let status = prop_oneof![
        6 => 200u16..=599,
        1 => Just(204u16),
        1 => Just(304u16),
        1 => 600u16..=999,
    ];
    let leftover = prop_oneof![
        6 => Just(Vec::new()),
        1 => Just(b"HTTP/1.1 200 OK\r\n".to_vec()),
        1 => vec(any::<u8>(), 1..8),
    ];
    (
        (interim, any::<bool>(), prop::bool::weighted(0.2), status),
        (
            prop::option::of("[ -~]{0,16}"),
            fields(6),
            vec(select(CONNECTION), 0..3),
        ),
        (
            vec(any::<u8>(), 0..200),
            kind(),
            leftover,
            prop::bool::weighted(0.1),
        ),
    )
        .prop_map(
            |(
                (interim, http10, head_method, status),
                (reason, fields, connection),
                (body, kind, leftover, bare_lf),
            )| Resp {
                interim,
                http10,
                head_method,
                status,
                reason,
                fields,
                connection,
                body,
                kind,
                leftover,
                bare_lf,
            },
        )
}

fn has_token(list: &[&str], token: &str) -> bool {
    list.iter()
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

impl Resp {
    fn method(&self) -> Method {
        if self.head_method {
            Method::HEAD
        } else {
            Method::GET
        }
    }

    fn no_body(&self) -> bool {
        self.head_method || self.status == 204 || self.status == 304
    }

    /// The bytes on the wire and what reading them must give.
    fn encode(&self) -> (Vec<u8>, Expected) {
        let eol: &[u8] = if self.bare_lf { b"\n" } else { b"\r\n" };
        let mut w = Vec::new();
        let mut headers = HeaderMap::new();
        for (code, fields) in &self.interim {
            w.extend_from_slice(format!("HTTP/1.1 {code} Interim").as_bytes());
            w.extend_from_slice(eol);
            for (n, v) in fields {
                field(&mut w, None, n, v, eol);
            }
            w.extend_from_slice(eol);
        }
        let version = if self.http10 { "1.0" } else { "1.1" };
        w.extend_from_slice(format!("HTTP/{version} {}", self.status).as_bytes());
        if let Some(reason) = &self.reason {
            w.push(b' ');
            w.extend_from_slice(reason.as_bytes());
        }
        w.extend_from_slice(eol);
        for (n, v) in &self.fields {
            field(&mut w, Some(&mut headers), n, v, eol);
        }
        for c in &self.connection {
            field(
                &mut w,
                Some(&mut headers),
                "Connection",
                c.trim().as_bytes(),
                eol,
            );
        }
        let len = self.body.len();
        match &self.kind {
            Kind::Length { style } => {
                let values: Vec<String> = match style {
                    0 => vec![len.to_string()],
                    1 => vec![format!("00{len}")],
                    2 => vec![format!("{len}, {len}")],
                    _ => vec![len.to_string(), len.to_string()],
                };
                for v in values {
                    field(
                        &mut w,
                        Some(&mut headers),
                        "Content-Length",
                        v.as_bytes(),
                        eol,
                    );
                }
            }
            Kind::Chunked { te, .. } => {
                let values: &[&str] = match te {
                    0 => &["chunked"],
                    1 => &["Chunked"],
                    2 => &["gzip, chunked"],
                    3 => &["gzip", "chunked"],
                    _ => &["identity,chunked"],
                };
                for v in values {
                    field(
                        &mut w,
                        Some(&mut headers),
                        "Transfer-Encoding",
                        v.as_bytes(),
                        eol,
                    );
                }
            }
            Kind::Close => {}
        }
        w.extend_from_slice(eol);

        let chunked = matches!(self.kind, Kind::Chunked { .. });
        let mut keep_alive = if self.http10 {
            has_token(&self.connection, "keep-alive") && !has_token(&self.connection, "close")
        } else {
            !has_token(&self.connection, "close")
        };
        if chunked && self.http10 {
            // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
            keep_alive = false;
        }
        let mut body = self.body.clone();
        let framing = if self.no_body() {
            body.clear();
            BodyFraming::Empty
        } else {
            match &self.kind {
                Kind::Length { .. } if len == 0 => BodyFraming::Empty,
                Kind::Length { .. } => {
                    w.extend_from_slice(&self.body);
                    BodyFraming::Length(len as u64)
                }
                Kind::Chunked {
                    cuts,
                    lines,
                    last_ext,
                    trailers,
                    ..
                } => {
                    let mut rest = &self.body[..];
                    let mut i = 0;
                    while !rest.is_empty() {
                        let n = cuts.get(i).copied().unwrap_or(rest.len()).min(rest.len());
                        let (spelling, ext) = lines[i % lines.len()];
                        let size = match spelling % 3 {
                            0 => format!("{n:x}"),
                            1 => format!("{n:X}"),
                            _ => format!("000{n:x}"),
                        };
                        w.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
                        w.extend_from_slice(&rest[..n]);
                        w.extend_from_slice(b"\r\n");
                        rest = &rest[n..];
                        i += 1;
                    }
                    w.extend_from_slice(format!("0{last_ext}\r\n").as_bytes());
                    for (n, v) in trailers {
                        field(&mut w, None, n, v, b"\r\n");
                    }
                    w.extend_from_slice(b"\r\n");
                    BodyFraming::Chunked
                }
                Kind::Close => {
                    keep_alive = false;
                    w.extend_from_slice(&self.body);
                    // Whatever follows is body too, up to the close.
                    w.extend_from_slice(&self.leftover);
                    body.extend_from_slice(&self.leftover);
                    BodyFraming::Close
                }
            }
        };
        let to_close = framing == BodyFraming::Close;
        if !to_close {
            w.extend_from_slice(&self.leftover);
        }
        let reusable = keep_alive && !to_close && self.leftover.is_empty();
        let expected = Expected {
            status: self.status,
            version: if self.http10 {
                Version::HTTP_10
            } else {
                Version::HTTP_11
            },
            headers,
            framing,
            body,
            reusable,
        };
        (w, expected)
    }
}

fn field(w: &mut Vec<u8>, headers: Option<&mut HeaderMap>, n: &str, v: &[u8], eol: &[u8]) {
    w.extend_from_slice(n.as_bytes());
    w.extend_from_slice(b": ");
    w.extend_from_slice(v);
    w.extend_from_slice(eol);
    if let Some(h) = headers {
        h.append(
            HeaderName::from_bytes(n.as_bytes()).unwrap(),
            HeaderValue::from_bytes(v).unwrap(),
        );
    }
}

fn check(out: &Outcome, exp: &Expected, how: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(out.status, Some(exp.status), "{}", how);
    prop_assert_eq!(out.version, Some(exp.version), "{}", how);
    prop_assert_eq!(&out.headers, &exp.headers, "{}", how);
    prop_assert_eq!(out.framing, Some(exp.framing), "{}", how);
    prop_assert_eq!(&out.body, &exp.body, "{}", how);
    prop_assert_eq!(
        out.end,
        End::Complete {
            reusable: exp.reusable
        },
        "{}",
        how
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn valid_responses_read_back_exactly_in_any_split(
        r in resp(),
        sizes in vec(1usize..48, 1..24),
        eof in any::<bool>(),
    ) {
        let (wire, exp) = r.encode();
        let method = r.method();
        // Only read-to-close needs the close; other bodies end on their own.
        let eof = eof || exp.framing == BodyFraming::Close;

        check(&read_response(&method, &[&wire], eof), &exp, "whole")?;

        let mut pieces = Vec::new();
        let mut rest = &wire[..];
        for n in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (p, tail) = rest.split_at((*n).min(rest.len()));
            pieces.push(p);
            rest = tail;
        }
        check(&read_response(&method, &pieces, eof), &exp, &format!("pieces {sizes:?}"))?;

        let bytes: Vec<&[u8]> = wire.chunks(1).collect();
        check(&read_response(&method, &bytes, eof), &exp, "byte at a time")?;

        for at in 0..=wire.len() {
            let (a, b) = wire.split_at(at);
            check(&read_response(&method, &[a, b], eof), &exp, &format!("split at {at}"))?;
        }
    }

    /// A valid response followed by a second one: the first is read exactly
    /// and the second's bytes make the connection unfit for reuse.
    #[test]
    fn bytes_after_the_response_are_never_reused(
        r in resp(),
        cut in 0usize..400,
    ) {
        let mut r = r;
        if matches!(r.kind, Kind::Close) {
            r.kind = Kind::Length { style: 0 };
        }
        r.leftover = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_vec();
        let (wire, exp) = r.encode();
        prop_assert!(!exp.reusable);
        let at = cut.min(wire.len());
        let out = read_response(&r.method(), &[&wire[..at], &wire[at..]], false);
        check(&out, &exp, "with a second response behind")?;
    }
}
