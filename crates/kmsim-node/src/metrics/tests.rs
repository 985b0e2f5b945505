//! The registry's text: names, types, the `region`/`node` labels, counts and buckets.

use super::*;

/// The sample lines of `text` whose name is `name` (labels included in each line).
fn lines<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .collect()
}

struct Fixed(Sample);

impl Sampler for Fixed {
    fn sample(&self) -> Sample {
        self.0.clone()
    }
}

#[test]
fn every_series_of_a_node_carries_its_region_and_node() {
    let m = NodeMetrics::node("us-east-1", 2);
    m.raft.proposals_failed.inc();
    let text = m.encode();
    let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(samples.len() > 10, "{text}");
    for s in samples {
        assert!(
            s.contains(r#"region="us-east-1""#) && s.contains(r#"node="2""#),
            "{s}"
        );
    }
    assert!(
        text.contains("# TYPE kmsim_raft_proposals_failed_total counter"),
        "{text}"
    );
    assert_eq!(
        lines(&text, "kmsim_raft_proposals_failed_total"),
        [r#"kmsim_raft_proposals_failed_total{region="us-east-1",node="2"} 1"#]
    );
}

#[test]
fn requests_are_counted_by_operation_and_code_and_timed_in_buckets() {
    let m = NodeMetrics::gateway();
    m.api.begin().end("Encrypt", "ok");
    m.api.begin().end("Encrypt", "ok");
    let in_flight = m.api.begin();
    m.api.begin().end("Decrypt", "NotFoundException");
    let text = m.encode();
    let prefix = r#"region="gateway",node="gateway""#;
    let mut requests = lines(&text, "kmsim_api_requests_total");
    requests.sort();
    assert_eq!(
        requests,
        [
            format!(
                r#"kmsim_api_requests_total{{{prefix},operation="Decrypt",code="NotFoundException"}} 1"#
            ),
            format!(r#"kmsim_api_requests_total{{{prefix},operation="Encrypt",code="ok"}} 2"#),
        ]
    );
    assert_eq!(
        lines(&text, "kmsim_api_inflight_requests"),
        [format!("kmsim_api_inflight_requests{{{prefix}}} 1")]
    );
    drop(in_flight);
    assert!(m
        .encode()
        .contains(&format!("kmsim_api_inflight_requests{{{prefix}}} 0")));
    let buckets = lines(&text, "kmsim_api_request_duration_seconds_bucket");
    // 16 bounds and +Inf, for each of the two operations.
    assert_eq!(buckets.len(), 2 * 17, "{text}");
    assert!(text.contains(&format!(
        r#"kmsim_api_request_duration_seconds_bucket{{{prefix},operation="Encrypt",le="+Inf"}} 2"#
    )));
    assert!(text.contains(&format!(
        r#"kmsim_api_request_duration_seconds_count{{{prefix},operation="Encrypt"}} 2"#
    )));
    // The gateway has no Raft.
    assert!(lines(&text, "kmsim_raft_has_leader").is_empty());
}

#[test]
fn leader_changes_are_counted_as_etcd_counts_them() {
    let m = RaftMetrics::default();
    let none = RaftView::default();
    let led_by = |id| RaftView {
        leader: Some(id),
        term: id,
        ..RaftView::default()
    };
    m.observe(&none, &led_by(1)); // the first leader seen counts
    m.observe(&led_by(1), &led_by(1)); // no change
    m.observe(&led_by(1), &none); // leader lost: not a change yet
    m.observe(&none, &led_by(1)); // the same leader again after none counts
    m.observe(&led_by(1), &led_by(3));
    assert_eq!(m.leader_changes.get(), 3);
    assert_eq!(
        (m.has_leader.get(), m.is_leader.get(), m.term.get()),
        (1, 0, 3)
    );
    m.observe(
        &led_by(3),
        &RaftView {
            leader: Some(2),
            is_leader: true,
            term: 4,
            last_log_index: Some(10),
            last_applied_index: Some(9),
        },
    );
    assert_eq!(m.is_leader.get(), 1);
    assert_eq!(
        (m.last_log_index.get(), m.last_applied_index.get()),
        (10, 9)
    );
}

#[test]
fn applies_and_snapshots_are_timed_through_the_store_observer() {
    let m = NodeMetrics::node("eu-west-1", 1);
    let observer: &dyn StoreObserver = &m.raft;
    observer.applied(3, Duration::from_micros(150));
    observer.snapshot(SnapshotKind::Build, Duration::from_millis(20));
    let text = m.encode();
    assert!(
        text.contains(
            r#"kmsim_raft_apply_duration_seconds_bucket{region="eu-west-1",node="1",le="0.0002"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"kmsim_raft_apply_duration_seconds_bucket{region="eu-west-1",node="1",le="0.0001"} 0"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"kmsim_raft_snapshot_duration_seconds_count{region="eu-west-1",node="1",kind="build"} 1"#
    ), "{text}");
}

#[test]
fn scrape_time_figures_come_from_the_sampler_once_it_is_set() {
    let m = NodeMetrics::node("us-west-2", 3);
    assert!(
        lines(&m.encode(), "kmsim_keys").is_empty(),
        "no sampler yet"
    );
    m.set_sampler(Arc::new(Fixed(Sample {
        keys: vec![("Enabled", 4), ("Disabled", 0)],
        material_cache_entries: 2,
        authz_decisions: crate::metrics::AuthzDecisions {
            hits: 7,
            misses: 2,
            uncacheable: 1,
            entries: 2,
        },
        faults_active: 1,
        sync_pending: vec![("eu-west-1".into(), 5)],
        engine: EngineStats {
            live_data_bytes: Some(4096),
            pending_compaction_bytes: None,
        },
    })));
    let text = m.encode();
    let l = r#"region="us-west-2",node="3""#;
    assert_eq!(
        lines(&text, "kmsim_keys"),
        [
            format!(r#"kmsim_keys{{{l},state="Enabled"}} 4"#),
            format!(r#"kmsim_keys{{{l},state="Disabled"}} 0"#),
        ]
    );
    assert_eq!(
        lines(&text, "kmsim_material_cache_entries"),
        [format!("kmsim_material_cache_entries{{{l}}} 2")]
    );
    assert_eq!(
        lines(&text, "kmsim_authz_decisions_total"),
        [
            format!(r#"kmsim_authz_decisions_total{{{l},result="hit"}} 7"#),
            format!(r#"kmsim_authz_decisions_total{{{l},result="miss"}} 2"#),
            format!(r#"kmsim_authz_decisions_total{{{l},result="uncacheable"}} 1"#),
        ]
    );
    assert_eq!(
        lines(&text, "kmsim_authz_decision_cache_entries"),
        [format!("kmsim_authz_decision_cache_entries{{{l}}} 2")]
    );
    assert_eq!(
        lines(&text, "kmsim_faults_active"),
        [format!("kmsim_faults_active{{{l}}} 1")]
    );
    assert_eq!(
        lines(&text, "kmsim_sync_pending"),
        [format!(
            r#"kmsim_sync_pending{{{l},destination="eu-west-1"}} 5"#
        )]
    );
    assert_eq!(
        lines(&text, "kmsim_rocksdb_live_data_bytes"),
        [format!("kmsim_rocksdb_live_data_bytes{{{l}}} 4096")]
    );
    assert!(
        !text.contains("kmsim_rocksdb_pending_compaction_bytes"),
        "an unknown figure is left out"
    );
    assert!(text.contains("# TYPE kmsim_keys gauge"), "{text}");
}

#[test]
fn the_process_figures_are_in_every_registry() {
    for text in [
        NodeMetrics::gateway().encode(),
        NodeMetrics::node("r", 1).encode(),
    ] {
        for name in [
            "process_resident_memory_bytes",
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_max_fds",
        ] {
            assert_eq!(lines(&text, name).len(), 1, "{name} in {text}");
        }
    }
}
