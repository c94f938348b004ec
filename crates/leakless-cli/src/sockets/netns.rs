//! Network namespaces: a process in a container has its sockets in its own
//! namespace, invisible to a sock_diag socket opened in ours.
//!
//! A netlink socket stays bound to the namespace it was created in, so
//! entering the target's namespace only for `socket(2)` is enough: the
//! calling thread switches in, creates it, and switches back.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

/// True when `pid` lives in another network namespace than this process.
pub fn differs(pid: u32) -> bool {
    let id = |p: &str| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    match (id("/proc/self/ns/net"), id(&format!("/proc/{pid}/ns/net"))) {
        (Some(a), Some(b)) => a != b,
        _ => false,
    }
}

/// Runs `f` with the calling thread in `pid`'s network namespace, then
/// returns to ours. Needs CAP_SYS_ADMIN (in practice: root).
pub fn within<T>(pid: u32, f: impl FnOnce() -> io::Result<T>) -> io::Result<T> {
    let ours = File::open("/proc/thread-self/ns/net")?;
    let theirs = File::open(format!("/proc/{pid}/ns/net"))?;
    setns(&theirs)?;
    let result = f();
    // Going back cannot fail for a namespace we were in a moment ago, short
    // of the fd being revoked; if it did, this thread must not go on.
    setns(&ours).expect("return to our own network namespace");
    result
}

fn setns(ns: &File) -> io::Result<()> {
    // SAFETY: setns(2) on an open namespace fd; affects only this thread.
    let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_namespace_is_not_different() {
        assert!(!differs(std::process::id()));
        assert!(
            !differs(u32::MAX),
            "an unknown pid is not reported as elsewhere"
        );
    }
}
