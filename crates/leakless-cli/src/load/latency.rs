//! Latency in constant memory: HDR histograms in microseconds, and the
//! percentiles every report prints from them, in milliseconds.

use hdrhistogram::Histogram;
use serde::Serialize;

/// A latency histogram in microseconds, 3 significant digits, growing to
/// the largest value recorded (so memory follows the latencies seen).
pub fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is a valid precision")
}

/// Microseconds, as the histograms hold them, in milliseconds, as every
/// report shows them.
pub fn millis(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Latency of the successful requests, milliseconds, from an HDR histogram
/// with 3 significant digits.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latency {
    /// The percentiles of `h` (microseconds); zeros when it is empty.
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            min: millis(h.min()),
            mean: h.mean() / 1000.0,
            p50: millis(h.value_at_quantile(0.5)),
            p90: millis(h.value_at_quantile(0.9)),
            p99: millis(h.value_at_quantile(0.99)),
            p999: millis(h.value_at_quantile(0.999)),
            max: millis(h.max()),
        }
    }
}
