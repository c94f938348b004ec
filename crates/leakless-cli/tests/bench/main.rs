//! `leakless bench` and `leakless serve`, as a user runs them: the real
//! binary, the embedded server on loopback, JSON read back. Small request
//! counts keep the whole binary to a few seconds.

mod deploy;
mod hdr_decoder;
mod merge;
mod rate;
#[path = "../support/refusing.rs"]
mod refusing;
mod report;
mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

pub fn leakless() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leakless"))
}

/// Runs `leakless bench ARGS --json`; returns the exit code, the parsed
/// object (Null when stdout is not JSON) and stderr.
pub fn bench_json(args: &[&str]) -> (i32, Value, String) {
    let out = leakless()
        .arg("bench")
        .args(args)
        .arg("--json")
        .output()
        .expect("runs leakless");
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        code(&out),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A fresh directory for one test's files, under this process's own name.
pub fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("leakless-bench-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `leakless bench ARGS --json`, its stdout also written to `file` for
/// `bench merge`; the parsed object.
pub fn bench_json_file(file: &Path, args: &[&str]) -> Value {
    let (code, v, err) = bench_json(args);
    assert_eq!(code, 0, "{err}");
    std::fs::write(file, serde_json::to_vec_pretty(&v).unwrap()).unwrap();
    v
}

/// `leakless bench merge FILES ARGS`: exit code, stdout, stderr.
pub fn merge(files: &[&Path], args: &[&str]) -> (i32, String, String) {
    let out = leakless()
        .args(["bench", "merge"])
        .args(files)
        .args(args)
        .output()
        .expect("runs leakless");
    (
        code(&out),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub fn code(out: &Output) -> i32 {
    out.status.code().expect("exited, not killed")
}

pub fn u(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} missing or not a count in {v:#}"))
}

#[test]
fn json_has_the_documented_fields_and_they_add_up() {
    let (code, v, err) = bench_json(&["-n", "300", "-c", "4"]);
    assert_eq!(code, 0, "{err}");
    for key in [
        "url",
        "embedded_server",
        "elapsed_s",
        "rps",
        "bytes",
        "errors",
        "statuses",
        "versions",
        "settings",
        "warnings",
        "server_sockets_end",
        "runs",
        "start_unix_s",
        "latency_from_schedule_ms",
        "error_examples",
        "histograms",
        "series",
    ] {
        assert!(v.get(key).is_some(), "{key} missing in {v:#}");
    }
    for key in ["min", "mean", "p50", "p90", "p99", "p999", "max"] {
        let ms = v["latency_ms"][key].as_f64().unwrap();
        assert!(ms >= 0.0, "latency_ms.{key} = {ms}");
    }
    let l = &v["latency_ms"];
    assert!(l["p50"].as_f64() <= l["p99"].as_f64() && l["p99"].as_f64() <= l["max"].as_f64());
    assert_eq!(u(&v, "/requests"), 300);
    assert_eq!(u(&v, "/succeeded") + u(&v, "/failed"), u(&v, "/requests"));
    assert_eq!(u(&v, "/statuses/200"), 300);
    assert_eq!(u(&v, "/bytes"), 300 * 5, "the embedded server says hello");
    assert!(v["rps"].as_f64().unwrap() > 0.0);
    let opened = u(&v, "/connections/opened");
    assert!((1..=4).contains(&opened), "4 workers, {opened} connections");
    assert_eq!(opened + u(&v, "/connections/reused"), 300);
    assert!(v["connections"]["closed"].is_object());
    assert!(u(&v, "/connections/peak_open") >= 1);
    assert_eq!(u(&v, "/connections/open_end"), opened);
    // The pool still holds its connections when the sockets left are counted.
    assert_eq!(u(&v, "/sockets_end/ESTABLISHED"), opened, "{v:#}");
    assert_eq!(u(&v, "/sockets_end/CLOSE_WAIT"), 0);
    assert!(v["sockets_end"]["TIME_WAIT"].is_u64());
    // No rate: nothing is measured from a schedule.
    assert!(v["latency_from_schedule_ms"].is_null(), "{v:#}");
    assert!(v["histograms"]["latency_from_schedule_us"].is_null());
    assert_eq!(u(&v, "/runs"), 1);
    // The per-second series holds every request, each second once.
    let series = v["series"].as_array().unwrap();
    let per_second: u64 = series.iter().map(|s| u(s, "/succeeded")).sum();
    assert_eq!(per_second, 300);
    let seconds: Vec<u64> = series.iter().map(|s| u(s, "/unix_s")).collect();
    assert!(seconds.windows(2).all(|w| w[0] < w[1]), "{seconds:?}");
    let start = v["start_unix_s"].as_f64().unwrap();
    assert!(seconds[0] as f64 <= start && start < seconds[0] as f64 + 1.0);
}

#[test]
fn disabled_keep_alives_open_one_connection_per_request() {
    let (code, v, err) = bench_json(&["-n", "60", "-c", "3", "--disable-keep-alives"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(u(&v, "/requests"), 60);
    assert_eq!(u(&v, "/connections/opened"), u(&v, "/requests"));
    assert_eq!(u(&v, "/connections/reused"), 0);
    assert_eq!(u(&v, "/connections/closed/keep_alives_disabled"), 60);
    assert_eq!(u(&v, "/connections/open_end"), 0);
    assert_eq!(u(&v, "/sockets_end/ESTABLISHED"), 0);
    // Every connection closed: its two ends' TIME_WAIT is on one side or
    // the other (or recycled by the kernel's loopback TIME_WAIT reuse).
    let tw = u(&v, "/sockets_end/TIME_WAIT") + u(&v, "/server_sockets_end/TIME_WAIT");
    assert!(tw <= 60, "{v:#}");
}

#[test]
fn an_unreachable_target_fails_in_one_line() {
    let (_bound, addr) = refusing::refusing_addr();
    let url = format!("http://{addr}/");
    let (code, v, err) = bench_json(&[&url, "-n", "5"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(v, Value::Null, "no result for a run that never started");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot reach 127.0.0.1:"), "{err}");
}

#[test]
fn every_request_failing_exits_non_zero_with_the_reason() {
    let (code, v, err) = bench_json(&["/?fault=close", "-n", "20", "-c", "2"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(u(&v, "/succeeded"), 0);
    assert_eq!(u(&v, "/failed"), 20);
    let kinds: u64 = v["errors"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(kinds, 20);
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with("leakless bench: every request failed"),
        "{err}"
    );

    let (code, _, err) = bench_json(&["/?status=503", "-n", "5", "-c", "1"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("every response had an error status (5 × 503)"),
        "{err}"
    );
}

#[test]
fn the_rate_bounds_the_request_count() {
    // 40/s for 0.5 s: the schedule allows 20 starts (0, 25 ms, ... 475 ms);
    // no more can happen, and a loaded machine may manage fewer.
    let (code, v, err) = bench_json(&["-d", "500ms", "--rate", "40", "-c", "4"]);
    assert_eq!(code, 0, "{err}");
    let n = u(&v, "/requests");
    assert!((5..=20).contains(&n), "{n} requests at 40/s over 0.5 s");
    // A count at a rate takes at least its schedule: 10 at 50/s is 180 ms.
    let (_, v, _) = bench_json(&["-n", "10", "--rate", "50/s", "-c", "10"]);
    assert_eq!(u(&v, "/requests"), 10);
    assert!(v["elapsed_s"].as_f64().unwrap() >= 0.17, "{v:#}");
}

#[test]
fn http2_by_prior_knowledge_and_by_alpn() {
    let (code, v, err) = bench_json(&["--h2c", "-n", "40", "-c", "8"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(u(&v, "/versions/HTTP~12"), 40, "{v:#}");
    assert_eq!(
        u(&v, "/connections/opened"),
        1,
        "streams share one connection"
    );
    // No URL and --http2: the embedded server speaks TLS, h2 by ALPN.
    let (code, v, err) = bench_json(&["--http2", "-n", "20", "-c", "4"]);
    assert_eq!(code, 0, "{err}");
    assert!(v["url"].as_str().unwrap().starts_with("https://"));
    assert_eq!(u(&v, "/versions/HTTP~12"), 20, "{v:#}");
}

#[test]
fn text_report_and_plain_progress() {
    let out = leakless()
        .args([
            "bench",
            "-d",
            "1200ms",
            "-c",
            "2",
            "--max-idle-per-host",
            "1",
        ])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(code(&out), 0, "{stderr}");
    for line in ["requests", "latency", "connections", "sockets left"] {
        assert!(stdout.contains(line), "no {line} in\n{stdout}");
    }
    // Not a terminal: one plain progress line a second, on stderr.
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("req") && l.contains("open")),
        "{stderr}"
    );
    assert!(!stdout.contains('\r'));
}

#[test]
fn conflicting_flags_are_usage_errors() {
    let out = leakless()
        .args(["bench", "-d", "1s", "-n", "5"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    let out = leakless()
        .args(["bench", "--http1", "--h2c"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
}
