//! Bodies. `request`: the [`Body`] a caller sends (bytes, strings,
//! streams); plain data, below every layer that writes it. `response`: the
//! [`Incoming`] body that owns its connection's lease or stream, and
//! `drain`: what it does when dropped before its end. Those two sit above
//! the pool.

mod drain;
mod request;
mod response;

pub use request::Body;
pub use response::Incoming;
