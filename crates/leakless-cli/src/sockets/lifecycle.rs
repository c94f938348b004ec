//! Connections from state changes: who opened each one, to where, when, how
//! it ended and after how long. A pure state machine over [`Record`]s, so it
//! is tested on synthetic records as well as on the kernel's.
//!
//! A connection is opened by the process whose `connect()` moved it into
//! SYN_SENT; it ends at the first FIN or reset, whichever side sends it:
//! - FIN_WAIT1: this side closed first (its TIME_WAIT will be here);
//! - CLOSE_WAIT: the peer closed first (the TIME_WAIT is the peer's);
//! - CLOSE from ESTABLISHED: a reset (sent or received), no TIME_WAIT;
//! - CLOSE from SYN_SENT: the connect failed (refused, timed out, aborted).
//!
//! In [`Scope::Tree`] the owner is the watched root whenever the opener is
//! the root or any process forked from it, followed through the fork records
//! (so a child that lives a millisecond still counts).

use std::net::SocketAddr;

use foldhash::{HashMap, HashSet};
use serde::Serialize;

use super::TcpState;
use super::perf::{Record, Transition};

/// Live connections tracked at most (a bound on memory whatever the host
/// does); beyond it new connections are counted as untracked.
const MAX_LIVE: usize = 1 << 18;

/// Whose connections are followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A process and everything forked from it, owned by the root's pid.
    Tree(u32),
    /// Every process, each its own owner.
    All,
}

/// How a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Ending {
    /// This side sent the first FIN (the TIME_WAIT is here).
    #[serde(rename = "local_first")]
    LocalFirst,
    /// The peer sent the first FIN (the TIME_WAIT is the peer's).
    #[serde(rename = "peer_first")]
    PeerFirst,
    /// Reset from ESTABLISHED (an abort, or an RST from the peer).
    #[serde(rename = "reset")]
    Reset,
    /// The connect never completed.
    #[serde(rename = "failed")]
    Failed,
}

impl Ending {
    pub const ALL: [Ending; 4] = [
        Ending::LocalFirst,
        Ending::PeerFirst,
        Ending::Reset,
        Ending::Failed,
    ];

    pub fn index(self) -> usize {
        self as usize
    }
}

/// What the state machine reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnEvent {
    Opened {
        owner: u32,
        remote: SocketAddr,
        time_ns: u64,
    },
    Ended {
        owner: u32,
        local: SocketAddr,
        remote: SocketAddr,
        opened_ns: u64,
        ended_ns: u64,
        ending: Ending,
    },
}

struct Live {
    owner: u32,
    remote: SocketAddr,
    opened_ns: u64,
}

/// The state machine.
pub struct Lifecycle {
    scope: Scope,
    tree: HashSet<u32>,
    live: HashMap<u64, Live>,
    /// Records the kernel dropped (full ring): counts may be short by that.
    pub lost: u64,
    /// Connections not followed because [`MAX_LIVE`] were already live.
    pub untracked: u64,
}

impl Lifecycle {
    pub fn new(scope: Scope) -> Lifecycle {
        let mut tree = HashSet::default();
        if let Scope::Tree(root) = scope {
            tree.insert(root);
        }
        Lifecycle {
            scope,
            tree,
            live: HashMap::default(),
            lost: 0,
            untracked: 0,
        }
    }

    /// Adds processes of the tree that existed before the records start
    /// (read from /proc once the events are on).
    pub fn seed(&mut self, pids: &[u32]) {
        if let Scope::Tree(_) = self.scope {
            self.tree.extend(pids);
        }
    }

    /// The processes currently known to be in the tree.
    pub fn tree(&self) -> impl Iterator<Item = u32> + '_ {
        self.tree.iter().copied()
    }

    /// Connections open now that this state machine saw opened.
    pub fn live(&self) -> usize {
        self.live.len()
    }

    /// Feeds one record (records in time order); appends what it means.
    pub fn feed(&mut self, rec: &Record, out: &mut Vec<ConnEvent>) {
        match *rec {
            Record::Fork { pid, ppid, .. } => {
                // A new thread has pid == ppid (both are thread groups).
                if pid != ppid && self.tree.contains(&ppid) {
                    self.tree.insert(pid);
                }
            }
            Record::Exit { pid, tid, .. } => {
                // Forget exited processes (their pid may be reused), never
                // the root: the watch reports on it until the end.
                if pid == tid && self.scope != Scope::Tree(pid) {
                    self.tree.remove(&pid);
                }
            }
            Record::Lost(n) => self.lost += n,
            Record::Transition(t) => self.transition(&t, out),
        }
    }

    fn owner_of(&self, pid: u32) -> Option<u32> {
        match self.scope {
            Scope::All => Some(pid),
            Scope::Tree(root) => self.tree.contains(&pid).then_some(root),
        }
    }

    fn transition(&mut self, t: &Transition, out: &mut Vec<ConnEvent>) {
        if t.new == TcpState::SynSent {
            let Some(owner) = self.owner_of(t.pid) else {
                return;
            };
            if self.live.len() >= MAX_LIVE && !self.live.contains_key(&t.sk) {
                self.untracked += 1;
                return;
            }
            // A socket address seen again means its previous life ended
            // unseen (lost records): the new connection replaces it.
            self.live.insert(
                t.sk,
                Live {
                    owner,
                    remote: t.remote,
                    opened_ns: t.time_ns,
                },
            );
            out.push(ConnEvent::Opened {
                owner,
                remote: t.remote,
                time_ns: t.time_ns,
            });
            return;
        }
        // A close is told by the state it leaves too: the record of the
        // FIN_WAIT1 or CLOSE_WAIT before it may sit in another CPU's ring,
        // read after this one (rings are read one after another while the
        // kernel writes them), and must not make the close look like a reset.
        let ending = match (t.old, t.new) {
            (_, TcpState::FinWait1) => Ending::LocalFirst,
            (_, TcpState::CloseWait) => Ending::PeerFirst,
            (TcpState::SynSent, TcpState::Close) => Ending::Failed,
            (
                TcpState::FinWait1 | TcpState::FinWait2 | TcpState::Closing | TcpState::TimeWait,
                TcpState::Close,
            ) => Ending::LocalFirst,
            (TcpState::CloseWait | TcpState::LastAck, TcpState::Close) => Ending::PeerFirst,
            (_, TcpState::Close) => Ending::Reset,
            _ => return,
        };
        let Some(l) = self.live.remove(&t.sk) else {
            return;
        };
        out.push(ConnEvent::Ended {
            owner: l.owner,
            local: t.local,
            remote: l.remote,
            opened_ns: l.opened_ns,
            ended_ns: t.time_ns,
            ending,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "127.0.0.1:8080";

    fn tr(time_ns: u64, pid: u32, sk: u64, old: TcpState, new: TcpState, port: u16) -> Record {
        Record::Transition(Transition {
            time_ns,
            pid,
            sk,
            old,
            new,
            local: SocketAddr::new([127, 0, 0, 1].into(), port),
            remote: SERVER.parse().unwrap(),
        })
    }

    /// One connection: connect (port not yet chosen), established, then
    /// `close` from `last` (FIN_WAIT1, CLOSE_WAIT, or CLOSE).
    fn conn(at: u64, pid: u32, sk: u64, port: u16, last: (TcpState, TcpState)) -> Vec<Record> {
        vec![
            tr(at, pid, sk, TcpState::Close, TcpState::SynSent, 0),
            tr(
                at + 10,
                0,
                sk,
                TcpState::SynSent,
                TcpState::Established,
                port,
            ),
            tr(at + 1_000, 0, sk, last.0, last.1, port),
        ]
    }

    fn run(l: &mut Lifecycle, recs: &[Record]) -> Vec<ConnEvent> {
        let mut out = Vec::new();
        for r in recs {
            l.feed(r, &mut out);
        }
        out
    }

    fn endings(out: &[ConnEvent]) -> Vec<(u32, Ending, u64)> {
        out.iter()
            .filter_map(|e| match *e {
                ConnEvent::Ended {
                    owner,
                    ending,
                    opened_ns,
                    ended_ns,
                    ..
                } => Some((owner, ending, ended_ns - opened_ns)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn each_way_a_connection_ends_is_told_apart() {
        let mut l = Lifecycle::new(Scope::All);
        let mut recs = Vec::new();
        recs.extend(conn(
            0,
            7,
            1,
            40001,
            (TcpState::Established, TcpState::FinWait1),
        ));
        recs.extend(conn(
            5_000,
            7,
            2,
            40002,
            (TcpState::Established, TcpState::CloseWait),
        ));
        recs.extend(conn(
            9_000,
            7,
            3,
            40003,
            (TcpState::Established, TcpState::Close),
        ));
        recs.push(tr(20_000, 7, 4, TcpState::Close, TcpState::SynSent, 0));
        recs.push(tr(20_500, 0, 4, TcpState::SynSent, TcpState::Close, 40004));
        let out = run(&mut l, &recs);
        assert_eq!(
            endings(&out),
            vec![
                (7, Ending::LocalFirst, 1_000),
                (7, Ending::PeerFirst, 1_000),
                (7, Ending::Reset, 1_000),
                (7, Ending::Failed, 500),
            ]
        );
        let opened = out
            .iter()
            .filter(|e| matches!(e, ConnEvent::Opened { .. }))
            .count();
        assert_eq!(opened, 4);
        assert_eq!(l.live(), 0);
        // The ending carries the 4-tuple the connect had not chosen yet.
        let ConnEvent::Ended { local, .. } = out[1] else {
            panic!()
        };
        assert_eq!(local.port(), 40001);
    }

    /// The close's last step read before its first (another CPU's ring
    /// read later): still who closed first, not a reset.
    #[test]
    fn a_close_read_before_its_fin_is_not_a_reset() {
        let mut l = Lifecycle::new(Scope::All);
        let mut recs = Vec::new();
        for (sk, first, last) in [
            (1, TcpState::FinWait1, TcpState::FinWait2),
            (2, TcpState::CloseWait, TcpState::LastAck),
        ] {
            let port = 40000 + sk as u16;
            recs.extend(conn(sk * 10_000, 7, sk, port, (last, TcpState::Close)));
            recs.push(tr(
                sk * 10_000 + 500,
                7,
                sk,
                TcpState::Established,
                first,
                port,
            ));
        }
        let out = run(&mut l, &recs);
        assert_eq!(
            endings(&out),
            vec![
                (7, Ending::LocalFirst, 1_000),
                (7, Ending::PeerFirst, 1_000)
            ]
        );
        assert_eq!(l.live(), 0);
    }

    #[test]
    fn a_short_lived_child_of_the_tree_is_attributed_to_the_root() {
        let mut l = Lifecycle::new(Scope::Tree(100));
        let mut recs = vec![
            Record::Fork {
                time_ns: 1,
                pid: 101,
                ppid: 100,
            },
            Record::Fork {
                time_ns: 2,
                pid: 102,
                ppid: 101,
            },
        ];
        recs.extend(conn(
            10,
            102,
            1,
            40001,
            (TcpState::Established, TcpState::CloseWait),
        ));
        recs.push(Record::Exit {
            time_ns: 5_000,
            pid: 102,
            tid: 102,
        });
        // After it exited, its pid is someone else's.
        recs.extend(conn(
            6_000,
            102,
            2,
            40002,
            (TcpState::Established, TcpState::FinWait1),
        ));
        // A process outside the tree is not followed.
        recs.extend(conn(
            7_000,
            555,
            3,
            40003,
            (TcpState::Established, TcpState::FinWait1),
        ));
        let out = run(&mut l, &recs);
        assert_eq!(endings(&out), vec![(100, Ending::PeerFirst, 1_000)]);
        assert_eq!(l.live(), 0);
    }

    #[test]
    fn threads_and_seeded_processes_belong_to_the_tree() {
        let mut l = Lifecycle::new(Scope::Tree(100));
        l.seed(&[100, 150]);
        let mut recs = vec![Record::Fork {
            time_ns: 1,
            pid: 200,
            ppid: 200,
        }];
        recs.extend(conn(
            10,
            150,
            1,
            40001,
            (TcpState::Established, TcpState::FinWait1),
        ));
        recs.extend(conn(
            20,
            200,
            2,
            40002,
            (TcpState::Established, TcpState::FinWait1),
        ));
        let out = run(&mut l, &recs);
        assert_eq!(endings(&out), vec![(100, Ending::LocalFirst, 1_000)]);
    }

    #[test]
    fn transitions_of_unknown_sockets_and_lost_records() {
        let mut l = Lifecycle::new(Scope::All);
        let out = run(
            &mut l,
            &[
                tr(1, 0, 9, TcpState::Established, TcpState::FinWait1, 1),
                Record::Lost(3),
            ],
        );
        assert!(out.is_empty());
        assert_eq!(l.lost, 3);
    }
}
