//! `Config`: every setting of a client and its default. The builder that
//! fills it, with each setting's documentation, is `ClientBuilder`.

mod dial;
mod no_proxy;
mod proxy;
mod proxy_env;
mod tls;

use std::time::Duration;

pub(crate) use dial::DialOptions;
pub use no_proxy::NoProxy;
pub(crate) use proxy::Proxies;
pub use proxy::Proxy;
pub(crate) use proxy_env::from_env as proxies_from_env;
pub(crate) use tls::TlsOptions;
pub use tls::{Certificate, Identity, TlsInfo, Version as TlsVersion};

/// The HTTP/2 receive windows we advertise unless told otherwise. On
/// loopback a 1 MiB stream window let one stream run at full speed, where
/// the protocol's 65,535 bytes held it to less than half, at twice the CPU
/// per MB (`scripts/h2-windows`); the connection's four streams' worth
/// bounds what a caller that stops reading leaves buffered.
pub(crate) const HTTP2_STREAM_WINDOW: u32 = 1 << 20;
/// See `HTTP2_STREAM_WINDOW`.
pub(crate) const HTTP2_CONNECTION_WINDOW: u32 = 4 << 20;

/// Every setting of a client. Filled by `ClientBuilder`; read-only after.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub max_conns_per_host: usize,
    pub max_idle_conns_per_host: Option<usize>,
    pub max_idle_conns: usize,
    pub idle_conn_timeout: Option<Duration>,
    pub max_conn_lifetime: Option<Duration>,
    pub pool_wait_timeout: Duration,
    pub disable_keep_alives: bool,
    pub connect_timeout: Duration,
    pub response_header_timeout: Duration,
    pub read_idle_timeout: Duration,
    pub timeout: Option<Duration>,
    pub drain_limit: u64,
    pub drain_timeout: Duration,
    pub max_body_size: Option<u64>,
    pub tls_handshake_timeout: Duration,
    pub disable_http2: bool,
    pub http2_prior_knowledge: bool,
    pub http2_keep_alive_interval: Option<Duration>,
    pub http2_keep_alive_timeout: Duration,
    pub http2_initial_stream_window_size: u32,
    pub http2_initial_connection_window_size: u32,
    /// `None`: the protocol's 16 KiB.
    pub http2_max_frame_size: Option<u32>,
    pub leak_threshold: Option<Duration>,
    pub observer: Option<std::sync::Arc<dyn crate::trace::Observer>>,
    /// Plain data; the connect layer builds its TLS connector from it.
    pub tls_options: TlsOptions,
    /// How connections are opened: name resolution, the socket's options,
    /// proxies, a unix socket.
    pub dial: DialOptions,
    // What the policies above one exchange do: redirects, decompression.
    pub redirect: crate::redirect::Policy,
    pub referer: bool,
    pub decompress: Decompress,
    /// Made by `ClientBuilder::build` from `decompress`: what to offer.
    pub accept_encoding: Option<http::HeaderValue>,
    /// Sent with every request that does not set the same header itself;
    /// `User-Agent: leakless/VERSION` unless changed.
    pub default_headers: http::HeaderMap,
    /// What a request that sets no header of its own starts with: the
    /// default headers and the `Accept-Encoding` offer, and whether that
    /// offer is in them. Built by `ClientBuilder::build`; `None` before.
    pub plain_headers: Option<(http::HeaderMap, bool)>,
    /// Asked for each hop's `Cookie`, told each `Set-Cookie`.
    #[cfg(feature = "cookies")]
    pub cookie_store: Option<std::sync::Arc<dyn crate::cookie::CookieStore>>,
}

/// Which response encodings to ask for and decode; each needs its cargo
/// feature as well.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Decompress {
    pub gzip: bool,
    pub brotli: bool,
    pub zstd: bool,
    pub deflate: bool,
}

impl Decompress {
    /// Whether the encoding named by the HTTP token `token` is on.
    pub fn allows(&self, token: &str) -> bool {
        match token {
            "gzip" => self.gzip,
            "br" => self.brotli,
            "zstd" => self.zstd,
            "deflate" => self.deflate,
            _ => false,
        }
    }
}

impl Default for Decompress {
    fn default() -> Decompress {
        Decompress {
            gzip: cfg!(feature = "gzip"),
            brotli: cfg!(feature = "brotli"),
            zstd: cfg!(feature = "zstd"),
            deflate: cfg!(feature = "deflate"),
        }
    }
}

impl Config {
    /// Idle per host defaults to the per-host cap: a connection worth opening
    /// is worth keeping (Go's default of 2 is what makes TIME_WAIT pile up).
    pub fn idle_per_host(&self) -> usize {
        match self.max_idle_conns_per_host {
            Some(n) => n,
            None if self.max_conns_per_host == 0 => usize::MAX,
            None => self.max_conns_per_host,
        }
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_conns_per_host: 100,
            max_idle_conns_per_host: None,
            max_idle_conns: 1000,
            idle_conn_timeout: Some(Duration::from_secs(90)),
            max_conn_lifetime: None,
            pool_wait_timeout: Duration::from_secs(30),
            disable_keep_alives: false,
            connect_timeout: Duration::from_secs(10),
            response_header_timeout: Duration::from_secs(30),
            read_idle_timeout: Duration::from_secs(30),
            timeout: None,
            drain_limit: 64 * 1024,
            drain_timeout: Duration::from_millis(100),
            max_body_size: None,
            tls_handshake_timeout: Duration::from_secs(10),
            disable_http2: false,
            http2_prior_knowledge: false,
            http2_keep_alive_interval: Some(Duration::from_secs(30)),
            http2_keep_alive_timeout: Duration::from_secs(10),
            http2_initial_stream_window_size: HTTP2_STREAM_WINDOW,
            http2_initial_connection_window_size: HTTP2_CONNECTION_WINDOW,
            http2_max_frame_size: None,
            leak_threshold: None,
            observer: None,
            tls_options: TlsOptions::default(),
            redirect: crate::redirect::Policy::default(),
            referer: true,
            dial: DialOptions::default(),
            decompress: Decompress::default(),
            accept_encoding: None,
            default_headers: {
                let mut h = http::HeaderMap::new();
                h.insert(
                    http::header::USER_AGENT,
                    http::HeaderValue::from_static(concat!("leakless/", env!("CARGO_PKG_VERSION"))),
                );
                h
            },
            plain_headers: None,
            #[cfg(feature = "cookies")]
            cookie_store: None,
        }
    }
}
