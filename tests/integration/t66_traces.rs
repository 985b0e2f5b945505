//! Traces across processes and Regions (docs/OBSERVABILITY.md "Traces"): a `traceparent` sent
//! with a request to a follower is found in the logs of that follower, of the leader that
//! committed the write, and of the replica Region's node that applied the synchronization; the
//! replica Region measures the lag from the primary's commit (`kmsim_sync_lag_seconds`); and
//! `KMSIM_LOG_FORMAT=json` writes every log line as one JSON object.

use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use kmsim_sim::cluster::ClusterDir;
use kmsim_sim::scrape::scrape;
use serde_json::json;

use crate::harness::{wait_for, Cluster};
use crate::t70_multi_region::{create_mrk, replicate, A, B};

/// The trace this test sends (W3C's example trace ID).
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// The log of node `id` of `region`.
fn log_of(c: &Cluster, region: &str, id: u64) -> String {
    let path = ClusterDir::new(c.data_dir()).log_path(&Cluster::name(region, id));
    std::fs::read_to_string(&path).unwrap_or_default()
}

/// The log lines of node `id` of `region` that carry [`TRACE_ID`] in their spans, each parsed
/// (every line of the log must be one JSON object).
fn traced_lines(c: &Cluster, region: &str, id: u64) -> Vec<serde_json::Value> {
    log_of(c, region, id)
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| {
                panic!("{region}/{id} logged a line that is not JSON ({e}): {line}")
            })
        })
        .filter(|v| {
            v["spans"].as_array().is_some_and(|spans| {
                spans
                    .iter()
                    .any(|s| s["trace_id"].as_str() == Some(TRACE_ID))
            })
        })
        .collect()
}

/// The hops (`fields.hop`) of `lines`.
fn hops(lines: &[serde_json::Value]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|v| v["fields"]["hop"].as_str().map(str::to_string))
        .collect()
}

/// `kmsim_sync_lag_seconds_count` from A to B, summed over B's nodes.
async fn lag_count(c: &Cluster) -> f64 {
    let mut n = 0.0;
    for id in c.ids(B) {
        let s = scrape(&c.raw(&c.aws_url(B, id), B))
            .await
            .expect("scrape of a node");
        n += s.sum(
            "kmsim_sync_lag_seconds_count",
            &[("source", A), ("destination", B)],
        );
    }
    n
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trace_id_is_found_in_the_logs_of_every_hop_and_the_sync_lag_is_measured() {
    let c = Cluster::start_with_env(
        &[A, B],
        3,
        &[
            ("KMSIM_LOG", "info,openraft=warn,kmsim::hop=debug"),
            ("KMSIM_LOG_FORMAT", "json"),
        ],
    );
    let key = create_mrk(&c, A, None).await;
    let key_id = key.key_id.unwrap();
    replicate(&c, &key_id, A, B, "Enabled").await;
    // ReplicateKey's commit on the primary's leader is reported with the synchronization
    // that carries the material, so B has measured at least one lag already.
    let before = wait_for(Duration::from_secs(20), "a lag observed in B", || async {
        let n = lag_count(&c).await;
        (n >= 1.0).then_some(n)
    })
    .await;

    // RotateKeyOnDemand on the primary, sent to a follower of A with a trace.
    let leader = c.leader(A).await;
    let follower = c.ids(A).into_iter().find(|&id| id != leader).unwrap();
    let client = c.raw(&c.aws_url(A, follower), A);
    let body = Bytes::from(json!({ "KeyId": key_id }).to_string());
    let mut req = client.signed("RotateKeyOnDemand", body).unwrap();
    req.headers_mut().insert(
        "traceparent",
        HeaderValue::from_str(&format!("00-{TRACE_ID}-00f067aa0ba902b7-01")).unwrap(),
    );
    let answer = client.send(req).await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.error_message());

    // The follower that received it, the leader that committed it (forwarded to it), and
    // a node of B that applied the new material's synchronization: each logged the trace.
    wait_for(
        Duration::from_secs(10),
        "the trace in the follower's log",
        || async {
            hops(&traced_lines(&c, A, follower))
                .contains(&"aws-json".to_string())
                .then_some(())
        },
    )
    .await;
    wait_for(
        Duration::from_secs(10),
        "the trace in the leader's log",
        || async {
            let h = hops(&traced_lines(&c, A, leader));
            (h.contains(&"forwarded-write".to_string()) && h.contains(&"committed".to_string()))
                .then_some(())
        },
    )
    .await;
    wait_for(
        Duration::from_secs(20),
        "the trace in the log of a node of B",
        || async {
            c.ids(B)
                .into_iter()
                .any(|id| hops(&traced_lines(&c, B, id)).contains(&"sync-apply".to_string()))
                .then_some(())
        },
    )
    .await;
    // The rotation's synchronization was measured too.
    wait_for(
        Duration::from_secs(20),
        "the rotation's lag observed in B",
        || async { (lag_count(&c).await > before).then_some(()) },
    )
    .await;
}
