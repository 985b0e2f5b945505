//! A docker-compose project (file format 3.8, as docker-compose 1.29 reads it) for a
//! topology whose nodes run one per container ([`Addressing::Containers`]): the compose file
//! and, beside it, the topology and every key and certificate (made by
//! [`crate::cluster::ClusterDir::create_with`], the one place a cluster's secrets are made).
//!
//! ```text
//! <dir>/docker-compose.yml   services, networks, volumes (no secret: may be committed)
//! <dir>/topology.toml        the topology every container reads (0600)
//! <dir>/keys/                domain, transport and trust-anchor keys, keys/tls/ (0600)
//! ```
//!
//! Every node is a service and a container named `<cluster>-<region>-<id>` (its DNS name on
//! the cluster's networks), on its Region's network (`<cluster>-<region>`, internal: no route
//! out) and on the inter-Region network (`<cluster>-inter`), with its data in a named volume
//! (`<cluster>-<region>-<id>`) that outlives the container. Cutting a Region off from the
//! others is disconnecting its containers from the inter-Region network: its nodes still
//! reach each other on their Region's network. Each container gets only the files it reads,
//! read-only: its Region's domain and transport keys, the CA certificate, its own
//! certificate and key. The gateway (`<cluster>-gateway`) is on the inter-Region network and
//! publishes the single AWS endpoint on the host's `127.0.0.1:<aws_port>`. Containers,
//! networks and volumes carry [`CLUSTER_LABEL`]. Health checks ask `/readyz` through the
//! binary itself (`kmsim health`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use kmsim_node::config::Topology;

use super::image::{CLUSTER_DIR, IMAGE_BINARY};
use super::{project, ContainerError, CLUSTER_LABEL, NODE_LABEL, REGION_LABEL};
use crate::cluster::{container_name, io, Addressing, CONTAINER_AWS_PORT, DEFAULT_AWS_PORT};

/// The compose file's name.
pub const COMPOSE_FILE: &str = "docker-compose.yml";

/// The name of the same project's file for `docker stack deploy` ([`Flavor::Swarm`]).
pub const STACK_FILE: &str = "docker-stack.yml";

/// Who runs the compose file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// docker-compose on one host: health checks on `/readyz` (a healthy container is a ready
    /// node), the gateway published on `127.0.0.1` only.
    Compose,
    /// A Docker Swarm stack (`docker stack deploy`), the path to many hosts. Swarm puts a task
    /// in its service's DNS only once it is healthy, and a node is ready only once its Region has
    /// elected a leader, which needs the other nodes' names: so the health check asks
    /// `/healthz` (the process serves). Swarm ignores a published port's host address, so the
    /// gateway is published in `host` mode (on every address of the host: the routing mesh did
    /// not answer on 127.0.0.1 on the engine tested); `container_name` is left out (Swarm names
    /// its tasks).
    Swarm,
}

/// The cluster name unless told otherwise (`kmsim deploy compose --name`).
pub const DEFAULT_CLUSTER: &str = "kmsim";

/// What a compose project is made of besides its topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposeSpec {
    /// The cluster's name: the first part of every container, network and volume name, and the
    /// value of [`CLUSTER_LABEL`].
    pub cluster: String,
    /// The image every container runs (`kmsim:<version>`).
    pub image: String,
    /// The host port (on 127.0.0.1) the gateway publishes.
    pub aws_port: u16,
}

impl ComposeSpec {
    /// The default project: cluster `kmsim`, image `kmsim:<version>`, the gateway on
    /// 127.0.0.1:4599.
    pub fn default_for_version() -> ComposeSpec {
        ComposeSpec {
            cluster: DEFAULT_CLUSTER.into(),
            image: super::image::default_tag(),
            aws_port: DEFAULT_AWS_PORT,
        }
    }
}

/// What [`write_project`] did.
#[derive(Debug)]
pub struct Project {
    /// The compose file.
    pub compose_file: PathBuf,
    /// Whether the topology and keys were made now (else those found in the directory were
    /// kept).
    pub created_secrets: bool,
    /// The topology as written (paths relative to the directory).
    pub topology: Topology,
}

/// Checks a cluster name: it names containers, networks, volumes and DNS names (and TLS
/// certificate names), so lowercase letters, digits and `-`, starting with a letter, at most
/// 40 characters.
pub fn check_cluster_name(name: &str) -> Result<(), ContainerError> {
    let ok = name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(ContainerError::Invalid(format!(
            "invalid cluster name '{name}': use lowercase letters, digits and '-', starting with a letter (at most 40)"
        )))
    }
}

/// Writes the project of `spec` into `dir`: the topology and its keys and certificates for
/// `regions` (name, node count) when `dir` holds no topology yet (else the one there is kept,
/// and must have been written for the same cluster name), then the compose file (always
/// rewritten: it follows from the topology and `spec` alone).
pub fn write_project(
    dir: &Path,
    regions: &[(String, usize)],
    spec: &ComposeSpec,
) -> Result<Project, ContainerError> {
    write_flavor(dir, regions, spec, Flavor::Compose)
}

/// [`write_project`] for a Docker Swarm stack: the same topology and keys, and
/// [`STACK_FILE`] instead of the compose file ([`Flavor::Swarm`]).
pub fn write_stack(
    dir: &Path,
    regions: &[(String, usize)],
    spec: &ComposeSpec,
) -> Result<Project, ContainerError> {
    write_flavor(dir, regions, spec, Flavor::Swarm)
}

fn write_flavor(
    dir: &Path,
    regions: &[(String, usize)],
    spec: &ComposeSpec,
    flavor: Flavor,
) -> Result<Project, ContainerError> {
    check_cluster_name(&spec.cluster)?;
    let addressing = Addressing::Containers {
        prefix: spec.cluster.clone(),
    };
    let (created_secrets, topology) = project::cluster_files(dir, regions, &addressing)?;
    let compose = render(&topology, spec, flavor)?;
    let compose_path = dir.join(match flavor {
        Flavor::Compose => COMPOSE_FILE,
        Flavor::Swarm => STACK_FILE,
    });
    std::fs::write(&compose_path, compose)
        .map_err(io(format!("write {}", compose_path.display())))?;
    Ok(Project {
        compose_file: compose_path,
        created_secrets,
        topology,
    })
}

/// The compose file of `topology` (written by [`write_project`]) for `spec`.
pub fn compose_file(topology: &Topology, spec: &ComposeSpec) -> Result<String, ContainerError> {
    render(topology, spec, Flavor::Compose)
}

/// The compose file of `topology` for `spec`, as `flavor` runs it.
pub fn render(
    topology: &Topology,
    spec: &ComposeSpec,
    flavor: Flavor,
) -> Result<String, ContainerError> {
    let c = &spec.cluster;
    let tls = project::tls_of(topology)?;
    project::check_hosts(topology, |r, id| container_name(c, r, id), "--name")?;
    let nodes: usize = topology.regions.iter().map(|r| r.nodes.len()).sum();
    let mut y = String::new();
    let w = &mut y;
    let _ = writeln!(
        w,
        "# Written by `kmsim deploy compose` for the cluster \"{c}\": {} Regions, {nodes} nodes.",
        topology.regions.len()
    );
    let _ = writeln!(
        w,
        "# Needs the image {} (`kmsim image build`) and, beside this file, topology.toml and keys/",
        spec.image
    );
    let _ = writeln!(
        w,
        "# (`kmsim deploy compose --out DIR` writes them; they are secrets, never committed)."
    );
    let probe = match flavor {
        Flavor::Compose => {
            let _ = writeln!(w, "# Start: docker-compose -p {c} up -d");
            "readyz"
        }
        Flavor::Swarm => {
            let _ = writeln!(
                w,
                "# Start: docker stack deploy --resolve-image never -c {STACK_FILE} {c}"
            );
            let _ = writeln!(
                w,
                "# (health checks ask /healthz: Swarm gives a task a DNS name only once healthy)"
            );
            "healthz"
        }
    };
    let _ = writeln!(
        w,
        "# AWS endpoint for every Region: http://127.0.0.1:{} (access key test, secret test)",
        spec.aws_port
    );
    let _ = writeln!(w, "version: \"3.8\"");
    let _ = writeln!(w, "services:");
    let topo_file = format!("{CLUSTER_DIR}/topology.toml");
    for r in &topology.regions {
        for n in &r.nodes {
            let name = container_name(c, &r.name, n.id);
            let aws_port = n.aws_listen.map(|a| a.port()).unwrap_or(CONTAINER_AWS_PORT);
            let files = project::node_files(tls, topology.sts.as_ref(), r, n.id);
            let command = [
                "node",
                "--topology",
                &topo_file,
                "--region",
                &r.name,
                "--id",
                &n.id.to_string(),
            ]
            .map(|s| s.to_string());
            service(
                w,
                &Service {
                    name: &name,
                    image: &spec.image,
                    command: &command,
                    health_url: format!("http://127.0.0.1:{aws_port}/{probe}"),
                    labels: vec![
                        (CLUSTER_LABEL, c.clone()),
                        (REGION_LABEL, r.name.clone()),
                        (NODE_LABEL, n.id.to_string()),
                    ],
                    networks: vec![format!("{c}-{}", r.name), format!("{c}-inter")],
                    files: &files,
                    volume: Some((
                        name.clone(),
                        format!("{CLUSTER_DIR}/{}", n.data_dir.display()),
                    )),
                    ports: None,
                    flavor,
                },
            );
        }
    }
    let gw_port = topology
        .endpoint
        .as_ref()
        .map(|e| e.listen.port())
        .unwrap_or(DEFAULT_AWS_PORT);
    service(
        w,
        &Service {
            name: &format!("{c}-gateway"),
            image: &spec.image,
            command: &["gateway", "--topology", &topo_file].map(String::from),
            health_url: format!("http://127.0.0.1:{gw_port}/{probe}"),
            labels: vec![(CLUSTER_LABEL, c.clone()), (NODE_LABEL, "gateway".into())],
            networks: vec![format!("{c}-inter")],
            files: &project::gateway_files(tls, topology.sts.as_ref()),
            volume: None,
            ports: Some((spec.aws_port, gw_port)),
            flavor,
        },
    );
    let _ = writeln!(w, "networks:");
    let _ = writeln!(w, "  {c}-inter:");
    let _ = writeln!(w, "    name: {c}-inter");
    let _ = writeln!(w, "    labels:");
    let _ = writeln!(w, "      {CLUSTER_LABEL}: \"{c}\"");
    for r in &topology.regions {
        let _ = writeln!(w, "  {c}-{}:", r.name);
        let _ = writeln!(w, "    name: {c}-{}", r.name);
        let _ = writeln!(w, "    internal: true");
        let _ = writeln!(w, "    labels:");
        let _ = writeln!(w, "      {CLUSTER_LABEL}: \"{c}\"");
        let _ = writeln!(w, "      {REGION_LABEL}: \"{}\"", r.name);
    }
    let _ = writeln!(w, "volumes:");
    for r in &topology.regions {
        for n in &r.nodes {
            let name = container_name(c, &r.name, n.id);
            let _ = writeln!(w, "  {name}:");
            let _ = writeln!(w, "    name: {name}");
            let _ = writeln!(w, "    labels:");
            let _ = writeln!(w, "      {CLUSTER_LABEL}: \"{c}\"");
        }
    }
    Ok(y)
}

/// One service of the compose file.
struct Service<'a> {
    name: &'a str,
    image: &'a str,
    command: &'a [String],
    health_url: String,
    labels: Vec<(&'static str, String)>,
    networks: Vec<String>,
    /// Files of the cluster directory the container reads (bound read-only).
    files: &'a [PathBuf],
    /// A named volume and where it is mounted.
    volume: Option<(String, String)>,
    /// A published port (host, container): on 127.0.0.1 for docker-compose, in `host` mode for
    /// Swarm.
    ports: Option<(u16, u16)>,
    /// Who runs the file.
    flavor: Flavor,
}

fn service(w: &mut String, s: &Service) {
    let list = |items: &[String]| {
        items
            .iter()
            .map(|i| format!("\"{i}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(w, "  {}:", s.name);
    let _ = writeln!(w, "    image: \"{}\"", s.image);
    if s.flavor == Flavor::Compose {
        let _ = writeln!(w, "    container_name: {}", s.name);
    }
    let _ = writeln!(w, "    hostname: {}", s.name);
    let _ = writeln!(w, "    command: [{}]", list(s.command));
    let _ = writeln!(w, "    environment:");
    let _ = writeln!(w, "      KMSIM_HEALTH_URL: \"{}\"", s.health_url);
    let _ = writeln!(w, "    healthcheck:");
    let _ = writeln!(
        w,
        "      test: [\"CMD\", \"{IMAGE_BINARY}\", \"health\", \"--url\", \"{}\"]",
        s.health_url
    );
    let _ = writeln!(w, "      interval: 5s");
    let _ = writeln!(w, "      timeout: 3s");
    let _ = writeln!(w, "      retries: 3");
    let _ = writeln!(w, "      start_period: 30s");
    let _ = writeln!(w, "    stop_grace_period: 15s");
    let _ = writeln!(w, "    labels:");
    for (k, v) in &s.labels {
        let _ = writeln!(w, "      {k}: \"{v}\"");
    }
    let _ = writeln!(w, "    networks:");
    for n in &s.networks {
        let _ = writeln!(w, "      - {n}");
    }
    if let Some((host, container)) = s.ports {
        let _ = writeln!(w, "    ports:");
        match s.flavor {
            Flavor::Compose => {
                let _ = writeln!(w, "      - \"127.0.0.1:{host}:{container}\"");
            }
            Flavor::Swarm => {
                let _ = writeln!(w, "      - target: {container}");
                let _ = writeln!(w, "        published: {host}");
                let _ = writeln!(w, "        protocol: tcp");
                let _ = writeln!(w, "        mode: host");
            }
        }
    }
    let _ = writeln!(w, "    volumes:");
    for f in s.files {
        let _ = writeln!(w, "      - type: bind");
        let _ = writeln!(w, "        source: ./{}", f.display());
        let _ = writeln!(w, "        target: {CLUSTER_DIR}/{}", f.display());
        let _ = writeln!(w, "        read_only: true");
    }
    let _ = writeln!(w, "      - type: bind");
    let _ = writeln!(w, "        source: ./topology.toml");
    let _ = writeln!(w, "        target: {CLUSTER_DIR}/topology.toml");
    let _ = writeln!(w, "        read_only: true");
    if let Some((volume, target)) = &s.volume {
        let _ = writeln!(w, "      - type: volume");
        let _ = writeln!(w, "        source: {volume}");
        let _ = writeln!(w, "        target: {target}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_regions() -> Vec<(String, usize)> {
        ["us-east-1", "eu-west-1", "ap-southeast-2"]
            .iter()
            .map(|r| (r.to_string(), 3))
            .collect()
    }

    /// The default project written into `dir`, and its compose file's text.
    fn default_project(dir: &Path) -> (Project, String) {
        let p =
            write_project(dir, &default_regions(), &ComposeSpec::default_for_version()).unwrap();
        let text = std::fs::read_to_string(&p.compose_file).unwrap();
        (p, text)
    }

    #[test]
    fn the_committed_example_is_what_the_command_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let (p, written) = default_project(tmp.path());
        assert!(p.created_secrets);
        let committed = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/compose")
            .join(COMPOSE_FILE);
        // `KMSIM_BLESS=1 cargo test -p kmsim-sim committed_example` rewrites the example.
        if std::env::var_os("KMSIM_BLESS").is_some() {
            std::fs::write(&committed, &written).unwrap();
        }
        let committed = std::fs::read_to_string(&committed).unwrap_or_default();
        assert!(
            written == committed,
            "deploy/compose/{COMPOSE_FILE} differs from what `kmsim deploy compose` writes; \
             regenerate it with `kmsim deploy compose --out deploy/compose`"
        );
        // Written again over the same directory: the secrets are kept, the file is the same.
        let (again, text) = default_project(tmp.path());
        assert!(!again.created_secrets);
        assert_eq!(text, written);
    }

    #[test]
    fn every_file_a_container_reads_exists_and_no_secret_is_in_the_compose_file() {
        let tmp = tempfile::tempdir().unwrap();
        let (_, text) = default_project(tmp.path());
        for line in text.lines() {
            if let Some(src) = line.trim().strip_prefix("source: ./") {
                assert!(tmp.path().join(src).is_file(), "{src} is missing");
            }
        }
        assert!(!text.contains("PRIVATE KEY") && !text.contains("secret_access_key"));
        // Another cluster name over the same topology is refused: the names would not resolve.
        let other = ComposeSpec {
            cluster: "other".into(),
            ..ComposeSpec::default_for_version()
        };
        assert!(write_project(tmp.path(), &default_regions(), &other).is_err());
    }

    #[test]
    fn docker_compose_accepts_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let (p, _) = default_project(tmp.path());
        let file = p.compose_file.to_string_lossy().into_owned();
        let out = match std::process::Command::new("docker-compose")
            .args(["-f", &file, "config", "--quiet"])
            .output()
        {
            Ok(out) => out,
            Err(e) => {
                eprintln!("skipped: docker-compose cannot run here ({e})");
                return;
            }
        };
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn the_stack_file_is_the_compose_file_with_liveness_checks_a_host_mode_port_and_no_container_names(
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let (p, compose) = default_project(tmp.path());
        let spec = ComposeSpec::default_for_version();
        let stack = write_stack(tmp.path(), &default_regions(), &spec).unwrap();
        assert!(!stack.created_secrets, "the same topology and keys");
        assert_eq!(stack.topology, p.topology);
        let text = std::fs::read_to_string(tmp.path().join(STACK_FILE)).unwrap();
        assert!(
            !text.contains("container_name") && !text.contains("/readyz"),
            "{text}"
        );
        assert_eq!(text.matches("/healthz\"]").count(), 10, "{text}");
        assert!(
            text.contains("        published: 4599\n        protocol: tcp\n        mode: host\n")
        );
        // Line for line the same services, networks and volumes otherwise.
        let strip = |t: &str| -> Vec<String> {
            t.lines()
                .filter(|l| !l.starts_with('#') && !l.contains("container_name"))
                .map(|l| l.replace("/readyz", "/healthz"))
                .collect()
        };
        let (a, b) = (strip(&compose), strip(&text));
        let differ: Vec<&str> = a
            .iter()
            .filter(|l| !b.contains(l))
            .map(String::as_str)
            .collect();
        assert_eq!(differ, ["      - \"127.0.0.1:4599:4599\""]);
    }

    #[test]
    fn cluster_names_are_checked() {
        for ok in ["kmsim", "kmsim-test-42"] {
            assert!(check_cluster_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Kmsim", "1kmsim", "a_b", "kmsim-", "a/b"] {
            assert!(check_cluster_name(bad).is_err(), "{bad}");
        }
    }
}
