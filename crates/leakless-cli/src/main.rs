//! `leakless`: find, measure and tune HTTP connection behaviour of any
//! program. This file only parses, dispatches and turns the result into an
//! exit code; each subcommand lives in its own module (`watch` now; `bench`,
//! `tune` and `serve` join as siblings in [`Command`]).

mod sockets;
mod watch;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "leakless",
    version,
    about = "Find, measure and tune HTTP connection behaviour of any program"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Watch a process's TCP connections over time, with a leak verdict.
    ///
    /// Per remote endpoint and TCP state: counts, a sparkline, opens and
    /// closes per second, oldest socket age, idle time, file descriptors
    /// against the limit, and a verdict (LEAK, STALE_POOL, CHURN, OK) with
    /// the numbers behind it. Linux only (netlink sock_diag and /proc).
    Watch(watch::WatchArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Watch(args) => watch::run(args),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("leakless: {e}");
            std::process::exit(2);
        }
    }
}
