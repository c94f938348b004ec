//! What a worker does with one request, and how the request ended: the
//! words the workers and the tally share.

use leakless::Error;

/// What a worker does with one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// GET and read the body to its end.
    Read,
    /// POST a body and read the answer to its end.
    Upload,
    /// GET, read at most one chunk, drop the rest.
    DropBody,
    /// GET and read, but give up after a random moment (under 100 ms).
    Cancel,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Upload => "upload",
            Action::DropBody => "drop body",
            Action::Cancel => "cancel",
        }
    }
}

/// How a request ended.
pub enum Outcome {
    /// Its body was read in full and was right.
    Ok,
    /// The body was dropped after its head, as the action asked.
    Dropped,
    /// Cancelled by the worker before it ended.
    Cancelled,
    /// The client said why it failed.
    Failed(Error),
    /// It ended without an error but its body was wrong: never allowed.
    Wrong(String),
}
