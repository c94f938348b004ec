//! Fetching a Go process's goroutine profile from its net/http/pprof
//! handler, on a thread of its own, at most every [`EVERY`]: a full dump
//! stops the world, so it is never taken per sample.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::classify::{NetHttp, Tracker};

/// How often the dumps are taken.
pub const EVERY: Duration = Duration::from_secs(10);
/// A fetch that takes longer is abandoned (and said so).
pub const TIMEOUT: Duration = Duration::from_secs(5);
/// A dump larger than this is cut there: its last goroutines are not read.
pub const MAX_BYTES: usize = 32 << 20;

/// Where the profiles are: `--pprof` given as the handler's base
/// (`http://127.0.0.1:6060/debug/pprof/`), the goroutine profile itself,
/// or just the server (`http://127.0.0.1:6060`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    goroutine: String,
}

impl Source {
    pub fn parse(url: &str) -> Result<Source, String> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("--pprof {url}: not a URL ({e})"))?;
        if uri.scheme_str() != Some("http") && uri.scheme_str() != Some("https") {
            return Err(format!(
                "--pprof {url}: give the http:// address of the program's net/http/pprof handler, e.g. http://127.0.0.1:6060/debug/pprof/"
            ));
        }
        if uri.query().is_some() {
            return Err(format!(
                "--pprof {url}: no query, please: watch asks for ?debug=1 and ?debug=2 itself"
            ));
        }
        let base = url.trim_end_matches('/');
        let path = uri.path().trim_end_matches('/');
        let goroutine = if path.ends_with("/goroutine") {
            base.to_string()
        } else if path.is_empty() {
            format!("{base}/debug/pprof/goroutine")
        } else {
            format!("{base}/goroutine")
        };
        Ok(Source { goroutine })
    }

    pub fn url(&self, debug: u8) -> String {
        format!("{}?debug={debug}", self.goroutine)
    }
}

/// The last dump's reading, or why there is none.
#[derive(Clone, Debug)]
pub struct Latest {
    /// Seconds into the watch when it was taken.
    pub at: f64,
    pub result: Result<NetHttp, String>,
}

/// The fetching thread; stops when dropped.
pub struct Poller {
    pub source: Source,
    latest: Arc<Mutex<Option<Latest>>>,
    _stop: Sender<()>,
}

impl Poller {
    /// Starts fetching now, then every [`EVERY`]; `start` is the watch's
    /// clock.
    pub fn start(source: Source, start: Instant) -> Result<Poller, String> {
        let latest = Arc::new(Mutex::new(None));
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = latest.clone();
        let src = source.clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("--pprof: runtime: {e}"))?;
        // One request at a time on one connection, closed after each: watch
        // must not add a connection the Go process holds between dumps.
        let client = leakless::Client::builder()
            .disable_keep_alives(true)
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| format!("--pprof: {e}"))?;
        thread::Builder::new()
            .name("pprof".into())
            .spawn(move || {
                let mut tracker = Tracker::new();
                loop {
                    let at = start.elapsed().as_secs_f64();
                    let result = rt
                        .block_on(dumps(&client, &src))
                        .map(|(d2, d1)| tracker.read(at, &d2, d1.as_deref()));
                    if let Ok(mut l) = shared.lock() {
                        *l = Some(Latest { at, result });
                    }
                    match stopped.recv_timeout(EVERY) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                }
            })
            .map_err(|e| format!("--pprof: thread: {e}"))?;
        Ok(Poller {
            source,
            latest,
            _stop: stop,
        })
    }

    pub fn latest(&self) -> Option<Latest> {
        self.latest.lock().ok().and_then(|l| l.clone())
    }
}

/// `debug=2` (required) and `debug=1` (labels; optional).
async fn dumps(
    client: &leakless::Client,
    src: &Source,
) -> Result<(String, Option<String>), String> {
    let d2 = get(client, &src.url(2)).await?;
    let d1 = get(client, &src.url(1)).await.ok();
    Ok((d2, d1))
}

async fn get(client: &leakless::Client, url: &str) -> Result<String, String> {
    let mut res = client
        .get(url)
        .send()
        .await
        .map_err(|e| format!("fetching {url}: {e}"))?;
    if !res.status().is_success() {
        return Err(format!(
            "fetching {url}: HTTP {} (is net/http/pprof registered on that server?)",
            res.status()
        ));
    }
    let mut body = Vec::new();
    while let Some(chunk) = res
        .chunk()
        .await
        .map_err(|e| format!("reading {url}: {e}"))?
    {
        let room = MAX_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= MAX_BYTES {
            // Cut at the last whole goroutine; dropping the response
            // closes the connection.
            if let Some(end) = body.windows(2).rposition(|w| w == b"\n\n") {
                body.truncate(end + 1);
            }
            break;
        }
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_goroutine_profile_from_any_usual_form() {
        let want = "http://127.0.0.1:6060/debug/pprof/goroutine?debug=2";
        for url in [
            "http://127.0.0.1:6060/debug/pprof/",
            "http://127.0.0.1:6060/debug/pprof",
            "http://127.0.0.1:6060/debug/pprof/goroutine",
            "http://127.0.0.1:6060",
            "http://127.0.0.1:6060/",
        ] {
            assert_eq!(Source::parse(url).unwrap().url(2), want, "{url}");
        }
        assert_eq!(
            Source::parse("http://[::1]:6060/custom/pprof/")
                .unwrap()
                .url(1),
            "http://[::1]:6060/custom/pprof/goroutine?debug=1"
        );
    }

    #[test]
    fn bad_urls_say_what_to_give() {
        let e = Source::parse("127.0.0.1:6060").unwrap_err();
        assert!(e.contains("http:// address"), "{e}");
        let e = Source::parse("http://h:1/debug/pprof/goroutine?debug=2").unwrap_err();
        assert!(e.contains("no query"), "{e}");
        let e = Source::parse("http://exa mple").unwrap_err();
        assert!(e.contains("not a URL"), "{e}");
    }
}
