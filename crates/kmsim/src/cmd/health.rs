//! `kmsim health`: one `GET` of a health or readiness URL, for health checks in images that
//! have no shell and no curl (`FROM scratch`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

/// Asks a node's or the gateway's `/healthz` or `/readyz` (served on the AWS endpoint's port,
/// without SigV4) and exits 0 on `200 OK`, 1 otherwise, printing the status and the answer's
/// first line. `GET /healthz` is 200 while the process serves; a node's `GET /readyz` is 200 only
/// when its Region has a leader, the node has applied to within 64 entries of the Region's
/// commit index and its synchronizer task runs (503 with the reason otherwise); the gateway's
/// once it serves. The image's `HEALTHCHECK` and the compose files use it.
#[derive(Args)]
pub struct HealthArgs {
    /// The URL to ask.
    #[arg(long, default_value = "http://127.0.0.1:4700/healthz")]
    url: String,
    /// The CA certificate (PEM) an https:// URL is verified against (the cluster's
    /// `keys/tls/ca.crt`).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// How long to wait for the answer, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    timeout_ms: u64,
}

/// `kmsim health`
pub fn run(a: HealthArgs) -> anyhow::Result<ExitCode> {
    let ca = match &a.ca {
        Some(p) => Some(
            std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", p.display()))?,
        ),
        None => None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = rt.block_on(kmsim_sim::health::http_get(
        &a.url,
        ca.as_deref(),
        Duration::from_millis(a.timeout_ms),
    ));
    match answer {
        Ok((status, body)) => {
            outln!("{status} {}", body.lines().next().unwrap_or_default());
            Ok(if status == 200 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(e) => {
            outln!("unreachable: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}
