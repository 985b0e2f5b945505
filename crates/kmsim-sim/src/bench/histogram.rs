//! A run's latency histogram as `kmsim bench --json` reports it: the HdrHistogram itself in its
//! standard interchange form (V2 compressed, base64: what HdrHistogram's Java, C, Go and Rust
//! implementations and its log files read), so results of several runs can be merged or
//! re-read later, and a percentile table for people and scripts that only want those.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde::Serialize;

/// Percentiles of a latency histogram, in microseconds (0 for an empty histogram).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    #[serde(rename = "p99.9")]
    pub p99_9: u64,
    /// 99.99th percentile.
    #[serde(rename = "p99.99")]
    pub p99_99: u64,
    /// The slowest call.
    pub max: u64,
}

impl Percentiles {
    /// The percentiles of `h` (values in microseconds).
    pub fn of(h: &Histogram<u64>) -> Percentiles {
        if h.is_empty() {
            return Percentiles {
                p50: 0,
                p90: 0,
                p99: 0,
                p99_9: 0,
                p99_99: 0,
                max: 0,
            };
        }
        Percentiles {
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            p99_99: h.value_at_quantile(0.9999),
            max: h.max(),
        }
    }
}

/// A latency histogram in a benchmark result.
#[derive(Debug, Clone, Serialize)]
pub struct HistogramReport {
    /// The unit of every value: always `us` (microseconds).
    pub unit: &'static str,
    /// Calls recorded.
    pub count: u64,
    /// The percentile table.
    pub percentiles_us: Percentiles,
    /// The histogram, HdrHistogram V2 compressed (deflate) encoding, base64 (standard alphabet,
    /// padded); [`decode`] reads it back.
    pub hdr_v2_compressed_base64: String,
}

impl HistogramReport {
    /// The report of `h` (values in microseconds).
    pub fn of(h: &Histogram<u64>) -> HistogramReport {
        let mut bytes = Vec::new();
        // Writing into a Vec cannot fail and the histogram's own bounds are valid; an encoder
        // error would still leave the percentiles, so report it in place of the encoding.
        let encoded = match V2DeflateSerializer::new().serialize(h, &mut bytes) {
            Ok(_) => B64.encode(&bytes),
            Err(e) => format!("error: {e:?}"),
        };
        HistogramReport {
            unit: "us",
            count: h.len(),
            percentiles_us: Percentiles::of(h),
            hdr_v2_compressed_base64: encoded,
        }
    }
}

/// Reads a histogram written by [`HistogramReport::of`] (any V2 or V2 compressed HdrHistogram,
/// base64).
pub fn decode(base64: &str) -> Result<Histogram<u64>, String> {
    let bytes = B64
        .decode(base64.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("not an HdrHistogram: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::new_histogram;

    #[test]
    fn a_report_decodes_to_the_same_histogram_and_lists_its_percentiles() {
        let mut h = new_histogram();
        // 9,000 calls of 100 µs, 980 of 2 ms, 19 of 40 ms and one of 3 s.
        h.saturating_record_n(100, 9_000);
        h.saturating_record_n(2_000, 980);
        h.saturating_record_n(40_000, 19);
        h.saturating_record(3_000_000);
        let r = HistogramReport::of(&h);
        assert_eq!(r.count, 10_000);
        assert_eq!(r.unit, "us");
        let p = &r.percentiles_us;
        let close = |x: u64, want: u64| x.abs_diff(want) <= want / 500;
        assert!(close(p.p50, 100), "{p:?}");
        assert!(close(p.p90, 100), "{p:?}");
        assert!(close(p.p99, 2_000), "{p:?}");
        assert!(close(p.p99_9, 40_000), "{p:?}");
        assert!(close(p.p99_99, 40_000), "{p:?}");
        assert!(close(p.max, 3_000_000), "{p:?}");
        let back = decode(&r.hdr_v2_compressed_base64).expect("decodes");
        assert_eq!(back, h);
        let json = serde_json::to_value(&r).expect("serializes");
        assert_eq!(json["percentiles_us"]["p99.9"], p.p99_9);
        assert_eq!(json["percentiles_us"]["p99.99"], p.p99_99);

        let empty = HistogramReport::of(&new_histogram());
        assert_eq!(empty.count, 0);
        assert_eq!(empty.percentiles_us.max, 0);
        assert_eq!(
            decode(&empty.hdr_v2_compressed_base64)
                .expect("decodes")
                .len(),
            0
        );
        assert!(decode("not base64!").is_err());
        assert!(decode(&B64.encode(b"not a histogram")).is_err());
    }
}
