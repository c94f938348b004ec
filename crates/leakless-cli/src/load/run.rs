//! The load loop, the only one: `concurrency` workers, each asking the
//! [`Plan`] for a ticket, sending the [`Template`], timing it, recording it.
//! Rate, duration and count are the plan's business; Ctrl-C stops the plan.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use leakless::Client;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use super::monitor::{Clock, Monitor};
use super::plan::{Plan, Ticket};
use super::progress::Progress;
use super::recorder::{Shards, Tally};
use super::request::Template;
use super::series::Series;

/// How long requests in flight may finish after a timed run's deadline (or
/// Ctrl-C) when the command sets no other grace.
pub const GRACE: Duration = Duration::from_secs(2);

/// What the loop produced.
pub struct Run {
    /// The wall clock when the first request was due.
    pub start_wall: SystemTime,
    pub series: Series,
    /// Statuses, versions, errors and bytes of every finished request.
    pub tally: Tally,
    pub elapsed: Duration,
    /// Requests in flight when the grace after the stop ran out; dropped,
    /// so not in the counts (their connections were closed as `canceled`).
    pub canceled: u64,
    pub interrupted: bool,
}

/// One flag per worker, on its own cache line: "a request is in flight".
/// Read only when the run is cut short, to count what was canceled; a
/// plain store on an unshared line costs the worker next to nothing.
#[repr(align(64))]
#[derive(Default)]
struct InFlight(AtomicBool);

struct Ctx {
    client: Client,
    template: Template,
    plan: Arc<Plan>,
    shards: Arc<Shards>,
    in_flight: Vec<InFlight>,
}

pub struct Load {
    pub client: Client,
    pub template: Template,
    pub plan: Arc<Plan>,
    pub concurrency: usize,
    pub threads: usize,
    /// How long requests in flight may finish after the plan stops.
    pub grace: Duration,
}

impl Load {
    pub fn run(self, rt: &Runtime, progress: Progress) -> Run {
        let start = self.plan.start();
        let clock = Clock {
            start,
            wall: self.plan.start_wall(),
        };
        let shards = Arc::new(Shards::new(self.threads, self.concurrency));
        let monitor = Monitor::start(
            self.client.clone(),
            shards.clone(),
            clock,
            self.plan.is_rated(),
            progress,
        );
        let ctx = Arc::new(Ctx {
            client: self.client,
            template: self.template,
            plan: self.plan.clone(),
            shards: shards.clone(),
            in_flight: (0..self.concurrency).map(|_| InFlight::default()).collect(),
        });
        let plan = self.plan;
        let grace = self.grace;
        let (canceled, interrupted) = rt.block_on(async move {
            let ctrl_c = {
                let plan = plan.clone();
                tokio::spawn(async move {
                    if tokio::signal::ctrl_c().await.is_ok() {
                        plan.stop();
                    }
                })
            };
            let mut workers = JoinSet::new();
            for i in 0..self.concurrency {
                workers.spawn(worker(ctx.clone(), i));
            }
            let cutoff = async {
                plan.stopped().await;
                tokio::time::sleep(grace).await;
            };
            tokio::pin!(cutoff);
            let mut canceled = 0;
            loop {
                tokio::select! {
                    joined = workers.join_next() => match joined {
                        None => break,
                        Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                        Some(_) => {}
                    },
                    _ = &mut cutoff => {
                        canceled = ctx
                            .in_flight
                            .iter()
                            .filter(|f| f.0.load(Ordering::Acquire))
                            .count() as u64;
                        workers.abort_all();
                        while workers.join_next().await.is_some() {}
                        break;
                    }
                }
            }
            ctrl_c.abort();
            (canceled, plan.is_stopped())
        });
        let elapsed = start.elapsed();
        let series = monitor.finish();
        Run {
            start_wall: clock.wall,
            series,
            tally: shards.tally(),
            elapsed,
            canceled,
            interrupted,
        }
    }
}

async fn worker(ctx: Arc<Ctx>, i: usize) {
    let rec = ctx.shards.for_worker(i);
    let flag = &ctx.in_flight[i].0;
    let mut now = Instant::now();
    while let Some(ticket) = ctx.plan.next(now) {
        let due = match ticket {
            Ticket::Now => None,
            Ticket::Due(at) => {
                if at > now {
                    tokio::time::sleep_until(at.into()).await;
                }
                Some(at)
            }
        };
        flag.store(true, Ordering::Release);
        let sent = Instant::now();
        let outcome = ctx.template.send(&ctx.client).await;
        now = Instant::now();
        // From the scheduled start as wrk2 measures it: a request the
        // workers were too busy to send on time counts its wait.
        let since_due = due.map(|at| now.saturating_duration_since(at));
        rec.lock()
            .expect("a worker panicked while recording")
            .record(outcome, now - sent, since_due);
        flag.store(false, Ordering::Release);
    }
}
