//! The runtime the workers run on, sized by `--threads`.

use tokio::runtime::{Builder, Runtime};

pub fn runtime(threads: usize) -> Result<Runtime, String> {
    // One thread: the current-thread scheduler, no work stealing, the
    // cheapest per request (what a pinned comparison with wrk -t1 wants).
    let mut b = if threads == 1 {
        Builder::new_current_thread()
    } else {
        let mut b = Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    b.enable_all()
        .thread_name("load-worker")
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}
