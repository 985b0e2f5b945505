//! The objects of the manifests: the kustomization with its generators, each Region's
//! Services, StatefulSet and PodDisruptionBudget, the gateway's Deployment and Service.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use kmsim_node::config::{NodeEntry, RegionConfig, Topology};

use super::{
    region_file, KubernetesSpec, Manifest, PodNames, GATEWAY_FILE, KUSTOMIZATION_FILE,
    NAMESPACE_FILE, NODE_STORAGE, RUN_AS,
};
use crate::cluster::default_credentials;
use crate::container::image::CLUSTER_DIR;
use crate::container::{project, ContainerError, CLUSTER_LABEL, REGION_LABEL};

/// Every manifest file, kustomization first (the topology was checked by the caller).
pub(super) fn all(
    topology: &Topology,
    spec: &KubernetesSpec,
) -> Result<Vec<Manifest>, ContainerError> {
    let names = &spec.names;
    let holder = TopologyHolder::for_topology(topology);
    let mut out = vec![Manifest {
        file: KUSTOMIZATION_FILE.into(),
        documents: vec![kustomization(topology, names, holder)?],
    }];
    out.push(Manifest {
        file: NAMESPACE_FILE.into(),
        documents: vec![json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": names.namespace, "labels": labels(names, "cluster", None)},
        })],
    });
    for r in &topology.regions {
        out.push(Manifest {
            file: region_file(&r.name),
            documents: region_documents(topology, r, spec, holder)?,
        });
    }
    out.push(Manifest {
        file: GATEWAY_FILE.into(),
        documents: gateway_documents(topology, spec, holder)?,
    });
    Ok(out)
}

/// Where the topology is kept in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TopologyHolder {
    /// A ConfigMap: the topology's only credentials are the public `test`/`test`.
    ConfigMap,
    /// A Secret: the topology holds other credentials.
    Secret,
}

impl TopologyHolder {
    fn for_topology(topology: &Topology) -> TopologyHolder {
        let public = default_credentials(&topology.account);
        if topology.credentials.iter().all(|c| *c == public) {
            TopologyHolder::ConfigMap
        } else {
            TopologyHolder::Secret
        }
    }

    /// The pod volume of the topology.
    fn volume(self, names: &PodNames) -> Value {
        let items = json!([{"key": TOPOLOGY_FILE, "path": TOPOLOGY_FILE}]);
        match self {
            TopologyHolder::ConfigMap => json!({
                "name": "topology",
                "configMap": {"name": names.topology(), "items": items},
            }),
            TopologyHolder::Secret => json!({
                "name": "topology",
                "secret": {"secretName": names.topology(), "items": items, "defaultMode": SECRET_MODE},
            }),
        }
    }
}

/// The topology's file name, in the cluster directory and as the ConfigMap's key.
const TOPOLOGY_FILE: &str = "topology.toml";

/// The mode of files from Secrets: readable by the owner (root) and the group (`fsGroup`, the
/// containers' group), 0440.
const SECRET_MODE: u32 = 0o440;

/// The cluster directory's subdirectory every key file must be in: it is mounted from Secrets.
const KEYS_DIR: &str = "keys";

/// The labels of the cluster's objects; `component` is `node`, `gateway` or `cluster`.
fn labels(names: &PodNames, component: &str, region: Option<&str>) -> Value {
    let mut l = json!({
        "app.kubernetes.io/name": "kmsim",
        "app.kubernetes.io/instance": names.cluster,
        "app.kubernetes.io/component": component,
        CLUSTER_LABEL: names.cluster,
    });
    if let Some(r) = region {
        l[REGION_LABEL] = json!(r);
    }
    l
}

/// The labels that select a Region's pods (or, without a Region, the gateway's).
fn selector(names: &PodNames, region: Option<&str>) -> Value {
    match region {
        Some(r) => json!({CLUSTER_LABEL: names.cluster, REGION_LABEL: r}),
        None => json!({CLUSTER_LABEL: names.cluster, "app.kubernetes.io/component": "gateway"}),
    }
}

/// A file of the cluster directory as a Secret key (its file name) and the path it is mounted
/// at under `/cluster/keys` (its path under `keys/`).
fn secret_item(file: &Path) -> Result<(String, String), ContainerError> {
    let under = file.strip_prefix(KEYS_DIR).map_err(|_| {
        ContainerError::Invalid(format!(
            "{} is not under {KEYS_DIR}/: pods find every key file in their Secrets there",
            file.display()
        ))
    })?;
    let key = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((key, under.to_string_lossy().into_owned()))
}

/// The Secret of one Region or of the gateway: (name, its files, the domain key file if any).
struct SecretFiles {
    name: String,
    /// Mounted files: (Secret key, path under `keys/`, path in the cluster directory).
    mounted: Vec<(String, String, PathBuf)>,
    /// The Region's domain key: (Secret key, path in the cluster directory), given as an
    /// environment variable.
    domain_key: Option<(String, PathBuf)>,
}

impl SecretFiles {
    fn region(
        topology: &Topology,
        r: &RegionConfig,
        names: &PodNames,
    ) -> Result<SecretFiles, ContainerError> {
        let tls = project::tls_of(topology)?;
        let mut files = Vec::new();
        for n in &r.nodes {
            for f in project::node_files(tls, topology.sts.as_ref(), r, n.id) {
                if f != r.domain_key_file && !files.contains(&f) {
                    files.push(f);
                }
            }
        }
        let (key, _) = secret_item(&r.domain_key_file)?;
        SecretFiles::of(
            names.region_secret(&r.name),
            &files,
            Some((key, r.domain_key_file.clone())),
        )
    }

    fn gateway(topology: &Topology, names: &PodNames) -> Result<SecretFiles, ContainerError> {
        let tls = project::tls_of(topology)?;
        SecretFiles::of(
            names.gateway_secret(),
            &project::gateway_files(tls, topology.sts.as_ref()),
            None,
        )
    }

    fn of(
        name: String,
        files: &[PathBuf],
        domain_key: Option<(String, PathBuf)>,
    ) -> Result<SecretFiles, ContainerError> {
        let mut keys: BTreeSet<String> = domain_key.iter().map(|(k, _)| k.clone()).collect();
        let mut mounted = Vec::new();
        for f in files {
            let (key, path) = secret_item(f)?;
            if !keys.insert(key.clone()) {
                return Err(ContainerError::Invalid(format!(
                    "two files of the Secret {name} are named {key}"
                )));
            }
            mounted.push((key, path, f.clone()));
        }
        Ok(SecretFiles {
            name,
            mounted,
            domain_key,
        })
    }

    /// The kustomize `secretGenerator` entry: every file, from the cluster directory.
    fn generator(&self, names: &PodNames, component: &str, region: Option<&str>) -> Value {
        let mut files: Vec<String> = self
            .domain_key
            .iter()
            .map(|(k, f)| format!("{k}={}", f.display()))
            .collect();
        files.extend(
            self.mounted
                .iter()
                .map(|(k, _, f)| format!("{k}={}", f.display())),
        );
        json!({
            "name": self.name,
            "type": "Opaque",
            "files": files,
            "options": {"labels": labels(names, component, region)},
        })
    }

    /// The pod volume `keys`: every mounted file at its path under `keys/`.
    fn volume(&self) -> Value {
        let items: Vec<Value> = self
            .mounted
            .iter()
            .map(|(k, p, _)| json!({"key": k, "path": p}))
            .collect();
        json!({
            "name": "keys",
            "secret": {"secretName": self.name, "defaultMode": SECRET_MODE, "items": items},
        })
    }
}

/// The kustomization: the manifests, a generator for the topology, one for each Region's
/// Secret and one for the gateway's, each reading the files `kmsim deploy kubernetes` wrote.
fn kustomization(
    topology: &Topology,
    names: &PodNames,
    holder: TopologyHolder,
) -> Result<Value, ContainerError> {
    let mut resources = vec![json!(NAMESPACE_FILE)];
    resources.extend(topology.regions.iter().map(|r| json!(region_file(&r.name))));
    resources.push(json!(GATEWAY_FILE));
    let topo = json!({
        "name": names.topology(),
        "files": [TOPOLOGY_FILE],
        "options": {"labels": labels(names, "cluster", None)},
    });
    let mut secrets = Vec::new();
    for r in &topology.regions {
        secrets.push(SecretFiles::region(topology, r, names)?.generator(
            names,
            "node",
            Some(&r.name),
        ));
    }
    secrets.push(SecretFiles::gateway(topology, names)?.generator(names, "gateway", None));
    let mut k = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": names.namespace,
        "resources": resources,
    });
    match holder {
        TopologyHolder::ConfigMap => k["configMapGenerator"] = json!([topo]),
        TopologyHolder::Secret => {
            let mut topo = topo;
            topo["type"] = json!("Opaque");
            secrets.insert(0, topo);
        }
    }
    k["secretGenerator"] = json!(secrets);
    Ok(k)
}

/// The one port every node of `r` listens on for `what` (all pods of a StatefulSet share a
/// template).
fn region_port(
    r: &RegionConfig,
    what: &str,
    port: impl Fn(&NodeEntry) -> Option<u16>,
) -> Result<u16, ContainerError> {
    let ports: BTreeSet<Option<u16>> = r.nodes.iter().map(port).collect();
    match ports.into_iter().collect::<Vec<_>>().as_slice() {
        [Some(p)] => Ok(*p),
        _ => Err(ContainerError::Invalid(format!(
            "the nodes of {} must all listen on one {what} port (they share a pod template)",
            r.name
        ))),
    }
}

/// The directory every node of `r` keeps its data under (relative to the cluster directory):
/// the Region's PersistentVolumeClaims are mounted there, each pod writing its own node's
/// subdirectory.
fn region_data_parent(r: &RegionConfig) -> Result<PathBuf, ContainerError> {
    let parents: BTreeSet<Option<&Path>> = r
        .nodes
        .iter()
        .map(|n| {
            n.data_dir
                .parent()
                .filter(|p| n.data_dir.is_relative() && !p.as_os_str().is_empty())
        })
        .collect();
    match parents.into_iter().collect::<Vec<_>>().as_slice() {
        [Some(p)] => Ok(p.to_path_buf()),
        _ => Err(ContainerError::Invalid(format!(
            "the nodes of {} must keep their data in subdirectories of one relative directory (nodes/{0}/<id>)",
            r.name
        ))),
    }
}

/// An HTTP probe of `path` on the named port.
fn probe(path: &str, scheme: &str, period: u32, failures: u32) -> Value {
    json!({
        "httpGet": {"path": path, "port": "aws", "scheme": scheme},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    })
}

/// What every container shares: no privilege, a read-only root file system.
fn container_security() -> Value {
    json!({
        "allowPrivilegeEscalation": false,
        "readOnlyRootFilesystem": true,
        "capabilities": {"drop": ["ALL"]},
    })
}

/// What every pod shares: not root, the Secrets' group, the runtime's seccomp profile, no
/// Service environment variables (they would start with `KMSIM_`, the prefix of kmsim's own
/// settings) and no API token (kmsim never calls the API server).
fn pod_spec_common() -> Value {
    json!({
        "automountServiceAccountToken": false,
        "enableServiceLinks": false,
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": 15,
    })
}

/// A Region's peer and client Services, StatefulSet and PodDisruptionBudget.
fn region_documents(
    topology: &Topology,
    r: &RegionConfig,
    spec: &KubernetesSpec,
    holder: TopologyHolder,
) -> Result<Vec<Value>, ContainerError> {
    let names = &spec.names;
    let region = r.name.as_str();
    let ns = &names.namespace;
    let grpc = region_port(r, "gRPC", |n| Some(n.listen.port()))?;
    let aws = region_port(r, "AWS", |n| n.aws_listen.map(|a| a.port()))?;
    let data = region_data_parent(r)?;
    let secret = SecretFiles::region(topology, r, names)?;
    let node_labels = labels(names, "node", Some(region));
    let sel = selector(names, Some(region));
    let ports = json!([
        {"name": "grpc", "port": grpc, "targetPort": "grpc", "protocol": "TCP"},
        {"name": "aws", "port": aws, "targetPort": "aws", "protocol": "TCP"},
    ]);
    let peers = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": names.peer_service(region), "namespace": ns, "labels": node_labels},
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": true,
            "selector": sel,
            "ports": ports,
        },
    });
    let client = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": names.client_service(region), "namespace": ns, "labels": node_labels},
        "spec": {"type": "ClusterIP", "selector": sel, "ports": ports},
    });
    let scheme = topology.aws_scheme().to_ascii_uppercase();
    let topo_path = format!("{CLUSTER_DIR}/{TOPOLOGY_FILE}");
    let (domain_key, _) = secret
        .domain_key
        .clone()
        .expect("invariant: a Region's Secret holds its domain key");
    let container = json!({
        "name": "node",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["node", "--topology", topo_path, "--region", region, "--hostname", "$(KMSIM_POD_NAME)"],
        "env": [
            {"name": "KMSIM_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": r.domain_key_env(), "valueFrom": {"secretKeyRef": {"name": secret.name, "key": domain_key}}},
            {"name": "KMSIM_HEALTH_URL", "value": format!("{}://127.0.0.1:{aws}/readyz", topology.aws_scheme())},
        ],
        "ports": [
            {"name": "grpc", "containerPort": grpc, "protocol": "TCP"},
            {"name": "aws", "containerPort": aws, "protocol": "TCP"},
        ],
        // Started once its HTTP port answers (after its RocksDB lock and open, at most 2 min);
        // ready while its Region has a leader and it has caught up; restarted only after a
        // minute of no answer at all.
        "startupProbe": probe("/healthz", &scheme, 2, 60),
        "readinessProbe": probe("/readyz", &scheme, 5, 3),
        "livenessProbe": probe("/healthz", &scheme, 10, 6),
        // Measured: 32 MiB resident idle, 40 MiB after a 16-way benchmark of a fresh cluster;
        // the limit leaves room for full caches (10,000 keys) and RocksDB's memtables.
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"memory": "1Gi"},
        },
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "topology", "mountPath": topo_path, "subPath": TOPOLOGY_FILE, "readOnly": true},
            {"name": "keys", "mountPath": format!("{CLUSTER_DIR}/{KEYS_DIR}"), "readOnly": true},
            {"name": "data", "mountPath": format!("{CLUSTER_DIR}/{}", data.display())},
        ],
    });
    let mut pod_spec = pod_spec_common();
    pod_spec["containers"] = json!([container]);
    pod_spec["volumes"] = json!([holder.volume(names), secret.volume()]);
    let replicas = r.nodes.len();
    let first = r.nodes.iter().map(|n| n.id).min().unwrap_or(1);
    let ids: Vec<u64> = r.nodes.iter().map(|n| n.id).collect();
    if ids != (first..first + replicas as u64).collect::<Vec<_>>() {
        return Err(ContainerError::Invalid(format!(
            "the node ids of {region} must be consecutive (a StatefulSet's ordinals are)"
        )));
    }
    let statefulset = json!({
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": names.statefulset(region), "namespace": ns, "labels": node_labels},
        "spec": {
            "serviceName": names.peer_service(region),
            "replicas": replicas,
            // Ordinal = Raft id, so pod <cluster>-<region>-<id> is node <id>.
            "ordinals": {"start": first},
            // Every member must run for the Region to elect a leader, and so to be ready.
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": sel},
            "template": {
                "metadata": {"labels": node_labels},
                "spec": pod_spec,
            },
            "volumeClaimTemplates": [{
                "metadata": {"name": "data", "labels": node_labels},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": NODE_STORAGE}},
                },
            }],
        },
    });
    let pdb = json!({
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": names.statefulset(region), "namespace": ns, "labels": node_labels},
        "spec": {
            // A majority keeps the Region writable through voluntary disruptions.
            "minAvailable": replicas / 2 + 1,
            "selector": {"matchLabels": sel},
        },
    });
    Ok(vec![peers, client, statefulset, pdb])
}

/// The gateway's Deployment and Service.
fn gateway_documents(
    topology: &Topology,
    spec: &KubernetesSpec,
    holder: TopologyHolder,
) -> Result<Vec<Value>, ContainerError> {
    let names = &spec.names;
    let ns = &names.namespace;
    let port = topology
        .endpoint
        .as_ref()
        .map(|e| e.listen.port())
        .ok_or_else(|| ContainerError::Invalid("the topology has no [endpoint]".into()))?;
    let secret = SecretFiles::gateway(topology, names)?;
    let gw_labels = labels(names, "gateway", None);
    let sel = selector(names, None);
    let scheme = topology.aws_scheme().to_ascii_uppercase();
    let topo_path = format!("{CLUSTER_DIR}/{TOPOLOGY_FILE}");
    let container = json!({
        "name": "gateway",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["gateway", "--topology", topo_path],
        "env": [
            {"name": "KMSIM_HEALTH_URL", "value": format!("{}://127.0.0.1:{port}/readyz", topology.aws_scheme())},
        ],
        "ports": [{"name": "aws", "containerPort": port, "protocol": "TCP"}],
        "readinessProbe": probe("/readyz", &scheme, 5, 3),
        "livenessProbe": probe("/healthz", &scheme, 10, 3),
        // Measured: 27 MiB resident.
        "resources": {
            "requests": {"cpu": "50m", "memory": "64Mi"},
            "limits": {"memory": "256Mi"},
        },
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "topology", "mountPath": topo_path, "subPath": TOPOLOGY_FILE, "readOnly": true},
            {"name": "keys", "mountPath": format!("{CLUSTER_DIR}/{KEYS_DIR}"), "readOnly": true},
        ],
    });
    let mut pod_spec = pod_spec_common();
    pod_spec["containers"] = json!([container]);
    pod_spec["volumes"] = json!([holder.volume(names), secret.volume()]);
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": names.gateway(), "namespace": ns, "labels": gw_labels},
        "spec": {
            // Stateless: two keep the endpoint up while one is replaced.
            "replicas": 2,
            "selector": {"matchLabels": sel},
            "template": {"metadata": {"labels": gw_labels}, "spec": pod_spec},
        },
    });
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": names.gateway(), "namespace": ns, "labels": gw_labels},
        "spec": {
            "type": "ClusterIP",
            "selector": sel,
            "ports": [{"name": "aws", "port": port, "targetPort": "aws", "protocol": "TCP"}],
        },
    });
    Ok(vec![deployment, service])
}
