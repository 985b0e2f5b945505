//! Kubernetes manifests for a topology whose nodes run one per pod
//! ([`Addressing::Kubernetes`]), as a kustomize directory that `kubectl apply -k` takes whole:
//!
//! ```text
//! <dir>/kustomization.yaml   the resources below, and generators that turn topology.toml and
//!                            keys/ into a ConfigMap and Secrets (no secret: may be committed)
//! <dir>/namespace.yaml       the Namespace
//! <dir>/<region>.yaml        per Region: a headless peer Service, a client Service, a
//!                            StatefulSet and a PodDisruptionBudget (no secret)
//! <dir>/gateway.yaml         the gateway: a Deployment and its Service (no secret)
//! <dir>/topology.toml        the topology every pod reads (0600, kept once made)
//! <dir>/keys/                domain, transport and trust-anchor keys, keys/tls/ (0600, kept)
//! ```
//!
//! One file per Region rather than one per kind: a Region is what one adds, removes or reads
//! about at once. Every name comes from [`PodNames`]; a node's pod is `<cluster>-<region>-<id>`
//! (the StatefulSet's ordinals start at 1, so a pod's ordinal is its Raft id and its name is its
//! compose container's), reached at its stable DNS name through the Region's headless Service,
//! which publishes addresses before a pod is ready: Raft members must reach each other to
//! elect the leader that makes them ready. The pod tells the node who it is with
//! `kmsim node --hostname $(KMSIM_POD_NAME)` (its name, from the downward API): the node
//! whose advertised host is that name, so ids never depend on arithmetic over ordinals.
//!
//! The topology goes in a ConfigMap while its only credentials are the launcher's public
//! `test`/`test` ([`crate::cluster::default_credentials`]), else in a Secret. Each Region's Secret holds what
//! its nodes read: its transport key, the CA certificate and its nodes' certificates and keys,
//! mounted read-only at `/cluster/keys` at the topology's own paths, and its domain key, given
//! as `KMSIM_DOMAIN_KEY_<REGION>` (a Secret volume under `fsGroup` is group-readable, which a
//! node warns about for a key file). Trust-anchor keys and the CA key go in no Secret.

use std::path::{Path, PathBuf};

use serde_json::Value;

use kmsim_node::config::Topology;

use super::{project, yaml, ContainerError};
use crate::cluster::{io, Addressing};

mod names;
mod objects;
#[cfg(test)]
mod tests;

pub use names::PodNames;

/// The kustomization's file name.
pub const KUSTOMIZATION_FILE: &str = "kustomization.yaml";

/// The Namespace's file name.
pub const NAMESPACE_FILE: &str = "namespace.yaml";

/// The gateway's file name.
pub const GATEWAY_FILE: &str = "gateway.yaml";

/// The namespace unless told otherwise (`kmsim deploy kubernetes --namespace`).
pub const DEFAULT_NAMESPACE: &str = "kmsim";

/// The cluster's DNS domain unless told otherwise (`--cluster-domain`).
pub const DEFAULT_CLUSTER_DOMAIN: &str = "cluster.local";

/// The user and group every container runs as: a scratch image has no `/etc/passwd`, so a
/// number (the usual "nonroot" one).
pub const RUN_AS: u64 = 65532;

/// The size each node's PersistentVolumeClaim asks for.
pub const NODE_STORAGE: &str = "1Gi";

/// What a Kubernetes project is made of besides its topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubernetesSpec {
    /// The names of its objects and nodes.
    pub names: PodNames,
    /// The image every pod runs (`kmsim:<version>`; it must be where the cluster's nodes can
    /// pull or find it).
    pub image: String,
}

impl KubernetesSpec {
    /// The default project: [`PodNames::default_names`], image `kmsim:<version>`.
    pub fn default_for_version() -> KubernetesSpec {
        KubernetesSpec {
            names: PodNames::default_names(),
            image: super::image::default_tag(),
        }
    }
}

/// What [`write_project`] did.
#[derive(Debug)]
pub struct Project {
    /// The manifest files written, kustomization first.
    pub files: Vec<PathBuf>,
    /// Whether the topology and keys were made now (else those in the directory were kept).
    pub created_secrets: bool,
    /// The topology as written (paths relative to the directory).
    pub topology: Topology,
}

/// One manifest file: its name in the directory and its documents.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// The file's name (`kustomization.yaml`, `<region>.yaml` …).
    pub file: String,
    /// Its YAML documents, as values.
    pub documents: Vec<Value>,
}

impl Manifest {
    /// The file's text: a header naming its maker, then each document after `---`.
    pub fn render(&self, names: &PodNames) -> String {
        let mut text = format!(
            "# Written by `kmsim deploy kubernetes` for the cluster \"{}\" in the namespace \"{}\":\n\
             # regenerate it rather than edit it (deploy/kubernetes/README.md).\n",
            names.cluster, names.namespace
        );
        for d in &self.documents {
            text.push_str("---\n");
            text.push_str(&yaml::to_yaml(d));
        }
        text
    }
}

/// Writes the project of `spec` into `dir`: the topology and its keys and certificates for
/// `regions` (name, node count) when `dir` holds none yet (else the ones there are kept, and
/// must have been written for the same names), then every manifest (always rewritten: they
/// follow from the topology and `spec` alone). Manifests of Regions the topology no longer has
/// are not removed; the kustomization names only the current ones.
pub fn write_project(
    dir: &Path,
    regions: &[(String, usize)],
    spec: &KubernetesSpec,
) -> Result<Project, ContainerError> {
    let region_names: Vec<String> = regions.iter().map(|(r, _)| r.clone()).collect();
    spec.names.check(&region_names)?;
    let addressing = Addressing::Kubernetes(spec.names.clone());
    let (created_secrets, topology) = project::cluster_files(dir, regions, &addressing)?;
    let mut files = Vec::new();
    for m in manifests(&topology, spec)? {
        let path = dir.join(&m.file);
        std::fs::write(&path, m.render(&spec.names))
            .map_err(io(format!("write {}", path.display())))?;
        files.push(path);
    }
    Ok(Project {
        files,
        created_secrets,
        topology,
    })
}

/// Every manifest of `topology` (written by [`write_project`]) for `spec`: the kustomization,
/// the Namespace, one file per Region, the gateway.
pub fn manifests(
    topology: &Topology,
    spec: &KubernetesSpec,
) -> Result<Vec<Manifest>, ContainerError> {
    let names = &spec.names;
    let region_names: Vec<String> = topology.regions.iter().map(|r| r.name.clone()).collect();
    names.check(&region_names)?;
    project::tls_of(topology)?;
    project::check_hosts(
        topology,
        |r, id| names.node_host(r, id),
        "--name, --namespace and --cluster-domain",
    )?;
    objects::all(topology, spec)
}

/// A Region's manifest file: `<region>.yaml`.
pub fn region_file(region: &str) -> String {
    format!("{region}.yaml")
}
