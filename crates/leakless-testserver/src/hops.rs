//! Redirect chains as data: a reply with `redirects = N > 0` answers
//! `redirect_status` with a `Location` back to the same path, whose query
//! says `redirects=N-1` and keeps every other key, so the last hop gets
//! the reply the rest of the query asks for.

use crate::config::Reply;

/// Turns `reply` into the next redirect of its chain, if it is one: the
/// status, the `Location` (relative, same path) and an empty body.
pub(crate) fn redirect(reply: &mut Reply, path: &str, query: &str) -> bool {
    if reply.redirects == 0 {
        return false;
    }
    let left = reply.redirects - 1;
    let mut rest: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some("redirects"))
        .map(str::to_owned)
        .collect();
    if left > 0 {
        rest.insert(0, format!("redirects={left}"));
    }
    let location = if rest.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", rest.join("&"))
    };
    // The hop keeps the query's headers (a Set-Cookie on every hop) and
    // its close; faults, latency and the body are for the last one.
    *reply = Reply {
        status: reply.redirect_status,
        body_size: 0,
        close: reply.close,
        headers: std::mem::take(&mut reply.headers),
        ..Reply::default()
    };
    reply.headers.push(("Location".to_owned(), location));
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_hop_counts_down_and_keeps_the_rest_of_the_query() {
        let mut r = Reply {
            redirects: 2,
            redirect_status: 307,
            ..Reply::default()
        };
        assert!(redirect(&mut r, "/a", "size=3&redirects=2&n=1"));
        assert_eq!(r.status, 307);
        assert_eq!(
            r.headers,
            vec![(
                "Location".to_owned(),
                "/a?redirects=1&size=3&n=1".to_owned()
            )]
        );
        let mut r = Reply {
            redirects: 1,
            ..Reply::default()
        };
        assert!(redirect(&mut r, "/a", "redirects=1"));
        assert_eq!(r.headers[0].1, "/a");
        assert_eq!(r.status, 302);
        assert!(!redirect(&mut Reply::default(), "/a", ""));
    }
}
