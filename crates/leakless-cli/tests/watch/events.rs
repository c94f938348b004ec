//! Connections that live less than a sample, counted from the kernel's
//! events: real clients that dial per request against nginx, which closes
//! first, are CHURN at the rate nginx itself counted; without the privilege
//! for events, watch says so once and samples.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Watch, clients_dir, process, tool, verdicts_for};
use crate::nginx::Nginx;

/// Requests a second the clients send (paced): each connection lives about
/// a millisecond, far below the 200 ms sample interval.
const RATE: &str = "150";

/// Reads samples of a `watch -- CLIENT` until the client is CHURN to nginx
/// with a full window behind it, reading nginx's accept count at each
/// sample; asserts the event-counted opens/s are within 20% of nginx's over
/// the same window and, where `server_closes_first`, that the verdict says so.
fn churn_at_the_rate_nginx_counted(w: &Watch, nginx: &Nginx, server_closes_first: bool) {
    // (watch time, nginx accepts) per sample.
    let mut counts: Vec<(f64, u64)> = Vec::new();
    let mut seen = Vec::new();
    loop {
        let v = w
            .next(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("watch ended before CHURN; verdicts seen: {seen:?}"));
        assert_eq!(v["type"], "sample", "{v}");
        assert_eq!(v["events"]["source"], "kernel", "{v:#}");
        let t = v["t"].as_f64().unwrap();
        counts.push((t, nginx.accepts()));
        let Some(p) = v["processes"].as_array().and_then(|ps| ps.first()) else {
            continue;
        };
        let pid = p["pid"].as_u64().unwrap() as u32;
        let verdict = p["verdict"].as_str().unwrap_or("").to_string();
        if seen.last() != Some(&verdict) {
            seen.push(verdict.clone());
        }
        assert!(
            t <= 30.0,
            "no CHURN within 30 s; verdicts seen: {seen:?}\n{v:#}"
        );
        let vs = verdicts_for(&v, pid);
        let Some(churn) = vs.iter().find(|x| x["verdict"] == "CHURN") else {
            continue;
        };
        let window = churn["numbers"]["window_s"].as_f64().unwrap();
        if window < 8.0 {
            continue;
        }
        assert_eq!(churn["endpoint"], nginx.addr.to_string(), "{churn:#}");
        let opens = churn["numbers"]["opens_per_s"].as_f64().unwrap();
        // nginx's count over the same window, less our own status requests
        // (one connection each, the first one's before the window began).
        let (t0, a0) = *counts
            .iter()
            .min_by(|a, b| {
                (a.0 - (t - window))
                    .abs()
                    .total_cmp(&(b.0 - (t - window)).abs())
            })
            .unwrap();
        let (_, a1) = *counts.last().unwrap();
        let status_reads = counts.iter().filter(|c| c.0 > t0).count() as u64;
        let server = (a1 - a0 - status_reads) as f64 / (t - t0);
        let n = &churn["numbers"];
        eprintln!(
            "CHURN at {t:.1}s: watch {opens:.1} opens/s, nginx {server:.1} accepts/s over {:.1}s; ended {} (server first {}, this side first {})",
            t - t0,
            n["ended"],
            n["ended_peer_first"],
            n["ended_local_first"]
        );
        assert!(
            (opens - server).abs() <= 0.2 * server,
            "watch counted {opens:.1} opens/s, nginx {server:.1}/s\n{churn:#}"
        );
        assert!(n["lifetime_mean_s"].as_f64().unwrap() < 0.2, "{churn:#}");
        let advice = churn["advice"].as_str().unwrap();
        assert!(advice.contains("keep-alive"), "{advice}");
        if server_closes_first {
            assert!(
                n["ended_peer_first"].as_f64().unwrap() > 0.75 * n["ended"].as_f64().unwrap(),
                "nginx closes first: {churn:#}"
            );
            assert!(advice.contains("the server closes"), "{advice}");
        }
        let ev = &process(&v, pid).unwrap()["endpoints"][0]["events"];
        assert!(
            ev["lifetimes"].as_object().is_some_and(|h| !h.is_empty()),
            "a lifetime histogram for the remote: {ev:#}"
        );
        return;
    }
}

#[test]
fn node_client_with_an_agent_per_request_is_churn_at_the_rate_nginx_counted() {
    let Some(node) = tool("node", "LEAKLESS_REQUIRE_NODE", "apt-get install nodejs") else {
        return;
    };
    let Some(nginx) = Nginx::start() else { return };
    let script = clients_dir().join("agent_per_request.js");
    let url = nginx.url("/");
    let w = Watch::command(40, &[&node, script.to_str().unwrap(), &url, RATE, "60"]);
    churn_at_the_rate_nginx_counted(&w, &nginx, true);
}

#[test]
fn go_client_without_keep_alives_is_churn_at_the_rate_nginx_counted() {
    let Some(go) = tool("go", "LEAKLESS_REQUIRE_GO", "apt-get install golang-go") else {
        return;
    };
    let Some(nginx) = Nginx::start() else { return };
    let dir = std::env::temp_dir().join(format!("leakless-watch-go-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("no_keepalive");
    let out = Command::new(&go)
        .arg("build")
        .arg("-o")
        .arg(&bin)
        .arg(clients_dir().join("no_keepalive.go"))
        .output()
        .expect("runs go build");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = nginx.url("/");
    let w = Watch::command(40, &[bin.to_str().unwrap(), &url, RATE, "60"]);
    // Go closes a connection as soon as it has read the body, racing
    // nginx's FIN: either side may close first.
    churn_at_the_rate_nginx_counted(&w, &nginx, false);
    drop(w);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Without the capabilities perf needs (all dropped from the bounding
/// set, so even root has none), watch says once why it only samples, and
/// the report states the limit.
#[test]
fn without_the_privilege_for_events_watch_says_so_once_and_samples() {
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("skipped: setpriv (util-linux) is not installed");
        return;
    }
    let out = Command::new("setpriv")
        .args(["--bounding-set=-all", "--inh-caps=-all", "--"])
        .arg(env!("CARGO_BIN_EXE_leakless"))
        .args([
            "watch",
            "--interval",
            "200ms",
            "--json",
            "--for",
            "2s",
            "--",
            "sleep",
            "5",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = stderr
        .lines()
        .filter(|l| l.contains("connection events unavailable"))
        .count();
    assert_eq!(said, 1, "said once:\n{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 3, "samples went on: {stdout}");
    let report = lines.last().unwrap();
    assert_eq!(report["type"], "report");
    assert_eq!(report["events"]["source"], "sampling", "{report:#}");
    let limit = report["events"]["limit"].as_str().unwrap();
    assert!(limit.contains("between two samples"), "{limit}");
}

/// A shell loop whose every connection is made by a subshell living a few
/// milliseconds: `--pid` of the shell counts them all with it (followed
/// through the kernel's fork records), and the subshells closed first.
#[test]
fn connections_of_short_lived_children_count_with_the_watched_pid() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        // Read each connection to EOF, so the client's FIN comes first.
        for c in listener.incoming().take(2000).flatten() {
            let _ = std::io::Read::read_to_end(&mut &c, &mut Vec::new());
        }
    });
    let script = format!(
        "for i in $(seq 400); do (exec 3<>/dev/tcp/127.0.0.1/{}); sleep 0.02; done",
        addr.port()
    );
    let mut shell = Command::new("bash").args(["-c", &script]).spawn().unwrap();
    let w = Watch::pid(shell.id(), 30, &[]);
    let (sample, seen) = w.until_verdict(shell.id(), "CHURN", 25.0);
    let _ = shell.kill();
    let _ = shell.wait();
    let v = verdicts_for(&sample, shell.id())
        .into_iter()
        .find(|v| v["verdict"] == "CHURN")
        .unwrap();
    eprintln!("CHURN at {}s (before: {seen:?})", sample["t"]);
    assert_eq!(v["endpoint"], addr.to_string(), "{v:#}");
    let n = &v["numbers"];
    assert!(n["opens_per_s"].as_f64().unwrap() >= 5.0, "{v:#}");
    assert!(
        n["ended_local_first"].as_f64().unwrap() > 0.9 * n["ended"].as_f64().unwrap(),
        "the subshells closed first: {v:#}"
    );
    assert!(
        v["advice"]
            .as_str()
            .unwrap()
            .contains("this program closes"),
        "{v:#}"
    );
}
