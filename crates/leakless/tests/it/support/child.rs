//! Tests that need a process of their own (a count per process: open file
//! descriptors, a warning given once per process) run again in a fresh
//! process of this test binary.

use std::{
    io::Read,
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

/// Runs the ignored test `name` (its full path, e.g.
/// `observe::many_clients_child`) alone in a fresh process of this test
/// binary with `env` set, and returns what it printed. Fails unless it
/// ran and passed within `limit` (it is killed then).
pub fn run_alone_in_a_fresh_process(name: &str, env: &[(&str, &str)], limit: Duration) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            name,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Each pipe is read to its end, which comes when the child exits.
    let (tx, rx) = mpsc::channel();
    let pipes: [Box<dyn Read + Send>; 2] = [
        Box::new(child.stdout.take().unwrap()),
        Box::new(child.stderr.take().unwrap()),
    ];
    for (i, mut pipe) in pipes.into_iter().enumerate() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            let _ = tx.send((i, s));
        });
    }
    let deadline = std::time::Instant::now() + limit;
    let mut out = [String::new(), String::new()];
    for _ in 0..2 {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, s)) => out[i] = s,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name} ran over {limit:?} in its own process");
            }
        }
    }
    let [stdout, stderr] = out;
    let status = child.wait().unwrap();
    assert!(status.success(), "{name} failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "{name} did not run:\n{stdout}\n{stderr}"
    );
    stdout
}
