//! When the load loop sends and when it stops, as data: a request count or a
//! duration, an optional rate, and a stop switch (Ctrl-C). Every worker asks
//! the one [`Plan`] for its next ticket, so rate, duration and count need no
//! copies of the loop.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Notify;

/// What ends a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stop {
    /// After this many requests have been started.
    Count(u64),
    /// Once this long has passed since the start; no request starts later.
    After(Duration),
}

/// Permission to send one request: now, or (--rate) at its scheduled
/// start, which is also where its latency from the schedule is measured
/// from, however late it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ticket {
    Now,
    Due(Instant),
}

#[derive(Debug)]
pub struct Plan {
    stop: Stop,
    /// Seconds between two scheduled starts, across all workers.
    interval: Option<f64>,
    start: Instant,
    /// The wall clock at `start`: where runs on other machines line up.
    start_wall: SystemTime,
    /// Tickets handed out. Only counted when the count or the rate needs it,
    /// so an unlimited timed run pays no shared atomic per request.
    claimed: AtomicU64,
    stopped: AtomicBool,
    stop_notify: Notify,
}

impl Plan {
    pub fn new(stop: Stop, rate: Option<f64>) -> Plan {
        Plan {
            stop,
            interval: rate.map(|r| 1.0 / r),
            start: Instant::now(),
            start_wall: SystemTime::now(),
            claimed: AtomicU64::new(0),
            stopped: AtomicBool::new(false),
            stop_notify: Notify::new(),
        }
    }

    pub fn start(&self) -> Instant {
        self.start
    }

    pub fn start_wall(&self) -> SystemTime {
        self.start_wall
    }

    /// Whether requests have scheduled starts (--rate).
    pub fn is_rated(&self) -> bool {
        self.interval.is_some()
    }

    /// When a timed run stops starting requests.
    pub fn deadline(&self) -> Option<Instant> {
        match self.stop {
            Stop::After(d) => Some(self.start + d),
            Stop::Count(_) => None,
        }
    }

    /// The next ticket, or `None` when the run is over. `now` is the
    /// caller's latest clock reading (it has one from timing its last request).
    pub fn next(&self, now: Instant) -> Option<Ticket> {
        if self.stopped.load(Ordering::Relaxed) {
            return None;
        }
        let deadline = self.deadline();
        if deadline.is_some_and(|end| now >= end) {
            return None;
        }
        let counted = matches!(self.stop, Stop::Count(_)) || self.interval.is_some();
        if !counted {
            return Some(Ticket::Now);
        }
        let i = self.claimed.fetch_add(1, Ordering::Relaxed);
        if let Stop::Count(n) = self.stop {
            if i >= n {
                return None;
            }
        }
        let Some(interval) = self.interval else {
            return Some(Ticket::Now);
        };
        let due = self.start + Duration::from_secs_f64(i as f64 * interval);
        if deadline.is_some_and(|end| due >= end) {
            return None;
        }
        Some(Ticket::Due(due))
    }

    /// Ends the run early (Ctrl-C): no new tickets.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.stop_notify.notify_waiters();
    }

    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// Resolves when no more tickets will be handed out because of the
    /// deadline or [`Plan::stop`] (a counted run that simply runs out of
    /// tickets never resolves this: its workers finish on their own).
    pub async fn stopped(&self) {
        let notified = self.stop_notify.notified();
        if self.is_stopped() {
            return;
        }
        match self.deadline() {
            Some(end) => {
                tokio::select! {
                    _ = notified => {}
                    _ = tokio::time::sleep_until(end.into()) => {}
                }
            }
            None => notified.await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn count_hands_out_exactly_n() {
        let plan = Plan::new(Stop::Count(3), None);
        let now = Instant::now();
        let got: Vec<_> = std::iter::from_fn(|| plan.next(now)).collect();
        assert_eq!(got, vec![Ticket::Now; 3]);
    }

    #[test]
    fn rate_spreads_tickets() {
        let plan = Plan::new(Stop::Count(3), Some(10.0));
        let t0 = plan.start();
        assert_eq!(plan.next(t0), Some(Ticket::Due(t0)));
        assert_eq!(
            plan.next(t0),
            Some(Ticket::Due(t0 + Duration::from_millis(100)))
        );
        // Asked late, a ticket keeps its scheduled start: latency from the
        // schedule counts the time it waited for a free worker.
        assert_eq!(
            plan.next(t0 + Duration::from_secs(5)),
            Some(Ticket::Due(t0 + Duration::from_millis(200)))
        );
        assert_eq!(plan.next(t0), None);
    }

    #[test]
    fn deadline_and_stop_end_the_run() {
        let plan = Plan::new(Stop::After(Duration::from_secs(1)), Some(2.0));
        let t0 = plan.start();
        assert_eq!(plan.next(t0), Some(Ticket::Due(t0)));
        assert!(matches!(plan.next(t0), Some(Ticket::Due(_))));
        // The third is due at 1 s: not before the deadline, so not sent.
        assert_eq!(plan.next(t0), None);
        assert_eq!(plan.next(t0 + Duration::from_secs(2)), None);

        let open = Plan::new(Stop::After(Duration::from_secs(60)), None);
        assert_eq!(open.next(open.start()), Some(Ticket::Now));
        open.stop();
        assert_eq!(open.next(open.start()), None);
    }
}
