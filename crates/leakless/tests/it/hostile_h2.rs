//! HTTP/2 from a hostile or broken server: a response head over the
//! 64 KiB bound HTTP/1.1 has, endless CONTINUATION frames, PING and
//! SETTINGS floods, a window never opened for an upload, RST_STREAM on
//! every stream. Each request ends in an error that names its phase; the
//! connection is closed and counted where the server broke it (the kernel
//! agrees, socket by socket), kept where only a stream failed; a healthy
//! host is served meanwhile.
//!
//! Where the behaviour comes from: the oversized heads, the resets and the
//! closed window are the test server's h2-crate server told to misbehave
//! (`Reply::header`, `Fault::ResetStream`, `Config::h2_initial_window_size`);
//! the CONTINUATION, PING and SETTINGS floods are raw frames
//! (`ConnFault::H2Flood`), since h2's server cannot send them.

mod flood;

use std::time::{Duration, Instant};

use leakless::{Certificate, Phase};
use leakless_testserver::{ConnFault, Fault, H2Flood, Reply};

use crate::support::*;

/// Timeouts short enough for a quick suite, long enough for a loaded
/// machine to answer a healthy request within them.
const SHORT: Duration = Duration::from_millis(300);

/// A healthy server in `mode`, and a client for `hostile` in `mode` that
/// trusts both (each test server has its own CA).
fn with_healthy(mode: Mode, hostile: &TestServer, builder: ClientBuilder) -> (TestServer, Client) {
    let healthy = mode.server(Config::new());
    let builder = mode.builder(hostile, builder);
    let builder = if mode.is_tls() {
        builder.add_root_certificate(Certificate::from_der(healthy.ca_cert_der()))
    } else {
        builder
    };
    (healthy, builder.build().unwrap())
}

/// Runs `hostile` next to a few requests to the healthy server, which must
/// all succeed; returns what `hostile` did and the slowest healthy
/// request's time. No bound on that time: the client's runtime has one
/// thread, which a flood keeps busy (see `flood.rs` for figures).
async fn next_to_healthy<T>(
    client: &Client,
    mode: Mode,
    healthy: &TestServer,
    hostile: impl Future<Output = T>,
) -> (T, Duration) {
    let served = async {
        let mut slowest = Duration::ZERO;
        for _ in 0..5 {
            let t = Instant::now();
            assert_eq!(get_body(client, mode.url(healthy, "/")).await, "hello");
            slowest = slowest.max(t.elapsed());
        }
        slowest
    };
    bounded(async { tokio::join!(hostile, served) }).await
}

/// The hostile host's connection is gone and counted: the pool's counts
/// agree with each other, the server saw it close, and the kernel holds
/// none of the client's sockets to it.
async fn closed_and_counted(
    client: &Client,
    mode: Mode,
    server: &TestServer,
) -> leakless::HostStats {
    let key = mode.host_key(server.addr());
    let s = wait_for(
        "the hostile host's connection closed",
        || client.stats().host(&key).cloned().unwrap_or_default(),
        |s| s.created >= 1 && s.open == 0 && nothing_in_flight(s),
    )
    .await;
    assert_consistent(&s);
    let closed = server.wait_for(WAIT, |st| st.open == 0).await;
    assert!(closed.is_ok(), "the server still has it open: {closed:?}");
    assert_eq!(held_client_sockets(server), vec![], "the kernel disagrees");
    s
}

/// How long to wait on the server's own state.
const WAIT: Duration = Duration::from_secs(10);

/// The message and the source chain, as a user sees them.
fn said(e: &leakless::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(e) = src {
        s.push_str(&format!(" / {e}"));
        src = e.source();
    }
    s
}

async fn a_response_head_over_64_kib_fails_and_its_connection_is_closed(mode: Mode) {
    // 70 KiB: over the bound, in five frames, so h2 resets the stream.
    let big = Reply::new().header("x-big", "a".repeat(70 * 1024));
    let server = mode.server(Config::new().route("/big", big));
    let (healthy, client) = with_healthy(mode, &server, Client::builder());
    let (e, _) = next_to_healthy(&client, mode, &healthy, async {
        client
            .get(mode.url(&server, "/big"))
            .send()
            .await
            .unwrap_err()
    })
    .await;
    assert!(e.is_protocol(), "{e:?}");
    assert_eq!(e.phase(), Some(Phase::ResponseHeaders), "{e:?}");
    assert!(e.to_string().contains("over 64 KiB"), "{e}");
    let s = closed_and_counted(&client, mode, &server).await;
    assert_eq!(
        (s.created, s.closed_by.get(leakless::CloseReason::Error)),
        (1, 1),
        "{s:?}"
    );
    // The next request gets a connection of its own.
    assert_eq!(get_body(&client, mode.url(&server, "/")).await, "hello");
}
per_mode!(a_response_head_over_64_kib_fails_and_its_connection_is_closed: h2, h2c);

async fn a_header_block_far_over_the_limit_closes_the_connection_at_once(mode: Mode) {
    // 1 MiB: more CONTINUATION frames than 64 KiB can need, so h2 says
    // GOAWAY before it has read the block.
    let huge = Reply::new().header("x-huge", "a".repeat(1 << 20));
    let server = mode.server(Config::new().reply(huge));
    let (healthy, client) = with_healthy(mode, &server, Client::builder());
    let (e, _) = next_to_healthy(&client, mode, &healthy, async {
        client.get(mode.url(&server, "/")).send().await.unwrap_err()
    })
    .await;
    assert!(e.is_protocol(), "{e:?}");
    assert_eq!(e.phase(), Some(Phase::ResponseHeaders), "{e:?}");
    let text = said(&e);
    assert!(
        text.contains("over 64 KiB") && text.contains("ENHANCE_YOUR_CALM"),
        "{text}"
    );
    closed_and_counted(&client, mode, &server).await;
}
per_mode!(a_header_block_far_over_the_limit_closes_the_connection_at_once: h2, h2c);

async fn more_than_100_header_fields_fail_the_head_as_on_http1(mode: Mode) {
    let many = (0..101).fold(Reply::new(), |r, i| r.header(format!("x-h{i}"), "v"));
    let server = mode.server(Config::new().route("/many", many));
    let (_healthy, client) = with_healthy(mode, &server, Client::builder());
    let e = client
        .get(mode.url(&server, "/many"))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_protocol(), "{e:?}");
    assert_eq!(e.phase(), Some(Phase::ResponseHeaders), "{e:?}");
    assert!(e.to_string().contains("more than 100 header fields"), "{e}");
    closed_and_counted(&client, mode, &server).await;
}
per_mode!(more_than_100_header_fields_fail_the_head_as_on_http1: h2, h2c);

async fn endless_continuation_frames_end_in_a_protocol_error_and_a_closed_connection(mode: Mode) {
    let server = mode.server(Config::new().conn_fault(ConnFault::H2Flood(H2Flood::Continuation)));
    let (healthy, client) = with_healthy(mode, &server, Client::builder());
    let (e, _) = next_to_healthy(&client, mode, &healthy, async {
        client.get(mode.url(&server, "/")).send().await.unwrap_err()
    })
    .await;
    assert!(e.is_protocol(), "{e:?}");
    assert_eq!(e.phase(), Some(Phase::ResponseHeaders), "{e:?}");
    let text = said(&e);
    assert!(
        text.contains("CONTINUATION") && text.contains("too_many_continuations"),
        "{text}"
    );
    closed_and_counted(&client, mode, &server).await;
    // The client hung up on the flood (after its GOAWAY).
    let st = server.stats();
    assert_eq!(
        st.closed_for(leakless_testserver::CloseReason::Peer),
        1,
        "{st:?}"
    );
}
per_mode!(endless_continuation_frames_end_in_a_protocol_error_and_a_closed_connection: h2, h2c);

async fn a_window_never_opened_ends_the_upload_at_read_idle_timeout(mode: Mode) {
    let server = mode.server(Config::new().h2_initial_window_size(0));
    let (healthy, client) = with_healthy(mode, &server, Client::builder().read_idle_timeout(SHORT));
    let upload = async {
        let t = Instant::now();
        let res = client
            .post(mode.url(&server, "/?echo=1"))
            .body(vec![b'x'; 64 * 1024])
            .send()
            .await;
        (res.unwrap_err(), t.elapsed())
    };
    // Another stream on the same connection carries on meanwhile.
    let get = async {
        server.wait_for(WAIT, |s| s.h2_streams == 1).await.unwrap();
        get_body(&client, mode.url(&server, "/")).await
    };
    let (((e, took), body), _) =
        next_to_healthy(&client, mode, &healthy, async { tokio::join!(upload, get) }).await;
    assert_eq!(body, "hello");
    assert!(e.is_timeout(), "{e:?}");
    assert_eq!(e.phase(), Some(Phase::WriteRequest), "{e:?}");
    assert!(
        took >= SHORT && took < SHORT + Duration::from_secs(5),
        "{took:?}"
    );
    // The stream is reset; the connection answers its ping and stays, one
    // socket in the kernel, idle in the pool.
    let st = server
        .wait_for(WAIT, |s| s.h2_streams_reset >= 1)
        .await
        .unwrap();
    assert_eq!((st.accepted, st.open, st.requests), (1, 1, 1), "{st:?}");
    let key = mode.host_key(server.addr());
    let s = wait_for(
        "the connection idle",
        || client.stats().host(&key).cloned().unwrap_or_default(),
        |s| s.idle == 1,
    )
    .await;
    assert_consistent(&s);
    assert_eq!((s.created, s.open), (1, 1), "{s:?}");
    assert_eq!(held_client_sockets(&server).len(), 1);
    drop(client);
    server.wait_closed(1).await;
    assert_eq!(held_client_sockets(&server), vec![]);
}
per_mode!(a_window_never_opened_ends_the_upload_at_read_idle_timeout: h2, h2c);

async fn rst_stream_on_every_stream_fails_each_request_and_only_its_stream(mode: Mode) {
    // INTERNAL_ERROR: the server did process it; not retried.
    let server = mode.server(Config::new().fault(Fault::ResetStream(2)));
    let (healthy, client) = with_healthy(mode, &server, Client::builder());
    let (errors, _) = next_to_healthy(&client, mode, &healthy, async {
        let mut errors = Vec::new();
        for _ in 0..10 {
            errors.push(client.get(mode.url(&server, "/")).send().await.unwrap_err());
        }
        errors
    })
    .await;
    for e in &errors {
        assert_eq!(e.phase(), Some(Phase::ResponseHeaders), "{e:?}");
        assert!(
            e.to_string()
                .contains("the server reset the stream (RST_STREAM INTERNAL_ERROR)"),
            "{e}"
        );
    }
    // REFUSED_STREAM: unprocessed, so retried, a bounded number of times
    // (8 attempts in all, as Go's HTTP/2 transport makes).
    server.update_config(|c| c.reply.fault = Some(Fault::ResetStream(7)));
    let e = client.get(mode.url(&server, "/")).send().await.unwrap_err();
    assert!(e.to_string().contains("RST_STREAM REFUSED_STREAM"), "{e}");
    let st = server.stats();
    assert_eq!(
        (st.h2_streams, st.h2_streams_refused, st.requests),
        (18, 8, 0),
        "{st:?}"
    );
    // Only streams failed: the connections are whole and counted.
    let key = mode.host_key(server.addr());
    let s = wait_for(
        "nothing in flight",
        || client.stats().host(&key).cloned().unwrap_or_default(),
        nothing_in_flight,
    )
    .await;
    assert_consistent(&s);
    assert_eq!(held_client_sockets(&server).len(), s.open, "{s:?}");
    drop(client);
    server.wait_for(WAIT, |st| st.open == 0).await.unwrap();
    assert_eq!(held_client_sockets(&server), vec![]);
}
per_mode!(rst_stream_on_every_stream_fails_each_request_and_only_its_stream: h2, h2c);
