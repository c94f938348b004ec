//! `leakless`: find, measure and tune HTTP connection behaviour of any
//! program. This file only parses, dispatches and turns the result into an
//! exit code; each subcommand lives in its own module (`bench`, `serve`,
//! `tune` and `watch`), a sibling in [`Command`].
//!
//! Below the commands: [`load`], the load engine `bench` and `tune` share;
//! [`sockets`], the kernel's socket table `watch` and `bench` read;
//! [`format`](mod@format) and [`duration`], how every command prints numbers and
//! parses and prints durations. Commands use these, never each other.

mod bench;
mod duration;
mod format;
mod load;
mod serve;
mod sockets;
mod tune;
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
    /// Load a URL, or the embedded server, with connection accounting.
    ///
    /// Throughput and latency percentiles (HDR), status codes, errors by
    /// kind, and what wrk and oha do not say: connections opened, reused
    /// and closed by reason, peak open, and the sockets left in each TCP
    /// state at the end. No URL: starts the test server on loopback and
    /// benches it. Exit status 1 when every request failed or the target
    /// is unreachable.
    Bench(bench::BenchArgs),
    /// Run the test server: latency, body size, keep-alive, TLS, HTTP/2, faults.
    ///
    /// Prints the address (use --addr 127.0.0.1:0 for a free port) and the
    /// query language that shapes each reply (?size=16384&latency_ms=5...).
    Serve(serve::ServeArgs),
    /// Measure a server and print the pool sizes and timeouts to use.
    ///
    /// Sweeps concurrency (1, 2, 4, ...) to find the knee where throughput
    /// stops growing and latency starts to, probes how long the server keeps
    /// an idle connection, and prints recommended settings with the
    /// evidence, as code for leakless, Go's http.Transport and reqwest.
    Tune(tune::TuneArgs),
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
        Command::Bench(args) => bench::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Tune(args) => tune::run(args),
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Clap's own checks over every command: no two flags of a command
    /// share a name or a short, which flattening shared flags could cause.
    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn bench_and_tune_take_the_same_request_flags() {
        for cmd in ["bench", "tune"] {
            let args: &[&str] = if cmd == "tune" {
                &["tune", "http://127.0.0.1:1/"]
            } else {
                &["bench"]
            };
            let cli = Cli::try_parse_from(
                ["leakless"]
                    .iter()
                    .chain(args)
                    .chain(&["-m", "post", "-H", "a: b", "--h2c", "-k", "-t", "3"]),
            )
            .unwrap_or_else(|e| panic!("{cmd}: {e}"));
            let request = match cli.command {
                Command::Bench(a) => a.request,
                Command::Tune(a) => a.request,
                _ => unreachable!(),
            };
            assert_eq!(request.method, "post");
            assert_eq!(request.headers, ["a: b"]);
            assert!(request.h2c && request.insecure);
            assert_eq!(request.threads(), 3);
            assert_eq!(request.protocol(), "h2c");
        }
        let both = Cli::try_parse_from(["leakless", "bench", "--http1", "--h2c"]);
        assert!(both.is_err(), "one protocol flag at a time");
    }
}
