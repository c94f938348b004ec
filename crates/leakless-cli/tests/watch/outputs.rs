//! The outputs and modes: Prometheus (checked by promtool), `--once`,
//! `-- CMD` exit codes, `--all`, the /proc fallback, unreadable processes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{Role, Watch, leakless, process, verdicts_for};
use crate::programs::{Server, ServerCfg};

fn http_get(addr: &str, path: &str) -> (String, String) {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(c, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).unwrap();
    let (head, body) = resp.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// Waits until a healthy role has its four connections open.
fn settled_healthy() -> (Server, Role) {
    let server = Server::start(ServerCfg::default());
    let role = Role::spawn("healthy", server.addr);
    std::thread::sleep(Duration::from_millis(2500));
    (server, role)
}

#[test]
fn prometheus_exposition_is_valid_and_labels_are_bounded() {
    let server = Server::start(ServerCfg {
        close: true,
        ..ServerCfg::default()
    });
    let role = Role::spawn("close_wait", server.addr);
    let w = Watch::pid(role.pid(), 31, &["--listen", "127.0.0.1:0", "--top", "1"]);
    let line = w
        .stderr_line(Duration::from_secs(10))
        .expect("the listen address on stderr");
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("unexpected: {line}"))
        .to_string();
    w.until_verdict(role.pid(), "LEAK", 30.0);
    let (head, body) = http_get(&addr, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let ep = server.addr.to_string();
    let sockets_cw = format!("leakless_watch_sockets{{pid=\"{}\",", role.pid());
    assert!(
        body.lines().any(|l| l.starts_with(&sockets_cw)
            && l.contains(&format!("endpoint=\"{ep}\""))
            && l.contains("state=\"CLOSE_WAIT\"")),
        "{body}"
    );
    assert!(
        body.lines()
            .any(|l| l.starts_with("leakless_watch_verdict{")
                && l.contains("verdict=\"LEAK\"")
                && l.ends_with(" 1")),
        "{body}"
    );
    assert!(body.contains("# TYPE leakless_watch_samples_total counter"));
    // Bounded labels: with --top 1 only the top endpoint and "other" appear.
    for l in body.lines().filter(|l| l.contains("endpoint=\"")) {
        assert!(
            l.contains(&format!("endpoint=\"{ep}\"")) || l.contains("endpoint=\"other\""),
            "{l}"
        );
    }
    let (head404, _) = http_get(&addr, "/");
    assert!(head404.starts_with("HTTP/1.1 404"), "{head404}");

    match Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Err(_) => eprintln!(
            "SKIPPED promtool check: promtool is not installed (Debian package `prometheus`)"
        ),
        Ok(mut p) => {
            p.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
            let out = p.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "promtool check metrics failed:\n{}{}\n--- exposition ---\n{body}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

#[test]
fn once_prints_one_snapshot_without_verdicts() {
    let (server, role) = settled_healthy();
    let pid = role.pid().to_string();
    let out = leakless()
        .args(["watch", "--once", "--json", "--pid", &pid])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(v["type"], "sample");
    assert_eq!(v["source"], "netlink sock_diag");
    let p = process(&v, role.pid()).unwrap();
    assert!(
        p.get("verdict").is_none() && p.get("verdicts").is_none(),
        "{p:#}"
    );
    let ep = &p["endpoints"][0];
    assert_eq!(ep["endpoint"], server.addr.to_string());
    assert_eq!(ep["states"]["ESTABLISHED"], 4, "{p:#}");
    assert!(ep["max_idle_s"].as_f64().unwrap() < 5.0, "{ep:#}");
    assert!(v["cost"]["sockets"].as_u64().unwrap() >= 4);

    let out = leakless()
        .args(["watch", "--once", "--pid", &pid])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&server.addr.to_string()) && text.contains("ESTABLISHED 4"),
        "{text}"
    );
}

#[test]
fn command_mode_exits_with_the_commands_code() {
    let out = leakless()
        .args([
            "watch",
            "--json",
            "--interval",
            "100ms",
            "--",
            "sh",
            "-c",
            "sleep 1; exit 7",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["type"], "report");
    assert_eq!(last["exit_code"], 7);
    assert!(
        text.lines().count() >= 3,
        "samples before the report: {text}"
    );
}

#[test]
fn bad_targets_are_errors() {
    let out = leakless()
        .args(["watch", "--once", "--pid", "999999999"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no process"));
    let out = leakless().args(["watch", "--once"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a target is required");
    let out = leakless()
        .args(["watch", "--interval", "soon", "--all"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn all_mode_ranks_the_leaker_above_healthy_processes() {
    let server = Server::start(ServerCfg {
        close: true,
        ..ServerCfg::default()
    });
    let role = Role::spawn("close_wait", server.addr);
    let w = Watch::start(&["--all", "--interval", "200ms", "--json", "--for", "31s"]);
    let (sample, _) = w.until_verdict(role.pid(), "LEAK", 30.0);
    let procs = sample["processes"].as_array().unwrap();
    let at = procs.iter().position(|p| p["pid"] == role.pid()).unwrap();
    // Other engineers' processes on this host may leak too; everything
    // ranked above ours must at least not be OK.
    for p in &procs[..at] {
        assert_ne!(p["verdict"], "OK", "{p:#}");
    }
    assert!(procs.len() <= 25);
    let v = &verdicts_for(&sample, role.pid())[0];
    assert_eq!(v["endpoint"], server.addr.to_string());
}

#[test]
fn proc_fallback_still_sees_the_sockets_and_says_so() {
    let (server, role) = settled_healthy();
    let pid = role.pid().to_string();
    let out = leakless()
        .env("LEAKLESS_SOCKETS", "procfs")
        .args(["watch", "--once", "--json", "--pid", &pid])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["source"], "/proc/net/tcp");
    assert!(
        v["warnings"][0].as_str().unwrap().contains("/proc/net/tcp"),
        "{v:#}"
    );
    let p = process(&v, role.pid()).unwrap();
    assert_eq!(p["endpoints"][0]["endpoint"], server.addr.to_string());
    assert_eq!(p["endpoints"][0]["states"]["ESTABLISHED"], 4, "{p:#}");
}

#[test]
fn another_users_process_is_reported_not_hidden() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: needs root to run leakless as another user");
        return;
    }
    let (_server, role) = settled_healthy();
    let pid = role.pid().to_string();
    let child = {
        use std::os::unix::process::CommandExt;
        leakless()
            .args(["watch", "--once", "--json", "--pid", &pid])
            .uid(65534)
            .gid(65534)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
    };
    let Ok(child) = child else {
        eprintln!("SKIPPED: cannot run leakless as uid 65534 here");
        return;
    };
    let out = child.wait_with_output().unwrap();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("Permission denied") || err.contains("permission denied") {
            eprintln!("SKIPPED: uid 65534 cannot execute the test binary: {err}");
            return;
        }
        panic!("{err}");
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let warnings = v["warnings"].to_string();
    assert!(warnings.contains("permission denied"), "{v:#}");
    assert!(warnings.contains(&format!("/proc/{pid}/fd")), "{v:#}");
}

/// The `self_close_wait` role alone in a new network namespace (a
/// container's), or `None` when this host cannot make one (the test then
/// passes, saying why).
fn role_in_own_netns() -> Option<std::process::Child> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: needs root to create a network namespace");
        return None;
    }
    let exe = std::env::current_exe().unwrap();
    let spawned = Command::new("unshare")
        .args([
            "--net",
            "sh",
            "-c",
            "ip link set lo up && exec \"$0\" child_role --exact --nocapture --test-threads=1",
        ])
        .arg(&exe)
        .env("LEAKLESS_TEST_ROLE", "self_close_wait")
        .env("LEAKLESS_TEST_ADDR", "127.0.0.1:1")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let Ok(mut child) = spawned else {
        eprintln!("SKIPPED: unshare (util-linux) is not installed");
        return None;
    };
    std::thread::sleep(Duration::from_millis(2500));
    if let Ok(Some(st)) = child.try_wait() {
        let mut err = String::new();
        let _ = child.stderr.take().unwrap().read_to_string(&mut err);
        eprintln!("SKIPPED: cannot run in a new network namespace here ({st}): {err}");
        return None;
    }
    Some(child)
}

/// A process in its own network namespace (a container): watch enters the
/// namespace and sees its sockets through netlink as usual.
#[test]
fn a_process_in_another_network_namespace_is_seen() {
    let Some(mut child) = role_in_own_netns() else {
        return;
    };
    let pid = child.id().to_string();
    let out = leakless()
        .args(["watch", "--once", "--json", "--pid", &pid])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["source"], "netlink sock_diag", "{v:#}");
    assert!(v.get("warnings").is_none(), "{v:#}");
    let p = process(&v, child.id()).unwrap();
    let cw = p["states"]["CLOSE_WAIT"].as_u64().unwrap_or(0);
    assert!(
        cw >= 3,
        "its CLOSE_WAIT sockets, seen from inside its namespace: {p:#}"
    );
}

/// `--all` on a host of containers (what the DaemonSet runs): a leak in
/// another network namespace is found like one in ours.
#[test]
fn all_mode_sees_a_leak_in_another_network_namespace() {
    let Some(mut child) = role_in_own_netns() else {
        return;
    };
    let w = Watch::start(&["--all", "--interval", "200ms", "--json", "--for", "31s"]);
    let (sample, _) = w.until_verdict(child.id(), "LEAK", 30.0);
    let _ = child.kill();
    let _ = child.wait();
    let v = &verdicts_for(&sample, child.id())[0];
    assert_eq!(v["state"], "CLOSE_WAIT", "{v:#}");
}
