//! Numbers and counts as every command prints them, so `bench`, `tune` and
//! `watch` read alike: rates (`41.2k`), counts (`1,234,567`), latencies
//! (`1.25ms`), sizes (`1.9 MiB`) and sockets by TCP state. Durations are
//! [`crate::duration::human`].

use std::borrow::Borrow;

/// `950`, `41.2k`, `1.30M`.
pub fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2}M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.1}k", x / 1e3)
    } else if x >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.1}")
    }
}

/// `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Milliseconds with sensible precision: `0.031ms`, `1.25ms`, `120ms`.
pub fn ms(x: f64) -> String {
    if x < 1.0 {
        format!("{x:.3}ms")
    } else if x < 100.0 {
        format!("{x:.2}ms")
    } else {
        format!("{x:.0}ms")
    }
}

/// `512 B`, `2.0 KiB`, `1.9 MiB`, `1.20 GiB`.
pub fn bytes(n: u64) -> String {
    let n = n as f64;
    if n >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", n / (1024.0 * 1024.0 * 1024.0))
    } else if n >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", n / (1024.0 * 1024.0))
    } else if n >= 1024.0 {
        format!("{:.1} KiB", n / 1024.0)
    } else {
        format!("{n} B")
    }
}

/// Sockets by TCP state: `ESTABLISHED 50, TIME_WAIT 0, CLOSE_WAIT 0`, the
/// states a reader looks for first (when present), then any other in the
/// order given. Takes pairs or a map of state names to counts.
pub fn states<K: AsRef<str>, N: Borrow<u32>>(counts: impl IntoIterator<Item = (K, N)>) -> String {
    const FIRST: [&str; 3] = ["ESTABLISHED", "TIME_WAIT", "CLOSE_WAIT"];
    let counts: Vec<(K, u32)> = counts.into_iter().map(|(k, n)| (k, *n.borrow())).collect();
    let first = FIRST
        .iter()
        .filter_map(|f| counts.iter().find(|(name, _)| name.as_ref() == *f));
    let rest = counts.iter().filter(|(k, _)| !FIRST.contains(&k.as_ref()));
    first
        .chain(rest)
        .map(|(k, n)| format!("{} {n}", k.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_forms() {
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
        assert_eq!(si(41234.0), "41.2k");
        assert_eq!(si(1_300_000.0), "1.30M");
        assert_eq!(si(950.0), "950");
        assert_eq!(ms(0.0314), "0.031ms");
        assert_eq!(ms(1.254), "1.25ms");
        assert_eq!(bytes(2048), "2.0 KiB");
    }

    #[test]
    fn states_put_the_telling_ones_first() {
        assert_eq!(
            states([("CLOSE_WAIT", 1), ("ESTABLISHED", 5), ("FIN_WAIT2", 2)]),
            "ESTABLISHED 5, CLOSE_WAIT 1, FIN_WAIT2 2"
        );
        assert_eq!(states::<&str, u32>([]), "");
        let map = std::collections::BTreeMap::from([("FD_ONLY", 3), ("CLOSE_WAIT", 2)]);
        assert_eq!(states(&map), "CLOSE_WAIT 2, FD_ONLY 3");
    }
}
