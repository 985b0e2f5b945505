//! `kmsim up`: start a local cluster and wait until every Region has a leader.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use tokio::signal::unix::{signal, Signal, SignalKind};

use kmsim_node::config::Topology;
use kmsim_sim::cluster::{ClusterDir, DEFAULT_AWS_PORT};
use kmsim_sim::container::compose::{self, ComposeSpec};
use kmsim_sim::container::docker::Docker;
use kmsim_sim::container::{image, runtime};
use kmsim_sim::health::{wait_healthy, wait_listening};
use kmsim_sim::process::{
    gateway_pid, running_pid, start_gateway, start_node, stop_gateway, stop_node,
};
use kmsim_sim::prometheus_sd;

/// Starts every node of a local cluster as a separate `kmsim node` process. On first use it
/// writes the topology (`topology.toml`), one domain key per Region (`keys/<region>.key`,
/// mode 0600) and a cluster CA with a certificate per node, one for the operator and one for
/// the gateway (`keys/tls/`, 0600: every gRPC link is mutual TLS, and the CLI dials as the
/// operator) into the data directory; later runs start the cluster found there and ignore
/// `--regions`, `--nodes`, `--base-port` and `--aws-port`. Every run (re)writes
/// `prometheus/targets.json`, a Prometheus file_sd list of every node's and the gateway's
/// `/metrics`, with the CA certificate beside it (deploy/observability/ reads them). Every
/// node also serves the KMS API as AWS JSON 1.1 with SigV4 (on its gRPC port + 100), and a
/// gateway process (`kmsim gateway`, `pids/gateway.pid`, `logs/gateway.log`) serves all
/// Regions on one endpoint, http://127.0.0.1:4599 by default; new clusters accept access key
/// `test`, secret `test` (principal `arn:aws:iam::111122223333:root`). Waits until every
/// Region has elected a leader and the gateway listens, prints the nodes, the endpoint and the
/// environment lines for AWS clients, then stays in the foreground until Ctrl-C (which stops
/// every process cleanly), or returns at once with `--detach` (stop later with `kmsim down`).
/// The processes inherit the environment: `KMSIM_LOG`, `KMSIM_LOG_FORMAT`, and
/// `KMSIM_OTLP_ENDPOINT` (export every request's spans to an OpenTelemetry collector, e.g.
/// http://127.0.0.1:4317).
#[derive(Args)]
pub struct UpArgs {
    #[command(flatten)]
    shape: super::ShapeArgs,
    /// The cluster's data directory.
    #[arg(long, env = "KMSIM_DATA_DIR", default_value = crate::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// First gRPC port; nodes get consecutive ports. 0 lets the OS choose free ports.
    #[arg(long, default_value_t = 4601)]
    base_port: u16,
    /// Port of the single AWS endpoint (the gateway) for every Region, on 127.0.0.1. 0 lets
    /// the OS choose a free port.
    #[arg(long, default_value_t = DEFAULT_AWS_PORT)]
    aws_port: u16,
    /// Return once the cluster is healthy and leave the nodes running.
    #[arg(long)]
    detach: bool,
    /// How long to wait for every Region to elect a leader, in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Enable test-only hooks on new clusters (exposes plaintext key material over the admin
    /// API; for leak tests only).
    #[arg(long, hide = true)]
    test_hooks: bool,
    /// Where the nodes run: `process` (local processes on 127.0.0.1) or `docker` (one
    /// container per node, `<name>-<region>-<id>`, from the image `kmsim image build` makes,
    /// which is built or reused first; the project `kmsim deploy compose` writes, in the data
    /// directory; one network per Region plus an inter-Region one, a volume per node, the
    /// gateway on 127.0.0.1:<aws-port>; waits until every node's /readyz is 200). With docker,
    /// --base-port, --test-hooks and --aws-tls do not apply; `kmsim down` removes the
    /// cluster's labelled containers and networks (volumes with `--volumes`).
    #[arg(long, value_enum, default_value_t = Runtime::Process)]
    runtime: Runtime,
    /// The cluster's name with `--runtime docker`: the first part of every container, network
    /// and volume name, and the value of their label io.kmsim.cluster.
    #[arg(long, default_value = kmsim_sim::container::compose::DEFAULT_CLUSTER)]
    name: String,
    /// Serve the AWS endpoints (the gateway and every node's) over HTTPS, with certificates
    /// from the cluster's CA (new clusters only; default: plain HTTP). Point AWS clients at the
    /// CA with `AWS_CA_BUNDLE` (the path is printed).
    #[arg(long)]
    aws_tls: bool,
    /// Have the gateway hand each client connection to a node of the Region its first request
    /// is signed for, instead of relaying every request (new clusters only; sets `[endpoint]
    /// handoff` in the topology; processes only, not with --aws-tls). The node then serves the
    /// connection directly, so the single endpoint costs next to nothing per request, but it
    /// behaves like a layer-4 load balancer under faults: a connection handed to a node that
    /// freezes waits with it. For throughput and latency studies; fault experiments keep the
    /// default relay. See docs/ARCHITECTURE.md, "Connection handoff".
    #[arg(long, conflicts_with = "aws_tls")]
    gateway_handoff: bool,
}

/// Where `kmsim up` runs the nodes.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Runtime {
    /// Local processes on 127.0.0.1.
    Process,
    /// One Docker container per node.
    Docker,
}

/// `kmsim up`
pub fn run(a: UpArgs) -> anyhow::Result<ExitCode> {
    if a.runtime == Runtime::Docker {
        return run_docker(a);
    }
    if runtime::is_compose_project(&a.data_dir) {
        anyhow::bail!(
            "{} holds a cluster that runs in containers: use `kmsim up --runtime docker`",
            a.data_dir.display()
        );
    }
    let dir = ClusterDir::new(&a.data_dir);
    if !dir.topology_path().exists() {
        dir.create(
            &a.shape.regions(),
            a.base_port,
            a.aws_port,
            a.test_hooks,
            a.aws_tls,
        )?;
        if a.gateway_handoff {
            dir.edit_topology(|t| {
                if let Some(e) = t.endpoint.as_mut() {
                    e.handoff = true;
                }
            })?;
        }
        outln!("created cluster in {}", a.data_dir.display());
    } else {
        outln!(
            "starting the cluster found in {} (its topology.toml decides Regions, nodes and ports)",
            a.data_dir.display()
        );
    }
    let nodes = dir.nodes()?;
    if let Some((n, _)) = nodes.iter().find(|(n, _)| running_pid(&dir, n).is_some()) {
        anyhow::bail!(
            "{n} of this cluster is already running; use `kmsim status` or `kmsim down` first"
        );
    }
    if gateway_pid(&dir).is_some() {
        anyhow::bail!("the gateway of this cluster is already running; use `kmsim down` first");
    }
    let topology = dir.topology()?;
    // From the topology being started, every time: an edited topology is followed.
    let targets = prometheus_sd::write(
        dir.root(),
        &topology,
        &prometheus_sd::process_targets(&topology),
    )?;
    let exe = std::env::current_exe()?;
    let stop_all = || {
        let _ = stop_gateway(&dir);
        for (n, _) in &nodes {
            let _ = stop_node(&dir, n);
        }
    };
    // Ctrl-C and SIGTERM are caught from before the first node starts, so that neither a
    // signal during start-up nor one right after "press Ctrl-C" leaves nodes behind.
    let rt = super::runtime()?;
    let mut signals = {
        let _guard = rt.enter();
        StopSignals::new()?
    };
    for (n, _) in &nodes {
        start_node(&exe, &dir, n)?;
    }
    if topology.endpoint.is_some() {
        start_gateway(&exe, &dir)?;
    }
    let timeout = Duration::from_secs(a.timeout);
    let started = rt.block_on(async {
        tokio::select! {
            r = wait_healthy(&dir, timeout) => Some(r),
            _ = signals.recv() => None,
        }
    });
    let statuses = match started {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            stop_all();
            return Err(e.into());
        }
        None => {
            outln!("interrupted; stopping the nodes started so far");
            stop_all();
            return Ok(ExitCode::from(130));
        }
    };
    if let Some(endpoint) = &topology.endpoint {
        if !rt.block_on(wait_listening(endpoint.listen, timeout)) {
            stop_all();
            anyhow::bail!(
                "the gateway did not listen on {} within {timeout:?}; see {}",
                endpoint.listen,
                dir.gateway_log_path().display()
            );
        }
    }
    super::status::print_table(&dir, &statuses)?;
    outln!();
    outln!(
        "KMS gRPC endpoints: {}",
        nodes
            .iter()
            .map(|(_, e)| e.advertise_addr())
            .collect::<Vec<_>>()
            .join(", ")
    );
    print_aws_endpoints(&topology);
    outln!(
        "Prometheus targets (file_sd, every node and the gateway): {}",
        targets.display()
    );
    outln!(
        "try:  kmsim kms create-key --data-dir {}",
        a.data_dir.display()
    );
    if a.detach {
        outln!(
            "cluster running in the background; stop it with: kmsim down --data-dir {}",
            a.data_dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    outln!("press Ctrl-C to stop the cluster");
    rt.block_on(signals.recv());
    outln!("stopping…");
    if stop_gateway(&dir)? {
        outln!("stopped gateway");
    }
    for (n, _) in &nodes {
        if stop_node(&dir, n)? {
            outln!("stopped {n}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `kmsim up --runtime docker`: the compose project in the data directory, started and waited
/// for.
fn run_docker(a: UpArgs) -> anyhow::Result<ExitCode> {
    if a.gateway_handoff {
        anyhow::bail!("--gateway-handoff needs the nodes on the gateway's host: processes only (the containers' gateway relays)");
    }
    let docker = Docker::connect()?;
    let img = image::build(&docker, &std::env::current_exe()?, &image::default_tag())?;
    outln!(
        "{} image {} ({:.1} MiB)",
        if img.reused { "using" } else { "built" },
        img.tag,
        img.size as f64 / (1024.0 * 1024.0)
    );
    std::fs::create_dir_all(&a.data_dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", a.data_dir.display()))?;
    let aws_port = match a.aws_port {
        0 => std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port(),
        p => p,
    };
    let spec = ComposeSpec {
        cluster: a.name.clone(),
        image: img.tag,
        aws_port,
    };
    let project = compose::write_project(&a.data_dir, &a.shape.regions(), &spec)?;
    if !docker.cluster_objects(&spec.cluster)?.containers.is_empty() {
        anyhow::bail!(
            "containers of the cluster {} exist already; use `kmsim down --data-dir {}` first",
            spec.cluster,
            a.data_dir.display()
        );
    }
    // Only the gateway is published on the host; the nodes are reached on the cluster's
    // networks alone (deploy/observability/README.md).
    let cluster_dir = ClusterDir::new(&a.data_dir);
    let loaded = cluster_dir.topology()?;
    let targets = prometheus_sd::write(
        cluster_dir.root(),
        &loaded,
        &prometheus_sd::container_targets(&loaded, aws_port),
    )?;
    let rt = super::runtime()?;
    let mut signals = {
        let _guard = rt.enter();
        StopSignals::new()?
    };
    let remove = || match docker.remove_cluster(&spec.cluster, false) {
        Ok(o) => outln!(
            "removed {} containers and {} networks (volumes kept)",
            o.containers.len(),
            o.networks.len()
        ),
        Err(e) => outln!("removing the containers failed: {e}"),
    };
    runtime::start(&docker, &a.data_dir, &spec.cluster)?;
    let timeout = Duration::from_secs(a.timeout);
    let ready = rt.block_on(async {
        tokio::select! {
            r = runtime::wait_ready(&project.topology, &spec.cluster, aws_port, timeout) => Some(r),
            _ = signals.recv() => None,
        }
    });
    match ready {
        Some(Ok(took)) => {
            let nodes: usize = project.topology.regions.iter().map(|r| r.nodes.len()).sum();
            outln!(
                "{nodes} node containers and the gateway ready in {:.1} s after `docker-compose up` (cluster {name}, label io.kmsim.cluster={name})",
                took.as_secs_f64(),
                name = spec.cluster
            );
        }
        Some(Err(e)) => {
            remove();
            return Err(e.into());
        }
        None => {
            outln!("interrupted; removing the containers");
            remove();
            return Ok(ExitCode::from(130));
        }
    }
    outln!(
        "AWS endpoint for every Region: http://127.0.0.1:{aws_port}  (export AWS_ENDPOINT_URL_KMS=http://127.0.0.1:{aws_port} AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION={})",
        project
            .topology
            .regions
            .first()
            .map(|r| r.name.as_str())
            .unwrap_or("us-east-1")
    );
    outln!(
        "Prometheus targets (file_sd, the gateway only: the nodes' ports are not published): {}",
        targets.display()
    );
    if a.detach {
        outln!(
            "cluster running in containers; remove them with: kmsim down --data-dir {}",
            a.data_dir.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    outln!("press Ctrl-C to stop the cluster");
    rt.block_on(signals.recv());
    remove();
    Ok(ExitCode::SUCCESS)
}

/// SIGINT (Ctrl-C) and SIGTERM, registered once so that none is missed between checks.
struct StopSignals {
    interrupt: Signal,
    terminate: Signal,
}

impl StopSignals {
    /// Registers both handlers; must run inside a Tokio runtime context.
    fn new() -> std::io::Result<Self> {
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for the next of the two signals.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// The AWS endpoints and the environment lines that point AWS clients at the gateway.
pub fn print_aws_endpoints(topology: &Topology) {
    let nodes: Vec<String> = topology
        .regions
        .iter()
        .flat_map(|r| r.nodes.iter().filter_map(|n| n.aws_advertise_addr()))
        .map(|a| format!("{}://{a}", topology.aws_scheme()))
        .collect();
    if !nodes.is_empty() {
        outln!(
            "AWS JSON endpoints of the nodes (each serves its own Region, forwards the others): {}",
            nodes.join(", ")
        );
    }
    let Some(endpoint) = &topology.endpoint else {
        return;
    };
    outln!();
    outln!(
        "AWS endpoint for every Region (the Region comes from each request's SigV4 scope): {}://{}",
        topology.aws_scheme(),
        endpoint.listen
    );
    let ca_bundle = match topology.tls.as_ref().filter(|t| t.aws_https) {
        Some(t) => format!(" AWS_CA_BUNDLE={}", t.ca_cert().display()),
        None => String::new(),
    };
    if let Some(c) = topology.credentials.first() {
        let region = topology
            .regions
            .first()
            .map(|r| r.name.as_str())
            .unwrap_or("us-east-1");
        let token = c
            .session_token
            .as_ref()
            .map(|t| format!(" AWS_SESSION_TOKEN={}", t.expose()))
            .unwrap_or_default();
        outln!("point the AWS CLI, SDKs and the Encryption SDK at it with:");
        outln!(
            "export AWS_ENDPOINT_URL_KMS={}://{} AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY={}{token} AWS_DEFAULT_REGION={region}{ca_bundle}",
            topology.aws_scheme(),
            endpoint.listen,
            c.access_key_id,
            c.secret_access_key.expose()
        );
    }
    outln!();
}
