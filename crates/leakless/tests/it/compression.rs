//! Transparent decompression: gzip, br, zstd and deflate offered and
//! decoded, the connection owned by the wire body underneath, the size
//! limit on decoded bytes, corrupt streams named, and nothing decoded
//! where there is no body.

use leakless::{Client, ErrorKind, HeaderMap, StatusCode};

use crate::support::*;

const ENCODINGS: [&str; 4] = ["gzip", "br", "zstd", "deflate"];

/// `hello` repeated and cut to `n` bytes: what the server compresses.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| b"hello"[i % 5]).collect()
}

async fn each_encoding_is_offered_and_decoded_on_one_connection(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    for enc in ENCODINGS {
        let res = client
            .get(mode.url(&server, &format!("/?encoding={enc}&size=100000")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.content_length(), None, "{enc}: unknown while decoding");
        assert_eq!(res.headers().get("content-encoding"), None, "{enc}");
        assert_eq!(res.headers().get("content-length"), None, "{enc}");
        let body = res.bytes().await.unwrap();
        assert!(body == pattern(100_000), "{enc}: {} bytes", body.len());
        let sent = server.requests().pop().unwrap();
        assert_eq!(
            sent.header("accept-encoding"),
            Some("gzip, br, zstd, deflate")
        );
        // The connection went back when the wire body ended.
        let s = client.stats().total;
        assert_eq!((s.busy, s.idle, s.created), (0, 1, 1), "{enc}: {s:?}");
    }
    assert_accounted(&client, &[&server]).await;
}
per_mode!(each_encoding_is_offered_and_decoded_on_one_connection: h1, h1_tls, h2, h2c);

async fn a_caller_who_sets_accept_encoding_gets_the_body_as_sent(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let res = client
        .get(mode.url(&server, "/?encoding=gzip&size=1000"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-encoding"], "gzip");
    let len = res
        .content_length()
        .expect("not decoded: the length is the wire's");
    let body = res.bytes().await.unwrap();
    assert_eq!(body.len() as u64, len);
    assert_eq!(&body[..2], &[0x1f, 0x8b], "a gzip member");
    assert_eq!(
        server.requests().pop().unwrap().header("accept-encoding"),
        Some("gzip")
    );
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_caller_who_sets_accept_encoding_gets_the_body_as_sent: h1, h1_tls, h2, h2c);

/// A request that sets no header of its own starts from the client's
/// defaults and offer, built once with the client: an `Accept-Encoding`
/// among the defaults replaces the offer (nothing is decoded), and a HEAD
/// is offered nothing.
async fn accept_encoding_among_the_default_headers_replaces_the_offer(mode: Mode) {
    let server = mode.server(Config::new());
    let mut defaults = HeaderMap::new();
    defaults.insert("accept-encoding", "gzip".parse().unwrap());
    let client = mode.client(&server, Client::builder().default_headers(defaults));
    let res = client
        .get(mode.url(&server, "/?encoding=gzip&size=1000"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-encoding"], "gzip", "not decoded");
    let body = res.bytes().await.unwrap();
    assert_eq!(&body[..2], &[0x1f, 0x8b], "a gzip member");
    assert_eq!(
        server.requests().pop().unwrap().header("accept-encoding"),
        Some("gzip")
    );
    assert_accounted(&client, &[&server]).await;

    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let res = client
        .head(mode.url(&server, "/?encoding=gzip&size=1000"))
        .send()
        .await
        .unwrap();
    res.bytes().await.unwrap();
    let sent = server.requests().pop().unwrap();
    assert_eq!(sent.header("accept-encoding"), None, "HEAD: no offer");
    let ua = format!("leakless/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(sent.header("user-agent"), Some(ua.as_str()));
    assert_accounted(&client, &[&server]).await;
}
per_mode!(accept_encoding_among_the_default_headers_replaces_the_offer: h1, h1_tls, h2, h2c);

async fn a_client_with_decoding_off_offers_nothing(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(
        &server,
        Client::builder()
            .gzip(false)
            .brotli(false)
            .zstd(false)
            .deflate(false),
    );
    let res = client
        .get(mode.url(&server, "/?encoding=gzip&size=10"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-encoding"], "gzip");
    res.bytes().await.unwrap();
    assert_eq!(
        server.requests().pop().unwrap().header("accept-encoding"),
        None
    );
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_client_with_decoding_off_offers_nothing: h1, h1_tls, h2, h2c);

/// The decoded body dropped after its first chunk: the wire body under it
/// is drained or closed (HTTP/1.1) or its stream reset (HTTP/2) exactly as
/// an undecoded one, and the pool is whole for the next request.
async fn a_decoded_body_dropped_early_leaves_the_pool_whole(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let mut res = client
        .get(mode.url(&server, "/?encoding=gzip&size=2000000&chunked=1&chunk=1000"))
        .send()
        .await
        .unwrap();
    let first = res.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(res);
    assert_accounted(&client, &[&server]).await;
    assert_eq!(get_body(&client, mode.url(&server, "/")).await, "hello");
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_decoded_body_dropped_early_leaves_the_pool_whole: h1, h1_tls, h2, h2c);

/// A small compressed body that inflates past `max_body_size` stops at the
/// limit: the decoded bytes are counted, not the wire's.
async fn max_body_size_counts_decoded_bytes(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder().max_body_size(1_000_000));
    let res = client
        .get(mode.url(&server, "/?encoding=gzip&size=4000000"))
        .send()
        .await
        .unwrap();
    let wire = res.headers().get("content-length");
    assert!(wire.is_none());
    let mut res = res;
    let mut got = 0;
    let e = loop {
        match res.chunk().await {
            Ok(Some(c)) => got += c.len(),
            Ok(None) => panic!("read {got} bytes past the limit"),
            Err(e) => break e,
        }
    };
    assert_eq!(e.kind(), ErrorKind::BodyTooLarge, "{e:?}");
    assert!(got <= 1_000_000, "{got}");
    drop(res);
    assert_accounted(&client, &[&server]).await;
}
per_mode!(max_body_size_counts_decoded_bytes: h1, h1_tls, h2, h2c);

async fn a_corrupt_stream_is_an_error_naming_its_encoding(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    for enc in ENCODINGS {
        let res = client
            .get(mode.url(&server, &format!("/?encoding={enc}&corrupt=1&size=200000")))
            .send()
            .await
            .unwrap();
        let e = res.bytes().await.unwrap_err();
        assert!(e.is_decode(), "{enc}: {e:?}");
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("the {enc}-encoded body is corrupt")),
            "{msg}"
        );
        assert!(
            msg.contains(&server.addr().port().to_string()),
            "names the host: {msg}"
        );
    }
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_corrupt_stream_is_an_error_naming_its_encoding: h1, h1_tls, h2, h2c);

/// HEAD, 204 and 304 have no body: nothing is decoded, and the encoding
/// the server named is left for the caller to see.
async fn head_204_and_304_decode_nothing(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let res = client
        .head(mode.url(&server, "/?encoding=gzip&size=1000"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-encoding"], "gzip");
    assert!(res.bytes().await.unwrap().is_empty());
    for status in [204, 304] {
        let res = client
            .get(mode.url(&server, &format!("/?status={status}&encoding=gzip")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::from_u16(status).unwrap());
        assert_eq!(res.headers()["content-encoding"], "gzip", "{status}");
        assert!(res.bytes().await.unwrap().is_empty(), "{status}");
    }
    let s = client.stats().total;
    assert_eq!(s.created, 1, "{s:?}");
    assert_accounted(&client, &[&server]).await;
}
per_mode!(head_204_and_304_decode_nothing: h1, h1_tls, h2, h2c);

async fn a_compressed_body_after_redirects_is_decoded(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let res = client
        .get(mode.url(&server, "/?redirects=2&encoding=br&size=5000"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.bytes().await.unwrap(), pattern(5000));
    let offered: Vec<_> = server
        .requests()
        .iter()
        .map(|r| r.header("accept-encoding").map(str::to_owned))
        .collect();
    assert_eq!(offered, vec![Some("gzip, br, zstd, deflate".to_owned()); 3]);
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_compressed_body_after_redirects_is_decoded: h1, h1_tls, h2, h2c);
