//! [`Ctx`]: what every task serving one connection shares (its id, the
//! ledger, the close-request signal), and the waits a close request cuts
//! short.

use std::future::Future;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Notify;

use crate::ledger::Ledger;
use crate::pki::Pki;
use crate::stats::{CloseReason, ConnState};

/// One connection's context, cloned into each of its HTTP/2 streams' tasks.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub id: u64,
    pub ledger: Arc<Ledger>,
    /// Woken when the test (or shutdown) asks this connection to close.
    pub notify: Arc<Notify>,
    pub pki: Arc<Pki>,
    /// Whether the connection is TLS: set once its handshake is done.
    pub tls: bool,
}

impl Ctx {
    /// Races `fut` against a close request for the connection.
    pub(crate) async fn guarded<T>(&self, fut: impl Future<Output = T>) -> Result<T, CloseReason> {
        tokio::select! {
            biased;
            () = self.notify.notified() => Err(self.ledger.requested_close(self.id)),
            out = fut => Ok(out),
        }
    }

    /// Resolves once a connection that is `idle` between requests has been
    /// so for the keep-alive timeout; never if there is none, or if the
    /// connection is silent: a dead peer does not close on its own.
    pub(crate) async fn keep_alive_expired(&self, idle: bool) {
        let shut = self.ledger.is_shut(self.id);
        let timeout = if idle && !shut {
            self.ledger.config().keep_alive_timeout
        } else {
            None
        };
        match timeout {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    }

    /// Reads more bytes into `buf`, as a connection waiting for a client's
    /// first bytes: a close request or the client's close ends it.
    pub(crate) async fn fill<S: AsyncRead + Unpin>(
        &self,
        io: &mut S,
        buf: &mut BytesMut,
    ) -> Result<(), CloseReason> {
        match self.guarded(io.read_buf(buf)).await {
            Err(reason) => Err(reason),
            Ok(Ok(0) | Err(_)) => Err(CloseReason::Peer),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// Holds the connection without answering until the client closes it or
    /// a close is requested. Whatever the client sends is read and dropped:
    /// that is how its close is seen.
    pub(crate) async fn stall<S: AsyncRead + Unpin>(
        &self,
        io: &mut S,
        buf: &mut BytesMut,
    ) -> CloseReason {
        if let Some(reason) = self.ledger.enter(self.id, ConnState::Stalled) {
            return reason;
        }
        loop {
            buf.clear();
            if let Err(reason) = self.fill(io, buf).await {
                return reason;
            }
        }
    }
}
