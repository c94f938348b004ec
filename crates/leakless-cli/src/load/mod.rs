//! The load engine `bench` and `tune` share: `concurrency` workers sending
//! one request over and over through one client, timed and counted, with
//! the pool sampled beside them.
//!
//! Layout:
//! - [`args`]: the request flags both commands take ([`RequestArgs`]);
//! - [`request`]: the request repeated ([`Template`]);
//! - [`plan`]: when to send and when to stop (count, deadline, rate);
//! - [`run`]: the one load loop ([`Load`] in, [`Run`] out);
//! - [`recorder`]: what workers write down per request (a `Tally` and the
//!   latency of each interval);
//! - [`latency`]: HDR histograms, their percentiles ([`Latency`]) and their
//!   standard text encoding;
//! - [`monitor`]: the thread sampling the pool into the [`series`] (points
//!   on the wall clock's quarter seconds, [`Second`]s);
//! - [`progress`]: the live display on stderr;
//! - [`runtime`](mod@runtime): the tokio runtime the workers run on.
//!
//! Nothing here knows what a command reports: `bench` turns a [`Run`] into
//! its summary, `tune` into one step of its sweep.

mod args;
pub mod latency;
mod monitor;
mod plan;
mod progress;
mod recorder;
mod request;
mod run;
mod runtime;
mod series;

pub use args::RequestArgs;
pub use latency::{Latency, millis};
pub use plan::{Plan, Stop};
pub use progress::{Length, Progress};
pub use request::{Template, parse_url};
pub use run::{GRACE, Load, Run};
pub use runtime::runtime;
pub use series::{Point, Second};
