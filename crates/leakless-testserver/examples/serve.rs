//! Runs the test server in the foreground, for curl and wrk by hand until
//! `leakless serve` exists: `cargo run -p leakless-testserver --example serve
//! -- 127.0.0.1:8080`. Records nothing, so it can run for ever.

use leakless_testserver::{Config, TestServer};

fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let addr = addr.parse().expect("usage: serve [ADDR:PORT]");
    let server = TestServer::start_on(addr, Config::new().history(0).conn_headers(false))
        .expect("cannot listen");
    println!("listening on {}", server.url("/"));
    loop {
        std::thread::park();
    }
}
