//! PING and SETTINGS floods, measured. The server floods as fast as the
//! client reads and drops every byte the client sends, so nothing slows
//! the flood but the client, and nothing ends it but the client: the
//! request's `response_header_timeout`, then an unanswered ping that
//! closes the connection after `http2_keep_alive_timeout`.
//!
//! Each runs alone in a fresh process of this binary: memory is counted
//! per process, and the harness runs other tests on threads of this one.
//! The clients' CPU time is the test's thread's: their runtime has that
//! one thread; the test servers run on threads of their own.

use std::time::{Duration, Instant};

use leakless::Phase;
use leakless_testserver::{ConnFault, H2Flood};

use super::{SHORT, closed_and_counted, next_to_healthy, with_healthy};
use crate::support::*;

/// At least this many flood frames must reach the client: a leak of a
/// few dozen bytes per frame would show as megabytes.
const FLOODED: u64 = 100_000;
/// How far the process's peak RSS may rise over the flood (about 2 MiB
/// measured, with 130,000 to 350,000 frames).
const RSS_LIMIT_KIB: u64 = 8 * 1024;
/// The client's CPU time once the connection is closed, over [`AFTER`].
const AFTER: Duration = Duration::from_millis(300);
const CPU_AFTER_LIMIT: Duration = Duration::from_millis(30);
/// Room for a loaded machine's scheduling on top of a timeout: four
/// floods run at once on two shared cores, and one took 2.4 s in all
/// (for 0.6 s of timeouts) at a load average of 14.
const SLACK: Duration = Duration::from_secs(5);
/// The resolution of /proc's CPU times.
const TICK: Duration = Duration::from_millis(10);

fn in_a_process_of_its_own(test: &str) {
    let out = run_alone_in_a_fresh_process(
        &format!("hostile_h2::flood::alone::{test}"),
        &[],
        Duration::from_secs(60),
    );
    for line in out.lines().filter_map(|l| l.split_once("flood:")) {
        println!("flood:{}", line.1);
    }
}

mod a_ping_flood_costs_one_bounded_request_and_its_connection {
    #[test]
    fn h2() {
        super::in_a_process_of_its_own("ping_h2");
    }

    #[test]
    fn h2c() {
        super::in_a_process_of_its_own("ping_h2c");
    }
}

mod a_settings_flood_costs_one_bounded_request_and_its_connection {
    #[test]
    fn h2() {
        super::in_a_process_of_its_own("settings_h2");
    }

    #[test]
    fn h2c() {
        super::in_a_process_of_its_own("settings_h2c");
    }
}

/// The floods themselves, run alone by the tests above.
mod alone {
    use super::*;

    #[tokio::test]
    #[ignore = "run alone, in a process of its own, by a_ping_flood_costs_..."]
    async fn ping_h2() {
        flood(Mode::H2, H2Flood::Ping).await;
    }

    #[tokio::test]
    #[ignore = "run alone, in a process of its own, by a_ping_flood_costs_..."]
    async fn ping_h2c() {
        flood(Mode::H2c, H2Flood::Ping).await;
    }

    #[tokio::test]
    #[ignore = "run alone, in a process of its own, by a_settings_flood_costs_..."]
    async fn settings_h2() {
        flood(Mode::H2, H2Flood::Settings).await;
    }

    #[tokio::test]
    #[ignore = "run alone, in a process of its own, by a_settings_flood_costs_..."]
    async fn settings_h2c() {
        flood(Mode::H2c, H2Flood::Settings).await;
    }
}

async fn flood(mode: Mode, kind: H2Flood) {
    let server = mode.server(Config::new().conn_fault(ConnFault::H2Flood(kind)));
    let builder = Client::builder()
        .response_header_timeout(SHORT)
        .http2_keep_alive_timeout(SHORT);
    let (healthy, client) = with_healthy(mode, &server, builder);
    // The healthy host is asked meanwhile on the same thread by a client
    // with the default timeouts: on a loaded 2-core machine a request
    // can take longer than the hostile client's short ones, flood or not.
    let other = mode.client(&healthy, Client::builder());
    // Warm up both clients' connections and TLS, so the figures are the
    // flood's.
    get_body(&client, mode.url(&healthy, "/")).await;
    get_body(&other, mode.url(&healthy, "/")).await;
    let before = Usage::now();
    let start = Instant::now();
    let ((e, failed_after), healthy_slowest) = next_to_healthy(&other, mode, &healthy, async {
        let e = client.get(mode.url(&server, "/")).send().await.unwrap_err();
        (e, start.elapsed())
    })
    .await;
    assert!(e.is_timeout(), "{e:?}");
    assert_eq!(e.phase(), Some(Phase::ResponseHeaders), "{e:?}");
    assert!(
        failed_after >= SHORT && failed_after < SHORT + SLACK,
        "{failed_after:?}"
    );

    let s = closed_and_counted(&client, mode, &server).await;
    assert_eq!(s.closed_by.get(leakless::CloseReason::Timeout), 1, "{s:?}");
    let flood_took = start.elapsed();
    let during = Usage::now();
    let frames = server.stats().h2_flood_frames;
    assert!(
        frames >= FLOODED,
        "only {frames} frames: not much of a flood"
    );
    // The hostile client's other host was never touched.
    assert_eq!(get_body(&client, mode.url(&healthy, "/")).await, "hello");

    // Once closed, the flood costs nothing more.
    std::thread::sleep(AFTER);
    let after = Usage::now();
    let cpu_after = after.client_cpu - during.client_cpu;
    let cpu_during = during.client_cpu - before.client_cpu;
    let rss_rise = during.peak_rss_kib.saturating_sub(before.rss_kib);
    println!(
        "flood: {kind:?} {mode:?}: {frames} frames in {flood_took:?}; client CPU {cpu_during:?} \
         during, {cpu_after:?} in the {AFTER:?} after; peak RSS +{rss_rise} KiB \
         ({} -> {} KiB); slowest healthy request {healthy_slowest:?}",
        before.rss_kib, during.peak_rss_kib,
    );
    assert!(rss_rise < RSS_LIMIT_KIB, "RSS rose {rss_rise} KiB");
    // The flood can have the clients' one thread, for the request's
    // timeout and then the ping's, and not a moment after.
    assert!(flood_took < SHORT * 2 + SLACK, "{flood_took:?}");
    assert!(cpu_during <= flood_took + TICK, "{cpu_during:?}");
    assert!(
        cpu_after <= CPU_AFTER_LIMIT,
        "{cpu_after:?} after the close"
    );
}

/// What this process has used so far.
struct Usage {
    /// CPU time of the clients: the test's thread.
    client_cpu: Duration,
    rss_kib: u64,
    /// The highest RSS so far (VmHWM).
    peak_rss_kib: u64,
}

impl Usage {
    fn now() -> Usage {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let kib = |field: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
        };
        // The calling thread's: the test's, where its runtime (one
        // thread) runs every task of the clients.
        let ticks = cpu_ticks(&std::fs::read_to_string("/proc/thread-self/stat").unwrap());
        Usage {
            // USER_HZ, the unit of /proc's times, is 100 on every Linux ABI.
            client_cpu: Duration::from_millis(ticks * 10),
            rss_kib: kib("VmRSS:"),
            peak_rss_kib: kib("VmHWM:"),
        }
    }
}

/// utime + stime of a `/proc/.../stat` line (`pid (comm) state ...`): the
/// name may hold spaces, so fields count from the last parenthesis.
fn cpu_ticks(stat: &str) -> u64 {
    let (_, rest) = stat.rsplit_once(')').unwrap();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields[n - 3].parse::<u64>().unwrap();
    field(14) + field(15)
}
