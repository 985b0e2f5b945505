//! Finding a node to talk to: `--endpoint`, or the nodes of one Region of the cluster in
//! `--data-dir`, tried in order until one accepts a connection.

use std::path::Path;
use std::time::Duration;

use kmsim_node::tls::Dialer;
use tonic::transport::Channel;

use kmsim_sim::cluster::ClusterDir;

/// How long to wait for one node to accept a connection before trying the next.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Deadline of one API call (the server forwards writes to its Region's leader, and a Region
/// electing a new leader takes a few heartbeats, so this is generous).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// Where to send the calls.
#[derive(Debug, PartialEq, Eq)]
pub struct Targets {
    /// The Region the addresses serve, when known from the topology.
    pub region: Option<String>,
    /// gRPC addresses (`host:port`), in the order to try them.
    pub addrs: Vec<String>,
}

/// No address accepted a connection.
#[derive(Debug)]
pub struct ConnectError {
    /// Every address tried.
    pub tried: Vec<String>,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The AWS CLI's wording, one URL per address tried.
        let urls: Vec<String> = self
            .tried
            .iter()
            .map(|a| format!("\"http://{a}\""))
            .collect();
        write!(
            f,
            "Could not connect to the endpoint URL: {}",
            urls.join(", ")
        )
    }
}

impl std::error::Error for ConnectError {}

/// The addresses to try: `endpoint` alone when given (with or without `http://`), otherwise the
/// nodes of `region` (default: the first Region of the topology) in `data_dir`.
pub fn targets(
    endpoint: Option<&str>,
    data_dir: &Path,
    region: Option<&str>,
) -> anyhow::Result<Targets> {
    if let Some(e) = endpoint {
        let addr = e.strip_prefix("http://").unwrap_or(e).trim_end_matches('/');
        if addr.is_empty() || addr.contains('/') {
            anyhow::bail!("--endpoint takes HOST:PORT (a node's gRPC address), not '{e}'");
        }
        return Ok(Targets {
            region: region.map(str::to_string),
            addrs: vec![addr.to_string()],
        });
    }
    let dir = ClusterDir::new(data_dir);
    if !dir.topology_path().exists() {
        anyhow::bail!(
            "no cluster in {} (no topology.toml): start one with `kmsim up --data-dir {0}`, \
             or pass --endpoint HOST:PORT",
            data_dir.display()
        );
    }
    let nodes = dir.nodes()?;
    let region = match region {
        Some(r) => r.to_string(),
        None => nodes
            .first()
            .map(|(n, _)| n.region.clone())
            .ok_or_else(|| {
                anyhow::anyhow!("the topology in {} has no nodes", data_dir.display())
            })?,
    };
    let addrs: Vec<String> = nodes
        .iter()
        .filter(|(n, _)| n.region == region)
        .map(|(_, e)| e.advertise_addr())
        .collect();
    if addrs.is_empty() {
        let mut known: Vec<&str> = nodes.iter().map(|(n, _)| n.region.as_str()).collect();
        known.dedup();
        anyhow::bail!(
            "the cluster in {} has no Region '{region}' (it has: {})",
            data_dir.display(),
            known.join(", ")
        );
    }
    Ok(Targets {
        region: Some(region),
        addrs,
    })
}

/// How to dial: the operator certificate of the cluster in `data_dir`, or plaintext when
/// there is no cluster there (`--endpoint` of a node of a topology without `[tls]`).
pub fn dialer(data_dir: &Path) -> anyhow::Result<Dialer> {
    let dir = ClusterDir::new(data_dir);
    Ok(match dir.topology_path().exists() {
        true => dir.operator_dialer()?,
        false => Dialer::plain(),
    })
}

/// Connects to the first address that accepts within [`CONNECT_TIMEOUT`]; calls on the channel
/// time out after [`CALL_TIMEOUT`].
pub async fn connect(dialer: &Dialer, addrs: &[String]) -> Result<Channel, ConnectError> {
    for addr in addrs {
        let Ok(endpoint) = dialer.endpoint(addr) else {
            continue;
        };
        let endpoint = endpoint
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT);
        // The outer timeout also bounds the HTTP/2 handshake, not only the TCP connect.
        if let Ok(Ok(channel)) = tokio::time::timeout(CONNECT_TIMEOUT * 2, endpoint.connect()).await
        {
            return Ok(channel);
        }
    }
    Err(ConnectError {
        tried: addrs.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_wins_and_accepts_a_scheme() {
        let t = targets(
            Some("http://127.0.0.1:7000/"),
            Path::new("/nonexistent"),
            None,
        )
        .expect("targets");
        assert_eq!(t.addrs, vec!["127.0.0.1:7000".to_string()]);
        let t = targets(
            Some("localhost:7000"),
            Path::new("/nonexistent"),
            Some("eu-west-1"),
        )
        .expect("targets");
        assert_eq!(
            t,
            Targets {
                region: Some("eu-west-1".into()),
                addrs: vec!["localhost:7000".into()]
            }
        );
        assert!(targets(Some("https://a/b"), Path::new("/nonexistent"), None).is_err());
    }

    #[test]
    fn missing_cluster_says_how_to_start_one() {
        let e = targets(None, Path::new("/nonexistent/kmsim"), None).expect_err("no cluster");
        assert!(e.to_string().contains("kmsim up"), "{e}");
    }
}
