//! `kmsim deploy compose`: a docker-compose project for a topology.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use kmsim_sim::cluster::DEFAULT_AWS_PORT;
use kmsim_sim::container::compose::{self, ComposeSpec, DEFAULT_CLUSTER};
use kmsim_sim::container::image;

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
}

/// `kmsim deploy`
pub fn run(a: DeployArgs) -> anyhow::Result<ExitCode> {
    match a.command {
        DeployCommand::Compose(c) => compose_cmd(c),
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
    let p = compose::write_project(&a.out, &a.shape.regions(), &spec)?;
    if p.created_secrets {
        outln!(
            "wrote the topology, keys and certificates to {}",
            a.out.display()
        );
    } else {
        outln!(
            "kept the topology, keys and certificates found in {} (its Regions and nodes decide)",
            a.out.display()
        );
    }
    outln!("wrote {}", p.compose_file.display());
    outln!(
        "start: docker-compose -p {} -f {} up -d   (image {}: `kmsim image build`)",
        spec.cluster,
        p.compose_file.display(),
        spec.image
    );
    outln!(
        "AWS endpoint for every Region: http://127.0.0.1:{} (access key test, secret test)",
        spec.aws_port
    );
    Ok(ExitCode::SUCCESS)
}
