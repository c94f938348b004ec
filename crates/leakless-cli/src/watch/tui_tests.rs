//! The terminal view rendered on ratatui's TestBackend.

use std::collections::BTreeMap;

use super::*;
use crate::watch::report::Report;
use crate::watch::snapshot::{Cost, EventsView};
use crate::watch::verdict::Verdict;
use ratatui::layout::Rect;

fn endpoint(name: &str, states: &[(&'static str, u32)], verdict: Kind) -> EndpointView {
    EndpointView {
        endpoint: name.to_string(),
        folded: 0,
        sockets: states.iter().map(|(_, n)| n).sum(),
        states: states.iter().copied().collect(),
        time_wait_unattributed: 0,
        opens_per_s: 4.9,
        closes_per_s: 0.0,
        oldest_age_s: 12.0,
        age_at_least: false,
        max_idle_s: Some(11.5),
        close_wait_data_unread: 0,
        close_wait_fin_unread: 40,
        close_wait_eof_read: 0,
        ephemeral_ports_free: None,
        events: None,
        verdict: Some(verdict),
        history: (0..40).collect(),
    }
}

fn leaking_snapshot() -> Snapshot {
    let mut v = Verdict::ok("");
    v.verdict = Kind::Leak;
    v.pid = Some(4242);
    v.endpoint = Some("10.1.2.3:8080".to_string());
    v.state = Some("CLOSE_WAIT");
    v.summary = "40 CLOSE_WAIT and rising 4.90/s".to_string();
    v.evidence = vec!["40 never read the peer's FIN".to_string()];
    v.advice = Some("close the socket".to_string());
    let mut other = endpoint("other", &[("ESTABLISHED", 3)], Kind::Ok);
    other.folded = 5;
    let p = ProcessView {
        pid: 4242,
        comm: "leaky-client".to_string(),
        descendants: vec![],
        alive: true,
        fds_open: Some(52),
        fd_limit: Some(1024),
        sockets: 45,
        states: BTreeMap::from([("CLOSE_WAIT", 40), ("ESTABLISHED", 5)]),
        endpoints: vec![
            endpoint(
                "10.1.2.3:8080",
                &[("CLOSE_WAIT", 40), ("ESTABLISHED", 2)],
                Kind::Leak,
            ),
            other,
        ],
        verdict: Some(Kind::Leak),
        verdicts: Some(vec![v]),
        history: (0..60).collect(),
        go: None,
        suspicion: 140.0,
    };
    Snapshot {
        t: 12.4,
        sample: 62,
        source: "netlink sock_diag",
        warnings: vec![],
        processes: vec![p],
        unattributed_time_wait: 7,
        ephemeral_ports: 28232,
        unattributed_top: vec![],
        events: EventsView {
            source: "kernel",
            attribution: Some("by the process that called connect()"),
            lost: 0,
            reason: None,
            limit: None,
        },
        cost: Cost::default(),
    }
}

fn header(all: bool) -> Header {
    Header {
        interval: Duration::from_millis(200),
        all,
    }
}

#[test]
fn pid_view_shows_endpoints_states_and_the_verdict() {
    let text = render_to_string(
        &leaking_snapshot(),
        &header(false),
        Rect::new(0, 0, 150, 30),
    );
    for needle in [
        "pid 4242 (leaky-client)",
        "45 sockets",
        "fds 52/1024",
        "every 200ms",
        "10.1.2.3:8080",
        "other (5)",
        "CLOSE-W",
        "verdict: LEAK",
        "LEAK 10.1.2.3:8080 (CLOSE_WAIT): 40 CLOSE_WAIT and rising",
        "never read the peer's FIN",
        "advice: close the socket",
        "q / Esc / Ctrl-C",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    // The per-row sparkline rises to a full block.
    assert!(text.contains('█'), "{text}");
}

#[test]
fn all_view_ranks_processes() {
    let mut s = leaking_snapshot();
    let mut healthy = s.processes[0].clone();
    healthy.pid = 7;
    healthy.comm = "nginx".to_string();
    healthy.verdict = Some(Kind::Ok);
    healthy.verdicts = Some(vec![]);
    s.processes.push(healthy);
    let text = render_to_string(&s, &header(true), Rect::new(0, 0, 150, 40));
    assert!(
        text.contains("processes by suspicion (7 unattributed TIME_WAIT on host)"),
        "{text}"
    );
    let leaky = text.find("leaky-client").unwrap();
    let nginx = text.find("nginx").unwrap();
    assert!(
        leaky < nginx,
        "the leaking process is listed first:\n{text}"
    );
    assert!(
        text.contains("endpoints of pid 4242 (leaky-client)"),
        "{text}"
    );
}

#[test]
fn small_terminal_and_empty_views_do_not_panic() {
    let s = leaking_snapshot();
    let _ = render_to_string(&s, &header(false), Rect::new(0, 0, 20, 5));
    let mut empty = s.clone();
    empty.processes.clear();
    let text = render_to_string(&empty, &header(false), Rect::new(0, 0, 80, 20));
    assert!(text.contains("no process"), "{text}");
}

#[test]
fn sparkline_text() {
    assert_eq!(spark(&[0, 0], 4), "  ");
    assert_eq!(spark(&[1, 2, 4, 8], 4), "▁▂▄█");
    // Longer histories are squeezed: each column is the max of its slice.
    assert_eq!(spark(&[5, 1, 8, 0], 2), "▅█");
    assert_eq!(
        spark(&(0..300).collect::<Vec<u64>>(), 16).chars().count(),
        16
    );
    assert_eq!(spark(&[], 16), "");
}

/// The text report carries the same verdict and evidence.
#[test]
fn text_report_lists_verdicts() {
    let s = leaking_snapshot();
    let r = Report::from_snapshot(&s, Some(3));
    let text = crate::watch::report::report_text(&r);
    assert!(
        text.contains("LEAK pid 4242 10.1.2.3:8080 (CLOSE_WAIT)"),
        "{text}"
    );
    assert!(text.contains("  - 40 never read the peer's FIN"), "{text}");
    assert!(text.contains("command exited with 3"), "{text}");
    assert!(text.contains("other (5)"), "{text}");
}

/// Without kernel events the view and the report say what sampling misses;
/// with them the report says how connections were attributed, and each
/// endpoint's lifetimes.
#[test]
fn the_view_and_report_say_where_connection_counts_come_from() {
    let mut s = leaking_snapshot();
    let mut h = crate::watch::conns::Lifetimes::default();
    h.add(0.0004);
    h.add(0.003);
    s.processes[0].endpoints[0].events = Some(crate::watch::snapshot::EndpointEvents {
        opens_per_s: 2.0,
        closes_per_s: 2.0,
        ended: BTreeMap::from([("peer_first", 2)]),
        lifetimes: h,
    });
    let text = crate::watch::report::report_text(&Report::from_snapshot(&s, None));
    assert!(
        text.contains("connections counted from the kernel's events, attributed by the process that called connect()"),
        "{text}"
    );
    assert!(
        text.contains(
            "lifetimes (kernel events): <1ms 1, 1-10ms 1; last window ended: peer_first 2"
        ),
        "{text}"
    );
    s.events = EventsView {
        source: "sampling",
        attribution: None,
        lost: 0,
        reason: Some("perf_event_open: Permission denied".to_string()),
        limit: Some(crate::watch::SAMPLING_LIMIT),
    };
    let screen = render_to_string(&s, &header(false), Rect::new(0, 0, 250, 30));
    assert!(
        screen.contains("sampling only: connections that open and close between two samples"),
        "{screen}"
    );
    let text = crate::watch::report::report_text(&Report::from_snapshot(&s, None));
    assert!(
        text.contains("sampling only (perf_event_open: Permission denied)"),
        "{text}"
    );
}

/// Sockets the kernel dropped but the program holds get their own column,
/// not folded into OTHER.
#[test]
fn fd_only_has_its_own_column() {
    let mut s = leaking_snapshot();
    s.processes[0].endpoints[0] = endpoint(
        "10.1.2.3:8080",
        &[("CLOSE_WAIT", 40), ("ESTABLISHED", 2), ("FD_ONLY", 6)],
        Kind::Leak,
    );
    let text = render_to_string(&s, &header(false), Rect::new(0, 0, 160, 30));
    assert!(text.contains("FD-ONLY"), "{text}");
    let row = text
        .lines()
        .find(|l| l.contains("10.1.2.3:8080") && l.contains("LEAK") && !l.contains("verdict"))
        .unwrap_or_else(|| panic!("the endpoint row in:\n{text}"));
    let cells: Vec<&str> = row
        .trim_matches(|c: char| c == '│' || c.is_whitespace())
        .split_whitespace()
        .collect();
    // ENDPOINT SOCK ESTAB CLOSE-W FD-ONLY TIME-W OTHER ...
    assert_eq!(
        &cells[..7],
        ["10.1.2.3:8080", "48", "2", "40", "6", "0", "0"],
        "{row}"
    );
}
