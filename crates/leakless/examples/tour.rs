//! A tour of leakless in one run: reuse, the per-host cap, bodies dropped
//! early, a pool-wait timeout, and the pool's own accounting.
//!
//! `cargo run --release --example tour`

use std::time::{Duration, Instant};

use leakless::{Client, CloseReason, HostStats};
use leakless_testserver::{Config, TestServer};

fn show(label: &str, s: &HostStats) {
    println!(
        "  {label:<28} open {:>2} (busy {}, idle {}, dialing {})  waiting {:>2}  created {:>2}  reused {:>4}  closed {:>2}",
        s.open, s.busy, s.idle, s.dialing, s.waiting, s.created, s.reused, s.closed
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), leakless::Error> {
    let server = TestServer::start(Config::new().latency(Duration::from_millis(2)));
    println!("test server on {}\n", server.addr());
    let client = Client::builder()
        .max_conns_per_host(8)
        .pool_wait_timeout(Duration::from_millis(300))
        .build()?;

    println!("1. A burst of 400 requests, 64 at a time, against a cap of 8 connections:");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..400 {
        let (c, url) = (client.clone(), server.url("/"));
        tasks.push(tokio::spawn(async move {
            c.get(url).send().await?.bytes().await
        }));
        if i % 64 == 63 {
            for t in tasks.drain(..) {
                t.await.expect("task")?;
            }
        }
    }
    for t in tasks {
        t.await.expect("task")?;
    }
    println!(
        "  400 responses in {:?}; the server accepted {} connections",
        started.elapsed(),
        server.stats().accepted
    );
    show("after the burst", &client.stats().total);

    println!("\n2. Bodies dropped unread: a small one is drained and reused, a big one is closed:");
    let small = client.get(server.url("/?size=1000")).send().await?;
    let big = client.get(server.url("/?size=1000000")).send().await?;
    drop(small);
    drop(big);
    // The small body drains in the background; wait for it to come back.
    while client.stats().total.busy > 0 {
        tokio::task::yield_now().await;
    }
    let s = client.stats().total;
    println!(
        "  closed because too big to drain: {}; reused after draining: the rest",
        s.closed_by.get(CloseReason::DrainFailed)
    );
    show("after the drops", &s);

    println!("\n3. Hold all 8 connections (responses unread) and ask for a 9th:");
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(client.get(server.url("/")).send().await?);
    }
    show("holding 8 responses", &client.stats().total);
    match client.get(server.url("/")).send().await {
        Ok(_) => println!("  unexpected: got a 9th connection"),
        Err(e) => println!("  error, as it should be:\n    {e}"),
    }
    drop(held);
    tokio::task::yield_now().await;

    println!("\n4. The server closes after every response (Connection: close):");
    server.update_config(|c| *c = c.clone().max_requests_per_conn(1));
    for _ in 0..5 {
        client.get(server.url("/")).send().await?.bytes().await?;
    }
    let s = client.stats().total;
    println!(
        "  closed as not reusable: {}",
        s.closed_by.get(CloseReason::NotReusable)
    );

    println!("\nThe pool's books, per close reason:");
    for (reason, n) in s.closed_by.iter().filter(|(_, n)| *n > 0) {
        println!("  {:<22} {n}", reason.as_str());
    }
    show("at the end", &s);
    println!("  open = dialing + busy + idle, and created - closed = open: always.");
    Ok(())
}
