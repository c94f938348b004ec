//! Latency in constant memory: HDR histograms in microseconds, and the
//! percentiles every report prints from them, in milliseconds.

use hdrhistogram::Histogram;
use serde::Serialize;

/// A latency histogram in microseconds, 3 significant digits, growing to
/// the largest value recorded (so memory follows the latencies seen).
pub fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is a valid precision")
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
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            min: ms(h.min()),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.5)),
            p90: ms(h.value_at_quantile(0.9)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}
