//! Real proxies from Debian's packages, each started by a test on a free
//! loopback port with a generated config, killed on drop: squid (forward
//! and CONNECT), tinyproxy (with Basic credentials), dante (SOCKS5, with
//! or without user/password). When one is not installed the test is
//! skipped, unless `LEAKLESS_REQUIRE_PROXIES` is set (CI sets it): then it
//! fails.

use super::{free_port, not_installed};
use std::{
    net::{SocketAddr, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Once,
    time::{Duration, Instant},
};

/// A proxy daemon of the test's own.
pub struct Daemon {
    child: Child,
    dir: PathBuf,
    pub addr: SocketAddr,
    name: &'static str,
}

impl Daemon {
    /// `scheme://127.0.0.1:port`, optionally with `user:password@`.
    pub fn url(&self, scheme: &str, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((u, p)) => format!("{scheme}://{u}:{p}@{}", self.addr),
            None => format!("{scheme}://{}", self.addr),
        }
    }

    /// Starts `bin args..` after writing `config(port, dir)` to `dir/<file>`,
    /// and waits until it listens. `None` when `bin` is missing and
    /// proxies are not required.
    ///
    /// These daemons take a port number, not a socket: the port is free
    /// when picked but another test may bind it before the daemon does,
    /// and then the daemon exits. That start-up (never the test) is tried
    /// again on a new port, a bounded number of times.
    fn start(
        name: &'static str,
        package: &str,
        bin: &str,
        file: &str,
        config: impl Fn(u16, &Path) -> String,
        args: impl Fn(&Path) -> Vec<String>,
    ) -> Option<Daemon> {
        if !Path::new(bin).exists() {
            not_installed(name, package, "LEAKLESS_REQUIRE_PROXIES");
            return None;
        }
        const TRIES: usize = 5;
        let mut exits = Vec::new();
        for _ in 0..TRIES {
            let port = free_port();
            let dir =
                std::env::temp_dir().join(format!("leakless-{name}-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            // Daemons that drop root (squid) still write their logs here.
            set_mode(&dir, 0o777);
            std::fs::write(dir.join(file), config(port, &dir)).unwrap();
            let child = Command::new(bin)
                .args(args(&dir))
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
                .spawn()
                .unwrap_or_else(|e| panic!("{name} does not start: {e}"));
            let mut daemon = Daemon {
                child,
                dir,
                addr: ([127, 0, 0, 1], port).into(),
                name,
            };
            match daemon.wait_listening() {
                Ok(()) => return Some(daemon),
                Err(exited) => exits.push(exited),
            }
        }
        panic!("{name} exited before listening {TRIES} times: {exits:#?}")
    }

    /// Waits until the daemon listens; `Err` (with its logs) when it
    /// exited first. A connect alone proves nothing: another test's server
    /// may hold the port (the daemon then fails to bind and exits), so the
    /// listening socket must belong to the daemon or a process it started.
    fn wait_listening(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(self.addr).is_err() || !self.owns_listener() {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) before listening on {}: {}",
                    self.name,
                    self.addr,
                    self.logs()
                ));
            }
            assert!(
                Instant::now() < deadline,
                "{} did not listen on {} within 20 s: {}",
                self.name,
                self.addr,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// Whether the socket listening on our port is held by the daemon or
    /// one of its descendants (squid and dante fork). When `/proc` does not
    /// let us look (no root), the connect has to do.
    fn owns_listener(&self) -> bool {
        let Some(inode) = listening_inode(self.addr.port()) else {
            return false;
        };
        let mut readable = false;
        for pid in descendants(self.child.id()) {
            let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                continue;
            };
            readable = true;
            let want = format!("socket:[{inode}]");
            if fds.flatten().any(|fd| {
                std::fs::read_link(fd.path())
                    .is_ok_and(|target| target.as_os_str() == want.as_str())
            }) {
                return true;
            }
        }
        !readable
    }

    /// What it wrote to its logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "log") || p.ends_with("stderr") {
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                out += &format!("\n--- {}\n", p.display());
                for line in tail.into_iter().rev() {
                    out += line;
                    out += "\n";
                }
            }
        }
        out
    }
}

/// The inode of the TCP socket listening on 127.0.0.1 (or any address)
/// at `port`, from the kernel's socket table.
fn listening_inode(port: u16) -> Option<u64> {
    const LISTEN: &str = "0A";
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let ours = [
        format!("0100007F:{port:04X}"),
        format!("00000000:{port:04X}"),
    ];
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        (cols.len() > 9 && ours.iter().any(|a| a == cols[1]) && cols[3] == LISTEN)
            .then(|| cols[9].parse().ok())
            .flatten()
    })
}

/// `root` and every process below it, from each process's parent in
/// `/proc/PID/stat`.
fn descendants(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // After the name in parentheses: state, then the parent's pid.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            Some((pid, ppid))
        })
        .collect();
    let mut found = vec![root];
    let mut at = 0;
    while at < found.len() {
        let parent = found[at];
        found.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(pid, _)| *pid),
        );
        at += 1;
    }
    found
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A name only squid's own hosts file knows (as 127.0.0.1): requests for
/// it are not loopback to the client, so even an environment proxy takes
/// them.
pub const SQUID_ONLY_NAME: &str = "leakless.test";

/// squid as a forward proxy that also tunnels CONNECT to any port. It
/// resolves names from a hosts file of its own and asks no DNS server.
pub fn squid() -> Option<Daemon> {
    squid_with(false)
}

/// The user squid's Basic authentication knows when asked for.
pub const SQUID_USER: (&str, &str) = ("alice", "s3cret");
/// `openssl passwd -apr1 -salt abcdefgh s3cret`.
const SQUID_PASSWD: &str = "alice:$apr1$abcdefgh$M2T3erDstkD7SsE2QQnfH0\n";

/// squid that answers 407 unless given `SQUID_USER`'s credentials.
pub fn squid_with_auth() -> Option<Daemon> {
    squid_with(true)
}

fn squid_with(auth: bool) -> Option<Daemon> {
    Daemon::start(
        "squid",
        "squid",
        "/usr/sbin/squid",
        "squid.conf",
        |port, dir| {
            let d = dir.display();
            std::fs::write(
                dir.join("hosts"),
                format!("127.0.0.1 localhost {SQUID_ONLY_NAME}\n"),
            )
            .unwrap();
            let access = if auth {
                let passwd = dir.join("passwd");
                std::fs::write(&passwd, SQUID_PASSWD).unwrap();
                set_mode(&passwd, 0o644);
                format!(
                    "auth_param basic program /usr/lib/squid/basic_ncsa_auth {d}/passwd\n\
                     auth_param basic realm leakless\nacl users proxy_auth REQUIRED\n\
                     http_access allow users\nhttp_access deny all\n"
                )
            } else {
                "http_access allow all\n".to_owned()
            };
            format!(
                "http_port 127.0.0.1:{port}\npid_filename {d}/squid.pid\n\
                 hosts_file {d}/hosts\ndns_nameservers 127.0.0.1\n\
                 cache_log {d}/cache.log\naccess_log none\ncache deny all\ncache_mem 8 MB\n\
                 coredump_dir {d}\npinger_enable off\nvisible_hostname leakless-test\n\
                 shutdown_lifetime 0 seconds\n{access}"
            )
        },
        |dir| {
            vec![
                "-N".into(),
                "-f".into(),
                dir.join("squid.conf").display().to_string(),
            ]
        },
    )
}

/// tinyproxy; with `credentials`, it answers 407 to requests without them.
pub fn tinyproxy(credentials: Option<(&str, &str)>) -> Option<Daemon> {
    let auth = credentials.map_or(String::new(), |(u, p)| format!("BasicAuth {u} {p}\n"));
    Daemon::start(
        "tinyproxy",
        "tinyproxy",
        "/usr/bin/tinyproxy",
        "tinyproxy.conf",
        |port, dir| {
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 64\nLogLevel Warning\n\
                 PidFile \"{}/tinyproxy.pid\"\nAllow 127.0.0.1\n{auth}",
                dir.display()
            )
        },
        |dir| {
            vec![
                "-d".into(),
                "-c".into(),
                dir.join("tinyproxy.conf").display().to_string(),
            ]
        },
    )
}

/// The system user dante's `username` method checks passwords against.
pub const SOCKS_USER: (&str, &str) = ("leaklesssocks", "socks-pw-1");

/// dante as a SOCKS5 server; `with_password` requires `SOCKS_USER`.
pub fn dante(with_password: bool) -> Option<Daemon> {
    if with_password {
        ensure_socks_user();
    }
    let method = if with_password { "username" } else { "none" };
    Daemon::start(
        "danted",
        "dante-server",
        "/usr/sbin/danted",
        "danted.conf",
        |port, dir| {
            format!(
                "logoutput: {}/danted.log\ninternal: 127.0.0.1 port = {port}\n\
                 external: 127.0.0.1\nclientmethod: none\nsocksmethod: {method}\n\
                 user.privileged: root\nuser.unprivileged: nobody\n\
                 client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n\
                 socks pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 }}\n",
                dir.display()
            )
        },
        |dir| {
            vec![
                "-f".into(),
                dir.join("danted.conf").display().to_string(),
                "-p".into(),
                dir.join("danted.pid").display().to_string(),
                "-N".into(),
                "1".into(),
            ]
        },
    )
}

/// dante's `username` method checks the system's users (it reads
/// /etc/shadow as root): a local user with a known password, made once.
fn ensure_socks_user() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let (user, password) = SOCKS_USER;
        let exists = Command::new("id")
            .arg(user)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !exists {
            let made = Command::new("useradd")
                .args(["-M", "-s", "/usr/sbin/nologin", user])
                .status()
                .expect("useradd runs (the SOCKS5 password tests need root)");
            assert!(made.success(), "useradd {user} failed");
        }
        let mut chpasswd = Command::new("chpasswd")
            .stdin(Stdio::piped())
            .spawn()
            .expect("chpasswd runs");
        use std::io::Write;
        writeln!(chpasswd.stdin.take().unwrap(), "{user}:{password}").unwrap();
        assert!(chpasswd.wait().unwrap().success(), "chpasswd failed");
    });
}

/// An HTTPS proxy: nginx's stream module terminating TLS (a leaf for
/// localhost and 127.0.0.1 from `ca`) in front of `upstream`, a plain
/// proxy.
pub fn tls_front(ca: &super::TestCa, upstream: std::net::SocketAddr) -> Option<Daemon> {
    const MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";
    if !Path::new(MODULE).exists() {
        not_installed(
            "nginx's stream module",
            "libnginx-mod-stream",
            "LEAKLESS_REQUIRE_PROXIES",
        );
        return None;
    }
    let (cert, key) = (ca.leaf_pem.clone(), ca.key_pem.clone());
    Daemon::start(
        "nginx-stream",
        "nginx-light",
        "/usr/sbin/nginx",
        "nginx.conf",
        move |port, dir| {
            std::fs::write(dir.join("cert.pem"), &cert).unwrap();
            std::fs::write(dir.join("key.pem"), &key).unwrap();
            let d = dir.display();
            format!(
                "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
                 error_log {d}/error.log warn;\nload_module {MODULE};\n\
                 events {{ worker_connections 256; }}\n\
                 stream {{\n  server {{\n    listen 127.0.0.1:{port} ssl;\n    \
                 ssl_certificate {d}/cert.pem;\n    ssl_certificate_key {d}/key.pem;\n    \
                 proxy_pass {upstream};\n  }}\n}}\n"
            )
        },
        |dir| {
            vec![
                "-c".into(),
                dir.join("nginx.conf").display().to_string(),
                "-p".into(),
                dir.display().to_string(),
            ]
        },
    )
}

/// The start-up check itself: a connect to the port is not enough, the
/// listener must be the daemon's.
#[test]
fn a_port_is_the_daemons_only_when_its_process_tree_holds_the_listener() {
    use std::io::BufRead;
    let script = "import socket,time\ns=socket.socket()\ns.bind(('127.0.0.1',0))\ns.listen()\n\
                  print(s.getsockname()[1],flush=True)\ntime.sleep(60)";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line.trim().parse().unwrap();
    let dir = std::env::temp_dir();
    let theirs = Daemon {
        child,
        dir: dir.join(format!("leakless-owner-test-{port}")),
        addr: ([127, 0, 0, 1], port).into(),
        name: "python3",
    };
    assert!(theirs.owns_listener(), "python3 listens on {port} itself");
    // A listener of ours on another port: connects succeed, but the
    // python3 process does not hold it.
    let ours = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let impostor = Daemon {
        child: Command::new("sleep").arg("60").spawn().unwrap(),
        dir: dir.join(format!("leakless-owner-test-{port}-b")),
        addr: ours.local_addr().unwrap(),
        name: "sleep",
    };
    assert!(!impostor.owns_listener(), "the port is held by the test");
}
