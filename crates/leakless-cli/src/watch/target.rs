//! What is watched: an existing pid or a command we start; and the stop
//! flag SIGINT/SIGTERM set when no TUI owns the keyboard.

use std::io;
use std::os::fd::AsFd;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::sockets::process;

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

/// SIGINT and SIGTERM stop the watch (which then prints its report) instead
/// of killing it. A watched command in our process group gets the same
/// Ctrl-C from the terminal and exits on its own.
pub fn install_stop_handler() {
    let handler: extern "C" fn(libc::c_int) = on_signal;
    // SAFETY: installing a handler that only stores to an atomic.
    unsafe {
        libc::signal(libc::SIGINT, handler as libc::sighandler_t);
        libc::signal(libc::SIGTERM, handler as libc::sighandler_t);
    }
}

pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Where the watched command's output goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildOutput {
    /// Its stdout to our stderr, so `--json` on our stdout stays parseable.
    ToStderr,
    /// Discarded: the TUI owns the terminal.
    Discard,
}

/// A watched process.
pub enum Target {
    Pid(u32),
    Command(Child),
}

impl Target {
    /// Starts `argv` with `env` added to ours.
    pub fn spawn(
        argv: &[String],
        output: ChildOutput,
        env: &[(String, String)],
    ) -> io::Result<Target> {
        let (prog, args) = argv.split_first().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no command given after --")
        })?;
        let mut cmd = Command::new(prog);
        cmd.args(args).envs(env.iter().map(|(k, v)| (k, v)));
        match output {
            ChildOutput::ToStderr => {
                let err = io::stderr().as_fd().try_clone_to_owned()?;
                cmd.stdout(Stdio::from(err));
            }
            ChildOutput::Discard => {
                cmd.stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null());
            }
        }
        let child = cmd
            .spawn()
            .map_err(|e| io::Error::new(e.kind(), format!("cannot start {prog}: {e}")))?;
        Ok(Target::Command(child))
    }

    pub fn pid(&self) -> u32 {
        match self {
            Target::Pid(p) => *p,
            Target::Command(c) => c.id(),
        }
    }

    /// `Some(code)` once a command we started has exited (signals as
    /// 128 + signal, as shells report them).
    pub fn exited(&mut self) -> Option<i32> {
        match self {
            Target::Pid(_) => None,
            Target::Command(c) => c.try_wait().ok().flatten().map(exit_code),
        }
    }

    /// False once the process is gone (or a zombie).
    pub fn alive(&mut self) -> bool {
        match self {
            Target::Pid(p) => process::alive(*p),
            Target::Command(_) => self.exited().is_none(),
        }
    }

    /// Ends a command we started, and the processes it started (they were
    /// watched as part of it): SIGTERM, then SIGKILL after `grace`. Returns
    /// its exit code. A pid we were only given is left alone.
    pub fn finish(&mut self, grace: Duration) -> Option<i32> {
        let Target::Command(c) = self else {
            return None;
        };
        let descendants: Vec<u32> = process::with_descendants(c.id())
            .into_iter()
            .skip(1)
            .collect();
        for pid in &descendants {
            // SAFETY: kill(2) with a pid read from /proc just now; at worst
            // the process is already gone (ESRCH).
            unsafe {
                libc::kill(*pid as libc::pid_t, libc::SIGTERM);
            }
        }
        if let Ok(Some(st)) = c.try_wait() {
            return Some(exit_code(st));
        }
        // SAFETY: kill(2) on our own child's pid, which we have not reaped.
        unsafe {
            libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
        }
        let t0 = Instant::now();
        while t0.elapsed() < grace {
            if let Ok(Some(st)) = c.try_wait() {
                return Some(exit_code(st));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        c.wait().ok().map(exit_code)
    }
}

fn exit_code(st: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    st.code()
        .or_else(|| st.signal().map(|s| 128 + s))
        .unwrap_or(1)
}
