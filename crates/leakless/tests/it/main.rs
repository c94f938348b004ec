//! Behaviour scenarios against real loopback servers: one integration
//! binary, one module per theme.

#[macro_use]
mod support;

mod bad_input;
mod bodies;
mod cancel;
mod compression;
mod conveniences;
mod cookies;
mod dial;
mod differential;
mod goaway;
mod h2;
mod h2_windows;
mod hostile_h2;
mod hosts;
mod httpbin;
mod limits;
mod nginx;
mod nginx_everyday;
mod observe;
mod payloads;
mod proxy;
mod public_names;
mod redirect_security;
mod redirects;
mod retry;
mod reuse;
mod server_close;
mod timeouts;
mod tls;
mod tls_settings;
mod tower;
mod unix;
