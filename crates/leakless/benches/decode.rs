//! What transparent gzip costs: a decoded response against the same
//! compressed bytes fetched raw (a caller-set Accept-Encoding) plus the
//! codec alone on those bytes (flate2, the same inflate as the client's
//! decoder). "decoded" should cost no more than "raw" + "codec".

use std::{io::Read, time::Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use leakless::Client;
use leakless_testserver::{Config, TestServer};

/// Decoded size: 256 KiB of the server's `hello` pattern.
const SIZE: usize = 256 * 1024;

fn decode(c: &mut Criterion) {
    let server = TestServer::start(Config::new().history(0));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = Client::new();
    let url = server.url(&format!("/?encoding=gzip&size={SIZE}"));
    let wire = rt.block_on(async {
        let res = client
            .get(url.as_str())
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        res.bytes().await.unwrap()
    });
    let mut g = c.benchmark_group(format!("gzip {SIZE} B decoded from {} B", wire.len()));
    g.bench_function("raw: the compressed body, not decoded", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let res = client
                        .get(url.as_str())
                        .header("accept-encoding", "gzip")
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.bytes().await.unwrap().len(), wire.len());
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("codec: inflating those bytes alone", |b| {
        let mut out = Vec::with_capacity(SIZE);
        b.iter(|| {
            out.clear();
            flate2::read::GzDecoder::new(&wire[..])
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out.len(), SIZE);
        })
    });
    g.bench_function("decoded: the response read through the decoder", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let res = client.get(url.as_str()).send().await.unwrap();
                    assert_eq!(res.bytes().await.unwrap().len(), SIZE);
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
