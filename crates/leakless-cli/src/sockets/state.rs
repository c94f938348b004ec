//! TCP states as the kernel numbers them (include/net/tcp_states.h).
//!
//! Both sources (sock_diag and /proc/net/tcp) report the same numbers, so one
//! enum serves both and the names match what `ss` prints.

use std::fmt;

/// A TCP socket state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
    NewSynRecv,
}

impl TcpState {
    /// Every state, in kernel order; `index()` is the position here.
    pub const ALL: [TcpState; 12] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
        TcpState::NewSynRecv,
    ];

    /// From the kernel's number (1 = ESTABLISHED ... 12 = NEW_SYN_RECV).
    pub fn from_kernel(n: u8) -> Option<TcpState> {
        match n {
            1..=12 => Some(Self::ALL[usize::from(n) - 1]),
            _ => None,
        }
    }

    /// Dense index 0..12, for per-state count arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name `ss` and the kernel use, e.g. `CLOSE_WAIT`.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::NewSynRecv => "NEW_SYN_RECV",
        }
    }

    /// A short column label for the terminal view.
    pub fn short(self) -> &'static str {
        match self {
            TcpState::Established => "ESTAB",
            TcpState::SynSent => "SYN-S",
            TcpState::SynRecv => "SYN-R",
            TcpState::FinWait1 => "FIN-W1",
            TcpState::FinWait2 => "FIN-W2",
            TcpState::TimeWait => "TIME-W",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE-W",
            TcpState::LastAck => "LAST-A",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
            TcpState::NewSynRecv => "NSYN-R",
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Counts per state, indexed by [`TcpState::index`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounts(pub [u32; 12]);

impl StateCounts {
    pub fn add(&mut self, s: TcpState, n: u32) {
        self.0[s.index()] += n;
    }

    pub fn get(&self, s: TcpState) -> u32 {
        self.0[s.index()]
    }

    pub fn total(&self) -> u32 {
        self.0.iter().sum()
    }

    pub fn merge(&mut self, other: &StateCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// Non-zero states, in kernel order.
    pub fn nonzero(&self) -> impl Iterator<Item = (TcpState, u32)> + '_ {
        TcpState::ALL
            .iter()
            .map(|s| (*s, self.get(*s)))
            .filter(|(_, n)| *n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_numbers_round_trip() {
        for (i, s) in TcpState::ALL.iter().enumerate() {
            assert_eq!(TcpState::from_kernel(i as u8 + 1), Some(*s));
            assert_eq!(s.index(), i);
        }
        assert_eq!(TcpState::from_kernel(8), Some(TcpState::CloseWait));
        assert_eq!(TcpState::from_kernel(0), None);
        assert_eq!(TcpState::from_kernel(13), None);
    }
}
