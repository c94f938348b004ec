//! Chaos: each connection draws its own mischief and `n`, from a seed; the
//! mischief strikes at request `n` (or from the start), and is counted
//! when it does.

use std::time::Duration;

use leakless_testserver::{Chaos, Config, Mischief, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::client::Client;

/// Chaos with only `m` drawn.
fn only(m: Mischief, seed: u64) -> Chaos {
    Mischief::ALL.iter().fold(Chaos::new(seed), |c, &other| {
        c.weight(other, u32::from(other == m))
    })
}

fn struck(chaos: &Chaos, m: Mischief) -> u64 {
    chaos.struck().into_iter().find(|(k, _)| *k == m).unwrap().1
}

/// GETs on one connection until the server closes it; how many were
/// answered, the last with `Connection: close`.
async fn requests_until_closed(server: &TestServer) -> u64 {
    let mut c = Client::connect(server).await;
    for n in 1..=10 {
        let resp = c.get("/").await;
        assert_eq!(resp.body, b"hello");
        if resp.header("connection") == Some("close") {
            c.expect_eof().await;
            return n;
        }
    }
    panic!("still open after 10 requests");
}

#[tokio::test]
async fn close_after_requests_strikes_at_each_connections_own_request() {
    let chaos = only(Mischief::CloseAfterRequests, 7);
    let server = TestServer::start(Config::new().chaos(chaos.clone()));
    let mut seen = Vec::new();
    for _ in 0..12 {
        seen.push(requests_until_closed(&server).await);
    }
    assert!(seen.iter().all(|n| (1..=4).contains(n)), "{seen:?}");
    seen.sort();
    seen.dedup();
    assert!(seen.len() > 1, "each connection draws its own n: {seen:?}");
    assert_eq!(struck(&chaos, Mischief::CloseAfterRequests), 12);
    assert_eq!(struck(&chaos, Mischief::None), 0);
}

#[tokio::test]
async fn the_same_seed_draws_the_same_plans() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let chaos = only(Mischief::CloseAfterRequests, 42);
        let server = TestServer::start(Config::new().chaos(chaos));
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(requests_until_closed(&server).await);
        }
        runs.push(seen);
    }
    assert_eq!(runs[0], runs[1]);
}

/// How one GET on a raw connection ended.
#[derive(Debug, PartialEq)]
enum Got {
    /// A whole `hello` response.
    Answered,
    /// These bytes, then EOF.
    Cut(Vec<u8>),
    /// Nothing within the wait.
    Silent,
}

/// Sends a GET on `tcp` and reads what comes back within `wait`.
async fn get(tcp: &mut TcpStream, wait: Duration) -> Got {
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(wait, tcp.read(&mut chunk)).await {
            Err(_) if got.is_empty() => return Got::Silent,
            Err(_) => panic!("a partial answer, then silence: {got:?}"),
            Ok(Ok(0)) => return Got::Cut(got),
            Ok(Ok(n)) => got.extend_from_slice(&chunk[..n]),
            Ok(Err(e)) => panic!("{e}"),
        }
        if got.ends_with(b"\r\n\r\nhello") {
            return Got::Answered;
        }
    }
}

#[tokio::test]
async fn close_mid_head_sends_half_a_head_then_closes() {
    let chaos = only(Mischief::CloseMidHead, 3);
    let server = TestServer::start(Config::new().chaos(chaos.clone()));
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    let mut answered = 0;
    let got = loop {
        match get(&mut tcp, Duration::from_secs(5)).await {
            Got::Answered => answered += 1,
            other => break other,
        }
    };
    assert!(answered < 4, "it strikes at request 1 to 4: {answered}");
    assert_eq!(got, Got::Cut(b"HTTP/1.1 200 OK\r\nContent-Le".to_vec()));
    assert_eq!(struck(&chaos, Mischief::CloseMidHead), 1);
}

#[tokio::test]
async fn stall_leaves_its_request_unanswered_and_counts_it() {
    let chaos = only(Mischief::Stall, 5);
    let server = TestServer::start(Config::new().chaos(chaos.clone()));
    let mut tcp = TcpStream::connect(server.addr()).await.unwrap();
    let mut answered = 0;
    let got = loop {
        match get(&mut tcp, Duration::from_millis(300)).await {
            Got::Answered => answered += 1,
            other => break other,
        }
    };
    assert!(answered < 4, "it strikes at request 1 to 4: {answered}");
    assert_eq!(got, Got::Silent);
    assert_eq!(struck(&chaos, Mischief::Stall), 1);
}
