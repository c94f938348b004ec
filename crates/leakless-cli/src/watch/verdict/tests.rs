//! The verdict rules on synthetic series: each misbehaviour, its healthy
//! look-alike, and the edges (too early, other processes on the remote).

use super::*;
use crate::sockets::TcpState;
use crate::watch::series::{EndpointSample, Obs, SockState};

const DT: f64 = 0.2;

fn ctx() -> Ctx {
    Ctx {
        fds_open: Some(100),
        fd_limit: Some(1024),
        port_range: (32768, 60999),
        others_on_remote: false,
    }
}

fn at<'a>(t: f64, socks: &'a [Obs], tw: &'a [u64], baseline: bool) -> EndpointSample<'a> {
    EndpointSample {
        t,
        socks,
        tw_unattributed: tw,
        baseline,
        ..EndpointSample::default()
    }
}

fn ep() -> Endpoint {
    Endpoint::Remote("127.0.0.1:8080".parse().unwrap())
}

fn o(cookie: u64, state: TcpState, recv_q: u32, idle: f64) -> Obs {
    Obs {
        cookie,
        state: state.into(),
        recv_q,
        idle_s: Some(idle),
        recv_idle_s: Some(idle),
    }
}

/// Runs `steps` samples DT apart; `f(t)` gives (sockets, unattributed TW).
fn run(
    steps: usize,
    mut f: impl FnMut(usize, f64) -> (Vec<Obs>, Vec<u64>),
) -> (EndpointSeries, Vec<Verdict>) {
    let mut s = EndpointSeries::default();
    let mut verdicts = Vec::new();
    for i in 0..steps {
        let t = i as f64 * DT;
        let (socks, tw) = f(i, t);
        s.observe(&at(t, &socks, &tw, i == 0));
        verdicts.push(judge(&ep(), &s, &ctx()));
    }
    (s, verdicts)
}

/// A client that adds one CLOSE_WAIT socket per sample and never closes any.
#[test]
fn close_wait_growth_that_persists_is_a_leak() {
    let (_, v) = run(40, |i, t| {
        let socks = (0..i as u64)
            .map(|c| o(c, TcpState::CloseWait, 1, t - c as f64 * DT))
            .collect();
        (socks, vec![])
    });
    let last = v.last().unwrap();
    assert_eq!(last.verdict, Kind::Leak, "{last:#?}");
    assert_eq!(last.state, Some("CLOSE_WAIT"));
    let evidence = last.evidence.join("\n");
    assert!(
        evidence.contains("never read the peer's FIN (Recv-Q 1)"),
        "{evidence}"
    );
    assert!(
        !evidence.contains("stopped reading before EOF"),
        "the FIN alone in Recv-Q is not unread data: {evidence}"
    );
    assert_eq!(last.numbers["fin_unread"], last.numbers["close_wait"]);
    assert_eq!(last.numbers["data_unread"], 0.0);
    assert!(last.numbers["fd_limit_eta_s"] > 0.0);
    // Detected soon after the first sockets have persisted 3 s.
    let first = v.iter().position(|v| v.verdict == Kind::Leak).unwrap();
    assert!(
        first as f64 * DT <= 8.0,
        "first LEAK at {}s",
        first as f64 * DT
    );
}

/// The same leak on a host so busy that a sample takes 3 s: fewer than
/// [`MIN_POINTS`] samples in any [`SHORT_WINDOW_S`], still a verdict.
#[test]
fn close_wait_growth_sampled_every_3_s_is_a_leak() {
    const SLOW: f64 = 3.0;
    let mut s = EndpointSeries::default();
    let mut verdicts = Vec::new();
    for i in 0..10u64 {
        let t = i as f64 * SLOW;
        let socks: Vec<Obs> = (0..i * 18)
            .map(|c| o(c, TcpState::CloseWait, 1, t - (c / 18) as f64 * SLOW))
            .collect();
        s.observe(&at(t, &socks, &[], i == 0));
        verdicts.push(judge(&ep(), &s, &ctx()));
    }
    let first = verdicts.iter().position(|v| v.verdict == Kind::Leak);
    assert!(
        first.is_some_and(|i| i as f64 * SLOW <= 18.0),
        "first LEAK at sample {first:?}: {:#?}",
        verdicts.last()
    );
}

/// CLOSE_WAIT that read EOF (Recv-Q 0) is still a leak, and says so.
#[test]
fn close_wait_after_eof_is_named() {
    let (_, v) = run(40, |i, t| {
        let socks = (0..i as u64)
            .map(|c| o(c, TcpState::CloseWait, 0, t))
            .collect();
        (socks, vec![])
    });
    let last = v.last().unwrap();
    assert_eq!(last.verdict, Kind::Leak);
    let evidence = last.evidence.join("\n");
    assert!(evidence.contains("read EOF (Recv-Q 0"), "{evidence}");
    assert!(!evidence.contains("FIN (Recv-Q 1)"), "{evidence}");
}

/// CLOSE_WAIT with data still queued before the FIN (Recv-Q > 1): the program
/// stopped reading early, and only then is that said.
#[test]
fn close_wait_with_unread_data_says_reading_stopped_early() {
    let (_, v) = run(40, |i, t| {
        let socks = (0..i as u64)
            .map(|c| o(c, TcpState::CloseWait, 4097, t))
            .collect();
        (socks, vec![])
    });
    let last = v.last().unwrap();
    assert_eq!(last.verdict, Kind::Leak);
    let evidence = last.evidence.join("\n");
    assert!(
        evidence.contains("unread data (Recv-Q > 1): the program stopped reading before EOF"),
        "{evidence}"
    );
    assert_eq!(last.numbers["data_unread"], last.numbers["close_wait"]);
}

/// A client that opens a connection per request and holds every response.
#[test]
fn established_growth_never_reused_is_a_leak() {
    let (_, v) = run(100, |i, t| {
        let socks = (0..i as u64)
            .map(|c| {
                let age = t - c as f64 * DT;
                o(c, TcpState::Established, 4096, age)
            })
            .collect();
        (socks, vec![])
    });
    let last = v.last().unwrap();
    assert_eq!(last.verdict, Kind::Leak, "{last:#?}");
    assert_eq!(last.state, Some("ESTABLISHED"));
    assert!(last.evidence.iter().any(|e| e.contains("unread bytes")));
    assert!(
        v.iter().all(|v| v.verdict != Kind::Churn),
        "opens without closes are not churn"
    );
    let first = v.iter().position(|v| v.verdict == Kind::Leak).unwrap();
    assert!(
        first as f64 * DT <= 12.0,
        "first LEAK at {}s",
        first as f64 * DT
    );
}

/// A pool that grows with load and reuses its connections is never a leak,
/// at any moment of its life.
#[test]
fn growing_pool_that_reuses_is_ok() {
    let (_, v) = run(300, |_, t| {
        // One more connection every 2 s up to 16, each used every 50 ms.
        let n = ((t / 2.0) as u64 + 1).min(16);
        (
            (0..n)
                .map(|c| o(c, TcpState::Established, 0, 0.05))
                .collect(),
            vec![],
        )
    });
    for (i, v) in v.iter().enumerate() {
        assert_eq!(v.verdict, Kind::Ok, "at {}s: {v:#?}", i as f64 * DT);
    }
}

/// A steady pool whose idle connections sit for minutes (load stopped) is
/// not a leak either: nothing grows.
#[test]
fn idle_flat_pool_is_ok() {
    let (_, v) = run(200, |_, t| {
        (
            (0..20).map(|c| o(c, TcpState::Established, 0, t)).collect(),
            vec![],
        )
    });
    assert!(v.iter().all(|v| v.verdict == Kind::Ok));
}

/// Four pooled connections, used every 2 s; the server closes after 0.5 s
/// idle, so they sit in CLOSE_WAIT until the next use replaces them.
#[test]
fn flat_turning_close_wait_is_a_stale_pool() {
    let (_, v) = run(120, |_, t| {
        let cycle = (t / 2.0).floor() as u64;
        let since = t - cycle as f64 * 2.0;
        let socks = (0..4)
            .map(|c| {
                let cookie = cycle * 10 + c;
                if since < 0.5 {
                    o(cookie, TcpState::Established, 0, since)
                } else {
                    o(cookie, TcpState::CloseWait, 1, since)
                }
            })
            .collect();
        (socks, vec![])
    });
    let last = v.last().unwrap();
    assert_eq!(last.verdict, Kind::StalePool, "{last:#?}");
    let lo = last.numbers["server_keepalive_lo_s"];
    let hi = last.numbers["server_keepalive_hi_s"];
    assert!(lo <= 0.5 && 0.5 <= hi, "{lo}..{hi}");
    assert!(last.numbers["suggested_idle_timeout_s"] < 0.5);
    assert!(v.iter().all(|v| v.verdict != Kind::Leak));
}

/// A new connection per request: each sample sees one short-lived socket and
/// eight new TIME_WAIT sockets to the same remote.
#[test]
fn many_short_connections_are_churn() {
    let mut tw: Vec<u64> = Vec::new();
    let (_, v) = run(40, |i, _| {
        tw.extend((0..8).map(|k| 1_000_000 + i as u64 * 8 + k));
        (vec![o(i as u64, TcpState::Established, 0, 0.0)], tw.clone())
    });
    let last = v.last().unwrap();
    assert_eq!(last.verdict, Kind::Churn, "{last:#?}");
    assert!(last.numbers["connections_per_s"] >= 39.0);
    assert!(
        last.evidence
            .iter()
            .any(|e| e.contains("ip_local_port_range"))
    );
}

/// Unattributed TIME_WAIT is not counted when other processes also talk to
/// the remote; a process with one long connection there is then OK.
#[test]
fn unattributed_time_wait_needs_a_sole_owner() {
    let mut s = EndpointSeries::default();
    let mut tw = Vec::new();
    let mut c = ctx();
    c.others_on_remote = true;
    let mut last = Verdict::ok("");
    for i in 0..40 {
        tw.extend((0..8).map(|k| i as u64 * 8 + k + 100));
        s.observe(&at(
            i as f64 * DT,
            &[o(1, TcpState::Established, 0, 0.0)],
            &tw,
            i == 0,
        ));
        last = judge(&ep(), &s, &c);
    }
    assert_eq!(last.verdict, Kind::Ok, "{last:#?}");
    c.others_on_remote = false;
    assert_eq!(judge(&ep(), &s, &c).verdict, Kind::Churn);
}

#[test]
fn nothing_is_judged_too_early() {
    let (_, v) = run(10, |i, t| {
        (
            (0..i as u64 * 5)
                .map(|c| o(c, TcpState::CloseWait, 1, t))
                .collect(),
            vec![],
        )
    });
    assert_eq!(v[5].verdict, Kind::Ok);
    assert!(v[5].summary.contains("collecting"));
}

/// Servers: CLOSE_WAIT on accepted connections that grows is a leak; flat
/// CLOSE_WAIT there is not called a stale pool.
#[test]
fn inbound_close_wait() {
    let inbound = Endpoint::Inbound(8080);
    let mut s = EndpointSeries::default();
    for i in 0..30 {
        let socks: Vec<Obs> = (0..2).map(|c| o(c, TcpState::CloseWait, 1, 1.0)).collect();
        s.observe(&at(i as f64 * DT, &socks, &[], i == 0));
    }
    assert_eq!(judge(&inbound, &s, &ctx()).verdict, Kind::Ok);
    assert_eq!(judge(&ep(), &s, &ctx()).verdict, Kind::StalePool);
}

/// A stale pool recycling four connections beside a slow real leak (one
/// more held CLOSE_WAIT every 1.5 s) is a LEAK: the turnover does not hide it.
#[test]
fn slow_leak_beside_a_stale_pool_is_a_leak() {
    let (_, v) = run(150, |_, t| {
        let cycle = (t / 1.5).floor() as u64;
        let mut socks: Vec<Obs> = (0..4)
            .map(|c| o(cycle * 10 + c, TcpState::CloseWait, 1, 1.0))
            .collect();
        socks.extend((0..cycle).map(|c| o(1_000 + c, TcpState::CloseWait, 1, 1.0)));
        (socks, vec![])
    });
    let last = v.last().unwrap();
    assert_eq!(last.verdict, Kind::Leak, "{last:#?}");
}

/// CLOSE_WAIT sockets that were all there before the watch began and stay
/// flat are not a leak when they become "old" three seconds in.
#[test]
fn old_flat_close_wait_from_before_the_watch_is_not_a_leak() {
    let (_, v) = run(100, |_, _| {
        (
            (0..12)
                .map(|c| o(c, TcpState::CloseWait, 0, 100.0))
                .collect(),
            vec![],
        )
    });
    assert!(v.iter().all(|v| v.verdict != Kind::Leak));
    assert_eq!(v.last().unwrap().verdict, Kind::StalePool);
}

/// The shape that was once misread as a leak: a pool opened six connections
/// in a burst, the server closed them at 2 s, and the pool holds them, never
/// used again. One step, then a plateau for two minutes: STALE_POOL, never
/// LEAK, at any moment.
#[test]
fn step_then_flat_close_wait_is_a_stale_pool_never_a_leak() {
    let (_, v) = run(600, |_, t| {
        let socks = (0..6)
            .map(|c| {
                if t < 2.0 {
                    o(c, TcpState::Established, 0, t)
                } else {
                    o(c, TcpState::CloseWait, 1, t)
                }
            })
            .collect();
        (socks, vec![])
    });
    for (i, v) in v.iter().enumerate() {
        assert_ne!(v.verdict, Kind::Leak, "at {}s: {v:#?}", i as f64 * DT);
    }
    let last = v.last().unwrap();
    assert_eq!(last.verdict, Kind::StalePool, "{last:#?}");
    assert!(last.summary.contains("flat"), "{last:#?}");
    let (lo, hi) = (
        last.numbers["server_keepalive_lo_s"],
        last.numbers["server_keepalive_hi_s"],
    );
    assert!(lo <= 2.0 && 2.0 <= hi + DT, "the server's 2 s: {lo}..{hi}");
    assert!(last.numbers["suggested_idle_timeout_s"] < 2.0);
}

/// A burst whose sockets reach CLOSE_WAIT over a second (not all in one
/// sample) is still one step, not a trend.
#[test]
fn a_ragged_step_is_not_growth() {
    let (_, v) = run(300, |_, t| {
        let socks = (0..10u64)
            .map(|c| {
                if t < 2.0 + c as f64 * 0.1 {
                    o(c, TcpState::Established, 0, t)
                } else {
                    o(c, TcpState::CloseWait, 1, t)
                }
            })
            .collect();
        (socks, vec![])
    });
    for (i, v) in v.iter().enumerate() {
        assert_ne!(v.verdict, Kind::Leak, "at {}s: {v:#?}", i as f64 * DT);
    }
}

/// Held CLOSE_WAIT rising in steps (three more every 4 s) is a leak:
/// the whole history shows new highs all along.
#[test]
fn close_wait_staircase_is_a_leak() {
    let (_, v) = run(300, |_, t| {
        let held = 3 * ((t / 4.0) as u64 + 1);
        let socks = (0..held).map(|c| o(c, TcpState::CloseWait, 1, t)).collect();
        (socks, vec![])
    });
    let first = v.iter().position(|v| v.verdict == Kind::Leak);
    assert!(
        first.is_some_and(|i| i as f64 * DT <= 30.0),
        "LEAK within 30 s: first at {first:?}"
    );
    let last = v.last().unwrap();
    assert_eq!(last.verdict, Kind::Leak, "{last:#?}");
    assert_eq!(last.state, Some("CLOSE_WAIT"));
}

/// A healthy pool under a load that comes and goes: it grows to eight busy
/// connections, the idle timeout trims it back to two, again and again.
/// OK in every sample.
#[test]
fn sawtooth_of_a_healthy_pool_is_ok() {
    let (_, v) = run(400, |_, t| {
        let phase = t % 12.0;
        let n = if phase < 8.0 { 2 + phase as u64 } else { 2 };
        let cycle = (t / 12.0) as u64;
        (
            (0..n)
                .map(|c| o(cycle * 100 + c, TcpState::Established, 0, 0.05))
                .collect(),
            vec![],
        )
    });
    for (i, v) in v.iter().enumerate() {
        assert_eq!(v.verdict, Kind::Ok, "at {}s: {v:#?}", i as f64 * DT);
    }
}

/// The same sawtooth in held CLOSE_WAIT (a pool that finds its dead
/// connections only when load returns) is a stale pool, never a leak.
#[test]
fn sawtooth_of_close_wait_is_never_a_leak() {
    let (_, v) = run(400, |_, t| {
        let phase = t % 12.0;
        let cycle = (t / 12.0) as u64;
        let n = if phase < 8.0 { phase as u64 } else { 0 };
        (
            (0..n)
                .map(|c| o(cycle * 100 + c, TcpState::CloseWait, 1, t))
                .collect(),
            vec![],
        )
    });
    for (i, v) in v.iter().enumerate() {
        assert_ne!(v.verdict, Kind::Leak, "at {}s: {v:#?}", i as f64 * DT);
    }
}

/// A CLOSE_WAIT leak whose sockets the peer resets after 4 s: the kernel
/// stops listing them (FD_ONLY) but the program keeps every fd. Still LEAK,
/// every sample once found, saying which are FD_ONLY.
#[test]
fn close_wait_leak_dropped_by_the_kernel_stays_a_leak() {
    let (_, v) = run(300, |i, t| {
        let socks = (0..i as u64)
            .map(|c| {
                let since = c as f64 * DT;
                if t - since < 4.0 {
                    o(c, TcpState::CloseWait, 1, t - since)
                } else {
                    Obs {
                        cookie: c,
                        state: SockState::FdOnly,
                        recv_q: 0,
                        idle_s: None,
                        recv_idle_s: None,
                    }
                }
            })
            .collect();
        (socks, vec![])
    });
    let first = v.iter().position(|v| v.verdict == Kind::Leak).unwrap();
    assert!(
        first as f64 * DT <= 10.0,
        "first LEAK at {}s",
        first as f64 * DT
    );
    for (i, v) in v.iter().enumerate().skip(first) {
        assert_eq!(v.verdict, Kind::Leak, "at {}s: {v:#?}", i as f64 * DT);
    }
    let last = v.last().unwrap();
    assert_eq!(last.state, Some("FD_ONLY"), "{last:#?}");
    assert!(last.numbers["fd_only"] > 200.0, "{last:#?}");
    assert!(
        last.evidence
            .iter()
            .any(|e| e.contains("FD_ONLY: the kernel no longer lists them")),
        "{last:#?}"
    );
}

/// A steady CLOSE_WAIT leak from the first second of the watch, sampled at
/// uneven intervals (a loaded host: 100 to 400 ms apart) with the program
/// stalling now and then: once called LEAK it stays LEAK in every sample.
/// (The first seconds, before any socket can have persisted, must not
/// make the rise look like a late step.)
#[test]
fn a_steady_leak_stays_a_leak_once_found_on_a_busy_host() {
    let mut s = EndpointSeries::default();
    let mut t = 0.0;
    let mut found_at = None;
    for i in 0..150u64 {
        // One new socket every 150 ms of program time, none during stalls.
        let opened = (0..=(t / 0.15) as u64).filter(|c| c % 20 >= 4).count() as u64;
        let socks: Vec<Obs> = (0..opened)
            .map(|c| o(c, TcpState::CloseWait, 1, t))
            .collect();
        s.observe(&at(t, &socks, &[], i == 0));
        let v = judge(&ep(), &s, &ctx());
        match found_at {
            None if v.verdict == Kind::Leak => found_at = Some(t),
            Some(_) => assert_eq!(v.verdict, Kind::Leak, "at {t:.2}s: {v:#?}"),
            None => {}
        }
        t += [0.1, 0.4, 0.2, 0.3][i as usize % 4];
    }
    let found = found_at.expect("a LEAK");
    assert!(found <= 10.0, "found at {found}s");
}
