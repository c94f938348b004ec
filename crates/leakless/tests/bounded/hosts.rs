//! A live host's bytes, and what a host leaves behind once gone.

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use leakless::{Client, RECENT_HOSTS};

use crate::{ServerProcess, alone, heap, wait_for};

/// GETs `path` once from each of the one-off hosts `hosts` (loopback
/// addresses 127.1.x.y, all reaching the server on 0.0.0.0), 32 at a time.
pub async fn one_request_each(
    client: &Client,
    port: u16,
    hosts: std::ops::Range<usize>,
    path: &str,
) {
    let mut set = tokio::task::JoinSet::new();
    for i in hosts {
        if set.len() == 32 {
            set.join_next().await.unwrap().unwrap();
        }
        let ip = Ipv4Addr::new(127, 1, (i >> 8) as u8, i as u8);
        let url = format!("http://{}{path}", SocketAddr::from((ip, port)));
        let client = client.clone();
        set.spawn(async move {
            let body = client.get(url).send().await.unwrap().bytes().await.unwrap();
            assert_eq!(body, "hello");
        });
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
}

#[test]
fn a_live_host_costs_a_bounded_number_of_bytes_and_a_gone_host_none() {
    alone(2, async {
        const HOSTS: usize = 2000;
        let server = ServerProcess::start();
        let client = Client::builder()
            .idle_conn_timeout(Duration::from_secs(3600))
            .max_idle_conns(HOSTS)
            .build()
            .unwrap();
        // Warm up: the runtime's and the client's lazily built parts, and a
        // full list of recent hosts, so the baseline holds what stays.
        let warm = 60_000..60_000 + RECENT_HOSTS;
        one_request_each(&client, server.port, warm, "/?close=1").await;
        wait_for(
            "warm-up hosts gone",
            || client.stats(),
            |s| s.hosts.is_empty(),
        )
        .await;
        let fds = crate::kernel::open_fds();
        let before = heap();

        // All live at once: each host has its idle connection.
        one_request_each(&client, server.port, 0..HOSTS, "/").await;
        let live = heap();
        let s = client.stats();
        assert_eq!(s.hosts.len(), HOSTS);
        assert_eq!(s.total.idle, HOSTS);
        drop(s);
        let per_live = (live - before) / HOSTS as isize;

        // Each host's last request closes its connection (`Connection:
        // close`): the host leaves with it.
        one_request_each(&client, server.port, 0..HOSTS, "/?close=1").await;
        let s = wait_for("every host gone", || client.stats(), |s| s.hosts.is_empty()).await;
        assert_eq!(s.total.open, 0);
        assert_eq!(s.total.created, (HOSTS + RECENT_HOSTS) as u64);
        assert_eq!(s.total.reused, HOSTS as u64);
        assert_eq!(s.total.created - s.total.closed, 0);
        assert_eq!(s.recent.len(), RECENT_HOSTS);
        drop(s);
        let after = heap();
        let left = after - before;
        println!(
            "{HOSTS} hosts: {per_live} bytes per live host (its idle connection included), \
         {left} bytes left once all gone ({} per gone host)",
            left / HOSTS as isize
        );
        // A live host: its entry, its counters and histograms, its idle
        // connection with its buffers and task.
        assert!(per_live < 64 * 1024, "{per_live} bytes per live host");
        // Gone: nothing per host (measured: 1 to 5 KiB whether 500 or 4,000
        // hosts came and went). The recent list is full before and after, its
        // keys a few bytes longer or shorter; the runtime keeps some slack.
        assert!(
            left.unsigned_abs() < 16 * 1024,
            "{left} bytes left after {HOSTS} hosts came and went"
        );
        assert_eq!(crate::kernel::open_fds(), fds, "every socket closed");
    })
}
