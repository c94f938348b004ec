//! A real loopback HTTP/1.1 and HTTP/2 server, cleartext or TLS, for
//! leakless's tests, `leakless serve` and `leakless bench`, whose behaviour
//! is data and whose accounting is exact.
//!
//! ```
//! use leakless_testserver::{Config, TestServer};
//! use std::io::{Read, Write};
//!
//! let server = TestServer::start(Config::new().max_requests_per_conn(1));
//! let mut tcp = std::net::TcpStream::connect(server.addr()).unwrap();
//! tcp.write_all(b"GET /?size=3 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
//! let mut reply = String::new();
//! tcp.read_to_string(&mut reply).unwrap(); // the server closes: max 1 request
//! assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"));
//! assert!(reply.ends_with("\r\n\r\nhel"));
//! let stats = server
//!     .wait_blocking(std::time::Duration::from_secs(5), |s| s.closed == 1)
//!     .unwrap();
//! assert_eq!((stats.accepted, stats.requests, stats.closed_by_server), (1, 1, 1));
//! ```
//!
//! The server runs on its own thread with its own current-thread tokio
//! runtime, so tests that pause tokio's clock do not freeze it, and
//! [`TestServer::start`] is a plain function usable from sync and async
//! tests. Dropping the [`TestServer`] closes everything and joins the
//! thread; a panic on the server side fails the test there.
//!
//! # Behaviour
//!
//! A [`Config`] holds the default [`Reply`], exact-path routes, the
//! keep-alive policy (`keep_alive_timeout`, `advertise_keep_alive`,
//! `max_requests_per_conn`) and a connection-level [`ConnFault`]. A reply can
//! carry a per-request [`Fault`]. [`TestServer::set_config`] changes all of it
//! while running. For soaks, [`Config::chaos`] makes each connection draw
//! its own misbehaviour at random ([`Chaos`], [`Mischief`]). Bodies are `hello` repeated and cut to size, so byte `i` is
//! `b"hello"[i % 5]`.
//!
//! # Query language
//!
//! Any request may override its reply in the query string, on top of the
//! route or default reply, e.g.
//! `curl 'http://127.0.0.1:PORT/?size=16384&chunked=1&latency_ms=20'`.
//! Unknown keys are ignored (tag requests freely: `?n=3`); a known key with a
//! bad value gets `400` with the reason in the body.
//!
//! | key | value | effect |
//! |---|---|---|
//! | `status` | 200..=999 | status code (204 and 304 have no body) |
//! | `size` | bytes | body size |
//! | `chunked` | `1`/`0` | chunked or Content-Length framing |
//! | `framing` | `length`, `chunked`, `close` | framing; `close`: no length, close after the body |
//! | `chunk` | bytes | chunk size for chunked framing |
//! | `latency_ms` | ms | delay before the reply (or the fault) |
//! | `close` | `1`/`0` | send `Connection: close` and close after this reply |
//! | `header` | `Name:Value` | add a response header (repeatable) |
//! | `echo` | `1`/`0` | the body is the request's body |
//! | `fault` | see below | misbehave |
//! | `after` | bytes | body bytes sent before `stall_body` / `truncate` strike |
//! | `raw` | percent-encoded bytes | the exact response bytes; implies `fault=raw` |
//! | `code` | HTTP/2 error code | the code for `fault=rst_stream` (default 2, `INTERNAL_ERROR`) |
//! | `silence` | `1`/`0` | after this reply the connection goes deaf: reads nothing more (requests, PINGs), stays open |
//! | `redirects` | count | first answer with this many redirects, each to the same path with one fewer (then the reply the rest of the query asks for) |
//! | `redirect_status` | 300..=399 | the status of those redirects (default 302) |
//! | `encoding` | `gzip`, `deflate`, `br`, `zstd` | send the body compressed, with `Content-Encoding` |
//! | `corrupt` | `1`/`0` | with `encoding`: damage the compressed stream in its middle |
//!
//! Faults: `none` (cancel a configured fault), `stall` (never answer),
//! `stall_body` (head, `after` body bytes, then nothing), `endless` (a chunked
//! body that never ends), `close_after_headers`, `truncate` (head and
//! `after` body bytes, then close), `close` (close without a response),
//! `reset` (RST without a response), `raw` (write `raw`, keep the connection
//! unless `close=1`), `panic` (the connection task panics; for testing this
//! crate), `rst_stream` (HTTP/2: `RST_STREAM` with `code` instead of a
//! reply), `refuse` (HTTP/2: `RST_STREAM(REFUSED_STREAM)`, unprocessed). On
//! HTTP/2, `close=1` sends GOAWAY after the reply, and a fault hits only its
//! stream except `close` and `reset`, which take the connection (see
//! [`Fault`]). Percent-decoding treats `+` as a space: write `%2B` for `+`.
//! Example, a malformed status line: `?raw=HTTP%2F1.1%20abc%0D%0A%0D%0A`.
//!
//! # TLS and HTTP/2
//!
//! One port serves them all, told apart by the first bytes: a TLS handshake
//! record (with [`Config::tls`] on), HTTP/2's preface (prior knowledge, on
//! unless [`Config::h2_prior_knowledge`] is off), else HTTP/1.1. Over TLS,
//! ALPN picks `h2` or `http/1.1` ([`Tls::alpn`]).
//!
//! Certificates are made at start with rcgen: a CA per server
//! ([`TestServer::ca_cert_der`], what clients trust), a leaf for
//! `localhost`, `127.0.0.1` and `::1`, and the broken ones certificate-error
//! tests need ([`ServerCert`]: expired, wrong name, self-signed). Client
//! certificates ([`ClientAuth`]) come from [`TestServer::client_cert`].
//! Sessions resume across connections ([`TlsInfo::resumed`]).
//!
//! ```
//! use leakless_testserver::{Config, ServerCert, TestServer, Tls};
//!
//! let server = TestServer::start(Config::new().tls(true).h2_max_concurrent_streams(4));
//! let trust = server.ca_cert_der(); // give it to the client's root store
//! let url = server.https_url("/?size=1024"); // h2 or http/1.1 by ALPN
//! # let _ = (trust, url);
//! let expired = TestServer::start(Config::new().tls_settings(Tls::new().cert(ServerCert::Expired)));
//! # drop(expired);
//! ```
//!
//! HTTP/2 streams get the same replies as HTTP/1.1 requests (the query
//! language included) and are served concurrently, with flow control both
//! ways. The connection knobs are [`Config::h2_max_concurrent_streams`],
//! [`Config::h2_goaway_after`] (graceful GOAWAY), [`Config::h2_refuse_streams`]
//! (`REFUSED_STREAM`) and [`Config::h2_silent_after`]; a dead peer on demand
//! is [`TestServer::silence_connections`]: the connection stops reading and
//! writing (PINGs go unanswered) but stays open, and a client that gives up
//! on it is still seen closing it.
//!
//! A hostile HTTP/2 server is [`ConnFault::H2Flood`]: a header block that
//! never ends (CONTINUATION frames), or PING or SETTINGS frames without
//! pause, written as raw frames since h2's server will not send them.
//! [`Config::h2_initial_window_size`] of 0 is a window the server never
//! opens for an upload.
//!
//! # Accounting
//!
//! [`TestServer::stats`] returns a consistent [`ServerStats`] snapshot:
//! connections accepted, closed (by the server or the client, by
//! [`CloseReason`]), open, idle, requests per connection, write failures.
//! [`TestServer::requests`] returns every [`RecordedRequest`]. Waiting is
//! event-driven: [`TestServer::wait_until`] and friends wake on every change.
//!
//! # Layout
//!
//! Dependencies point down this list: the server at the top, the
//! protocols under it, the vocabulary at the bottom.
//!
//! ```text
//! src/lib.rs          this overview; re-exports
//! src/server.rs       TestServer: listener, thread and runtime, accept loop, Drop
//! src/wait.rs         waiting on the state: wait_until, wait_for, wait_blocking, wait_*
//! src/conn.rs         one connection: faults, TLS or not, h2 preface or not, close accounting
//! src/http1/mod.rs    one HTTP/1.1 connection: keep-alive loop, idle timeout, stalls
//! src/http1/read.rs   reading a request (httparse head, length/chunked body)
//! src/http1/write.rs  writing a reply or its fault, byte for byte
//! src/http2/mod.rs    one HTTP/2 connection (h2 crate): streams, GOAWAY, refusals, silence
//! src/http2/stream.rs one HTTP/2 stream: request, reply or fault, flow control
//! src/http2/flood.rs  a hostile HTTP/2 server in raw frames (ConnFault::H2Flood)
//! src/answer.rs       choosing a request's reply (both protocols) and its body's bytes
//! src/query.rs        the query-string overrides
//! src/hops.rs         redirect chains (`redirects`): each hop's Location
//! src/encoding.rs     compressed bodies (`encoding`, `corrupt`)
//! src/ctx.rs          what a connection's tasks share; waits a close request cuts short
//! src/io.rs           the byte streams HTTP is spoken on (socket, replayed, TLS)
//! src/rewind.rs       a stream that replays the bytes read to tell protocols apart
//! src/tap.rs          counting PING and RST_STREAM frames on their way into h2
//! src/frame.rs        HTTP/2 frame headers read and written by hand
//! src/tcp.rs          the socket behind a gate that makes it deaf or silent
//! src/pki.rs          certificates (rcgen) and rustls configs; ClientCert
//! src/ledger.rs       the shared state behind stats, requests and close requests
//! src/stats.rs        ServerStats, ConnStats, ConnState, CloseReason, TlsInfo
//! src/request.rs      RecordedRequest, what a test sees of a request
//! src/config.rs       Config, Reply, Framing, Fault, ConnFault: behaviour as data
//! src/chaos.rs        Chaos: a fault drawn at random for each connection (soaks)
//! src/tls.rs          Tls, ServerCert, ClientAuth: TLS as data
//! ```

#![deny(missing_docs)]

mod answer;
mod chaos;
mod config;
mod conn;
mod ctx;
mod encoding;
mod frame;
mod hops;
mod http1;
mod http2;
mod io;
mod ledger;
mod pki;
mod query;
mod request;
mod rewind;
mod server;
mod stats;
mod tap;
mod tcp;
mod tls;
mod wait;

pub use chaos::{Chaos, Mischief};
pub use config::{Config, ConnFault, Fault, Framing, H2Flood, Reply};
pub use encoding::Encoding;
pub use pki::ClientCert;
pub use request::{RecordedRequest, Version};
pub use server::TestServer;
pub use stats::{CloseReason, ConnState, ConnStats, ServerStats, TlsInfo};
pub use tls::{ClientAuth, ServerCert, Tls};
pub use wait::{WAIT_LIMIT, WaitTimeout};
