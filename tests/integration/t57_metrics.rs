//! `GET /metrics` of every node's AWS endpoint and of the gateway (docs/OBSERVABILITY.md),
//! scraped from a running two-Region cluster and read with the strict text-format parser of
//! `kmsim_sim::scrape`: one leader per Region, calls counted by operation and code on the
//! gateway and on the nodes that served them, histograms with their buckets, the `region` and
//! `node` labels on every series, keys by state, synchronizer deliveries; a new leader after
//! the leader is killed, and a synchronizer backlog while a Region is cut off that drains
//! after the heal.

use std::collections::BTreeMap;
use std::time::Duration;

use http::StatusCode;
use kmsim_proto::kms::v1 as pb;
use kmsim_sim::aws_client::AwsJsonClient;
use kmsim_sim::scrape::{scrape, Scrape};
use serde_json::json;

use crate::harness::{ok, wait_for, Cluster};
use crate::t70_multi_region::{create_mrk, replicate, A, B};
use crate::t71_multi_region_faults::chaos;

/// A scrape of `url`'s `/metrics` (any Region's signer: the path needs no signature).
async fn scrape_of(c: &Cluster, url: &str) -> Scrape {
    let client: AwsJsonClient = c.raw(url, A);
    scrape(&client)
        .await
        .unwrap_or_else(|e| panic!("scrape of {url}: {e}"))
}

/// The scrapes of every node of `region`, by node id.
async fn scrape_region(c: &Cluster, region: &str) -> BTreeMap<u64, Scrape> {
    scrape_nodes(c, region, &c.ids(region)).await
}

/// The scrapes of nodes `ids` of `region`, by node id.
async fn scrape_nodes(c: &Cluster, region: &str, ids: &[u64]) -> BTreeMap<u64, Scrape> {
    let mut out = BTreeMap::new();
    for id in ids {
        out.insert(*id, scrape_of(c, &c.aws_url(region, *id)).await);
    }
    out
}

/// One gauge or counter without labels of its own, of one scrape.
fn single(s: &Scrape, name: &str) -> f64 {
    s.value(name, &[])
        .unwrap_or_else(|| panic!("no single series {name}"))
}

/// `name` with the labels `with`, summed over `scrapes`.
fn total<'a>(
    scrapes: impl IntoIterator<Item = &'a Scrape>,
    name: &str,
    with: &[(&str, &str)],
) -> f64 {
    scrapes.into_iter().map(|s| s.sum(name, with)).sum()
}

/// `kmsim_api_requests_total` of one operation and code, summed over `scrapes`.
fn requests<'a>(scrapes: impl IntoIterator<Item = &'a Scrape>, operation: &str, code: &str) -> f64 {
    total(
        scrapes,
        "kmsim_api_requests_total",
        &[("operation", operation), ("code", code)],
    )
}

/// `kmsim_sync_deliveries_total` to `destination` with `result`, over the nodes of `region`.
async fn deliveries(c: &Cluster, region: &str, destination: &str, result: &str) -> f64 {
    total(
        scrape_region(c, region).await.values(),
        "kmsim_sync_deliveries_total",
        &[("destination", destination), ("result", result)],
    )
}

/// Waits until every node of `region` knows a leader and exactly one says it is the leader,
/// as their metrics say; returns the leader's id.
async fn one_leader(c: &Cluster, region: &str) -> u64 {
    one_leader_among(c, region, &c.ids(region)).await
}

/// [`one_leader`] among nodes `ids` of `region` (the survivors of a kill).
async fn one_leader_among(c: &Cluster, region: &str, ids: &[u64]) -> u64 {
    wait_for(
        Duration::from_secs(30),
        "one leader in the metrics",
        || async {
            let scrapes = scrape_nodes(c, region, ids).await;
            let everyone_has_one = scrapes
                .values()
                .all(|s| s.value("kmsim_raft_has_leader", &[]) == Some(1.0));
            let leaders: Vec<u64> = scrapes
                .iter()
                .filter(|(_, s)| s.value("kmsim_raft_is_leader", &[]) == Some(1.0))
                .map(|(id, _)| *id)
                .collect();
            (everyone_has_one && leaders.len() == 1).then(|| leaders[0])
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_calls_by_operation_and_code_and_show_one_leader_per_region() {
    let c = Cluster::start(&[A, B], 3);
    // One leader per Region, every node following one, in the metrics as in the admin status.
    for region in [A, B] {
        let leader = one_leader(&c, region).await;
        let status = c.status(region, leader).await.expect("the leader answers");
        assert_eq!(status.role, "leader", "{region}: node {leader}");
    }

    let gw = c.gateway_url();
    let before_gw = scrape_of(&c, &gw).await;
    let before_a = scrape_region(&c, A).await;
    let in_a = c.raw(&gw, A);
    // Through the gateway: one CreateKey, three Encrypts, two DescribeKeys of a key that is
    // not there (NotFoundException), one ReplicateKey to B.
    let created = in_a
        .call("CreateKey", &json!({"MultiRegion": true}))
        .await
        .unwrap();
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    let key = created.json()["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..3 {
        let a = in_a
            .call("Encrypt", &json!({"KeyId": key, "Plaintext": "aGVsbG8="}))
            .await
            .unwrap();
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    }
    for _ in 0..2 {
        let a = in_a
            .call(
                "DescribeKey",
                &json!({"KeyId": "11111111-2222-3333-4444-555555555555"}),
            )
            .await
            .unwrap();
        assert_eq!(a.error_code().as_deref(), Some("NotFoundException"));
    }
    let replicated = in_a
        .call("ReplicateKey", &json!({"KeyId": key, "ReplicaRegion": B}))
        .await
        .unwrap();
    assert_eq!(replicated.status, StatusCode::OK, "{:?}", replicated.body);

    // The gateway counted each call once; the nodes of A that served them, once in all.
    let after_gw = scrape_of(&c, &gw).await;
    let after_a = scrape_region(&c, A).await;
    for (operation, code, n) in [
        ("CreateKey", "ok", 1.0),
        ("Encrypt", "ok", 3.0),
        ("DescribeKey", "NotFoundException", 2.0),
        ("ReplicateKey", "ok", 1.0),
        ("DescribeKey", "ok", 0.0),
    ] {
        let gateway =
            requests([&after_gw], operation, code) - requests([&before_gw], operation, code);
        assert_eq!(gateway, n, "gateway: {operation} {code}");
        let nodes = requests(after_a.values(), operation, code)
            - requests(before_a.values(), operation, code);
        assert_eq!(nodes, n, "nodes of {A}: {operation} {code}");
    }
    // The gateway's histogram: every bucket, cumulative (checked by the parser), its count
    // the calls.
    let encrypt = [("operation", "Encrypt")];
    let buckets: Vec<_> = after_gw
        .select("kmsim_api_request_duration_seconds_bucket", &encrypt)
        .collect();
    assert_eq!(buckets.len(), 17, "16 bounds and +Inf");
    assert_eq!(
        after_gw.value("kmsim_api_request_duration_seconds_count", &encrypt),
        Some(
            before_gw
                .value("kmsim_api_request_duration_seconds_count", &encrypt)
                .unwrap_or(0.0)
                + 3.0
        )
    );
    assert_eq!(
        after_gw.value("kmsim_api_inflight_requests", &[]),
        Some(0.0)
    );
    for s in &after_gw.samples {
        assert!(
            s.has(&[("region", "gateway"), ("node", "gateway")]),
            "{s:?}"
        );
    }
    assert!(
        !after_gw.types.contains_key("kmsim_raft_is_leader"),
        "the gateway has no Raft"
    );

    // A failed call on one node's own endpoint is counted there, not on the gateway.
    let node_url = c.aws_url(A, 2);
    let on_node = c
        .raw(&node_url, A)
        .call("Decrypt", &json!({"CiphertextBlob": "AAAA"}))
        .await
        .unwrap();
    let code = on_node.error_code().expect("a bad ciphertext fails");
    let node_after = scrape_of(&c, &node_url).await;
    assert_eq!(
        requests([&node_after], "Decrypt", &code) - requests([&after_a[&2]], "Decrypt", &code),
        1.0,
        "{code}"
    );
    assert_eq!(
        requests([&scrape_of(&c, &gw).await], "Decrypt", &code),
        requests([&after_gw], "Decrypt", &code)
    );

    // Every node: its own labels on every series, the Raft, state and process figures; keys
    // by state once every node applied the writes.
    c.settle(A).await;
    c.settle(B).await;
    for region in [A, B] {
        let scrapes = scrape_region(&c, region).await;
        for (id, s) in &scrapes {
            let node = id.to_string();
            for sample in &s.samples {
                assert!(
                    sample.has(&[("region", region), ("node", node.as_str())]),
                    "{region}/{id}: {sample:?}"
                );
            }
            let one = |name: &str| {
                s.value(name, &[])
                    .unwrap_or_else(|| panic!("{region}/{id}: no {name}"))
            };
            assert!(one("kmsim_raft_leader_changes_seen_total") >= 1.0);
            assert!(one("kmsim_raft_term") >= 1.0);
            assert!(one("kmsim_raft_last_applied_index") >= 1.0);
            assert!(one("kmsim_raft_last_log_index") >= one("kmsim_raft_last_applied_index"));
            assert!(one("kmsim_raft_apply_duration_seconds_count") >= 1.0);
            assert_eq!(
                s.select("kmsim_raft_apply_duration_seconds_bucket", &[])
                    .count(),
                17
            );
            assert_eq!(one("kmsim_faults_active"), 0.0);
            assert!(one("process_resident_memory_bytes") > 0.0);
            assert!(one("process_cpu_seconds_total") > 0.0);
            assert!(one("process_open_fds") > 0.0);
            assert!(one("kmsim_rocksdb_live_data_bytes") >= 0.0);
            assert!(one("kmsim_rocksdb_pending_compaction_bytes") >= 0.0);
            // The one key: the primary in A, its replica in B (Creating until its material
            // arrives, then Enabled).
            let keys = s.sum("kmsim_keys", &[]);
            assert_eq!(keys, 1.0, "{region}/{id}");
            if region == A {
                assert_eq!(s.value("kmsim_keys", &[("state", "Enabled")]), Some(1.0));
            }
            let other = if region == A { B } else { A };
            assert!(
                s.value("kmsim_sync_pending", &[("destination", other)])
                    .is_some(),
                "{region}/{id}: pending towards {other}"
            );
        }
    }
    // ReplicateKey delivered the replica to B from a node of A (at least that delivery).
    let delivered: f64 = deliveries(&c, A, B, "ok").await;
    assert!(delivered >= 1.0, "{delivered}");
    // Nothing is left to deliver once the replica holds the key's material.
    wait_for(
        Duration::from_secs(30),
        "no synchronization pending",
        || async {
            let scrapes = scrape_region(&c, A).await;
            scrapes
                .values()
                .all(|s| s.value("kmsim_sync_pending", &[("destination", B)]) == Some(0.0))
                .then_some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn only_get_metrics_is_served_beside_the_api() {
    let c = Cluster::start(&[A], 1);
    let url = c.aws_url(A, 1);
    let client = c.raw(&url, A);
    // Another GET path, and POST /metrics, are refused as before (only `POST /` is the API).
    for (method, path) in [("GET", "/"), ("GET", "/metricsx"), ("POST", "/metrics")] {
        let mut req = client.get(path).unwrap();
        *req.method_mut() = method.parse().unwrap();
        let a = client.send(req).await.unwrap();
        assert_ne!(a.status, StatusCode::OK, "{method} {path}");
        assert!(a.error_code().is_some(), "{method} {path}: {:?}", a.body);
    }
    let s = scrape(&client).await.unwrap();
    assert_eq!(
        s.sum(
            "kmsim_api_requests_total",
            &[("operation", "UnknownOperation")]
        ),
        3.0,
        "the refused requests are counted, the scrapes are not"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_follow_a_leader_kill_and_a_backlog_to_a_region_cut_off() {
    let c = Cluster::start(&[A, B], 3);
    c.leader(B).await;
    let key = create_mrk(&c, A, None).await.key_id.unwrap();
    replicate(&c, &key, A, B, "Enabled").await;

    // B cut off: a shared-property change of the primary is due to B and cannot be delivered.
    chaos(&c, &["partition", A, B]);
    for (id, s) in scrape_region(&c, A).await {
        assert_eq!(
            single(&s, "kmsim_faults_active"),
            3.0,
            "{A}/{id}: one link per node of {B}"
        );
    }
    let failed_before: f64 = deliveries(&c, A, B, "failed").await;
    ok(c.kms(A, 1)
        .enable_key_rotation(pb::EnableKeyRotationRequest {
            key_id: Some(key.clone()),
            rotation_period_in_days: Some(180),
        })
        .await);
    c.settle(A).await;
    for (id, s) in scrape_region(&c, A).await {
        assert_eq!(
            s.value("kmsim_sync_pending", &[("destination", B)]),
            Some(1.0),
            "{A}/{id}: the replica is behind"
        );
    }
    wait_for(
        Duration::from_secs(30),
        "failed deliveries to the cut-off Region",
        || async {
            let failed: f64 = deliveries(&c, A, B, "failed").await;
            (failed > failed_before).then_some(())
        },
    )
    .await;
    chaos(&c, &["heal"]);
    wait_for(
        Duration::from_secs(30),
        "the backlog drains after the heal",
        || async {
            scrape_region(&c, A)
                .await
                .values()
                .all(|s| {
                    s.value("kmsim_sync_pending", &[("destination", B)]) == Some(0.0)
                        && s.value("kmsim_faults_active", &[]) == Some(0.0)
                })
                .then_some(())
        },
    )
    .await;

    // The leader of A killed: the survivors see a new leader, and count the change.
    let leader = one_leader(&c, A).await;
    let survivors: Vec<u64> = c.ids(A).into_iter().filter(|id| *id != leader).collect();
    let before = scrape_nodes(&c, A, &survivors).await;
    c.kill(A, leader);
    let new_leader = one_leader_among(&c, A, &survivors).await;
    assert_ne!(new_leader, leader);
    for (id, s) in scrape_nodes(&c, A, &survivors).await {
        let seen = |s: &Scrape| single(s, "kmsim_raft_leader_changes_seen_total");
        assert!(
            seen(&s) > seen(&before[&id]),
            "{A}/{id}: no leader change counted"
        );
        assert!(single(&s, "kmsim_raft_term") > single(&before[&id], "kmsim_raft_term"));
        assert_eq!(single(&s, "kmsim_raft_has_leader"), 1.0);
    }
}
