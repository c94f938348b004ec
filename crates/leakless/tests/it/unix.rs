//! `unix_socket`: every request to one unix socket, against nginx
//! listening on unix sockets (plain HTTP/1.1, and TLS with h2 or
//! http/1.1 by ALPN); the Host header comes from the URL and the pool
//! keys connections by the socket's path.

use std::path::PathBuf;

use leakless::Client;

use crate::{
    nginx::Nginx,
    support::{Mode, TestCa},
};

/// nginx on two unix sockets: `plain.sock` and `tls.sock` (a certificate
/// for localhost from `ca`). `/host` answers the Host header it got.
fn nginx_on_unix_sockets(ca: &TestCa) -> Option<(Nginx, PathBuf, PathBuf)> {
    let mut socks = None;
    let nginx = Nginx::start_with(|port, dir| {
        std::fs::write(dir.join("cert.pem"), &ca.leaf_pem).unwrap();
        std::fs::write(dir.join("key.pem"), &ca.key_pem).unwrap();
        let d = dir.display();
        socks = Some((dir.join("plain.sock"), dir.join("tls.sock")));
        let locations = "location / { return 200 \"hello\"; }\n    \
                         location /host { return 200 \"$http_host\"; }";
        format!(
            "  server {{\n    listen 127.0.0.1:{port};\n    listen unix:{d}/plain.sock;\n    \
             {locations}\n  }}\n  server {{\n    listen unix:{d}/tls.sock ssl http2;\n    \
             ssl_certificate {d}/cert.pem;\n    ssl_certificate_key {d}/key.pem;\n    \
             {locations}\n  }}"
        )
    })?;
    let (plain, tls) = socks.unwrap();
    Some((nginx, plain, tls))
}

async fn requests_go_to_the_unix_socket_with_the_host_from_the_url(mode: Mode) {
    let ca = TestCa::new();
    let Some((_nginx, plain, tls)) = nginx_on_unix_sockets(&ca) else {
        return;
    };
    let path = if mode.is_tls() { tls } else { plain };
    let builder = mode.builder_trusting(ca.ca_der(), Client::builder().unix_socket(&path));
    let client = builder.build().unwrap();
    let scheme = if mode.is_tls() { "https" } else { "http" };
    for _ in 0..3 {
        let res = client
            .get(format!("{scheme}://localhost:8080/host"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.version(), mode.version());
        assert_eq!(res.text().await.unwrap(), "localhost:8080");
    }
    let stats = client.stats();
    let prefix = if mode.is_tls() { "https://" } else { "" };
    let key = format!("{prefix}localhost:8080 via unix:{}", path.display());
    let s = stats
        .host(&key)
        .unwrap_or_else(|| panic!("{key} not in {:?}", stats.hosts.keys()));
    assert_eq!((s.created, s.open), (1, 1), "{s:?}");
    // Another host name is another pool entry on the same socket.
    let res = client.get(format!("{scheme}://other.test/")).send().await;
    if mode.is_tls() {
        // The certificate is for localhost only.
        assert!(res.is_err());
    } else {
        assert_eq!(res.unwrap().text().await.unwrap(), "hello");
        assert_eq!(client.stats().total.created, 2);
    }
}
per_mode!(requests_go_to_the_unix_socket_with_the_host_from_the_url: h1, h1_tls, h2);

#[tokio::test]
async fn a_missing_unix_socket_is_a_connect_error_that_names_it() {
    let path = std::env::temp_dir().join(format!("leakless-no-such-{}.sock", std::process::id()));
    let client = Client::builder().unix_socket(&path).build().unwrap();
    let e = client.get("http://localhost/").send().await.unwrap_err();
    assert!(e.is_connect(), "{e}");
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    let s = client.stats().total;
    assert_eq!((s.open, s.created, s.closed), (0, 1, 1), "{s:?}");
}
