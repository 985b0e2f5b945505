//! The injected link faults of a cluster, grouped so that a Region-wide fault reads as one line:
//! `kmsim chaos partition --from us-east-1 --to eu-west-1` sets a profile on every link from
//! each node of one Region to each node of the other (nine links with three nodes a side), which
//! is shown as `us-east-1 → eu-west-1: partitioned`.

use std::collections::{BTreeMap, BTreeSet};

use super::sample::ClusterSample;

/// Links from some nodes to some peers with one profile.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FaultRow {
    /// The sending side: a Region when it holds for all its nodes, else `REGION/ID`s.
    pub from: String,
    /// The receiving side, written the same way.
    pub to: String,
    /// What the links do ([`LinkFault::describe`](super::sample::LinkFault::describe)).
    pub what: String,
}

/// Every fault the nodes of `now` reported, one row per sending side, receiving side and profile.
pub fn group_faults(now: &ClusterSample) -> Vec<FaultRow> {
    let mut members: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    for n in &now.nodes {
        members.entry(n.region.as_str()).or_default().insert(n.id);
    }
    // (from region, to, what) → the sending nodes of that Region with exactly those links.
    let mut by_side: BTreeMap<(&str, String, String), BTreeSet<u64>> = BTreeMap::new();
    for n in &now.nodes {
        let Some(faults) = &n.faults else { continue };
        let mut by_profile: BTreeMap<String, Vec<&str>> = BTreeMap::new();
        for f in faults {
            by_profile.entry(f.describe()).or_default().push(&f.peer);
        }
        for (what, peers) in by_profile {
            let to = sides(&members, peers.iter().map(|p| split_node(p)));
            by_side
                .entry((n.region.as_str(), to, what))
                .or_default()
                .insert(n.id);
        }
    }
    let mut rows: Vec<FaultRow> = by_side
        .into_iter()
        .map(|((region, to, what), ids)| FaultRow {
            from: sides(
                &members,
                ids.iter().map(|id| (region, Some(*id), String::new())),
            ),
            to,
            what,
        })
        .collect();
    rows.sort();
    rows
}

/// `REGION/ID` as its Region and id; anything else as itself with no id.
fn split_node(peer: &str) -> (&str, Option<u64>, String) {
    match peer.split_once('/') {
        Some((region, id)) => match id.parse() {
            Ok(id) => (region, Some(id), String::new()),
            Err(_) => (peer, None, peer.to_string()),
        },
        None => (peer, None, peer.to_string()),
    }
}

/// Nodes written as Regions where all of a Region's nodes are there, else as `REGION/ID`,
/// comma separated. A node that could not be read is kept as it was written.
fn sides<'a>(
    members: &BTreeMap<&str, BTreeSet<u64>>,
    nodes: impl Iterator<Item = (&'a str, Option<u64>, String)>,
) -> String {
    let mut by_region: BTreeMap<&str, BTreeSet<u64>> = BTreeMap::new();
    let mut unread: BTreeSet<String> = BTreeSet::new();
    for (region, id, literal) in nodes {
        match id {
            Some(id) => {
                by_region.entry(region).or_default().insert(id);
            }
            None => {
                unread.insert(literal);
            }
        }
    }
    let mut out: Vec<String> = Vec::new();
    for (region, ids) in by_region {
        if members.get(region) == Some(&ids) {
            out.push(region.to_string());
        } else {
            out.extend(ids.iter().map(|id| format!("{region}/{id}")));
        }
    }
    out.extend(unread);
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::top::sample::{LinkFault, NodeSample};

    fn node(region: &str, id: u64, faults: Option<Vec<LinkFault>>) -> NodeSample {
        NodeSample {
            region: region.into(),
            id,
            faults,
            ..NodeSample::default()
        }
    }

    fn cut(peer: &str) -> LinkFault {
        LinkFault {
            peer: peer.into(),
            partitioned: true,
            ..LinkFault::default()
        }
    }

    fn slow(peer: &str, delay_ms: u64) -> LinkFault {
        LinkFault {
            peer: peer.into(),
            delay_ms,
            ..LinkFault::default()
        }
    }

    fn row(from: &str, to: &str, what: &str) -> FaultRow {
        FaultRow {
            from: from.into(),
            to: to.into(),
            what: what.into(),
        }
    }

    #[test]
    fn a_region_wide_partition_is_one_row_and_single_links_stay_links() {
        let to_b = || Some(vec![cut("b/1"), cut("b/2")]);
        let sample = ClusterSample {
            nodes: vec![
                node("a", 1, to_b()),
                node("a", 2, to_b()),
                // a/3 also delays its link to a/1.
                node("a", 3, Some(vec![cut("b/1"), cut("b/2"), slow("a/1", 80)])),
                // b/1 is partitioned from b/2 only; b/2 reports nothing (no faults).
                node("b", 1, Some(vec![cut("b/2"), slow("unparsed", 5)])),
                node("b", 2, Some(vec![])),
            ],
            ..ClusterSample::default()
        };
        assert_eq!(
            group_faults(&sample),
            vec![
                row("a", "b", "partitioned"),
                row("a/3", "a/1", "delay 80ms"),
                row("b/1", "b/2", "partitioned"),
                row("b/1", "unparsed", "delay 5ms"),
            ]
        );
    }

    #[test]
    fn a_fault_of_some_nodes_names_them_and_unknown_lists_count_for_nothing() {
        let sample = ClusterSample {
            nodes: vec![
                node("a", 1, Some(vec![slow("b/1", 10)])),
                node("a", 2, None),
                node("a", 3, Some(vec![slow("b/1", 10)])),
                node("b", 1, None),
            ],
            ..ClusterSample::default()
        };
        assert_eq!(
            group_faults(&sample),
            vec![row("a/1, a/3", "b", "delay 10ms")]
        );
        let none = ClusterSample {
            nodes: vec![node("a", 1, None), node("a", 2, Some(vec![]))],
            ..ClusterSample::default()
        };
        assert!(group_faults(&none).is_empty());
    }
}
