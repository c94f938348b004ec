//! Latency in constant memory: HDR histograms in microseconds, the
//! percentiles every report prints from them, in milliseconds, and their
//! standard text form (base64 of HdrHistogram's compressed V2 encoding), in
//! which runs on many machines are written down and added up.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer, V2Serializer};
use serde::{Deserialize, Serialize};

/// A latency histogram in microseconds, 3 significant digits, growing to
/// the largest value recorded (so memory follows the latencies seen).
pub fn histogram() -> Histogram<u64> {
    Histogram::new(3).expect("3 significant digits is a valid precision")
}

/// Records `us`, growing the histogram as needed (`saturating_record`
/// alone would clamp to its current top without a word).
pub fn record(h: &mut Histogram<u64>, us: u64) {
    if h.record(us).is_err() {
        h.saturating_record(us);
    }
}

/// Adds `from` into `into` (no-op when `from` is empty, the common case
/// for a quiet shard).
pub fn add(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    if !from.is_empty() {
        into.add(from).expect("auto-resizing histograms always add");
    }
}

/// `h` as HdrHistogram tools read it: the compressed V2 encoding in base64
/// (it starts `HISTFAAA`), as wrk2 and HdrHistogram's log processors
/// write it.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .expect("a histogram always encodes into memory");
    STANDARD.encode(bytes)
}

/// `h` in HdrHistogram's plain V2 encoding, base64: about twenty times
/// cheaper to write than [`encode`] (no deflate: some 18 µs against 350
/// µs for a second's histogram) and still compact (runs of zeros are
/// counted, counts are varints), for what is kept every second while the
/// load runs. Written out with [`compressed`]: not every HdrHistogram
/// decoder reads the plain form (HdrHistogram_py and log readers do not).
pub fn encode_plain(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut bytes)
        .expect("a histogram always encodes into memory");
    STANDARD.encode(bytes)
}

/// The histogram [`encode`] or [`encode_plain`] wrote (or any HdrHistogram tool in the V2
/// format, compressed or not), made auto-resizing so more can be added.
pub fn decode(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = STANDARD
        .decode(text.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    let read: Histogram<u64> = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("not an HdrHistogram V2 encoding: {e:?}"))?;
    let mut h = histogram();
    add(&mut h, &read);
    Ok(h)
}

/// Serde's `serialize_with` for a histogram kept in either V2 form: writes
/// it compressed ([`encode`]), the form every HdrHistogram tool reads.
pub fn compressed<S: serde::Serializer>(text: &str, s: S) -> Result<S::Ok, S::Error> {
    let h = decode(text).map_err(serde::ser::Error::custom)?;
    s.serialize_str(&encode(&h))
}

/// [`compressed`] for a histogram that may be absent.
pub fn compressed_opt<S: serde::Serializer>(
    text: &Option<String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match text {
        Some(t) => compressed(t, s),
        None => s.serialize_none(),
    }
}

/// Microseconds, as the histograms hold them, in milliseconds, as every
/// report shows them.
pub fn millis(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Latency of the successful requests, milliseconds, from an HDR histogram
/// with 3 significant digits.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_as_hdrhistogram_tools_do_and_back() {
        let mut h = histogram();
        for us in [3, 150, 150, 2_000, 1_000_000] {
            record(&mut h, us);
        }
        let text = encode(&h);
        // The compressed V2 cookie, in base64, as HdrHistogram's log files show it.
        assert!(text.starts_with("HISTFAAA"), "{text}");
        let back = decode(&text).unwrap();
        assert_eq!(back, h);
        assert_eq!(Latency::of(&back), Latency::of(&h));
        // Decoded histograms keep growing: a later, larger value still adds.
        let mut grown = back;
        record(&mut grown, 60_000_000);
        assert_eq!(grown.max(), grown.highest_equivalent(60_000_000));
        let plain = encode_plain(&h);
        assert!(plain.starts_with("HISTEwAA"), "{plain}");
        assert_eq!(decode(&plain).unwrap(), h);
        assert!(decode("HISTFAAA!").is_err());
        assert!(decode("aGVsbG8=").is_err());
    }
}
