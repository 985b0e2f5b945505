//! Clusters as Docker containers: the Docker CLI ([`docker`]), the `FROM scratch` image built
//! from the release binary ([`image`]) and the docker-compose project of a topology
//! ([`compose`]), that project run as a cluster ([`runtime`]), and faults at the runtime and
//! network level on it ([`faults`]); the same nodes as Kubernetes pods ([`kubernetes`], its
//! manifests written by [`yaml`]), and the files both kinds of project share ([`project`]);
//! the client commands run inside the cluster's networks ([`relay`]).
//! Everything this module creates carries the label [`CLUSTER_LABEL`] with the cluster's name,
//! and is found and removed by it.

pub mod compose;
pub mod docker;
pub mod faults;
pub mod image;
pub mod kubernetes;
pub mod project;
pub mod relay;
pub mod runtime;
pub mod yaml;

/// The label every container, network and volume of a cluster carries, with the cluster's
/// name as its value.
pub const CLUSTER_LABEL: &str = "io.kmsim.cluster";

/// The label naming a container's Region.
pub const REGION_LABEL: &str = "io.kmsim.region";

/// The label naming a container's node id (`gateway` for the gateway).
pub const NODE_LABEL: &str = "io.kmsim.node";

/// Errors of the container runtime.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The Docker CLI is missing or its daemon does not answer.
    #[error("docker is not available: {0} (install Docker 20.10 or later and start its daemon)")]
    Unavailable(String),
    /// A docker command failed.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// What it wrote to standard error.
        stderr: String,
    },
    /// A file operation failed, or the cluster's files could not be made.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// Something else is not as expected.
    #[error("{0}")]
    Invalid(String),
}
