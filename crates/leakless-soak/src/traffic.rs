//! The workers. Each, until time is up, picks a target, an action and a
//! URL at random, sends, and times the request from `send` to its end:
//! its body read (and checked: a body cut short must be an error, never a
//! short read), dropped after its head, or the request cancelled at a
//! random moment.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use tokio::task::JoinSet;

use crate::{
    Options,
    nginx::BIG,
    outcome::{Action, Outcome},
    sockets,
    tally::Tally,
    targets::Target,
};

/// Runs the workers until `opts.duration` is up; returns what they saw,
/// with the process's RSS sampled each second.
pub async fn run(targets: &Arc<Vec<Target>>, opts: &Options) -> Tally {
    let until = Instant::now() + opts.duration;
    let mut set = JoinSet::new();
    for w in 0..opts.workers {
        let seed = opts.seed.wrapping_mul(1_000_003) ^ w as u64;
        set.spawn(worker(targets.clone(), until, seed));
    }
    let sampler = tokio::spawn(async move {
        let mut rss = vec![sockets::rss()];
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_secs(1)).await;
            rss.push(sockets::rss());
        }
        rss
    });
    let mut tally = Tally::default();
    while let Some(done) = set.join_next().await {
        tally.merge(done.expect("a worker panicked"));
    }
    tally.rss = sampler.await.expect("the sampler panicked");
    tally
}

async fn worker(targets: Arc<Vec<Target>>, until: Instant, seed: u64) -> Tally {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut tally = Tally::default();
    while Instant::now() < until {
        let target = &targets[rng.usize(..targets.len())];
        let action = match rng.u32(0..100) {
            0..70 => Action::Read,
            70..80 => Action::Upload,
            80..90 => Action::DropBody,
            _ => Action::Cancel,
        };
        let (path, want) = path(&mut rng, target);
        let url = format!("{}{path}", target.base);
        let start = Instant::now();
        let outcome = match action {
            Action::Read => read(target, &url, want).await,
            Action::Upload => {
                let body = vec![b'x'; rng.usize(0..8192)];
                upload(target, &url, body).await
            }
            Action::DropBody => drop_body(target, &url).await,
            Action::Cancel => {
                let wait = Duration::from_millis(rng.u64(0..100));
                match tokio::time::timeout(wait, read(target, &url, want)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Outcome::Cancelled,
                }
            }
        };
        tally.record(target, action, &outcome, start.elapsed(), &url);
    }
    tally
}

/// A path on `target` and the body length it answers with.
fn path(rng: &mut fastrand::Rng, target: &Target) -> (String, usize) {
    if target.nginx {
        return match rng.bool() {
            true => ("/".to_owned(), 5),
            false => ("/big".to_owned(), BIG),
        };
    }
    let size = [0, 5, 1000, 20_000, 100_000][rng.usize(..5)];
    let latency = if rng.u32(0..5) == 0 {
        rng.u64(1..50)
    } else {
        0
    };
    (format!("/?size={size}&latency_ms={latency}"), size)
}

async fn read(target: &Target, url: &str, want: usize) -> Outcome {
    let body = match target.client.get(url).send().await {
        Ok(resp) => resp.bytes().await,
        Err(e) => Err(e),
    };
    match body {
        Err(e) => Outcome::Failed(e),
        Ok(b) if b.len() != want => Outcome::Wrong(format!("{} bytes, not {want}", b.len())),
        Ok(b) if !b.iter().enumerate().all(|(i, &c)| c == b"hello"[i % 5]) => {
            Outcome::Wrong("not the hello pattern".to_owned())
        }
        Ok(_) => Outcome::Ok,
    }
}

async fn upload(target: &Target, url: &str, body: Vec<u8>) -> Outcome {
    // nginx answers "hello" at `/` whatever was sent (a POST to its static
    // `/big` is 405); the test server echoes.
    let (url, want) = if target.nginx {
        (format!("{}/", target.base), b"hello".to_vec())
    } else {
        (format!("{url}&echo=1"), body.clone())
    };
    let got = match target.client.post(url).body(body).send().await {
        Ok(resp) => resp.bytes().await,
        Err(e) => Err(e),
    };
    match got {
        Err(e) => Outcome::Failed(e),
        Ok(b) if b[..] != want[..] => Outcome::Wrong(format!(
            "{} bytes back, not the {} sent",
            b.len(),
            want.len()
        )),
        Ok(_) => Outcome::Ok,
    }
}

async fn drop_body(target: &Target, url: &str) -> Outcome {
    let mut resp = match target.client.get(url).send().await {
        Ok(resp) => resp,
        Err(e) => return Outcome::Failed(e),
    };
    match resp.chunk().await {
        Ok(_) => Outcome::Dropped,
        Err(e) => Outcome::Failed(e),
    }
}
