//! One HTTP/1.1 connection, accept to close: the keep-alive loop, idle
//! timeouts, close requests from the test, and the stalls faults ask for.
//!
//! The loop is generic over [`Io`] so a TLS stream can slot in later; an
//! HTTP/2 connection would get its own module beside this one and share the
//! ledger and the reply plan.

use std::any::Any;
use std::future::Future;
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::config::{ConnFault, Fault, Framing, Reply};
use crate::ledger::Ledger;
use crate::query;
use crate::reply::{self, Outcome, Plan};
use crate::request::{self, ReadError, Version};
use crate::stats::{CloseReason, ConnState};

/// A byte stream the server can speak HTTP/1.1 on.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {
    /// Make the coming close a reset (RST) rather than a FIN.
    fn reset_on_close(&self) -> io::Result<()>;

    /// Resolves when the client has closed without sending anything; never
    /// resolves if it sent bytes, which must stay unread.
    fn closed_unread(&self) -> impl Future<Output = ()> + Send;
}

impl Io for TcpStream {
    fn reset_on_close(&self) -> io::Result<()> {
        socket2::SockRef::from(self).set_linger(Some(Duration::ZERO))
    }

    async fn closed_unread(&self) {
        let mut byte = [0u8; 1];
        match self.peek(&mut byte).await {
            Ok(0) | Err(_) => {}
            // Unread bytes hide a later FIN from peek; only shutdown ends it.
            Ok(_) => std::future::pending().await,
        }
    }
}

/// Serves one accepted connection until it closes, then records the close.
pub(crate) async fn serve<S: Io>(io: S, id: u64, ledger: Arc<Ledger>, notify: Arc<Notify>) {
    let mut conn = Conn {
        io,
        guard: Guard {
            id,
            ledger,
            done: false,
        },
    };
    let outcome = {
        let serving = pin!(run(&mut conn.io, id, &conn.guard.ledger, &notify));
        CatchUnwind(serving).await
    };
    let Conn { io, mut guard } = conn;
    drop(io);
    guard.done = true;
    match outcome {
        Ok(reason) => guard.ledger.closed(id, reason),
        Err(panic) => {
            guard.ledger.closed(id, CloseReason::Panicked);
            // On to the accept loop's JoinSet, which keeps it for Drop.
            std::panic::resume_unwind(panic);
        }
    }
}

/// Field order matters: on an abort the socket drops first, so the close is
/// never counted while the descriptor still exists.
struct Conn<S> {
    io: S,
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

/// Races `fut` against a close request for the connection.
async fn guarded<T>(
    notify: &Notify,
    ledger: &Ledger,
    id: u64,
    fut: impl Future<Output = T>,
) -> Result<T, CloseReason> {
    tokio::select! {
        biased;
        () = notify.notified() => Err(ledger.requested_close(id)),
        out = fut => Ok(out),
    }
}

async fn run<S: Io>(io: &mut S, id: u64, ledger: &Ledger, notify: &Notify) -> CloseReason {
    let mut buf = BytesMut::with_capacity(8 * 1024);
    match ledger.config().conn_fault {
        Some(ConnFault::AcceptAndClose) => return CloseReason::Fault,
        Some(ConnFault::AcceptAndStall) => return stall(io, &mut buf, id, ledger, notify).await,
        Some(ConnFault::AcceptAndStallUnread) => {
            if let Some(reason) = ledger.enter(id, ConnState::Stalled) {
                return reason;
            }
            return match guarded(notify, ledger, id, io.closed_unread()).await {
                Ok(()) => CloseReason::Peer,
                Err(reason) => reason,
            };
        }
        None => {}
    }
    let mut served = 0u64;
    let mut waiting = ConnState::New;
    loop {
        let cfg = ledger.config();
        // Waiting for the first byte of the next request. Bytes already
        // buffered (a pipelined request) skip the wait.
        if buf.is_empty() {
            if let Some(reason) = ledger.enter(id, waiting) {
                return reason;
            }
            let idle_for = match waiting {
                ConnState::Idle => cfg.keep_alive_timeout,
                _ => None,
            };
            let timer = async {
                match idle_for {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                read = io.read_buf(&mut buf) => match read {
                    Ok(0) | Err(_) => return CloseReason::Peer,
                    Ok(_) => {}
                },
                () = notify.notified() => return ledger.requested_close(id),
                () = timer => return CloseReason::KeepAliveTimeout,
            }
        }
        // The state change checks for a close requested while idle, so a
        // request racing `close_idle_connections` is dropped, as on a real
        // server that closes an idle connection just as a request arrives.
        if let Some(reason) = ledger.enter(id, ConnState::Busy) {
            return reason;
        }
        waiting = ConnState::Idle;
        let read = request::read(io, &mut buf, cfg.max_head_bytes);
        let req = match guarded(notify, ledger, id, read).await {
            Err(reason) => return reason,
            Ok(Err(ReadError::Closed)) => return CloseReason::Peer,
            Ok(Err(ReadError::Bad(status, why))) => {
                ledger.bad_request();
                let _ = io.write_all(&error_response(status, why, true)).await;
                return CloseReason::BadRequest;
            }
            Ok(Ok(req)) => req,
        };
        served += 1;
        let seq = ledger.request(id, &req.rec);

        // Picked after the request is counted, so a test that changes the
        // config once it sees the count gets the new behaviour next time.
        let cfg = ledger.config();
        let (path, query) = req.rec.path.split_once('?').unwrap_or((&req.rec.path, ""));
        let mut reply = cfg.reply_for(path).clone();
        if let Err(why) = query::apply(&mut reply, query) {
            reply = Reply::default();
            reply.fault = Some(Fault::Raw(error_response(400, &why, req.wants_close)));
            reply.close = req.wants_close;
        }
        let close = if req.wants_close {
            Some(CloseReason::RequestClose)
        } else if cfg.max_requests_per_conn.is_some_and(|max| served >= max) {
            Some(CloseReason::MaxRequests)
        } else if reply.close || reply.framing == Framing::UntilClose {
            Some(CloseReason::ReplyClose)
        } else {
            None
        };
        let keep_alive = match (close, cfg.advertise_keep_alive, cfg.keep_alive_timeout) {
            (None, true, Some(t)) => Some(match cfg.max_requests_per_conn {
                Some(max) => format!("timeout={}, max={}", t.as_secs(), max - served),
                None => format!("timeout={}", t.as_secs()),
            }),
            _ => None,
        };
        if !reply.latency.is_zero() {
            let sleep = tokio::time::sleep(reply.latency);
            if let Err(reason) = guarded(notify, ledger, id, sleep).await {
                return reason;
            }
        }
        let plan = Plan {
            reply: &reply,
            head_only: req.rec.method == "HEAD",
            http10: req.rec.version == Version::Http10,
            close,
            keep_alive,
            conn: cfg.conn_headers.then_some((id, seq)),
            request_body: &req.rec.body,
        };
        match guarded(notify, ledger, id, reply::write(io, &plan)).await {
            Err(reason) => return reason,
            Ok(Outcome::Done) => {}
            Ok(Outcome::Close(reason)) => return reason,
            Ok(Outcome::WriteFailed) => {
                ledger.write_failed(id);
                return CloseReason::Peer;
            }
            Ok(Outcome::Stall) => return stall(io, &mut buf, id, ledger, notify).await,
        }
    }
}

/// Holds the connection without answering until the client closes it or a
/// close is requested. Whatever the client sends is read and dropped: that
/// is how its close is seen.
async fn stall<S: Io>(
    io: &mut S,
    buf: &mut BytesMut,
    id: u64,
    ledger: &Ledger,
    notify: &Notify,
) -> CloseReason {
    if let Some(reason) = ledger.enter(id, ConnState::Stalled) {
        return reason;
    }
    loop {
        buf.clear();
        match guarded(notify, ledger, id, io.read_buf(buf)).await {
            Err(reason) => return reason,
            Ok(Ok(0) | Err(_)) => return CloseReason::Peer,
            Ok(Ok(_)) => {}
        }
    }
}

/// A complete small response for errors the server itself reports.
fn error_response(status: u16, why: &str, close: bool) -> Vec<u8> {
    let connection = if close { "Connection: close\r\n" } else { "" };
    format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{connection}\r\n{why}\n",
        reply::reason(status),
        why.len() + 1,
    )
    .into_bytes()
}
