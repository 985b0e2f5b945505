//! The Prometheus file-based service discovery file `kmsim up` writes into the data directory
//! (docs/OBSERVABILITY.md "Dashboards", deploy/observability/):
//!
//! ```text
//! <data-dir>/prometheus/targets.json   one target group per node and one for the gateway
//! <data-dir>/prometheus/ca.crt         the cluster's CA certificate (public), for HTTPS scrapes
//! ```
//!
//! `targets.json` is in Prometheus' `file_sd_configs` format: a list of groups, each with its
//! `targets` (`host:port` of an AWS JSON endpoint, which serves `GET /metrics`) and its
//! `labels`. A node's group is labelled `region`, `node` (its id) and `role="node"`; the
//! gateway's `region="gateway"`, `node="gateway"`, `role="gateway"`: the same values the
//! processes put on every series they serve. The scrape configuration sets `honor_labels:
//! true`, so the scraped `region` and `node` are kept as they are (no `exported_region`), and
//! the target's labels name the series Prometheus makes itself (`up`, `scrape_duration_seconds`)
//! for a node that does not answer. Every group also sets `__scheme__` (`https` for a cluster
//! made with `--aws-tls`, else `http`), so one configuration scrapes either kind; over HTTPS
//! Prometheus verifies the endpoints against `ca.crt` (every AWS endpoint's certificate
//! carries its address as a SAN).
//!
//! Both files are written to a temporary file in the same directory and renamed over the old
//! one, so Prometheus (which watches the file) never reads half of it; `kmsim up` rewrites them
//! on every start from the topology it starts, so an edited topology is followed. `kmsim down`
//! leaves them: the cluster's topology is still there, and Prometheus shows its targets down.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use kmsim_node::config::Topology;
use kmsim_node::metrics::GATEWAY_LABEL;

use crate::cluster::{io, ClusterError};

/// The directory under the data directory: `prometheus`.
pub const DIR: &str = "prometheus";

/// The discovery file's name in [`DIR`].
pub const TARGETS_FILE: &str = "targets.json";

/// The CA certificate's name in [`DIR`].
pub const CA_FILE: &str = "ca.crt";

/// The `role` of a node's target group.
pub const ROLE_NODE: &str = "node";

/// The `role` of the gateway's target group.
pub const ROLE_GATEWAY: &str = "gateway";

/// One target group of a `file_sd_configs` file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetGroup {
    /// `host:port` of each target.
    pub targets: Vec<String>,
    /// Labels of every target of the group.
    pub labels: BTreeMap<String, String>,
}

impl TargetGroup {
    fn new(target: String, scheme: &str, region: &str, node: &str, role: &str) -> TargetGroup {
        let labels = [
            ("__scheme__", scheme),
            ("region", region),
            ("node", node),
            ("role", role),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        TargetGroup {
            targets: vec![target],
            labels,
        }
    }

    /// The value of label `name` ("" when absent).
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map(String::as_str).unwrap_or("")
    }
}

/// The groups of a cluster of local processes (`kmsim up`): every node at its AWS endpoint's
/// address (nodes without one are left out) and the gateway at its listening address, in the
/// topology's order.
pub fn process_targets(topology: &Topology) -> Vec<TargetGroup> {
    let scheme = topology.aws_scheme();
    let mut groups: Vec<TargetGroup> = topology
        .regions
        .iter()
        .flat_map(|r| {
            r.nodes.iter().filter_map(move |n| {
                let addr = n.aws_advertise_addr()?;
                Some(TargetGroup::new(
                    addr,
                    scheme,
                    &r.name,
                    &n.id.to_string(),
                    ROLE_NODE,
                ))
            })
        })
        .collect();
    if let Some(endpoint) = &topology.endpoint {
        groups.push(gateway_group(endpoint.listen.to_string(), scheme));
    }
    groups
}

/// The groups of a cluster in containers (`kmsim up --runtime docker`) as seen from the host:
/// the gateway only, at the port it publishes on 127.0.0.1. The nodes' ports are published
/// nowhere and their names resolve only on the cluster's Docker networks (see
/// deploy/observability/README.md for a Prometheus on those networks).
pub fn container_targets(topology: &Topology, gateway_port: u16) -> Vec<TargetGroup> {
    vec![gateway_group(
        format!("127.0.0.1:{gateway_port}"),
        topology.aws_scheme(),
    )]
}

fn gateway_group(target: String, scheme: &str) -> TargetGroup {
    TargetGroup::new(target, scheme, GATEWAY_LABEL, GATEWAY_LABEL, ROLE_GATEWAY)
}

/// `<data-dir>/prometheus/targets.json`
pub fn targets_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR).join(TARGETS_FILE)
}

/// `<data-dir>/prometheus/ca.crt`
pub fn ca_path(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR).join(CA_FILE)
}

/// The discovery file's text: the groups as a JSON list, one line per group.
pub fn render(groups: &[TargetGroup]) -> String {
    let lines: Vec<String> = groups
        .iter()
        .map(|g| serde_json::to_string(g).expect("invariant: strings and maps serialize"))
        .collect();
    format!("[\n  {}\n]\n", lines.join(",\n  "))
}

/// Reads a discovery file back.
pub fn read(path: &Path) -> Result<Vec<TargetGroup>, ClusterError> {
    let text = std::fs::read_to_string(path).map_err(io(format!("read {}", path.display())))?;
    serde_json::from_str(&text)
        .map_err(|e| ClusterError::Invalid(format!("{}: not a file_sd list: {e}", path.display())))
}

/// Writes `groups` to `<data-dir>/prometheus/targets.json` and, when `topology` has a `[tls]`
/// table, its CA certificate to `<data-dir>/prometheus/ca.crt` (a stale one is removed when it
/// has none); each atomically, readable by everyone (0644: neither is secret). `topology` must
/// be loaded from its file (paths resolved), as [`crate::cluster::ClusterDir::topology`] does.
pub fn write(
    data_dir: &Path,
    topology: &Topology,
    groups: &[TargetGroup],
) -> Result<PathBuf, ClusterError> {
    let dir = data_dir.join(DIR);
    std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
    // The CA first: a Prometheus whose scrape pool could not read it retries when the targets
    // change, so it must be in place before they do.
    let ca = ca_path(data_dir);
    match &topology.tls {
        Some(tls) => {
            let from = tls.ca_cert();
            let pem = std::fs::read(&from).map_err(io(format!("read {}", from.display())))?;
            replace(&ca, &pem)?;
        }
        None => match std::fs::remove_file(&ca) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(io(format!("remove {}", ca.display()))(e))
            }
            _ => {}
        },
    }
    let targets = targets_path(data_dir);
    replace(&targets, render(groups).as_bytes())?;
    Ok(targets)
}

/// Replaces `path` with `bytes` through a temporary file in its directory and a rename.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), ClusterError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let what = || format!("write {}", path.display());
    let mut tmp = tempfile::Builder::new()
        .prefix(".kmsim-")
        .tempfile_in(dir)
        .map_err(io(what()))?;
    tmp.write_all(bytes).map_err(io(what()))?;
    tmp.as_file().sync_all().map_err(io(what()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))
            .map_err(io(what()))?;
    }
    tmp.persist(path).map_err(|e| io(what())(e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests;
