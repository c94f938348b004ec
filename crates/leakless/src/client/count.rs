//! Counts live and recently created clients, to warn once when a process
//! keeps creating them: a client per request means a pool per request, a
//! handshake per request, and sockets in TIME_WAIT piling up.

use std::sync::{
    Mutex,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};

use tokio::time::Instant;

/// Alive at once past this: surely one per request.
const MAX_ALIVE: usize = 32;
/// Created within `WINDOW` past this: built and dropped per request.
const MAX_PER_WINDOW: usize = 64;
const WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

static ALIVE: AtomicUsize = AtomicUsize::new(0);
static WARNED: AtomicBool = AtomicBool::new(false);
static RECENT: Mutex<Option<(Instant, usize)>> = Mutex::new(None);

/// Held by each client; counts it while it lives.
#[derive(Debug)]
pub(super) struct Counted(());

impl Counted {
    pub fn new() -> Counted {
        let alive = ALIVE.fetch_add(1, Ordering::Relaxed) + 1;
        let recent = {
            let mut r = RECENT.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let (since, n) = r.get_or_insert((now, 0));
            if now.duration_since(*since) > WINDOW {
                (*since, *n) = (now, 0);
            }
            *n += 1;
            *n
        };
        if (alive > MAX_ALIVE || recent > MAX_PER_WINDOW) && !WARNED.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                alive,
                created_recently = recent,
                "leakless: this process keeps creating clients ({alive} alive, {recent} in the last {WINDOW:?}); \
                 each has its own pool, so connections are not reused. Build one Client and clone it \
                 (clones share the pool)"
            );
        }
        Counted(())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        ALIVE.fetch_sub(1, Ordering::Relaxed);
    }
}
