//! Per-host state is freed: a host leaves the pool once nothing of it is
//! left (no connection open or dialing, nobody waiting, no stream), its
//! counts kept in `recent` and in the totals; many one-off hosts leave
//! nothing behind; the Prometheus counters never go down as hosts leave
//! and come back (checked by promtool's own `resets()`).

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::Duration,
};

use leakless::{CloseReason, PoolStats, RECENT_HOSTS};

use crate::support::*;

/// The `i`th of many loopback addresses (127.1.0.0 and up), all reaching
/// one server listening on 0.0.0.0: each is a host of its own to the pool.
fn loopback(i: usize) -> IpAddr {
    assert!(i < 1 << 16);
    IpAddr::V4(Ipv4Addr::new(127, 1, (i >> 8) as u8, i as u8))
}

/// A server on every address, port `0.0.0.0:port`, reached through the
/// loopback addresses of [`loopback`].
fn server_on_every_address(config: Config) -> TestServer {
    TestServer::start_on(SocketAddr::from(([0, 0, 0, 0], 0)), config).unwrap()
}

fn url(server: &TestServer, i: usize, path: &str) -> String {
    format!(
        "http://{}{path}",
        SocketAddr::new(loopback(i), server.addr().port())
    )
}

fn assert_all_consistent(s: &PoolStats) {
    assert_consistent(&s.total);
    for h in s.hosts.values().chain(s.recent.values()) {
        assert_consistent(h);
    }
}

async fn a_host_leaves_the_pool_with_its_last_connection(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let key = mode.host_key(server.addr());
    // close=1: `Connection: close` on HTTP/1.1, GOAWAY on HTTP/2.
    get_body(&client, mode.url(&server, "/?close=1")).await;
    let s = wait_for("the host gone", || client.stats(), |s| s.hosts.is_empty()).await;
    assert_all_consistent(&s);
    let gone = &s.recent[&key];
    assert_eq!(
        (gone.created, gone.closed, gone.open),
        (1, 1, 0),
        "{gone:?}"
    );
    assert_eq!(s.host(&key), Some(gone), "recent hosts answer `host()`");
    assert_eq!((s.total.created, s.total.closed), (1, 1));

    // It comes back carrying on its counts, and is live again.
    get_body(&client, mode.url(&server, "/")).await;
    let s = client.stats();
    assert_all_consistent(&s);
    assert!(!s.recent.contains_key(&key), "{s:#?}");
    let back = &s.hosts[&key];
    assert_eq!(
        (back.created, back.closed, back.open),
        (2, 1, 1),
        "{back:?}"
    );
}
per_mode!(a_host_leaves_the_pool_with_its_last_connection: h1, h1_tls, h2, h2c);

async fn an_idle_host_leaves_when_its_connection_expires(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(
        &server,
        Client::builder().idle_conn_timeout(Duration::from_millis(50)),
    );
    let key = mode.host_key(server.addr());
    get_body(&client, mode.url(&server, "/")).await;
    assert!(client.stats().hosts.contains_key(&key));
    let s = wait_for("the host gone", || client.stats(), |s| s.hosts.is_empty()).await;
    assert_all_consistent(&s);
    let gone = &s.recent[&key];
    assert_eq!(gone.closed_by.get(CloseReason::IdleTimeout), 1, "{gone:?}");
    server.wait_closed(1).await;
    assert_eq!(held_client_sockets(&server), vec![]);
}
per_mode!(an_idle_host_leaves_when_its_connection_expires: h1, h2c);

/// The HTTP/2 connection ends under a response still being read: the
/// entry goes at once, the host stays for the stream's claim, and leaves
/// with the response.
async fn a_response_outliving_its_h2_connection_keeps_its_host_until_dropped(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let key = mode.host_key(server.addr());
    let resp = client
        .get(mode.url(&server, "/?size=100&fault=stall_body&after=10"))
        .send()
        .await
        .unwrap();
    server.close_all_connections();
    let s = wait_for(
        "the connection gone",
        || client.stats(),
        |s| s.total.open == 0 && s.total.closed == 1,
    )
    .await;
    assert!(s.hosts.contains_key(&key), "the claim keeps it: {s:#?}");
    assert_eq!(client.outstanding().len(), 1);
    drop(resp);
    let s = client.stats();
    assert!(s.hosts.is_empty(), "{s:#?}");
    assert!(client.outstanding().is_empty());
    assert_all_consistent(&s);
}
per_mode!(a_response_outliving_its_h2_connection_keeps_its_host_until_dropped: h2, h2c);

/// Requests to `hosts` one-off hosts, 32 at a time.
async fn one_request_each(client: &Client, server: &TestServer, hosts: std::ops::Range<usize>) {
    let mut set = tokio::task::JoinSet::new();
    for i in hosts {
        if set.len() == 32 {
            set.join_next().await.unwrap().unwrap();
        }
        let (client, url) = (client.clone(), url(server, i, "/"));
        set.spawn(async move { get_body(&client, url).await });
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_off_hosts_leave_nothing_behind() {
    const HOSTS: usize = 2000;
    let server = server_on_every_address(Config::new().history(HOSTS));
    let client = Client::builder()
        .idle_conn_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    bounded(one_request_each(&client, &server, 0..HOSTS)).await;
    let s = wait_for("every host gone", || client.stats(), |s| s.hosts.is_empty()).await;
    assert_all_consistent(&s);
    assert_eq!(s.recent.len(), RECENT_HOSTS);
    assert_eq!(
        (s.total.created, s.total.closed, s.total.open),
        (HOSTS as u64, HOSTS as u64, 0)
    );
    assert_eq!(
        s.total.closed_by.get(CloseReason::IdleTimeout),
        HOSTS as u64
    );
    server.wait_closed(HOSTS as u64).await;
    assert_eq!(server.stats().accepted, HOSTS as u64);
    assert_eq!(held_client_sockets(&server), vec![]);
}

/// One scrape: every sample of a counter (`_total`) or histogram
/// (`_bucket`, `_count`, `_sum`) series, by its name and labels.
fn counters(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            let name = series.split('{').next().unwrap_or("");
            ["_total", "_bucket", "_count", "_sum"]
                .iter()
                .any(|s| name.ends_with(s))
        })
        .map(|(series, v)| (series.to_owned(), v.parse().unwrap()))
        .collect()
}

/// Hands the scrapes to promtool as a series each and asks Prometheus's
/// own `resets()` whether any counter went down.
fn promtool_finds_no_reset(scrapes: &[BTreeMap<String, f64>]) {
    let Some(promtool) = which("promtool") else {
        assert!(
            std::env::var_os("LEAKLESS_REQUIRE_PROMTOOL").is_none(),
            "promtool is required (apt-get install prometheus)"
        );
        eprintln!("skipped promtool: not installed (apt-get install prometheus)");
        return;
    };
    let mut yaml = String::from(
        "rule_files: []\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n",
    );
    for series in scrapes.last().unwrap().keys() {
        let values: Vec<String> = scrapes
            .iter()
            .map(|s| s.get(series).map_or("_".to_owned(), |v| v.to_string()))
            .collect();
        yaml += &format!(
            "      - series: '{series}'\n        values: '{}'\n",
            values.join(" ")
        );
    }
    // One query per metric: `resets` drops the name, and series of two
    // metrics with the same labels would collide.
    let names: std::collections::BTreeSet<&str> = scrapes
        .last()
        .unwrap()
        .keys()
        .map(|k| k.split('{').next().unwrap())
        .collect();
    yaml += "    promql_expr_test:\n";
    for name in names {
        yaml += &format!(
            "      - expr: 'resets({name}[1h]) > 0'\n        eval_time: {}m\n        exp_samples: []\n",
            scrapes.len() - 1
        );
    }
    let dir = std::env::temp_dir().join(format!("leakless-resets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("resets.yml");
    std::fs::write(&file, &yaml).unwrap();
    let out = std::process::Command::new(promtool)
        .args(["test", "rules"])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "promtool found a counter that went down:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn all_gone(client: &Client) {
    wait_for("every host gone", || client.stats(), |s| s.hosts.is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_counters_never_go_down_as_hosts_leave_and_come_back() {
    let server = server_on_every_address(Config::new());
    let client = Client::builder()
        .idle_conn_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let mut scrapes: Vec<BTreeMap<String, f64>> = Vec::new();
    let mut scrape = |what: &str| {
        let text = client.prometheus_text();
        let c = counters(&text);
        // The series add up to the total.
        let created: f64 = c
            .iter()
            .filter(|(k, _)| k.starts_with("leakless_connections_created_total{"))
            .map(|(_, v)| v)
            .sum();
        assert_eq!(
            created,
            client.stats().total.created as f64,
            "{what}:\n{text}"
        );
        scrapes.push(c);
    };

    // 60 hosts: the first 5 seen get names, 45 of the next 55 too, the
    // other 10 go under "other"; then all expire.
    bounded(one_request_each(&client, &server, 0..5)).await;
    scrape("5 hosts, live");
    bounded(one_request_each(&client, &server, 5..60)).await;
    scrape("60 hosts, live");
    all_gone(&client).await;
    scrape("60 hosts, gone (recent)");
    // 70 more push the first ones out of `recent`: forgotten.
    bounded(one_request_each(&client, &server, 60..130)).await;
    all_gone(&client).await;
    scrape("130 hosts, the first forgotten");
    // The first five come back from zero, named as before.
    bounded(one_request_each(&client, &server, 0..5)).await;
    scrape("5 back");
    all_gone(&client).await;
    scrape("5 gone again");

    promtool_finds_no_reset(&scrapes);
    // And no series vanishes (promtool reads a gap as no sample).
    for pair in scrapes.windows(2) {
        for (series, before) in &pair[0] {
            let now = pair[1].get(series).copied();
            assert!(
                now.is_some_and(|n| n >= *before),
                "{series} was {before}, then {now:?}"
            );
        }
    }
    let last = scrapes.last().unwrap();
    let named = last
        .keys()
        .filter(|k| k.starts_with("leakless_connections_created_total{"))
        .count();
    assert_eq!(named, 51, "50 named and other: {last:#?}");
    let first = url(&server, 0, "").trim_start_matches("http://").to_owned();
    assert_eq!(
        last[&format!("leakless_connections_created_total{{host=\"{first}\"}}")],
        2.0
    );
}
