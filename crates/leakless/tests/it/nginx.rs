//! Scenario 8 against a real nginx started on a free loopback port.

use std::{
    net::{SocketAddr, TcpListener},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use leakless::Client;

/// An nginx of our own with a generated config; killed on drop.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    pub addr: SocketAddr,
}

impl Nginx {
    /// Starts nginx with `http_directives` in its `http` block, serving
    /// `return 200 "hello"` at `/`. `None` when nginx is not installed and
    /// `LEAKLESS_REQUIRE_NGINX` is unset (CI sets it, so there it fails).
    pub fn start(http_directives: &str) -> Option<Nginx> {
        let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(bin) = bin else {
            if std::env::var_os("LEAKLESS_REQUIRE_NGINX").is_some() {
                panic!("nginx is not installed: apt-get install nginx-light (.ci/run does)");
            }
            eprintln!("skipped: nginx is not installed (apt-get install nginx-light)");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir =
            std::env::temp_dir().join(format!("leakless-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n\
             fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n\
             {http_directives}\n  server {{\n    listen 127.0.0.1:{port};\n\
             location / {{ return 200 \"hello\"; }}\n  }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let child = Command::new(bin)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-p")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx starts");
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on {addr} within 10 s; see {d}/error.log"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Nginx { child, dir, addr })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_closing_every_10_requests_and_after_1s_idle_fails_no_get_in_10s() {
    let Some(nginx) = Nginx::start("keepalive_requests 10;\n  keepalive_timeout 1s;") else {
        return;
    };
    let client = Client::builder().max_conns_per_host(16).build().unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (c, u) = (client.clone(), nginx.url("/"));
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0u64, Vec::new());
                let mut i = 0u64;
                while Instant::now() < until {
                    i += 1;
                    match c.get(u.as_str()).send().await {
                        Ok(res) => match res.bytes().await {
                            Ok(b) if b == "hello" => ok += 1,
                            other => failed.push(format!("body: {other:?}")),
                        },
                        Err(e) => failed.push(e.to_string()),
                    }
                    // Some workers pause past nginx's 1 s keep-alive now and
                    // then, so pooled connections go stale under our feet.
                    if w % 4 == 0 && i % 2000 == 0 {
                        tokio::time::sleep(Duration::from_millis(1100)).await;
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let (mut ok, mut failed) = (0, Vec::new());
    for w in workers {
        let (o, f) = w.await.unwrap();
        ok += o;
        failed.extend(f);
    }
    let s = client.stats().total;
    eprintln!(
        "nginx churn: {ok} GETs, {} connections, {} retries",
        s.created, s.retries
    );
    assert!(
        failed.is_empty(),
        "{} of {} GETs failed, e.g. {:?}",
        failed.len(),
        ok + failed.len() as u64,
        &failed[..failed.len().min(3)]
    );
    assert!(ok > 1000, "the load ran ({ok} GETs)");
    assert!(
        s.created >= ok / 10,
        "nginx closed every 10 requests: {} connections for {ok} GETs",
        s.created
    );
}
