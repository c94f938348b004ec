//! A request waiting for a slot. The pool hands it either a returned
//! connection or the right to dial; if the waiter is gone by then, whatever
//! it was handed goes straight back.

use std::{sync::Arc, time::Duration};

use tokio::sync::oneshot;

use tokio::time::Instant;

use super::{Checkout, HostKey, Shared, Site};
use crate::{error::Error, error::ErrorKind, timeout::Phase};

#[derive(Debug)]
pub(super) struct Waiter {
    pub id: u64,
    pub tx: oneshot::Sender<Checkout>,
    pub site: Site,
    pub since: Instant,
}

/// The waiting side; dropping it at any point leaves nothing behind.
pub(super) struct Wait {
    pub rx: oneshot::Receiver<Checkout>,
    pub id: u64,
    pub key: HostKey,
    pub shared: Arc<Shared>,
}

impl Wait {
    pub async fn wait(mut self, limit: Duration) -> Result<Checkout, Error> {
        match tokio::time::timeout(limit, &mut self.rx).await {
            Ok(Ok(checkout)) => Ok(checkout),
            Ok(Err(_)) => Err(
                Error::new(ErrorKind::PoolWait, "the pool shut down while waiting")
                    .with_phase(Phase::PoolWait)
                    .with_host(self.key.authority()),
            ),
            Err(_) => {
                let state = self.shared.pool_state(&self.key);
                Err(Error::new(ErrorKind::PoolWait, "no connection became free")
                    .with_phase(Phase::PoolWait)
                    .with_host(self.key.authority())
                    .with_elapsed(limit)
                    .with_pool(state))
            }
        }
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if self.shared.forget_waiter(&self.key, self.id) {
            return;
        }
        // Already served: take what we were handed and give it back.
        self.rx.close();
        if let Ok(checkout) = self.rx.try_recv() {
            match checkout {
                Checkout::Reused(lease) => lease.release(),
                Checkout::Stream(stream) => drop(stream),
                Checkout::Dial(slot) => drop(slot),
            }
        }
    }
}
