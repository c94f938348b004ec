//! Against a real nginx started on a free loopback port: keep-alive churn
//! (connections closed every 10 requests and after 1 s idle), HTTP/2 by
//! ALPN and by prior knowledge, HTTP/1.1 over TLS.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use leakless::Client;

use crate::support::{TestCa, free_port, not_installed};

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
        Nginx::start_with(|port, _| {
            format!(
                "{http_directives}\n  server {{\n    listen 127.0.0.1:{port};\n    \
                 location / {{ return 200 \"hello\"; }}\n  }}"
            )
        })
    }

    /// Starts nginx with the `http` block's body made by `http(port, dir)`;
    /// the block must listen on `port` (the one readiness is checked on).
    pub fn start_with(http: impl FnOnce(u16, &std::path::Path) -> String) -> Option<Nginx> {
        let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(bin) = bin else {
            not_installed("nginx", "nginx-light", "LEAKLESS_REQUIRE_NGINX");
            return None;
        };
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("leakless-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        let http_body = http(port, &dir);
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\nevents {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/tmp;\n  proxy_temp_path {d}/tmp;\n\
             fastcgi_temp_path {d}/tmp;\n  uwsgi_temp_path {d}/tmp;\n  scgi_temp_path {d}/tmp;\n\
             {http_body}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();
        let mut child = Command::new(bin)
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
        // Polling another process's start: there is nothing to await.
        while !answers_as_nginx(addr) {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("nginx exited ({status}) before it listened on {addr}; see {d}/error.log");
            }
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

/// Something at `addr` answers a plain HTTP/1.0 request as nginx does (on
/// its TLS port too, with a 400). The ports were found free and let go
/// before nginx bound them: had another server taken one meanwhile, nginx
/// exits and this is not it. nginx binds all its ports before it serves,
/// so its answer on one says it holds them all.
fn answers_as_nginx(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut answer = Vec::new();
    let _ = stream.write_all(b"GET / HTTP/1.0\r\n\r\n");
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(
        answer.is_empty() || answer.contains("server: nginx"),
        "not nginx at {addr}: {answer}"
    );
    !answer.is_empty()
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Eight workers GET `url` for 10 s, worker `w` with `client(w)`; those
/// for which `pauses(w)` pause 1.1 s every 2000 GETs. Returns how many
/// answered "hello" and how each other one failed.
async fn get_for_10s(
    url: &str,
    client: impl Fn(usize) -> Client,
    pauses: impl Fn(usize) -> bool,
) -> (u64, Vec<String>) {
    let until = Instant::now() + Duration::from_secs(10);
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (c, u, pauses) = (client(w), url.to_owned(), pauses(w));
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
                    if pauses && i % 2000 == 0 {
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
    (ok, failed)
}

fn assert_none_failed(ok: u64, failed: &[String]) {
    assert!(
        failed.is_empty(),
        "{} of {} GETs failed, e.g. {:?}",
        failed.len(),
        ok + failed.len() as u64,
        &failed[..failed.len().min(3)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_closing_every_10_requests_and_after_1s_idle_fails_no_get_in_10s() {
    let Some(nginx) = Nginx::start("keepalive_requests 10;\n  keepalive_timeout 1s;") else {
        return;
    };
    let client = Client::builder().max_conns_per_host(16).build().unwrap();
    // Some workers pause past nginx's 1 s keep-alive now and then, so
    // pooled connections go stale under our feet.
    let (ok, failed) = get_for_10s(&nginx.url("/"), |_| client.clone(), |w| w % 4 == 0).await;
    let s = client.stats().total;
    eprintln!(
        "nginx churn: {ok} GETs, {} connections, {} retries",
        s.created, s.retries
    );
    assert_none_failed(ok, &failed);
    assert!(ok > 1000, "the load ran ({ok} GETs)");
    assert!(
        s.created >= ok / 10,
        "nginx closed every 10 requests: {} connections for {ok} GETs",
        s.created
    );
}

/// A CA and a leaf for 127.0.0.1/localhost written into `dir` for nginx;
/// returns the CA for the client to trust.
fn write_certs(dir: &std::path::Path) -> leakless::Certificate {
    let ca = TestCa::new();
    std::fs::write(dir.join("cert.pem"), &ca.leaf_pem).unwrap();
    std::fs::write(dir.join("key.pem"), &ca.key_pem).unwrap();
    ca.certificate()
}

/// nginx with HTTPS + h2 by ALPN on its port (4 streams per connection,
/// `keepalive_requests` as given) and h2c prior knowledge on a second port.
fn nginx_tls_h2(keepalive_requests: u32) -> Option<(Nginx, leakless::Certificate, u16)> {
    let h2c_port = free_port();
    let mut ca = None;
    let nginx = Nginx::start_with(|port, dir| {
        ca = Some(write_certs(dir));
        let d = dir.display();
        format!(
            "  keepalive_requests {keepalive_requests};\n  http2_max_concurrent_streams 4;\n\
             server {{\n    listen 127.0.0.1:{port} ssl http2;\n    ssl_certificate {d}/cert.pem;\n\
             ssl_certificate_key {d}/key.pem;\n    location / {{ return 200 \"hello\"; }}\n  }}\n\
             server {{\n    listen 127.0.0.1:{h2c_port} http2;\n    location / {{ return 200 \"hello\"; }}\n  }}"
        )
    })?;
    Some((nginx, ca.expect("written"), h2c_port))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_h2_64_concurrent_requests_on_4_streams_open_more_connections_within_the_cap() {
    let Some((nginx, ca, _)) = nginx_tls_h2(1000) else {
        return;
    };
    const CAP: usize = 6;
    let client = Client::builder()
        .add_root_certificate(ca)
        .max_conns_per_host(CAP)
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{}/", nginx.addr.port());
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let (c, u) = (client.clone(), url.clone());
            tokio::spawn(async move {
                let res = c.get(u).send().await?;
                assert_eq!(res.version(), leakless::Version::HTTP_2);
                res.bytes().await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), "hello");
    }
    let s = client.stats().total;
    assert!(
        s.created > 1 && s.created <= CAP as u64,
        "4 streams each: more than one connection, at most {CAP}: {s:?}"
    );
    assert!(s.open <= CAP);
}

#[tokio::test]
async fn nginx_h1_over_tls_reuses_its_connection() {
    let Some((nginx, ca, _)) = nginx_tls_h2(1000) else {
        return;
    };
    let client = Client::builder()
        .add_root_certificate(ca)
        .disable_http2(true)
        .build()
        .unwrap();
    let url = format!("https://localhost:{}/", nginx.addr.port());
    for _ in 0..20 {
        let res = client.get(url.as_str()).send().await.unwrap();
        assert_eq!(res.version(), leakless::Version::HTTP_11);
        assert_eq!(res.bytes().await.unwrap(), "hello");
    }
    let s = client.stats().total;
    assert_eq!((s.created, s.reused), (1, 19), "{s:?}");
}

#[tokio::test]
async fn nginx_h2c_with_prior_knowledge() {
    let Some((_nginx, _, h2c_port)) = nginx_tls_h2(1000) else {
        return;
    };
    let client = Client::builder().http2_prior_knowledge().build().unwrap();
    for _ in 0..5 {
        let res = client
            .get(format!("http://127.0.0.1:{h2c_port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.version(), leakless::Version::HTTP_2);
        assert_eq!(res.bytes().await.unwrap(), "hello");
    }
    assert_eq!(client.stats().total.created, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_tls_churn_over_h2_and_h1_fails_no_get_in_10s() {
    // nginx ends each connection after 10 requests: GOAWAY on h2,
    // Connection: close on HTTP/1.1.
    let Some((nginx, ca, _)) = nginx_tls_h2(10) else {
        return;
    };
    let h2 = Client::builder()
        .add_root_certificate(ca.clone())
        .max_conns_per_host(8)
        .build()
        .unwrap();
    let h1 = Client::builder()
        .add_root_certificate(ca)
        .disable_http2(true)
        .max_conns_per_host(8)
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{}/", nginx.addr.port());
    let pick = |w: usize| if w % 2 == 0 { h2.clone() } else { h1.clone() };
    let (ok, failed) = get_for_10s(&url, pick, |_| false).await;
    let (s2, s1) = (h2.stats().total, h1.stats().total);
    eprintln!(
        "nginx TLS churn: {ok} GETs; h2 {} connections, {} retries; h1 {} connections",
        s2.created, s2.retries, s1.created
    );
    assert_none_failed(ok, &failed);
    assert!(ok > 500, "the load ran ({ok} GETs)");
    assert!(
        s2.created > 10 && s1.created > 10,
        "nginx really churned: {s2:?} {s1:?}"
    );
}
