//! What happens to a response dropped before its end: drain a bounded
//! amount in the background and reuse the connection, or close it.

use crate::{
    h1::decoder::{Decoder, Step},
    lease::Lease,
    stats::CloseReason,
};

/// Called by the body's `Drop` with the unread rest of the response.
pub(crate) fn on_drop(lease: Lease, decoder: Decoder, keep_alive: bool) {
    if !keep_alive {
        return lease.not_reusable();
    }
    let limit = lease.config().drain_limit;
    if limit == 0 || decoder.remaining().is_some_and(|r| r > limit) {
        return lease.close(CloseReason::DrainFailed);
    }
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn(drain(lease, decoder, limit));
        }
        Err(_) => lease.close(CloseReason::DrainFailed),
    }
}

async fn drain(mut lease: Lease, mut decoder: Decoder, limit: u64) {
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
                    match std::future::poll_fn(|cx| lease.conn.poll_fill(cx)).await {
                        Ok(0) | Err(_) => return false,
                        Ok(_) => {}
                    }
                }
                Err(_) => return false,
            }
        }
    };
    match tokio::time::timeout(within, read).await {
        Ok(true) => lease.release(),
        _ => lease.close(CloseReason::DrainFailed),
    }
}
