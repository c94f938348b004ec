//! The histograms in `bench --json` (and in `bench merge --json`) read by
//! an HdrHistogram implementation that is not ours: HdrHistogram_py
//! (PyPI `hdrhistogram`, its decoder in C), which reads only the
//! compressed V2 form, as HdrHistogram's log tools do. `.ci/run` installs
//! it in a virtualenv and names its Python in LEAKLESS_HDRHISTOGRAM_PYTHON;
//! without it the test is skipped with a message, unless
//! LEAKLESS_REQUIRE_HDRHISTOGRAM is set (CI), where it fails.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use serde_json::Value;

use super::{bench_json_file, merge, scratch, u};

/// Decodes every histogram of a result and prints, for each, its count,
/// min, max and recorded buckets (highest value of each, count), in the
/// result's shape.
const DECODE: &str = r#"
import json, sys
from hdrh.histogram import HdrHistogram

def read(text):
    if text is None:
        return None
    h = HdrHistogram.decode(text)
    return {"count": h.get_total_count(), "min": h.get_min_value(),
            "max": h.get_max_value(),
            "buckets": [[i.value_iterated_to, i.count_at_value_iterated_to]
                        for i in h.get_recorded_iterator()]}

v = json.load(sys.stdin)
print(json.dumps({
    "latency_us": read(v["histograms"]["latency_us"]),
    "latency_from_schedule_us": read(v["histograms"]["latency_from_schedule_us"]),
    "series": [{"sent": read(s["histogram"]), "due": read(s["histogram_from_schedule"])}
               for s in v["series"]],
}))
"#;

/// The Python that has HdrHistogram_py, or None (skip) where that is allowed.
fn python() -> Option<String> {
    let python = std::env::var("LEAKLESS_HDRHISTOGRAM_PYTHON").unwrap_or_else(|_| "python3".into());
    let has = Command::new(&python)
        .args(["-c", "import hdrh.histogram"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if has {
        return Some(python);
    }
    assert!(
        std::env::var_os("LEAKLESS_REQUIRE_HDRHISTOGRAM").is_none(),
        "LEAKLESS_REQUIRE_HDRHISTOGRAM is set but {python} cannot import hdrh (pip install hdrhistogram)"
    );
    eprintln!("skipping: no HdrHistogram_py for {python} (pip install hdrhistogram)");
    None
}

fn decode(python: &str, result: &Path) -> Value {
    let mut child = Command::new(python)
        .args(["-c", DECODE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let text = std::fs::read(result).unwrap();
    child.stdin.take().unwrap().write_all(&text).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "HdrHistogram_py could not read {}: {}",
        result.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The same text decoded by the hdrhistogram crate: its buckets as the
/// Python prints them.
fn buckets(text: &Value) -> Value {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.as_str().unwrap())
        .unwrap();
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .unwrap();
    h.iter_recorded()
        .map(|v| vec![v.value_iterated_to(), v.count_at_value()])
        .collect::<Vec<_>>()
        .into()
}

/// `us` (from the decoder) against `ms` (the result's figure), equal
/// within HDR's 3 significant digits (either end of one bucket).
fn close_ms(us: u64, ms: &Value) -> bool {
    let theirs = (ms.as_f64().unwrap() * 1000.0).round() as u64;
    us.abs_diff(theirs) <= us.max(theirs) / 1000 + 1
}

/// HdrHistogram_py's reading (`d`) of every histogram of `v`: the same
/// buckets as ours, the result's counts, min and max. (Percentiles are
/// left out: the two libraries round a fractional rank differently.)
fn agrees(v: &Value, d: &Value) {
    for (hist, figures) in [
        ("latency_us", "latency_ms"),
        ("latency_from_schedule_us", "latency_from_schedule_ms"),
    ] {
        let (h, l) = (&d[hist], &v[figures]);
        if l.is_null() {
            assert!(h.is_null(), "{hist} without {figures}");
            continue;
        }
        assert_eq!(u(h, "/count"), u(v, "/succeeded"), "{hist}");
        assert_eq!(h["buckets"], buckets(&v["histograms"][hist]), "{hist}");
        for key in ["min", "max"] {
            assert!(
                close_ms(u(h, &format!("/{key}")), &l[key]),
                "{hist} {key}: HdrHistogram_py {} vs {l}",
                h[key]
            );
        }
    }
    let series = v["series"].as_array().unwrap();
    assert_eq!(d["series"].as_array().unwrap().len(), series.len());
    for (s, ds) in series.iter().zip(d["series"].as_array().unwrap()) {
        assert_eq!(u(&ds["sent"], "/count"), u(s, "/succeeded"), "{s}");
        for (side, key, max) in [
            ("sent", "histogram", "max_us"),
            ("due", "histogram_from_schedule", "from_schedule_max_us"),
        ] {
            if ds[side].is_null() {
                assert!(v["latency_from_schedule_ms"].is_null(), "{s}");
                continue;
            }
            assert_eq!(ds[side]["buckets"], buckets(&s[key]), "second {s}");
            assert_eq!(ds[side]["max"], s[max], "second {s}");
        }
    }
}

#[test]
fn hdrhistogram_py_reads_every_histogram_of_a_run_and_of_a_merge() {
    let Some(python) = python() else { return };
    let dir = scratch("hdr-decoder");
    let run = dir.join("run.json");
    let v = bench_json_file(&run, &["-n", "600", "-c", "2", "--rate", "400"]);
    assert!(v["series"].as_array().unwrap().len() >= 2, "{v:#}");
    agrees(&v, &decode(&python, &run));

    let (code, out, err) = merge(&[&run, &run], &["--json"]);
    assert_eq!(code, 0, "{err}");
    let merged = dir.join("merged.json");
    std::fs::write(&merged, &out).unwrap();
    let m: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(u(&m, "/succeeded"), 1200);
    agrees(&m, &decode(&python, &merged));

    let plain = dir.join("plain.json");
    let v = bench_json_file(&plain, &["-n", "200", "-c", "2"]);
    agrees(&v, &decode(&python, &plain));
    let _ = std::fs::remove_dir_all(dir);
}
