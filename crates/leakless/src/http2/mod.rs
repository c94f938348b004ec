//! HTTP/2 over the `h2` crate. A connection is shared: many requests each
//! take a stream on it, up to the server's `MAX_CONCURRENT_STREAMS`.
//!
//! - `conn`: the handshake, and the loop that drives a connection and pings
//!   it until it ends; whoever spawns the loop learns why it ended.
//! - `send`: one request on a stream, up to the response head; h2's errors
//!   mapped to our failure shape.
//!
//! Who may open a stream, and when a connection leaves service, is the
//! pool's business: this module only reports, as data.

mod conn;
mod send;

pub(crate) use conn::{Handshaken, Keepalive, drive, handshake};
pub(crate) use send::{body_error, send};
