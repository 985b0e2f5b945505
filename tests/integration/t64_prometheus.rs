//! A real Prometheus (Debian's `prometheus` package, which scripts/install-deps.sh installs)
//! scrapes a `kmsim up` cluster through the discovery file `kmsim up` writes, with the
//! committed deploy/observability/prometheus.yml and alerts.yml (docs/OBSERVABILITY.md
//! "Dashboards"): every node and the gateway are targets and up, `sum(kmsim_raft_is_leader)` is
//! the number of Regions, every query of the Grafana dashboard and every alert rule evaluates
//! against the live series; also over HTTPS (`--aws-tls`), verified against the CA the launcher
//! copies beside the targets. And promtool accepts the committed configuration, rules and rule
//! tests. Without `prometheus` and `promtool` on the PATH these tests fail, saying so.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use kmsim_sim::health::http_get;
use kmsim_sim::prometheus_sd::{self, TargetGroup};

use crate::harness::{wait_for, Cluster};
use crate::t59_containers::free_port;
use crate::t70_multi_region::{A, B};

/// deploy/observability/ in the repository.
fn observability_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/observability")
}

/// The path of `name` on the PATH; fails the test, saying how to install it, when absent.
fn tool(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: these tests need Debian's prometheus package \
                 (run scripts/install-deps.sh, or apt-get install prometheus)"
            )
        })
}

/// Runs promtool with `args` in `dir`; fails the test with its output unless it succeeds.
fn promtool(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(tool("promtool"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}: {text}");
    text
}

/// A Prometheus process of one test: its own storage, its own port. Killed (by its PID) on
/// drop.
struct Prometheus {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts Prometheus with the committed prometheus.yml, its two paths into the data
    /// directory (`../../.kmsim/prometheus/`) pointed at `data_dir`'s, and the committed
    /// alerts.yml.
    fn start(data_dir: &Path) -> Prometheus {
        let exe = tool("prometheus");
        let dir = tempfile::Builder::new()
            .prefix("kmsim-prometheus-")
            .tempdir()
            .unwrap();
        let committed =
            std::fs::read_to_string(observability_dir().join("prometheus.yml")).unwrap();
        let sd_dir = format!("{}/", data_dir.join(prometheus_sd::DIR).display());
        assert_eq!(
            committed.matches("../../.kmsim/prometheus/").count(),
            2,
            "the committed configuration names the targets and the CA under the default data directory"
        );
        let alerts = observability_dir().join("alerts.yml");
        let config = committed
            .replace("../../.kmsim/prometheus/", &sd_dir)
            .replace("  - alerts.yml", &format!("  - {}", alerts.display()));
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(exe)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        }
    }

    /// Its log so far (for failure messages).
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET <path>` of its HTTP API: the `data` of a `success` answer, or `None` (not up yet,
    /// or an error).
    async fn api(&self, path: &str) -> Option<Value> {
        let (status, body) = http_get(&format!("{}{path}", self.url), None, Duration::from_secs(5))
            .await
            .ok()?;
        let v: Value = serde_json::from_str(&body).ok()?;
        (status == 200 && v["status"] == "success").then(|| v["data"].clone())
    }

    /// An instant PromQL query: its result vector (`None` when the query failed).
    async fn query(&self, promql: &str) -> Option<Vec<Value>> {
        let data = self
            .api(&format!("/api/v1/query?query={}", encode(promql)))
            .await?;
        data["result"].as_array().cloned()
    }

    /// An instant query that must be valid PromQL: fails the test with Prometheus' error.
    async fn must_query(&self, promql: &str) -> Vec<Value> {
        if let Some(r) = self.query(promql).await {
            return r;
        }
        let url = format!("{}/api/v1/query?query={}", self.url, encode(promql));
        let answer = http_get(&url, None, Duration::from_secs(5)).await;
        panic!("query {promql} failed: {answer:?}");
    }

    /// The active targets, once every one of `want` many is up (with their labels).
    async fn targets_up(&self, want: usize) -> Vec<Value> {
        wait_for(
            Duration::from_secs(60),
            "every target up in Prometheus",
            || async {
                let data = self.api("/api/v1/targets?state=active").await?;
                let targets = data["activeTargets"].as_array()?.clone();
                (targets.len() == want && targets.iter().all(|t| t["health"] == "up"))
                    .then_some(targets)
            },
        )
        .await
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `s` percent-encoded for a URL's query (every byte but the unreserved ones).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The one value of a result vector of one series.
fn single(result: &[Value]) -> Option<f64> {
    match result {
        [one] => one["value"][1].as_str()?.parse().ok(),
        _ => None,
    }
}

/// (region, node, role) of every group of the cluster's discovery file, which must be what
/// `prometheus_sd::process_targets` makes of its topology (checked against the topology by
/// that module's unit tests): one group per node and one for the gateway, with `scheme`; and
/// the cluster's CA beside it.
fn check_discovery_file(c: &Cluster, scheme: &str) -> BTreeSet<(String, String, String)> {
    let groups: Vec<TargetGroup> =
        prometheus_sd::read(&prometheus_sd::targets_path(c.root())).unwrap();
    let t = c.dir.topology().unwrap();
    assert_eq!(groups, prometheus_sd::process_targets(&t));
    let nodes: usize = t.regions.iter().map(|r| r.nodes.len()).sum();
    assert_eq!(groups.len(), nodes + 1, "{groups:?}");
    for g in &groups {
        assert_eq!(g.label("__scheme__"), scheme, "{g:?}");
    }
    assert_eq!(
        std::fs::read(prometheus_sd::ca_path(c.root())).unwrap(),
        std::fs::read(t.tls.unwrap().ca_cert()).unwrap(),
        "the cluster's CA beside the targets"
    );
    groups
        .iter()
        .map(|g| {
            let l = |k: &str| g.label(k).to_string();
            (l("region"), l("node"), l("role"))
        })
        .collect()
}

/// The labels (region, node, role) Prometheus gave each active target.
fn target_labels(targets: &[Value]) -> BTreeSet<(String, String, String)> {
    targets
        .iter()
        .map(|t| {
            let l = &t["labels"];
            let s = |k: &str| l[k].as_str().unwrap_or_default().to_string();
            (s("region"), s("node"), s("role"))
        })
        .collect()
}

/// Every PromQL expression of the Grafana dashboard, its variables given values (all Regions,
/// a one-minute rate window).
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(observability_dir().join("grafana/kmsim.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            let e = t["expr"].as_str().unwrap();
            out.push(e.replace("$region", ".*").replace("$__rate_interval", "1m"));
        }
    }
    assert!(out.len() > 10, "{out:?}");
    out
}

/// A Prometheus scraping cluster `c` through its discovery file (checked first, with
/// `scheme`), once every node and the gateway are up in it with their labels and
/// `sum(kmsim_raft_is_leader)`, queried through its HTTP API, is the number of Regions: the
/// Prometheus and its active targets.
async fn scraped(c: &Cluster, scheme: &str) -> (Prometheus, Vec<Value>) {
    let expected = check_discovery_file(c, scheme);
    let p = Prometheus::start(c.root());
    let targets = p.targets_up(expected.len()).await;
    assert_eq!(target_labels(&targets), expected, "{}", p.log());
    let regions = c.dir.topology().unwrap().regions.len() as f64;
    wait_for(
        Duration::from_secs(60),
        "sum(kmsim_raft_is_leader) to be the number of Regions",
        || async {
            (single(&p.query("sum(kmsim_raft_is_leader)").await?) == Some(regions)).then_some(())
        },
    )
    .await;
    (p, targets)
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_a_kmsim_up_cluster_through_the_generated_discovery_file() {
    let c = Cluster::start(&[A, B], 3);
    let (p, _) = scraped(&c, "http").await;
    // One in each Region (an election on a loaded machine may briefly show two or none).
    wait_for(
        Duration::from_secs(60),
        "one leader in each Region",
        || async {
            let per_region = p.query("sum by (region) (kmsim_raft_is_leader)").await?;
            (per_region.len() == 2 && per_region.iter().all(|r| r["value"][1] == "1")).then_some(())
        },
    )
    .await;
    // honor_labels: the series keep the labels the processes gave them, with no exported_
    // copies beside the targets' labels.
    assert_eq!(
        single(
            &p.must_query("count(kmsim_raft_is_leader{job=\"kmsim\"})")
                .await
        ),
        Some(6.0)
    );
    let exported = p
        .must_query("count({job=\"kmsim\", exported_region=~\".+\"} or {job=\"kmsim\", exported_node=~\".+\"})")
        .await;
    assert!(exported.is_empty(), "{exported:?}");
    assert_eq!(
        single(
            &p.must_query(
                "sum(up{job=\"kmsim\", role=\"gateway\", region=\"gateway\", node=\"gateway\"})"
            )
            .await
        ),
        Some(1.0)
    );

    // Every query of the dashboard is valid PromQL on these series, and the ones every
    // healthy cluster answers have data.
    for q in dashboard_queries() {
        p.must_query(&q).await;
    }
    assert!(!p
        .must_query("sum by (region) (kmsim_raft_term{region=~\".*\"})")
        .await
        .is_empty());

    // The alert rules are loaded and evaluate cleanly against the live series; none fires.
    let rules = wait_for(
        Duration::from_secs(60),
        "every alert rule evaluated",
        || async {
            let data = p.api("/api/v1/rules").await?;
            let rules: Vec<Value> = data["groups"]
                .as_array()?
                .iter()
                .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                .collect();
            (!rules.is_empty() && rules.iter().all(|r| r["health"] == "ok")).then_some(rules)
        },
    )
    .await;
    let names: BTreeSet<&str> = rules.iter().filter_map(|r| r["name"].as_str()).collect();
    for want in [
        "KmsimRegionNoLeader",
        "KmsimFrequentLeaderChanges",
        "KmsimSyncBacklogGrowing",
        "KmsimSyncLagHigh",
        "KmsimNodeDown",
    ] {
        assert!(names.contains(want), "{names:?}");
    }
    for r in &rules {
        assert_ne!(r["state"], "firing", "{r}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_https_endpoints_verified_against_the_ca_beside_the_targets() {
    let c = Cluster::start_edited(&[A], 1, |t| t.tls.as_mut().unwrap().aws_https = true);
    let (_p, targets) = scraped(&c, "https").await;
    for t in &targets {
        assert!(
            t["scrapeUrl"].as_str().unwrap().starts_with("https://"),
            "{t}"
        );
    }
}

#[test]
fn promtool_accepts_the_committed_configuration_rules_and_rule_tests() {
    let dir = observability_dir();
    let out = promtool(&dir, &["check", "config", "prometheus.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    let out = promtool(&dir, &["check", "rules", "alerts.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    let out = promtool(&dir, &["test", "rules", "alerts_test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
}
