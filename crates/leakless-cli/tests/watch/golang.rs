//! `--pprof`: real Go programs (`go/leaky.go`, built once per run) that
//! serve net/http/pprof and hold connections in each way watch names, and
//! a real `go test` under `--fail-on`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Watch, leakless, process, tool};
use crate::programs::{Server, ServerCfg};

/// `go` with a build cache that works offline (no module download is
/// ever needed: the programs use the standard library only).
fn go() -> Option<Command> {
    let go = tool("go", "LEAKLESS_REQUIRE_GO", "apt-get install golang-go")?;
    let mut cmd = Command::new(go);
    cmd.env("GOPROXY", "off").env("GOFLAGS", "-mod=mod");
    if std::env::var_os("GOCACHE").is_none() && std::env::var_os("HOME").is_none() {
        cmd.env("GOCACHE", std::env::temp_dir().join("leakless-go-cache"));
    }
    Some(cmd)
}

fn go_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/watch/go")
}

/// `go/leaky.go` built once for the whole test binary.
fn leaky() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let mut go = go()?;
            let out_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("watch-go");
            std::fs::create_dir_all(&out_dir).unwrap();
            let bin = out_dir.join("leaky");
            let out = go
                .arg("build")
                .arg("-o")
                .arg(&bin)
                .arg(go_dir().join("leaky.go"))
                .output()
                .expect("runs go build");
            assert!(
                out.status.success(),
                "go build leaky.go:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(bin)
        })
        .as_deref()
}

/// A running `leaky MODE`; killed on drop.
struct Leaky {
    child: Child,
    _stdin: ChildStdin,
    pprof: String,
    listen: Option<SocketAddr>,
}

impl Leaky {
    fn start(mode: &str, url: Option<&str>) -> Option<Leaky> {
        let bin = leaky()?;
        let mut child = Command::new(bin)
            .arg(mode)
            .args(url)
            .env("GODEBUG", "tracebackancestors=5")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let line = |what: &str| {
            rx.recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("leaky {mode} printed no {what}"))
        };
        let pprof = line("pprof address")
            .strip_prefix("pprof ")
            .unwrap()
            .to_string();
        let listen = (mode == "handler").then(|| {
            line("listen address")
                .strip_prefix("listen ")
                .unwrap()
                .parse()
                .unwrap()
        });
        Some(Leaky {
            child,
            _stdin: stdin,
            pprof,
            listen,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn watch(&self, secs: u32) -> Watch {
        Watch::pid(self.pid(), secs, &["--pprof", &self.pprof])
    }
}

impl Drop for Leaky {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Samples until `done` holds for the process, at most `limit` seconds of
/// watch time.
fn until(w: &Watch, pid: u32, limit: f64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    loop {
        let v = w
            .next(Duration::from_secs(15))
            .unwrap_or_else(|| panic!("watch ended before {what}"));
        assert_eq!(v["type"], "sample", "{v}");
        let p = process(&v, pid).expect("the watched process").clone();
        if done(&p) {
            return p;
        }
        assert!(
            v["t"].as_f64().unwrap() <= limit,
            "no {what} within {limit}s: {p:#}"
        );
    }
}

fn first_verdict(p: &Value) -> &Value {
    &p["verdicts"][0]
}

/// Bodies never closed: LEAK body-not-closed, with the connections to the
/// server, the parked read loops, and who dialed (label and function).
#[test]
fn go_bodies_never_closed_are_named_with_their_dialer() {
    let server = Server::start(ServerCfg::default());
    let url = format!("http://{}/", server.addr);
    let Some(go) = Leaky::start("body", Some(&url)) else {
        return;
    };
    let w = go.watch(40);
    // Dumps come every 10 s: the one after the verdict counts more.
    let p = until(&w, go.pid(), 30.0, "LEAK body-not-closed", |p| {
        first_verdict(p)["cause"] == "body-not-closed"
            && p["go"]["roles"]["body_unread"]["count"].as_u64() >= Some(5)
    });
    let v = first_verdict(&p);
    assert_eq!(v["verdict"], "LEAK");
    assert_eq!(v["endpoint"], server.addr.to_string());
    let summary = v["summary"].as_str().unwrap();
    for needle in [
        format!("connections to {}", server.addr),
        "readLoops waiting for the body".to_string(),
        "dialed from label callsite=fetchUser / main.fetchUser (leaky.go:".to_string(),
    ] {
        assert!(summary.contains(&needle), "{needle:?} in {summary}");
    }
    assert!(v["advice"].as_str().unwrap().contains("resp.Body.Close()"));
    assert_eq!(p["go"]["ancestors"], true);
}

/// An idle pool of four: OK in every sample, and the Go view says four
/// HTTP/1.1 connections are idle in the pool.
#[test]
fn go_idle_pool_is_ok_and_described() {
    let server = Server::start(ServerCfg::default());
    let url = format!("http://{}/", server.addr);
    let Some(go) = Leaky::start("idle", Some(&url)) else {
        return;
    };
    let w = go.watch(14);
    let mut described = false;
    loop {
        let v = w
            .next(Duration::from_secs(15))
            .expect("samples, then a report");
        let p = process(&v, go.pid()).expect("the watched process");
        if v["type"] == "report" {
            break;
        }
        assert_eq!(p["verdict"], "OK", "at {}s: {p:#}", v["t"]);
        described |= p["go"]["pooled_idle"] == 4;
    }
    assert!(described, "the Go view saw the four idle connections");
}

/// Requests the server never answers: the Go view names the waiting code;
/// their three connections are not a leak (nothing grows).
#[test]
fn go_requests_in_flight_name_their_caller() {
    let server = Server::start(ServerCfg {
        delay: Duration::from_secs(60),
        ..ServerCfg::default()
    });
    let url = format!("http://{}/", server.addr);
    let Some(go) = Leaky::start("inflight", Some(&url)) else {
        return;
    };
    let w = go.watch(30);
    let p = until(&w, go.pid(), 25.0, "three requests in flight", |p| {
        p["go"]["roles"]["in_flight"]["count"] == 3
    });
    let r = &p["go"]["roles"]["in_flight"];
    assert_eq!(r["labels"]["callsite=slowReport"], 3, "{p:#}");
    let origins = r["origins"].as_object().unwrap();
    assert!(
        origins
            .keys()
            .any(|k| k.starts_with("main.slowReport (leaky.go:")),
        "{p:#}"
    );
    assert_eq!(p["go"]["pooled_idle"], 0, "busy, not idle: {p:#}");
    assert_eq!(p["verdict"], "OK", "{p:#}");
}

#[test]
fn go_http2_connections_are_counted() {
    let Some(go) = Leaky::start("h2", None) else {
        return;
    };
    let w = go.watch(25);
    let p = until(&w, go.pid(), 20.0, "two HTTP/2 connections", |p| {
        p["go"]["roles"]["http2_conn"]["count"] == 2
    });
    assert_eq!(p["verdict"], "OK", "{p:#}");
}

/// Clients that give up on a handler that ignores its context: inbound
/// CLOSE_WAIT grows on the Go server, and the verdict names the handler.
#[test]
fn go_handler_ignoring_its_context_beside_inbound_close_wait() {
    let Some(go) = Leaky::start("handler", None) else {
        return;
    };
    let addr = go.listen.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let giving_up = {
        let stop = stop.clone();
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                if let Ok(mut c) = TcpStream::connect(addr) {
                    let _ = c.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
                    thread::sleep(Duration::from_millis(50));
                    // The client gives up: closes without an answer.
                }
                thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let w = go.watch(40);
    let p = until(&w, go.pid(), 30.0, "LEAK handler-ignores-context", |p| {
        first_verdict(p)["cause"] == "handler-ignores-context"
    });
    stop.store(true, Ordering::SeqCst);
    let _ = giving_up.join();
    let v = first_verdict(&p);
    assert_eq!(v["state"], "CLOSE_WAIT");
    assert_eq!(v["endpoint"], format!("inbound :{}", addr.port()));
    let summary = v["summary"].as_str().unwrap();
    assert!(summary.contains("handlers parked"), "{summary}");
    assert!(
        summary.contains("in main.slowHandler (leaky.go:"),
        "{summary}"
    );
    assert!(v["advice"].as_str().unwrap().contains("r.Context()"));
}

/// A --pprof address that does not answer a dump is shown as such.
#[test]
fn a_pprof_address_that_fails_is_reported() {
    let Some(go) = Leaky::start("idle", Some("http://127.0.0.1:9/")) else {
        return;
    };
    // Accepts and hangs up at once: never a dump.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for c in l.incoming().flatten() {
            drop(c);
        }
    });
    let url = format!("http://{addr}/debug/pprof/");
    let w = Watch::pid(go.pid(), 3, &["--pprof", &url]);
    let r = w.report(Duration::from_secs(20));
    let p = process(&r, go.pid()).unwrap();
    let err = p["go"]["error"].as_str().unwrap_or_else(|| panic!("{p:#}"));
    assert!(
        err.contains(&format!("{addr}/debug/pprof/goroutine?debug=2")),
        "{err}"
    );
}

/// With `-- CMD`, the command gets GODEBUG=tracebackancestors=5 added to
/// what it has, so connection goroutines name who dialed.
#[test]
fn a_command_watched_with_pprof_gets_tracebackancestors() {
    let file =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("godebug-{}", std::process::id()));
    let script = format!("echo \"$GODEBUG\" > {}", file.display());
    let out = leakless()
        .env("GODEBUG", "http2debug=1")
        .args([
            "watch",
            "--pprof",
            "http://127.0.0.1:9/",
            "--json",
            "--interval",
            "100ms",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen = String::new();
    std::fs::File::open(&file)
        .unwrap()
        .read_to_string(&mut seen)
        .unwrap();
    let _ = std::fs::remove_file(&file);
    assert_eq!(seen.trim(), "http2debug=1,tracebackancestors=5");
}

/// The README's CI gate, for real: `leakless watch --fail-on leak -- go
/// test` on a package whose test forgets its response bodies for sixteen
/// seconds. The test passes; watch exits 10 and names the leak.
#[test]
fn go_test_that_leaks_fails_the_gate() {
    let Some(mut go) = go() else {
        return;
    };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("watch-gotest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("go.mod"), "module example.com/leaky\n\ngo 1.19\n").unwrap();
    std::fs::copy(go_dir().join("leaky_test.go"), dir.join("leaky_test.go")).unwrap();
    // Compile first (not timed by the watch), then run under the gate.
    let built = go
        .current_dir(&dir)
        .args(["test", "-count=1", "-run", "^$", "."])
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let mut gate = leakless();
    gate.current_dir(&dir)
        .env("GOPROXY", "off")
        .env("GOFLAGS", "-mod=mod")
        .args([
            "watch",
            "--fail-on",
            "leak",
            "--interval",
            "200ms",
            "--",
            "go",
            "test",
            "-count=1",
            "./...",
        ]);
    let out = gate.output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(10), "{stderr}");
    assert!(
        stderr.contains("ok  \texample.com/leaky"),
        "the test itself passed: {stderr}"
    );
    assert!(
        stderr.contains("seen; exiting 10 (the command exited with 0)"),
        "{stderr}"
    );
    assert!(stderr.contains("(ESTABLISHED)"), "{stderr}");
}
