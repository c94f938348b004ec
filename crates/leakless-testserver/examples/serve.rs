//! Runs the test server in the foreground, for curl, wrk and h2load by hand
//! until `leakless serve` exists: `cargo run -p leakless-testserver
//! --example serve -- 127.0.0.1:8080 [--tls]`. Records nothing, so it can
//! run for ever. HTTP/2 with prior knowledge is always on (`curl
//! --http2-prior-knowledge`); `--tls` adds HTTPS on the same port and
//! writes the CA to trust next to the system's temporary files.

use leakless_testserver::{Config, TestServer};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut addr = "127.0.0.1:8080".to_owned();
    let mut tls = false;
    for arg in args.by_ref() {
        match arg.as_str() {
            "--tls" => tls = true,
            _ => addr = arg,
        }
    }
    let addr = addr.parse().expect("usage: serve [ADDR:PORT] [--tls]");
    let config = Config::new().history(0).conn_headers(false).tls(tls);
    let server = TestServer::start_on(addr, config).expect("cannot listen");
    println!("listening on {}", server.url("/"));
    if tls {
        let ca = std::env::temp_dir().join("leakless-testserver-ca.pem");
        std::fs::write(&ca, server.ca_cert_pem()).expect("cannot write the CA");
        println!("and on {}", server.https_url("/"));
        println!("curl --cacert {} {}", ca.display(), server.https_url("/"));
    }
    loop {
        std::thread::park();
    }
}
