//! `leakless-peers CLIENT URL CONCURRENCY SECONDS [h2c]`: CONCURRENCY tasks on
//! one thread, each sending GETs back to back for SECONDS; prints one line:
//! `client=.. conc=.. requests=.. errors=.. secs=.. cpu_us=..`. SECONDS
//! written `Nreq` sends N requests in all instead (scripts/per-request).

use std::{
    cell::Cell,
    rc::Rc,
    time::{Duration, Instant},
};

fn cpu_micros() -> u64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    us(u.ru_utime) + us(u.ru_stime)
}

enum Peer {
    Leakless(leakless::Client),
    Reqwest(reqwest::Client),
}

impl Peer {
    async fn get(&self, url: &str) -> Result<usize, String> {
        match self {
            Peer::Leakless(c) => {
                let res = c.get(url).send().await.map_err(|e| e.to_string())?;
                Ok(res.bytes().await.map_err(|e| e.to_string())?.len())
            }
            Peer::Reqwest(c) => {
                let res = c.get(url).send().await.map_err(|e| e.to_string())?;
                Ok(res.bytes().await.map_err(|e| e.to_string())?.len())
            }
        }
    }
}

/// An HTTP/2 window to try instead of the client's default (`scripts/h2-windows`).
fn env_u32(name: &str) -> Option<u32> {
    std::env::var(name).ok().map(|v| v.parse().expect("a number of bytes"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("usage: leakless-peers leakless|reqwest URL CONCURRENCY SECONDS [h2c]");
        std::process::exit(2);
    }
    let (which, url, conc) = (args[1].clone(), args[2].clone(), args[3].parse::<usize>().unwrap());
    // A count of requests, or seconds.
    let (count, secs) = match args[4].strip_suffix("req") {
        Some(n) => (Some(n.parse::<u64>().unwrap()), f64::INFINITY),
        None => (None, args[4].parse::<f64>().unwrap()),
    };
    let h2c = args.get(5).is_some_and(|a| a == "h2c");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let peer = Rc::new(match which.as_str() {
            "leakless" if h2c => Peer::Leakless(
                leakless::Client::builder()
                    .http2_prior_knowledge()
                    .max_conns_per_host(1)
                    .http2_initial_stream_window_size(env_u32("H2_STREAM_WINDOW"))
                    .http2_initial_connection_window_size(env_u32("H2_CONN_WINDOW"))
                    .build()
                    .unwrap(),
            ),
            "leakless" => Peer::Leakless(leakless::Client::builder().max_conns_per_host(conc.max(1)).build().unwrap()),
            "reqwest" => {
                let b = reqwest::Client::builder();
                let b = if h2c { b.http2_prior_knowledge() } else { b.http1_only() };
                Peer::Reqwest(b.build().unwrap())
            }
            other => panic!("unknown client {other}"),
        });
        // Warm up: open the connections before measuring.
        let _ = peer.get(&url).await;
        let (ok, errors) = (Rc::new(Cell::new(0u64)), Rc::new(Cell::new(0u64)));
        let cpu0 = cpu_micros();
        let start = Instant::now();
        let end = start + Duration::from_secs_f64(secs.min(1e9));
        let tickets = Rc::new(Cell::new(count.unwrap_or(u64::MAX)));
        let local = tokio::task::LocalSet::new();
        for _ in 0..conc {
            let (peer, url, ok, errors, tickets) =
                (peer.clone(), url.clone(), ok.clone(), errors.clone(), tickets.clone());
            local.spawn_local(async move {
                while tickets.get() > 0 && (count.is_some() || Instant::now() < end) {
                    tickets.set(tickets.get() - 1);
                    match peer.get(&url).await {
                        Ok(_) => ok.set(ok.get() + 1),
                        Err(e) => {
                            if errors.get() == 0 {
                                eprintln!("first error: {e}");
                            }
                            errors.set(errors.get() + 1);
                        }
                    }
                }
            });
        }
        local.await;
        let elapsed = start.elapsed().as_secs_f64();
        let cpu = cpu_micros() - cpu0;
        println!(
            "client={which} conc={conc} requests={} errors={} secs={elapsed:.3} cpu_us={cpu}",
            ok.get(),
            errors.get()
        );
    });
}
