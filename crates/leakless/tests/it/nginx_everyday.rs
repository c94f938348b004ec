//! Redirects and gzip from a real nginx (`return 301..308`, `gzip on`),
//! over HTTP/1.1: a server nobody here wrote.

use leakless::{Client, Method};

use crate::nginx::Nginx;
use crate::support::*;

fn nginx() -> Option<Nginx> {
    Nginx::start_with(|port, _| {
        let mut locations = String::new();
        for status in [301, 302, 303, 307, 308] {
            locations += &format!("    location = /{status} {{ return {status} /method; }}\n");
        }
        format!(
            "  default_type text/plain;\n  gzip on;\n  gzip_types text/plain;\n  gzip_min_length 1;\n\
             server {{\n    listen 127.0.0.1:{port};\n{locations}\
                 location = /method {{ return 200 \"$request_method\"; }}\n\
                 location = /chain {{ return 302 /301; }}\n\
                 location = /text {{ return 200 \"{}\"; }}\n\
                 location / {{ return 200 \"hello\"; }}\n  }}",
            // nginx reads its config in 4 KiB pieces: one token must fit.
            "hello nginx ".repeat(200)
        )
    })
}

#[tokio::test]
async fn nginx_redirects_follow_gos_method_rules() {
    let Some(nginx) = nginx() else { return };
    let client = Client::new();
    for (status, method) in [
        (301, "GET"),
        (302, "GET"),
        (303, "GET"),
        (307, "POST"),
        (308, "POST"),
    ] {
        let res = client
            .request(Method::POST, nginx.url(&format!("/{status}")))
            .body("data")
            .send()
            .await
            .unwrap();
        assert_eq!(res.url().path(), "/method", "{status}");
        assert_eq!(res.text().await.unwrap(), method, "{status}");
    }
    let res = client.get(nginx.url("/chain")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "GET");
    let s = client.stats().total;
    assert_eq!((s.redirects, s.created), (7, 1), "{s:?}");
    assert_consistent(&s);
}

#[tokio::test]
async fn nginx_gzip_is_decoded_and_its_connection_reused() {
    let Some(nginx) = nginx() else { return };
    let client = Client::new();
    for _ in 0..3 {
        let res = client.get(nginx.url("/text")).send().await.unwrap();
        assert_eq!(res.content_length(), None, "gzip on: decoded");
        assert_eq!(res.text().await.unwrap(), "hello nginx ".repeat(200));
    }
    let raw = client
        .get(nginx.url("/text"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.headers()["content-encoding"], "gzip");
    let wire = raw.bytes().await.unwrap();
    assert!(
        wire.len() < 2400 && wire[..2] == [0x1f, 0x8b],
        "{}",
        wire.len()
    );
    let s = client.stats().total;
    assert_eq!((s.created, s.reused, s.idle), (1, 3, 1), "{s:?}");
    assert_consistent(&s);
}
