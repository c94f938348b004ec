//! Live progress: an indicatif bar when stderr is a terminal, a plain line a
//! second when it is not (CI logs, pipes), nothing with `--json`. Always on
//! stderr, so stdout carries only the result.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use leakless::HostStats;

use super::series::Series;
use crate::format::si;

/// How far a run goes, for the bar's length.
#[derive(Clone, Copy, Debug)]
pub enum Length {
    Time(Duration),
    Requests(u64),
}

pub enum Progress {
    Bar { bar: ProgressBar, length: Length },
    Lines { next: Duration },
    Quiet,
}

impl Progress {
    pub fn new(json: bool, length: Length) -> Progress {
        if json {
            return Progress::Quiet;
        }
        if !std::io::stderr().is_terminal() {
            return Progress::Lines {
                next: Duration::from_secs(1),
            };
        }
        let len = match length {
            Length::Time(d) => d.as_millis() as u64,
            Length::Requests(n) => n,
        };
        let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(10));
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {msg}")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        Progress::Bar { bar, length }
    }

    pub fn update(&mut self, series: &Series, elapsed: Duration, pool: &HostStats) {
        match self {
            Progress::Quiet => {}
            Progress::Bar { bar, length } => {
                bar.set_position(match length {
                    Length::Time(_) => elapsed.as_millis() as u64,
                    Length::Requests(_) => series.succeeded + series.failed,
                });
                bar.set_message(line(series, pool));
            }
            Progress::Lines { next } => {
                if elapsed >= *next {
                    let _ = writeln!(
                        std::io::stderr(),
                        "{:>6.1}s  {}",
                        elapsed.as_secs_f64(),
                        line(series, pool)
                    );
                    while *next <= elapsed {
                        *next += Duration::from_secs(1);
                    }
                }
            }
        }
    }

    pub fn finish(&mut self) {
        if let Progress::Bar { bar, .. } = self {
            bar.finish_and_clear();
        }
    }
}

fn line(series: &Series, pool: &HostStats) -> String {
    format!(
        "{} req  {}/s  {} err  {} open ({} idle{})",
        series.succeeded + series.failed,
        si(series.current_rps()),
        series.failed,
        pool.open,
        pool.idle,
        if pool.waiting > 0 {
            format!(", {} waiting", pool.waiting)
        } else {
            String::new()
        }
    )
}
