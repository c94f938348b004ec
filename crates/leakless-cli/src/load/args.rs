//! The request flags `bench` and `tune` share (same names, so a request
//! that was benched can be tuned by changing the subcommand): what to send,
//! which protocol, which certificates, how many threads.

use std::path::PathBuf;

use clap::{ArgGroup, Args};
use http::Uri;
use leakless::{Bytes, ClientBuilder};

use super::request::Template;

/// The request a run repeats and how it travels.
#[derive(Args, Debug, Clone)]
#[command(group(ArgGroup::new("protocol").args(["http1", "http2", "h2c"])))]
pub struct RequestArgs {
    /// HTTP method.
    #[arg(short = 'm', long, value_name = "M", default_value = "GET")]
    pub method: String,

    /// A request header, 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "K: V")]
    pub headers: Vec<String>,

    /// The request body.
    #[arg(long, value_name = "STR", conflicts_with = "body_file")]
    pub body: Option<String>,

    /// The request body, read from a file once.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,

    /// HTTP/1.1 only (TLS offers no h2 by ALPN).
    #[arg(long)]
    pub http1: bool,

    /// HTTP/2: by ALPN over https, with prior knowledge (h2c) over http.
    #[arg(long)]
    pub http2: bool,

    /// HTTP/2 over cleartext with prior knowledge.
    #[arg(long)]
    pub h2c: bool,

    /// Accept any TLS certificate (dangerous; for self-signed test servers).
    #[arg(long, short = 'k')]
    pub insecure: bool,

    /// Runtime worker threads. Default: the CPUs this process may run on
    /// (so `taskset -c 1` gives one).
    #[arg(short = 't', long, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
}

impl RequestArgs {
    pub fn threads(&self) -> usize {
        self.threads
            .map(usize::from)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// The request to repeat, to `uri`; the body file is read here, once.
    pub fn template(&self, uri: Uri) -> Result<Template, String> {
        let body = match (&self.body, &self.body_file) {
            (Some(s), _) => Some(Bytes::from(s.clone())),
            (None, Some(f)) => Some(Bytes::from(
                std::fs::read(f).map_err(|e| format!("--body-file {}: {e}", f.display()))?,
            )),
            (None, None) => None,
        };
        Template::new(&self.method, uri, &self.headers, body)
    }

    /// The protocol and certificate flags as client settings for `uri`
    /// (`--http2` over http means h2c).
    pub fn configure(&self, b: ClientBuilder, uri: &Uri) -> ClientBuilder {
        let mut b = b.danger_accept_invalid_certs(self.insecure);
        if self.http1 {
            b = b.disable_http2(true);
        }
        let cleartext = uri.scheme_str() == Some("http");
        if self.h2c || (self.http2 && cleartext) {
            b = b.http2_prior_knowledge();
        }
        b
    }

    /// The protocol flag's name, as the reports show it: `http1`, `http2`,
    /// `h2c`, or `auto` (ALPN over TLS, HTTP/1.1 otherwise).
    pub fn protocol(&self) -> &'static str {
        if self.http1 {
            "http1"
        } else if self.h2c {
            "h2c"
        } else if self.http2 {
            "http2"
        } else {
            "auto"
        }
    }
}
