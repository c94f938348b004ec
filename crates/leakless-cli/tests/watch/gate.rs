//! `--fail-on`: watch as a CI gate around a command or a pid.

use std::net::SocketAddr;
use std::process::{Command, Output};

use serde_json::Value;

use crate::harness::{Role, leakless};
use crate::programs::{Server, ServerCfg};

/// The exit code watch uses when a listed verdict appeared.
const EXIT_VERDICT: i32 = 10;

/// `leakless watch ARGS -- <this binary as ROLE for SECS, exiting EXIT>`.
fn watch_role(args: &[&str], role: &str, server: SocketAddr, secs: u32, exit: i32) -> Output {
    let exe = std::env::current_exe().unwrap();
    let mut cmd: Command = leakless();
    cmd.arg("watch")
        .args(args)
        .arg("--")
        .arg(exe)
        .args(["child_role", "--exact", "--nocapture", "--test-threads=1"])
        .env("LEAKLESS_TEST_ROLE", role)
        .env("LEAKLESS_TEST_ADDR", server.to_string())
        .env("LEAKLESS_TEST_ROLE_FOR", secs.to_string())
        .env("LEAKLESS_TEST_ROLE_EXIT", exit.to_string());
    cmd.output().unwrap()
}

fn report(out: &Output) -> Value {
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().expect("a report line");
    let v: Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["type"], "report", "{v}");
    v
}

/// A command that leaks CLOSE_WAIT and then exits 0: watch exits 10, says
/// so with the evidence on stderr, and the JSON report lists the hit.
#[test]
fn a_leaking_command_fails_the_gate() {
    let server = Server::start(ServerCfg {
        close: true,
        ..ServerCfg::default()
    });
    let out = watch_role(
        &["--fail-on", "leak", "--json", "--interval", "200ms"],
        "close_wait",
        server.addr,
        16,
        0,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_VERDICT), "{stderr}");
    assert!(
        stderr.contains("--fail-on LEAK: 1 seen; exiting 10 (the command exited with 0)"),
        "{stderr}"
    );
    assert!(stderr.contains("never read the peer's FIN"), "{stderr}");
    let r = report(&out);
    assert_eq!(r["exit_code"], 0);
    let hit = &r["fail_on"]["hits"][0];
    assert_eq!(hit["verdict"], "LEAK", "{r:#}");
    assert_eq!(hit["endpoint"], server.addr.to_string(), "{hit:#}");
    assert!(hit["first_seen_s"].as_f64().unwrap() <= 16.0, "{hit:#}");
}

/// A healthy command passes every listed verdict; watch exits with the
/// command's own code (7 here), so a failing suite still fails as itself.
#[test]
fn a_healthy_command_passes_and_keeps_its_exit_code() {
    let server = Server::start(ServerCfg::default());
    let out = watch_role(
        &[
            "--fail-on",
            "leak,stale,churn",
            "--json",
            "--interval",
            "200ms",
        ],
        "healthy",
        server.addr,
        8,
        7,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("--fail-on CHURN,STALE_POOL,LEAK: none seen"),
        "{stderr}"
    );
    let r = report(&out);
    assert_eq!(r["exit_code"], 7);
    assert_eq!(r["fail_on"]["hits"], serde_json::json!([]), "{r:#}");
}

/// With --pid, --for ends the run and the gate decides the exit code.
#[test]
fn the_gate_works_on_a_pid_for_a_while() {
    let server = Server::start(ServerCfg {
        close: true,
        ..ServerCfg::default()
    });
    let role = Role::spawn("close_wait", server.addr);
    let pid = role.pid().to_string();
    let out = leakless()
        .args([
            "watch",
            "--pid",
            &pid,
            "--for",
            "16s",
            "--interval",
            "200ms",
            "--fail-on",
            "leak",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(EXIT_VERDICT), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("LEAK pid {pid}")), "{stdout}");
    assert!(
        stderr.contains(&format!("LEAK pid {pid} {}", server.addr)),
        "{stderr}"
    );
}

#[test]
fn an_unknown_verdict_is_a_usage_error() {
    let out = leakless()
        .args(["watch", "--all", "--fail-on", "leak,leaks"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("use leak, stale or churn"), "{stderr}");
    let out = leakless()
        .args(["watch", "--all", "--once", "--fail-on", "leak"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "--once judges nothing");
}
