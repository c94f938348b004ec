//! The test server's own tests, against raw TCP clients. One binary with
//! modules: each extra test binary is another link on a 2-core machine.

mod client;
mod h2client;
mod tlsclient;

mod body;
mod chaos;
mod faults;
mod h2;
mod h2_hostile;
mod h2_knobs;
mod keepalive;
mod lifecycle;
mod stats;
mod tls;
