//! An nginx of our own on two free loopback ports, HTTP/1.1 and h2c,
//! closing a connection after 3 requests (`keepalive_requests`; GOAWAY on
//! HTTP/2) and after 1 s idle (`keepalive_timeout`): sooner than the
//! client's own idle timeout, so the client keeps meeting connections the
//! server has just closed. Killed on drop.

use std::{
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The size of `/big`.
pub const BIG: usize = 64 * 1024;

pub struct Nginx {
    child: Child,
    dir: PathBuf,
    pub h1: SocketAddr,
    pub h2c: SocketAddr,
}

impl Nginx {
    /// `None` when nginx is not installed and `LEAKLESS_REQUIRE_NGINX` is
    /// unset (CI sets it: there it fails).
    pub fn start() -> Option<Nginx> {
        let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(bin) = bin else {
            assert!(
                std::env::var_os("LEAKLESS_REQUIRE_NGINX").is_none(),
                "nginx is not installed: apt-get install nginx-light (.ci/run does)"
            );
            eprintln!("soak: nginx is not installed (apt-get install nginx-light): skipping it");
            return None;
        };
        let free = || {
            let l = TcpListener::bind("127.0.0.1:0").expect("a free port");
            l.local_addr().expect("its address")
        };
        let (h1, h2c) = (free(), free());
        let dir = std::env::temp_dir().join(format!(
            "leakless-soak-nginx-{}-{}",
            std::process::id(),
            h1.port()
        ));
        std::fs::create_dir_all(dir.join("tmp")).expect("nginx's directory");
        std::fs::write(
            dir.join("big"),
            &"hello".repeat(BIG / 5 + 1).as_bytes()[..BIG],
        )
        .expect("nginx's /big");
        let d = dir.display();
        let server = |listen: String| {
            format!(
                "  server {{\n    listen {listen};\n    keepalive_requests 3;\n    \
                 keepalive_timeout 1s;\n    location = / {{ return 200 \"hello\"; }}\n    \
                 location = /big {{ alias {d}/big; }}\n  }}\n"
            )
        };
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log crit;\nevents {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/tmp;\n  \
             proxy_temp_path {d}/tmp;\n  fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  \
             scgi_temp_path {d}/tmp;\n{}{}}}\n",
            server(h1.to_string()),
            server(format!("{h2c} http2")),
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
        let child = Command::new(bin)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-p")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        for addr in [h1, h2c] {
            while std::net::TcpStream::connect(addr).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "nginx did not listen on {addr} within 10 s; see {d}/error.log"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Some(Nginx {
            child,
            dir,
            h1,
            h2c,
        })
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
