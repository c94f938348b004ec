//! The Go view of a process (what its net/http goroutines are doing), and
//! the socket verdicts it explains: a LEAK of ESTABLISHED connections whose
//! read loops wait for bodies nobody closes, requests that never get an
//! answer, or inbound CLOSE_WAIT next to handlers that ignore their
//! request's context.

use std::collections::BTreeMap;

use serde::Serialize;

use super::classify::{NetHttp, Role, Seen};
use super::fetch::{EVERY, Latest};
use crate::duration::human;
use crate::watch::verdict::{Kind, Verdict};

/// One role's goroutines, summed up.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct RoleView {
    pub count: u32,
    /// The shortest and the longest time parked: all of them for at least
    /// the first.
    pub parked_min_s: f64,
    pub parked_max_s: f64,
    /// How many were parked for a dump interval or more (seen so in two
    /// dumps, or Go said minutes), and the shortest time among those.
    pub parked_long: u32,
    pub parked_long_min_s: f64,
    /// Goroutine states (`select`, `IO wait`, ...) and how many.
    pub states: BTreeMap<String, u32>,
    /// The user code behind them, `main.fetchUser (main.go:53)`, and how many.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub origins: BTreeMap<String, u32>,
    /// Their pprof labels, `callsite=fetchUser`, and how many.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, u32>,
}

impl RoleView {
    fn of(seen: &[Seen], labels: Option<&BTreeMap<String, u32>>) -> RoleView {
        let mut v = RoleView {
            count: seen.len() as u32,
            parked_min_s: seen
                .iter()
                .map(|s| s.parked_s)
                .fold(f64::INFINITY, f64::min),
            parked_max_s: seen.iter().map(|s| s.parked_s).fold(0.0, f64::max),
            labels: labels.cloned().unwrap_or_default(),
            ..RoleView::default()
        };
        let long: Vec<f64> = seen
            .iter()
            .map(|s| s.parked_s)
            .filter(|p| *p >= EVERY.as_secs_f64() - 1e-6)
            .collect();
        v.parked_long = long.len() as u32;
        v.parked_long_min_s = long.iter().copied().fold(f64::INFINITY, f64::min);
        if long.is_empty() {
            v.parked_long_min_s = 0.0;
        }
        if seen.is_empty() {
            v.parked_min_s = 0.0;
        }
        for s in seen {
            *v.states.entry(s.state.clone()).or_default() += 1;
            if let Some(o) = &s.origin {
                *v.origins
                    .entry(format!("{} ({})", o.func, o.place()))
                    .or_default() += 1;
            }
        }
        v
    }

    /// How long they have waited: " for ≥ 2m" when all of them have for a
    /// dump interval or more, ", 5 of them for ≥ 12s" when some have, else
    /// " (the longest 3s)".
    fn parked(&self) -> String {
        if self.parked_long == self.count && self.count > 0 {
            format!(" for ≥ {}", human(self.parked_min_s))
        } else if self.parked_long > 0 {
            format!(
                ", {} of them for ≥ {}",
                self.parked_long,
                human(self.parked_long_min_s)
            )
        } else {
            format!(" (the longest {})", human(self.parked_max_s))
        }
    }

    /// `lead` and who: "; dialed from label callsite=fetchUser /
    /// main.fetchUser (main.go:53)", or nothing when neither is known.
    fn from(&self, lead: &str) -> String {
        let top = |m: &BTreeMap<String, u32>| {
            m.iter()
                .max_by_key(|(k, n)| (**n, std::cmp::Reverse((*k).clone())))
                .map(|(k, _)| k.clone())
        };
        let parts: Vec<String> = [
            top(&self.labels).map(|l| format!("label {l}")),
            top(&self.origins),
        ]
        .into_iter()
        .flatten()
        .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!("{lead} {}", parts.join(" / "))
        }
    }
}

/// What `--pprof` saw of the process, for every output.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct GoView {
    /// The goroutine profile's address.
    pub pprof: String,
    /// Seconds since the dump was taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_s: Option<f64>,
    /// Why there is no dump (yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub goroutines: u32,
    /// Whether the dump has ancestors (GODEBUG=tracebackancestors), which
    /// name the code that dialed each connection.
    pub ancestors: bool,
    /// HTTP/1.1 connections idle in the pool: read loops waiting for a
    /// response with no request waiting for one.
    pub pooled_idle: u32,
    pub roles: BTreeMap<Role, RoleView>,
}

impl GoView {
    /// The view of the latest dump (`None`: none taken yet).
    pub fn new(pprof: String, latest: Option<&Latest>, now: f64) -> GoView {
        let mut v = GoView {
            pprof,
            age_s: None,
            error: None,
            goroutines: 0,
            ancestors: false,
            pooled_idle: 0,
            roles: BTreeMap::new(),
        };
        let Some(latest) = latest else {
            v.error = Some("no dump yet".to_string());
            return v;
        };
        v.age_s = Some((now - latest.at).max(0.0));
        match &latest.result {
            Err(e) => v.error = Some(e.clone()),
            Ok(n) => v.fill(n),
        }
        v
    }

    fn fill(&mut self, n: &NetHttp) {
        self.goroutines = n.goroutines;
        self.ancestors = n.ancestors;
        for (role, seen) in &n.by_role {
            self.roles
                .insert(*role, RoleView::of(seen, n.labels.get(role)));
        }
        self.pooled_idle =
            (n.count(Role::Reading) as u32).saturating_sub(n.count(Role::InFlight) as u32);
    }

    fn role(&self, r: Role) -> Option<&RoleView> {
        self.roles.get(&r).filter(|v| v.count > 0)
    }

    /// The view as lines of text, for the report and the terminal.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        let head = match (&self.error, self.age_s) {
            (Some(e), _) => format!("Go ({}): {e}", self.pprof),
            (None, age) => format!(
                "Go (pprof, {} goroutines, dump {} old):",
                self.goroutines,
                age.map_or("?".to_string(), human)
            ),
        };
        out.push(head);
        if self.error.is_some() {
            return out;
        }
        if let Some(v) = self.role(Role::BodyUnread) {
            out.push(format!(
                "  {} read loops waiting for a response body to be read or closed{}{}",
                v.count,
                v.parked(),
                v.from("; dialed from")
            ));
            if !self.ancestors {
                out.push("    run the program with GODEBUG=tracebackancestors=5 to name the code that dialed them".to_string());
            }
        }
        if let Some(v) = self.role(Role::InFlight) {
            out.push(format!(
                "  {} requests waiting for their response{}{}",
                v.count,
                v.parked(),
                v.from("; from")
            ));
        }
        if self.pooled_idle > 0 {
            out.push(format!(
                "  {} HTTP/1.1 connections idle in the pool",
                self.pooled_idle
            ));
        }
        if let Some(v) = self.role(Role::Http2Conn) {
            out.push(format!("  {} HTTP/2 connections", v.count));
        }
        if let Some(v) = self.role(Role::Handler) {
            out.push(format!(
                "  {} server handlers running{}{}",
                v.count,
                v.parked(),
                v.from("; in")
            ));
        }
        if out.len() == 1 {
            out.push("  no net/http connection goroutines".to_string());
        }
        out
    }

    /// Explains the process's socket verdicts with its goroutines, where
    /// they say more.
    pub fn explain(&self, verdicts: &mut [Verdict]) {
        for v in verdicts.iter_mut().filter(|v| v.verdict == Kind::Leak) {
            let ep = v.endpoint.clone().unwrap_or_default();
            let inbound = ep.starts_with("inbound");
            match v.state {
                Some("ESTABLISHED") if !inbound => {
                    if let Some(r) = self.role(Role::BodyUnread) {
                        body_not_closed(v, &ep, r);
                    } else if let Some(r) = self.role(Role::InFlight) {
                        no_response(v, &ep, r);
                    }
                }
                Some("CLOSE_WAIT") if inbound => {
                    if let Some(r) = self.role(Role::Handler) {
                        handler_ignores_context(v, &ep, r);
                    }
                }
                _ => {}
            }
        }
    }
}

fn count(v: &Verdict, key: &str) -> u32 {
    v.numbers.get(key).copied().unwrap_or(0.0) as u32
}

/// What a role's goroutines say about a socket verdict: its cause, a
/// summary in their words, a first line of evidence and the advice.
struct Explanation {
    cause: &'static str,
    summary: String,
    /// The number under which the goroutines are counted.
    counted_as: &'static str,
    evidence: String,
    advice: &'static str,
}

impl Explanation {
    /// Puts it on the verdict, keeping the sockets' evidence after it.
    fn apply(self, v: &mut Verdict, r: &RoleView) {
        v.cause = Some(self.cause);
        v.summary = self.summary;
        v.numbers.insert(self.counted_as, f64::from(r.count));
        v.numbers.insert("go_parked_min_s", r.parked_min_s);
        v.evidence.insert(0, self.evidence);
        v.advice = Some(self.advice.to_string());
    }
}

fn body_not_closed(v: &mut Verdict, ep: &str, r: &RoleView) {
    Explanation {
        cause: "body-not-closed",
        summary: format!(
            "{} connections to {ep}, {} readLoops waiting for the body{}{}",
            count(v, "established"),
            r.count,
            r.parked(),
            r.from("; dialed from")
        ),
        counted_as: "go_read_loops_body_unread",
        evidence: format!(
            "Go: {} net/http read loops parked in select waiting for their response body to be read to the end or closed ({}), the longest for {}",
            r.count,
            states(r),
            human(r.parked_max_s)
        ),
        advice: "close every response body: `defer resp.Body.Close()` right after checking the error, and read it to the end (io.Copy(io.Discard, resp.Body)) so the connection is reused; set http.Client.Timeout so a body nobody reads cannot hold its connection for ever",
    }
    .apply(v, r);
}

fn no_response(v: &mut Verdict, ep: &str, r: &RoleView) {
    Explanation {
        cause: "no-response",
        summary: format!(
            "{} connections to {ep}, {} requests still waiting for their response{}{}",
            count(v, "established"),
            r.count,
            r.parked(),
            r.from("; from")
        ),
        counted_as: "go_requests_in_flight",
        evidence: format!(
            "Go: {} requests parked in persistConn.roundTrip: the server has not answered them, and nothing gives up on them",
            r.count
        ),
        advice: "bound every request: http.Client.Timeout (or Transport.ResponseHeaderTimeout) and a context with a deadline",
    }
    .apply(v, r);
}

fn handler_ignores_context(v: &mut Verdict, ep: &str, r: &RoleView) {
    Explanation {
        cause: "handler-ignores-context",
        summary: format!(
            "{} CLOSE_WAIT on {ep}, {} handlers parked{}{}: their clients went away and the handlers never noticed",
            count(v, "close_wait"),
            r.count,
            r.parked(),
            r.from(" in")
        ),
        counted_as: "go_handlers_parked",
        evidence: format!(
            "Go: {} handlers under net/http's conn.serve parked ({}), the longest for {}; a server closes a connection only when its handler returns",
            r.count,
            states(r),
            human(r.parked_max_s)
        ),
        advice: "make the handler return when r.Context() is done: select on ctx.Done() beside what it waits for, and pass ctx to every call that can block; http.Server's ReadTimeout and WriteTimeout bound what a stuck handler can hold",
    }
    .apply(v, r);
}

fn states(r: &RoleView) -> String {
    let list: Vec<String> = r.states.iter().map(|(s, n)| format!("{n} {s}")).collect();
    list.join(", ")
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
