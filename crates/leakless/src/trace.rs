//! Per-request events for an [`Observer`] (Go's httptrace, OkHttp's
//! EventListener). Every start has its end: a [`Tracer`] guard closes any
//! phase still open when the request or body is dropped, with an error of
//! kind [`ErrorKind::Canceled`]. With no observer set, a tracer is `None`
//! and each call site costs one branch.

use std::{io, net::SocketAddr, panic::Location, sync::Arc, time::Duration};

use http::{Method, Version};

use crate::{
    error::{Error, ErrorKind},
    stats::CloseReason,
};

/// Receives the events of every request of a client; set it with
/// [`ClientBuilder::observer`](crate::ClientBuilder::observer). Called on
/// the request's own task: keep it quick and never block.
pub trait Observer: Send + Sync + 'static {
    /// One event of `request`.
    fn on_event(&self, request: &RequestInfo, event: &Event<'_>);

    /// `false` for an observer that only cares about new connections: it
    /// then hears only from requests that open one, from their `GetConn`
    /// on (so every pair still closes), and a request on a reused
    /// connection costs nothing to trace. The default, `true`, is every
    /// event of every request.
    fn every_request(&self) -> bool {
        true
    }
}

/// Which request an event belongs to.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RequestInfo {
    /// Unique per client, in the order requests were sent.
    pub id: u64,
    /// The request method.
    pub method: Method,
    /// `host:port`.
    pub host: String,
    /// Where the request was sent from.
    pub call_site: &'static Location<'static>,
    /// Redirects followed before this hop: 0 for the request as sent. Each
    /// hop has its own events, under the same `id`.
    pub hop: u32,
}

/// Something that happened to a request. Starts and ends come in pairs:
/// `GetConn` → `GotConn` or `GetConnFailed`; `DnsStart` → `DnsDone`;
/// `ConnectStart` → `ConnectDone`; `TlsStart` → `TlsDone`; `GotConn` →
/// `ConnReturned` or `ConnClosed`; `FirstByte` → `BodyDone`.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// This hop follows a redirect: the previous hop (same `id`) answered
    /// `status` with a `Location` that resolved to `to`. Its response was
    /// drained or closed before this event.
    Redirect {
        /// The previous hop's status.
        status: http::StatusCode,
        /// The URL the previous hop requested.
        from: &'a str,
        /// The URL this hop requests.
        to: &'a str,
    },
    /// Looking for a connection (idle, a stream, a dial, or a wait).
    GetConn,
    /// No connection: the pool wait timed out, the dial failed, or the request was dropped.
    GetConnFailed {
        /// Why.
        error: &'a Error,
    },
    /// Resolving a host name (not sent for IP addresses).
    DnsStart {
        /// The name.
        host: &'a str,
    },
    /// The name resolved, or did not.
    DnsDone {
        /// The addresses found.
        addrs: &'a [SocketAddr],
        /// The failure, if any.
        error: Option<&'a io::Error>,
    },
    /// Opening TCP to `addr`.
    ConnectStart {
        /// The address.
        addr: SocketAddr,
    },
    /// TCP connected, or did not.
    ConnectDone {
        /// The address.
        addr: SocketAddr,
        /// The failure, if any.
        error: Option<&'a io::Error>,
    },
    /// The TLS handshake begins.
    TlsStart,
    /// The TLS handshake ended.
    TlsDone {
        /// The failure, if any.
        error: Option<&'a Error>,
    },
    /// A connection (or an HTTP/2 stream) carries the request now.
    GotConn {
        /// It was open already.
        reused: bool,
        /// It came from the idle list (or an idle HTTP/2 connection).
        was_idle: bool,
        /// How long it had been idle.
        idle_for: Duration,
        /// Our end of the socket.
        local_addr: Option<SocketAddr>,
        /// HTTP/1.1 or HTTP/2.
        version: Version,
    },
    /// The request is written (or failed to be).
    WroteRequest {
        /// The failure, if any.
        error: Option<&'a Error>,
    },
    /// The response head arrived.
    FirstByte {
        /// Since the request was written.
        after: Duration,
    },
    /// The body ended: read to its end, failed, or dropped.
    BodyDone {
        /// Body bytes read.
        bytes: u64,
        /// The failure, or `Canceled` when the body was dropped early.
        error: Option<&'a Error>,
    },
    /// The request let go of its connection, which stays open for reuse.
    ConnReturned,
    /// The request's connection was closed.
    ConnClosed {
        /// Why.
        reason: CloseReason,
    },
    /// The request goes again on a new connection.
    Retry {
        /// Why it is safe and needed.
        why: &'a str,
    },
}

/// Open phases, so a dropped tracer can close each with its end.
#[derive(Clone, Debug, Default)]
struct Open {
    get_conn: bool,
    dns: bool,
    /// Happy Eyeballs may have several attempts in flight.
    connects: Vec<SocketAddr>,
    tls: bool,
    conn: bool,
    body: bool,
    bytes: u64,
}

#[derive(Debug)]
struct Inner {
    observer: Arc<dyn Observer>,
    info: RequestInfo,
    open: Open,
}

/// One request's link to the observer; `None` inside when there is none,
/// or none yet: the second field holds the request's id and hop while an
/// observer of new connections only waits for a dial (`Tracer::arm`).
#[derive(Debug, Default)]
pub(crate) struct Tracer(Option<Box<Inner>>, Option<(u64, u32)>);

impl std::fmt::Debug for dyn Observer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Observer")
    }
}

/// Out of line and cold: without an observer (the usual client) each
/// event's construction would otherwise sit inline in the request's hot
/// futures, spread between the code every request runs.
#[cold]
#[inline(never)]
fn emit_to(inner: &mut Inner, event: Event<'_>, change: impl FnOnce(&mut Open)) {
    change(&mut inner.open);
    inner.observer.on_event(&inner.info, &event);
}

fn canceled() -> Error {
    Error::new(
        ErrorKind::Canceled,
        "the request was dropped before it completed",
    )
}

impl Tracer {
    /// The tracer of hop `hop` of request `id`; `make` names the request.
    pub fn new(
        observer: Option<&Arc<dyn Observer>>,
        id: u64,
        hop: u32,
        make: impl FnOnce() -> RequestInfo,
    ) -> Tracer {
        match observer {
            Some(o) if !o.every_request() => Tracer(None, Some((id, hop))),
            _ => Tracer(
                observer.map(|o| {
                    Box::new(Inner {
                        observer: o.clone(),
                        info: make(),
                        open: Open::default(),
                    })
                }),
                None,
            ),
        }
    }

    /// The request is about to open a connection: an observer of new
    /// connections only starts hearing from it here, with its `GetConn`.
    pub fn arm(
        &mut self,
        observer: Option<&Arc<dyn Observer>>,
        method: &Method,
        host: &str,
        call_site: &'static Location<'static>,
    ) {
        let (Some((id, hop)), Some(observer)) = (self.1, observer) else {
            return;
        };
        self.1 = None;
        self.0 = Some(Box::new(Inner {
            observer: observer.clone(),
            info: RequestInfo {
                id,
                method: method.clone(),
                host: host.to_owned(),
                call_site,
                hop,
            },
            open: Open::default(),
        }));
        self.get_conn();
    }

    #[inline]
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    #[inline]
    fn emit(&mut self, event: Event<'_>, change: impl FnOnce(&mut Open)) {
        if let Some(inner) = &mut self.0 {
            emit_to(inner, event, change);
        }
    }

    pub fn get_conn(&mut self) {
        self.emit(Event::GetConn, |o| o.get_conn = true);
    }

    pub fn get_conn_failed(&mut self, error: &Error) {
        self.emit(Event::GetConnFailed { error }, |o| o.get_conn = false);
    }

    pub fn dns_start(&mut self, host: &str) {
        self.emit(Event::DnsStart { host }, |o| o.dns = true);
    }

    pub fn dns_done(&mut self, addrs: &[SocketAddr], error: Option<&io::Error>) {
        self.emit(Event::DnsDone { addrs, error }, |o| o.dns = false);
    }

    pub fn connect_start(&mut self, addr: SocketAddr) {
        self.emit(Event::ConnectStart { addr }, |o| o.connects.push(addr));
    }

    pub fn connect_done(&mut self, addr: SocketAddr, error: Option<&io::Error>) {
        self.emit(Event::ConnectDone { addr, error }, |o| {
            o.connects.retain(|&a| a != addr)
        });
    }

    pub fn tls_start(&mut self) {
        self.emit(Event::TlsStart, |o| o.tls = true);
    }

    pub fn tls_done(&mut self, error: Option<&Error>) {
        self.emit(Event::TlsDone { error }, |o| o.tls = false);
    }

    pub fn got_conn(
        &mut self,
        reused: bool,
        idle_for: Option<Duration>,
        local_addr: Option<SocketAddr>,
        version: Version,
    ) {
        let event = Event::GotConn {
            reused,
            was_idle: idle_for.is_some(),
            idle_for: idle_for.unwrap_or_default(),
            local_addr,
            version,
        };
        self.emit(event, |o| {
            o.get_conn = false;
            o.conn = true;
        });
    }

    pub fn wrote_request(&mut self, error: Option<&Error>) {
        self.emit(Event::WroteRequest { error }, |_| {});
    }

    pub fn first_byte(&mut self, after: Duration) {
        self.emit(Event::FirstByte { after }, |o| o.body = true);
    }

    pub fn body_bytes(&mut self, n: usize) {
        if let Some(inner) = &mut self.0 {
            inner.open.bytes += n as u64;
        }
    }

    pub fn body_done(&mut self, error: Option<&Error>) {
        let bytes = self.0.as_ref().map_or(0, |i| i.open.bytes);
        if self.0.as_ref().is_some_and(|i| i.open.body) {
            self.emit(Event::BodyDone { bytes, error }, |o| o.body = false);
        }
    }

    pub fn conn_returned(&mut self) {
        if self.0.as_ref().is_some_and(|i| i.open.conn) {
            self.emit(Event::ConnReturned, |o| o.conn = false);
        }
    }

    pub fn conn_closed(&mut self, reason: CloseReason) {
        if self.0.as_ref().is_some_and(|i| i.open.conn) {
            self.emit(Event::ConnClosed { reason }, |o| o.conn = false);
        }
    }

    /// A dial failed or timed out: close whichever of its phases is open.
    pub fn dial_failed(&mut self, error: &Error) {
        let Some(inner) = &self.0 else { return };
        let open = inner.open.clone();
        let io = || io::Error::other(error.to_string());
        if open.dns {
            self.dns_done(&[], Some(&io()));
        }
        for addr in open.connects {
            self.connect_done(addr, Some(&io()));
        }
        if open.tls {
            self.tls_done(Some(error));
        }
    }

    pub fn redirect(&mut self, status: http::StatusCode, from: &str, to: &str) {
        self.emit(Event::Redirect { status, from, to }, |_| {});
    }

    pub fn retry(&mut self, why: &str) {
        self.emit(Event::Retry { why }, |_| {});
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        let Some(inner) = &self.0 else { return };
        let open = inner.open.clone();
        let error = canceled();
        let io_canceled = || io::Error::new(io::ErrorKind::Interrupted, "canceled");
        if open.dns {
            self.dns_done(&[], Some(&io_canceled()));
        }
        for addr in open.connects {
            self.connect_done(addr, Some(&io_canceled()));
        }
        if open.tls {
            self.tls_done(Some(&error));
        }
        if open.get_conn {
            self.get_conn_failed(&error);
        }
        if open.body {
            self.body_done(Some(&error));
        }
        if open.conn {
            self.conn_closed(CloseReason::Canceled);
        }
    }
}

/// What a request carries for those watching: the observer's tracer and
/// the `tracing` span, from `send` until its body ends.
#[derive(Debug)]
pub(crate) struct Life {
    pub tracer: Tracer,
    pub span: tracing::Span,
    /// When `send` was called; read only when a subscriber may listen.
    pub started: Option<tokio::time::Instant>,
}

impl Life {
    /// The body ended (or failed): close the span with the totals.
    pub fn end(&mut self, error: Option<&Error>) {
        if self.span.is_disabled() {
            return;
        }
        // `None` only if a subscriber came between `send` and here.
        let ms = self.started.map(|s| s.elapsed().as_secs_f64() * 1000.0);
        self.span.record("duration_ms", ms);
        let _enter = self.span.enter();
        match error {
            None => tracing::debug!(duration_ms = ms, "request done"),
            Some(e) => {
                tracing::debug!(duration_ms = ms, error = %e, "request failed while reading the body")
            }
        }
    }
}
