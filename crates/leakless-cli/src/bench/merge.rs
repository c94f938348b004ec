//! `leakless bench merge a.json b.json …`: runs of `bench --json`, from
//! one machine or many, added up into one result, exactly: histograms add
//! (so percentiles are those of every request together, not an average of
//! percentiles), seconds line up by wall clock, and counts of requests,
//! connections and sockets add. No coordinator: whatever ran the copies
//! (an Indexed Job, ssh in a loop) hands their JSON here.

use std::collections::BTreeMap;
use std::path::Path;

use hdrhistogram::Histogram;

use super::args::MergeArgs;
use super::summary::{Connections, Histograms, Summary};
use crate::load::latency::{add, decode, encode, encode_plain, histogram};
use crate::load::{Latency, Point, Second};

pub fn run(args: MergeArgs) -> Result<i32, String> {
    let mut runs = Vec::with_capacity(args.files.len());
    for path in &args.files {
        runs.push((path.display().to_string(), read(path)?));
    }
    let merged = merge(&runs)?;
    let points: Vec<Point> = merged.series.iter().map(|s| s.point.clone()).collect();
    super::output(&merged, &points, args.json, args.report.as_deref())
}

/// The result in a file `bench --json` wrote.
fn read(path: &Path) -> Result<Summary, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The first JSON object in `text`, from the first line that opens one:
/// lines before and after it (a collected log's stderr lines) are ignored.
fn parse(text: &str) -> Result<Summary, String> {
    let mut offset = 0;
    let start = text
        .split_inclusive('\n')
        .find_map(|line| {
            let at = offset;
            offset += line.len();
            line.trim_start().starts_with('{').then_some(at)
        })
        .ok_or("no JSON object: expected the output of `leakless bench --json`")?;
    let mut objects = serde_json::Deserializer::from_str(&text[start..]).into_iter::<Summary>();
    match objects.next() {
        Some(Ok(s)) => Ok(s),
        Some(Err(e)) if e.to_string().contains("missing field") => Err(format!(
            "{e}: not the JSON of `leakless bench --json` from a version that writes histograms; run it again with this one"
        )),
        Some(Err(e)) => Err(format!("not the JSON of `leakless bench --json`: {e}")),
        None => Err("no JSON object: expected the output of `leakless bench --json`".into()),
    }
}

/// Adds runs up; `runs` holds (name, result) pairs, the names for warnings.
pub fn merge(runs: &[(String, Summary)]) -> Result<Summary, String> {
    let (_, first) = runs.first().ok_or("nothing to merge")?;
    let mut warnings = Vec::new();
    let start = runs
        .iter()
        .map(|(_, r)| r.start_unix_s)
        .fold(f64::INFINITY, f64::min);
    let end = runs
        .iter()
        .map(|(_, r)| r.start_unix_s + r.elapsed_s)
        .fold(f64::NEG_INFINITY, f64::max);
    let rated = runs.iter().filter(|(_, r)| r.rate.is_some()).count();
    if rated > 0 && rated < runs.len() {
        warnings.push(format!(
            "only {rated} of {} runs had --rate: the latency from the schedule covers their requests only",
            runs.len()
        ));
    }
    let mut m = Summary {
        runs: 0,
        url: first.url.clone(),
        embedded_server: runs.iter().all(|(_, r)| r.embedded_server),
        concurrency: 0,
        threads: 0,
        rate: (rated == runs.len()).then(|| runs.iter().filter_map(|(_, r)| r.rate).sum()),
        start_unix_s: start,
        elapsed_s: (end - start).max(0.0),
        requests: 0,
        succeeded: 0,
        failed: 0,
        canceled: 0,
        errors: BTreeMap::new(),
        statuses: BTreeMap::new(),
        versions: BTreeMap::new(),
        rps: 0.0,
        bytes: 0,
        latency_ms: Latency::default(),
        latency_from_schedule_ms: None,
        connections: Connections::default(),
        sockets_end: BTreeMap::new(),
        server_sockets_end: None,
        settings: first.settings.clone(),
        warnings: Vec::new(),
        error_examples: BTreeMap::new(),
        histograms: Histograms {
            latency_us: String::new(),
            latency_from_schedule_us: None,
        },
        series: Vec::new(),
    };
    let mut sent = histogram();
    let mut due = histogram();
    for (name, r) in runs {
        if r.url != m.url {
            warnings.push(format!("{name} loaded {}, not {}", r.url, m.url));
        }
        if r.settings != m.settings {
            warnings.push(format!(
                "{name} ran with other settings ({}): the settings shown are the first run's",
                serde_json::to_string(&r.settings).unwrap_or_default()
            ));
        }
        if r.sockets_end.is_empty() {
            warnings.push(format!(
                "{name} could not read its socket table: the sockets left count the other runs only"
            ));
        }
        let h = decode(&r.histograms.latency_us)
            .map_err(|e| format!("{name}: histograms.latency_us: {e}"))?;
        if h.len() != r.succeeded {
            return Err(format!(
                "{name}: its histogram holds {} successes but `succeeded` is {}: the file was cut or edited",
                h.len(),
                r.succeeded
            ));
        }
        add(&mut sent, &h);
        if let Some(text) = &r.histograms.latency_from_schedule_us {
            let h = decode(text)
                .map_err(|e| format!("{name}: histograms.latency_from_schedule_us: {e}"))?;
            add(&mut due, &h);
        }
        m.runs += r.runs;
        m.concurrency += r.concurrency;
        m.threads += r.threads;
        m.requests += r.requests;
        m.succeeded += r.succeeded;
        m.failed += r.failed;
        m.canceled += r.canceled;
        m.bytes += r.bytes;
        add_counts(&mut m.errors, &r.errors);
        add_counts(&mut m.statuses, &r.statuses);
        add_counts(&mut m.versions, &r.versions);
        add_counts(&mut m.sockets_end, &r.sockets_end);
        if let Some(server) = &r.server_sockets_end {
            add_counts(m.server_sockets_end.get_or_insert_default(), server);
        }
        for (kind, example) in &r.error_examples {
            m.error_examples
                .entry(kind.clone())
                .or_insert_with(|| example.clone());
        }
        add_connections(&mut m.connections, &r.connections);
        m.warnings
            .extend(r.warnings.iter().map(|w| format!("{name}: {w}")));
    }
    m.warnings.extend(warnings);
    let c = &mut m.connections;
    let served = c.reused + c.opened;
    c.reuse_ratio = if served == 0 {
        0.0
    } else {
        c.reused as f64 / served as f64
    };
    m.rps = if m.elapsed_s > 0.0 {
        m.succeeded as f64 / m.elapsed_s
    } else {
        0.0
    };
    m.latency_ms = Latency::of(&sent);
    m.latency_from_schedule_ms = (rated > 0).then(|| Latency::of(&due));
    m.histograms = Histograms {
        latency_us: encode(&sent),
        latency_from_schedule_us: (rated > 0).then(|| encode(&due)),
    };
    m.series = seconds(runs, start, rated > 0)?;
    Ok(m)
}

fn add_counts<N: Copy + std::ops::AddAssign + Default>(
    into: &mut BTreeMap<String, N>,
    from: &BTreeMap<String, N>,
) {
    for (k, n) in from {
        *into.entry(k.clone()).or_default() += *n;
    }
}

/// Every count adds. The peaks add too: an upper bound on the merged
/// peak, reached when the runs peak at once (in a steady run, they do).
fn add_connections(into: &mut Connections, from: &Connections) {
    into.opened += from.opened;
    into.reused += from.reused;
    add_counts(&mut into.closed, &from.closed);
    into.closed_total += from.closed_total;
    into.peak_open += from.peak_open;
    into.peak_waiting += from.peak_waiting;
    into.open_end += from.open_end;
    into.retries += from.retries;
}

/// One wall-clock second being added up.
struct Filling {
    point: Point,
    /// Its latest end, seconds since the Unix epoch.
    end: f64,
    sent: Histogram<u64>,
    due: Histogram<u64>,
}

/// The runs' seconds lined up by wall clock: the same second of every run
/// adds into one (counts, the pool's gauges at its end, histograms).
fn seconds(runs: &[(String, Summary)], start: f64, rated: bool) -> Result<Vec<Second>, String> {
    let mut by_second: BTreeMap<u64, Filling> = BTreeMap::new();
    for (name, r) in runs {
        for s in &r.series {
            let f = by_second.entry(s.unix_s).or_insert_with(|| Filling {
                point: Point::default(),
                end: f64::NEG_INFINITY,
                sent: histogram(),
                due: histogram(),
            });
            let (p, q) = (&mut f.point, &s.point);
            p.succeeded += q.succeeded;
            p.failed += q.failed;
            p.open += q.open;
            p.busy += q.busy;
            p.idle += q.idle;
            p.waiting += q.waiting;
            p.opened += q.opened;
            p.closed += q.closed;
            f.end = f.end.max(r.start_unix_s + q.t);
            let h = decode(&s.histogram)
                .map_err(|e| format!("{name}: the series' second {}: {e}", s.unix_s))?;
            add(&mut f.sent, &h);
            if let Some(text) = &s.histogram_from_schedule {
                let h = decode(text)
                    .map_err(|e| format!("{name}: the series' second {}: {e}", s.unix_s))?;
                add(&mut f.due, &h);
            }
        }
    }
    let mut last_t = 0.0;
    Ok(by_second
        .into_iter()
        .map(|(unix_s, mut f)| {
            let t = f.end - start;
            f.point.t = t;
            f.point.dt = t - last_t;
            last_t = t;
            f.point.set_latency(&f.sent, &f.due);
            Second {
                unix_s,
                point: f.point,
                histogram: encode_plain(&f.sent),
                histogram_from_schedule: rated.then(|| encode_plain(&f.due)),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run whose successes took `us` each, all in wall-clock second
    /// 100 (a quarter of a second in) and, under a rate, twice as long
    /// from the schedule.
    fn run_of(us: &[u64], rated: bool) -> Summary {
        let mut sent = histogram();
        let mut due = histogram();
        for &v in us {
            sent.record(v).unwrap();
            due.record(2 * v).unwrap();
        }
        let n = us.len() as u64;
        let mut point = Point {
            t: 0.5,
            dt: 0.5,
            succeeded: n,
            opened: 2,
            open: 2,
            ..Point::default()
        };
        point.set_latency(&sent, &due);
        let text = format!(
            r#"{{"runs": 1, "url": "http://x/", "embedded_server": false, "concurrency": 2,
            "threads": 1, "rate": {rate}, "start_unix_s": 100.25, "elapsed_s": 0.5,
            "requests": {n}, "succeeded": {n}, "failed": 0, "canceled": 0, "errors": {{}},
            "statuses": {{"200": {n}}}, "versions": {{"HTTP/1.1": {n}}}, "rps": 0, "bytes": {b},
            "latency_ms": {{"min": 0, "mean": 0, "p50": 0, "p90": 0, "p99": 0, "p999": 0, "max": 0}},
            "latency_from_schedule_ms": null,
            "connections": {{"opened": 2, "reused": {r}, "reuse_ratio": 0, "closed": {{}},
              "closed_total": 0, "peak_open": 2, "peak_waiting": 0, "open_end": 2, "retries": 0}},
            "sockets_end": {{"ESTABLISHED": 2}}, "server_sockets_end": null,
            "settings": {{"method": "GET", "protocol": "auto", "max_conns_per_host": 100,
              "max_idle_per_host": null, "idle_timeout_s": null, "disable_keep_alives": false,
              "timeout_s": null}},
            "warnings": [], "error_examples": {{}},
            "histograms": {{"latency_us": "{h}", "latency_from_schedule_us": {d}}},
            "series": []}}"#,
            rate = if rated { "100" } else { "null" },
            b = 5 * n,
            r = n.saturating_sub(2),
            h = encode(&sent),
            d = if rated {
                format!("\"{}\"", encode(&due))
            } else {
                "null".into()
            },
        );
        let mut s = parse(&text).unwrap();
        s.latency_ms = Latency::of(&sent);
        s.latency_from_schedule_ms = rated.then(|| Latency::of(&due));
        s.series = vec![Second {
            unix_s: 100,
            point,
            histogram: encode(&sent),
            histogram_from_schedule: rated.then(|| encode(&due)),
        }];
        s
    }

    /// A histogram's counts by value (its encoding also carries its
    /// current size, which depends on how it grew).
    fn recorded(text: &str) -> Vec<(u64, u64)> {
        decode(text)
            .unwrap()
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
            .collect()
    }

    #[test]
    fn two_halves_merge_into_the_run_of_all_their_requests() {
        let all: Vec<u64> = (1..=1000).map(|i| i * 37 % 5000 + 50).collect();
        let (odd, even): (Vec<u64>, Vec<u64>) = all.iter().partition(|v| *v % 2 == 1);
        let whole = run_of(&all, true);
        let m = merge(&[
            ("a".into(), run_of(&odd, true)),
            ("b".into(), run_of(&even, true)),
        ])
        .unwrap();
        assert_eq!(m.runs, 2);
        assert_eq!((m.requests, m.succeeded), (1000, 1000));
        assert_eq!(m.statuses["200"], 1000);
        assert_eq!(m.bytes, 5000);
        assert_eq!(m.connections.opened, 4);
        assert_eq!(m.connections.reused, 996);
        assert_eq!(m.sockets_end["ESTABLISHED"], 4);
        assert_eq!(m.concurrency, 4);
        assert_eq!(m.rate, Some(200.0));
        // Same requests, same histogram: the percentiles are those of
        // every request together, not an average of the halves'.
        assert_eq!(m.latency_ms, whole.latency_ms);
        assert_eq!(m.latency_from_schedule_ms, whole.latency_from_schedule_ms);
        let same = |a: &str, b: &str| recorded(a) == recorded(b);
        assert!(same(&m.histograms.latency_us, &whole.histograms.latency_us));
        assert!(same(
            m.histograms.latency_from_schedule_us.as_deref().unwrap(),
            whole
                .histograms
                .latency_from_schedule_us
                .as_deref()
                .unwrap()
        ));
        assert_eq!(m.series.len(), 1);
        let (s, w) = (&m.series[0], &whole.series[0]);
        assert_eq!(s.unix_s, 100);
        assert!(same(&s.histogram, &w.histogram));
        assert_eq!((s.point.succeeded, s.point.open), (1000, 4));
        assert_eq!(s.point.p99_us, w.point.p99_us);
        assert_eq!(s.point.from_schedule_p99_us, w.point.from_schedule_p99_us);
        assert_eq!((s.point.t, s.point.dt), (0.5, 0.5));
        assert!(m.warnings.is_empty(), "{:?}", m.warnings);
    }

    #[test]
    fn a_run_with_and_one_without_a_rate_say_so() {
        let m = merge(&[
            ("a".into(), run_of(&[100, 200], true)),
            ("b".into(), run_of(&[300], false)),
        ])
        .unwrap();
        assert_eq!(m.rate, None);
        let from_schedule = m.latency_from_schedule_ms.unwrap();
        assert_eq!(from_schedule.max, 0.4, "only the rated run's requests");
        assert!(
            m.warnings[0].starts_with("only 1 of 2 runs had --rate"),
            "{:?}",
            m.warnings
        );
        let mut cut = run_of(&[100, 200], false);
        cut.succeeded = 3;
        let err = merge(&[("cut.json".into(), cut)]).unwrap_err();
        assert!(
            err.contains("cut.json: its histogram holds 2 successes"),
            "{err}"
        );
    }

    #[test]
    fn finds_the_object_among_log_lines() {
        let err = parse("leakless bench: every request failed\n").unwrap_err();
        assert!(err.contains("no JSON object"), "{err}");
        let err = parse("{\"url\": \"http://x/\"}\n").unwrap_err();
        assert!(err.contains("missing field"), "{err}");
        assert!(err.contains("run it again"), "{err}");
    }
}
