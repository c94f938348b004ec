//! Starting role processes and `leakless watch`, and reading its JSON lines.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The client programs in other languages the tests run.
pub fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/watch/clients")
}

/// The `leakless` binary under test.
pub fn leakless() -> Command {
    Command::new(env!("CARGO_BIN_EXE_leakless"))
}

/// A client role running in a child process; killed on drop.
pub struct Role {
    child: Child,
    _stdin: ChildStdin,
}

impl Role {
    /// Re-executes this test binary as `role` against `server`.
    pub fn spawn(role: &str, server: SocketAddr) -> Role {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args(["child_role", "--exact", "--nocapture", "--test-threads=1"])
            .env("LEAKLESS_TEST_ROLE", role)
            .env("LEAKLESS_TEST_ADDR", server.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        Role {
            child,
            _stdin: stdin,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running `leakless watch ... --json`, its stdout read line by line.
pub struct Watch {
    child: Child,
    lines: Receiver<Value>,
    stderr: Receiver<String>,
}

impl Watch {
    pub fn start(args: &[&str]) -> Watch {
        Watch::start_cmd(leakless().arg("watch").args(args))
    }

    /// `watch --pid PID --json --for SECS`, plus `extra`, sampling every
    /// 200 ms: the rules work in seconds, not samples, and sampling fast
    /// keeps the suite short.
    pub fn pid(pid: u32, secs: u32, extra: &[&str]) -> Watch {
        let (pid, secs) = (pid.to_string(), format!("{secs}s"));
        let mut args = vec![
            "--pid",
            &pid,
            "--interval",
            "200ms",
            "--json",
            "--for",
            &secs,
        ];
        args.extend(extra);
        Watch::start(&args)
    }

    /// `watch --json --for SECS -- CMD`, sampling every 200 ms.
    pub fn command(secs: u32, cmd: &[&str]) -> Watch {
        let secs = format!("{secs}s");
        let mut args = vec!["--interval", "200ms", "--json", "--for", &secs, "--"];
        args.extend(cmd);
        Watch::start(&args)
    }

    pub fn start_cmd(cmd: &mut Command) -> Watch {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let (etx, stderr) = channel();
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if etx.send(line).is_err() {
                    break;
                }
            }
        });
        Watch {
            child,
            lines,
            stderr,
        }
    }

    /// The next JSON line, or None at end of output or after `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<Value> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// The next stderr line.
    pub fn stderr_line(&self, timeout: Duration) -> Option<String> {
        self.stderr.recv_timeout(timeout).ok()
    }

    /// Reads samples until one shows `pid` with verdict `kind`, at most
    /// `limit` of watch time (the `t` field). Returns that sample and every
    /// process verdict seen before it.
    pub fn until_verdict(&self, pid: u32, kind: &str, limit: f64) -> (Value, Vec<String>) {
        let mut seen = Vec::new();
        loop {
            let v = self
                .next(Duration::from_secs(15))
                .unwrap_or_else(|| panic!("watch ended or stalled before {kind}; saw {seen:?}"));
            assert_eq!(v["type"], "sample", "{v}");
            let t = v["t"].as_f64().unwrap();
            if let Some(p) = process(&v, pid) {
                let verdict = p["verdict"].as_str().unwrap_or("").to_string();
                if verdict == kind {
                    return (v, seen);
                }
                if seen.last() != Some(&verdict) {
                    seen.push(verdict);
                }
            }
            assert!(
                t <= limit,
                "no {kind} for pid {pid} within {limit}s of sampling; verdicts seen: {seen:?}\nlast sample: {v:#}"
            );
        }
    }

    /// Reads every sample to the report, asserting `pid` is OK in each
    /// and in the report, and that the samples covered the whole run: one
    /// a second at least, the last within 2 s of the end. (How many more
    /// depends on how busy the host is: at 200 ms a sample takes longer than
    /// its interval on a loaded 2-core machine.)
    pub fn ok_throughout(&self, pid: u32) {
        let mut times = Vec::new();
        let report = loop {
            let v = self
                .next(Duration::from_secs(15))
                .expect("samples, then a report");
            if v["type"] == "report" {
                break v;
            }
            times.push(v["t"].as_f64().unwrap());
            let p = process(&v, pid).expect("the watched process in every sample");
            assert_eq!(p["verdict"], "OK", "at {}s: {p:#}", v["t"]);
        };
        let r = verdicts_for(&report, pid);
        assert_eq!(r.len(), 1, "{report:#}");
        assert_eq!(r[0]["verdict"], "OK", "{report:#}");
        let run = report["duration_s"].as_f64().unwrap();
        let last = times.last().copied().unwrap_or(0.0);
        assert!(
            times.len() as f64 >= run.floor() && last >= run - 2.0,
            "{} samples over {run}s, the last at {last}s",
            times.len()
        );
    }

    /// Reads to the end and returns the final report line.
    pub fn report(&self, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = self.next(left).expect("a final report line");
            if v["type"] == "report" {
                return v;
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The process entry for `pid` in a sample or report.
pub fn process(v: &Value, pid: u32) -> Option<&Value> {
    v["processes"].as_array()?.iter().find(|p| p["pid"] == pid)
}

/// The verdicts about `pid` in a sample's process entry or a report.
pub fn verdicts_for(v: &Value, pid: u32) -> Vec<Value> {
    let list = if v["type"] == "report" {
        v["verdicts"].as_array().cloned().unwrap_or_default()
    } else {
        process(v, pid)
            .and_then(|p| p["verdicts"].as_array().cloned())
            .unwrap_or_default()
    };
    list.into_iter().filter(|x| x["pid"] == pid).collect()
}

impl Watch {
    /// Sends SIGINT, as Ctrl-C in a terminal would.
    pub fn interrupt(&self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGINT);
        }
    }
}

/// `name` on PATH, or `None` (the test passes, saying why) unless
/// `require_var` is set, as CI does: then it fails.
pub fn tool(name: &str, require_var: &str, install: &str) -> Option<String> {
    let found = Command::new(name).arg("--version").output().is_ok()
        || Command::new(name).arg("version").output().is_ok();
    if found {
        return Some(name.to_string());
    }
    assert!(
        std::env::var_os(require_var).is_none(),
        "{name} is not installed: {install} (.ci/run does)"
    );
    eprintln!("skipped: {name} is not installed ({install})");
    None
}
