//! HTTP/2 flow control as the caller sets it (reqwest's names): the
//! windows and frame size a client advertises are the ones it was given,
//! a body many times its windows arrives whole, and a window or frame size
//! HTTP/2 does not allow is a builder error that names the setting.
//!
//! What the client advertises is read off the wire by a small h2c server
//! in raw frames; the h2 crate's server does not show a peer's SETTINGS.

use leakless::ErrorKind;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::support::{h2_frames::*, *};

#[tokio::test]
async fn a_client_advertises_a_1_mib_stream_window_and_a_4_mib_connection_window_by_default() {
    // `None` puts back the default.
    let seen = advertised(
        Client::builder()
            .http2_initial_stream_window_size(300_000)
            .http2_initial_stream_window_size(None),
    )
    .await;
    assert_eq!(seen.setting(INITIAL_WINDOW_SIZE), Some(1 << 20), "{seen:?}");
    assert_eq!(seen.connection_window, 4 << 20, "{seen:?}");
    assert_eq!(
        seen.setting(MAX_FRAME_SIZE),
        None,
        "the protocol's 16 KiB, not said: {seen:?}"
    );
}

#[tokio::test]
async fn a_client_advertises_the_windows_and_frame_size_it_was_given() {
    let seen = advertised(
        Client::builder()
            .http2_initial_stream_window_size(300_000)
            .http2_initial_connection_window_size(5_000_000)
            .http2_max_frame_size(32_768),
    )
    .await;
    assert_eq!(seen.setting(INITIAL_WINDOW_SIZE), Some(300_000), "{seen:?}");
    assert_eq!(seen.connection_window, 5_000_000, "{seen:?}");
    assert_eq!(seen.setting(MAX_FRAME_SIZE), Some(32_768), "{seen:?}");
}

async fn a_body_many_times_the_windows_arrives_whole_and_the_connection_carries_on(mode: Mode) {
    let server = mode.server(Config::new());
    // The protocol's smallest defaults: 64 windows' worth of body, each
    // window given back as it is read, or the transfer would stop.
    let client = mode.client(
        &server,
        Client::builder()
            .http2_initial_stream_window_size(65_535)
            .http2_initial_connection_window_size(65_535)
            .http2_max_frame_size(16_384),
    );
    for _ in 0..2 {
        let body = bounded(get_body(&client, mode.url(&server, "/?size=4194304"))).await;
        assert_eq!(body.len(), 4 << 20);
        assert!(
            body.iter().enumerate().all(|(i, b)| *b == b"hello"[i % 5]),
            "every byte in its place"
        );
    }
    let s = client.stats().total;
    assert_eq!(
        (s.created, server.stats().accepted),
        (1, 1),
        "one connection for both: {s:?}"
    );
}
per_mode!(a_body_many_times_the_windows_arrives_whole_and_the_connection_carries_on: h2, h2c);

#[tokio::test]
async fn a_window_or_frame_size_http2_does_not_allow_is_a_builder_error_naming_it() {
    let b = Client::builder;
    let cases = [
        (
            b().http2_initial_stream_window_size(0),
            "http2_initial_stream_window_size is 0; HTTP/2 allows 1 to 2147483647",
        ),
        (
            b().http2_initial_stream_window_size(1 << 31),
            "http2_initial_stream_window_size is 2147483648",
        ),
        (
            b().http2_initial_connection_window_size(0),
            "http2_initial_connection_window_size is 0",
        ),
        (
            b().http2_max_frame_size(16_383),
            "http2_max_frame_size is 16383; HTTP/2 allows 16384 to 16777215",
        ),
        (
            b().http2_max_frame_size(1 << 24),
            "http2_max_frame_size is 16777216",
        ),
    ];
    for (builder, says) in cases {
        let e = builder.build().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Builder, "{e}");
        assert!(e.to_string().contains(says), "{e}");
    }
    // The bounds themselves are allowed.
    b().http2_initial_stream_window_size(1)
        .http2_initial_connection_window_size((1 << 31) - 1)
        .http2_max_frame_size(16_384)
        .build()
        .unwrap();
    b().http2_initial_stream_window_size((1 << 31) - 1)
        .http2_max_frame_size((1 << 24) - 1)
        .build()
        .unwrap();
}

/// What a client said on its first HTTP/2 connection: its SETTINGS, and
/// the connection window it opened to (65,535 plus its first
/// WINDOW_UPDATE on stream 0).
#[derive(Debug)]
struct Advertised {
    settings: Vec<(u16, u32)>,
    connection_window: u32,
}

impl Advertised {
    fn setting(&self, id: u16) -> Option<u32> {
        self.settings
            .iter()
            .find(|(i, _)| *i == id)
            .map(|&(_, v)| v)
    }
}

/// Sends one request with `builder` (over h2c) to a raw server and
/// returns what the client advertised.
async fn advertised(builder: ClientBuilder) -> Advertised {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let (frames, mut seen) = mpsc::unbounded_channel();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        answer(tcp, frames).await;
    });
    let client = builder.http2_prior_knowledge().build().unwrap();
    let res = bounded(client.get(url).send()).await.unwrap();
    assert_eq!(res.status(), 200);
    let (mut settings, mut update) = (None, None);
    while settings.is_none() || update.is_none() {
        let (kind, flags, stream, payload) = bounded(seen.recv())
            .await
            .expect("the client's SETTINGS and a WINDOW_UPDATE on stream 0");
        match kind {
            SETTINGS if flags & ACK == 0 => {
                settings = Some(
                    payload
                        .chunks_exact(6)
                        .map(|p| {
                            let id = u16::from_be_bytes([p[0], p[1]]);
                            (id, u32::from_be_bytes([p[2], p[3], p[4], p[5]]))
                        })
                        .collect(),
                );
            }
            WINDOW_UPDATE if stream == 0 => {
                let by = u32::from_be_bytes(payload[..4].try_into().unwrap()) & 0x7fff_ffff;
                update = Some(65_535 + by);
            }
            _ => {}
        }
    }
    server.abort();
    Advertised {
        settings: settings.unwrap(),
        connection_window: update.unwrap(),
    }
}

/// One h2c connection: every frame the client sends goes to `frames`;
/// SETTINGS and PINGs are acknowledged, each request answered 200 with
/// no body.
async fn answer(mut tcp: TcpStream, frames: mpsc::UnboundedSender<(u8, u8, u32, Vec<u8>)>) {
    assert!(accept_h2c(&mut tcp).await, "the client spoke h2c");
    while let Some((kind, flags, stream, payload)) = read_frame(&mut tcp).await {
        let mut out = Vec::new();
        reply(&mut out, (kind, flags, stream, &payload), true);
        let _ = frames.send((kind, flags, stream, payload));
        if tcp.write_all(&out).await.is_err() {
            return;
        }
    }
}
