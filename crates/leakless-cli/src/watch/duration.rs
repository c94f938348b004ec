//! Durations on the command line (`200ms`, `1s`, `2m`, `1h`) and in reports.

use std::time::Duration;

/// Parses `N[ms|s|m|h]`, decimals allowed (`1.5s`); a bare number is seconds.
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
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        u => {
            return Err(format!(
                "invalid duration unit {u:?} in {s:?}: use ms, s, m or h"
            ));
        }
    };
    if !secs.is_finite() || secs <= 0.0 {
        return Err(format!("duration {s:?} must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
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
    fn parses_units() {
        assert_eq!(parse("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse("1s").unwrap(), Duration::from_secs(1));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse("0s").is_err());
        assert!(parse("5 parsecs").is_err());
        assert!(parse("").is_err());
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
