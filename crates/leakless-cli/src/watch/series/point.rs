//! What one sample saw: each socket ([`Obs`], in a [`SockState`]) and, summed
//! up per endpoint, a [`Point`] of the series.

use crate::sockets::{StateCounts, TcpState};
use crate::watch::conns::Tally;

/// What the kernel says of a socket the program holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockState {
    /// Listed by sock_diag in this TCP state.
    Tcp(TcpState),
    /// FD_ONLY: the program still has the fd, but the kernel lists no TCP
    /// socket for it any more (the peer reset it, e.g. after giving up on a
    /// half-closed connection). Its fd and memory stay until closed.
    FdOnly,
}

impl SockState {
    /// The name FD_ONLY goes by in every output, beside the TCP states'.
    pub const FD_ONLY: &'static str = "FD_ONLY";
}

impl From<TcpState> for SockState {
    fn from(s: TcpState) -> SockState {
        SockState::Tcp(s)
    }
}

/// One socket as seen in one sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Obs {
    pub cookie: u64,
    pub state: SockState,
    pub recv_q: u32,
    /// Seconds since data last moved (tcp_info); `None` without tcp_info.
    pub idle_s: Option<f64>,
    /// Seconds since data was last received; `None` without tcp_info.
    pub recv_idle_s: Option<f64>,
}

/// One sample of one endpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Point {
    pub t: f64,
    /// Owned sockets by state, plus TIME_WAIT attributed by 4-tuple.
    pub counts: StateCounts,
    /// Owned sockets the kernel no longer lists ([`SockState::FdOnly`]).
    pub fd_only: u32,
    /// TIME_WAIT to this endpoint that no earlier sample ties to the process.
    pub tw_unattributed: u32,
    /// Owned sockets first seen in this sample.
    pub opens: u32,
    /// Owned sockets gone since the previous sample (closed by the program).
    pub closes: u32,
    /// TIME_WAIT sockets new since the previous sample, attributed by
    /// 4-tuple or not: each is one connection this side closed.
    pub tw_new_attributed: u32,
    pub tw_new_unattributed: u32,
    /// CLOSE_WAIT sockets in that state for at least [`CW_OLD_S`]: the ones a
    /// pool did not recycle. A stale pool's turn over; a leak's pile up.
    pub cw_old: u32,
    /// CLOSE_WAIT sockets with data left unread before the FIN (Recv-Q > 1:
    /// the peer's FIN counts one): the program stopped reading early.
    pub cw_unread: u32,
    /// CLOSE_WAIT sockets whose only unread byte is the FIN (Recv-Q 1): read
    /// to the end of the data, not touched since the peer closed.
    pub cw_fin: u32,
    /// CLOSE_WAIT sockets that read EOF and were never closed.
    pub cw_eof: u32,
    /// ESTABLISHED sockets at least [`OLD_S`] old, and how many of those sat
    /// idle for (nearly) all their life: opened, used once, never again.
    pub est_old: u32,
    pub est_held: u32,
    /// ESTABLISHED sockets with unread bytes (a response nobody reads).
    pub est_unread: u32,
    pub max_idle_s: Option<f64>,
    pub oldest_age_s: f64,
    /// Connections the kernel's events counted since the previous sample
    /// (opened, ended and how, lifetimes): also those no sample saw.
    pub events: Tally,
}

impl Point {
    pub fn get(&self, s: TcpState) -> u32 {
        self.counts.get(s)
    }

    /// Owned sockets in any state, FD_ONLY included, and TIME_WAIT
    /// attributed by 4-tuple.
    pub fn sockets(&self) -> u32 {
        self.counts.total() + self.fd_only
    }

    /// Owned sockets that are still open (all states but TIME_WAIT).
    pub fn live(&self) -> u32 {
        self.sockets() - self.counts.get(TcpState::TimeWait)
    }

    /// Sockets whose peer is gone that the program holds on to: CLOSE_WAIT
    /// for [`CW_OLD_S`] or more, and FD_ONLY (the kernel dropped them; the
    /// fds stay). What a leak of closed connections piles up.
    pub fn dead_held(&self) -> u32 {
        self.cw_old + self.fd_only
    }

    /// Sockets whose peer is gone, however recently: CLOSE_WAIT and FD_ONLY.
    pub fn dead(&self) -> u32 {
        self.get(TcpState::CloseWait) + self.fd_only
    }

    /// State names and counts, FD_ONLY among them, for the outputs.
    pub fn states(&self) -> impl Iterator<Item = (&'static str, u32)> + '_ {
        self.counts
            .nonzero()
            .map(|(s, n)| (s.name(), n))
            .chain((self.fd_only > 0).then_some((SockState::FD_ONLY, self.fd_only)))
    }
}

/// Age below which an ESTABLISHED socket is not judged "held".
pub const OLD_S: f64 = 5.0;
/// Time in CLOSE_WAIT after which a socket counts as persisting.
pub const CW_OLD_S: f64 = 3.0;
