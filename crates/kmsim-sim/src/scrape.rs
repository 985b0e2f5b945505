//! Reading a node's or the gateway's `GET /metrics`: a strict parser of the Prometheus text
//! format 0.0.4 (what docs/OBSERVABILITY.md says kmsim serves) and the lookups tests and tools
//! need. Strict: a line that is not a comment, a `# HELP`/`# TYPE` line or a well-formed sample
//! is an error; so is a sample of a family with no `# TYPE` before it, a series given twice, a
//! second `# TYPE` of a family, and a histogram whose buckets are not cumulative or whose
//! `+Inf` bucket is not its count.

use std::collections::{BTreeMap, HashMap, HashSet};

use http::StatusCode;

use crate::aws_client::{AwsJsonClient, ClientError};

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// The endpoint could not be asked.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The endpoint answered something else than the metrics.
    #[error("GET /metrics answered {0}")]
    Answer(String),
    /// The text is not in the format.
    #[error("line {line}: {why}")]
    Format {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        why: String,
    },
}

/// One sample: a series (name and labels) and its value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The sample's name (`kmsim_api_requests_total`, `..._bucket`).
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its value.
    pub value: f64,
}

impl Sample {
    /// The value of label `name` ("" when it has none, as Prometheus reads it).
    pub fn label(&self, name: &str) -> &str {
        self.labels
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// True when every `(name, value)` of `with` is among its labels.
    pub fn has(&self, with: &[(&str, &str)]) -> bool {
        with.iter().all(|(k, v)| self.label(k) == *v)
    }
}

/// A parsed scrape.
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    /// The type of each family (`counter`, `gauge`, `histogram`, `summary`, `untyped`).
    pub types: BTreeMap<String, String>,
    /// Every sample, in the order given.
    pub samples: Vec<Sample>,
}

/// The content type kmsim serves `/metrics` with (the format's, version 0.0.4).
pub const CONTENT_TYPE_PREFIX: &str = "text/plain; version=0.0.4";

/// Asks `client`'s endpoint for `GET /metrics` and parses the answer, which must be a 200 in
/// the text format 0.0.4.
pub async fn scrape(client: &AwsJsonClient) -> Result<Scrape, ScrapeError> {
    let answer = client.send(client.get("/metrics")?).await?;
    if answer.status != StatusCode::OK {
        return Err(ScrapeError::Answer(format!("HTTP {}", answer.status)));
    }
    let content_type = answer
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.starts_with(CONTENT_TYPE_PREFIX) {
        return Err(ScrapeError::Answer(format!(
            "content type '{content_type}'"
        )));
    }
    let text = std::str::from_utf8(&answer.body)
        .map_err(|_| ScrapeError::Answer("a body that is not UTF-8".into()))?;
    Scrape::parse(text)
}

impl Scrape {
    /// Parses `text` (see the module's docs for what is refused).
    pub fn parse(text: &str) -> Result<Scrape, ScrapeError> {
        let mut scrape = Scrape::default();
        let mut seen = HashSet::new();
        for (n, line) in text.lines().enumerate() {
            let bad = |why: String| ScrapeError::Format { line: n + 1, why };
            if line.trim().is_empty() {
                continue;
            }
            if let Some(comment) = line.strip_prefix('#') {
                let words: Vec<&str> = comment.trim_start().splitn(3, ' ').collect();
                match words.as_slice() {
                    ["TYPE", name, kind] => {
                        check_name(name).map_err(bad)?;
                        if !["counter", "gauge", "histogram", "summary", "untyped"].contains(kind) {
                            return Err(bad(format!("unknown type '{kind}'")));
                        }
                        if scrape
                            .types
                            .insert(name.to_string(), kind.to_string())
                            .is_some()
                        {
                            return Err(bad(format!("a second TYPE line for {name}")));
                        }
                    }
                    ["HELP", name, ..] => check_name(name).map_err(bad)?,
                    ["TYPE", ..] | ["HELP"] => return Err(bad("incomplete metadata".into())),
                    _ => {} // a plain comment
                }
                continue;
            }
            let sample = parse_sample(line).map_err(bad)?;
            if scrape.family_of(&sample.name).is_none() {
                return Err(bad(format!("{} has no TYPE line before it", sample.name)));
            }
            if !seen.insert((sample.name.clone(), sample.labels.clone())) {
                return Err(bad(format!("{} given twice", sample.name)));
            }
            scrape.samples.push(sample);
        }
        scrape.check_histograms()?;
        Ok(scrape)
    }

    /// The family a sample name belongs to: itself, or a histogram's (`_bucket`, `_sum`,
    /// `_count`) or summary's (`_sum`, `_count`).
    pub fn family_of(&self, sample: &str) -> Option<&str> {
        if let Some((name, _)) = self.types.get_key_value(sample) {
            return Some(name);
        }
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(base) = sample.strip_suffix(suffix) {
                match self.types.get_key_value(base) {
                    Some((name, kind))
                        if kind == "histogram" || (kind == "summary" && suffix != "_bucket") =>
                    {
                        return Some(name)
                    }
                    _ => {}
                }
            }
        }
        None
    }

    /// The samples named `name` that carry every label of `with`.
    pub fn select<'a>(
        &'a self,
        name: &'a str,
        with: &'a [(&'a str, &'a str)],
    ) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples
            .iter()
            .filter(move |s| s.name == name && s.has(with))
    }

    /// The sum of the samples [`select`](Self::select) finds (0 when none).
    pub fn sum(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        self.select(name, with).map(|s| s.value).sum()
    }

    /// The value of the one sample [`select`](Self::select) finds; `None` when there is none
    /// or more than one.
    pub fn value(&self, name: &str, with: &[(&str, &str)]) -> Option<f64> {
        let mut found = self.select(name, with);
        let first = found.next()?;
        found.next().is_none().then_some(first.value)
    }

    /// Every histogram's buckets are cumulative (non-decreasing with `le`), end with `+Inf`,
    /// and the `+Inf` bucket equals the series' `_count`.
    fn check_histograms(&self) -> Result<(), ScrapeError> {
        let bad = |why: String| ScrapeError::Format { line: 0, why };
        // Per histogram series (family, labels without `le`): its (le, count) in order.
        let mut buckets: HashMap<Series, Vec<(f64, f64)>> = HashMap::new();
        for s in &self.samples {
            let Some(base) = s.name.strip_suffix("_bucket") else {
                continue;
            };
            if self.types.get(base).map(String::as_str) != Some("histogram") {
                continue;
            }
            let mut labels = s.labels.clone();
            let le = labels
                .remove("le")
                .ok_or_else(|| bad(format!("{} without le", s.name)))?;
            let le = parse_value(&le).map_err(bad)?;
            buckets
                .entry((base.to_string(), labels))
                .or_default()
                .push((le, s.value));
        }
        for ((base, labels), series) in buckets {
            let ordered = series
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1);
            if !ordered {
                return Err(bad(format!("{base}{labels:?}: buckets are not cumulative")));
            }
            let last = series.last().copied().unwrap_or((0.0, 0.0));
            let count_name = format!("{base}_count");
            let count = self
                .samples
                .iter()
                .find(|s| s.name == count_name && s.labels == labels)
                .map(|s| s.value);
            if last.0 != f64::INFINITY || count != Some(last.1) {
                return Err(bad(format!(
                    "{base}{labels:?}: the +Inf bucket is not the count ({count:?})"
                )));
            }
        }
        Ok(())
    }
}

/// A histogram series: its family and its labels without `le`.
type Series = (String, BTreeMap<String, String>);

/// A metric name: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
        Ok(())
    } else {
        Err(format!("invalid metric name '{name}'"))
    }
}

/// A label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A sample value: a float, `+Inf`, `-Inf` or `NaN`.
fn parse_value(v: &str) -> Result<f64, String> {
    match v {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => v.parse().map_err(|_| format!("invalid value '{v}'")),
    }
}

/// `name{label="value",...} value [timestamp]`.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| "a sample without a value".to_string())?;
    let name = &line[..name_end];
    check_name(name)?;
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, tail) = parse_labels(after)?;
        labels = parsed;
        rest = tail;
    }
    let mut fields = rest.split(' ').filter(|f| !f.is_empty());
    let value = parse_value(fields.next().ok_or("a sample without a value")?)?;
    if let Some(ts) = fields.next() {
        ts.parse::<i64>()
            .map_err(|_| format!("invalid timestamp '{ts}'"))?;
    }
    if fields.next().is_some() {
        return Err("text after the timestamp".into());
    }
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// The labels after `{`, up to and including `}`; returns them and the text after `}`.
fn parse_labels(mut s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    loop {
        if let Some(tail) = s.strip_prefix('}') {
            return Ok((labels, tail));
        }
        let eq = s.find('=').ok_or("a label without '='")?;
        let name = &s[..eq];
        if !is_label_name(name) {
            return Err(format!("invalid label name '{name}'"));
        }
        s = s[eq + 1..]
            .strip_prefix('"')
            .ok_or("a label value without quotes")?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, 'n')) => value.push('\n'),
                    _ => return Err("an invalid escape in a label value".into()),
                },
                Some((_, c)) => value.push(c),
                None => return Err("an unterminated label value".into()),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("label '{name}' given twice"));
        }
        s = &s[end + 1..];
        if let Some(tail) = s.strip_prefix(',') {
            s = tail;
        } else if !s.starts_with('}') {
            return Err("labels not separated by ','".into());
        }
    }
}

/// A client of every node's `/metrics` in the cluster in `dir` (its AWS endpoint, plain or
/// HTTPS with the cluster's CA; `/metrics` needs no signature).
pub fn node_metrics_clients(
    dir: &crate::cluster::ClusterDir,
) -> Result<Vec<(crate::cluster::NodeName, AwsJsonClient)>, String> {
    let topology = dir.topology().map_err(|e| e.to_string())?;
    let scheme = topology.aws_scheme();
    let ca = match topology.tls.as_ref() {
        Some(t) if scheme == "https" => Some(t.read_ca().map_err(|e| e.to_string())?),
        _ => None,
    };
    let mut out = Vec::new();
    for (name, entry) in dir.nodes().map_err(|e| e.to_string())? {
        let Some(addr) = entry.aws_advertise_addr() else {
            continue;
        };
        let client = AwsJsonClient::with_ca(
            &format!("{scheme}://{addr}"),
            crate::aws_client::Signer::new("kmsim", "kmsim", &name.region),
            ca.as_deref(),
        )
        .map_err(|e| format!("{name} at {addr}: {e}"))?;
        out.push((name, client));
    }
    Ok(out)
}

/// The synchronizer's lag per Region pair as the nodes measured it (`kmsim_sync_lag_seconds`),
/// from scrapes of every node: for each pair, the node of the receiving Region with the most
/// observations (every node of a Region applies each change; one is enough), its histogram
/// turned into samples in microseconds, each bucket's observations spread evenly over the
/// bucket (from its lower bound, exclusive, to its upper bound), as Prometheus's
/// `histogram_quantile` interpolates; those above the last bound are placed at twice it. Pairs
/// with no observation are left out.
pub fn sync_lag_samples(scrapes: &[Scrape]) -> Vec<(String, String, Vec<u64>)> {
    let mut best: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
    for s in scrapes {
        let mut pairs: BTreeMap<(String, String), Vec<(f64, f64)>> = BTreeMap::new();
        for b in s.select("kmsim_sync_lag_seconds_bucket", &[]) {
            let le = match b.label("le") {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or(f64::INFINITY),
            };
            pairs
                .entry((
                    b.label("source").to_string(),
                    b.label("destination").to_string(),
                ))
                .or_default()
                .push((le, b.value));
        }
        for (pair, mut buckets) in pairs {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            let count = buckets.last().map_or(0.0, |b| b.1);
            let held = best.get(&pair).and_then(|b| b.last()).map_or(0.0, |b| b.1);
            if count > held {
                best.insert(pair, buckets);
            }
        }
    }
    let mut out = Vec::new();
    for ((source, destination), buckets) in best {
        let mut samples = Vec::new();
        let mut below = 0.0;
        let mut lower = 0.0;
        for (le, cumulative) in buckets {
            let n = (cumulative - below).max(0.0) as u64;
            below = cumulative;
            if !le.is_finite() {
                samples.extend(std::iter::repeat_n((lower * 2.0 * 1e6) as u64, n as usize));
                continue;
            }
            // Sample i of n at lower + (i + 1) / n of the bucket's width: the last one at the
            // upper bound, none at the lower bound (which belongs to the bucket below).
            samples.extend(
                (1..=n).map(|i| ((lower + (le - lower) * i as f64 / n as f64) * 1e6) as u64),
            );
            lower = le;
        }
        if !samples.is_empty() {
            out.push((source, destination, samples));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP kmsim_api_requests_total Requests.
# TYPE kmsim_api_requests_total counter
kmsim_api_requests_total{region="us-east-1",node="1",operation="Encrypt",code="ok"} 3
kmsim_api_requests_total{region="us-east-1",node="2",operation="Encrypt",code="ok"} 2
# TYPE kmsim_raft_is_leader gauge
kmsim_raft_is_leader{region="us-east-1",node="1"} 1
# TYPE d_seconds histogram
d_seconds_bucket{op="a",le="0.1"} 1
d_seconds_bucket{op="a",le="1"} 2
d_seconds_bucket{op="a",le="+Inf"} 2
d_seconds_sum{op="a"} 0.3
d_seconds_count{op="a"} 2
# TYPE odd gauge
odd{v="say \"hi\"\\\n"} -Inf 1700000000000
"#;

    #[test]
    fn samples_labels_and_histograms_are_read() {
        let s = Scrape::parse(TEXT).unwrap();
        assert_eq!(
            s.sum("kmsim_api_requests_total", &[("operation", "Encrypt")]),
            5.0
        );
        assert_eq!(
            s.value("kmsim_api_requests_total", &[("node", "2")]),
            Some(2.0)
        );
        assert_eq!(s.value("kmsim_api_requests_total", &[]), None, "two series");
        assert_eq!(s.family_of("d_seconds_bucket"), Some("d_seconds"));
        assert_eq!(s.family_of("kmsim_raft_is_leader_count"), None);
        let odd = s.select("odd", &[]).next().unwrap();
        assert_eq!(odd.label("v"), "say \"hi\"\\\n");
        assert_eq!(odd.value, f64::NEG_INFINITY);
    }

    #[test]
    fn what_a_node_and_the_gateway_serve_is_in_the_format() {
        use kmsim_node::metrics::NodeMetrics;
        let node = NodeMetrics::node("us-east-1", 1);
        node.api.begin().end("Encrypt", "ok");
        node.raft.proposals_failed.inc();
        let s = Scrape::parse(&node.encode()).unwrap();
        assert_eq!(s.types["kmsim_api_requests_total"], "counter");
        assert_eq!(s.types["kmsim_api_request_duration_seconds"], "histogram");
        assert_eq!(s.types["kmsim_raft_is_leader"], "gauge");
        assert_eq!(s.value("kmsim_raft_proposals_failed_total", &[]), Some(1.0));
        assert_eq!(
            s.value(
                "kmsim_api_request_duration_seconds_count",
                &[("operation", "Encrypt")]
            ),
            Some(1.0)
        );
        for sample in &s.samples {
            assert!(
                sample.has(&[("region", "us-east-1"), ("node", "1")]),
                "{sample:?}"
            );
        }
        let gateway = Scrape::parse(&NodeMetrics::gateway().encode()).unwrap();
        assert!(gateway.types.contains_key("kmsim_api_inflight_requests"));
        assert!(!gateway.types.contains_key("kmsim_raft_is_leader"));
    }

    #[test]
    fn anything_outside_the_format_is_refused() {
        let refused = |text: &str| {
            let r = Scrape::parse(text);
            assert!(r.is_err(), "accepted: {text}");
        };
        refused("no_type 1\n");
        refused("# TYPE g gauge\ng{a=\"1\"} one\n");
        refused("# TYPE g gauge\ng{a=1} 1\n");
        refused("# TYPE g gauge\ng{a=\"1\",a=\"2\"} 1\n");
        refused("# TYPE g gauge\ng{a=\"1\"} 1\ng{a=\"1\"} 2\n");
        refused("# TYPE g gauge\n# TYPE g counter\n");
        refused("# TYPE g sometimes\n");
        refused("# TYPE 9g gauge\n");
        refused("# TYPE g gauge\ng{a=\"x} 1\n");
        refused("# TYPE g gauge\ng 1 2 3\n");
        // Buckets not cumulative; +Inf not the count; no +Inf at all.
        refused("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n");
        refused("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_count 3\n");
        refused("# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_count 1\n");
    }

    #[test]
    fn sync_lag_takes_the_busiest_node_of_each_pair_and_spreads_samples_over_their_buckets() {
        let node = |n: u32| {
            format!(
                "# TYPE kmsim_sync_lag_seconds histogram\n\
                 kmsim_sync_lag_seconds_bucket{{source=\"us-east-1\",destination=\"eu-west-1\",le=\"0.001\"}} 0\n\
                 kmsim_sync_lag_seconds_bucket{{source=\"us-east-1\",destination=\"eu-west-1\",le=\"0.064\"}} {n}\n\
                 kmsim_sync_lag_seconds_bucket{{source=\"us-east-1\",destination=\"eu-west-1\",le=\"0.128\"}} {}\n\
                 kmsim_sync_lag_seconds_bucket{{source=\"us-east-1\",destination=\"eu-west-1\",le=\"+Inf\"}} {}\n\
                 kmsim_sync_lag_seconds_sum{{source=\"us-east-1\",destination=\"eu-west-1\"}} 1\n\
                 kmsim_sync_lag_seconds_count{{source=\"us-east-1\",destination=\"eu-west-1\"}} {}\n",
                n + 1,
                n + 1,
                n + 1
            )
        };
        let scrapes = [
            Scrape::parse(&node(2)).expect("valid"),
            Scrape::parse(&node(5)).expect("valid"),
        ];
        let lag = sync_lag_samples(&scrapes);
        assert_eq!(lag.len(), 1);
        let (source, destination, samples) = &lag[0];
        assert_eq!(
            (source.as_str(), destination.as_str()),
            ("us-east-1", "eu-west-1")
        );
        // Five in (1 ms, 64 ms], evenly; one in (64 ms, 128 ms], at its upper bound.
        assert_eq!(samples, &[13_600, 26_200, 38_800, 51_400, 64_000, 128_000]);
        assert!(sync_lag_samples(&[]).is_empty());
    }
}
