//! What watching costs: the same GET loop with nothing attached, with an
//! observer, and with a tracing subscriber that records every span and
//! event. The bar: with no observer, watching must cost nothing measurable (< 2%).

use std::{hint::black_box, time::Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use leakless::{Client, Event, Observer, RequestInfo};
use leakless_testserver::{Config, TestServer};

struct Counting;

impl Observer for Counting {
    fn on_event(&self, _: &RequestInfo, event: &Event<'_>) {
        black_box(event);
    }
}

fn run(c: &mut Criterion, name: &str, client: Client, url: &str, rt: &tokio::runtime::Runtime) {
    c.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    client.get(url).send().await.unwrap().bytes().await.unwrap();
                }
                start.elapsed()
            })
        })
    });
}

fn observe(c: &mut Criterion) {
    let server = TestServer::start(Config::new().history(0));
    let url = server.url("/");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    run(c, "GET, nothing attached", Client::new(), &url, &rt);
    run(
        c,
        "GET, observer",
        Client::builder().observer(Counting).build().unwrap(),
        &url,
        &rt,
    );
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(std::io::sink)
        .finish();
    tracing::subscriber::with_default(sub, || {
        run(
            c,
            "GET, tracing subscriber (debug)",
            Client::new(),
            &url,
            &rt,
        );
    });
}

criterion_group!(benches, observe);
criterion_main!(benches);
