//! A response's header fields, kept as the head's bytes until someone asks
//! for them as a `HeaderMap`.
//!
//! Building the map (a name, a shared value and a hash per field, two
//! allocations, and dropping it all again) cost more than parsing the head
//! itself, for callers who mostly never look. httparse has validated every
//! name and value by the time a head is kept (its token and field-value
//! byte sets are the ones `http` checks), so building later cannot fail
//! and needs no second parse: the lines are split where httparse split
//! them.

use std::sync::OnceLock;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

/// Header fields: a map, or a head's bytes that become one when asked.
pub(crate) struct Fields {
    /// Boxed: a response is moved through every layer on its way out, and
    /// most are never asked for their map.
    map: OnceLock<Box<HeaderMap>>,
    /// The whole head as received (status line first), or empty when the
    /// map was given.
    raw: Bytes,
    /// How many fields `raw` holds, to size the map.
    count: u8,
    /// Whether a `Content-Encoding` field may be present: decompression
    /// looks only then, so most responses never build the map.
    encoded: bool,
}

impl Fields {
    /// Fields already in a map (HTTP/2's decoder builds one).
    pub fn from_map(map: HeaderMap) -> Fields {
        Fields {
            map: OnceLock::from(Box::new(map)),
            raw: Bytes::new(),
            count: 0,
            encoded: true,
        }
    }

    /// The fields of `head`, a complete head that httparse accepted with
    /// `count` fields; `encoded` when one of them is `Content-Encoding`.
    pub fn from_head(head: Bytes, count: usize, encoded: bool) -> Fields {
        Fields {
            map: OnceLock::new(),
            raw: head,
            count: count.min(u8::MAX as usize) as u8,
            encoded,
        }
    }

    /// The fields as a map, built on the first call.
    pub fn map(&self) -> &HeaderMap {
        self.map
            .get_or_init(|| Box::new(build(&self.raw, usize::from(self.count))))
    }

    /// The map, to change.
    pub fn map_mut(&mut self) -> &mut HeaderMap {
        self.map();
        self.map.get_mut().expect("just built")
    }

    /// The map, owned.
    pub fn into_map(mut self) -> HeaderMap {
        self.map();
        *self.map.take().expect("just built")
    }

    /// False only when no field is `Content-Encoding`.
    pub fn may_be_encoded(&self) -> bool {
        self.encoded
    }
}

impl std::fmt::Debug for Fields {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.map().fmt(f)
    }
}

/// The map of a head httparse accepted. Lines end in LF or CRLF; a field
/// is `name:` then the value between optional spaces and tabs (no other
/// whitespace is a valid value byte, and obs-fold was refused).
fn build(head: &Bytes, count: usize) -> HeaderMap {
    let mut map = HeaderMap::with_capacity(count);
    let mut lines = Lines { head, at: 0 };
    lines.next(); // the status line
    for (start, end) in lines {
        let line = &head[start..end];
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            break;
        };
        let ows = |b: &u8| *b == b' ' || *b == b'\t';
        let value = &line[colon + 1..];
        let lead = value.iter().take_while(|b| ows(b)).count();
        let trail = value[lead..].iter().rev().take_while(|b| ows(b)).count();
        let value_start = start + colon + 1 + lead;
        let value_end = end - trail;
        let name = HeaderName::from_bytes(&line[..colon]);
        let value = HeaderValue::from_maybe_shared(head.slice(value_start..value_end));
        match (name, value) {
            (Ok(name), Ok(value)) => {
                map.append(name, value);
            }
            // Unreachable for a head httparse accepted; the property tests
            // and the fuzz target check that every field arrives.
            _ => debug_assert!(false, "a field httparse accepted failed: {line:?}"),
        }
    }
    map
}

/// A head's lines as ranges, without their LF or CRLF; ends at the empty
/// line.
struct Lines<'a> {
    head: &'a [u8],
    at: usize,
}

impl Iterator for Lines<'_> {
    type Item = (usize, usize);

    fn next(&mut self) -> Option<(usize, usize)> {
        let rest = &self.head[self.at..];
        let lf = rest.iter().position(|&b| b == b'\n')?;
        let start = self.at;
        let end = start + lf - usize::from(lf > 0 && rest[lf - 1] == b'\r');
        self.at += lf + 1;
        (end > start).then_some((start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(head: &str) -> HeaderMap {
        let count = head.lines().count();
        Fields::from_head(Bytes::copy_from_slice(head.as_bytes()), count, false).into_map()
    }

    #[test]
    fn values_lose_the_spaces_and_tabs_around_them_and_keep_those_inside() {
        let map = fields("HTTP/1.1 200 OK\r\nX-A:  \t a b\t \r\nX-B:c\r\nX-C: \r\n\r\n");
        assert_eq!(map["x-a"], "a b");
        assert_eq!(map["x-b"], "c");
        assert_eq!(map["x-c"], "");
        assert_eq!(map.len(), 3);
    }

    #[test]
    fn bare_lf_lines_and_repeated_names_keep_every_value_in_order() {
        let map = fields("HTTP/1.1 200 OK\nSet-Cookie: a=1\nSET-COOKIE: b=2\n\nbody");
        let all: Vec<_> = map.get_all("set-cookie").iter().collect();
        assert_eq!(all, ["a=1", "b=2"]);
    }

    #[test]
    fn a_value_may_hold_colons_and_bytes_above_ascii() {
        let mut head =
            b"HTTP/1.1 200 OK\r\nLocation: http://h:1/\r\nX-O: \xe9t\xe9\r\n\r\n".to_vec();
        let map = Fields::from_head(Bytes::from(std::mem::take(&mut head)), 2, false).into_map();
        assert_eq!(map["location"], "http://h:1/");
        assert_eq!(map["x-o"].as_bytes(), b"\xe9t\xe9");
    }

    #[test]
    fn a_given_map_is_kept_as_it_is() {
        let mut map = HeaderMap::new();
        map.insert("x-a", HeaderValue::from_static("1"));
        let fields = Fields::from_map(map.clone());
        assert!(fields.may_be_encoded());
        assert_eq!(fields.into_map(), map);
    }
}
