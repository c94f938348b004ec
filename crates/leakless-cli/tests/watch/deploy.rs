//! `deploy/`: the Prometheus rules pass their `promtool test rules` unit
//! tests, and the rules and the Grafana dashboard use only metrics watch
//! exports; the DaemonSet runs `watch --all --listen` with the documented
//! capabilities and no others.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::tool;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(deploy().join(path)).unwrap_or_else(|e| panic!("deploy/{path}: {e}"))
}

/// `leakless_watch_*` names in a text.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("leakless_watch_") {
        let name: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[i + name.len()..];
        out.insert(name);
    }
    out
}

#[test]
fn prometheus_rules_pass_their_unit_tests() {
    let Some(promtool) = tool(
        "promtool",
        "LEAKLESS_REQUIRE_PROMTOOL",
        "apt-get install prometheus",
    ) else {
        return;
    };
    let dir = deploy().join("prometheus");
    for args in [
        ["check", "rules", "leakless-watch.rules.yml"],
        ["test", "rules", "leakless-watch.rules.test.yml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A renamed or mistyped metric would leave an alert silent for ever.
#[test]
fn rules_and_dashboard_use_only_exported_metrics() {
    let exported = metric_names(include_str!("../../src/watch/prom.rs"));
    assert!(exported.len() >= 15, "{exported:?}");
    let rules = metric_names(&read("prometheus/leakless-watch.rules.yml"));
    let dashboard_text = read("grafana/leakless-watch.json");
    let dashboard: serde_json::Value = serde_json::from_str(&dashboard_text).unwrap();
    assert!(dashboard["panels"].as_array().unwrap().len() >= 8);
    let used: BTreeSet<String> = rules
        .union(&metric_names(&dashboard_text))
        .cloned()
        .collect();
    let unknown: Vec<&String> = used.difference(&exported).collect();
    assert!(unknown.is_empty(), "not exported by watch: {unknown:?}");
    for name in [
        "leakless_watch_sockets",
        "leakless_watch_ephemeral_ports_free",
        "leakless_watch_fds_open",
        "leakless_watch_process_verdict",
    ] {
        assert!(rules.contains(name), "an alert on {name}");
    }
}

#[test]
fn the_daemonset_runs_watch_all_with_the_documented_capabilities() {
    let ds = read("kubernetes/watch-daemonset.yaml");
    assert!(ds.contains("hostPID: true"), "{ds}");
    assert!(
        ds.contains(r#"args: ["watch", "--all", "--listen", "0.0.0.0:9464""#),
        "{ds}"
    );
    assert!(ds.contains("containerPort: 9464") && ds.contains(r#"prometheus.io/port: "9464""#));
    assert!(ds.contains(r#"drop: ["ALL"]"#), "{ds}");
    let add = ds
        .lines()
        .find_map(|l| l.trim().strip_prefix("add: "))
        .expect("capabilities added");
    assert_eq!(add, r#"["SYS_PTRACE", "DAC_READ_SEARCH", "SYS_ADMIN"]"#);
    // Each one is documented in the file's header, with why.
    for cap in ["SYS_PTRACE", "DAC_READ_SEARCH", "SYS_ADMIN"] {
        assert!(ds.contains(&format!("# - {cap}:")), "why {cap}: {ds}");
    }
    assert!(
        !ds.contains("privileged: true") && !ds.contains("hostNetwork"),
        "{ds}"
    );
}
