//! Prometheus exposition of the pool's stats. A collector takes a
//! snapshot at each scrape, so there is nothing to keep in sync and
//! nothing to pay between scrapes. Hosts are a label: the first 50 hosts
//! a scrape sees keep their own label for the client's life, the rest
//! are summed under `host="other"`, so the series count stays bounded
//! whatever a program talks to. Counters never go down, although hosts
//! leave the pool when their last connection goes: a named host's series
//! carries on (at its last counts while the host is gone), and a host
//! that leaves unnamed was in "other" all along (the pool keeps this
//! bookkeeping, so every registry and every `prometheus_text()` agrees).

use std::{fmt, sync::Weak};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{MetricType, counter::ConstCounter, gauge::ConstGauge},
    registry::{Registry, Unit},
};

use crate::{
    pool::Shared,
    stats::{CloseReason, Histogram, HostStats},
};

/// Scrapes one client's pool; holds it weakly, so metrics never keep a
/// dropped client's pool alive, and reports nothing once the client is gone.
pub(crate) struct PoolCollector(Weak<Shared>);

impl fmt::Debug for PoolCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PoolCollector")
    }
}

/// Registers the collector under the `leakless` prefix.
pub(crate) fn register(registry: &mut Registry, pool: Weak<Shared>) {
    registry
        .sub_registry_with_prefix("leakless")
        .register_collector(Box::new(PoolCollector(pool)));
}

fn gauge(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: &[(Vec<(&'static str, String)>, i64)],
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in rows {
        ConstGauge::new(*v).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

fn counter(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: &[(Vec<(&'static str, String)>, u64)],
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(*v).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}

fn histogram(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: &[(Vec<(&'static str, String)>, &Histogram)],
) -> fmt::Result {
    let mut family =
        enc.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    for (labels, h) in rows {
        // The encoder wants per-bucket counts, not cumulative ones.
        let cumulative = h.buckets();
        let mut prev = 0;
        let buckets: Vec<(f64, u64)> = cumulative
            .iter()
            .map(|&(b, c)| {
                let n = c - prev;
                prev = c;
                (b, n)
            })
            .collect();
        family
            .encode_family(labels)?
            .encode_histogram::<Vec<(String, String)>>(
                h.sum().as_secs_f64(),
                h.count(),
                &buckets,
                None,
            )?;
    }
    Ok(())
}

impl Collector for PoolCollector {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let Some(hosts) = self.0.upgrade().and_then(|pool| pool.series_while_open()) else {
            return Ok(());
        };
        let host = |h: &String| vec![("host", h.clone())];
        let state_rows: Vec<_> = hosts
            .iter()
            .flat_map(|(h, s)| {
                [("dialing", s.dialing), ("busy", s.busy), ("idle", s.idle)].map(|(state, n)| {
                    (
                        vec![("host", h.clone()), ("state", state.to_owned())],
                        n as i64,
                    )
                })
            })
            .collect();
        gauge(
            &mut enc,
            "pool_connections",
            "Open connections by state (dialing + busy + idle = open).",
            &state_rows,
        )?;
        let rows = |f: fn(&HostStats) -> i64| {
            hosts
                .iter()
                .map(|(h, s)| (host(h), f(s)))
                .collect::<Vec<_>>()
        };
        gauge(
            &mut enc,
            "pool_waiting",
            "Requests waiting for a connection slot.",
            &rows(|s| s.waiting as i64),
        )?;
        gauge(
            &mut enc,
            "h2_streams",
            "HTTP/2 streams in flight.",
            &rows(|s| s.h2_streams as i64),
        )?;
        let totals = |f: fn(&HostStats) -> u64| {
            hosts
                .iter()
                .map(|(h, s)| (host(h), f(s)))
                .collect::<Vec<_>>()
        };
        counter(
            &mut enc,
            "connections_created",
            "Connections dialed.",
            &totals(|s| s.created),
        )?;
        counter(
            &mut enc,
            "connection_reuses",
            "Requests served by an already open connection.",
            &totals(|s| s.reused),
        )?;
        counter(
            &mut enc,
            "requests_retried",
            "Requests retried on a new connection.",
            &totals(|s| s.retries),
        )?;
        counter(
            &mut enc,
            "redirects_followed",
            "Redirects followed, counted on the host that answered 3xx.",
            &totals(|s| s.redirects),
        )?;
        counter(
            &mut enc,
            "leaks_reported",
            "Responses reported as held past leak_threshold.",
            &totals(|s| s.leaks_reported),
        )?;
        let closed: Vec<_> = hosts
            .iter()
            .flat_map(|(h, s)| {
                CloseReason::ALL.iter().map(|&r| {
                    (
                        vec![("host", h.clone()), ("reason", r.as_str().to_owned())],
                        s.closed_by.get(r),
                    )
                })
            })
            .collect();
        counter(
            &mut enc,
            "connections_closed",
            "Connections closed, by reason.",
            &closed,
        )?;
        let hist = |f: fn(&HostStats) -> &Histogram| {
            hosts
                .iter()
                .map(|(h, s)| (host(h), f(s)))
                .collect::<Vec<_>>()
        };
        histogram(
            &mut enc,
            "pool_wait",
            "Time a request waited for a connection.",
            &hist(|s| &s.pool_wait),
        )?;
        histogram(
            &mut enc,
            "connect",
            "TCP connect time of new connections.",
            &hist(|s| &s.connect_time),
        )?;
        histogram(
            &mut enc,
            "tls_handshake",
            "TLS handshake time of new connections.",
            &hist(|s| &s.tls_time),
        )?;
        histogram(
            &mut enc,
            "time_to_first_byte",
            "From the request written to the response head.",
            &hist(|s| &s.time_to_first_byte),
        )?;
        Ok(())
    }
}
