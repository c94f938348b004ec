//! Serves a client's pool metrics on `/metrics` while it runs load against
//! the test server, so a Prometheus (or `curl`) can watch the pool.
//!
//! `cargo run --release --example metrics -- [ADDR]` (default 127.0.0.1:9898),
//! then `curl http://127.0.0.1:9898/metrics`. Stops by itself after 60 s.

use std::time::Duration;

use leakless::Client;
use leakless_testserver::{Config, TestServer};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9898".to_owned());
    let server = TestServer::start(Config::new().latency(Duration::from_millis(2)));
    let client = Client::builder().max_conns_per_host(8).build()?;
    let listener = TcpListener::bind(&addr).await?;
    println!(
        "metrics on http://{}/metrics; load against {}",
        listener.local_addr()?,
        server.addr()
    );

    // Some load so the numbers move: 16 workers, a few faults mixed in.
    for w in 0..16 {
        let (c, u) = (client.clone(), server.url("/"));
        tokio::spawn(async move {
            for i in 0u64.. {
                let q = if (w + i) % 50 == 0 {
                    "?fault=close"
                } else {
                    ""
                };
                if let Ok(res) = c.get(format!("{u}{q}")).send().await {
                    let _ = res.bytes().await;
                }
            }
        });
    }

    let serve = async {
        loop {
            let (mut sock, _) = listener.accept().await?;
            let client = client.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = sock.read(&mut buf).await;
                let body = client.prometheus_text();
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(body.as_bytes()).await;
            });
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    };
    tokio::select! {
        res = serve => res?,
        _ = tokio::time::sleep(Duration::from_secs(60)) => println!("done after 60 s"),
    }
    Ok(())
}
