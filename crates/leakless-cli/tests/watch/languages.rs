//! Beyond Rust, Go and Python: Node.js clients (a response never consumed,
//! an agent per request, a healthy shared agent) and curl in a shell loop,
//! each watched as the command it is (`watch -- CMD`). Each verdict names
//! the test's own server within 30 s; the healthy pool is OK in every
//! sample.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Watch, clients_dir, tool, verdicts_for};
use crate::programs::{Server, ServerCfg};

fn node() -> Option<String> {
    tool("node", "LEAKLESS_REQUIRE_NODE", "apt-get install nodejs")
}

/// `watch --json -- CMD`, and the pid of the command (the root process,
/// from the first sample).
fn watch_command(secs: u32, cmd: &[&str]) -> (Watch, u32) {
    let w = Watch::command(secs, cmd);
    let first = w.next(Duration::from_secs(30)).expect("a first sample");
    let pid = first["processes"][0]["pid"].as_u64().expect("the command") as u32;
    (w, pid)
}

/// The first verdict of `kind` about `pid`, within 30 s of sampling.
fn verdict(w: &Watch, pid: u32, kind: &str) -> Value {
    let (sample, seen) = w.until_verdict(pid, kind, 30.0);
    eprintln!("{kind} at {}s (before: {seen:?})", sample["t"]);
    verdicts_for(&sample, pid)[0].clone()
}

#[test]
fn node_response_never_consumed_is_a_leak() {
    let Some(node) = node() else { return };
    let server = Server::start(ServerCfg {
        body: 64 * 1024,
        ..ServerCfg::default()
    });
    let url = format!("http://{}/", server.addr);
    let script = clients_dir().join("node_roles.js");
    let (w, pid) = watch_command(
        40,
        &[&node, script.to_str().unwrap(), "unconsumed", &url, "45"],
    );
    let v = verdict(&w, pid, "LEAK");
    assert_eq!(v["endpoint"], server.addr.to_string(), "{v:#}");
    assert_eq!(v["state"], "ESTABLISHED", "{v:#}");
    assert_eq!(v["numbers"]["closed"], 0.0, "{v:#}");
}

#[test]
fn node_agent_per_request_is_churn() {
    let Some(node) = node() else { return };
    let server = Server::start(ServerCfg::default());
    let url = format!("http://{}/", server.addr);
    let script = clients_dir().join("agent_per_request.js");
    let (w, pid) = watch_command(40, &[&node, script.to_str().unwrap(), &url, "30", "45"]);
    let v = verdict(&w, pid, "CHURN");
    assert_eq!(v["endpoint"], server.addr.to_string(), "{v:#}");
    assert!(
        v["numbers"]["connections_per_s"].as_f64().unwrap() >= 5.0,
        "{v:#}"
    );
}

/// Four connections on a shared keep-alive agent under steady load: OK in
/// every sample, from the first to the report.
#[test]
fn node_shared_agent_under_steady_load_is_ok_throughout() {
    let Some(node) = node() else { return };
    let server = Server::start(ServerCfg::default());
    let url = format!("http://{}/", server.addr);
    let script = clients_dir().join("node_roles.js");
    let (w, pid) = watch_command(14, &[&node, script.to_str().unwrap(), "pooled", &url, "30"]);
    w.ok_throughout(pid);
}

/// curl in shell loops: a new process and a new connection per request.
/// The server answers after 100 ms, as real ones do, so sampling alone
/// sees the connections too.
#[test]
fn curl_in_a_loop_is_churn() {
    let Some(curl) = tool("curl", "LEAKLESS_REQUIRE_CURL", "apt-get install curl") else {
        return;
    };
    let server = Server::start(ServerCfg {
        delay: Duration::from_millis(100),
        ..ServerCfg::default()
    });
    // Eight loops side by side: a busy 2-core host starts each curl late
    // (three loops made 4.3 connections/s at load 37, under CHURN's 5).
    // A refused connection (the test ended, its server gone) ends them.
    let script = format!(
        "end=$(($(date +%s) + 45)); for i in 1 2 3 4 5 6 7 8; do (while [ $(date +%s) -lt $end ]; do {curl} -s -o /dev/null http://{}/ || break; done) & done; wait",
        server.addr
    );
    let (w, pid) = watch_command(40, &["sh", "-c", &script]);
    let v = verdict(&w, pid, "CHURN");
    assert_eq!(v["endpoint"], server.addr.to_string(), "{v:#}");
}
