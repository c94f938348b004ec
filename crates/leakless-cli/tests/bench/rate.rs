//! Under a rate: latency from each request's scheduled start (what a
//! stalled server does to the requests queued behind it) beside latency
//! from the send, and the start barrier that lets copies start together.

use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use leakless_testserver::{Config, TestServer};
use serde_json::Value;

use super::{bench_json, leakless, merge, scratch, u};

fn f(v: &Value, path: &str) -> f64 {
    v.pointer(path)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{path} missing in {v:#}"))
}

#[test]
fn a_one_second_stall_shows_from_the_schedule_not_from_the_send() {
    let server = TestServer::start(Config::new().history(0));
    let url = server.url("/");
    // One worker at 100/s for 400 requests (4 s of schedule): the classic
    // case of coordinated omission, a closed loop that waits for each reply.
    let child = leakless()
        .args([
            "bench", &url, "-c", "1", "--rate", "100", "-n", "400", "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let within = Duration::from_secs(60);
    server
        .wait_blocking(within, |s| s.requests >= 150)
        .expect("the bench got going");
    // The server picks its config after counting a request, so the next
    // request counted stalls for a second. With one worker, the one after
    // it is sent only once the stalled reply is read: restoring the config
    // when that one is counted ends the stall (that request may catch the
    // stall too: at most three slow requests of 400, whatever the timing).
    server.set_config(Config::new().history(0).latency(Duration::from_secs(1)));
    let counted = server.stats().requests;
    server
        .wait_blocking(within, |s| s.requests >= counted + 2)
        .expect("the stalled request was answered");
    server.set_config(Config::new().history(0));
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(u(&v, "/succeeded"), 400, "{v:#}");
    // From the send: the stalled request took its second...
    assert!(f(&v, "/latency_ms/max") >= 1000.0, "{v:#}");
    // ...but it is one of 400: p99 shows nothing of it.
    let p99 = f(&v, "/latency_ms/p99");
    assert!(p99 < 500.0, "p99 from the send: {p99} ms");
    // From the schedule: the ~100 requests due during the stall waited
    // for it, up to a second each: p99 is the stall.
    let scheduled = f(&v, "/latency_from_schedule_ms/p99");
    assert!(
        scheduled >= 900.0,
        "p99 from the schedule: {scheduled} ms\n{v:#}"
    );
    assert!(f(&v, "/latency_from_schedule_ms/p50") >= f(&v, "/latency_ms/p50"));
    assert!(v["histograms"]["latency_from_schedule_us"].is_string());
    // Per second: the first, before the stall, kept to its schedule (so
    // the client itself was not behind); a later one carries the stall.
    let series = v["series"].as_array().unwrap();
    let before = u(&series[0], "/from_schedule_max_us");
    assert!(before < 500_000, "behind before the stall: {v:#}");
    let worst = series
        .iter()
        .map(|s| u(s, "/from_schedule_p99_us"))
        .max()
        .unwrap();
    assert!(worst >= 900_000, "{v:#}");
}

#[test]
fn under_a_rate_the_text_report_labels_both_latencies() {
    let out = leakless()
        .args(["bench", "-n", "40", "-c", "2", "--rate", "400"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    let sent = text.lines().find(|l| l.contains("latency")).unwrap();
    assert!(sent.ends_with("from the send"), "{text}");
    let due = text
        .lines()
        .find(|l| l.trim_start().starts_with("from schedule"))
        .unwrap_or_else(|| panic!("no line from the schedule in\n{text}"));
    assert!(due.contains("scheduled start"), "{due}");
    // Without a rate there is no schedule, and one latency line.
    let out = leakless()
        .args(["bench", "-n", "10", "-c", "1"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("from schedule"), "{text}");
}

#[test]
fn copies_given_one_start_time_start_together_and_line_up_by_second() {
    let dir = scratch("barrier");
    // Far enough ahead that both copies are ready on a loaded machine.
    let at = SystemTime::now() + Duration::from_secs(5);
    let at_s = at.duration_since(UNIX_EPOCH).unwrap().as_secs_f64();
    let barrier = format!("{at_s:.3}");
    let copies: Vec<_> = (0..2)
        .map(|_| {
            leakless()
                .args(["bench", "-d", "1500ms", "--rate", "200", "-c", "2"])
                .args(["--start-at", &barrier, "--json"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut files = Vec::new();
    let mut runs = Vec::new();
    for (i, child) in copies.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "--json: nothing on stderr before the result"
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let start = f(&v, "/start_unix_s");
        // Never before the barrier; after it by a sleep's overshoot (a
        // loaded machine's scheduling, not seconds).
        assert!(start >= at_s - 0.002, "started {start}, barrier {at_s}");
        assert!(start < at_s + 1.0, "started {start}, barrier {at_s}");
        assert_eq!(v["warnings"].as_array().unwrap().len(), 0, "{v:#}");
        let file = dir.join(format!("{i}.json"));
        std::fs::write(&file, &out.stdout).unwrap();
        files.push(file);
        runs.push(v);
    }
    let paths: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    let (code, out, err) = merge(&paths, &["--json"]);
    assert_eq!(code, 0, "{err}");
    let m: Value = serde_json::from_str(&out).unwrap();
    // Each merged second is the same second of both runs, added.
    for s in m["series"].as_array().unwrap() {
        let second = u(s, "/unix_s");
        let of = |v: &Value| -> u64 {
            v["series"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|x| u(x, "/unix_s") == second)
                .map(|x| u(x, "/succeeded"))
                .sum()
        };
        assert_eq!(
            u(s, "/succeeded"),
            of(&runs[0]) + of(&runs[1]),
            "second {second}"
        );
    }
    assert_eq!(
        u(&m, "/requests"),
        u(&runs[0], "/requests") + u(&runs[1], "/requests")
    );
    // The two started within the overshoot of one sleep of each other: the
    // merged run is as long as the longer one, not their sum.
    let longest = f(&runs[0], "/elapsed_s").max(f(&runs[1], "/elapsed_s"));
    assert!(f(&m, "/elapsed_s") < longest + 1.0, "{m:#}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_start_time_already_passed_starts_at_once_and_says_so() {
    let past = SystemTime::now() - Duration::from_secs(30);
    let at = past
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let (code, v, err) = bench_json(&["-n", "5", "-c", "1", "--start-at", &at]);
    assert_eq!(code, 0, "{err}");
    let w = v["warnings"][0].as_str().unwrap_or_default();
    assert!(w.contains("after --start-at"), "{v:#}");
    let out = leakless()
        .args(["bench", "--start-at", "tomorrow-ish"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("RFC 3339"));
}
