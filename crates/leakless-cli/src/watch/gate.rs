//! `--fail-on`: watch as a CI gate. Every sample's verdicts are checked
//! against the listed kinds; a hit is kept (with its latest evidence, and
//! when it was first and last seen) so the report can show it even if the
//! sockets were gone by the time the command exited, and watch then exits
//! with [`EXIT_VERDICT`] instead of the command's own code.

use std::fmt::Write as _;
use std::str::FromStr;

use serde::Serialize;

use super::snapshot::Snapshot;
use super::verdict::{Kind, Verdict};
use crate::duration::human;

/// The exit code when a listed verdict appeared: not one the usual test
/// runners use for their own failures (go test 1 and 2, cargo test 101,
/// pytest 1 to 5, npm and jest 1), so CI can tell a leak from a failing
/// suite. The report still gives the command's own code.
pub const EXIT_VERDICT: i32 = 10;

/// A verdict kind `--fail-on` accepts: `leak`, `stale`, `churn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailOn(pub Kind);

impl FromStr for FailOn {
    type Err = String;

    fn from_str(s: &str) -> Result<FailOn, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "leak" => Ok(FailOn(Kind::Leak)),
            "stale" | "stale_pool" | "stale-pool" => Ok(FailOn(Kind::StalePool)),
            "churn" => Ok(FailOn(Kind::Churn)),
            other => Err(format!(
                "unknown verdict {other:?}: use leak, stale or churn (comma-separated)"
            )),
        }
    }
}

/// One listed verdict that appeared.
#[derive(Clone, Debug, Serialize)]
pub struct Hit {
    /// Seconds into the watch when it first and last appeared.
    pub first_seen_s: f64,
    pub last_seen_s: f64,
    /// As last seen, with its evidence.
    #[serde(flatten)]
    pub verdict: Verdict,
}

/// The gate's state over a run.
#[derive(Clone, Debug, Serialize)]
pub struct Gate {
    /// The kinds that fail the run.
    pub fail_on: Vec<Kind>,
    pub hits: Vec<Hit>,
}

impl Gate {
    pub fn new(kinds: &[FailOn]) -> Gate {
        let mut fail_on: Vec<Kind> = kinds.iter().map(|k| k.0).collect();
        fail_on.sort();
        fail_on.dedup();
        Gate {
            fail_on,
            hits: Vec::new(),
        }
    }

    /// Records the listed verdicts of one sample; returns those seen for
    /// the first time (to be told at once).
    pub fn observe(&mut self, snap: &Snapshot) -> Vec<&Hit> {
        let verdicts = snap
            .processes
            .iter()
            .flat_map(|p| p.verdicts.iter().flatten());
        self.observe_verdicts(snap.t, verdicts)
    }

    fn observe_verdicts<'a>(
        &mut self,
        t: f64,
        verdicts: impl Iterator<Item = &'a Verdict>,
    ) -> Vec<&Hit> {
        let mut new = Vec::new();
        for v in verdicts.filter(|v| self.fail_on.contains(&v.verdict)) {
            let same = |h: &Hit| {
                (h.verdict.verdict, h.verdict.pid, &h.verdict.endpoint)
                    == (v.verdict, v.pid, &v.endpoint)
            };
            match self.hits.iter_mut().position(|h| same(h)) {
                Some(i) => {
                    self.hits[i].last_seen_s = t;
                    self.hits[i].verdict = v.clone();
                }
                None => {
                    self.hits.push(Hit {
                        first_seen_s: t,
                        last_seen_s: t,
                        verdict: v.clone(),
                    });
                    new.push(self.hits.len() - 1);
                }
            }
        }
        new.into_iter().map(|i| &self.hits[i]).collect()
    }

    pub fn failed(&self) -> bool {
        !self.hits.is_empty()
    }

    /// The exit code: [`EXIT_VERDICT`] on a hit, else the command's own.
    pub fn exit_code(&self, command: Option<i32>) -> i32 {
        if self.failed() {
            EXIT_VERDICT
        } else {
            command.unwrap_or(0)
        }
    }

    /// What the gate found, with the evidence, for stderr at the end.
    pub fn text(&self, command: Option<i32>) -> String {
        let names: Vec<&str> = self.fail_on.iter().map(|k| k.name()).collect();
        let mut out = String::new();
        if !self.failed() {
            let _ = writeln!(
                out,
                "leakless watch: --fail-on {}: none seen",
                names.join(",")
            );
            return out;
        }
        let _ = writeln!(
            out,
            "leakless watch: --fail-on {}: {} seen; exiting {EXIT_VERDICT}{}",
            names.join(","),
            self.hits.len(),
            command.map_or(String::new(), |c| format!(" (the command exited with {c})"))
        );
        for h in &self.hits {
            let _ = writeln!(
                out,
                "first seen at {}, last at {}:",
                human(h.first_seen_s),
                human(h.last_seen_s)
            );
            let _ = write!(out, "{}", h.verdict);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_kinds() {
        assert_eq!("leak".parse(), Ok(FailOn(Kind::Leak)));
        assert_eq!(" Stale ".parse(), Ok(FailOn(Kind::StalePool)));
        assert_eq!("STALE_POOL".parse(), Ok(FailOn(Kind::StalePool)));
        assert_eq!("churn".parse(), Ok(FailOn(Kind::Churn)));
        let err = "leaks".parse::<FailOn>().unwrap_err();
        assert!(err.contains("leak, stale or churn"), "{err}");
    }

    fn verdict(kind: Kind, endpoint: &str) -> Verdict {
        let mut v = Verdict::ok("x");
        v.verdict = kind;
        v.pid = Some(7);
        v.endpoint = Some(endpoint.to_string());
        v.evidence = vec![format!("evidence at {endpoint}")];
        v
    }

    /// Only listed kinds count; a hit is kept after it disappears, with
    /// when it was first and last seen; the exit code says a verdict, not
    /// the command's own.
    #[test]
    fn keeps_listed_verdicts_and_sets_the_exit_code() {
        let mut g = Gate::new(&[FailOn(Kind::Leak), FailOn(Kind::Leak)]);
        assert_eq!(g.fail_on, vec![Kind::Leak]);
        let churn = [verdict(Kind::Churn, "a:1")];
        assert!(g.observe_verdicts(1.0, churn.iter()).is_empty());
        assert_eq!(g.exit_code(Some(0)), 0);
        assert_eq!(g.exit_code(Some(7)), 7, "the command's own code passes");
        let leak = [verdict(Kind::Leak, "b:2")];
        assert_eq!(g.observe_verdicts(5.0, leak.iter()).len(), 1);
        let leak_later = [verdict(Kind::Leak, "b:2")];
        assert!(
            g.observe_verdicts(9.0, leak_later.iter()).is_empty(),
            "told once"
        );
        let gone = [];
        g.observe_verdicts(12.0, gone.iter());
        assert!(g.failed());
        assert_eq!(g.hits.len(), 1);
        assert_eq!((g.hits[0].first_seen_s, g.hits[0].last_seen_s), (5.0, 9.0));
        assert_eq!(g.exit_code(Some(0)), EXIT_VERDICT);
        assert_eq!(g.exit_code(Some(1)), EXIT_VERDICT);
        let text = g.text(Some(1));
        assert!(
            text.contains("--fail-on LEAK: 1 seen; exiting 10 (the command exited with 1)"),
            "{text}"
        );
        assert!(text.contains("LEAK pid 7 b:2"), "{text}");
        assert!(text.contains("  - evidence at b:2"), "{text}");
    }
}
