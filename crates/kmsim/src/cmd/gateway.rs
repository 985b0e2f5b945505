//! `kmsim gateway`: the single AWS endpoint for every Region of a topology.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use kmsim_node::config::Topology;

/// Serves the KMS API as AWS JSON 1.1 over HTTP (SigV4) for every Region of the topology, on
/// one address: each request is forwarded, unchanged, to a node of the Region named in its SigV4
/// credential scope (round-robin over that Region's nodes, skipping nodes that cannot be
/// reached), which verifies the signature and answers; with `handoff = true` in `[endpoint]`
/// (`kmsim up --gateway-handoff`) it instead hands each client connection to a node of the
/// Region its first request is signed for, which serves it directly (nodes on this host, plain
/// HTTP; see docs/ARCHITECTURE.md, "Connection handoff"). Point any AWS client at it with
/// `AWS_ENDPOINT_URL_KMS=http://ADDRESS` (https:// with `aws_https` in the topology's `[tls]`
/// table, `kmsim up --aws-tls`: the gateway serves `gateway.crt` and forwards over HTTPS, and
/// clients trust the cluster CA with `AWS_CA_BUNDLE`). `kmsim up` starts one (logs in `logs/gateway.log`, PID
/// in `pids/gateway.pid`); run it by hand only for a topology you start yourself. Stops on
/// SIGTERM or Ctrl-C. Logs go to stderr (`KMSIM_LOG` sets the filter, default `info`).
#[derive(Args)]
pub struct GatewayArgs {
    /// The topology file (TOML, version 1).
    #[arg(long)]
    topology: PathBuf,
    /// Address to listen on [default: the topology's `[endpoint] listen`].
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Export the spans of traced requests to this OpenTelemetry collector (OTLP over gRPC,
    /// an http:// URL such as http://127.0.0.1:4317) [default: KMSIM_OTLP_ENDPOINT, else no
    /// export]. See docs/OBSERVABILITY.md.
    #[arg(long)]
    otlp_endpoint: Option<String>,
}

/// `kmsim gateway`
pub fn run(a: GatewayArgs) -> anyhow::Result<ExitCode> {
    let rt = super::runtime()?;
    let otlp = super::logging::otlp_endpoint(a.otlp_endpoint)?.map(|e| {
        let service = super::logging::Service {
            name: "kmsim-gateway",
            instance: "gateway".to_string(),
            region: None,
        };
        (e, service)
    });
    let _telemetry = {
        let _in_runtime = rt.enter();
        super::logging::init(otlp)?
    };
    let topology = Topology::load(&a.topology)?;
    rt.block_on(kmsim_node::aws::run_gateway(
        topology,
        a.listen,
        super::stop_signal(),
    ))?;
    Ok(ExitCode::SUCCESS)
}
