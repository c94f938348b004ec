//! Our HTTP/1.1 engine: the request's own task owns the socket, writes the
//! request, parses the response head with httparse and decodes the body
//! straight from the socket. No driver task, no channel: a connection is a
//! value, and per request that costs less CPU than a driver and a hop.
//!
//! - `head`: the response head parsed, within size limits.
//! - `fields`: its header fields, a `HeaderMap` only when asked for.
//! - `framing`: RFC 9112 §6.3: how long the body is, whether to reuse.
//! - `decoder`: Content-Length, chunked and read-to-close bodies.
//! - `encode`: request heads.
//! - `conn`: the socket with its buffers; the request/response exchange.

pub(crate) mod conn;
pub(crate) mod decoder;
pub(crate) mod encode;
pub(crate) mod fields;
pub(crate) mod framing;
pub(crate) mod head;
#[cfg(test)]
mod proptests;

pub(crate) use conn::{H1Conn, Unusable};
