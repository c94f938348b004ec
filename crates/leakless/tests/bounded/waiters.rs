//! 10,000 requests in flight against `max_conns_per_host(100)`: the
//! kernel never sees more than 100 of the client's sockets (sampled from
//! another thread, each found by its 4-tuple), waiters are served first
//! in, first out, each waiter costs a bounded number of bytes, and
//! dropping them all at once, or letting them all time out, leaves
//! nothing behind.
//!
//! The client runs on a current-thread runtime, so the requests' tasks
//! first run, and queue, in the order they were spawned.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use leakless::{Client, HostStats};
use leakless_testserver::{Config, TestServer};
use tokio::task::JoinSet;

use crate::{
    alone, heap,
    kernel::{client_sockets, held_client_sockets},
    wait_for,
};

const REQUESTS: usize = 10_000;
const CONNS: usize = 100;

/// Samples how many of the client's sockets to `server` the kernel holds,
/// from another thread, while `run` runs; returns `run`'s output and the
/// most seen at once.
async fn sampling_sockets<T>(server: &Arc<TestServer>, run: impl Future<Output = T>) -> (T, usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = std::thread::spawn({
        let (server, stop) = (server.clone(), stop.clone());
        move || {
            let mut most = 0;
            while !stop.load(Ordering::Relaxed) {
                most = most.max(held_client_sockets(&server).len());
                std::thread::sleep(Duration::from_millis(1));
            }
            most
        }
    });
    let out = run.await;
    stop.store(true, Ordering::Relaxed);
    (out, sampler.join().unwrap())
}

fn client(wait: Duration) -> Client {
    Client::builder()
        .max_conns_per_host(CONNS)
        .pool_wait_timeout(wait)
        .build()
        .unwrap()
}

fn nothing_left(s: &HostStats) -> bool {
    s.open == 0 && s.waiting == 0 && s.h2_streams == 0
}

#[test]
fn ten_thousand_requests_through_a_hundred_sockets_are_served_first_in_first_out() {
    alone(0, async { first_in_first_out().await });
}

async fn first_in_first_out() {
    let server = Arc::new(TestServer::start(Config::new().history(0)));
    let client = client(Duration::from_secs(120));
    // The first 100 requests hold their connections (bodies unread) until
    // all the others are queued; from then on every request takes 20 ms.
    let url = server.url("/?latency_ms=20");
    let (release, held) = tokio::sync::watch::channel(false);
    let run = async {
        let mut set = JoinSet::new();
        for i in 0..REQUESTS {
            let (client, url, mut held) = (client.clone(), url.clone(), held.clone());
            set.spawn(async move {
                let resp = client.get(url).send().await.unwrap();
                if i < CONNS {
                    held.wait_for(|go| *go).await.unwrap();
                }
                assert_eq!(resp.bytes().await.unwrap(), "hello");
                (i, Instant::now())
            });
        }
        wait_for(
            "every other request queued",
            || client.stats().total,
            |s| s.waiting == REQUESTS - CONNS,
        )
        .await;
        let start = Instant::now();
        release.send(true).unwrap();
        let mut done = vec![Duration::ZERO; REQUESTS];
        while let Some(r) = set.join_next().await {
            let (i, at) = r.unwrap();
            done[i] = at.saturating_duration_since(start);
        }
        (done, start.elapsed())
    };
    let ((done, total), most) = sampling_sockets(&server, run).await;
    let s = client.stats().total;
    assert!(
        most <= CONNS,
        "the kernel saw {most} of our sockets at once"
    );
    assert!(most >= CONNS * 9 / 10, "the cap was reached: {most}");
    assert_eq!(s.created, CONNS as u64, "{s:?}");
    assert_eq!(server.stats().accepted, CONNS as u64);

    // Fair share: first in, first out over 100 connections, waiter w
    // (request 100 + w) is served in round w / 100 after the release, each
    // round taking the run's time over its rounds.
    let rounds = (REQUESTS - CONNS) / CONNS;
    let round = total / rounds as u32;
    let mut worst = (0.0f64, 0);
    for (i, at) in done.iter().enumerate().skip(CONNS) {
        let fair = round * ((i - CONNS) / CONNS + 1) as u32;
        let ratio = at.as_secs_f64() / fair.as_secs_f64();
        if ratio > worst.0 {
            worst = (ratio, i);
        }
    }
    // And by order alone, whatever the machine's speed: how far behind
    // its place in the queue each request finished.
    let mut by_end: Vec<usize> = (CONNS..REQUESTS).collect();
    by_end.sort_by_key(|&i| done[i]);
    let late = by_end
        .iter()
        .enumerate()
        .map(|(rank, &i)| rank.saturating_sub(i - CONNS))
        .max()
        .unwrap();
    let longest = done.iter().max().unwrap();
    println!(
        "{REQUESTS} requests over {CONNS} connections, {} waiting: served in {total:.2?} \
         ({round:.1?} a round); at most {most} sockets; the longest wait {longest:.2?}; \
         the worst against its fair share was request {} at {:.2}x ({:.1?}); none finished \
         more than {late} places behind its place in the queue",
        REQUESTS - CONNS,
        worst.1,
        worst.0,
        done[worst.1]
    );
    // First in, first out: at most a round (100 in service at once) out of
    // place, and each within a small factor of its fair share; a LIFO queue
    // would finish the first waiter about 9,900 places and 99x late.
    assert!(late <= 2 * CONNS, "a request finished {late} places late");
    assert!(
        worst.0 < 10.0,
        "request {} took {:.2}x its fair share",
        worst.1,
        worst.0
    );
    assert!(longest.as_secs_f64() < total.as_secs_f64() * 1.01);
}

#[test]
fn each_waiter_costs_a_bounded_number_of_bytes_and_dropping_all_leaves_nothing() {
    alone(0, async {
        let server = TestServer::start(Config::new().history(0));
        let client = client(Duration::from_secs(120));
        let stalled = server.url("/?fault=stall");
        // Warm up, then the baseline: the host has come and gone once, and the
        // runtime's run queue has held 10,000 tasks (it keeps that room).
        let warm = client.get(server.url("/?close=1")).send().await.unwrap();
        warm.bytes().await.unwrap();
        let mut set = JoinSet::new();
        for _ in 0..REQUESTS {
            set.spawn(tokio::task::yield_now());
        }
        while set.join_next().await.is_some() {}
        wait_for(
            "warm-up host gone",
            || client.stats(),
            |s| s.hosts.is_empty(),
        )
        .await;
        server.wait_closed(1).await;
        let before = heap();

        let mut set = JoinSet::new();
        let spawn = |set: &mut JoinSet<_>, n: usize| {
            for _ in 0..n {
                let (client, url) = (client.clone(), stalled.clone());
                set.spawn(async move { client.get(url).send().await.map(drop) });
            }
        };
        spawn(&mut set, CONNS);
        server
            .wait_for(Duration::from_secs(60), |s| s.requests == CONNS as u64 + 1)
            .await
            .unwrap();
        let holding = heap();
        spawn(&mut set, REQUESTS - CONNS);
        let s = wait_for(
            "every waiter queued",
            || client.stats().total,
            |s| s.waiting == REQUESTS - CONNS,
        )
        .await;
        let waiting = heap();
        assert_eq!((s.busy, s.open), (CONNS, CONNS), "{s:?}");
        let sockets = held_client_sockets(&server).len();
        assert_eq!(sockets, CONNS);
        let per_waiter = (waiting - holding) / (REQUESTS - CONNS) as isize;
        let per_request = (holding - before) / CONNS as isize;

        // All dropped at once: the waiters leave the queue, the requests in
        // flight close their connections.
        set.abort_all();
        while set.join_next().await.is_some() {}
        let s = wait_for(
            "nothing left in the pool",
            || client.stats(),
            |s| nothing_left(&s.total) && s.hosts.is_empty(),
        )
        .await;
        assert_eq!(s.total.created - s.total.closed, 0, "{s:?}");
        server
            .wait_for(Duration::from_secs(60), |s| s.open == 0)
            .await
            .unwrap();
        let held: Vec<_> = client_sockets(&server)
            .into_iter()
            .filter(|s| s.is_held())
            .collect();
        assert_eq!(held, vec![]);
        drop(s);
        let left = heap() - before;
        println!(
            "a waiting request costs {per_waiter} bytes (its task and future included); one holding \
         a connection {per_request} bytes (the server's side included); {left} bytes left once \
         all {REQUESTS} were dropped"
        );
        assert!(per_waiter < 16 * 1024, "{per_waiter} bytes per waiter");
        assert!(left.unsigned_abs() < 16 * 1024, "{left} bytes left");
    })
}

#[test]
fn waiters_that_time_out_get_the_pools_counts_and_leak_no_slot() {
    alone(0, async {
        let server = TestServer::start(Config::new().history(0));
        let wait = Duration::from_millis(500);
        let client = client(wait);
        let stalled = server.url("/?fault=stall");
        let mut holders = JoinSet::new();
        for _ in 0..CONNS {
            let (client, url) = (client.clone(), stalled.clone());
            holders.spawn(async move { client.get(url).send().await.map(drop) });
        }
        server
            .wait_for(Duration::from_secs(60), |s| s.requests == CONNS as u64)
            .await
            .unwrap();
        let mut waiters = JoinSet::new();
        for _ in CONNS..REQUESTS {
            let (client, url) = (client.clone(), stalled.clone());
            waiters.spawn(async move { client.get(url).send().await.map(drop) });
        }
        let mut timed_out = 0;
        while let Some(r) = waiters.join_next().await {
            let e = r.unwrap().expect_err("no connection ever frees up");
            assert!(e.is_pool_wait(), "{e}");
            let p = e
                .pool_state()
                .expect("a pool-wait error carries the counts");
            assert_eq!(
                (p.limit, p.busy, p.dialing, p.idle),
                (CONNS, CONNS, 0, 0),
                "{p:?}"
            );
            assert!(p.waiting >= 1, "the waiter itself is counted: {p:?}");
            timed_out += 1;
        }
        assert_eq!(timed_out, REQUESTS - CONNS);
        let s = client.stats().total;
        assert_eq!((s.open, s.busy, s.waiting), (CONNS, CONNS, 0), "{s:?}");
        assert_eq!(s.created, CONNS as u64);
        assert_eq!(server.stats().accepted, CONNS as u64);

        // No slot leaked: with the holders gone, everything is closed and
        // counted, and a new request dials.
        holders.abort_all();
        while holders.join_next().await.is_some() {}
        let s = wait_for("the holders gone", || client.stats().total, nothing_left).await;
        assert_eq!((s.created, s.closed), (CONNS as u64, CONNS as u64), "{s:?}");
        let body = client.get(server.url("/")).send().await.unwrap();
        assert_eq!(body.bytes().await.unwrap(), "hello");
        assert_eq!(client.stats().total.created, CONNS as u64 + 1);
    })
}
