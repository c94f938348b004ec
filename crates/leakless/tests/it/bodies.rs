//! Request bodies (bytes, strings, streams) and the response body as an
//! `http_body::Body`, over HTTP/1.1, HTTP/1.1 over TLS and HTTP/2.

use std::{convert::Infallible, pin::Pin, task::Poll};

use leakless::{Body, Bytes, Client, Method};

use crate::support::*;

/// A stream of byte chunks, by hand (no futures-util in the tests).
struct Chunks(Vec<&'static str>);

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, Infallible>;
    fn poll_next(
        mut self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> Poll<Option<Self::Item>> {
        Poll::Ready(if self.0.is_empty() {
            None
        } else {
            Some(Ok(Bytes::from_static(self.0.remove(0).as_bytes())))
        })
    }
}

async fn echo(mode: Mode, client: &Client, server: &TestServer, body: Body) -> String {
    client
        .post(mode.url(server, "/?echo=1"))
        .body(body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// On h2 the 70,000 bytes take more than the stream's first window.
async fn bytes_strings_and_streams_arrive_whole(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    assert_eq!(
        echo(mode, &client, &server, "static str".into()).await,
        "static str"
    );
    assert_eq!(
        echo(mode, &client, &server, String::from("a string").into()).await,
        "a string"
    );
    assert_eq!(
        echo(mode, &client, &server, vec![b'v'; 70_000].into())
            .await
            .len(),
        70_000
    );
    assert_eq!(
        echo(
            mode,
            &client,
            &server,
            Body::wrap_stream(Chunks(vec!["str", "eam", "ed"]))
        )
        .await,
        "streamed"
    );
    assert_eq!(server.stats().accepted, 1, "all on one connection");
    if mode.is_h2() {
        // Framing is HTTP/1.1's business: h2 ends a body with END_STREAM.
        return;
    }
    let reqs = server.requests();
    let stream_req = reqs.last().unwrap();
    assert_eq!(
        stream_req.header("transfer-encoding"),
        Some("chunked"),
        "unknown length goes chunked"
    );
    assert_eq!(reqs[0].header("content-length"), Some("10"));
}
per_mode!(bytes_strings_and_streams_arrive_whole: h1, h1_tls, h2, h2c);

// HTTP/1.1 only: an empty h2 request is a HEADERS frame with END_STREAM,
// no Content-Length needed.
async fn post_without_body_says_content_length_zero(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    client
        .post(mode.url(&server, "/"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    get_body(&client, mode.url(&server, "/")).await;
    let reqs = server.requests();
    assert_eq!(reqs[0].header("content-length"), Some("0"));
    assert_eq!(reqs[1].header("content-length"), None);
}
per_mode!(post_without_body_says_content_length_zero: h1, h1_tls);

async fn execute_sends_an_http_request(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let req = http::Request::builder()
        .method(Method::PUT)
        .uri(mode.url(&server, "/?echo=1"))
        .header("x-test", "1")
        .body("put body")
        .unwrap();
    let res = client.execute(req).await.unwrap();
    assert_eq!(res.text().await.unwrap(), "put body");
    let rec = &server.requests()[0];
    assert_eq!(
        (rec.method.as_str(), rec.header("x-test")),
        ("PUT", Some("1"))
    );
}
per_mode!(execute_sends_an_http_request: h1, h1_tls, h2, h2c);

async fn response_body_works_as_http_body(mode: Mode) {
    use http_body::Body as _;
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let res = client
        .get(mode.url(&server, "/?size=12"))
        .send()
        .await
        .unwrap();
    let mut body = res.into_body();
    assert_eq!(body.size_hint().exact(), Some(12));
    let mut got = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        got.extend_from_slice(&frame.unwrap().into_data().unwrap());
    }
    assert_eq!(got, b"hellohellohe");
    assert!(body.is_end_stream());
    assert_eq!(client.stats().total.idle, 1);
}
per_mode!(response_body_works_as_http_body: h1, h1_tls, h2, h2c);

#[tokio::test]
async fn invalid_url_and_header_fail_at_send_with_a_clear_error() {
    let client = Client::new();
    let e = client.get("http://exa mple.com/").send().await.unwrap_err();
    assert!(e.to_string().contains("invalid URL"), "{e}");
    let e = client
        .get("http://127.0.0.1:1/")
        .header("bad\nname", "v")
        .send()
        .await
        .unwrap_err();
    assert!(e.to_string().contains("invalid header"), "{e}");
    let e = client.get("ftp://127.0.0.1/").send().await.unwrap_err();
    assert!(e.to_string().contains("ftp"), "{e}");
    assert_eq!(client.stats().total.created, 0, "nothing was dialed");
}

#[tokio::test]
async fn connection_refused_is_a_connect_error_naming_the_host() {
    let refusing = RefusingAddr::new();
    let port = refusing.addr().port();
    let client = Client::new();
    let e = client
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_connect(), "{e:?}");
    assert_eq!(e.phase(), Some(leakless::Phase::Connect));
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    let s = client.stats().total;
    assert_eq!(
        (
            s.open,
            s.created,
            s.closed_by.get(leakless::CloseReason::Error)
        ),
        (0, 1, 1)
    );
}
