//! An nginx of our own on a free loopback port, with `stub_status` so a test
//! can read how many connections nginx accepted: the server's own count of
//! what `watch` counted on the client side.
//!
//! The port is ours before nginx starts: we bind it and nginx inherits the
//! listening socket (its `NGINX` variable, which binary upgrades use), so no
//! other test can take the port between our choosing it and nginx binding it.
//! nginx 1.22 takes inherited sockets only with its master process on: a
//! master and one worker.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Killed on drop, its directory removed.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    pub addr: SocketAddr,
}

impl Nginx {
    /// `None` when nginx is not installed and `LEAKLESS_REQUIRE_NGINX` is
    /// unset (CI sets it, so there it fails).
    pub fn start() -> Option<Nginx> {
        let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(bin) = bin else {
            assert!(
                std::env::var_os("LEAKLESS_REQUIRE_NGINX").is_none(),
                "nginx is not installed: apt-get install nginx-light (.ci/run does)"
            );
            eprintln!("skipped: nginx is not installed");
            return None;
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let port = addr.port();
        let dir = std::env::temp_dir().join(format!(
            "leakless-watch-nginx-{}-{port}",
            std::process::id()
        ));
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process on;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n\
             fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n\
             server {{\n    listen 127.0.0.1:{port};\n    location = /status {{ stub_status; }}\n\
             location / {{ return 200 \"hello\"; }}\n  }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let fd = listener.as_raw_fd();
        let mut cmd = Command::new(bin);
        cmd.arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-p")
            .arg(&dir)
            .env("NGINX", format!("{fd};"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        // SAFETY: only fcntl(2), async-signal-safe, between fork and exec:
        // the listener stays open across exec in nginx alone, not in the
        // children other tests start meanwhile.
        unsafe {
            cmd.pre_exec(move || {
                if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("nginx starts");
        drop(listener);
        let log = format!("{d}/error.log");
        let nginx = Nginx { child, dir, addr };
        // Connections queue on the socket from the start: this first status
        // request waits for nginx to serve (or fails once it exited, the
        // socket closed with it).
        if let Err(e) = nginx.status() {
            panic!("nginx did not answer on {addr} within 10 s ({e}); see {log}");
        }
        Some(nginx)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Connections nginx has accepted so far (`stub_status`'s "accepts"),
    /// this request's own connection included.
    pub fn accepts(&self) -> u64 {
        let resp = self.status().expect("nginx's stub_status");
        // "server accepts handled requests\n 12 12 34 \n"
        let after = resp
            .split("server accepts handled requests")
            .nth(1)
            .unwrap_or_else(|| panic!("no stub_status in: {resp}"));
        after.split_whitespace().next().unwrap().parse().unwrap()
    }

    /// One `GET /status` on a connection of its own, the whole response.
    fn status(&self) -> std::io::Result<String> {
        let mut c = TcpStream::connect(self.addr)?;
        c.set_read_timeout(Some(Duration::from_secs(10)))?;
        c.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
        let mut resp = String::new();
        c.read_to_string(&mut resp)?;
        Ok(resp)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its worker, then exits (SIGKILL would
        // leave the worker behind).
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
