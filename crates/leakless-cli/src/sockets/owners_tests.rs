//! The owner cache against real processes: this one, and a shell whose
//! fds nothing else touches.

use super::*;
use crate::sockets::TcpState;
use std::net::TcpListener;
use std::os::fd::AsRawFd;

fn sock(inode: u64) -> SocketInfo {
    SocketInfo {
        local: "127.0.0.1:1".parse().unwrap(),
        remote: "127.0.0.1:2".parse().unwrap(),
        state: TcpState::Established,
        inode,
        uid: 0,
        cookie: inode,
        recv_q: 0,
        send_q: 0,
        times: None,
        pid: None,
    }
}

fn inode_of(fd: &impl AsRawFd) -> u64 {
    let link = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
    socket_inode(link.to_str().unwrap()).unwrap()
}

#[test]
fn parses_socket_links() {
    assert_eq!(socket_inode("socket:[42]"), Some(42));
    assert_eq!(socket_inode("/dev/null"), None);
    assert_eq!(socket_inode("pipe:[42]"), None);
}

/// A shell that runs each line the test sends it (`exec 50<>/dev/tcp/...`
/// opens a connection on fd 50) and answers with an empty line: a process
/// whose fds nothing else touches, unlike this one, where other tests open
/// and close fds all the time.
struct Holder {
    child: std::process::Child,
    port: u16,
}

impl Holder {
    fn start(l: &TcpListener) -> Holder {
        let child = std::process::Command::new("bash")
            .args(["-c", "while read -r cmd; do eval \"$cmd\"; echo; done"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("bash");
        let port = l.local_addr().unwrap().port();
        Holder { child, port }
    }

    /// Runs `cmd` in the shell and waits until it has.
    fn run(&mut self, cmd: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        std::io::Write::write_all(stdin, format!("{cmd}\n").as_bytes()).unwrap();
        let mut b = [0u8; 1];
        let out = self.child.stdout.as_mut().unwrap();
        assert_eq!(std::io::Read::read(out, &mut b).unwrap(), 1, "bash exited");
    }

    /// Opens a connection to the listener on `fd`.
    fn connect(&mut self, fd: u32) {
        self.run(&format!("exec {fd}<>/dev/tcp/127.0.0.1/{}", self.port));
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn inode(&self, fd: u32) -> u64 {
        let link = fs::read_link(format!("/proc/{}/fd/{fd}", self.pid())).unwrap();
        socket_inode(link.to_str().unwrap()).unwrap()
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A socket of the holder's, as the table lists it (its uid is ours).
fn held(inode: u64) -> SocketInfo {
    SocketInfo {
        // SAFETY: geteuid has no preconditions.
        uid: unsafe { libc::geteuid() },
        ..sock(inode)
    }
}

/// Resolves a process's sockets, then resolves again without a single
/// readlink, then finds a new socket with a readlink of the new fd only.
#[test]
fn caches_and_refreshes_incrementally() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut holder = Holder::start(&l);
    for fd in 10..50 {
        holder.connect(fd);
    }
    let pid = holder.pid();
    let mut map = OwnerMap::new(Owners::Pids(vec![pid]));
    let mut socks: Vec<SocketInfo> = (10..50).map(|fd| held(holder.inode(fd))).collect();
    socks.push(held(inode_of(&l)));
    map.resolve(&mut socks);
    assert!(socks[..40].iter().all(|s| s.pid == Some(pid)));
    assert_eq!(socks[40].pid, None, "ours, not the holder's");
    assert!(map.stats().readlinks >= 40);

    map.resolve(&mut socks);
    assert_eq!(
        map.stats(),
        ScanStats::default(),
        "warm: no /proc work at all"
    );
    assert_eq!(socks[1].pid, Some(pid));

    holder.connect(50);
    socks.push(held(holder.inode(50)));
    map.resolve(&mut socks);
    assert_eq!(socks[41].pid, Some(pid));
    assert_eq!(
        map.stats().readlinks,
        1,
        "the new fd is read, never the 40 sockets already known"
    );
}

/// An fd closed while its socket lives on (another fd, a forked child
/// holds it too) and reused for a new socket: the new one is found,
/// although the fd's cached socket is still in the table.
#[test]
fn finds_a_new_socket_on_an_fd_whose_old_socket_lives_on() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut holder = Holder::start(&l);
    holder.connect(10);
    holder.run("exec 11>&10");
    let old = holder.inode(10);
    let pid = holder.pid();
    let mut map = OwnerMap::new(Owners::Pids(vec![pid]));
    let mut socks = vec![held(old)];
    map.resolve(&mut socks);
    assert_eq!(socks[0].pid, Some(pid));

    holder.run("exec 10>&-");
    holder.connect(10);
    let mut socks = vec![held(old), held(holder.inode(10))];
    assert_ne!(socks[1].inode, old);
    map.resolve(&mut socks);
    assert_eq!(socks[0].pid, Some(pid), "still held on fd 11");
    assert_eq!(socks[1].pid, Some(pid), "the new socket on fd 10");
}

#[test]
fn readlinkat_finds_socket_inodes() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let dir = fs::File::open("/proc/self/fd").unwrap();
    assert_eq!(link_inode(&dir, l.as_raw_fd() as u32), Some(inode_of(&l)));
    let file = fs::File::open("/proc/self/stat").unwrap();
    assert_eq!(link_inode(&dir, file.as_raw_fd() as u32), None);
    assert_eq!(link_inode(&dir, 999_999), None);
}

#[test]
fn scope_none_does_nothing() {
    let mut map = OwnerMap::new(Owners::None);
    let mut socks = vec![sock(1)];
    map.resolve(&mut socks);
    assert_eq!(socks[0].pid, None);
}
