//! The flags of `leakless tune`: the sweep's bounds, the keep-alive probe,
//! the output, and the request flags it shares with `bench`.

use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::duration;
use crate::load::RequestArgs;

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

    #[command(flatten)]
    pub request: RequestArgs,
}

impl TuneArgs {
    pub fn probe(&self) -> bool {
        !self.no_probe_keep_alive
    }
}
