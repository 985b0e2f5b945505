//! One look at the whole cluster: what every node's admin `Status` and `GetLinkFaults` answered
//! and what its `GET /metrics` served, and the gateway's metrics. Plain data: the
//! [`sampler`](super::sampler) fills it from a running cluster, tests write it by hand.

use std::time::Duration;

use crate::scrape::Scrape;

/// Everything one round of asking found.
#[derive(Clone, Debug, Default)]
pub struct ClusterSample {
    /// When the round began, from a monotonic clock of the sampler's choice (rates divide by
    /// the difference between two samples' `at`).
    pub at: Duration,
    /// Every node of the topology, in its order, whether it answered or not.
    pub nodes: Vec<NodeSample>,
    /// The gateway: `None` when the topology has none.
    pub gateway: Option<GatewaySample>,
}

/// What one node answered.
#[derive(Clone, Debug, Default)]
pub struct NodeSample {
    /// Its Region.
    pub region: String,
    /// Its id in its Region.
    pub id: u64,
    /// Its admin `Status`; `None` when it did not answer (the node is shown down).
    pub status: Option<NodeStatus>,
    /// Its `GET /metrics`; `None` when it did not answer or serves no AWS endpoint.
    pub metrics: Option<Scrape>,
    /// Its outgoing links with an injected fault (`GetLinkFaults`); `None` when not known.
    pub faults: Option<Vec<LinkFault>>,
}

/// The part of a node's admin `Status` the view shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeStatus {
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`.
    pub role: String,
    /// The Raft term it is in.
    pub term: u64,
    /// The leader it knows of.
    pub leader_id: Option<u64>,
    /// The index of the last entry it applied.
    pub applied: Option<u64>,
}

/// One faulty outgoing link of a node (`kmsim chaos`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LinkFault {
    /// The peer, `REGION/ID`.
    pub peer: String,
    /// Delay added to every message, milliseconds.
    pub delay_ms: u64,
    /// Extra random delay up to this, milliseconds.
    pub jitter_ms: u64,
    /// Probability that a message is dropped.
    pub loss: f64,
    /// Nothing reaches the peer.
    pub partitioned: bool,
}

impl LinkFault {
    /// `partitioned`, or what delays and drops messages (`delay 80ms jitter 20ms loss 5%`).
    pub fn describe(&self) -> String {
        if self.partitioned {
            return "partitioned".to_string();
        }
        let mut parts = Vec::new();
        if self.delay_ms > 0 {
            parts.push(format!("delay {}ms", self.delay_ms));
        }
        if self.jitter_ms > 0 {
            parts.push(format!("jitter {}ms", self.jitter_ms));
        }
        if self.loss > 0.0 {
            let percent = format!("{:.1}", self.loss * 100.0);
            parts.push(format!("loss {}%", percent.trim_end_matches(".0")));
        }
        if parts.is_empty() {
            "healthy".to_string()
        } else {
            parts.join(" ")
        }
    }
}

/// What the gateway answered.
#[derive(Clone, Debug, Default)]
pub struct GatewaySample {
    /// Its `GET /metrics`; `None` when it did not answer.
    pub metrics: Option<Scrape>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_says_what_it_does() {
        let f = |delay_ms, jitter_ms, loss, partitioned| LinkFault {
            peer: "eu-west-1/1".into(),
            delay_ms,
            jitter_ms,
            loss,
            partitioned,
        };
        assert_eq!(f(80, 0, 0.0, true).describe(), "partitioned");
        assert_eq!(
            f(80, 20, 0.05, false).describe(),
            "delay 80ms jitter 20ms loss 5%"
        );
        assert_eq!(f(0, 0, 0.125, false).describe(), "loss 12.5%");
        assert_eq!(f(0, 0, 0.0, false).describe(), "healthy");
    }
}
