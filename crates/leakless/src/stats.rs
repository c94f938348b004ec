//! What the pool holds and has done: a plain snapshot, per host and in total.

use std::collections::BTreeMap;

/// Why a connection was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CloseReason {
    /// Idle for longer than `idle_conn_timeout`.
    IdleTimeout,
    /// Older than `max_conn_lifetime`.
    Lifetime,
    /// The server closed it while idle, or sent bytes nobody asked for.
    ServerClosed,
    /// The response ruled out reuse (`Connection: close`, HTTP/1.0, no length).
    NotReusable,
    /// An I/O or protocol error.
    Error,
    /// A phase timed out on it.
    Timeout,
    /// The idle caps (`max_idle_conns_per_host`, `max_idle_conns`) were full.
    PoolFull,
    /// A response dropped early could not be drained within the limits.
    DrainFailed,
    /// The client was dropped.
    ClientDropped,
    /// `disable_keep_alives` is set.
    KeepAlivesDisabled,
    /// The request or body holding it was dropped mid-exchange.
    Canceled,
}

impl CloseReason {
    /// Every reason, in a stable order (for exposition).
    pub const ALL: [CloseReason; 11] = [
        CloseReason::IdleTimeout,
        CloseReason::Lifetime,
        CloseReason::ServerClosed,
        CloseReason::NotReusable,
        CloseReason::Error,
        CloseReason::Timeout,
        CloseReason::PoolFull,
        CloseReason::DrainFailed,
        CloseReason::ClientDropped,
        CloseReason::KeepAlivesDisabled,
        CloseReason::Canceled,
    ];

    /// A snake_case name, as used in metrics labels and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::IdleTimeout => "idle_timeout",
            CloseReason::Lifetime => "lifetime",
            CloseReason::ServerClosed => "server_closed",
            CloseReason::NotReusable => "not_reusable",
            CloseReason::Error => "error",
            CloseReason::Timeout => "timeout",
            CloseReason::PoolFull => "pool_full",
            CloseReason::DrainFailed => "drain_failed",
            CloseReason::ClientDropped => "client_dropped",
            CloseReason::KeepAlivesDisabled => "keep_alives_disabled",
            CloseReason::Canceled => "canceled",
        }
    }
}

/// Connections closed, counted by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClosedBy {
    counts: [u64; 11],
}

impl ClosedBy {
    /// How many were closed for `reason`.
    pub fn get(&self, reason: CloseReason) -> u64 {
        self.counts[Self::index(reason)]
    }

    /// Every reason with its count, zeros included.
    pub fn iter(&self) -> impl Iterator<Item = (CloseReason, u64)> + '_ {
        CloseReason::ALL.iter().map(|&r| (r, self.get(r)))
    }

    pub(crate) fn add(&mut self, reason: CloseReason) {
        self.counts[Self::index(reason)] += 1;
    }

    fn index(reason: CloseReason) -> usize {
        CloseReason::ALL
            .iter()
            .position(|&r| r == reason)
            .expect("every reason is listed")
    }

    fn merge(&mut self, other: &ClosedBy) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
    }
}

/// One host's connections (or the total over hosts).
///
/// At every snapshot `open == dialing + busy + idle` and
/// `created - closed == open`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostStats {
    /// Connections that exist: dialing + busy + idle.
    pub open: usize,
    /// Being dialed (TCP connect in progress).
    pub dialing: usize,
    /// Carrying a request or an unread response body.
    pub busy: usize,
    /// In the idle list, ready for reuse.
    pub idle: usize,
    /// Requests waiting for a slot.
    pub waiting: usize,
    /// HTTP/2 streams in flight (a busy HTTP/2 connection counts once in `busy`).
    pub h2_streams: usize,
    /// Connections started (dials), ever.
    pub created: u64,
    /// Requests served by an already-open connection.
    pub reused: u64,
    /// Connections closed, ever; `closed_by` says why.
    pub closed: u64,
    /// Requests retried on a new connection after a stale one failed.
    pub retries: u64,
    /// `closed`, by reason.
    pub closed_by: ClosedBy,
}

impl HostStats {
    fn merge(&mut self, o: &HostStats) {
        self.open += o.open;
        self.dialing += o.dialing;
        self.busy += o.busy;
        self.idle += o.idle;
        self.waiting += o.waiting;
        self.h2_streams += o.h2_streams;
        self.created += o.created;
        self.reused += o.reused;
        self.closed += o.closed;
        self.retries += o.retries;
        self.closed_by.merge(&o.closed_by);
    }
}

/// A snapshot of the pool: per host (`host:port`) and in total.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Sums over every host.
    pub total: HostStats,
    /// Per host, keyed `host:port` (`https://host:port` for TLS).
    pub hosts: BTreeMap<String, HostStats>,
}

impl PoolStats {
    pub(crate) fn from_hosts(hosts: BTreeMap<String, HostStats>) -> PoolStats {
        let mut total = HostStats::default();
        for h in hosts.values() {
            total.merge(h);
        }
        PoolStats { total, hosts }
    }

    /// The stats of one host, by `host:port`.
    pub fn host(&self, key: &str) -> Option<&HostStats> {
        self.hosts.get(key)
    }
}
