//! `deploy/kubernetes/bench-job.yaml`: valid against Kubernetes' own Job
//! schema (kubernetes-validate, from PyPI, bundles the schemas of each
//! release: no cluster needed), an Indexed Job with the start barrier, and
//! a command line `leakless bench` accepts. Without kubernetes-validate
//! the test is skipped with a message, unless
//! LEAKLESS_REQUIRE_KUBERNETES_VALIDATE is set (CI), where it fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{bench_json, u};

fn manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/kubernetes/bench-job.yaml")
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The manifest as JSON, read by the Python kubernetes-validate runs on
/// (PyYAML is one of its dependencies).
fn as_json(validator: &Path) -> Value {
    let script = std::fs::read_to_string(validator).unwrap();
    let python = script
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("#!"))
        .unwrap_or_else(|| panic!("{} has no interpreter line", validator.display()))
        .trim();
    let out = Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(manifest())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_bench_job_is_a_valid_indexed_job_whose_command_bench_runs() {
    let Some(validator) = on_path("kubernetes-validate") else {
        assert!(
            std::env::var_os("LEAKLESS_REQUIRE_KUBERNETES_VALIDATE").is_none(),
            "LEAKLESS_REQUIRE_KUBERNETES_VALIDATE is set but kubernetes-validate is not on PATH"
        );
        eprintln!(
            "skipping the manifest check: no kubernetes-validate (pip install kubernetes-validate)"
        );
        return;
    };
    // The oldest and newest schemas it bundles that we promise: Indexed
    // Jobs are stable since 1.24.
    for version in ["1.27.0", "1.37.0"] {
        let out = Command::new(&validator)
            .args(["--strict", "-k", version])
            .arg(manifest())
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "Kubernetes {version}: {said}");
        assert!(said.contains("passed"), "{said}");
    }

    let job = as_json(&validator);
    let spec = &job["spec"];
    assert_eq!(job["kind"], "Job");
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(
        spec["parallelism"], spec["completions"],
        "every copy at once, or the barrier waits for nothing"
    );
    assert_eq!(spec["backoffLimit"], 0, "a retried copy would start late");
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let container = &pod["containers"][0];
    assert_eq!(container["command"][0], "leakless");
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(args[0], "bench");
    assert!(args.iter().any(|a| a == "--json"), "{args:?}");
    assert!(
        args.iter().any(|a| a == "--start-at=START_AT"),
        "the README's sed fills START_AT: {args:?}"
    );

    // The same command line, run here: the embedded server for the
    // target, a moment from now for START_AT, a short duration.
    let soon = SystemTime::now() + Duration::from_millis(300);
    let soon = format!(
        "--start-at={}",
        soon.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
    );
    let here: Vec<String> = args[1..]
        .iter()
        // bench_json adds it.
        .filter(|a| *a != "--json")
        .map(|a| match a.as_str() {
            a if a.starts_with("http") => "/".to_string(),
            a if a.starts_with("--duration=") => "--duration=500ms".to_string(),
            a if a.starts_with("--concurrency=") => "--concurrency=4".to_string(),
            "--start-at=START_AT" => soon.clone(),
            a => a.to_string(),
        })
        .collect();
    let here: Vec<&str> = here.iter().map(String::as_str).collect();
    let (code, v, err) = bench_json(&here);
    assert_eq!(code, 0, "{here:?}: {err}");
    assert!(u(&v, "/succeeded") > 0, "{v:#}");
    assert!(v["histograms"]["latency_us"].is_string());
}
