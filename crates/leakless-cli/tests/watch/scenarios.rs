//! Each misbehaviour gets its verdict within 30 s of sampling; the healthy
//! client is OK throughout.

use std::time::Duration;

use crate::harness::{Role, Watch, process, verdicts_for};
use crate::programs::{Server, ServerCfg};

fn watch(pid: u32) -> Watch {
    Watch::pid(pid, 31, &[])
}

fn evidence(v: &serde_json::Value) -> String {
    v["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn close_wait_leak_is_called_leak() {
    let server = Server::start(ServerCfg {
        close: true,
        ..ServerCfg::default()
    });
    let role = Role::spawn("close_wait", server.addr);
    let w = watch(role.pid());
    let (sample, seen) = w.until_verdict(role.pid(), "LEAK", 30.0);
    eprintln!("LEAK at {}s (before: {seen:?})", sample["t"]);
    let v = &verdicts_for(&sample, role.pid())[0];
    assert_eq!(v["verdict"], "LEAK");
    assert_eq!(v["state"], "CLOSE_WAIT");
    assert_eq!(v["endpoint"], server.addr.to_string());
    assert!(v["numbers"]["fin_unread"].as_f64().unwrap() > 0.0, "{v:#}");
    assert!(
        v["numbers"]["fd_limit_eta_s"].as_f64().unwrap() > 0.0,
        "{v:#}"
    );
    // It read each body to its end: only the FIN is unread (Recv-Q 1), so
    // nothing says it stopped reading early.
    assert!(evidence(v).contains("never read the peer's FIN"), "{v:#}");
    assert!(!evidence(v).contains("stopped reading"), "{v:#}");
    assert_eq!(v["numbers"]["data_unread"], 0.0, "{v:#}");
    assert!(evidence(v).contains("file descriptors in use"), "{v:#}");

    // The sample's shape: the endpoint row with its CLOSE_WAIT count.
    let p = process(&sample, role.pid()).unwrap();
    let ep = &p["endpoints"][0];
    assert_eq!(ep["endpoint"], server.addr.to_string());
    assert!(ep["states"]["CLOSE_WAIT"].as_u64().unwrap() >= 5, "{ep:#}");
    assert!(ep["close_wait_fin_unread"].as_u64().unwrap() >= 1);
    assert_eq!(ep["close_wait_data_unread"], 0, "{ep:#}");
    assert!(p["fds_open"].as_u64().unwrap() >= ep["sockets"].as_u64().unwrap());
    assert!(p["fd_limit"].as_u64().is_some());

    // Ctrl-C (SIGINT) ends the watch with the final report.
    w.interrupt();
    let report = w.report(Duration::from_secs(10));
    let r = verdicts_for(&report, role.pid());
    assert!(
        r.iter()
            .any(|v| v["verdict"] == "LEAK" && v["state"] == "CLOSE_WAIT"),
        "{report:#}"
    );
}

/// The CLOSE_WAIT leak again, but the server gives up on each connection
/// 4 s after closing it (RST): the kernel drops those sockets from its table
/// while the program keeps every fd. They count as FD_ONLY, in the same
/// endpoint, and the verdict stays LEAK in every sample once found.
#[test]
fn close_wait_leak_dropped_by_the_kernel_stays_a_leak() {
    let server = Server::start(ServerCfg {
        close: true,
        reset_after: Some(Duration::from_secs(4)),
        ..ServerCfg::default()
    });
    let role = Role::spawn("close_wait", server.addr);
    let w = watch(role.pid());
    let (sample, seen) = w.until_verdict(role.pid(), "LEAK", 30.0);
    eprintln!("LEAK at {}s (before: {seen:?})", sample["t"]);
    // LEAK in every sample while connections move from CLOSE_WAIT to
    // FD_ONLY, for 15 s at least. The program closes nothing, so every
    // connection the server has reset is one FD_ONLY socket from then on:
    // take the server's count then (ten at least), and a sample dumped after
    // that shows as many. Counted by the server, not from a rate, which a
    // busy host slows down.
    let mut reset = 0;
    loop {
        let v = w.next(Duration::from_secs(15)).expect("more samples");
        assert_eq!(
            v["type"], "sample",
            "the watch ended before {reset} reset sockets were FD_ONLY: {v:#}"
        );
        let p = process(&v, role.pid()).expect("the watched process");
        assert_eq!(p["verdict"], "LEAK", "at {}s: {p:#}", v["t"]);
        let ep = &p["endpoints"][0];
        assert_eq!(ep["endpoint"], server.addr.to_string(), "{p:#}");
        let fd_only = ep["states"]["FD_ONLY"].as_u64().unwrap_or(0);
        if reset == 0 {
            if v["t"].as_f64().unwrap() >= 15.0 && server.resets() >= 10 {
                reset = server.resets() as u64;
            }
            continue;
        }
        if fd_only < reset {
            continue;
        }
        let verdict = &verdicts_for(&v, role.pid())[0];
        assert!(
            evidence(verdict).contains("FD_ONLY: the kernel no longer lists them"),
            "{verdict:#}"
        );
        assert!(
            verdict["numbers"]["fd_only"].as_f64().unwrap() >= reset as f64,
            "{verdict:#}"
        );
        // Every fd is still open: FD_ONLY sockets are counted in fds.
        assert!(
            p["fds_open"].as_u64().unwrap() >= ep["sockets"].as_u64().unwrap(),
            "{p:#}"
        );
        eprintln!("{fd_only} FD_ONLY at {}s ({reset} reset before)", v["t"]);
        break;
    }
}

#[test]
fn established_leak_is_called_leak() {
    let server = Server::start(ServerCfg {
        body: 32 * 1024,
        ..ServerCfg::default()
    });
    let role = Role::spawn("established", server.addr);
    let w = watch(role.pid());
    let (sample, seen) = w.until_verdict(role.pid(), "LEAK", 30.0);
    eprintln!("LEAK at {}s (before: {seen:?})", sample["t"]);
    assert!(
        seen.iter().all(|k| k == "OK"),
        "growth without closes is neither churn nor a stale pool: {seen:?}"
    );
    let v = &verdicts_for(&sample, role.pid())[0];
    assert_eq!(v["state"], "ESTABLISHED", "{v:#}");
    assert_eq!(v["endpoint"], server.addr.to_string());
    assert!(v["numbers"]["held_idle"].as_f64().unwrap() >= 3.0, "{v:#}");
    assert!(v["numbers"]["closed"].as_f64().unwrap() == 0.0, "{v:#}");
    assert!(evidence(v).contains("never reused"), "{v:#}");
    assert!(evidence(v).contains("unread bytes"), "{v:#}");
    // A connection opened between the dump and the fd scan that follows it
    // is not in that dump: never call it FD_ONLY. Five more seconds of a
    // new connection every 150 ms, none of them dropped by the kernel.
    let until = sample["t"].as_f64().unwrap() + 5.0;
    loop {
        let v = w.next(Duration::from_secs(15)).expect("more samples");
        let p = process(&v, role.pid()).unwrap();
        assert!(
            p["states"].get("FD_ONLY").is_none(),
            "at {}s: {p:#}",
            v["t"]
        );
        if v["t"].as_f64().unwrap() >= until {
            break;
        }
    }
}

#[test]
fn churning_client_is_called_churn() {
    let server = Server::start(ServerCfg {
        delay: Duration::from_millis(30),
        ..ServerCfg::default()
    });
    let role = Role::spawn("churn", server.addr);
    let w = watch(role.pid());
    let (sample, seen) = w.until_verdict(role.pid(), "CHURN", 30.0);
    eprintln!("CHURN at {}s (before: {seen:?})", sample["t"]);
    assert!(!seen.iter().any(|k| k == "LEAK"), "{seen:?}");
    let v = &verdicts_for(&sample, role.pid())[0];
    assert_eq!(v["endpoint"], server.addr.to_string());
    assert!(
        v["numbers"]["connections_per_s"].as_f64().unwrap() >= 5.0,
        "{v:#}"
    );
    assert!(
        v["numbers"]["local_ports_in_range"].as_f64().unwrap() > 1000.0,
        "{v:#}"
    );
    assert!(evidence(v).contains("ip_local_port_range"), "{v:#}");
    assert!(evidence(v).contains("TIME_WAIT pile"), "{v:#}");
}

#[test]
fn idle_pool_facing_short_keepalive_is_called_stale_pool() {
    let server = Server::start(ServerCfg {
        keepalive: Duration::from_millis(400),
        ..ServerCfg::default()
    });
    let role = Role::spawn("stale_pool", server.addr);
    let w = watch(role.pid());
    let (sample, seen) = w.until_verdict(role.pid(), "STALE_POOL", 30.0);
    eprintln!("STALE_POOL at {}s (before: {seen:?})", sample["t"]);
    assert!(!seen.iter().any(|k| k == "LEAK"), "{seen:?}");
    let v = &verdicts_for(&sample, role.pid())[0];
    assert_eq!(v["state"], "CLOSE_WAIT");
    let advice = v["advice"].as_str().unwrap();
    assert!(advice.contains("idle timeout"), "{advice}");
    if let Some(t) = v["numbers"]["suggested_idle_timeout_s"].as_f64() {
        assert!(
            t < 0.4,
            "suggested {t}s is not below the server's 400ms: {v:#}"
        );
    }
}

/// A burst of six pooled connections the server then closes, held idle:
/// a flat CLOSE_WAIT set. STALE_POOL with a suggested idle timeout below the
/// server's 2 s, and never LEAK in any sample, even once the step has left
/// the short window and only the whole history holds it.
#[test]
fn flat_close_wait_from_a_burst_is_a_stale_pool_never_a_leak() {
    let server = Server::start(ServerCfg {
        keepalive: Duration::from_secs(2),
        ..ServerCfg::default()
    });
    let role = Role::spawn("burst_idle", server.addr);
    let w = Watch::pid(role.pid(), 24, &[]);
    let mut kinds = Vec::new();
    let report = loop {
        let v = w
            .next(Duration::from_secs(15))
            .expect("samples, then a report");
        if v["type"] == "report" {
            break v;
        }
        let p = process(&v, role.pid()).expect("the watched process in every sample");
        let kind = p["verdict"].as_str().unwrap().to_string();
        assert_ne!(kind, "LEAK", "at {}s: {p:#}", v["t"]);
        if kinds.last() != Some(&kind) {
            kinds.push(kind);
        }
    };
    let r = verdicts_for(&report, role.pid());
    assert_eq!(r[0]["verdict"], "STALE_POOL", "{report:#} (seen {kinds:?})");
    assert_eq!(r[0]["endpoint"], server.addr.to_string());
    assert_eq!(r[0]["numbers"]["close_wait"], 6.0, "{:#}", r[0]);
    let t = r[0]["numbers"]["suggested_idle_timeout_s"]
        .as_f64()
        .unwrap_or_else(|| panic!("the server's keep-alive was seen closing: {:#}", r[0]));
    assert!(t < 2.0, "suggested {t}s is not below the server's 2 s");
}

#[test]
fn healthy_pooled_client_is_ok_throughout() {
    let server = Server::start(ServerCfg::default());
    let role = Role::spawn("healthy", server.addr);
    Watch::pid(role.pid(), 14, &[]).ok_throughout(role.pid());
}
