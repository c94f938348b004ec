//! What happens to a response dropped before its end: drain a bounded
//! amount in the background and reuse the connection, or close it. A
//! response set aside on purpose (a redirect being followed) is drained
//! the same way but awaited, so its connection is back (or closed) before
//! the next request asks for one.

use crate::{
    http1::decoder::{Decoder, Step},
    pool::Lease,
    stats::CloseReason,
    trace::Life,
};

/// Called by the body's `Drop` with the unread rest of the response.
pub(crate) fn on_drop(lease: Lease, decoder: Decoder, keep_alive: bool, life: Option<Life>) {
    let Some((lease, decoder, limit, life)) = worth_draining(lease, decoder, keep_alive, life)
    else {
        return;
    };
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(drain(lease, decoder, limit, life));
        }
        Err(_) => {
            lease.close(CloseReason::DrainFailed);
            closed(life, CloseReason::DrainFailed);
        }
    }
}

/// The rest of a response set aside on purpose: drained within the same
/// bounds as a dropped one, but on the caller's task, so the connection is
/// back in the pool (or closed) when this returns.
pub(crate) async fn discard(lease: Lease, decoder: Decoder, keep_alive: bool, life: Option<Life>) {
    if let Some((lease, decoder, limit, life)) = worth_draining(lease, decoder, keep_alive, life) {
        drain(lease, decoder, limit, life).await;
    }
}

/// Closes the connection when draining cannot keep it (it is not
/// reusable, draining is off, or more is left than `drain_limit`).
fn worth_draining(
    lease: Lease,
    decoder: Decoder,
    keep_alive: bool,
    life: Option<Life>,
) -> Option<(Lease, Decoder, u64, Option<Life>)> {
    if !keep_alive {
        let reason = lease.not_reusable();
        closed(life, reason);
        return None;
    }
    let limit = lease.config().drain_limit;
    if limit == 0 || decoder.remaining().is_some_and(|r| r > limit) {
        lease.close(CloseReason::DrainFailed);
        closed(life, CloseReason::DrainFailed);
        return None;
    }
    Some((lease, decoder, limit, life))
}

fn closed(mut life: Option<Life>, reason: CloseReason) {
    if let Some(life) = &mut life {
        life.tracer.conn_closed(reason);
    }
}

async fn drain(mut lease: Lease, mut decoder: Decoder, limit: u64, mut life: Option<Life>) {
    let within = lease.config().drain_timeout;
    let read = async {
        let mut seen = 0u64;
        loop {
            match decoder.decode(lease.conn.rbuf()) {
                Ok(Step::Data(b)) => {
                    seen += b.len() as u64;
                    if seen > limit {
                        return false;
                    }
                }
                Ok(Step::Done) => return lease.conn.rbuf().is_empty(),
                Ok(Step::NeedMore) => {
                    match std::future::poll_fn(|cx| lease.conn.poll_fill(cx, decoder.remaining()))
                        .await
                    {
                        Ok(0) | Err(_) => return false,
                        Ok(_) => {}
                    }
                }
                Err(_) => return false,
            }
        }
    };
    if matches!(tokio::time::timeout(within, read).await, Ok(true)) {
        lease.release();
        if let Some(life) = &mut life {
            life.tracer.conn_returned();
        }
    } else {
        lease.close(CloseReason::DrainFailed);
        closed(life, CloseReason::DrainFailed);
    }
}
