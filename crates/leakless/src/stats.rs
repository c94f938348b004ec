//! What the pool holds and has done: a plain snapshot, per host and in total.

use std::{collections::BTreeMap, time::Duration};

/// Upper bounds (seconds) of the latency histograms' buckets; a last
/// bucket catches everything above.
pub const LATENCY_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// A latency histogram with fixed buckets ([`LATENCY_BUCKETS`]): constant
/// size, cheap to record under the pool's lock, and what Prometheus wants.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    counts: [u64; 17],
    sum_nanos: u64,
}

impl Histogram {
    pub(crate) fn record(&mut self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.counts[i] += 1;
        self.sum_nanos = self.sum_nanos.saturating_add(d.as_nanos() as u64);
    }

    /// Observations recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Their sum.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_nanos)
    }

    /// `(upper bound in seconds, observations at or below it)`, cumulative,
    /// ending with `f64::INFINITY`.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        let mut acc = 0;
        let bounds = LATENCY_BUCKETS.iter().copied().chain([f64::INFINITY]);
        bounds
            .zip(self.counts)
            .map(|(b, n)| {
                acc += n;
                (b, acc)
            })
            .collect()
    }

    /// The bucket bound under which a `q` (0..=1) share of observations fall.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let want = (q.clamp(0.0, 1.0) * total as f64).ceil().max(1.0) as u64;
        let (bound, _) = self.buckets().into_iter().find(|&(_, n)| n >= want)?;
        Some(if bound.is_finite() {
            Duration::from_secs_f64(bound)
        } else {
            Duration::MAX
        })
    }

    fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a += b;
        }
        self.sum_nanos = self.sum_nanos.saturating_add(o.sum_nanos);
    }

    fn subtract(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts) {
            *a = a.saturating_sub(b);
        }
        self.sum_nanos = self.sum_nanos.saturating_sub(o.sum_nanos);
    }
}

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
    /// A Happy Eyeballs attempt that another address beat: closed as
    /// soon as the winner connected, never used.
    LostRace,
}

impl CloseReason {
    /// Every reason, in a stable order (for exposition).
    pub const ALL: [CloseReason; 12] = [
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
        CloseReason::LostRace,
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
            CloseReason::LostRace => "lost_race",
        }
    }
}

/// Connections closed, counted by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClosedBy {
    counts: [u64; CloseReason::ALL.len()],
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

    fn subtract(&mut self, other: &ClosedBy) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a = a.saturating_sub(b);
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
    /// Connections started, ever: dials, and the extra attempts of a
    /// Happy Eyeballs race (closed as [`CloseReason::LostRace`]).
    pub created: u64,
    /// Requests served by an already-open connection.
    pub reused: u64,
    /// Connections closed, ever; `closed_by` says why.
    pub closed: u64,
    /// Requests retried on a new connection after a stale one failed.
    pub retries: u64,
    /// Redirects followed from this host (counted on the host that answered 3xx).
    pub redirects: u64,
    /// `closed`, by reason.
    pub closed_by: ClosedBy,
    /// Responses reported as held past `leak_threshold`.
    pub leaks_reported: u64,
    /// Time each checkout waited for a connection (0 when one was free).
    pub pool_wait: Histogram,
    /// TCP connect time of new connections.
    pub connect_time: Histogram,
    /// TLS handshake time of new connections.
    pub tls_time: Histogram,
    /// From the request written to the response head: the server's time to answer.
    pub time_to_first_byte: Histogram,
}

impl HostStats {
    /// Adds `o` to these: gauges and counters alike.
    pub(crate) fn merge(&mut self, o: &HostStats) {
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
        self.redirects += o.redirects;
        self.closed_by.merge(&o.closed_by);
        self.leaks_reported += o.leaks_reported;
        self.pool_wait.merge(&o.pool_wait);
        self.connect_time.merge(&o.connect_time);
        self.tls_time.merge(&o.tls_time);
        self.time_to_first_byte.merge(&o.time_to_first_byte);
    }

    /// Takes `o` away from these, each field stopping at zero.
    pub(crate) fn subtract(&mut self, o: &HostStats) {
        self.open = self.open.saturating_sub(o.open);
        self.dialing = self.dialing.saturating_sub(o.dialing);
        self.busy = self.busy.saturating_sub(o.busy);
        self.idle = self.idle.saturating_sub(o.idle);
        self.waiting = self.waiting.saturating_sub(o.waiting);
        self.h2_streams = self.h2_streams.saturating_sub(o.h2_streams);
        self.created = self.created.saturating_sub(o.created);
        self.reused = self.reused.saturating_sub(o.reused);
        self.closed = self.closed.saturating_sub(o.closed);
        self.retries = self.retries.saturating_sub(o.retries);
        self.redirects = self.redirects.saturating_sub(o.redirects);
        self.closed_by.subtract(&o.closed_by);
        self.leaks_reported = self.leaks_reported.saturating_sub(o.leaks_reported);
        self.pool_wait.subtract(&o.pool_wait);
        self.connect_time.subtract(&o.connect_time);
        self.tls_time.subtract(&o.tls_time);
        self.time_to_first_byte.subtract(&o.time_to_first_byte);
    }

    /// The counters and histograms alone: every gauge zero.
    pub(crate) fn counters(&self) -> HostStats {
        HostStats {
            open: 0,
            dialing: 0,
            busy: 0,
            idle: 0,
            waiting: 0,
            h2_streams: 0,
            ..self.clone()
        }
    }
}

/// A snapshot of the pool: per host (`host:port`) and in total.
///
/// A host leaves the pool once nothing of it is left: no connection open
/// or being dialed, no request waiting, no response holding a stream (as
/// Go's `Transport` deletes a host's entries when they empty). So
/// [`PoolStats::hosts`] lists the live hosts only, and a program that
/// talks to many hosts once each keeps no state for the ones it is done
/// with. The last [`RECENT_HOSTS`] hosts to leave are kept in
/// [`PoolStats::recent`] with their counts: a host that comes back
/// carries on counting from them (a service polled less often than
/// `idle_conn_timeout` keeps one history), and a caller can still read
/// how a host's last connection ended just after it went. Older ones are
/// forgotten, their counts kept only in [`PoolStats::total`], which
/// counts every host the pool ever had: `created - closed == open` holds
/// there too.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolStats {
    /// Sums over every host, live, recent and forgotten.
    pub total: HostStats,
    /// Live hosts, keyed `host:port` (`https://host:port` for TLS).
    pub hosts: BTreeMap<String, HostStats>,
    /// Hosts that left the pool lately (at most [`RECENT_HOSTS`]), keyed as
    /// [`PoolStats::hosts`], with their final counts (gauges all zero).
    pub recent: BTreeMap<String, HostStats>,
}

/// How many hosts that left the pool [`PoolStats::recent`] remembers.
pub const RECENT_HOSTS: usize = 64;

impl PoolStats {
    /// `forgotten`: the counts of hosts that left and were forgotten.
    pub(crate) fn new(
        hosts: BTreeMap<String, HostStats>,
        recent: BTreeMap<String, HostStats>,
        forgotten: &HostStats,
    ) -> PoolStats {
        let mut total = forgotten.clone();
        for h in hosts.values().chain(recent.values()) {
            total.merge(h);
        }
        PoolStats {
            total,
            hosts,
            recent,
        }
    }

    /// The stats of one host, by `host:port`: a live one, else one that
    /// left lately.
    pub fn host(&self, key: &str) -> Option<&HostStats> {
        self.hosts.get(key).or_else(|| self.recent.get(key))
    }
}
