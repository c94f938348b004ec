//! `--report FILE.html`: one self-contained page (inline CSS and SVG, no
//! script, no fetch) with the text report, throughput, latency percentiles,
//! the pool's connections and churn over time, and the latency histogram;
//! under a rate, the percentiles and histogram from the scheduled start
//! too. Drawn from the summary and its points, so a merged result (points
//! per second) draws the same page as one run (points per quarter second).

use std::fmt::Write;

use hdrhistogram::Histogram;

use super::chart::{self, Bin, Line};
use super::report;
use super::summary::Summary;
use crate::load::latency::decode;
use crate::load::{Point, millis};

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:800px}\
h1{font-size:20px;margin:0 0 12px}pre{background:#f6f6f6;padding:12px;white-space:pre-wrap;font-size:12px}\
svg{display:block;margin:8px 0 20px;background:#fff}\
.title{font-weight:600;font-size:13px}.tick{font-size:11px;fill:#555}.unit{font-size:11px;fill:#555}\
.legend{font-size:11px}.grid{stroke:#e4e4e4}";

pub fn page(s: &Summary, p: &[Point]) -> Result<String, String> {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>leakless bench {}</title><style>{STYLE}</style></head><body>",
        escape(&s.url)
    );
    let _ = write!(o, "<h1>leakless bench {}</h1>", escape(&s.url));
    let _ = write!(o, "<pre>{}</pre>", escape(&report::text(s)));
    let xs: Vec<f64> = p.iter().map(|p| p.t).collect();
    let per_s = |n: u64, dt: f64| if dt > 0.0 { n as f64 / dt } else { 0.0 };
    o.push_str(&chart::lines(
        "Throughput",
        "per second",
        &xs,
        &[
            Line {
                label: "responses/s",
                color: "#4e79a7",
                ys: p.iter().map(|p| p.rps()).collect(),
            },
            Line {
                label: "errors/s",
                color: "#e15759",
                ys: p.iter().map(|p| per_s(p.failed, p.dt)).collect(),
            },
        ],
    ));
    let scheduled = s.latency_from_schedule_ms.is_some();
    let percentiles = |title: &str, q: fn(&Point) -> [u64; 3]| {
        let lines: Vec<Line<'_>> = ["p50", "p90", "p99"]
            .into_iter()
            .zip(["#59a14f", "#f28e2b", "#e15759"])
            .enumerate()
            .map(|(i, (label, color))| Line {
                label,
                color,
                ys: p.iter().map(|p| millis(q(p)[i])).collect(),
            })
            .collect();
        chart::lines(title, "ms", &xs, &lines)
    };
    o.push_str(&percentiles(
        if scheduled {
            "Latency percentiles, from the send"
        } else {
            "Latency percentiles"
        },
        |p| [p.p50_us, p.p90_us, p.p99_us],
    ));
    if scheduled {
        o.push_str(&percentiles(
            "Latency percentiles, from the scheduled start",
            |p| {
                [
                    p.from_schedule_p50_us,
                    p.from_schedule_p90_us,
                    p.from_schedule_p99_us,
                ]
            },
        ));
    }
    o.push_str(&chart::lines(
        "Open connections (dialing + busy + idle)",
        "connections",
        &xs,
        &[
            Line {
                label: "open",
                color: "#4e79a7",
                ys: p.iter().map(|p| p.open as f64).collect(),
            },
            Line {
                label: "busy",
                color: "#f28e2b",
                ys: p.iter().map(|p| p.busy as f64).collect(),
            },
            Line {
                label: "idle",
                color: "#59a14f",
                ys: p.iter().map(|p| p.idle as f64).collect(),
            },
            Line {
                label: "waiting",
                color: "#e15759",
                ys: p.iter().map(|p| p.waiting as f64).collect(),
            },
        ],
    ));
    o.push_str(&chart::lines(
        "Connection churn",
        "per second",
        &xs,
        &[
            Line {
                label: "opened/s",
                color: "#b07aa1",
                ys: p.iter().map(|p| per_s(p.opened, p.dt)).collect(),
            },
            Line {
                label: "closed/s",
                color: "#9c755f",
                ys: p.iter().map(|p| per_s(p.closed, p.dt)).collect(),
            },
        ],
    ));
    let h = &s.histograms;
    let sent = decode(&h.latency_us).map_err(|e| format!("histograms.latency_us: {e}"))?;
    match &h.latency_from_schedule_us {
        None => o.push_str(&chart::histogram(
            "Latency histogram",
            "ms",
            &bins(&sent, 40),
        )),
        Some(text) => {
            let due =
                decode(text).map_err(|e| format!("histograms.latency_from_schedule_us: {e}"))?;
            o.push_str(&chart::histogram(
                "Latency histogram, from the send",
                "ms",
                &bins(&sent, 40),
            ));
            o.push_str(&chart::histogram(
                "Latency histogram, from the scheduled start",
                "ms",
                &bins(&due, 40),
            ));
        }
    }
    o.push_str("</body></html>\n");
    Ok(o)
}

/// `n` log-spaced bins (milliseconds) from the fastest to the slowest
/// success.
fn bins(h: &Histogram<u64>, n: usize) -> Vec<Bin> {
    if h.is_empty() {
        return Vec::new();
    }
    let lo = millis(h.min().max(1));
    let hi = millis(h.max().max(1));
    let (lo, hi) = if hi / lo < 1.2 {
        (lo / 1.1, hi * 1.1)
    } else {
        (lo, hi * 1.0001)
    };
    let step = (hi / lo).ln() / n as f64;
    let mut out: Vec<Bin> = (0..n)
        .map(|i| Bin {
            lo: lo * (step * i as f64).exp(),
            hi: lo * (step * (i + 1) as f64).exp(),
            count: 0,
        })
        .collect();
    for v in h.iter_recorded() {
        let x = millis(v.value_iterated_to().max(1));
        let i = (((x / lo).ln() / step).floor().max(0.0) as usize).min(n - 1);
        out[i].count += v.count_at_value();
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_hold_every_count() {
        let mut h = Histogram::<u64>::new(3).unwrap();
        for us in [20, 25, 30, 400, 9000] {
            h.record(us).unwrap();
        }
        let b = bins(&h, 10);
        assert_eq!(b.iter().map(|b| b.count).sum::<u64>(), 5);
        assert!(b[0].count >= 1 && b[9].count >= 1);
        assert_eq!(escape("<a&b>"), "&lt;a&amp;b&gt;");
    }
}
