//! What a reqwest user reaches for: the method shortcuts, credentials,
//! default headers and the User-Agent, and errors for 4xx/5xx.

use leakless::{Client, HeaderMap, StatusCode};

use crate::support::*;

async fn the_method_shortcuts_send_their_method(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let url = mode.url(&server, "/");
    for (req, method) in [
        (client.get(&url), "GET"),
        (client.post(&url), "POST"),
        (client.put(&url), "PUT"),
        (client.patch(&url), "PATCH"),
        (client.delete(&url), "DELETE"),
        (client.head(&url), "HEAD"),
    ] {
        read_body(req).await;
        assert_eq!(last_request(&server).method, method);
    }
    assert_eq!(client.stats().total.created, 1);
    assert_accounted(&client, &[&server]).await;
}
per_mode!(the_method_shortcuts_send_their_method: h1, h1_tls, h2, h2c);

async fn basic_and_bearer_auth_set_authorization(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    let url = mode.url(&server, "/");
    let cases = [
        (
            client.get(&url).basic_auth("aladdin", Some("opensesame")),
            "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
        ),
        (
            client.get(&url).basic_auth("user", None::<&str>),
            "Basic dXNlcjo=",
        ),
        (client.get(&url).bearer_auth("t0ken"), "Bearer t0ken"),
    ];
    for (req, want) in cases {
        read_body(req).await;
        assert_eq!(last_request(&server).header("authorization"), Some(want));
    }
    assert_accounted(&client, &[&server]).await;
}
per_mode!(basic_and_bearer_auth_set_authorization: h1, h1_tls, h2, h2c);

async fn default_headers_and_user_agent_go_unless_the_request_sets_them(mode: Mode) {
    let server = mode.server(Config::new());
    let url = mode.url(&server, "/");
    let plain = mode.client(&server, Client::builder());
    plain.get(&url).send().await.unwrap().bytes().await.unwrap();
    let ua = format!("leakless/{}", env!("CARGO_PKG_VERSION"));
    assert_eq!(
        last_request(&server).header("user-agent"),
        Some(ua.as_str())
    );
    assert_accounted(&plain, &[&server]).await;
    drop(plain);

    let mut defaults = HeaderMap::new();
    defaults.insert("x-team", "pool".parse().unwrap());
    let client = mode.client(
        &server,
        Client::builder()
            .default_headers(defaults)
            .user_agent("my-app/2"),
    );
    read_body(client.get(&url)).await;
    let req = last_request(&server);
    assert_eq!(req.header("x-team"), Some("pool"));
    assert_eq!(req.header("user-agent"), Some("my-app/2"));
    read_body(
        client
            .get(&url)
            .header("x-team", "mine")
            .header("user-agent", "once/1"),
    )
    .await;
    let req = last_request(&server);
    let teams: Vec<_> = req
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("x-team"))
        .collect();
    assert_eq!(teams.len(), 1, "{:?}", req.headers);
    assert_eq!(req.header("x-team"), Some("mine"));
    assert_eq!(req.header("user-agent"), Some("once/1"));
    // A redirect's next hop changes the headers (a Referer): the client's
    // defaults, sent uncopied on the first hop, go with it too.
    read_body(client.get(mode.url(&server, "/?redirects=1"))).await;
    let req = last_request(&server);
    assert_eq!(req.header("x-team"), Some("pool"));
    assert_eq!(req.header("user-agent"), Some("my-app/2"));
    assert!(req.header("referer").is_some(), "{:?}", req.headers);
    assert!(Client::builder().user_agent("bad\nvalue").build().is_err());
    assert_accounted(&client, &[&server]).await;
}
per_mode!(default_headers_and_user_agent_go_unless_the_request_sets_them: h1, h1_tls, h2, h2c);

/// A 4xx or 5xx becomes an error with its status and URL; the response it
/// replaces goes through the normal drop path (drained, connection kept).
async fn error_for_status_turns_4xx_and_5xx_into_errors(mode: Mode) {
    let server = mode.server(Config::new());
    let client = mode.client(&server, Client::builder());
    for status in [404u16, 503] {
        let url = mode.url(&server, &format!("/?status={status}&size=100"));
        let e = client
            .get(&url)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap_err();
        assert!(e.is_status(), "{e:?}");
        assert_eq!(e.status(), Some(StatusCode::from_u16(status).unwrap()));
        assert_eq!(e.url().unwrap().as_str(), url);
        assert!(e.to_string().contains(&status.to_string()), "{e}");
        // Dropped with its body unread: drained in the background, kept.
        wait_for_stats(&client, "the drain", |s| s.idle == 1).await;
    }
    let ok = client.get(mode.url(&server, "/")).send().await.unwrap();
    let ok = ok.error_for_status().unwrap();
    assert_eq!(ok.text().await.unwrap(), "hello");
    assert_accounted(&client, &[&server]).await;
    assert_eq!(
        client.stats().total.created,
        1,
        "the dropped 4xx/5xx bodies were drained"
    );
}
per_mode!(error_for_status_turns_4xx_and_5xx_into_errors: h1, h1_tls, h2, h2c);
