//! Opening connections. Today a connection is an HTTP/1.1 socket owned by one
//! request at a time; TLS and shared HTTP/2 handles slot in here.

mod dial;

pub(crate) use dial::dial;
