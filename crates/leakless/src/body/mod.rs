//! Bodies. `request`: the [`Body`] a caller sends (bytes, strings,
//! streams); plain data, below every layer that writes it. `response`: the
//! [`Incoming`] body that owns its connection's lease or stream, `drain`:
//! what it does when dropped before its end, and `decode`: the content
//! decoder a compressed body's bytes go through. Those sit above the pool.

mod decode;
mod drain;
mod request;
mod response;

pub(crate) use decode::Encoding;
pub use request::Body;
pub use response::Incoming;
