//! What every deployment project of a topology shares, whatever runs it (docker-compose,
//! Kubernetes): the cluster's files made once and kept ([`cluster_files`]), the check that a
//! kept topology was written for the names the project gives its nodes ([`check_hosts`]), and
//! the files each process reads ([`node_files`], [`gateway_files`]).

use std::path::{Path, PathBuf};

use kmsim_node::config::{RegionConfig, StsSettings, Topology};
use kmsim_node::tls::issue::host_of;
use kmsim_node::tls::TlsSettings;

use super::ContainerError;
use crate::cluster::{io, Addressing, ClusterDir};

/// The topology and every key and certificate in `dir`: made now for `regions` (name, node
/// count) as `addressing` says when `dir` holds no topology yet, else the ones there, kept.
/// Returns whether they were made now, and the topology as written (its paths relative to
/// `dir`, as every container sees them relative to its cluster directory).
pub fn cluster_files(
    dir: &Path,
    regions: &[(String, usize)],
    addressing: &Addressing,
) -> Result<(bool, Topology), ContainerError> {
    let cluster_dir = ClusterDir::new(dir);
    let created = !cluster_dir.topology_path().exists();
    if created {
        cluster_dir.create_with(regions, addressing, false, false)?;
    }
    let path = cluster_dir.topology_path();
    let text = std::fs::read_to_string(&path).map_err(io(format!("read {}", path.display())))?;
    let topology = Topology::parse(&text)
        .map_err(|e| ContainerError::Invalid(format!("{}: {e}", path.display())))?;
    Ok((created, topology))
}

/// Checks that every node of `topology` is reached at the host `expected(region, id)` (on any
/// port): a topology kept from an earlier run with other names would have its nodes dial names
/// nothing answers to. `flags` names the options that decide the names, for the message.
pub fn check_hosts(
    topology: &Topology,
    expected: impl Fn(&str, u64) -> String,
    flags: &str,
) -> Result<(), ContainerError> {
    for r in &topology.regions {
        for n in &r.nodes {
            let want = expected(&r.name, n.id);
            let advertised = n.advertise_addr();
            if host_of(&advertised) != want {
                return Err(ContainerError::Invalid(format!(
                    "the topology was written for other names (node {}/{} is reached at {advertised}, not {want}); pass the {flags} it was written with, or remove topology.toml and keys/ to make a new cluster",
                    r.name, n.id
                )));
            }
        }
    }
    Ok(())
}

/// The `[tls]` table a container topology must have.
pub fn tls_of(topology: &Topology) -> Result<&TlsSettings, ContainerError> {
    topology.tls.as_ref().ok_or_else(|| {
        ContainerError::Invalid("the topology has no [tls] table: containers need one".into())
    })
}

/// The files of the cluster directory that node `id` of `r` reads, relative to it: its
/// Region's domain key and transport key, the STS session-token key (`sts`), the CA
/// certificate, its own certificate and key.
pub fn node_files(
    tls: &TlsSettings,
    sts: Option<&StsSettings>,
    r: &RegionConfig,
    id: u64,
) -> Vec<PathBuf> {
    let (cert, key) = tls.node_files(&r.name, id);
    let mut files = vec![r.domain_key_file.clone()];
    files.extend(r.transport_key_file.clone());
    files.extend(sts.map(|s| s.key_file.clone()));
    files.extend([tls.ca_cert(), cert, key]);
    files
}

/// The files the gateway reads besides the topology: the STS session-token key (`sts`; the
/// gateway opens session tokens to check a request's headers before it relays it), the CA
/// certificate, its own certificate and key. Trust-anchor keys and the CA key are read by no
/// process.
pub fn gateway_files(tls: &TlsSettings, sts: Option<&StsSettings>) -> Vec<PathBuf> {
    let (cert, key) = tls.gateway_files();
    let mut files: Vec<PathBuf> = sts.map(|s| s.key_file.clone()).into_iter().collect();
    files.extend([tls.ca_cert(), cert, key]);
    files
}
