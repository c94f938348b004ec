//! `ClientBuilder`: every setting of a client. Limits carry Go's
//! `http.Transport` names in snake case; each setting's default is
//! documented once, here, and `build` rejects values that cannot work.

use std::time::Duration;

use super::Client;
use crate::{
    config::{Certificate, Config, Identity},
    connect::Connector,
    error::{Error, ErrorKind},
};

/// Configures a [`Client`]. Every setting has a bounded default; `build`
/// rejects combinations that cannot work.
///
/// ```
/// use std::time::Duration;
/// let client = leakless::Client::builder()
///     .max_conns_per_host(32)
///     .idle_conn_timeout(Duration::from_secs(30))
///     .timeout(Duration::from_secs(10))
///     .build()
///     .unwrap();
/// # drop(client);
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct ClientBuilder {
    /// Filled here and, for how connections are made, in `network`.
    pub(super) config: Config,
    /// `user_agent` was given a value that is no header value.
    bad_user_agent: Option<String>,
}

impl ClientBuilder {
    /// Go: `MaxConnsPerHost`. Default 100. Counts connections being dialed,
    /// busy and idle; requests beyond it wait in a FIFO queue for at most
    /// `pool_wait_timeout`. 0 means no limit.
    pub fn max_conns_per_host(mut self, n: usize) -> Self {
        self.config.max_conns_per_host = n;
        self
    }

    /// Go: `MaxIdleConnsPerHost`. Default: equal to `max_conns_per_host`
    /// (unlimited when that is 0). A connection returned when the host already
    /// has this many idle is closed. 0 keeps no idle connection.
    pub fn max_idle_conns_per_host(mut self, n: usize) -> Self {
        self.config.max_idle_conns_per_host = Some(n);
        self
    }

    /// Go: `MaxIdleConns`. Default 1000. Idle connections across all hosts;
    /// past it the least recently used host's oldest idle connection is
    /// closed. 0 means no limit.
    pub fn max_idle_conns(mut self, n: usize) -> Self {
        self.config.max_idle_conns = n;
        self
    }

    /// Go: `IdleConnTimeout`. Default 90 s. An idle connection unused this
    /// long is closed. `None` keeps idle connections until the server closes them.
    /// Idle counts from the end of the response's body; a body that came
    /// whole with its head ended, as the server sees it, when it arrived,
    /// however long the response was held before it was read.
    pub fn idle_conn_timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.config.idle_conn_timeout = d.into();
        self
    }

    /// No Go equivalent (HikariCP: `maxLifetime`). Default `None`: no limit.
    /// A connection older than this is not reused: it is closed when it
    /// comes back or while idle.
    pub fn max_conn_lifetime(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.config.max_conn_lifetime = d.into();
        self
    }

    /// How long a request waits for a slot when its host is at
    /// `max_conns_per_host`. Default 30 s. The error names the pool's counts.
    pub fn pool_wait_timeout(mut self, d: Duration) -> Self {
        self.config.pool_wait_timeout = d;
        self
    }

    /// Go: `DisableKeepAlives`. Default false. When true every request uses a
    /// new connection, sends `Connection: close`, and closes it afterwards.
    pub fn disable_keep_alives(mut self, yes: bool) -> Self {
        self.config.disable_keep_alives = yes;
        self
    }

    /// Go: `net.Dialer.Timeout`. Default 10 s. Bounds name resolution and the
    /// TCP handshake.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout = d;
        self
    }

    /// Go: `ResponseHeaderTimeout`. Default 30 s. Bounds the wait for the
    /// whole response head after the request was written.
    pub fn response_header_timeout(mut self, d: Duration) -> Self {
        self.config.response_header_timeout = d;
        self
    }

    /// No Go equivalent. Default 30 s. While writing the request or reading
    /// the body, the longest the connection may make no progress.
    pub fn read_idle_timeout(mut self, d: Duration) -> Self {
        self.config.read_idle_timeout = d;
        self
    }

    /// Go: `Client.Timeout`. Default `None`. The total deadline of a request,
    /// from `send` until the body is read; per request with
    /// [`RequestBuilder::timeout`](crate::RequestBuilder::timeout).
    pub fn timeout(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.config.timeout = d.into();
        self
    }

    /// Default 64 KiB. A response dropped before its end is drained in the
    /// background up to this many bytes to keep its connection; a larger
    /// remainder closes it. 0 never drains.
    pub fn drain_limit(mut self, bytes: u64) -> Self {
        self.config.drain_limit = bytes;
        self
    }

    /// Default 100 ms. How long a background drain may take before the
    /// connection is closed instead.
    pub fn drain_timeout(mut self, d: Duration) -> Self {
        self.config.drain_timeout = d;
        self
    }

    /// Default `None`. A response body longer than this fails with
    /// [`ErrorKind::BodyTooLarge`] and its connection is closed.
    pub fn max_body_size(mut self, bytes: impl Into<Option<u64>>) -> Self {
        self.config.max_body_size = bytes.into();
        self
    }

    /// Go: `TLSHandshakeTimeout`. Default 10 s.
    pub fn tls_handshake_timeout(mut self, d: Duration) -> Self {
        self.config.tls_handshake_timeout = d;
        self
    }

    /// Trusts `cert` as a root, besides the built-in roots.
    pub fn add_root_certificate(mut self, cert: Certificate) -> Self {
        self.config.tls_options.roots.push(cert);
        self
    }

    /// Default true: trust the bundled Mozilla roots (webpki-roots).
    pub fn tls_built_in_roots(mut self, yes: bool) -> Self {
        self.config.tls_options.built_in_roots = yes;
        self
    }

    /// Default false: also trust the platform's CA store.
    pub fn tls_platform_roots(mut self, yes: bool) -> Self {
        self.config.tls_options.platform_roots = yes;
        self
    }

    /// A client certificate for servers that ask for one (mutual TLS).
    pub fn identity(mut self, identity: Identity) -> Self {
        self.config.tls_options.identity = Some(identity);
        self
    }

    /// **Dangerous**: accept any server certificate, whoever issued it and
    /// whatever name it carries. Anyone on the path can read and change
    /// the traffic. For tests against self-signed servers only.
    pub fn danger_accept_invalid_certs(mut self, yes: bool) -> Self {
        self.config.tls_options.accept_invalid_certs = yes;
        self
    }

    /// Go: `Transport.ForceAttemptHTTP2` negated, i.e. `DisableHTTP2`.
    /// Default false. When true, TLS offers only `http/1.1` by ALPN.
    pub fn disable_http2(mut self, yes: bool) -> Self {
        self.config.disable_http2 = yes;
        self
    }

    /// Speak HTTP/2 without TLS (h2c) to `http://` URLs, with prior
    /// knowledge that the server does. Default off.
    pub fn http2_prior_knowledge(mut self) -> Self {
        self.config.http2_prior_knowledge = true;
        self
    }

    /// Go: `http2.Transport.ReadIdleTimeout`. Default 30 s. How often an
    /// HTTP/2 connection is pinged to prove the peer is alive; `None` never.
    pub fn http2_keep_alive_interval(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.config.http2_keep_alive_interval = d.into();
        self
    }

    /// Go: `http2.Transport.PingTimeout`. Default 10 s. A ping unanswered
    /// this long closes the connection; it is never handed out again.
    pub fn http2_keep_alive_timeout(mut self, d: Duration) -> Self {
        self.config.http2_keep_alive_timeout = d;
        self
    }

    /// reqwest: `http2_initial_stream_window_size`. Default 1 MiB; `None`
    /// goes back to it. How many bytes of one response the server may send
    /// ahead of what the caller has read (HTTP/2's per-stream flow control
    /// window; the protocol's own default is 65,535 bytes). Larger lets one
    /// stream go faster over a long round trip; 1 to 2^31 - 1. A tiny
    /// window still delivers, only slowly: the server may send no more
    /// than it before we grant more (a 1-byte window carried 1,000 bytes
    /// in 0.28 s over loopback in a debug build).
    pub fn http2_initial_stream_window_size(mut self, size: impl Into<Option<u32>>) -> Self {
        self.config.http2_initial_stream_window_size =
            size.into().unwrap_or(crate::config::HTTP2_STREAM_WINDOW);
        self
    }

    /// reqwest: `http2_initial_connection_window_size`. Default 4 MiB;
    /// `None` goes back to it. The same for all the streams of one
    /// connection together: the most a connection holds buffered for
    /// callers that stopped reading. 1 to 2^31 - 1.
    pub fn http2_initial_connection_window_size(mut self, size: impl Into<Option<u32>>) -> Self {
        self.config.http2_initial_connection_window_size = size
            .into()
            .unwrap_or(crate::config::HTTP2_CONNECTION_WINDOW);
        self
    }

    /// reqwest: `http2_max_frame_size`. Default (`None`) the protocol's
    /// 16 KiB. The largest frame the server may send us; 16,384 to
    /// 16,777,215.
    pub fn http2_max_frame_size(mut self, size: impl Into<Option<u32>>) -> Self {
        self.config.http2_max_frame_size = size.into();
        self
    }

    /// Default off. A response (or lease) that holds its connection longer
    /// than this is reported once at WARN with the call site that sent the
    /// request, its host and age, and again at INFO when it is released
    /// (HikariCP's `leakDetectionThreshold`). [`Client::outstanding`] lists
    /// what is held at any time, with or without a threshold.
    pub fn leak_threshold(mut self, d: impl Into<Option<Duration>>) -> Self {
        self.config.leak_threshold = d.into();
        self
    }

    /// Receives every request's events (connection got, written, first
    /// byte, body done, returned or closed, retries...). Off by default;
    /// with none set the events cost one branch each.
    pub fn observer(mut self, observer: impl crate::trace::Observer) -> Self {
        self.config.observer = Some(std::sync::Arc::new(observer));
        self
    }

    // Policies around each exchange: redirects.

    /// Go: `Client.CheckRedirect`; reqwest: `redirect`. Default
    /// `Policy::limited(10)`. Which redirects to follow; per request with
    /// [`RequestBuilder::redirect`](crate::RequestBuilder::redirect). The
    /// method, body and headers of each hop follow Go's rules whatever the
    /// policy: 301, 302 and 303 turn other methods than GET and HEAD into a
    /// GET without body; 307 and 308 keep both (a streamed body cannot be
    /// sent again, so its 307 or 308 is returned as it is); `Authorization`,
    /// `Cookie`, `Proxy-Authorization` and `WWW-Authenticate` never go to
    /// another scheme, host or port.
    pub fn redirect(mut self, policy: crate::redirect::Policy) -> Self {
        self.config.redirect = policy;
        self
    }

    /// reqwest: `referer`. Default true: a hop after a redirect says where
    /// it came from in `Referer` (never from https to http), as Go does.
    pub fn referer(mut self, yes: bool) -> Self {
        self.config.referer = yes;
        self
    }

    /// reqwest: `default_headers`. Default: only `User-Agent`. Headers
    /// sent with every request that does not set the same name itself;
    /// added to the defaults (a name given here replaces the default's).
    pub fn default_headers(mut self, headers: http::HeaderMap) -> Self {
        for (name, value) in &headers {
            self.config.default_headers.insert(name, value.clone());
        }
        self
    }

    /// reqwest: `user_agent`. Default `leakless/VERSION`. The `User-Agent`
    /// of every request that sets none; an invalid value is reported by `build`.
    pub fn user_agent<V>(mut self, value: V) -> Self
    where
        V: TryInto<http::HeaderValue>,
        V::Error: Into<http::Error>,
    {
        match value.try_into() {
            Ok(v) => {
                self.config
                    .default_headers
                    .insert(http::header::USER_AGENT, v);
            }
            Err(e) => self.bad_user_agent = Some(e.into().to_string()),
        }
        self
    }

    /// reqwest: `cookie_store`. Default false. True: a fresh
    /// [`Jar`](crate::cookie::Jar) keeps the cookies servers set (every
    /// redirect hop's too) and sends them back where they apply.
    #[cfg(feature = "cookies")]
    pub fn cookie_store(self, yes: bool) -> Self {
        if yes {
            self.cookie_provider(std::sync::Arc::new(crate::cookie::Jar::default()))
        } else {
            let mut b = self;
            b.config.cookie_store = None;
            b
        }
    }

    /// reqwest: `cookie_provider`. Default none. Cookies kept in `store`
    /// (which other clients may share).
    #[cfg(feature = "cookies")]
    pub fn cookie_provider<C: crate::cookie::CookieStore + 'static>(
        mut self,
        store: std::sync::Arc<C>,
    ) -> Self {
        self.config.cookie_store = Some(store);
        self
    }

    /// reqwest: `gzip`. Default on (cargo feature `gzip`): ask for gzip
    /// and decode it. As in Go, a request that sets its own
    /// `Accept-Encoding` gets the body as sent, not decoded.
    #[cfg(feature = "gzip")]
    pub fn gzip(mut self, yes: bool) -> Self {
        self.config.decompress.gzip = yes;
        self
    }

    /// reqwest: `brotli`. Default on (cargo feature `brotli`): ask for
    /// `br` and decode it.
    #[cfg(feature = "brotli")]
    pub fn brotli(mut self, yes: bool) -> Self {
        self.config.decompress.brotli = yes;
        self
    }

    /// reqwest: `zstd`. Default on (cargo feature `zstd`): ask for zstd
    /// and decode it.
    #[cfg(feature = "zstd")]
    pub fn zstd(mut self, yes: bool) -> Self {
        self.config.decompress.zstd = yes;
        self
    }

    /// reqwest: `deflate`. Default on (cargo feature `deflate`): ask for
    /// deflate (zlib, or raw deflate as some servers send) and decode it.
    #[cfg(feature = "deflate")]
    pub fn deflate(mut self, yes: bool) -> Self {
        self.config.decompress.deflate = yes;
        self
    }

    /// Checks the settings and builds the client.
    pub fn build(mut self) -> Result<Client, Error> {
        self.read_proxy_env(|name| std::env::var(name).ok());
        self.config.accept_encoding = accept_encoding(&self.config.decompress);
        if let Some(why) = self.bad_user_agent.take() {
            return Err(Error::new(
                ErrorKind::Builder,
                format!("user_agent is not a valid header value: {why}"),
            ));
        }
        let mut plain = http::HeaderMap::new();
        let offers = crate::policy::with_defaults(&self.config, &http::Method::GET, &mut plain);
        self.config.plain_headers = Some((plain, offers));
        let connector = Connector::new(&self.config)?;
        let c = &self.config;
        let zero = |name: &str| {
            Err(Error::new(
                ErrorKind::Builder,
                format!(
                    "{name} must be greater than zero; give it a duration or leave the default"
                ),
            ))
        };
        if c.connect_timeout.is_zero() {
            return zero("connect_timeout");
        }
        if c.response_header_timeout.is_zero() {
            return zero("response_header_timeout");
        }
        if c.read_idle_timeout.is_zero() {
            return zero("read_idle_timeout");
        }
        if c.tls_handshake_timeout.is_zero() {
            return zero("tls_handshake_timeout");
        }
        if c.http2_keep_alive_timeout.is_zero() {
            return zero("http2_keep_alive_timeout");
        }
        if c.pool_wait_timeout.is_zero() {
            return zero("pool_wait_timeout");
        }
        if c.idle_conn_timeout.is_some_and(|d| d.is_zero()) {
            return zero("idle_conn_timeout (use None for no limit)");
        }
        // HTTP/2's bounds (RFC 9113 §6.5.2, §6.9.1). A window of 0 would
        // let the server send nothing until we grant more, which we only
        // do for bytes received: every response would hang.
        let window = |name: &str, size: u32| {
            if (1..=MAX_WINDOW).contains(&size) {
                return Ok(());
            }
            Err(Error::new(
                ErrorKind::Builder,
                format!("{name} is {size}; HTTP/2 allows 1 to {MAX_WINDOW} (2^31 - 1) bytes"),
            ))
        };
        window(
            "http2_initial_stream_window_size",
            c.http2_initial_stream_window_size,
        )?;
        window(
            "http2_initial_connection_window_size",
            c.http2_initial_connection_window_size,
        )?;
        if let Some(size) = c.http2_max_frame_size
            && !(MIN_FRAME..=MAX_FRAME).contains(&size)
        {
            return Err(Error::new(
                ErrorKind::Builder,
                format!(
                    "http2_max_frame_size is {size}; HTTP/2 allows {MIN_FRAME} to {MAX_FRAME} \
                     (2^24 - 1) bytes"
                ),
            ));
        }
        Ok(Client::from_parts(self.config, connector))
    }
}

/// HTTP/2's largest flow-control window.
const MAX_WINDOW: u32 = (1 << 31) - 1;
/// HTTP/2's bounds on `SETTINGS_MAX_FRAME_SIZE`.
const MIN_FRAME: u32 = 1 << 14;
/// See `MIN_FRAME`.
const MAX_FRAME: u32 = (1 << 24) - 1;

/// The `Accept-Encoding` a client offers: every encoding it decodes.
fn accept_encoding(d: &crate::config::Decompress) -> Option<http::HeaderValue> {
    let on: Vec<&str> = ["gzip", "br", "zstd", "deflate"]
        .into_iter()
        .filter(|t| d.allows(t))
        .collect();
    (!on.is_empty()).then(|| http::HeaderValue::from_str(&on.join(", ")).expect("tokens"))
}
