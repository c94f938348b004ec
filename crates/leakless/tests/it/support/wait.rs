//! Waiting without hanging: every wait here fails the test after 20 s
//! instead, saying what it waited for and what it saw last.

use std::{fmt::Debug, time::Duration};

use leakless::{Client, HostStats};

/// How long any wait may take before the test fails.
const LIMIT: Duration = Duration::from_secs(20);

/// Awaits `fut`, failing the test instead of hanging.
///
/// `fut` (often a whole request) is moved to the heap: the test's own
/// future, which tokio::test keeps on the thread's stack, stays small.
pub async fn bounded<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(LIMIT, Box::pin(fut))
        .await
        .expect("bounded wait exceeded 20 s")
}

/// Polls `probe` until `done` holds of what it returns, and returns that.
/// Fails after 20 s of real time with `what` and the last value seen.
///
/// Each poll yields to the runtime, so tasks on this thread (a
/// current-thread runtime) run in between, and the runtime is never idle:
/// a paused clock stands still. Now and then it also sleeps half a
/// millisecond of real time, not to spin a shared core while another
/// thread (the server's) or the kernel does the work.
pub async fn wait_for<T: Debug>(
    what: &str,
    mut probe: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let start = std::time::Instant::now();
    for polls in 1u64.. {
        let seen = probe();
        if done(&seen) {
            return seen;
        }
        assert!(
            start.elapsed() < LIMIT,
            "waited 20 s for {what}; last seen: {seen:#?}"
        );
        tokio::task::yield_now().await;
        if polls % 64 == 0 {
            std::thread::sleep(Duration::from_micros(500));
        }
    }
    unreachable!()
}

/// [`wait_for`] the client's total stats: waits until `done` holds of
/// them and returns that snapshot.
pub async fn wait_for_stats(
    client: &Client,
    what: &str,
    done: impl Fn(&HostStats) -> bool,
) -> HostStats {
    wait_for(what, || client.stats().total, done).await
}

/// No dial, no busy connection (a background drain is one), no waiter.
pub fn nothing_in_flight(s: &HostStats) -> bool {
    s.dialing == 0 && s.busy == 0 && s.waiting == 0
}
