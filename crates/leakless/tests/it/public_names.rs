//! The everyday client's public names, spelled as reqwest spells them:
//! checks outside the project compile against exactly these, so this file
//! fails to build if one is renamed or changes shape. Each name is also
//! used once against a real server, so the file checks more than types.

use std::sync::Arc;

use futures_util::StreamExt;
use leakless::{Client, ClientBuilder, HeaderMap, RequestBuilder, Response, StatusCode, Url};
use leakless::{
    cookie::{CookieStore, Jar},
    multipart::Form,
    redirect::{Action, Attempt, Policy},
};
use serde_json::{Value, json};

use crate::support::*;

/// Every builder name: the redirect policies, the cookie jar (the
/// `cookies` feature), default headers, the User-Agent and HTTP/2's
/// windows and frame size.
fn builders() -> Vec<ClientBuilder> {
    let custom: Policy = Policy::custom(|a: Attempt<'_>| -> Action {
        let _: (StatusCode, &Url, &[Url]) = (a.status(), a.url(), a.previous());
        a.follow()
    });
    let store: Arc<dyn CookieStore> = Arc::new(Jar::default());
    let _ = store;
    vec![
        Client::builder().redirect(Policy::none()),
        Client::builder().redirect(Policy::limited(3)),
        Client::builder().redirect(custom),
        Client::builder().cookie_store(true),
        Client::builder().cookie_provider(Arc::new(Jar::default())),
        Client::builder().default_headers(HeaderMap::new()),
        Client::builder().user_agent("names/1"),
        Client::builder()
            .http2_initial_stream_window_size(Some(1 << 20))
            .http2_initial_connection_window_size(4 << 20)
            .http2_max_frame_size(None),
    ]
}

/// Every request-side name: the method shortcuts and what fills a request.
fn requests(client: &Client, url: &str) -> Vec<RequestBuilder> {
    vec![
        client.put(url).json(&json!({"a": 1})),
        client.patch(url).form(&[("a", "1")]),
        client.delete(url).query(&[("a", 1)]),
        client.head(url).basic_auth("user", Some("pass")),
        client.get(url).basic_auth("user", None::<&str>),
        client.get(url).bearer_auth("token"),
        client.post(url).multipart(Form::new().text("a", "1")),
    ]
}

/// Every response-side name, and `Error::status` / `Error::url`.
async fn read(res: Response) {
    let _: &Url = res.url();
    let _: Option<u64> = res.content_length();
    let _: Option<std::net::SocketAddr> = res.remote_addr();
    let res = res.error_for_status().unwrap();
    let mut chunks = std::pin::pin!(res.bytes_stream());
    while let Some(chunk) = chunks.next().await {
        chunk.unwrap();
    }
}

#[tokio::test]
async fn every_public_name_of_the_everyday_client_compiles_and_answers() {
    let server = Mode::H1.server(Config::new());
    let url = Mode::H1.url(&server, "/?echo=1");
    for builder in builders() {
        let client = builder.build().unwrap();
        read(client.get(&url).send().await.unwrap()).await;
        assert_accounted(&client, &[&server]).await;
    }
    let client = Client::new();
    for req in requests(&client, &url) {
        read(req.send().await.unwrap()).await;
    }
    let back: Value = client
        .post(&url)
        .json(&json!({"n": 1}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(back, json!({"n": 1}));
    let e: leakless::Error = client
        .get(Mode::H1.url(&server, "/?status=418"))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap_err();
    let _: Option<StatusCode> = e.status();
    let _: Option<&Url> = e.url();
    assert_eq!(e.status(), Some(StatusCode::IM_A_TEAPOT));
    assert_accounted(&client, &[&server]).await;
}
