//! Durations on every command line (`250us`, `200ms`, `1.5s`, `2m`, `1h`,
//! ranges like `5ms..20ms` for `serve --latency`) and in reports.

use std::time::Duration;

/// Parses `N[us|ms|s|m|h]`, decimals allowed; a bare number is seconds.
/// Zero is allowed (`--latency 0`); callers that need a positive value say so.
pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 200ms, 1s, 5m"))?;
    let secs = match unit.trim() {
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        u => {
            return Err(format!(
                "invalid duration unit {u:?} in {s:?}: use us, ms, s, m or h"
            ));
        }
    };
    if !(0.0..=1e9).contains(&secs) {
        return Err(format!("duration {s:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Like [`parse`], but zero is an error: for timeouts and run lengths.
pub fn parse_positive(s: &str) -> Result<Duration, String> {
    let d = parse(s)?;
    if d.is_zero() {
        return Err(format!("duration {s:?} must be greater than zero"));
    }
    Ok(d)
}

/// `DUR` or `LO..HI` (uniform between the two).
pub fn parse_range(s: &str) -> Result<(Duration, Duration), String> {
    match s.split_once("..") {
        None => parse(s).map(|d| (d, d)),
        Some((lo, hi)) => {
            let (lo, hi) = (parse(lo)?, parse(hi)?);
            if lo > hi {
                return Err(format!("range {s:?}: the low end is above the high end"));
            }
            Ok((lo, hi))
        }
    }
}

/// A short human form: `850ms`, `12.5s`, `3m20s`, `2h05m`.
pub fn human(secs: f64) -> String {
    if !secs.is_finite() {
        return "never".to_string();
    }
    if secs < 1.0 {
        format!("{}ms", (secs * 1000.0).round() as u64)
    } else if secs < 60.0 {
        let r = (secs * 10.0).round() / 10.0;
        if r.fract() == 0.0 {
            format!("{r:.0}s")
        } else {
            format!("{r:.1}s")
        }
    } else if secs < 3600.0 {
        let s = secs.round() as u64;
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        let m = (secs / 60.0).round() as u64;
        format!("{}h{:02}m", m / 60, m % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_ranges() {
        assert_eq!(parse("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert!(parse_positive("0s").is_err());
        assert!(parse("5 parsecs").is_err());
        assert!(parse("").is_err());
        assert_eq!(
            parse_range("5ms..20ms").unwrap(),
            (Duration::from_millis(5), Duration::from_millis(20))
        );
        assert_eq!(
            parse_range("7ms").unwrap(),
            (Duration::from_millis(7), Duration::from_millis(7))
        );
        assert!(parse_range("20ms..5ms").is_err());
        assert_eq!(human(0.85), "850ms");
        assert_eq!(human(12.46), "12.5s");
        assert_eq!(human(200.0), "3m20s");
    }

    #[test]
    fn human_forms() {
        assert_eq!(human(0.85), "850ms");
        assert_eq!(human(12.0), "12s");
        assert_eq!(human(12.46), "12.5s");
        assert_eq!(human(200.0), "3m20s");
        assert_eq!(human(7500.0), "2h05m");
        assert_eq!(human(f64::INFINITY), "never");
    }
}
