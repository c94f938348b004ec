//! Connections counted from kernel events rather than from samples: per
//! (process, remote), how many opened, how each ended and how long each
//! lived, between two samples.
//!
//! Lifetimes go into a histogram of fixed log-spaced buckets, so a series
//! keeps one small array per sample however many connections it saw.

use std::net::SocketAddr;

use foldhash::HashMap;
use serde::Serialize;

use crate::sockets::lifecycle::{ConnEvent, Ending};

/// Upper bounds of the lifetime buckets, in seconds (the last is open).
pub const BUCKET_UPPER_S: [f64; 7] = [0.001, 0.01, 0.1, 1.0, 10.0, 60.0, 600.0];
/// Their labels, shortest first: `<1ms` ... `>=10m`.
pub const BUCKET_LABELS: [&str; 8] = [
    "<1ms", "1-10ms", "10-100ms", "0.1-1s", "1-10s", "10-60s", "1-10m", ">=10m",
];

/// A histogram of connection lifetimes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Lifetimes {
    pub counts: [u32; 8],
    pub sum_s: f64,
}

impl Lifetimes {
    pub fn add(&mut self, secs: f64) {
        let i = BUCKET_UPPER_S
            .iter()
            .position(|&u| secs < u)
            .unwrap_or(BUCKET_UPPER_S.len());
        self.counts[i] += 1;
        self.sum_s += secs;
    }

    pub fn merge(&mut self, other: &Lifetimes) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
        self.sum_s += other.sum_s;
    }

    pub fn n(&self) -> u32 {
        self.counts.iter().sum()
    }

    pub fn mean_s(&self) -> Option<f64> {
        let n = self.n();
        (n > 0).then(|| self.sum_s / f64::from(n))
    }

    /// The bucket holding the median, as (label, upper bound in seconds;
    /// infinite for the last).
    pub fn median_bucket(&self) -> Option<(&'static str, f64)> {
        let n = self.n();
        if n == 0 {
            return None;
        }
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if 2 * seen >= n {
                let upper = BUCKET_UPPER_S.get(i).copied().unwrap_or(f64::INFINITY);
                return Some((BUCKET_LABELS[i], upper));
            }
        }
        None
    }

    /// `{"<1ms": 12, "1-10ms": 3}`: the non-empty buckets, for JSON.
    pub fn buckets(&self) -> Vec<(&'static str, u32)> {
        BUCKET_LABELS
            .iter()
            .zip(self.counts)
            .filter(|(_, c)| *c > 0)
            .map(|(l, c)| (*l, c))
            .collect()
    }
}

impl Serialize for Lifetimes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let buckets = self.buckets();
        let mut m = s.serialize_map(Some(buckets.len()))?;
        for (label, count) in buckets {
            m.serialize_entry(label, &count)?;
        }
        m.end()
    }
}

/// What the events said about one (process, remote) between two samples.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tally {
    pub opens: u32,
    /// Ended connections by [`Ending::index`].
    pub ends: [u32; 4],
    pub lifetimes: Lifetimes,
}

impl Tally {
    pub fn ended(&self) -> u32 {
        self.ends.iter().sum()
    }

    pub fn ends_by(&self, e: Ending) -> u32 {
        self.ends[e.index()]
    }

    pub fn merge(&mut self, other: &Tally) {
        self.opens += other.opens;
        for (a, b) in self.ends.iter_mut().zip(other.ends) {
            *a += b;
        }
        self.lifetimes.merge(&other.lifetimes);
    }
}

/// A connection that ended, by 4-tuple: its TIME_WAIT (if this side closed
/// first) is then known to be the process's even if no sample saw it open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndedTuple {
    pub owner: u32,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub ending: Ending,
}

/// Tallies drained events per (owner, remote); also returns the 4-tuples
/// of ended connections.
pub fn tally(events: &[ConnEvent]) -> (HashMap<(u32, SocketAddr), Tally>, Vec<EndedTuple>) {
    let mut per: HashMap<(u32, SocketAddr), Tally> = HashMap::default();
    let mut tuples = Vec::new();
    for e in events {
        match *e {
            ConnEvent::Opened { owner, remote, .. } => {
                per.entry((owner, remote)).or_default().opens += 1;
            }
            ConnEvent::Ended {
                owner,
                local,
                remote,
                opened_ns,
                ended_ns,
                ending,
            } => {
                let t = per.entry((owner, remote)).or_default();
                t.ends[ending.index()] += 1;
                if ending != Ending::Failed {
                    t.lifetimes
                        .add(ended_ns.saturating_sub(opened_ns) as f64 / 1e9);
                }
                tuples.push(EndedTuple {
                    owner,
                    local,
                    remote,
                    ending,
                });
            }
        }
    }
    (per, tuples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_fall_in_log_buckets_with_a_median() {
        let mut l = Lifetimes::default();
        for s in [0.0005, 0.0008, 0.002, 0.5, 30.0, 4000.0] {
            l.add(s);
        }
        assert_eq!(l.counts, [2, 1, 0, 1, 0, 1, 0, 1]);
        assert_eq!(l.median_bucket(), Some(("1-10ms", 0.01)));
        assert_eq!(
            serde_json::to_string(&l).unwrap(),
            r#"{"<1ms":2,"1-10ms":1,"0.1-1s":1,"10-60s":1,">=10m":1}"#
        );
        assert!(Lifetimes::default().median_bucket().is_none());
    }

    #[test]
    fn tally_counts_opens_endings_and_lifetimes_per_remote() {
        let a: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:81".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let end = |remote, ending, ns: u64| ConnEvent::Ended {
            owner: 7,
            local,
            remote,
            opened_ns: 1_000_000,
            ended_ns: 1_000_000 + ns,
            ending,
        };
        let opened = |remote| ConnEvent::Opened {
            owner: 7,
            remote,
            time_ns: 0,
        };
        let events = [
            opened(a),
            opened(a),
            opened(b),
            end(a, Ending::PeerFirst, 500_000),
            end(a, Ending::LocalFirst, 5_000_000),
            end(b, Ending::Failed, 1_000),
        ];
        let (per, tuples) = tally(&events);
        let ta = per[&(7, a)];
        assert_eq!((ta.opens, ta.ended()), (2, 2));
        assert_eq!(ta.ends_by(Ending::PeerFirst), 1);
        assert_eq!(ta.lifetimes.counts[..2], [1, 1]);
        let tb = per[&(7, b)];
        assert_eq!((tb.opens, tb.ends_by(Ending::Failed)), (1, 1));
        assert_eq!(tb.lifetimes.n(), 0, "a failed connect has no lifetime");
        assert_eq!(tuples.len(), 3);
    }
}
