//! One connection, accept to close: connection faults, telling TLS from
//! cleartext and HTTP/2 from HTTP/1.1 by the first bytes, then handing the
//! stream to `http1` or `http2`; and recording the close whatever
//! happens, panics and aborts included.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::net::TcpStream;

use crate::config::ConnFault;
use crate::ctx::Ctx;
use crate::frame::PREFACE;
use crate::io::Io;
use crate::ledger::Ledger;
use crate::rewind::Rewind;
use crate::stats::{CloseReason, ConnState, TlsInfo};
use crate::tcp::{Gate, Tcp};
use crate::{http1, http2};

/// Serves one accepted connection until it closes, then records the close.
pub(crate) async fn serve(tcp: TcpStream, gate: Arc<Gate>, ctx: Ctx) {
    let mut conn = Conn {
        tcp: Some(Tcp::new(tcp, gate)),
        guard: Guard {
            id: ctx.id,
            ledger: ctx.ledger.clone(),
            done: false,
        },
    };
    let outcome = {
        let serving = pin!(run(&mut conn.tcp, &ctx));
        CatchUnwind(serving).await
    };
    let Conn { tcp, mut guard } = conn;
    drop(tcp);
    guard.done = true;
    match outcome {
        Ok(reason) => guard.ledger.closed(ctx.id, reason),
        Err(panic) => {
            guard.ledger.closed(ctx.id, CloseReason::Panicked);
            // On to the accept loop's JoinSet, which keeps it for Drop.
            std::panic::resume_unwind(panic);
        }
    }
}

/// Field order matters: on an abort the socket drops first, so the close is
/// never counted while the descriptor still exists. The socket is an
/// `Option` so TLS and HTTP/2 can take it by value; the future that took it
/// is dropped before `conn`, which it borrows.
struct Conn {
    tcp: Option<Tcp>,
    guard: Guard,
}

/// Records the close of a connection whose task was aborted (a shutdown that
/// outlasted its grace period), so `open` never stays high.
struct Guard {
    id: u64,
    ledger: Arc<Ledger>,
    done: bool,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if !self.done {
            self.ledger.closed(self.id, CloseReason::Shutdown);
        }
    }
}

/// Turns a panic while polling into an `Err`, so the connection can be
/// closed and counted before the panic goes on (tokio would drop the task's
/// state only after catching it, when nobody can tell it panicked).
struct CatchUnwind<'a, F>(Pin<&'a mut F>);

impl<F: Future> Future for CatchUnwind<'_, F> {
    type Output = Result<F::Output, Box<dyn Any + Send>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.0.as_mut();
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Err(panic) => Poll::Ready(Err(panic)),
        }
    }
}

/// The first byte of a TLS handshake record (RFC 8446 §5.1): no HTTP/1.x
/// method and not HTTP/2's preface starts with it.
const TLS_HANDSHAKE: u8 = 0x16;

async fn run(slot: &mut Option<Tcp>, ctx: &Ctx) -> CloseReason {
    let (id, ledger) = (ctx.id, &*ctx.ledger);
    let Some(tcp) = slot.as_mut() else {
        unreachable!("the socket is taken only below")
    };
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let cfg = ledger.config();
    match cfg.conn_fault {
        Some(ConnFault::AcceptAndClose) => return CloseReason::Fault,
        Some(ConnFault::AcceptAndStall) => return ctx.stall(tcp, &mut buf).await,
        Some(ConnFault::AcceptAndStallUnread) => {
            if let Some(reason) = ledger.enter(id, ConnState::Stalled) {
                return reason;
            }
            return match ctx.guarded(tcp.closed_unread()).await {
                Ok(()) => CloseReason::Peer,
                Err(reason) => reason,
            };
        }
        // Applies once the connection speaks HTTP/2.
        Some(ConnFault::H2Flood(_)) | None => {}
    }
    if let Some(tls) = &cfg.tls {
        if let Some(reason) = ledger.enter(id, ConnState::New) {
            return reason;
        }
        if let Err(reason) = ctx.fill(tcp, &mut buf).await {
            return reason;
        }
        if buf[0] == TLS_HANDSHAKE {
            let Some(tcp) = slot.take() else {
                unreachable!("taken once")
            };
            let tcp = Rewind::new(buf.split().freeze(), tcp);
            return serve_tls(tcp, tls, ctx).await;
        }
    }
    let Some(tcp) = slot.take() else {
        unreachable!("taken once")
    };
    speak(tcp, buf, ctx).await
}

async fn serve_tls(tcp: Rewind<Tcp>, tls: &crate::tls::Tls, ctx: &Ctx) -> CloseReason {
    let (id, ledger) = (ctx.id, &*ctx.ledger);
    let config = match ctx.pki.server_config(tls) {
        Ok(config) => config,
        // A setting rustls rejects (a client root that is not a CA): the
        // test's mistake, reported as a failed handshake.
        Err(e) => {
            ledger.tls_failed(id, format!("server config: {e}"));
            return CloseReason::TlsHandshake;
        }
    };
    let accept = tokio_rustls::TlsAcceptor::from(config).accept(tcp);
    let stream = match ctx.guarded(accept).await {
        Err(reason) => return reason,
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => {
            // rustls' own errors come wrapped in io::Error; anything else is
            // the socket: the client hung up mid-handshake.
            let Some(tls_error) = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>())
            else {
                return CloseReason::Peer;
            };
            ledger.tls_failed(id, tls_error.to_string());
            return CloseReason::TlsHandshake;
        }
    };
    let info = tls_info(stream.get_ref().1);
    let h2 = info.alpn.as_deref() == Some("h2");
    ledger.tls_done(id, info);
    let ctx = Ctx {
        tls: true,
        ..ctx.clone()
    };
    if h2 {
        return http2::run(stream, BytesMut::new(), &ctx).await;
    }
    speak(stream, BytesMut::new(), &ctx).await
}

fn tls_info(conn: &rustls::ServerConnection) -> TlsInfo {
    let version = match conn.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    };
    TlsInfo {
        version,
        alpn: conn
            .alpn_protocol()
            .map(|p| String::from_utf8_lossy(p).into_owned()),
        sni: conn.server_name().map(str::to_owned),
        resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        client_cert: conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|c| c.to_vec()),
    }
}

/// Serves HTTP/2 if the client opens with its preface (and prior knowledge
/// is on), HTTP/1.1 otherwise. `buf` holds bytes already read.
async fn speak<S: Io>(mut io: S, mut buf: BytesMut, ctx: &Ctx) -> CloseReason {
    if ctx.ledger.config().h2_prior_knowledge {
        // Read until the bytes either are the preface or cannot become it;
        // an HTTP/1.1 request differs by its second byte at the latest.
        loop {
            let n = buf.len().min(PREFACE.len());
            if buf[..n] != PREFACE[..n] {
                break;
            }
            if n == PREFACE.len() {
                return http2::run(io, buf, ctx).await;
            }
            if buf.is_empty() {
                if let Some(reason) = ctx.ledger.enter(ctx.id, ConnState::New) {
                    return reason;
                }
            }
            if let Err(reason) = ctx.fill(&mut io, &mut buf).await {
                return reason;
            }
        }
    }
    http1::run(&mut io, buf, ctx).await
}
