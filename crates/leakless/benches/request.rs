//! A full GET against the test server on loopback: checkout, write, parse,
//! body, return. The server runs on its own thread.

use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use leakless::Client;
use leakless_testserver::{Config, TestServer};

fn request(c: &mut Criterion) {
    let server = TestServer::start(Config::new().history(0));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = Client::new();
    let url = server.url("/");
    c.bench_function("GET 5-byte body, reused connection", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let res = client.get(url.as_str()).send().await.unwrap();
                    assert_eq!(res.bytes().await.unwrap().len(), 5);
                }
                start.elapsed()
            })
        })
    });
}

criterion_group!(benches, request);
criterion_main!(benches);
