//! The names of a cluster's Kubernetes objects and of its nodes' DNS names.

use super::{DEFAULT_CLUSTER_DOMAIN, DEFAULT_NAMESPACE};
use crate::cluster::container_name;
use crate::container::compose::{check_cluster_name, DEFAULT_CLUSTER};
use crate::container::ContainerError;

/// The longest StatefulSet name: its pods carry the label `controller-revision-hash:
/// <name>-<10 characters>`, and a label value has at most 63.
const MAX_STATEFULSET_NAME: usize = 52;

/// The names of a cluster's Kubernetes objects and its nodes' DNS names: the one place they are
/// made, for the topology ([`crate::cluster::Addressing::Kubernetes`]) and the manifests alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNames {
    /// The cluster's name, the first part of every object's name.
    pub cluster: String,
    /// The namespace every object is in.
    pub namespace: String,
    /// The cluster's DNS domain (`cluster.local` unless the cluster was set up otherwise).
    pub cluster_domain: String,
}

impl PodNames {
    /// The default names: cluster `kmsim` in namespace `kmsim`, domain `cluster.local`.
    pub fn default_names() -> PodNames {
        PodNames {
            cluster: DEFAULT_CLUSTER.into(),
            namespace: DEFAULT_NAMESPACE.into(),
            cluster_domain: DEFAULT_CLUSTER_DOMAIN.into(),
        }
    }

    /// The Region's StatefulSet (and its PodDisruptionBudget): `<cluster>-<region>`.
    pub fn statefulset(&self, region: &str) -> String {
        format!("{}-{region}", self.cluster)
    }

    /// The Region's headless Service, which gives each pod its DNS name:
    /// `<cluster>-<region>-peers`.
    pub fn peer_service(&self, region: &str) -> String {
        format!("{}-{region}-peers", self.cluster)
    }

    /// The Region's client Service (its ready nodes): `<cluster>-<region>`.
    pub fn client_service(&self, region: &str) -> String {
        self.statefulset(region)
    }

    /// Node `id`'s pod: `<cluster>-<region>-<id>`, the StatefulSet's pod of ordinal `id`.
    pub fn pod(&self, region: &str, id: u64) -> String {
        container_name(&self.cluster, region, id)
    }

    /// Node `id`'s DNS name: `<pod>.<peer service>.<namespace>.svc.<cluster domain>`.
    pub fn node_host(&self, region: &str, id: u64) -> String {
        format!(
            "{}.{}.{}.svc.{}",
            self.pod(region, id),
            self.peer_service(region),
            self.namespace,
            self.cluster_domain
        )
    }

    /// The gateway's Deployment and Service: `<cluster>-gateway`.
    pub fn gateway(&self) -> String {
        format!("{}-gateway", self.cluster)
    }

    /// The ConfigMap (or Secret) holding the topology: `<cluster>-topology`.
    pub fn topology(&self) -> String {
        format!("{}-topology", self.cluster)
    }

    /// The Secret of a Region's keys and certificates: `<cluster>-<region>-keys`.
    pub fn region_secret(&self, region: &str) -> String {
        format!("{}-{region}-keys", self.cluster)
    }

    /// The Secret of the gateway's certificate: `<cluster>-gateway-keys`.
    pub fn gateway_secret(&self) -> String {
        format!("{}-gateway-keys", self.cluster)
    }

    /// Checks every name these make for `regions`: DNS labels of Kubernetes' lengths.
    pub fn check(&self, regions: &[String]) -> Result<(), ContainerError> {
        check_cluster_name(&self.cluster)?;
        let bad = |m: String| Err(ContainerError::Invalid(m));
        if !is_dns_label(&self.namespace) {
            return bad(format!(
                "invalid namespace '{}': lowercase letters, digits and '-', at most 63",
                self.namespace
            ));
        }
        if self.cluster_domain.len() > 200 || !self.cluster_domain.split('.').all(is_dns_label) {
            return bad(format!(
                "invalid cluster domain '{}': DNS labels separated by '.'",
                self.cluster_domain
            ));
        }
        for r in regions {
            let sts = self.statefulset(r);
            if sts.len() > MAX_STATEFULSET_NAME || !is_dns_label(&self.peer_service(r)) {
                return bad(format!(
                    "the StatefulSet name {sts} is {} characters: Kubernetes allows {MAX_STATEFULSET_NAME}; choose a shorter --name",
                    sts.len()
                ));
            }
        }
        Ok(())
    }
}

/// An RFC 1123 label: 1 to 63 of lowercase letters, digits and `-`, not starting or ending
/// with `-`.
fn is_dns_label(s: &str) -> bool {
    (1..=63).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}
