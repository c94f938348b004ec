//! The flags of `leakless tune`: the sweep's bounds, the keep-alive probe,
//! the output, and the request flags of `bench` (same names, so a request
//! that was benched can be tuned by changing the subcommand).

use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgGroup, Args, ValueEnum};

use crate::duration;

/// Which client's settings to print as code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Lang {
    Leakless,
    Go,
    Reqwest,
    All,
}

/// Arguments of `leakless tune`.
#[derive(Args, Debug, Clone)]
#[command(group(ArgGroup::new("protocol").args(["http1", "http2", "h2c"])))]
pub struct TuneArgs {
    /// The URL to measure (http:// or https://).
    #[arg(value_name = "URL")]
    pub url: String,

    /// The highest concurrency the sweep may reach.
    #[arg(long, value_name = "N", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_concurrency: u32,

    /// How long each concurrency step loads the server.
    #[arg(long, value_name = "DUR", default_value = "3s",
          value_parser = duration::parse_positive)]
    pub step_duration: Duration,

    /// The whole sweep's time budget (the keep-alive probe comes on top).
    #[arg(long, value_name = "DUR", default_value = "60s",
          value_parser = duration::parse_positive)]
    pub budget: Duration,

    /// Probe how long the server keeps an idle connection (the default).
    #[arg(long, overrides_with = "no_probe_keep_alive")]
    pub probe_keep_alive: bool,

    /// Skip the keep-alive probe (it can take up to --probe-max).
    #[arg(long, overrides_with = "probe_keep_alive")]
    pub no_probe_keep_alive: bool,

    /// The longest idle time the probe tries; a server that keeps
    /// connections longer is reported as "at least this".
    #[arg(long, value_name = "DUR", default_value = "75s",
          value_parser = duration::parse_positive)]
    pub probe_max: Duration,

    /// Connections per knee in the recommended cap (knee × headroom), for
    /// latency spikes and uneven load.
    #[arg(long, value_name = "X", default_value_t = 1.5)]
    pub headroom: f64,

    /// Which client's settings to print as code.
    #[arg(long, value_enum, default_value_t = Lang::All)]
    pub lang: Lang,

    /// Print one JSON object with every number and nothing else.
    #[arg(long)]
    pub json: bool,

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

    /// Runtime worker threads. Default: the CPUs this process may run on.
    #[arg(short = 't', long, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
}

impl TuneArgs {
    pub fn probe(&self) -> bool {
        !self.no_probe_keep_alive
    }

    pub fn threads(&self) -> usize {
        self.threads
            .map(usize::from)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }

    /// `--http2` over http means h2c, as in bench.
    pub fn prior_knowledge(&self) -> bool {
        self.h2c || (self.http2 && self.url.starts_with("http://"))
    }
}
