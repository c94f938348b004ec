//! `leakless bench merge`: runs' JSON added up exactly, and the histograms
//! in it readable by HdrHistogram's own decoder.

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use serde_json::Value;

use super::{bench_json_file, merge, scratch, u};

/// A histogram of the JSON, decoded by the hdrhistogram crate alone.
fn histogram(v: &Value, key: &str) -> Histogram<u64> {
    let text = v["histograms"][key]
        .as_str()
        .unwrap_or_else(|| panic!("histograms.{key} missing in {v:#}"));
    assert!(text.starts_with("HISTFAAA"), "compressed V2: {text}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap();
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .unwrap()
}

/// The report's millisecond figures, as `format::ms` prints them.
fn ms(x: f64) -> String {
    if x < 1.0 {
        format!("{x:.3}ms")
    } else if x < 100.0 {
        format!("{x:.2}ms")
    } else {
        format!("{x:.0}ms")
    }
}

fn f(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} missing in {v:#}"))
}

#[test]
fn the_json_histogram_decodes_to_the_printed_percentiles() {
    let dir = scratch("decode");
    let a = dir.join("a.json");
    let v = bench_json_file(&a, &["-n", "400", "-c", "4"]);
    let h = histogram(&v, "latency_us");
    assert_eq!(h.len(), u(&v, "/succeeded"));
    let quantiles = [("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p999", 0.999)];
    for (key, q) in quantiles {
        let want = h.value_at_quantile(q) as f64 / 1000.0;
        assert_eq!(f(&v, &format!("/latency_ms/{key}")), want, "{key}");
    }
    assert_eq!(f(&v, "/latency_ms/max"), h.max() as f64 / 1000.0);
    assert_eq!(f(&v, "/latency_ms/min"), h.min() as f64 / 1000.0);
    // The text report of the same result prints the same figures.
    let (code, text, err) = merge(&[&a], &[]);
    assert_eq!(code, 0, "{err}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("latency"))
        .unwrap_or_else(|| panic!("no latency line in\n{text}"));
    let want = format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        ms(h.value_at_quantile(0.5) as f64 / 1000.0),
        ms(h.value_at_quantile(0.9) as f64 / 1000.0),
        ms(h.value_at_quantile(0.99) as f64 / 1000.0),
        ms(h.value_at_quantile(0.999) as f64 / 1000.0),
        ms(h.max() as f64 / 1000.0),
    );
    assert!(line.contains(&want), "{line}\nwant {want}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn merging_two_runs_counts_like_one_run_of_their_requests() {
    let dir = scratch("two");
    let (a, b) = (dir.join("a.json"), dir.join("b.json"));
    let va = bench_json_file(&a, &["-n", "200", "-c", "2"]);
    let vb = bench_json_file(&b, &["-n", "300", "-c", "3"]);
    let one = bench_json_file(&dir.join("one.json"), &["-n", "500", "-c", "5"]);
    let (code, out, err) = merge(&[&a, &b], &["--json"]);
    assert_eq!(code, 0, "{err}");
    let m: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(u(&m, "/runs"), 2);
    // Every count is the one run's: requests, statuses, bytes, workers,
    // connections opened and reused, sockets left.
    for key in [
        "/requests",
        "/succeeded",
        "/failed",
        "/statuses/200",
        "/bytes",
        "/concurrency",
        "/connections/opened",
        "/connections/reused",
        "/connections/open_end",
        "/sockets_end/ESTABLISHED",
        "/sockets_end/CLOSE_WAIT",
    ] {
        assert_eq!(u(&m, key), u(&one, key), "{key}: {m:#}");
    }
    // The percentiles are those of all 500 requests together: the two
    // histograms added, as the hdrhistogram crate adds them.
    let mut all = Histogram::<u64>::new(3).unwrap();
    all.add(histogram(&va, "latency_us")).unwrap();
    all.add(histogram(&vb, "latency_us")).unwrap();
    let merged = histogram(&m, "latency_us");
    assert_eq!(merged.len(), 500);
    for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
        let (got, want) = (merged.value_at_quantile(q), all.value_at_quantile(q));
        assert!(
            all.equivalent(got, want),
            "q{q}: {got} µs vs {want} µs, beyond HDR's precision"
        );
    }
    assert_eq!(
        f(&m, "/latency_ms/p99"),
        all.value_at_quantile(0.99) as f64 / 1000.0
    );
    // The seconds line up by wall clock and hold every request once.
    let per_second: u64 = m["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| u(s, "/succeeded"))
        .sum();
    assert_eq!(per_second, 500);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn merging_a_run_with_itself_doubles_every_count() {
    let dir = scratch("itself");
    let a = dir.join("a.json");
    let v = bench_json_file(&a, &["-n", "150", "-c", "3", "--rate", "1000"]);
    // A log collected with `kubectl logs` may carry stderr lines around
    // the object.
    let logged = dir.join("logged.json");
    let text = std::fs::read_to_string(&a).unwrap();
    std::fs::write(&logged, format!("{text}\nleakless bench: a stderr line\n")).unwrap();
    let html = dir.join("merged.html");
    let (code, out, err) = merge(
        &[&a, &logged],
        &["--json", "--report", html.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{err}");
    let m: Value = serde_json::from_str(&out).unwrap();
    for key in [
        "/requests",
        "/succeeded",
        "/bytes",
        "/statuses/200",
        "/connections/opened",
        "/connections/reused",
        "/connections/peak_open",
        "/sockets_end/ESTABLISHED",
        "/concurrency",
    ] {
        assert_eq!(u(&m, key), 2 * u(&v, key), "{key}");
    }
    assert_eq!(f(&m, "/rate"), 2000.0);
    // Twice every count: the same distribution, the same percentiles.
    assert_eq!(m["latency_ms"], v["latency_ms"]);
    assert_eq!(m["latency_from_schedule_ms"], v["latency_from_schedule_ms"]);
    assert_eq!(histogram(&m, "latency_us").len(), 300);
    // The same seconds, each with twice the requests.
    let (ms_, vs) = (
        m["series"].as_array().unwrap(),
        v["series"].as_array().unwrap(),
    );
    assert_eq!(ms_.len(), vs.len());
    for (a, b) in ms_.iter().zip(vs) {
        assert_eq!(u(a, "/unix_s"), u(b, "/unix_s"));
        assert_eq!(u(a, "/succeeded"), 2 * u(b, "/succeeded"));
        assert_eq!(u(a, "/p99_us"), u(b, "/p99_us"));
    }
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Latency percentiles, from the scheduled start"));
    assert_eq!(
        page.matches("<svg").count(),
        7,
        "under a rate: two more charts"
    );

    let (code, text, _) = merge(&[&a, &a], &[]);
    assert_eq!(code, 0);
    assert!(text.contains("(2 runs merged)"), "{text}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn merge_refuses_what_is_not_a_run_in_one_line() {
    let dir = scratch("refuse");
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "leakless bench: cannot reach 10.0.0.1:80\n").unwrap();
    let (code, out, err) = merge(&[&bad], &[]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("bad.json: no JSON object"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let old = dir.join("old.json");
    std::fs::write(&old, r#"{"url": "http://x/", "requests": 1}"#).unwrap();
    let (code, _, err) = merge(&[&old], &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("old.json") && err.contains("missing field"),
        "{err}"
    );
    let (code, _, err) = merge(&[&dir.join("absent.json")], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("absent.json"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
