//! Against httpbin (PyPI `httpbin` under gunicorn, a server nobody here
//! wrote), over HTTP/1.1 and HTTP/1.1 over TLS (gunicorn speaks no
//! HTTP/2): redirect chains, compressed bodies, cookies, credentials,
//! JSON, forms and multipart. gunicorn comes from `LEAKLESS_HTTPBIN` (its
//! path; .ci/run makes a virtualenv from .ci/httpbin-requirements.txt);
//! without it the tests are skipped, unless `LEAKLESS_REQUIRE_HTTPBIN`
//! is set (CI), where they fail.

use std::{
    collections::BTreeSet,
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use leakless::{Client, ClientBuilder, Event, Observer, RequestInfo};
use serde_json::{Value, json};

use crate::support::*;

/// gunicorn serving httpbin on a free loopback port; killed on drop.
struct Httpbin {
    child: Child,
    addr: SocketAddr,
    tls: Option<TestCa>,
    dir: std::path::PathBuf,
}

impl Httpbin {
    fn start(mode: Mode) -> Option<Httpbin> {
        let gunicorn = std::env::var("LEAKLESS_HTTPBIN").ok().or_else(|| {
            let local = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../target/httpbin-venv/bin/gunicorn"
            );
            std::path::Path::new(local)
                .exists()
                .then(|| local.to_owned())
        });
        let Some(gunicorn) = gunicorn else {
            if std::env::var_os("LEAKLESS_REQUIRE_HTTPBIN").is_some() {
                panic!(
                    "httpbin is not installed: set LEAKLESS_HTTPBIN to its gunicorn (.ci/run does)"
                );
            }
            eprintln!("skipped: httpbin is not installed (see .ci/httpbin-requirements.txt)");
            return None;
        };
        let port = free_port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let dir =
            std::env::temp_dir().join(format!("leakless-httpbin-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cmd = Command::new(&gunicorn);
        cmd.args([
            "--bind",
            &addr.to_string(),
            "--workers",
            "2",
            "--log-level",
            "warning",
        ])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        let tls = mode.is_tls().then(|| {
            let ca = TestCa::new();
            std::fs::write(dir.join("cert.pem"), &ca.leaf_pem).unwrap();
            std::fs::write(dir.join("key.pem"), &ca.key_pem).unwrap();
            cmd.args(["--certfile", "cert.pem", "--keyfile", "key.pem"]);
            ca
        });
        cmd.arg("httpbin:app");
        let child = cmd.spawn().expect("gunicorn starts");
        let bin = Httpbin {
            child,
            addr,
            tls,
            dir,
        };
        // Ready when it accepts; gunicorn binds before its workers boot, and
        // the first request waits for one.
        let until = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < until, "gunicorn did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(bin)
    }

    fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    fn client(&self, mode: Mode, builder: ClientBuilder, seen: &Locals) -> Client {
        let builder = builder
            .observer(seen.clone())
            .timeout(Duration::from_secs(20));
        match &self.tls {
            Some(ca) => mode.builder_trusting(ca.ca_der(), builder),
            None => mode.builder_trusting(Vec::new(), builder),
        }
        .build()
        .unwrap()
    }
}

impl Drop for Httpbin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Our end of every connection the client got, to find them in the kernel.
/// A set: with the machine's ephemeral ports crowded (a suite leaves tens
/// of thousands in TIME_WAIT), a new connection to one server can take the
/// local port an earlier one to another server had, and a list would then
/// look the live one up twice.
#[derive(Clone, Default)]
struct Locals(Arc<Mutex<BTreeSet<SocketAddr>>>);

impl Observer for Locals {
    fn on_event(&self, _: &RequestInfo, event: &Event<'_>) {
        if let Event::GotConn {
            local_addr: Some(a),
            reused: false,
            ..
        } = event
        {
            self.0.lock().unwrap().insert(*a);
        }
    }
}

/// The pool at rest agrees with itself and with the kernel.
async fn assert_accounted(client: &Client, seen: &Locals, servers: &[SocketAddr]) {
    let s = wait_for_stats(client, "nothing in flight", nothing_in_flight).await;
    assert_consistent(&s);
    let locals = seen.0.lock().unwrap().clone();
    // The held sockets, the pool's count and the local addresses looked
    // up: all three in the failure message.
    let (held, ..) = wait_for(
        "the kernel to agree with the pool",
        || {
            let held: Vec<_> = servers
                .iter()
                .flat_map(|srv| sockets(locals.iter().copied(), *srv))
                .filter(|k| k.is_held())
                .collect();
            (held.len(), client.stats().total.open, held, locals.clone())
        },
        |(n, open, ..)| n == open,
    )
    .await;
    assert_eq!(held, s.open, "{s:?}");
}

async fn json_of(res: leakless::Response) -> Value {
    assert!(res.status().is_success(), "{}", res.status());
    res.json().await.unwrap()
}

async fn httpbin_redirect_chains_relative_absolute_and_to_another_port(mode: Mode) {
    let Some(bin) = Httpbin::start(mode) else {
        return;
    };
    let other = mode.server(Config::new());
    let seen = Locals::default();
    let builder = match &bin.tls {
        Some(_) => mode.builder(&other, Client::builder()),
        None => Client::builder(),
    };
    let client = bin.client(mode, builder, &seen);
    for path in [
        "/relative-redirect/3",
        "/absolute-redirect/3",
        "/redirect/2",
    ] {
        let res = client.get(bin.url(path)).send().await.unwrap();
        assert_eq!(res.url().path(), "/get", "{path}");
        let body = json_of(res).await;
        assert_eq!(body["url"], bin.url("/get"), "{path}");
    }
    let to = mode.url(&other, "/landed");
    let res = client
        .get(bin.url("/redirect-to"))
        .query(&[("url", to.as_str()), ("status_code", "307")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.url().as_str(), to);
    assert_eq!(res.text().await.unwrap(), "hello");
    assert_eq!(client.stats().total.redirects, 3 + 3 + 2 + 1);
    assert_accounted(&client, &seen, &[bin.addr, other.addr()]).await;
}
per_mode!(httpbin_redirect_chains_relative_absolute_and_to_another_port: h1, h1_tls);

async fn httpbin_gzip_brotli_and_deflate_are_decoded(mode: Mode) {
    let Some(bin) = Httpbin::start(mode) else {
        return;
    };
    let seen = Locals::default();
    let client = bin.client(mode, Client::builder(), &seen);
    for (path, flag) in [
        ("/gzip", "gzipped"),
        ("/brotli", "brotli"),
        ("/deflate", "deflated"),
    ] {
        let res = client.get(bin.url(path)).send().await.unwrap();
        assert_eq!(res.content_length(), None, "{path}: decoding");
        let body = json_of(res).await;
        assert_eq!(body[flag], true, "{path}: {body}");
    }
    assert_accounted(&client, &seen, &[bin.addr]).await;
}
per_mode!(httpbin_gzip_brotli_and_deflate_are_decoded: h1, h1_tls);

async fn httpbin_cookies_basic_auth_and_bearer(mode: Mode) {
    let Some(bin) = Httpbin::start(mode) else {
        return;
    };
    let seen = Locals::default();
    let client = bin.client(mode, Client::builder().cookie_store(true), &seen);
    // /cookies/set answers 302 to /cookies with Set-Cookie on the redirect.
    let res = client
        .get(bin.url("/cookies/set?flavour=oat&n=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(res).await,
        json!({"cookies": {"flavour": "oat", "n": "2"}})
    );
    let res = client
        .get(bin.url("/basic-auth/aladdin/sesame"))
        .basic_auth("aladdin", Some("sesame"))
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(res).await["authenticated"], true);
    let e = client
        .get(bin.url("/basic-auth/aladdin/sesame"))
        .basic_auth("aladdin", Some("wrong"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap_err();
    assert_eq!(e.status(), Some(leakless::StatusCode::UNAUTHORIZED));
    let res = client
        .get(bin.url("/bearer"))
        .bearer_auth("t0ken")
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(res).await["token"], "t0ken");
    assert_accounted(&client, &seen, &[bin.addr]).await;
}
per_mode!(httpbin_cookies_basic_auth_and_bearer: h1, h1_tls);

async fn httpbin_json_form_and_multipart_bodies(mode: Mode) {
    use leakless::multipart::{Form, Part};
    let Some(bin) = Httpbin::start(mode) else {
        return;
    };
    let seen = Locals::default();
    let client = bin.client(mode, Client::builder(), &seen);
    let res = client.get(bin.url("/json")).send().await.unwrap();
    assert!(json_of(res).await["slideshow"]["title"].is_string());
    let sent = json!({"pool": {"max_conns_per_host": 16}, "ok": true});
    let res = client
        .post(bin.url("/post"))
        .json(&sent)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(res).await["json"], sent);
    let res = client
        .post(bin.url("/post"))
        .form(&[("a", "1"), ("b", "two words")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(res).await["form"],
        json!({"a": "1", "b": "two words"})
    );
    let form = Form::new().text("title", "report").part(
        "data",
        Part::bytes(&b"1,2,3"[..])
            .file_name("data.csv")
            .mime_str("text/csv")
            .unwrap(),
    );
    let res = client
        .post(bin.url("/post"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    let body = json_of(res).await;
    assert_eq!(body["form"], json!({"title": "report"}));
    assert_eq!(body["files"], json!({"data": "1,2,3"}));
    assert_accounted(&client, &seen, &[bin.addr]).await;
}
per_mode!(httpbin_json_form_and_multipart_bodies: h1, h1_tls);
