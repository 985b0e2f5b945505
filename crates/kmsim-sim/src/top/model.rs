//! What the screen shows, computed from the two latest samples: per node its Raft state, per
//! Region (and for the gateway) the request rate, error rate and p99 latency over the interval
//! between the samples, per Region pair the synchronizer's backlog, failed deliveries and lag,
//! and the injected faults. Pure: no I/O and no clock, so a test builds one from fixed samples.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::faults::{group_faults, FaultRow};
use super::histogram::{counter_increase, histogram_increase, quantile, Buckets, Quantile};
use super::sample::{ClusterSample, NodeSample};
use crate::scrape::Scrape;

/// AWS JSON requests answered, by `operation` and `code`.
pub const REQUESTS: &str = "kmsim_api_requests_total";
/// Time to answer an AWS JSON request (histogram).
pub const REQUEST_DURATION: &str = "kmsim_api_request_duration_seconds";
/// Deliveries due to another Region, by `destination`.
pub const SYNC_PENDING: &str = "kmsim_sync_pending";
/// Messages sent to another Region, by `destination` and `result`.
pub const SYNC_DELIVERIES: &str = "kmsim_sync_deliveries_total";
/// From a commit in the sending Region to its apply in the receiving one, by `source` and
/// `destination`, observed by the receiving Region's nodes (histogram).
pub const SYNC_LAG: &str = "kmsim_sync_lag_seconds";
/// Outgoing links of a node with an injected fault.
pub const FAULTS_ACTIVE: &str = "kmsim_faults_active";

/// The quantile the latency columns show.
pub const LATENCY_QUANTILE: f64 = 0.99;

/// Everything the screen shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Model {
    /// The first line (what is watched, how often, how to quit); set by the caller.
    pub title: String,
    /// The time between the two samples the rates are computed over; `None` after the first.
    pub interval: Option<Duration>,
    /// Every Region, in the topology's order.
    pub regions: Vec<RegionRow>,
    /// The gateway, when the topology has one.
    pub gateway: Option<GatewayRow>,
    /// Every node, in the topology's order.
    pub nodes: Vec<NodeRow>,
    /// Every ordered pair of Regions that synchronize, sorted.
    pub pairs: Vec<PairRow>,
    /// The injected link faults, grouped (see [`group_faults`]).
    pub faults: Vec<FaultRow>,
}

/// Requests over the last interval. `None` fields: not known (a single sample, or no process
/// that answered both times).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Traffic {
    /// Requests answered per second.
    pub ops: Option<f64>,
    /// Requests answered with an error (`code` other than `ok`) per second.
    pub errors: Option<f64>,
    /// The 99th percentile of the time to answer; `None` also when nothing was answered.
    pub p99: Option<Quantile>,
}

/// One Region.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RegionRow {
    /// Its name.
    pub region: String,
    /// The node that says it is the leader (the one of the highest term if several do).
    pub leader: Option<u64>,
    /// The highest term its answering nodes are in.
    pub term: Option<u64>,
    /// Nodes that answered `Status`.
    pub up: usize,
    /// Nodes in the topology.
    pub nodes: usize,
    /// Requests its nodes answered (a request relayed to another Region counts there too).
    pub traffic: Traffic,
}

/// The gateway.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GatewayRow {
    /// It answered `GET /metrics`.
    pub up: bool,
    /// Requests it answered.
    pub traffic: Traffic,
}

/// A node's Raft role, or down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Its Region's leader.
    Leader,
    /// A follower.
    Follower,
    /// Campaigning for leadership.
    Candidate,
    /// A non-voting member.
    Learner,
    /// Another role it reported (`shutdown`).
    Other(String),
    /// It did not answer `Status`.
    Down,
}

impl Role {
    /// The role as `Status` names it, or `down`.
    pub fn as_str(&self) -> &str {
        match self {
            Role::Leader => "leader",
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Learner => "learner",
            Role::Other(s) => s,
            Role::Down => "down",
        }
    }

    fn of(node: &NodeSample) -> Role {
        match node.status.as_ref().map(|s| s.role.as_str()) {
            None => Role::Down,
            Some("leader") => Role::Leader,
            Some("follower") => Role::Follower,
            Some("candidate") => Role::Candidate,
            Some("learner") => Role::Learner,
            Some(other) => Role::Other(other.to_string()),
        }
    }
}

/// One node.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeRow {
    /// Its Region.
    pub region: String,
    /// Its id.
    pub id: u64,
    /// Its role, or down.
    pub role: Role,
    /// Its term.
    pub term: Option<u64>,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// The index of the last entry it applied.
    pub applied: Option<u64>,
    /// Entries it applied fewer than the most advanced answering node of its Region.
    pub behind: Option<u64>,
    /// Requests it answered per second.
    pub ops: Option<f64>,
    /// Its outgoing links with a fault (`kmsim_faults_active`, else the `GetLinkFaults` list).
    pub faults: Option<u64>,
}

/// The synchronizer from one Region to another.
#[derive(Clone, Debug, PartialEq)]
pub struct PairRow {
    /// The sending Region.
    pub source: String,
    /// The receiving Region.
    pub destination: String,
    /// Deliveries due now (`kmsim_sync_pending`, the highest any node of the source reports).
    pub pending: Option<f64>,
    /// Messages per second no node of the destination answered (`result="failed"`).
    pub failed: Option<f64>,
    /// The 99th percentile of the lag over the interval (`kmsim_sync_lag_seconds`); `None` when
    /// no node serves that histogram or nothing was observed.
    pub lag_p99: Option<Quantile>,
}

impl Model {
    /// The model of `now`, with rates over the time since `before` (the previous sample).
    pub fn new(before: Option<&ClusterSample>, now: &ClusterSample) -> Model {
        let seconds = before
            .map(|b| now.at.saturating_sub(b.at).as_secs_f64())
            .filter(|s| *s > 0.0);
        let earlier = |n| both_scrapes(before, n);
        let mut regions: Vec<RegionRow> = Vec::new();
        for name in region_names(now) {
            let members: Vec<&NodeSample> = now.nodes.iter().filter(|n| n.region == name).collect();
            let up: Vec<&NodeSample> = members
                .iter()
                .copied()
                .filter(|n| n.status.is_some())
                .collect();
            let leader = up
                .iter()
                .filter_map(|n| n.status.as_ref().map(|s| (n, s)))
                .filter(|(_, s)| s.role == "leader")
                .max_by_key(|(_, s)| s.term)
                .map(|(n, _)| n.id);
            let pairs: Vec<_> = members.iter().filter_map(|n| earlier(n)).collect();
            regions.push(RegionRow {
                region: name.clone(),
                leader,
                term: up
                    .iter()
                    .filter_map(|n| n.status.as_ref().map(|s| s.term))
                    .max(),
                up: up.len(),
                nodes: members.len(),
                traffic: traffic(&pairs, seconds),
            });
        }
        let most_applied: BTreeMap<&str, u64> = regions
            .iter()
            .filter_map(|r| {
                let max = now
                    .nodes
                    .iter()
                    .filter(|n| n.region == r.region)
                    .filter_map(|n| n.status.as_ref()?.applied)
                    .max()?;
                Some((r.region.as_str(), max))
            })
            .collect();
        let nodes = now
            .nodes
            .iter()
            .map(|n| {
                let applied = n.status.as_ref().and_then(|s| s.applied);
                let faults = n
                    .metrics
                    .as_ref()
                    .and_then(|m| m.value(FAULTS_ACTIVE, &[]))
                    .map(|v| v as u64)
                    .or_else(|| n.faults.as_ref().map(|f| f.len() as u64));
                NodeRow {
                    region: n.region.clone(),
                    id: n.id,
                    role: Role::of(n),
                    term: n.status.as_ref().map(|s| s.term),
                    leader: n.status.as_ref().and_then(|s| s.leader_id),
                    applied,
                    behind: most_applied
                        .get(n.region.as_str())
                        .map(|max| max.saturating_sub(applied.unwrap_or(0)))
                        .filter(|_| n.status.is_some()),
                    ops: traffic(&earlier(n).into_iter().collect::<Vec<_>>(), seconds).ops,
                    faults,
                }
            })
            .collect();
        let gateway = now.gateway.as_ref().map(|g| {
            let pairs: Vec<(&Scrape, &Scrape)> = before
                .and_then(|b| b.gateway.as_ref()?.metrics.as_ref())
                .zip(g.metrics.as_ref())
                .into_iter()
                .collect();
            GatewayRow {
                up: g.metrics.is_some(),
                traffic: traffic(&pairs, seconds),
            }
        });
        Model {
            title: String::new(),
            interval: seconds.map(Duration::from_secs_f64),
            regions,
            gateway,
            nodes,
            pairs: sync_pairs(before, now, seconds),
            faults: group_faults(now),
        }
    }
}

/// A node's scrape in `before` and its scrape now, when it answered both times.
fn both_scrapes<'a>(
    before: Option<&'a ClusterSample>,
    n: &'a NodeSample,
) -> Option<(&'a Scrape, &'a Scrape)> {
    let b = before?
        .nodes
        .iter()
        .find(|p| p.region == n.region && p.id == n.id)?;
    Some((b.metrics.as_ref()?, n.metrics.as_ref()?))
}

/// The Regions of a sample in the order of their first node.
fn region_names(sample: &ClusterSample) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for n in &sample.nodes {
        if !names.contains(&n.region) {
            names.push(n.region.clone());
        }
    }
    names
}

/// The traffic of the processes whose (earlier, now) scrapes are `pairs`, over `seconds`.
fn traffic(pairs: &[(&Scrape, &Scrape)], seconds: Option<f64>) -> Traffic {
    let Some(seconds) = seconds.filter(|_| !pairs.is_empty()) else {
        return Traffic::default();
    };
    let (mut ops, mut errors, mut durations) = (0.0, 0.0, Buckets::default());
    for (before, now) in pairs {
        ops += counter_increase(before, now, REQUESTS, |_| true);
        errors += counter_increase(before, now, REQUESTS, |s| s.label("code") != "ok");
        durations.merge(&histogram_increase(before, now, REQUEST_DURATION, |_| true));
    }
    Traffic {
        ops: Some(ops / seconds),
        errors: Some(errors / seconds),
        p99: quantile(LATENCY_QUANTILE, &durations),
    }
}

/// Every pair of Regions some node reports synchronizer figures or lag for.
fn sync_pairs(
    before: Option<&ClusterSample>,
    now: &ClusterSample,
    seconds: Option<f64>,
) -> Vec<PairRow> {
    let earlier = |n| both_scrapes(before, n);
    let mut names: BTreeSet<(String, String)> = BTreeSet::new();
    for n in &now.nodes {
        let Some(m) = &n.metrics else { continue };
        for s in &m.samples {
            if s.name == SYNC_PENDING || s.name == SYNC_DELIVERIES {
                names.insert((n.region.clone(), s.label("destination").to_string()));
            } else if s.name == format!("{SYNC_LAG}_count") {
                names.insert((
                    s.label("source").to_string(),
                    s.label("destination").to_string(),
                ));
            }
        }
    }
    names
        .into_iter()
        .filter(|(s, d)| !s.is_empty() && !d.is_empty())
        .map(|(source, destination)| {
            let of_source = || now.nodes.iter().filter(|n| n.region == source);
            let to = [("destination", destination.as_str())];
            let pending = of_source()
                .filter_map(|n| n.metrics.as_ref()?.value(SYNC_PENDING, &to))
                .reduce(f64::max);
            let failed = seconds.and_then(|secs| {
                let pairs: Vec<_> = of_source().filter_map(earlier).collect();
                (!pairs.is_empty()).then(|| {
                    pairs
                        .iter()
                        .map(|(b, n)| {
                            counter_increase(b, n, SYNC_DELIVERIES, |s| {
                                s.has(&[("destination", &destination), ("result", "failed")])
                            })
                        })
                        .fold(0.0, |total, v| total + v)
                        / secs
                })
            });
            let mut lag = Buckets::default();
            if seconds.is_some() {
                for (b, n) in now.nodes.iter().filter_map(earlier) {
                    lag.merge(&histogram_increase(b, n, SYNC_LAG, |s| {
                        s.has(&[("source", &source), ("destination", &destination)])
                    }));
                }
            }
            PairRow {
                lag_p99: quantile(LATENCY_QUANTILE, &lag),
                source,
                destination,
                pending,
                failed,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::sample::{GatewaySample, LinkFault, NodeStatus};

    // Two scrapes of each process, two seconds apart. us-east-1/1 answers 60 Encrypts, all in
    // (1 ms, 2 ms]. us-east-1/2 restarted in between (its counters start again from zero) and
    // answers 36 Encrypts, 35 in (1 ms, 2 ms] and one in (2 ms, 4 ms], and 4 DescribeKeys that
    // fail, in (1 ms, 2 ms]. So the Region answers 100 calls in 2 s, 50/s, 4 errors, 2/s, and its
    // p99 (rank 99 of 100) is exactly the 2 ms bound: all 99 first calls are at or below it.

    const US1_BEFORE: &str = r#"# TYPE kmsim_api_requests_total counter
kmsim_api_requests_total{region="us-east-1",node="1",operation="Encrypt",code="ok"} 1000
# TYPE kmsim_api_request_duration_seconds histogram
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="1",operation="Encrypt",le="0.001"} 1000
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="1",operation="Encrypt",le="0.002"} 1000
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="1",operation="Encrypt",le="0.004"} 1000
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="1",operation="Encrypt",le="+Inf"} 1000
kmsim_api_request_duration_seconds_sum{region="us-east-1",node="1",operation="Encrypt"} 0.5
kmsim_api_request_duration_seconds_count{region="us-east-1",node="1",operation="Encrypt"} 1000
# TYPE kmsim_sync_pending gauge
kmsim_sync_pending{region="us-east-1",node="1",destination="eu-west-1"} 0
# TYPE kmsim_sync_deliveries_total counter
kmsim_sync_deliveries_total{region="us-east-1",node="1",destination="eu-west-1",result="ok"} 50
kmsim_sync_deliveries_total{region="us-east-1",node="1",destination="eu-west-1",result="failed"} 0
# TYPE kmsim_faults_active gauge
kmsim_faults_active{region="us-east-1",node="1"} 0
"#;

    const US1_NOW: &str = r#"# TYPE kmsim_api_requests_total counter
kmsim_api_requests_total{region="us-east-1",node="1",operation="Encrypt",code="ok"} 1060
# TYPE kmsim_api_request_duration_seconds histogram
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="1",operation="Encrypt",le="0.001"} 1000
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="1",operation="Encrypt",le="0.002"} 1060
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="1",operation="Encrypt",le="0.004"} 1060
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="1",operation="Encrypt",le="+Inf"} 1060
kmsim_api_request_duration_seconds_sum{region="us-east-1",node="1",operation="Encrypt"} 0.59
kmsim_api_request_duration_seconds_count{region="us-east-1",node="1",operation="Encrypt"} 1060
# TYPE kmsim_sync_pending gauge
kmsim_sync_pending{region="us-east-1",node="1",destination="eu-west-1"} 5
# TYPE kmsim_sync_deliveries_total counter
kmsim_sync_deliveries_total{region="us-east-1",node="1",destination="eu-west-1",result="ok"} 52
kmsim_sync_deliveries_total{region="us-east-1",node="1",destination="eu-west-1",result="failed"} 6
# TYPE kmsim_faults_active gauge
kmsim_faults_active{region="us-east-1",node="1"} 3
"#;

    const US2_BEFORE: &str = r#"# TYPE kmsim_api_requests_total counter
kmsim_api_requests_total{region="us-east-1",node="2",operation="Encrypt",code="ok"} 700
# TYPE kmsim_api_request_duration_seconds histogram
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="2",operation="Encrypt",le="0.001"} 700
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="2",operation="Encrypt",le="0.002"} 700
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="2",operation="Encrypt",le="0.004"} 700
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="2",operation="Encrypt",le="+Inf"} 700
kmsim_api_request_duration_seconds_sum{region="us-east-1",node="2",operation="Encrypt"} 0.35
kmsim_api_request_duration_seconds_count{region="us-east-1",node="2",operation="Encrypt"} 700
# TYPE kmsim_sync_pending gauge
kmsim_sync_pending{region="us-east-1",node="2",destination="eu-west-1"} 0
"#;

    const US2_NOW: &str = r#"# TYPE kmsim_api_requests_total counter
kmsim_api_requests_total{region="us-east-1",node="2",operation="Encrypt",code="ok"} 36
kmsim_api_requests_total{region="us-east-1",node="2",operation="DescribeKey",code="NotFoundException"} 4
# TYPE kmsim_api_request_duration_seconds histogram
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="2",operation="Encrypt",le="0.001"} 0
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="2",operation="Encrypt",le="0.002"} 35
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="2",operation="Encrypt",le="0.004"} 36
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="2",operation="Encrypt",le="+Inf"} 36
kmsim_api_request_duration_seconds_sum{region="us-east-1",node="2",operation="Encrypt"} 0.06
kmsim_api_request_duration_seconds_count{region="us-east-1",node="2",operation="Encrypt"} 36
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="2",operation="DescribeKey",le="0.001"} 0
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="2",operation="DescribeKey",le="0.002"} 4
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="2",operation="DescribeKey",le="0.004"} 4
kmsim_api_request_duration_seconds_bucket{region="us-east-1",node="2",operation="DescribeKey",le="+Inf"} 4
kmsim_api_request_duration_seconds_sum{region="us-east-1",node="2",operation="DescribeKey"} 0.006
kmsim_api_request_duration_seconds_count{region="us-east-1",node="2",operation="DescribeKey"} 4
# TYPE kmsim_sync_pending gauge
kmsim_sync_pending{region="us-east-1",node="2",destination="eu-west-1"} 3
"#;

    // eu-west-1/1 applies 100 commits of us-east-1 in the interval: 99 within (2 ms, 4 ms], one
    // later; the lag p99 is exactly 4 ms. It answers no call (its request family is empty).
    const EU1_BEFORE: &str = r#"# TYPE kmsim_api_requests_total counter
# TYPE kmsim_sync_lag_seconds histogram
kmsim_sync_lag_seconds_bucket{region="eu-west-1",node="1",source="us-east-1",destination="eu-west-1",le="0.002"} 0
kmsim_sync_lag_seconds_bucket{region="eu-west-1",node="1",source="us-east-1",destination="eu-west-1",le="0.004"} 0
kmsim_sync_lag_seconds_bucket{region="eu-west-1",node="1",source="us-east-1",destination="eu-west-1",le="+Inf"} 0
kmsim_sync_lag_seconds_sum{region="eu-west-1",node="1",source="us-east-1",destination="eu-west-1"} 0
kmsim_sync_lag_seconds_count{region="eu-west-1",node="1",source="us-east-1",destination="eu-west-1"} 0
# TYPE kmsim_sync_pending gauge
kmsim_sync_pending{region="eu-west-1",node="1",destination="us-east-1"} 0
"#;

    const EU1_NOW: &str = r#"# TYPE kmsim_api_requests_total counter
# TYPE kmsim_sync_lag_seconds histogram
kmsim_sync_lag_seconds_bucket{region="eu-west-1",node="1",source="us-east-1",destination="eu-west-1",le="0.002"} 0
kmsim_sync_lag_seconds_bucket{region="eu-west-1",node="1",source="us-east-1",destination="eu-west-1",le="0.004"} 99
kmsim_sync_lag_seconds_bucket{region="eu-west-1",node="1",source="us-east-1",destination="eu-west-1",le="+Inf"} 100
kmsim_sync_lag_seconds_sum{region="eu-west-1",node="1",source="us-east-1",destination="eu-west-1"} 0.4
kmsim_sync_lag_seconds_count{region="eu-west-1",node="1",source="us-east-1",destination="eu-west-1"} 100
# TYPE kmsim_sync_pending gauge
kmsim_sync_pending{region="eu-west-1",node="1",destination="us-east-1"} 0
"#;

    // The gateway relays 10 calls, every one slower than its highest finite bound.
    const GATEWAY_BEFORE: &str = r#"# TYPE kmsim_api_requests_total counter
kmsim_api_requests_total{region="gateway",node="gateway",operation="Encrypt",code="ok"} 500
# TYPE kmsim_api_request_duration_seconds histogram
kmsim_api_request_duration_seconds_bucket{region="gateway",node="gateway",operation="Encrypt",le="0.004"} 500
kmsim_api_request_duration_seconds_bucket{region="gateway",node="gateway",operation="Encrypt",le="+Inf"} 500
kmsim_api_request_duration_seconds_sum{region="gateway",node="gateway",operation="Encrypt"} 1
kmsim_api_request_duration_seconds_count{region="gateway",node="gateway",operation="Encrypt"} 500
"#;

    const GATEWAY_NOW: &str = r#"# TYPE kmsim_api_requests_total counter
kmsim_api_requests_total{region="gateway",node="gateway",operation="Encrypt",code="ok"} 510
# TYPE kmsim_api_request_duration_seconds histogram
kmsim_api_request_duration_seconds_bucket{region="gateway",node="gateway",operation="Encrypt",le="0.004"} 500
kmsim_api_request_duration_seconds_bucket{region="gateway",node="gateway",operation="Encrypt",le="+Inf"} 510
kmsim_api_request_duration_seconds_sum{region="gateway",node="gateway",operation="Encrypt"} 51
kmsim_api_request_duration_seconds_count{region="gateway",node="gateway",operation="Encrypt"} 510
"#;

    fn scrape(text: &str) -> Option<Scrape> {
        Some(Scrape::parse(text).unwrap())
    }

    fn status(role: &str, term: u64, leader_id: u64, applied: u64) -> Option<NodeStatus> {
        Some(NodeStatus {
            role: role.into(),
            term,
            leader_id: Some(leader_id),
            applied: Some(applied),
        })
    }

    fn node(
        region: &str,
        id: u64,
        status: Option<NodeStatus>,
        metrics: Option<Scrape>,
    ) -> NodeSample {
        // A node that answers Status answers GetLinkFaults too: no faults.
        let faults = status.as_ref().map(|_| vec![]);
        NodeSample {
            region: region.into(),
            id,
            status,
            metrics,
            faults,
        }
    }

    /// The cluster before: every node up. After: us-east-1/3 is down, eu-west-1/2 just came
    /// back (it has metrics now, none before).
    fn samples() -> (ClusterSample, ClusterSample) {
        let before = ClusterSample {
            at: Duration::from_secs(10),
            nodes: vec![
                node(
                    "us-east-1",
                    1,
                    status("leader", 3, 1, 100),
                    scrape(US1_BEFORE),
                ),
                node(
                    "us-east-1",
                    2,
                    status("follower", 3, 1, 100),
                    scrape(US2_BEFORE),
                ),
                node(
                    "us-east-1",
                    3,
                    status("follower", 3, 1, 100),
                    scrape(US2_BEFORE),
                ),
                node(
                    "eu-west-1",
                    1,
                    status("leader", 2, 1, 30),
                    scrape(EU1_BEFORE),
                ),
                node("eu-west-1", 2, None, None),
            ],
            gateway: Some(GatewaySample {
                metrics: scrape(GATEWAY_BEFORE),
            }),
        };
        let cut = |peer: &str| LinkFault {
            peer: peer.into(),
            partitioned: true,
            ..LinkFault::default()
        };
        let mut us1 = node("us-east-1", 1, status("leader", 3, 1, 120), scrape(US1_NOW));
        us1.faults = Some(vec![cut("eu-west-1/1"), cut("eu-west-1/2")]);
        let now = ClusterSample {
            at: Duration::from_secs(12),
            nodes: vec![
                us1,
                node(
                    "us-east-1",
                    2,
                    status("follower", 3, 1, 118),
                    scrape(US2_NOW),
                ),
                node("us-east-1", 3, None, None),
                node("eu-west-1", 1, status("leader", 2, 1, 40), scrape(EU1_NOW)),
                node(
                    "eu-west-1",
                    2,
                    status("follower", 2, 1, 37),
                    scrape(EU1_NOW),
                ),
            ],
            gateway: Some(GatewaySample {
                metrics: scrape(GATEWAY_NOW),
            }),
        };
        (before, now)
    }

    #[test]
    fn rates_and_p99_come_from_the_increase_between_two_scrapes() {
        let (before, now) = samples();
        let m = Model::new(Some(&before), &now);
        assert_eq!(m.interval, Some(Duration::from_secs(2)));
        let us = &m.regions[0];
        assert_eq!(
            (us.region.as_str(), us.leader, us.term, us.up, us.nodes),
            ("us-east-1", Some(1), Some(3), 2, 3)
        );
        assert_eq!(
            us.traffic,
            Traffic {
                ops: Some(50.0),
                errors: Some(2.0),
                p99: Some(Quantile::Within(0.002)),
            }
        );
        let eu = &m.regions[1];
        assert_eq!((eu.leader, eu.up, eu.nodes), (Some(1), 2, 2));
        // eu-west-1/1 answered no call; eu-west-1/2 was not scraped before: it adds nothing.
        assert_eq!(
            eu.traffic,
            Traffic {
                ops: Some(0.0),
                errors: Some(0.0),
                p99: None,
            }
        );
        let gateway = m.gateway.as_ref().unwrap();
        assert!(gateway.up);
        assert_eq!(
            gateway.traffic,
            Traffic {
                ops: Some(5.0),
                errors: Some(0.0),
                p99: Some(Quantile::Above(0.004)),
            }
        );
    }

    #[test]
    fn nodes_show_their_raft_state_and_the_down_node_nothing() {
        let (before, now) = samples();
        let m = Model::new(Some(&before), &now);
        let row = |region: &str, id: u64| {
            m.nodes
                .iter()
                .find(|n| n.region == region && n.id == id)
                .unwrap()
                .clone()
        };
        assert_eq!(
            row("us-east-1", 1),
            NodeRow {
                region: "us-east-1".into(),
                id: 1,
                role: Role::Leader,
                term: Some(3),
                leader: Some(1),
                applied: Some(120),
                behind: Some(0),
                ops: Some(30.0),
                faults: Some(3),
            }
        );
        let us2 = row("us-east-1", 2);
        assert_eq!(
            (us2.behind, us2.ops, us2.faults),
            (Some(2), Some(20.0), Some(0))
        );
        assert_eq!(
            row("us-east-1", 3),
            NodeRow {
                region: "us-east-1".into(),
                id: 3,
                role: Role::Down,
                term: None,
                leader: None,
                applied: None,
                behind: None,
                ops: None,
                faults: None,
            }
        );
        let eu2 = row("eu-west-1", 2);
        assert_eq!(
            (eu2.role, eu2.behind, eu2.ops),
            (Role::Follower, Some(3), None)
        );
    }

    #[test]
    fn region_pairs_show_backlog_failures_and_lag() {
        let (before, now) = samples();
        let m = Model::new(Some(&before), &now);
        assert_eq!(
            m.pairs,
            vec![
                PairRow {
                    source: "eu-west-1".into(),
                    destination: "us-east-1".into(),
                    pending: Some(0.0),
                    failed: Some(0.0),
                    lag_p99: None,
                },
                PairRow {
                    source: "us-east-1".into(),
                    destination: "eu-west-1".into(),
                    pending: Some(5.0),
                    failed: Some(3.0),
                    lag_p99: Some(Quantile::Within(0.004)),
                },
            ]
        );
        // No failed deliveries is 0, not -0 (which would print as "-0.0").
        assert!(m.pairs[0].failed.is_some_and(f64::is_sign_positive));
        assert_eq!(
            m.faults,
            vec![FaultRow {
                from: "us-east-1/1".into(),
                to: "eu-west-1".into(),
                what: "partitioned".into(),
            }]
        );
    }

    #[test]
    fn a_first_sample_has_state_but_no_rates() {
        let (_, now) = samples();
        let m = Model::new(None, &now);
        assert_eq!(m.interval, None);
        assert_eq!(m.regions[0].leader, Some(1));
        assert_eq!(m.regions[0].traffic, Traffic::default());
        assert!(m.nodes.iter().all(|n| n.ops.is_none()));
        assert_eq!(m.pairs[1].pending, Some(5.0));
        assert_eq!((m.pairs[1].failed, m.pairs[1].lag_p99), (None, None));
        assert_eq!(m.gateway.unwrap().traffic, Traffic::default());
    }
}
