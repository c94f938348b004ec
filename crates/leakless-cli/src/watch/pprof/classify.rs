//! What net/http's goroutines say about a process's connections: each
//! goroutine sorted into a [`Role`] by the functions on its stack, with the
//! user code behind it, how long it has been parked, and its pprof labels.

use std::collections::BTreeMap;

use foldhash::{HashMap, HashMapExt};
use serde::Serialize;

use super::parse::{Frame, Goroutine, Group, goroutines, groups};

const READ_LOOP: &str = "net/http.(*persistConn).readLoop";
const ROUND_TRIP: &str = "net/http.(*persistConn).roundTrip";
const PEEK: &str = "bufio.(*Reader).Peek";
const SERVER_HANDLER: &str = "net/http.serverHandler.ServeHTTP";

/// What a goroutine is doing for a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// An HTTP/1.1 connection's read loop parked in `select`, waiting for
    /// the response body to be read to its end or closed.
    BodyUnread,
    /// A read loop waiting in `Peek` for the next response: the connection
    /// is idle in the pool, or a request on it awaits its answer.
    Reading,
    /// A request waiting for its response (`persistConn.roundTrip`).
    InFlight,
    /// An HTTP/2 client connection's read loop.
    Http2Conn,
    /// A server handler (user code under `serverHandler.ServeHTTP`).
    Handler,
}

impl Role {
    /// The name in the JSON and the metrics.
    pub fn name(self) -> &'static str {
        match self {
            Role::BodyUnread => "body_unread",
            Role::Reading => "reading",
            Role::InFlight => "in_flight",
            Role::Http2Conn => "http2_conn",
            Role::Handler => "handler",
        }
    }

    /// From a stack's functions, innermost first.
    pub fn of<'a>(funcs: impl Iterator<Item = &'a str> + Clone) -> Option<Role> {
        let has = |name: &str| funcs.clone().any(|f| f == name);
        if has(ROUND_TRIP) {
            return Some(Role::InFlight);
        }
        if has(READ_LOOP) {
            // Parked in the loop itself (its select) rather than in a read.
            let reading = funcs
                .clone()
                .take_while(|f| *f != READ_LOOP)
                .any(|f| f == PEEK || f.ends_with(".Read") || f.ends_with(".fill"));
            return Some(if reading {
                Role::Reading
            } else {
                Role::BodyUnread
            });
        }
        if funcs.clone().any(|f| {
            f.ends_with(".(*http2ClientConn).readLoop")
                || f.ends_with("http2.(*ClientConn).readLoop")
        }) {
            return Some(Role::Http2Conn);
        }
        if has(SERVER_HANDLER) && funcs.clone().any(is_user) {
            return Some(Role::Handler);
        }
        None
    }
}

fn is_user(func: &str) -> bool {
    Frame {
        func: func.to_string(),
        file: String::new(),
        line: 0,
    }
    .is_user()
}

/// One goroutine in a role.
#[derive(Clone, Debug, PartialEq)]
pub struct Seen {
    pub id: u64,
    pub state: String,
    /// How long it has been parked in this role: what Go says (minutes),
    /// or since the first dump that saw it so, whichever is longer.
    pub parked_s: f64,
    /// The user code behind it: where a connection was dialed from
    /// (through GODEBUG=tracebackancestors), the code waiting for a
    /// response, or the handler.
    pub origin: Option<Frame>,
}

/// One dump's net/http goroutines.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetHttp {
    pub goroutines: u32,
    pub by_role: BTreeMap<Role, Vec<Seen>>,
    /// pprof labels per role, from `debug=1`: `callsite=fetchUser` -> count.
    pub labels: BTreeMap<Role, BTreeMap<String, u32>>,
    /// Whether the dump has ancestors (GODEBUG=tracebackancestors is on).
    pub ancestors: bool,
}

impl NetHttp {
    pub fn count(&self, role: Role) -> usize {
        self.by_role.get(&role).map_or(0, Vec::len)
    }

    #[cfg(test)]
    pub fn seen(&self, role: Role) -> &[Seen] {
        self.by_role.get(&role).map_or(&[], Vec::as_slice)
    }
}

/// Remembers, across dumps, when each goroutine was first seen in its role.
#[derive(Default)]
pub struct Tracker {
    first: HashMap<(u64, Role), f64>,
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker::default()
    }

    /// Reads one `debug=2` dump (and, when fetched, the `debug=1` one for
    /// labels) taken at `now` seconds.
    pub fn read(&mut self, now: f64, debug2: &str, debug1: Option<&str>) -> NetHttp {
        let all = goroutines(debug2);
        let mut out = NetHttp {
            goroutines: all.len() as u32,
            ancestors: all.iter().any(|g| !g.ancestors.is_empty()),
            ..NetHttp::default()
        };
        let mut first = HashMap::new();
        for g in &all {
            let Some(role) = Role::of(g.frames.iter().map(|f| f.func.as_str())) else {
                continue;
            };
            let since = *self.first.get(&(g.id, role)).unwrap_or(&now);
            first.insert((g.id, role), since);
            let told = g.wait_minutes.map_or(0.0, |m| f64::from(m) * 60.0);
            out.by_role.entry(role).or_default().push(Seen {
                id: g.id,
                state: g.state.clone(),
                parked_s: (now - since).max(told),
                origin: origin(role, g),
            });
        }
        // Goroutines gone from this dump are forgotten.
        self.first = first;
        if let Some(text) = debug1 {
            out.labels = labels_by_role(&groups(text));
        }
        out
    }
}

/// The user code behind a goroutine of `role`.
fn origin(role: Role, g: &Goroutine) -> Option<Frame> {
    let ancestral = || {
        g.ancestors
            .iter()
            .flat_map(|a| a.frames.iter().chain(&a.created_by))
            .find(|f| f.is_user())
            .cloned()
    };
    match role {
        // The innermost user frame: where the handler is parked.
        Role::Handler => g.frames.iter().find(|f| f.is_user()).cloned(),
        // The code that asked for it, on the stack or before it.
        Role::InFlight => g
            .frames
            .iter()
            .find(|f| f.is_user())
            .cloned()
            .or_else(ancestral),
        // A connection's loops run in goroutines net/http started: only
        // their ancestors (tracebackancestors) know who dialed.
        Role::BodyUnread | Role::Reading | Role::Http2Conn => ancestral(),
    }
}

fn labels_by_role(groups: &[Group]) -> BTreeMap<Role, BTreeMap<String, u32>> {
    let mut out: BTreeMap<Role, BTreeMap<String, u32>> = BTreeMap::new();
    for g in groups.iter().filter(|g| !g.labels.is_empty()) {
        let Some(role) = Role::of(g.funcs.iter().map(String::as_str)) else {
            continue;
        };
        let text: Vec<String> = g.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        *out.entry(role)
            .or_default()
            .entry(text.join(","))
            .or_default() += g.count;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(name: &str) -> (&'static str, &'static str) {
        match name {
            "body" => (
                include_str!("testdata/body.debug2.txt"),
                include_str!("testdata/body.debug1.txt"),
            ),
            "idle" => (
                include_str!("testdata/idle.debug2.txt"),
                include_str!("testdata/idle.debug1.txt"),
            ),
            "inflight" => (
                include_str!("testdata/inflight.debug2.txt"),
                include_str!("testdata/inflight.debug1.txt"),
            ),
            "h2" => (
                include_str!("testdata/h2.debug2.txt"),
                include_str!("testdata/h2.debug1.txt"),
            ),
            "handler" => (
                include_str!("testdata/handler.debug2.txt"),
                include_str!("testdata/handler.debug1.txt"),
            ),
            _ => unreachable!(),
        }
    }

    fn read(name: &str) -> NetHttp {
        let (d2, d1) = dump(name);
        Tracker::new().read(0.0, d2, Some(d1))
    }

    /// fetchUser never closes its bodies: 20 read loops parked waiting for
    /// them, dialed from main.fetchUser (ancestors), labelled fetchUser.
    #[test]
    fn bodies_never_closed() {
        let n = read("body");
        assert_eq!(n.count(Role::BodyUnread), 20);
        assert_eq!(n.count(Role::Reading), 0);
        assert_eq!(n.count(Role::InFlight), 0);
        assert!(n.ancestors);
        let origin = n.seen(Role::BodyUnread)[0].origin.as_ref().unwrap();
        assert_eq!(origin.func, "main.fetchUser");
        assert_eq!(
            n.labels[&Role::BodyUnread],
            BTreeMap::from([("callsite=fetchUser".to_string(), 20)])
        );
    }

    #[test]
    fn an_idle_pool_reads_and_waits() {
        let n = read("idle");
        assert_eq!(n.count(Role::Reading), 4);
        assert_eq!(n.count(Role::BodyUnread), 0);
        assert_eq!(n.count(Role::InFlight), 0);
        assert!(!n.ancestors, "captured without tracebackancestors");
        assert_eq!(n.seen(Role::Reading)[0].origin, None);
    }

    #[test]
    fn requests_in_flight_name_their_caller() {
        let n = read("inflight");
        assert_eq!(n.count(Role::InFlight), 3);
        assert_eq!(n.count(Role::Reading), 3, "their connections wait in Peek");
        let origin = n.seen(Role::InFlight)[0].origin.as_ref().unwrap();
        assert_eq!(origin.func, "main.slowReport");
        assert_eq!(
            n.labels[&Role::InFlight],
            BTreeMap::from([("callsite=slowReport".to_string(), 3)])
        );
    }

    #[test]
    fn http2_connections() {
        let n = read("h2");
        assert_eq!(n.count(Role::Http2Conn), 2);
        assert_eq!(n.count(Role::Reading), 0);
        assert_eq!(
            n.count(Role::Handler),
            0,
            "the h2 server's own loops have no user frame"
        );
    }

    #[test]
    fn handlers_parked_in_user_code() {
        let n = read("handler");
        let h = n.seen(Role::Handler);
        assert_eq!(h.len(), 3);
        assert_eq!(h[0].state, "chan receive");
        assert_eq!(h[0].origin.as_ref().unwrap().func, "main.slowHandler");
        // The pprof handler serving the dump itself is not user code.
        assert!(h.iter().all(|s| s.origin.is_some()));
    }

    /// A goroutine seen parked in two dumps 12 s apart has been parked 12 s
    /// at least; Go's own minutes win when longer.
    #[test]
    fn parked_time_accumulates_across_dumps() {
        let (d2, _) = dump("body");
        let mut t = Tracker::new();
        t.read(100.0, d2, None);
        let n = t.read(112.0, d2, None);
        assert!(n.seen(Role::BodyUnread).iter().all(|s| s.parked_s == 12.0));
        let newer = include_str!("testdata/body.go121-edited.debug2.txt");
        let n = t.read(113.0, newer, None);
        assert!(n.seen(Role::BodyUnread).iter().all(|s| s.parked_s == 180.0));
    }
}
