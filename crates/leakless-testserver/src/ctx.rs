//! [`Ctx`]: what every task serving one connection shares (its id, the
//! ledger, the close-request signal), and the waits a close request cuts
//! short.

use std::future::Future;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Notify;

use crate::chaos::{Mischief, Plan};
use crate::config::{Config, Fault, Reply};
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
    /// What this connection drew under [`Config::chaos`].
    pub chaos: Option<Arc<Plan>>,
}

impl Ctx {
    /// The config this connection runs under: the server's, or under
    /// chaos its own (`h2`: the connection speaks HTTP/2).
    pub(crate) fn config(&self, h2: bool) -> Arc<Config> {
        let cfg = self.ledger.config();
        let Some(plan) = &self.chaos else {
            return cfg;
        };
        let knobs = plan.knobs(h2);
        let mut own = (*cfg).clone();
        own.max_requests_per_conn = knobs.max_requests_per_conn.or(own.max_requests_per_conn);
        own.h2_goaway_after = knobs.h2_goaway_after.or(own.h2_goaway_after);
        own.h2_refuse_streams = own.h2_refuse_streams.max(knobs.h2_refuse_streams);
        Arc::new(own)
    }

    /// Request `seq` (1 for the first) is about to get `reply`: a chaos
    /// plan's mischief may strike it, as one of the server's faults.
    pub(crate) fn strike(&self, seq: u64, reply: &mut Reply, h2: bool) {
        let Some(m) = self.chaos.as_ref().and_then(|p| p.strikes(seq, h2)) else {
            return;
        };
        match m {
            Mischief::ResetBeforeHead => reply.fault = Some(Fault::ResetWithoutResponse),
            // A head is one frame on HTTP/2: close before it instead.
            Mischief::CloseMidHead if h2 => reply.fault = Some(Fault::CloseWithoutResponse),
            Mischief::CloseMidHead => {
                reply.fault = Some(Fault::Raw(b"HTTP/1.1 200 OK\r\nContent-Le".to_vec()));
                reply.close = true;
            }
            Mischief::CloseMidBody => {
                reply.fault = Some(Fault::CloseAfterBytes(reply.body_size / 2));
            }
            Mischief::Stall => reply.fault = Some(Fault::Stall),
            Mischief::Silence => reply.silence = true,
            // Knobs of the connection's config, set from its start.
            _ => {}
        }
    }

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
