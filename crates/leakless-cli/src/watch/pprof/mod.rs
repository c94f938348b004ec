//! `--pprof URL`: a Go process's goroutines joined with its sockets.
//!
//! A thread fetches `goroutine?debug=2` and `?debug=1` from the program's
//! net/http/pprof handler every 10 s ([`fetch`]); the dumps are parsed
//! without Go ([`parse`]) and each goroutine sorted into what it does for
//! a connection ([`classify`]); [`view`] turns that into the process's Go
//! view and explains its socket verdicts: bodies never closed, requests
//! never answered, handlers that ignore their request's context.

mod classify;
mod fetch;
mod parse;
mod view;

pub use fetch::{Poller, Source};
pub use view::GoView;

use super::snapshot::Snapshot;

/// The GODEBUG setting a command started with `--pprof` gets (added to
/// any it has), so a connection's goroutines name the code that dialed it.
pub const ANCESTORS: &str = "tracebackancestors=5";

/// Adds the Go view to process `pid` of the snapshot and lets it explain
/// that process's verdicts.
pub fn annotate(snap: &mut Snapshot, pid: u32, poller: &Poller) {
    let Some(p) = snap.processes.iter_mut().find(|p| p.pid == pid) else {
        return;
    };
    let latest = poller.latest();
    let view = GoView::new(poller.source.url(2), latest.as_ref(), snap.t);
    if let Some(verdicts) = p.verdicts.as_mut() {
        view.explain(verdicts);
    }
    p.go = Some(view);
}

/// GODEBUG for a command watched with `--pprof`: the ancestors setting
/// added to what the environment has, unless it sets one already.
pub fn godebug(current: Option<&str>) -> Option<String> {
    match current {
        Some(c) if c.contains("tracebackancestors=") => None,
        Some(c) if !c.is_empty() => Some(format!("{c},{ANCESTORS}")),
        _ => Some(ANCESTORS.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn godebug_keeps_what_is_set() {
        assert_eq!(godebug(None).as_deref(), Some("tracebackancestors=5"));
        assert_eq!(godebug(Some("")).as_deref(), Some("tracebackancestors=5"));
        assert_eq!(
            godebug(Some("http2debug=1")).as_deref(),
            Some("http2debug=1,tracebackancestors=5")
        );
        assert_eq!(godebug(Some("tracebackancestors=2")), None);
    }
}
