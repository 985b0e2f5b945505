//! `kmsim deploy compose|kubernetes`: a docker-compose project or Kubernetes manifests for a
//! topology.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use kmsim_sim::cluster::DEFAULT_AWS_PORT;
use kmsim_sim::container::compose::{self, ComposeSpec, DEFAULT_CLUSTER};
use kmsim_sim::container::image;
use kmsim_sim::container::kubernetes::{
    self, KubernetesSpec, PodNames, DEFAULT_CLUSTER_DOMAIN, DEFAULT_NAMESPACE,
};

/// Deployment files for clusters that run outside `kmsim up`.
#[derive(Args)]
pub struct DeployArgs {
    #[command(subcommand)]
    command: DeployCommand,
}

#[derive(Subcommand)]
enum DeployCommand {
    /// Write a docker-compose project (file format 3.8, for docker-compose 1.29): one
    /// container per node (`<name>-<region>-<id>`) on its Region's network (internal) and the
    /// inter-Region network (`<name>-inter`: disconnect a Region's containers from it to cut the
    /// Region off), one named volume per node (its data outlives the container), health checks
    /// on /readyz, the label io.kmsim.cluster=<name> on every container, network and volume, and
    /// the gateway publishing the AWS endpoint for every Region on 127.0.0.1:<aws-port>. Beside
    /// docker-compose.yml it writes topology.toml and keys/ (domain, transport and trust-anchor
    /// keys, the cluster CA and every certificate; 0600) the first time; later runs keep them and
    /// rewrite only docker-compose.yml, which holds no secret (deploy/compose/ commits it).
    /// Start with `docker-compose -p <name> up -d` once the image exists (`kmsim image build`).
    Compose(ComposeArgs),
    /// Write Kubernetes manifests as a kustomize directory (`kubectl apply -k DIR`, Kubernetes
    /// 1.31 or later): per Region a StatefulSet `<name>-<region>` whose pods
    /// `<name>-<region>-<id>` are the Region's nodes (ordinals start at 1: ordinal = Raft id),
    /// started in parallel, each with a PersistentVolumeClaim for its data, a readiness probe on
    /// /readyz (its Region has a leader and it has caught up), a liveness probe on /healthz,
    /// non-root with a read-only root file system; a headless Service `<name>-<region>-peers`
    /// (publishNotReadyAddresses) that gives every pod the DNS name the topology advertises
    /// (`<pod>.<name>-<region>-peers.<namespace>.svc.<cluster-domain>`), a client Service
    /// `<name>-<region>` and a PodDisruptionBudget keeping a majority; the gateway as a
    /// Deployment and Service `<name>-gateway` (port 4599, the AWS endpoint for every Region).
    /// The kustomization's generators make a ConfigMap of topology.toml and Secrets of keys/,
    /// which the command writes beside the manifests the first time (later runs keep them and
    /// rewrite only the manifests, which hold no secret: deploy/kubernetes/ commits them). Raft
    /// membership is fixed by the topology: never scale a StatefulSet by hand.
    Kubernetes(KubernetesArgs),
}

#[derive(Args)]
struct ComposeArgs {
    /// The directory to write (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// The Regions and nodes (ignored when the directory already holds a topology).
    #[command(flatten)]
    shape: super::ShapeArgs,
    /// The cluster's name: the first part of every container, network and volume name, and
    /// its label.
    #[arg(long, default_value = DEFAULT_CLUSTER)]
    name: String,
    /// The host port (on 127.0.0.1) where the gateway publishes the AWS endpoint.
    #[arg(long, default_value_t = DEFAULT_AWS_PORT)]
    aws_port: u16,
    /// The image every container runs.
    #[arg(long, default_value_t = image::default_tag())]
    image: String,
    /// Write docker-stack.yml for a Docker Swarm (`docker stack deploy --resolve-image never
    /// -c docker-stack.yml <name>`) instead of docker-compose.yml: the same services, with
    /// health checks on /healthz (Swarm gives a task its DNS name only once healthy, and a node
    /// becomes ready only after reaching the others by name), the gateway's port published in
    /// host mode (Swarm ignores a host address: every address of the host), no container_name.
    #[arg(long)]
    swarm: bool,
}

#[derive(Args)]
struct KubernetesArgs {
    /// The directory to write (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// The Regions and nodes (ignored when the directory already holds a topology).
    #[command(flatten)]
    shape: super::ShapeArgs,
    /// The cluster's name: the first part of every object's name, and its io.kmsim.cluster
    /// label.
    #[arg(long, default_value = DEFAULT_CLUSTER)]
    name: String,
    /// The namespace of every object (the nodes' DNS names include it).
    #[arg(long, default_value = DEFAULT_NAMESPACE)]
    namespace: String,
    /// The Kubernetes cluster's DNS domain (the nodes' DNS names end with it).
    #[arg(long, default_value = DEFAULT_CLUSTER_DOMAIN)]
    cluster_domain: String,
    /// The image every pod runs: where the cluster's nodes find it (a registry, or loaded into
    /// them, e.g. `kind load docker-image`).
    #[arg(long, default_value_t = image::default_tag())]
    image: String,
}

/// `kmsim deploy`
pub fn run(a: DeployArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        DeployCommand::Compose(c) => compose_cmd(c),
        DeployCommand::Kubernetes(k) => kubernetes_cmd(k),
    }
}

fn kubernetes_cmd(a: KubernetesArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&a.out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", a.out.display()))?;
    let spec = KubernetesSpec {
        names: PodNames {
            cluster: a.name,
            namespace: a.namespace,
            cluster_domain: a.cluster_domain,
        },
        image: a.image,
    };
    let p = kubernetes::write_project(&a.out, &a.shape.regions(), &spec)?;
    secrets_line(p.created_secrets, &a.out);
    for f in &p.files {
        outln!("wrote {}", f.display());
    }
    let ns = &spec.names.namespace;
    outln!(
        "apply: kubectl apply -k {}   (image {} must be where the cluster's nodes find it)",
        a.out.display(),
        spec.image
    );
    outln!("wait:  kubectl -n {ns} wait --for=condition=Ready pod --all --timeout 5m");
    outln!(
        "reach: kubectl -n {ns} port-forward service/{} {port}:{port}, then http://127.0.0.1:{port} (access key test, secret test)",
        spec.names.gateway(),
        port = p
            .topology
            .endpoint
            .as_ref()
            .map(|e| e.listen.port())
            .unwrap_or(DEFAULT_AWS_PORT)
    );
    Ok(ExitCode::SUCCESS)
}

/// Says whether the topology, keys and certificates were made now or kept.
fn secrets_line(created: bool, dir: &std::path::Path) {
    if created {
        outln!(
            "wrote the topology, keys and certificates to {}",
            dir.display()
        );
    } else {
        outln!(
            "kept the topology, keys and certificates found in {} (its Regions and nodes decide)",
            dir.display()
        );
    }
}

fn compose_cmd(a: ComposeArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&a.out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", a.out.display()))?;
    let spec = ComposeSpec {
        cluster: a.name,
        image: a.image,
        aws_port: a.aws_port,
    };
    let p = if a.swarm {
        compose::write_stack(&a.out, &a.shape.regions(), &spec)?
    } else {
        compose::write_project(&a.out, &a.shape.regions(), &spec)?
    };
    secrets_line(p.created_secrets, &a.out);
    outln!("wrote {}", p.compose_file.display());
    if a.swarm {
        outln!(
            "start: docker stack deploy --resolve-image never -c {} {}   (image {} on every host: `kmsim image build`)",
            p.compose_file.display(),
            spec.cluster,
            spec.image
        );
    } else {
        outln!(
            "start: docker-compose -p {} -f {} up -d   (image {}: `kmsim image build`)",
            spec.cluster,
            p.compose_file.display(),
            spec.image
        );
    }
    outln!(
        "AWS endpoint for every Region: http://127.0.0.1:{} (access key test, secret test)",
        spec.aws_port
    );
    Ok(ExitCode::SUCCESS)
}
