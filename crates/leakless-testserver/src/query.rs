//! The query-string language that overrides a [`Reply`] per request, so one
//! server (and curl) can ask for any behaviour. The keys are documented in
//! the crate docs; this module is their single implementation.

use std::time::Duration;

use crate::config::{Fault, Framing, Reply};
use crate::encoding::Encoding;

/// Applies the overrides in `query` (the part after `?`, undecoded) to
/// `reply`. Unknown keys are ignored, so callers can tag requests
/// (`?n=3`); a known key with a bad value is an error, answered with 400.
pub(crate) fn apply(reply: &mut Reply, query: &str) -> Result<(), String> {
    let mut fault: Option<String> = None;
    let mut after: u64 = 0;
    let mut raw: Option<Vec<u8>> = None;
    let mut code: u32 = 2;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = String::from_utf8_lossy(&decode(key)).into_owned();
        let bytes = decode(value);
        let value = String::from_utf8_lossy(&bytes).into_owned();
        match key.as_str() {
            "status" => {
                let s: u16 = num(&key, &value)?;
                if !(200..=999).contains(&s) {
                    return Err(format!("status={s}: must be 200..=999"));
                }
                reply.status = s;
            }
            "size" => reply.body_size = num(&key, &value)?,
            "chunked" => {
                reply.framing = if flag(&key, &value)? {
                    Framing::Chunked
                } else {
                    Framing::ContentLength
                }
            }
            "framing" => {
                reply.framing = match value.as_str() {
                    "length" => Framing::ContentLength,
                    "chunked" => Framing::Chunked,
                    "close" => Framing::UntilClose,
                    _ => return Err(format!("framing={value}: want length|chunked|close")),
                }
            }
            "chunk" => reply.chunk_size = num::<usize>(&key, &value)?.max(1),
            "latency_ms" => reply.latency = Duration::from_millis(num(&key, &value)?),
            "close" => reply.close = flag(&key, &value)?,
            "echo" => reply.echo = flag(&key, &value)?,
            "silence" => reply.silence = flag(&key, &value)?,
            "header" => {
                let (n, v) = value
                    .split_once(':')
                    .ok_or_else(|| format!("header={value}: want Name:Value"))?;
                reply
                    .headers
                    .push((n.trim().to_owned(), v.trim().to_owned()));
            }
            "fault" => fault = Some(value),
            "after" => after = num(&key, &value)?,
            "raw" => raw = Some(bytes),
            "code" => code = num(&key, &value)?,
            // Redirect chains and compressed bodies.
            "redirects" => reply.redirects = num(&key, &value)?,
            "redirect_status" => {
                let s: u16 = num(&key, &value)?;
                if !(300..=399).contains(&s) {
                    return Err(format!("redirect_status={s}: must be 3xx"));
                }
                reply.redirect_status = s;
            }
            "encoding" => reply.encoding = Some(Encoding::parse(&value)?),
            "corrupt" => reply.corrupt = flag(&key, &value)?,
            _ => {}
        }
    }
    if raw.is_some() && fault.is_none() {
        fault = Some("raw".to_owned());
    }
    if let Some(name) = fault {
        reply.fault = match name.as_str() {
            "none" => None,
            "stall" => Some(Fault::Stall),
            "stall_body" if after == 0 => Some(Fault::StallAfterHeaders),
            "stall_body" => Some(Fault::StallAfterBytes(after)),
            "endless" => Some(Fault::EndlessBody),
            "close_after_headers" => Some(Fault::CloseAfterHeaders),
            "truncate" if after == 0 => Some(Fault::CloseAfterHeaders),
            "truncate" => Some(Fault::CloseAfterBytes(after)),
            "close" => Some(Fault::CloseWithoutResponse),
            "reset" => Some(Fault::ResetWithoutResponse),
            "raw" => Some(Fault::Raw(raw.ok_or("fault=raw needs raw=<bytes>")?)),
            "panic" => Some(Fault::Panic),
            "rst_stream" => Some(Fault::ResetStream(code)),
            // RFC 9113 §8.7: REFUSED_STREAM means unprocessed, safe to retry.
            "refuse" => Some(Fault::ResetStream(7)),
            _ => return Err(format!("fault={name}: unknown fault")),
        };
    }
    Ok(())
}

fn num<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{key}={value}: not a number"))
}

fn flag(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "" | "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" => Ok(false),
        _ => Err(format!("{key}={value}: want 1 or 0")),
    }
}

/// Percent-decoding with `+` as space (form encoding, what curl's
/// `--data-urlencode -G` produces). Bad escapes are kept literally.
pub(crate) fn decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_plus() {
        assert_eq!(decode("a%20b+c%2B"), b"a b c+");
        assert_eq!(decode("%zz%4"), b"%zz%4");
        assert_eq!(decode("%0d%0A"), b"\r\n");
    }

    #[test]
    fn applies_overrides() {
        let mut r = Reply::default();
        apply(
            &mut r,
            "size=10&chunked=1&chunk=3&latency_ms=20&status=204&close=1&header=X-A:%20b&n=7",
        )
        .unwrap();
        assert_eq!(r.body_size, 10);
        assert_eq!(r.framing, Framing::Chunked);
        assert_eq!(r.chunk_size, 3);
        assert_eq!(r.latency, Duration::from_millis(20));
        assert_eq!(r.status, 204);
        assert!(r.close);
        assert_eq!(r.headers, vec![("X-A".to_owned(), "b".to_owned())]);
    }

    #[test]
    fn faults() {
        let f = |q: &str| {
            let mut r = Reply::default().fault(Fault::Stall);
            apply(&mut r, q).map(|_| r.fault)
        };
        assert_eq!(f("fault=none"), Ok(None));
        assert_eq!(f(""), Ok(Some(Fault::Stall)));
        assert_eq!(f("fault=stall_body"), Ok(Some(Fault::StallAfterHeaders)));
        assert_eq!(
            f("fault=stall_body&after=4"),
            Ok(Some(Fault::StallAfterBytes(4)))
        );
        assert_eq!(
            f("after=2&fault=truncate"),
            Ok(Some(Fault::CloseAfterBytes(2)))
        );
        assert_eq!(
            f("raw=HTTP%2F1.1"),
            Ok(Some(Fault::Raw(b"HTTP/1.1".to_vec())))
        );
        assert_eq!(f("fault=refuse"), Ok(Some(Fault::ResetStream(7))));
        assert_eq!(f("fault=rst_stream"), Ok(Some(Fault::ResetStream(2))));
        assert_eq!(
            f("code=8&fault=rst_stream"),
            Ok(Some(Fault::ResetStream(8)))
        );
        assert!(f("fault=bogus").is_err());
        assert!(f("fault=raw").is_err());
        assert!(f("status=99").is_err());
        assert!(f("size=x").is_err());
    }
}
