//! Bodies in and out as a reqwest user writes them: `json`, `form` and
//! `query` on the request; `json`, `bytes_stream`, `content_length` and
//! `remote_addr` on the response. Each ends with the pool's books checked.

use futures_util::StreamExt;
use leakless::Client;
use serde_json::{Value, json};

use crate::support::*;

async fn json_goes_out_and_comes_back(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let sent = json!({"name": "leakless", "tags": ["pool", "http"], "n": 3});
    let res = client
        .post(mode.url(&server, "/?echo=1"))
        .json(&sent)
        .send()
        .await
        .unwrap();
    let back: Value = res.json().await.unwrap();
    assert_eq!(back, sent);
    // Read to the end before parsing: the connection is back already.
    let s = client.stats().total;
    assert_eq!((s.busy, s.idle), (0, 1), "{s:?}");
    assert_eq!(
        last_request(&server).header("content-type"),
        Some("application/json")
    );
    assert_accounted(&client, &[&server]).await;
}
per_mode!(json_goes_out_and_comes_back: h1, h1_tls, h2, h2c);

async fn a_body_that_is_not_json_is_a_decode_error_after_the_connection_is_back(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let res = client.get(mode.url(&server, "/")).send().await.unwrap();
    let e = res.json::<Value>().await.unwrap_err();
    assert!(e.is_decode(), "{e:?}");
    assert_eq!(e.url().unwrap().as_str(), mode.url(&server, "/"));
    let s = client.stats().total;
    assert_eq!((s.busy, s.idle), (0, 1), "{s:?}");
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_body_that_is_not_json_is_a_decode_error_after_the_connection_is_back: h1, h1_tls, h2, h2c);

async fn a_form_is_url_encoded_with_its_content_type(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    read_body(
        client
            .post(mode.url(&server, "/"))
            .form(&[("a", "1"), ("b", "x y&z")]),
    )
    .await;
    let req = last_request(&server);
    assert_eq!(req.body, b"a=1&b=x+y%26z");
    assert_eq!(
        req.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_form_is_url_encoded_with_its_content_type: h1, h1_tls, h2, h2c);

async fn query_pairs_are_appended_to_the_url(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    for (path, want) in [("/p?x=1", "/p?x=1&q=a+b&n=2"), ("/p", "/p?q=a+b&n=2")] {
        let res = client
            .get(mode.url(&server, path))
            .query(&[("q", "a b")])
            .query(&[("n", 2)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.url().as_str(), mode.url(&server, want));
        res.bytes().await.unwrap();
        assert_eq!(last_request(&server).path, want);
    }
    assert_accounted(&client, &[&server]).await;
}
per_mode!(query_pairs_are_appended_to_the_url: h1, h1_tls, h2, h2c);

async fn bytes_stream_yields_the_body_and_gives_the_connection_back(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let res = client
        .get(mode.url(&server, "/?size=100000&chunked=1&chunk=7000"))
        .send()
        .await
        .unwrap();
    let mut stream = std::pin::pin!(res.bytes_stream());
    let mut body = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk.unwrap());
        chunks += 1;
    }
    assert!(chunks > 1, "{chunks}");
    assert_eq!(body.len(), 100_000);
    assert!(body.iter().enumerate().all(|(i, b)| *b == b"hello"[i % 5]));
    let s = client.stats().total;
    assert_eq!((s.busy, s.idle), (0, 1), "{s:?}");
    assert_accounted(&client, &[&server]).await;
}
per_mode!(bytes_stream_yields_the_body_and_gives_the_connection_back: h1, h1_tls, h2, h2c);

async fn content_length_is_the_declared_length_or_none(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let res = client
        .get(mode.url(&server, "/?size=1234"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.content_length(), Some(1234));
    res.bytes().await.unwrap();
    let res = client
        .get(mode.url(&server, "/?size=1234&chunked=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.content_length(), None);
    res.bytes().await.unwrap();
    assert_accounted(&client, &[&server]).await;
}
per_mode!(content_length_is_the_declared_length_or_none: h1, h1_tls, h2, h2c);

async fn remote_addr_is_the_servers(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    for _ in 0..2 {
        // The first on a new connection, the second on the reused one.
        let res = client.get(mode.url(&server, "/")).send().await.unwrap();
        assert_eq!(res.remote_addr(), Some(server.addr()));
        res.bytes().await.unwrap();
    }
    assert_eq!(client.stats().total.created, 1);
    assert_accounted(&client, &[&server]).await;
}
per_mode!(remote_addr_is_the_servers: h1, h1_tls, h2, h2c);

async fn a_multipart_form_in_memory_is_sent_with_its_boundary(mode: Mode) {
    use leakless::multipart::{Form, Part};
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let form = Form::new().text("title", "report").part(
        "data",
        Part::bytes(&b"1,2,3"[..])
            .file_name("data.csv")
            .mime_str("text/csv")
            .unwrap(),
    );
    let boundary = form.boundary().to_owned();
    read_body(client.post(mode.url(&server, "/")).multipart(form)).await;
    let req = last_request(&server);
    assert_eq!(
        req.header("content-type").unwrap(),
        format!("multipart/form-data; boundary={boundary}")
    );
    let want = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nreport\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"data\"; filename=\"data.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n1,2,3\r\n--{boundary}--\r\n"
    );
    assert_eq!(String::from_utf8(req.body).unwrap(), want);
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_multipart_form_in_memory_is_sent_with_its_boundary: h1, h1_tls, h2, h2c);

/// A stream part makes the form a stream: its 307 is returned as it is
/// (Go's rule for a body that cannot be sent again), and a file part is
/// one too, read as the request goes out, with its length.
async fn a_form_with_a_stream_or_file_part_is_sent_once(mode: Mode) {
    use leakless::multipart::{Form, Part};
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let chunks: Vec<Result<leakless::Bytes, std::io::Error>> =
        vec![Ok("stre".into()), Ok("amed".into())];
    let stream = leakless::Body::wrap_stream(futures_util::stream::iter(chunks));
    let form = Form::new().part("s", Part::stream(stream));
    let res = client
        .post(mode.url(&server, "/?redirects=1&redirect_status=307"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 307);
    res.bytes().await.unwrap();
    assert_eq!(server.stats().requests, 1);
    assert!(
        String::from_utf8(last_request(&server).body)
            .unwrap()
            .contains("\r\n\r\nstreamed\r\n")
    );

    let dir = std::env::temp_dir().join(format!("leakless-multipart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{mode:?}.txt"));
    std::fs::write(&path, b"file contents").unwrap();
    let form = Form::new().file("upload", &path).await.unwrap();
    read_body(client.post(mode.url(&server, "/")).multipart(form)).await;
    std::fs::remove_file(&path).unwrap();
    let req = last_request(&server);
    let body = String::from_utf8(req.body.clone()).unwrap();
    assert!(
        body.contains(&format!(
            "filename=\"{mode:?}.txt\"\r\n\r\nfile contents\r\n"
        )),
        "{body}"
    );
    if !mode.is_h2() {
        // Every length known: a Content-Length, not chunked.
        assert_eq!(
            req.header("content-length"),
            Some(body.len().to_string().as_str())
        );
    }
    assert_accounted(&client, &[&server]).await;
}
per_mode!(a_form_with_a_stream_or_file_part_is_sent_once: h1, h1_tls, h2, h2c);
