//! `scripts/soak [--for 10m] [--seed N] [--workers N]`: runs the soak,
//! prints its report, and exits 1 on any breach.

use std::time::Duration;

use leakless_soak::Options;

fn main() {
    let mut opts = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--for" => opts.duration = duration(&value()),
            "--seed" => opts.seed = value().parse().unwrap_or_else(|_| usage("--seed N")),
            "--workers" => {
                opts.workers = value().parse().unwrap_or_else(|_| usage("--workers N"));
            }
            "-h" | "--help" => usage(""),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    eprintln!(
        "soak: running for {:?} with seed {} ({} workers)...",
        opts.duration, opts.seed, opts.workers
    );
    let report = leakless_soak::run(&opts);
    print!("{report}");
    if !report.breaches().is_empty() {
        std::process::exit(1);
    }
}

/// `90`, `90s`, `10m`, `1h`.
fn duration(s: &str) -> Duration {
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = n
        .parse()
        .unwrap_or_else(|_| usage(&format!("--for {s}: want e.g. 30s, 10m, 1h")));
    match unit {
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => usage(&format!("--for {s}: the unit is s, m or h")),
    }
}

fn usage(why: &str) -> ! {
    if !why.is_empty() {
        eprintln!("soak: {why}");
    }
    eprintln!("usage: scripts/soak [--for 10m] [--seed N] [--workers N]");
    std::process::exit(2);
}
