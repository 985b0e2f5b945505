//! The discovery file from a topology, written and rewritten; and the committed
//! deploy/observability/ files (the Grafana dashboard, the alert rules) against the names the
//! node's and the gateway's registries serve, so neither can drift from the code.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::sync::Arc;

use kmsim_node::metrics::{DeliveryLabels, LagLabels, NodeMetrics, Sample, Sampler};

use super::*;
use crate::cluster::ClusterDir;
use crate::scrape::Scrape;

/// A new cluster of processes in a temporary directory: 3 nodes in us-east-1, 2 in eu-west-1.
fn cluster(aws_tls: bool) -> (tempfile::TempDir, ClusterDir, Topology) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ClusterDir::new(tmp.path().join("c"));
    let regions = [("us-east-1".to_string(), 3), ("eu-west-1".to_string(), 2)];
    dir.create(&regions, 0, 0, false, aws_tls).unwrap();
    let topology = dir.topology().unwrap();
    (tmp, dir, topology)
}

#[test]
fn every_node_and_the_gateway_is_a_target_labelled_as_its_series_are() {
    let (_tmp, _dir, t) = cluster(false);
    let groups = process_targets(&t);
    assert_eq!(groups.len(), 6, "{groups:?}");
    let mut want = Vec::new();
    for r in &t.regions {
        for n in &r.nodes {
            want.push((
                n.aws_advertise_addr().unwrap(),
                r.name.clone(),
                n.id.to_string(),
                "node",
            ));
        }
    }
    let gateway = t.endpoint.as_ref().unwrap().listen.to_string();
    want.push((gateway, "gateway".into(), "gateway".into(), "gateway"));
    let got: Vec<_> = groups
        .iter()
        .map(|g| {
            assert_eq!(g.targets.len(), 1, "{g:?}");
            assert_eq!(g.label("__scheme__"), "http", "{g:?}");
            assert_eq!(
                g.labels.len(),
                4,
                "only the scheme, region, node, role: {g:?}"
            );
            (
                g.targets[0].clone(),
                g.label("region").to_string(),
                g.label("node").to_string(),
                g.label("role"),
            )
        })
        .collect();
    assert_eq!(got, want);
}

#[test]
fn a_cluster_with_https_endpoints_is_scraped_over_https() {
    let (_tmp, _dir, t) = cluster(true);
    for g in process_targets(&t) {
        assert_eq!(g.label("__scheme__"), "https", "{g:?}");
    }
}

#[test]
fn in_containers_only_the_gateway_is_reachable_from_the_host() {
    let (_tmp, _dir, t) = cluster(false);
    let groups = container_targets(&t, 4599);
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].targets, ["127.0.0.1:4599"]);
    assert_eq!(groups[0].label("role"), "gateway");
    assert_eq!(groups[0].label("region"), "gateway");
}

#[test]
fn the_file_and_the_ca_are_written_atomically_and_follow_a_rewritten_topology() {
    let (_tmp, dir, t) = cluster(false);
    let groups = process_targets(&t);
    let path = write(dir.root(), &t, &groups).unwrap();
    assert_eq!(path, dir.root().join("prometheus").join("targets.json"));
    assert_eq!(read(&path).unwrap(), groups);
    // Plain JSON that any reader takes: a list of {targets, labels}.
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(v
        .as_array()
        .unwrap()
        .iter()
        .all(|g| g["targets"].is_array() && g["labels"]["role"].is_string()));
    let ca = ca_path(dir.root());
    assert_eq!(
        std::fs::read(&ca).unwrap(),
        std::fs::read(t.tls.as_ref().unwrap().ca_cert()).unwrap()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for p in [&path, &ca] {
            let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644, "{}", p.display());
        }
    }

    // The topology is rewritten (a node moves to another port, a Region loses a node): the
    // next write says so, and leaves no temporary file behind.
    let mut on_disk =
        Topology::parse(&std::fs::read_to_string(dir.topology_path()).unwrap()).unwrap();
    let moved: std::net::SocketAddr = "127.0.0.1:1".parse().unwrap();
    on_disk.regions[0].nodes[0].aws_listen = Some(moved);
    on_disk.regions[1].nodes.pop();
    std::fs::write(dir.topology_path(), on_disk.to_toml()).unwrap();
    let t2 = dir.topology().unwrap();
    write(dir.root(), &t2, &process_targets(&t2)).unwrap();
    let again = read(&path).unwrap();
    assert_eq!(again.len(), 5);
    assert_eq!(again[0].targets, ["127.0.0.1:1"]);
    let names: Vec<String> = std::fs::read_dir(dir.root().join("prometheus"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, ["ca.crt", "targets.json"]);

    // Without a [tls] table there is no CA to copy, and a stale one goes.
    let mut plain = t2.clone();
    plain.tls = None;
    write(dir.root(), &plain, &process_targets(&plain)).unwrap();
    assert!(!ca.exists());
}

#[test]
fn a_file_that_is_not_a_target_list_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("targets.json");
    std::fs::write(&p, r#"{"targets": []}"#).unwrap();
    assert!(read(&p).is_err());
}

// ---- deploy/observability/ against the registries ----

/// deploy/observability/ in the repository.
fn observability_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/observability")
}

struct Fixed(Sample);

impl Sampler for Fixed {
    fn sample(&self) -> Sample {
        self.0.clone()
    }
}

/// The families a node and the gateway serve, as parsed from their own text (`# TYPE` lines).
/// A family with labels is declared only once it has a series, so every one is given one
/// here, and every scrape-time figure is present (RocksDB's included).
fn served() -> Scrape {
    let node = NodeMetrics::node("us-east-1", 1);
    let gateway = NodeMetrics::gateway();
    for m in [&node, &gateway] {
        m.api.begin().end("Encrypt", "ok");
    }
    node.sync_deliveries
        .get_or_create(&DeliveryLabels {
            destination: "eu-west-1".into(),
            result: "ok",
        })
        .inc();
    node.sync_lag
        .get_or_create(&LagLabels {
            source: "eu-west-1".into(),
            destination: "us-east-1".into(),
        })
        .observe(0.5);
    let mut sample = Sample {
        keys: vec![("Enabled", 1)],
        material_cache_entries: 1,
        faults_active: 1,
        sync_pending: vec![("eu-west-1".into(), 1)],
        ..Sample::default()
    };
    sample.engine.live_data_bytes = Some(1);
    sample.engine.pending_compaction_bytes = Some(1);
    node.set_sampler(Arc::new(Fixed(sample)));
    let mut all = Scrape::parse(&node.encode()).unwrap();
    all.types
        .extend(Scrape::parse(&gateway.encode()).unwrap().types);
    all
}

/// Every `kmsim_…` and `process_…` name in `text`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let is_name = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut i = 0;
    while i < bytes.len() {
        if is_name(bytes[i]) && (i == 0 || !is_name(bytes[i - 1])) {
            let start = i;
            while i < bytes.len() && is_name(bytes[i]) {
                i += 1;
            }
            let word = &text[start..i];
            if word.starts_with("kmsim_") || word.starts_with("process_") {
                out.insert(word.to_string());
            }
        } else {
            i += 1;
        }
    }
    out
}

/// Every string in a JSON value.
fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// Names of `used` that no registry serves.
fn unknown(used: &BTreeSet<String>) -> Vec<String> {
    let served = served();
    used.iter()
        .filter(|n| served.family_of(n).is_none())
        .cloned()
        .collect()
}

#[test]
fn the_metric_name_scanner_finds_names_in_promql() {
    assert_eq!(
        metric_names("histogram_quantile(0.99, sum by (le) (rate(kmsim_api_request_duration_seconds_bucket{node!=\"gateway\"}[1m]))) + process_open_fds"),
        ["kmsim_api_request_duration_seconds_bucket", "process_open_fds"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    // The check itself: a misspelt name is caught.
    let wrong: BTreeSet<String> = [
        "kmsim_raft_is_leader",
        "kmsim_raft_leader",
        "kmsim_keys_total",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(unknown(&wrong), ["kmsim_keys_total", "kmsim_raft_leader"]);
}

#[test]
fn every_metric_the_dashboard_queries_is_served() {
    let path = observability_dir().join("grafana/kmsim.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 36);
    let vars: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert!(
        vars.contains(&"datasource") && vars.contains(&"region"),
        "{vars:?}"
    );
    // Every panel with queries has a PromQL expression in each, from the datasource variable.
    let panels = dashboard["panels"].as_array().unwrap();
    let mut exprs = Vec::new();
    for p in panels {
        if p["type"] == "row" {
            continue;
        }
        let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{p}"));
        assert!(!targets.is_empty(), "{}", p["title"]);
        assert_eq!(p["datasource"]["uid"], "${datasource}", "{}", p["title"]);
        for t in targets {
            let e = t["expr"]
                .as_str()
                .unwrap_or_else(|| panic!("{}", p["title"]));
            assert!(!e.trim().is_empty(), "{}", p["title"]);
            exprs.push(e.to_string());
        }
    }
    let mut all = Vec::new();
    strings(&dashboard, &mut all);
    let used: BTreeSet<String> = all.iter().flat_map(|s| metric_names(s)).collect();
    assert_eq!(
        unknown(&used),
        Vec::<String>::new(),
        "names in {}",
        path.display()
    );
    // What the dashboard is for: each of these is queried by some panel.
    let queried: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    for name in [
        "kmsim_raft_is_leader",
        "kmsim_raft_has_leader",
        "kmsim_raft_term",
        "kmsim_raft_leader_changes_seen_total",
        "kmsim_api_requests_total",
        "kmsim_api_request_duration_seconds_bucket",
        "kmsim_sync_pending",
        "kmsim_sync_lag_seconds_bucket",
        "kmsim_faults_active",
        "kmsim_raft_apply_duration_seconds_bucket",
    ] {
        assert!(queried.contains(name), "no panel queries {name}");
    }
}

#[test]
fn every_metric_the_alerts_ask_is_served_and_every_alert_is_complete() {
    let path = observability_dir().join("alerts.yml");
    let rules: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut alerts = Vec::new();
    let mut used = BTreeSet::new();
    for g in rules["groups"].as_sequence().unwrap() {
        for r in g["rules"].as_sequence().unwrap() {
            let name = r["alert"].as_str().unwrap().to_string();
            let expr = r["expr"].as_str().unwrap();
            used.extend(metric_names(expr));
            assert!(r["for"].as_str().is_some(), "{name}: no `for`");
            let severity = r["labels"]["severity"].as_str().unwrap();
            assert!(["warning", "critical"].contains(&severity), "{name}");
            for a in ["summary", "description"] {
                assert!(r["annotations"][a].as_str().is_some(), "{name}: no {a}");
            }
            alerts.push(name);
        }
    }
    assert_eq!(
        unknown(&used),
        Vec::<String>::new(),
        "names in {}",
        path.display()
    );
    for want in [
        "KmsimRegionNoLeader",
        "KmsimFrequentLeaderChanges",
        "KmsimSyncBacklogGrowing",
        "KmsimSyncLagHigh",
    ] {
        assert!(alerts.iter().any(|a| a == want), "no {want} in {alerts:?}");
    }
}
