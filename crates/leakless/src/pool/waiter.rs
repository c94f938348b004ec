//! A request waiting for a slot. The pool hands it either a returned
//! connection or the right to dial; if the waiter is gone by then, whatever
//! it was handed goes straight back.

use std::{sync::Arc, time::Duration};

use tokio::{sync::oneshot, time::Instant};

use super::{Checkout, Shared, Site};
use crate::{
    error::{Error, ErrorKind},
    phase::Phase,
    route::Route,
};

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
    pub route: Route,
    pub shared: Arc<Shared>,
}

impl Wait {
    pub async fn wait(mut self, limit: Duration) -> Result<Checkout, Error> {
        match tokio::time::timeout(limit, &mut self.rx).await {
            Ok(Ok(checkout)) => Ok(checkout),
            Ok(Err(_)) => Err(
                Error::new(ErrorKind::PoolWait, "the pool shut down while waiting")
                    .with_phase(Phase::PoolWait)
                    .with_host(self.route.authority()),
            ),
            Err(_) => {
                let state = self.shared.pool_state(&self.route);
                Err(Error::new(ErrorKind::PoolWait, "no connection became free")
                    .with_phase(Phase::PoolWait)
                    .with_host(self.route.authority())
                    .with_elapsed(limit)
                    .with_pool(state))
            }
        }
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        if self.shared.forget_waiter(&self.route, self.id) {
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
