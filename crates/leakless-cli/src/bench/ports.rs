//! The local ports this run's connections used, learnt from the client's
//! observer (`GotConn` on a new connection carries our end of the socket).
//! The count of sockets left attributes ownerless sockets (TIME_WAIT, orphans) by them, so
//! another client closing connections to the same target is never counted
//! as ours.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use leakless::{Event, Observer, RequestInfo};

/// A bit per port: lock-free, 8 KiB, and a set bit is never cleared.
#[derive(Debug)]
pub struct Ports {
    bits: Box<[AtomicU64]>,
}

impl Default for Ports {
    fn default() -> Ports {
        Ports {
            bits: (0..1024).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl Ports {
    pub fn insert(&self, port: u16) {
        let (word, bit) = (usize::from(port / 64), port % 64);
        self.bits[word].fetch_or(1 << bit, Ordering::Relaxed);
    }

    pub fn contains(&self, port: u16) -> bool {
        let (word, bit) = (usize::from(port / 64), port % 64);
        self.bits[word].load(Ordering::Relaxed) & (1 << bit) != 0
    }
}

/// The observer that fills [`Ports`].
pub struct PortLog(pub Arc<Ports>);

impl Observer for PortLog {
    fn on_event(&self, _request: &RequestInfo, event: &Event<'_>) {
        if let Event::GotConn {
            reused: false,
            local_addr: Some(addr),
            ..
        } = event
        {
            self.0.insert(addr.port());
        }
    }

    /// Only new connections carry a new port: requests on reused ones
    /// then cost nothing to trace.
    fn every_request(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_bits() {
        let p = Ports::default();
        for port in [0, 63, 64, 40000, 65535] {
            assert!(!p.contains(port));
            p.insert(port);
            assert!(p.contains(port));
        }
        assert!(!p.contains(40001));
    }
}
