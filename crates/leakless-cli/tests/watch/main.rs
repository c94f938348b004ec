//! `leakless watch` against real processes on the real kernel, loopback only.
//!
//! Each scenario starts a loopback server (threads here) and a client role in
//! a child process (this binary re-executed, see [`child_role`]), then runs
//! the real `leakless` binary on the child's pid and reads its JSON.

mod deploy;
mod events;
mod gate;
mod golang;
mod harness;
mod languages;
mod nginx;
mod outputs;
mod programs;
mod scenarios;

use std::time::Instant;

/// Not a test: the entry point of client roles. The harness runs this binary
/// with `child_role --exact` and `LEAKLESS_TEST_ROLE` set; in a normal test
/// run the variable is unset and this returns at once.
#[test]
fn child_role() {
    let Ok(role) = std::env::var("LEAKLESS_TEST_ROLE") else {
        return;
    };
    let addr = std::env::var("LEAKLESS_TEST_ADDR")
        .unwrap()
        .parse()
        .unwrap();
    // Run as a command `watch` starts (`watch -- CMD`): for a set time, then
    // exit with a set code, as a test suite would.
    if let Ok(secs) = std::env::var("LEAKLESS_TEST_ROLE_FOR") {
        let run_for = std::time::Duration::from_secs_f64(secs.parse().unwrap());
        programs::run_role(&role, addr, Instant::now() + run_for);
        let code = std::env::var("LEAKLESS_TEST_ROLE_EXIT").map_or(0, |c| c.parse().unwrap());
        std::process::exit(code);
    }
    // Exit when the test closes our stdin (it ended, or died).
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        std::process::exit(0);
    });
    programs::run_role(&role, addr, Instant::now() + programs::ROLE_DEADLINE);
    std::process::exit(0);
}
