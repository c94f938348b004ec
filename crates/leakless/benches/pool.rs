//! Checkout + return of an idle connection: the pool's hot path, without
//! I/O. Uncontended, and with two threads contending for one host.

use std::{
    sync::{Arc, Barrier},
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use leakless::__private::PoolBench;

fn setup(conns: usize) -> (PoolBench, std::net::TcpListener, tokio::runtime::Runtime) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bench = rt.block_on(PoolBench::new(listener.local_addr().unwrap(), conns));
    (bench, listener, rt)
}

fn checkout_return(c: &mut Criterion) {
    let (bench, _listener, _rt) = setup(1);
    c.bench_function("checkout+return/uncontended", |b| {
        b.iter(|| bench.checkout_release())
    });

    let (bench, _listener, _rt) = setup(2);
    let bench = Arc::new(bench);
    c.bench_function("checkout+return/2 threads contending", |b| {
        b.iter_custom(|iters| {
            let barrier = Arc::new(Barrier::new(2));
            let other = std::thread::spawn({
                let (bench, barrier) = (bench.clone(), barrier.clone());
                move || {
                    barrier.wait();
                    for _ in 0..iters {
                        bench.checkout_release();
                    }
                }
            });
            barrier.wait();
            let start = Instant::now();
            for _ in 0..iters {
                bench.checkout_release();
            }
            let mine = start.elapsed();
            other.join().unwrap();
            mine.max(Duration::from_nanos(1))
        })
    });
}

criterion_group!(benches, checkout_return);
criterion_main!(benches);
