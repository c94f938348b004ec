//! The run's sockets to the target, counted by TCP state at the end: what a
//! client leaves behind (idle connections, TIME_WAIT from its closes,
//! CLOSE_WAIT it never reaped), read from the kernel with `sockets`.
//!
//! Which sockets are the run's: one dump before the first request is the
//! [`Baseline`], one after the last is counted into [`SocketsLeft`]. A
//! socket to the target in the second dump is ours when this process holds
//! it (its fd resolves to our pid), or when no process holds it any more
//! (TIME_WAIT, an orphan in FIN_WAIT), it was not in the baseline (the
//! kernel keeps a socket's cookie when it moves to TIME_WAIT), and its
//! local port is one this run's connections used ([`Ports`], from the
//! client's observer). The port is what tells our TIME_WAIT from that of
//! another client closing connections to the same target during the run.
//! Without ports (the embedded server, whose port nobody else uses) "new
//! since the baseline" decides alone, and live sockets of other processes
//! to the target are reported as a warning.
//!
//! With the embedded server, the server's end of each connection is counted
//! too: when the server closes first (keep-alives disabled: it closes after
//! `Connection: close`), the TIME_WAIT pile is on its side, and hiding it
//! would hide the lesson.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;

use super::ports::Ports;
use crate::sockets::{Owners, SocketInfo, SocketTable, TcpState, normalize};

/// The sockets to the target before the run, and the table to read again
/// after it.
pub struct Baseline {
    table: SocketTable,
    targets: Vec<SocketAddr>,
    /// The embedded server's listening address: its accepted sockets have it as local.
    server: Option<SocketAddr>,
    /// Cookies of the sockets already there.
    before: HashSet<u64>,
    me: u32,
}

/// Sockets to the target at the end, by state.
#[derive(Clone, Debug, Default)]
pub struct SocketsLeft {
    pub by_state: BTreeMap<TcpState, u32>,
    /// The embedded server's side of the run's connections, by state.
    pub server_by_state: Option<BTreeMap<TcpState, u32>>,
    /// Live sockets to the target held by other processes, opened during the
    /// run: ownerless counts may include their closes.
    pub foreign: u32,
    pub warnings: Vec<String>,
}

impl Baseline {
    /// Reads the socket table. Without netlink or /proc (a locked-down
    /// sandbox) there is no count at the end, and the report says so.
    pub fn take(targets: &[SocketAddr], server: Option<SocketAddr>) -> Result<Baseline, String> {
        let me = std::process::id();
        let mut table = SocketTable::open(Owners::Pids(vec![me])).without_tcp_info();
        let sample = table
            .sample()
            .map_err(|e| format!("cannot read the socket table: {e}"))?;
        let targets: Vec<SocketAddr> = targets.iter().copied().map(normalize).collect();
        let server = server.map(normalize);
        let before = sample
            .sockets
            .iter()
            .filter(|s| to_target(&targets, s) || from_server(server, s))
            .map(|s| s.cookie)
            .collect();
        Ok(Baseline {
            table,
            targets,
            server,
            before,
            me,
        })
    }

    /// Reads the table again and counts the run's sockets. With `ports`
    /// (the local ports the run's connections used), an ownerless socket
    /// must also have one of them.
    pub fn sockets_left(mut self, ports: Option<&Ports>) -> Result<SocketsLeft, String> {
        let sample = self
            .table
            .sample()
            .map_err(|e| format!("cannot read the socket table: {e}"))?;
        let mut out = SocketsLeft {
            warnings: self.table.warnings(),
            server_by_state: self.server.map(|_| BTreeMap::new()),
            ..SocketsLeft::default()
        };
        if let Some(side) = &mut out.server_by_state {
            for s in sample
                .sockets
                .iter()
                .filter(|s| from_server(self.server, s))
            {
                if !self.before.contains(&s.cookie) {
                    *side.entry(s.state).or_default() += 1;
                }
            }
        }
        for s in sample
            .sockets
            .iter()
            .filter(|s| to_target(&self.targets, s))
        {
            if self.before.contains(&s.cookie) {
                continue;
            }
            let ownerless = s.inode == 0 && s.pid.is_none();
            let used = ports.is_none_or(|p| p.contains(s.local.port()));
            if s.pid == Some(self.me) || (ownerless && used) {
                *out.by_state.entry(s.state).or_default() += 1;
            } else if !ownerless {
                out.foreign += 1;
            }
        }
        if out.foreign > 0 && ports.is_none() {
            out.warnings.push(format!(
                "{} sockets to the target belong to other processes: the TIME_WAIT count may include their closes",
                out.foreign
            ));
        }
        Ok(out)
    }
}

fn to_target(targets: &[SocketAddr], s: &SocketInfo) -> bool {
    targets.contains(&normalize(s.remote))
}

/// An accepted socket of the server (not its listener).
fn from_server(server: Option<SocketAddr>, s: &SocketInfo) -> bool {
    server.is_some_and(|a| normalize(s.local) == a) && s.state != TcpState::Listen
}

impl SocketsLeft {
    /// The client's side by state name (see [`named`]).
    pub fn named(&self) -> BTreeMap<String, u32> {
        named(&self.by_state)
    }

    /// The server's side, named the same way; `None` for a remote target.
    pub fn server_named(&self) -> Option<BTreeMap<String, u32>> {
        self.server_by_state.as_ref().map(named)
    }
}

/// The states a reader looks for first, always present (zeros included),
/// then any other state seen.
fn named(by_state: &BTreeMap<TcpState, u32>) -> BTreeMap<String, u32> {
    let mut m: BTreeMap<String, u32> = [
        TcpState::Established,
        TcpState::TimeWait,
        TcpState::CloseWait,
    ]
    .iter()
    .map(|s| (s.name().to_string(), 0))
    .collect();
    for (state, n) in by_state {
        m.insert(state.name().to_string(), *n);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    #[test]
    fn counts_only_new_sockets_to_the_target() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let before = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let baseline =
            Baseline::take(&[l.local_addr().unwrap()], Some(l.local_addr().unwrap())).unwrap();
        let after = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (_served, _) = l.accept().unwrap();
        let left = baseline.sockets_left(None).unwrap();
        // The socket opened before the baseline is not the run's; the one
        // after is, and the listener's accepted side is not "to" the target.
        assert_eq!(left.named()["ESTABLISHED"], 1, "{left:?}");
        assert_eq!(left.named()["TIME_WAIT"], 0);
        let server = left.server_named().unwrap();
        assert_eq!(server["ESTABLISHED"], 1, "{server:?}");
        drop((before, after));
    }
}
