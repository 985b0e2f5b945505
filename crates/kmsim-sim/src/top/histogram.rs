//! What happened between two scrapes: the increase of counters and of histogram buckets (with
//! Prometheus' rule for a counter that went back to zero: the process restarted, so all of its
//! present value is new), and a quantile estimated from bucket increases the way PromQL's
//! `histogram_quantile` does.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};

use crate::scrape::{Sample, Scrape};

/// A bucket's upper bound, ordered with [`f64::total_cmp`] (so it can key a map; `+Inf` last).
#[derive(Clone, Copy, Debug)]
struct Le(f64);

impl PartialEq for Le {
    fn eq(&self, other: &Le) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Le {}
impl PartialOrd for Le {
    fn partial_cmp(&self, other: &Le) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Le {
    fn cmp(&self, other: &Le) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Cumulative histogram buckets: for each upper bound `le`, the observations at or below it.
/// Buckets of several series (nodes, operations) add up bound by bound: kmsim's series of one
/// family share their bounds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Buckets {
    /// Observations at or below each bound.
    counts: BTreeMap<Le, f64>,
}

impl Buckets {
    /// Buckets from `(le, cumulative count)` pairs (in any order; one bound given twice adds).
    pub fn from_pairs(pairs: impl IntoIterator<Item = (f64, f64)>) -> Buckets {
        let mut b = Buckets::default();
        for (le, count) in pairs {
            b.add(le, count);
        }
        b
    }

    /// Adds `count` observations at or below `le`.
    fn add(&mut self, le: f64, count: f64) {
        *self.counts.entry(Le(le)).or_insert(0.0) += count;
    }

    /// Adds every bucket of `other`.
    pub fn merge(&mut self, other: &Buckets) {
        for (le, count) in &other.counts {
            self.add(le.0, *count);
        }
    }

    /// The observations in total (the `+Inf` bucket's count; 0 without one).
    pub fn total(&self) -> f64 {
        self.counts.get(&Le(f64::INFINITY)).copied().unwrap_or(0.0)
    }

    /// True when no bucket holds an observation.
    pub fn is_empty(&self) -> bool {
        self.total() <= 0.0
    }
}

/// A quantile estimated from buckets.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Quantile {
    /// Interpolated inside a bucket with a finite bound.
    Within(f64),
    /// Beyond the highest finite bound (the quantile's rank falls in the `+Inf` bucket): only
    /// known to be more than this many (0 when there is no finite bound).
    Above(f64),
}

/// The `q`-quantile (0 < q ≤ 1) of the observations in `buckets`, estimated like PromQL's
/// `histogram_quantile`: find the first bucket whose cumulative count reaches `q` × total and
/// interpolate linearly between its lower bound (the previous bound, or 0 for the first) and its
/// upper bound. `None` when there are no observations (or no `+Inf` bucket to count them);
/// [`Quantile::Above`] when the rank lies in the `+Inf` bucket, where PromQL would answer the
/// highest finite bound as if it were a value.
pub fn quantile(q: f64, buckets: &Buckets) -> Option<Quantile> {
    let total = buckets.total();
    let q_in_range = q > 0.0 && q <= 1.0;
    if total.is_nan() || total <= 0.0 || !q_in_range {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for (le, &count) in &buckets.counts {
        let upper = le.0;
        if count >= rank {
            if upper == f64::INFINITY {
                return Some(Quantile::Above(lower));
            }
            if upper <= 0.0 || count <= below {
                return Some(Quantile::Within(upper));
            }
            return Some(Quantile::Within(
                lower + (upper - lower) * (rank - below) / (count - below),
            ));
        }
        (lower, below) = (upper, count);
    }
    // Not reached: the +Inf bucket holds `total`, which is ≥ rank.
    None
}

/// The increase of one series from `before` (`None`: it did not exist then, so all of it is
/// new) to `now`. A value below the earlier one means the process restarted and counts again
/// from zero, so `now` is the increase (Prometheus' `increase()` rule).
fn increase(before: Option<f64>, now: f64) -> f64 {
    match before {
        Some(b) if now >= b => now - b,
        _ => now,
    }
}

/// The sum over the series named `name` of `now` for which `keep` holds of their increase since
/// `before` (the same process's earlier scrape).
pub fn counter_increase(
    before: &Scrape,
    now: &Scrape,
    name: &str,
    keep: impl Fn(&Sample) -> bool,
) -> f64 {
    let earlier: HashMap<&BTreeMap<String, String>, f64> = before
        .samples
        .iter()
        .filter(|s| s.name == name)
        .map(|s| (&s.labels, s.value))
        .collect();
    now.samples
        .iter()
        .filter(|s| s.name == name && keep(s))
        .map(|s| increase(earlier.get(&s.labels).copied(), s.value))
        // Not `sum()`: the sum of nothing is -0.0 for floats, shown as "-0.0".
        .fold(0.0, |total, v| total + v)
}

/// The buckets of histogram `family` of one scrape, per series (its labels without `le`), for
/// the series for which `keep` holds.
fn series_buckets(
    scrape: &Scrape,
    family: &str,
    keep: &dyn Fn(&Sample) -> bool,
) -> BTreeMap<BTreeMap<String, String>, Buckets> {
    let name = format!("{family}_bucket");
    let mut out: BTreeMap<BTreeMap<String, String>, Buckets> = BTreeMap::new();
    for s in scrape.samples.iter().filter(|s| s.name == name && keep(s)) {
        let mut labels = s.labels.clone();
        let Some(le) = labels.remove("le") else {
            continue;
        };
        let le = match le.as_str() {
            "+Inf" => f64::INFINITY,
            other => match other.parse() {
                Ok(v) => v,
                Err(_) => continue,
            },
        };
        out.entry(labels).or_default().add(le, s.value);
    }
    out
}

/// The bucket increases of histogram `family` from `before` to `now` (two scrapes of one
/// process), added over its series for which `keep` holds. A series whose count went down
/// restarted: all of its buckets now are new.
pub fn histogram_increase(
    before: &Scrape,
    now: &Scrape,
    family: &str,
    keep: impl Fn(&Sample) -> bool,
) -> Buckets {
    let earlier = series_buckets(before, family, &keep);
    let mut sum = Buckets::default();
    for (labels, current) in series_buckets(now, family, &keep) {
        let previous = earlier.get(&labels);
        let restarted = previous.is_some_and(|p| current.total() < p.total());
        for (le, &count) in &current.counts {
            let was = match (restarted, previous) {
                (false, Some(p)) => p.counts.get(le).copied(),
                _ => None,
            };
            sum.add(le.0, increase(was, count));
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;

    #[test]
    fn the_quantile_interpolates_inside_its_bucket() {
        // 100 observations: 50 in (1, 2], 50 in (2, 4]. p99 has rank 99: in (2, 4], 49 of its
        // 50 observations in, so 2 + 2 × 49/50.
        let b = Buckets::from_pairs([(1.0, 0.0), (2.0, 50.0), (4.0, 100.0), (INF, 100.0)]);
        let Some(Quantile::Within(p99)) = quantile(0.99, &b) else {
            panic!("p99 inside a bucket");
        };
        assert!((p99 - 3.96).abs() < 1e-9, "{p99}");
        // The median's rank, 50, is exactly the count of the (1, 2] bucket: its upper bound.
        assert_eq!(quantile(0.5, &b), Some(Quantile::Within(2.0)));
        // The first bucket's lower bound is 0.
        let first = Buckets::from_pairs([(0.004, 10.0), (0.008, 10.0), (INF, 10.0)]);
        assert_eq!(quantile(0.5, &first), Some(Quantile::Within(0.002)));
        assert_eq!(quantile(1.0, &first), Some(Quantile::Within(0.004)));
    }

    #[test]
    fn no_observations_have_no_quantile() {
        assert_eq!(quantile(0.99, &Buckets::default()), None);
        let zeros = Buckets::from_pairs([(1.0, 0.0), (2.0, 0.0), (INF, 0.0)]);
        assert!(zeros.is_empty());
        assert_eq!(quantile(0.99, &zeros), None);
        // Nor do buckets without +Inf (they cannot say how many there are), nor q outside (0, 1].
        assert_eq!(quantile(0.99, &Buckets::from_pairs([(1.0, 5.0)])), None);
        let b = Buckets::from_pairs([(1.0, 5.0), (INF, 5.0)]);
        assert_eq!(quantile(0.0, &b), None);
        assert_eq!(quantile(1.5, &b), None);
    }

    #[test]
    fn a_quantile_in_the_inf_bucket_is_only_a_lower_bound() {
        let all_slow = Buckets::from_pairs([(1.0, 0.0), (16.0, 0.0), (INF, 7.0)]);
        assert_eq!(quantile(0.99, &all_slow), Some(Quantile::Above(16.0)));
        // One slow call in a hundred: p99 is still inside, p99.9 is not.
        let one_slow = Buckets::from_pairs([(1.0, 99.0), (16.0, 99.0), (INF, 100.0)]);
        assert_eq!(quantile(0.99, &one_slow), Some(Quantile::Within(1.0)));
        assert_eq!(quantile(0.999, &one_slow), Some(Quantile::Above(16.0)));
        // Only a +Inf bucket: above 0 is all there is to say.
        let only_inf = Buckets::from_pairs([(INF, 3.0)]);
        assert_eq!(quantile(0.5, &only_inf), Some(Quantile::Above(0.0)));
    }

    const BEFORE: &str = r#"# TYPE c_total counter
c_total{node="1",code="ok"} 10
c_total{node="1",code="NotFoundException"} 4
# TYPE d_seconds histogram
d_seconds_bucket{op="a",le="1"} 5
d_seconds_bucket{op="a",le="2"} 8
d_seconds_bucket{op="a",le="+Inf"} 8
d_seconds_sum{op="a"} 9
d_seconds_count{op="a"} 8
d_seconds_bucket{op="b",le="1"} 10
d_seconds_bucket{op="b",le="2"} 10
d_seconds_bucket{op="b",le="+Inf"} 10
d_seconds_sum{op="b"} 9
d_seconds_count{op="b"} 10
"#;

    const NOW: &str = r#"# TYPE c_total counter
c_total{node="1",code="ok"} 25
c_total{node="1",code="NotFoundException"} 1
c_total{node="1",code="AccessDeniedException"} 2
# TYPE d_seconds histogram
d_seconds_bucket{op="a",le="1"} 6
d_seconds_bucket{op="a",le="2"} 10
d_seconds_bucket{op="a",le="+Inf"} 11
d_seconds_sum{op="a"} 19
d_seconds_count{op="a"} 11
d_seconds_bucket{op="b",le="1"} 1
d_seconds_bucket{op="b",le="2"} 2
d_seconds_bucket{op="b",le="+Inf"} 2
d_seconds_sum{op="b"} 2
d_seconds_count{op="b"} 2
d_seconds_bucket{op="c",le="1"} 0
d_seconds_bucket{op="c",le="2"} 1
d_seconds_bucket{op="c",le="+Inf"} 1
d_seconds_sum{op="c"} 1.5
d_seconds_count{op="c"} 1
"#;

    #[test]
    fn counters_increase_with_resets_and_new_series() {
        let (before, now) = (Scrape::parse(BEFORE).unwrap(), Scrape::parse(NOW).unwrap());
        // ok: 25 − 10; NotFound went back to 1 (a restart): 1; AccessDenied is new: 2.
        assert_eq!(counter_increase(&before, &now, "c_total", |_| true), 18.0);
        let errors = counter_increase(&before, &now, "c_total", |s| s.label("code") != "ok");
        assert_eq!(errors, 3.0);
        let nothing = counter_increase(&before, &now, "missing", |_| true);
        assert!(nothing == 0.0 && nothing.is_sign_positive(), "{nothing}");
    }

    #[test]
    fn histogram_buckets_increase_per_series_and_add_up() {
        let (before, now) = (Scrape::parse(BEFORE).unwrap(), Scrape::parse(NOW).unwrap());
        // a: +1, +2, +3; b restarted (count 10 → 2): 1, 2, 2; c is new: 0, 1, 1.
        let all = histogram_increase(&before, &now, "d_seconds", |_| true);
        assert_eq!(
            all,
            Buckets::from_pairs([(1.0, 2.0), (2.0, 5.0), (INF, 6.0)])
        );
        let only_a = histogram_increase(&before, &now, "d_seconds", |s| s.label("op") == "a");
        assert_eq!(
            only_a,
            Buckets::from_pairs([(1.0, 1.0), (2.0, 2.0), (INF, 3.0)])
        );
        let mut merged = only_a.clone();
        merged.merge(&only_a);
        assert_eq!(merged.total(), 6.0);
        // Nothing new between a scrape and itself.
        assert!(histogram_increase(&now, &now, "d_seconds", |_| true).is_empty());
    }
}
