//! What the workers saw, kept per worker and merged at the end.

use std::{collections::BTreeMap, time::Duration};

use crate::{
    outcome::{Action, Outcome},
    targets::Target,
};

/// Wrong bodies kept word for word; the rest are only counted.
const KEEP: usize = 10;

#[derive(Debug, Default)]
pub struct Tally {
    /// Requests by (target, action, outcome).
    pub requests: BTreeMap<(&'static str, &'static str, &'static str), u64>,
    /// Errors by (server, kind, phase): how many, and the first message.
    pub errors: BTreeMap<(&'static str, String, String), (u64, String)>,
    /// Bodies that ended without an error but were wrong.
    pub wrong: u64,
    pub wrong_examples: Vec<String>,
    /// The longest request that was not cancelled by its worker: how long,
    /// and what it was.
    pub longest: (Duration, String),
    /// The process's RSS, each second of the traffic.
    pub rss: Vec<isize>,
}

impl Tally {
    pub fn record(
        &mut self,
        target: &Target,
        action: Action,
        outcome: &Outcome,
        took: Duration,
        url: &str,
    ) {
        let name = match outcome {
            Outcome::Ok => "ok",
            Outcome::Dropped => "body dropped",
            Outcome::Cancelled => "cancelled",
            Outcome::Failed(_) => "error",
            Outcome::Wrong(_) => "wrong body",
        };
        *self
            .requests
            .entry((target.name, action.as_str(), name))
            .or_default() += 1;
        match outcome {
            Outcome::Failed(e) => {
                let server = if target.nginx { "nginx" } else { "test server" };
                let phase = e.phase().map_or("none".to_owned(), |p| format!("{p:?}"));
                let key = (server, format!("{:?}", e.kind()), phase);
                let entry = self
                    .errors
                    .entry(key)
                    .or_insert_with(|| (0, format!("{} {url}: {e}", target.name)));
                entry.0 += 1;
            }
            Outcome::Wrong(why) => {
                self.wrong += 1;
                if self.wrong_examples.len() < KEEP {
                    self.wrong_examples.push(format!(
                        "{} {} {url}: {why}",
                        target.name,
                        action.as_str()
                    ));
                }
            }
            _ => {}
        }
        if !matches!(outcome, Outcome::Cancelled) && took > self.longest.0 {
            self.longest = (took, format!("{} {} {url}", target.name, action.as_str()));
        }
    }

    pub fn merge(&mut self, other: Tally) {
        for (k, n) in other.requests {
            *self.requests.entry(k).or_default() += n;
        }
        for (k, (n, first)) in other.errors {
            self.errors.entry(k).or_insert((0, first)).0 += n;
        }
        self.wrong += other.wrong;
        self.wrong_examples.extend(other.wrong_examples);
        self.wrong_examples.truncate(KEEP);
        if other.longest.0 > self.longest.0 {
            self.longest = other.longest;
        }
    }

    /// Requests sent, all outcomes.
    pub fn total(&self) -> u64 {
        self.requests.values().sum()
    }
}
