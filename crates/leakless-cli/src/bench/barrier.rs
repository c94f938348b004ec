//! `--start-at TIME`: a start barrier on the wall clock, so copies of
//! `bench` on many machines (an Indexed Job, a shell loop over ssh) start
//! their load together and their per-second series line up, without a
//! coordinator. Clocks kept by NTP agree to milliseconds, far below the
//! one-second resolution the series merge at.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far ahead a start may be: further is taken for a mistake (a time in
/// milliseconds, a wrong year) rather than waited for.
const MAX_AHEAD: Duration = Duration::from_secs(24 * 3600);

/// A start later than this past the barrier is reported: the copies did
/// not start together.
const LATE: Duration = Duration::from_millis(100);

/// `2026-11-01T12:00:00Z` (RFC 3339, UTC) or Unix seconds (`1793534400`,
/// `1793534400.5`), as `date -u +%Y-%m-%dT%H:%M:%SZ` and `date +%s` print
/// them.
pub fn parse(s: &str) -> Result<SystemTime, String> {
    let s = s.trim();
    let at = if let Ok(secs) = s.parse::<f64>() {
        if !(secs.is_finite() && secs >= 0.0) {
            return Err(format!("invalid time {s:?}: Unix seconds must be positive"));
        }
        UNIX_EPOCH + Duration::from_secs_f64(secs)
    } else {
        humantime::parse_rfc3339(s).map_err(|e| {
            format!(
                "invalid time {s:?} ({e}): expected UTC RFC 3339 such as 2026-11-01T12:00:00Z, or Unix seconds"
            )
        })?
    };
    if at
        .duration_since(SystemTime::now())
        .is_ok_and(|ahead| ahead > MAX_AHEAD)
    {
        return Err(format!(
            "--start-at {s} is more than a day away: expected a time within the next 24 hours (Unix seconds, not milliseconds)"
        ));
    }
    Ok(at)
}

/// Sleeps until `at`. Says on stderr what it waits for unless `quiet`
/// (`--json`, where anything printed before the result would end up in
/// a collected log ahead of it). Returns a warning when `at` had already
/// passed.
pub fn wait_until(at: SystemTime, quiet: bool) -> Option<String> {
    match at.duration_since(SystemTime::now()) {
        Ok(ahead) => {
            if !quiet {
                eprintln!(
                    "waiting {:.1}s until {} (--start-at)",
                    ahead.as_secs_f64(),
                    humantime::format_rfc3339_millis(at)
                );
            }
            std::thread::sleep(ahead);
            None
        }
        Err(e) if e.duration() > LATE => Some(format!(
            "started {:.1}s after --start-at {}: this run did not start with the others",
            e.duration().as_secs_f64(),
            humantime::format_rfc3339_millis(at)
        )),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_in_both_forms() {
        // A time passed is a valid barrier (the run starts at once).
        assert_eq!(
            parse("2024-01-01T00:00:00Z").unwrap(),
            UNIX_EPOCH + Duration::from_secs(1_704_067_200)
        );
        let soon = SystemTime::now() + Duration::from_secs(60);
        let secs = soon.duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(
            parse(&secs.to_string()).unwrap(),
            UNIX_EPOCH + Duration::from_secs(secs)
        );
        let rfc = humantime::format_rfc3339_seconds(soon).to_string();
        assert_eq!(parse(&rfc).unwrap(), UNIX_EPOCH + Duration::from_secs(secs));
        assert!(parse("12:00").unwrap_err().contains("RFC 3339"));
        assert!(parse("-5").is_err());
        let ms = (secs * 1000).to_string();
        assert!(parse(&ms).unwrap_err().contains("milliseconds"));
    }

    #[test]
    fn a_passed_barrier_starts_at_once_with_a_warning() {
        let past = SystemTime::now() - Duration::from_secs(5);
        let w = wait_until(past, true).unwrap();
        assert!(w.starts_with("started 5."), "{w}");
        assert_eq!(
            wait_until(SystemTime::now() + Duration::from_millis(20), true),
            None
        );
    }
}
