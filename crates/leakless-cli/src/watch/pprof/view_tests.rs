//! The Go view on captured dumps, and the verdicts it explains.

use super::*;
use crate::watch::pprof::classify::Tracker;
use crate::watch::pprof::fetch::Latest;

fn latest(d2: &str, d1: &str, at: f64) -> Latest {
    let mut t = Tracker::new();
    t.read(at - 130.0, d2, Some(d1));
    Latest {
        at,
        result: Ok(t.read(at, d2, Some(d1))),
    }
}

fn leak(state: &'static str, endpoint: &str, numbers: &[(&'static str, f64)]) -> Verdict {
    let mut v = Verdict::ok("socket summary");
    v.verdict = Kind::Leak;
    v.pid = Some(42);
    v.state = Some(state);
    v.endpoint = Some(endpoint.to_string());
    v.evidence = vec!["socket evidence".to_string()];
    v.numbers = numbers.iter().copied().collect();
    v
}

#[test]
fn a_body_never_closed_is_named_with_who_dialed() {
    let l = latest(
        include_str!("testdata/body.debug2.txt"),
        include_str!("testdata/body.debug1.txt"),
        200.0,
    );
    let view = GoView::new(
        "http://x/debug/pprof/goroutine?debug=2".into(),
        Some(&l),
        203.0,
    );
    assert_eq!(view.age_s, Some(3.0));
    assert_eq!(view.roles[&Role::BodyUnread].count, 20);
    let mut verdicts = vec![leak(
        "ESTABLISHED",
        "127.0.0.1:18088",
        &[("established", 20.0)],
    )];
    view.explain(&mut verdicts);
    let v = &verdicts[0];
    assert_eq!(v.cause, Some("body-not-closed"));
    assert!(
        v.summary.starts_with(
            "20 connections to 127.0.0.1:18088, 20 readLoops waiting for the body for ≥ 2m10s; dialed from label callsite=fetchUser / main.fetchUser (leaky.go:"
        ),
        "{}",
        v.summary
    );
    assert!(
        v.advice
            .as_ref()
            .unwrap()
            .contains("defer resp.Body.Close()")
    );
    assert!(v.advice.as_ref().unwrap().contains("Client.Timeout"));
    assert_eq!(v.evidence.last().unwrap(), "socket evidence", "kept");
    let lines = view.lines().join("\n");
    assert!(
        lines.contains("20 read loops waiting for a response body"),
        "{lines}"
    );
    assert!(
        !lines.contains("tracebackancestors"),
        "they are on: {lines}"
    );
}

#[test]
fn requests_never_answered_are_not_called_unclosed_bodies() {
    let l = latest(
        include_str!("testdata/inflight.debug2.txt"),
        include_str!("testdata/inflight.debug1.txt"),
        200.0,
    );
    let view = GoView::new("u".into(), Some(&l), 200.0);
    let mut verdicts = vec![leak(
        "ESTABLISHED",
        "127.0.0.1:18088",
        &[("established", 3.0)],
    )];
    view.explain(&mut verdicts);
    let v = &verdicts[0];
    assert_eq!(v.cause, Some("no-response"));
    assert!(
        v.summary
            .contains("3 requests still waiting for their response"),
        "{}",
        v.summary
    );
    assert!(v.summary.contains("main.slowReport"), "{}", v.summary);
    assert_eq!(view.pooled_idle, 0, "their connections are busy, not idle");
}

#[test]
fn handlers_next_to_inbound_close_wait_ignore_their_context() {
    let l = latest(
        include_str!("testdata/handler.debug2.txt"),
        include_str!("testdata/handler.debug1.txt"),
        200.0,
    );
    let view = GoView::new("u".into(), Some(&l), 200.0);
    let mut verdicts = vec![leak("CLOSE_WAIT", "inbound :43197", &[("close_wait", 3.0)])];
    view.explain(&mut verdicts);
    let v = &verdicts[0];
    assert_eq!(v.cause, Some("handler-ignores-context"));
    assert!(
        v.summary.starts_with("3 CLOSE_WAIT on inbound :43197, 3 handlers parked for ≥ 2m10s in main.slowHandler (leaky.go:"),
        "{}",
        v.summary
    );
    assert!(v.advice.as_ref().unwrap().contains("r.Context()"));
    // The same handlers beside an outbound leak explain nothing.
    let mut verdicts = vec![leak("CLOSE_WAIT", "127.0.0.1:1", &[("close_wait", 3.0)])];
    view.explain(&mut verdicts);
    assert_eq!(verdicts[0].cause, None);
}

#[test]
fn idle_pools_and_http2_are_described_not_blamed() {
    let idle = latest(
        include_str!("testdata/idle.debug2.txt"),
        include_str!("testdata/idle.debug1.txt"),
        10.0,
    );
    let view = GoView::new("u".into(), Some(&idle), 10.0);
    assert_eq!(view.pooled_idle, 4);
    let lines = view.lines().join("\n");
    assert!(
        lines.contains("4 HTTP/1.1 connections idle in the pool"),
        "{lines}"
    );
    let mut verdicts = vec![leak("ESTABLISHED", "127.0.0.1:1", &[("established", 9.0)])];
    view.explain(&mut verdicts);
    assert_eq!(verdicts[0].cause, None);

    let h2 = latest(
        include_str!("testdata/h2.debug2.txt"),
        include_str!("testdata/h2.debug1.txt"),
        10.0,
    );
    let view = GoView::new("u".into(), Some(&h2), 10.0);
    assert!(view.lines().join("\n").contains("2 HTTP/2 connections"));
}

#[test]
fn without_ancestors_it_says_how_to_get_them() {
    let d2 = include_str!("testdata/body.debug2.txt");
    // The same dump with the ancestors cut off.
    let cut: String = d2
        .split("\n\n")
        .map(|g| g.split("\n[originating").next().unwrap_or(g))
        .collect::<Vec<_>>()
        .join("\n\n");
    let mut t = Tracker::new();
    let l = Latest {
        at: 1.0,
        result: Ok(t.read(1.0, &cut, None)),
    };
    let view = GoView::new("u".into(), Some(&l), 1.0);
    assert!(!view.ancestors);
    let lines = view.lines().join("\n");
    assert!(lines.contains("GODEBUG=tracebackancestors=5"), "{lines}");
}

#[test]
fn a_failed_fetch_is_shown_not_hidden() {
    let l = Latest {
        at: 1.0,
        result: Err("fetching http://x: connection refused".to_string()),
    };
    let view = GoView::new("http://x".into(), Some(&l), 2.0);
    assert_eq!(
        view.lines(),
        vec!["Go (http://x): fetching http://x: connection refused"]
    );
    let none = GoView::new("http://x".into(), None, 2.0);
    assert_eq!(none.error.as_deref(), Some("no dump yet"));
}
