//! A local cluster on disk: the data directory layout, the topology and domain keys the
//! launcher writes, and the PID files that say which processes it started.
//!
//! ```text
//! <data-dir>/topology.toml           the topology every node reads
//! <data-dir>/keys/<region>.key       each Region's domain key (hex, mode 0600)
//! <data-dir>/keys/tls/               the cluster CA and every certificate and key (PEM, 0600;
//!                                    names in `kmsim_node::tls`); ca.key is read by no process
//! <data-dir>/nodes/<region>/<id>/    each node's RocksDB data directory
//! <data-dir>/logs/<region>-<id>.log  each node's stdout/stderr
//! <data-dir>/logs/gateway.log        the gateway's stdout/stderr
//! <data-dir>/pids/<region>-<id>.pid  PID of each running node started by the launcher
//! <data-dir>/pids/gateway.pid        PID of the gateway (the single AWS endpoint)
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use kmsim_core::ids::Region;
use kmsim_crypto::{DomainKey, TransportKeyPair, TrustAnchor};
use kmsim_node::config::{
    CredentialEntry, EndpointConfig, NodeEntry, RaftTiming, RegionConfig, Secret, SyncTiming,
    Topology, TrustAnchorEntry, TOPOLOGY_VERSION,
};
use kmsim_node::key_files::wrap_transport_key;
use kmsim_node::tls::issue::cluster_files;
use kmsim_node::tls::{Dialer, TlsSettings};

use crate::container::kubernetes::PodNames;

/// The gateway's port unless told otherwise (`kmsim up --aws-port`).
pub const DEFAULT_AWS_PORT: u16 = 4599;

/// A node's AWS endpoint port is its gRPC port plus this (with fixed ports).
pub const AWS_PORT_OFFSET: u16 = 100;

/// The credentials the launcher writes: access key `test`, secret `test`, the account's root.
pub fn default_credentials(account: &str) -> CredentialEntry {
    CredentialEntry {
        access_key_id: "test".into(),
        secret_access_key: Secret::new("test"),
        principal_arn: format!("arn:aws:iam::{account}:root"),
        session_token: None,
    }
}

/// A node's gRPC port inside its container (every container has its own address).
pub const CONTAINER_GRPC_PORT: u16 = 4601;

/// A node's AWS endpoint port inside its container.
pub const CONTAINER_AWS_PORT: u16 = CONTAINER_GRPC_PORT + AWS_PORT_OFFSET;

/// Where the processes of a new cluster listen and how they reach each other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Addressing {
    /// Local processes on 127.0.0.1 (`kmsim up`): gRPC ports from `base_port` upwards (0: the
    /// OS chooses), each node's AWS endpoint on its gRPC port + [`AWS_PORT_OFFSET`], the
    /// gateway on `aws_port` (0: the OS chooses).
    Loopback {
        /// The first node's gRPC port, or 0.
        base_port: u16,
        /// The gateway's port, or 0.
        aws_port: u16,
    },
    /// One container per node (`kmsim deploy compose`): every node listens on 0.0.0.0, gRPC
    /// on [`CONTAINER_GRPC_PORT`] and AWS JSON on [`CONTAINER_AWS_PORT`], and is reached by its
    /// container's name ([`container_name`]); the gateway listens on 0.0.0.0:4599.
    Containers {
        /// The cluster's name, the first part of every container's name.
        prefix: String,
    },
    /// One Kubernetes pod per node (`kmsim deploy kubernetes`): listening as for
    /// [`Addressing::Containers`], but reached by the stable DNS name its StatefulSet gives the
    /// pod ([`PodNames::node_host`], e.g.
    /// `kmsim-us-east-1-2.kmsim-us-east-1-peers.kmsim.svc.cluster.local`), which its
    /// certificate carries as a DNS SAN; the gateway listens on 0.0.0.0:4599.
    Kubernetes(PodNames),
}

/// The name (and DNS name, on the cluster's networks) of a node's container:
/// `<cluster>-<region>-<id>`, e.g. `kmsim-us-east-1-2`.
pub fn container_name(cluster: &str, region: &str, id: u64) -> String {
    format!("{cluster}-{region}-{id}")
}

/// A node's data directory, relative to the topology file: `nodes/<region>/<id>`.
pub fn node_data_dir(region: &str, id: u64) -> PathBuf {
    PathBuf::from("nodes").join(region).join(id.to_string())
}

/// The addresses of one new node.
struct NodeAddrs {
    listen: SocketAddr,
    aws_listen: SocketAddr,
    advertise: Option<String>,
    aws_advertise: Option<String>,
}

/// Errors of the launcher.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Something about the cluster is not as expected.
    #[error("{0}")]
    Invalid(String),
}

/// Wraps an io error with context.
pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
    let what = what.into();
    move |source| ClusterError::Io { what, source }
}

/// The files of one local cluster.
#[derive(Debug, Clone)]
pub struct ClusterDir {
    root: PathBuf,
}

/// A node of the cluster, named `<region>/<id>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeName {
    /// The Region.
    pub region: String,
    /// The Raft node id.
    pub id: u64,
}

impl NodeName {
    /// Parses `REGION/ID`.
    pub fn parse(s: &str) -> Result<NodeName, ClusterError> {
        let (region, id) = s.split_once('/').ok_or_else(|| {
            ClusterError::Invalid(format!("'{s}' is not REGION/ID, e.g. us-east-1/2"))
        })?;
        let id = id
            .parse()
            .map_err(|_| ClusterError::Invalid(format!("'{id}' is not a node id")))?;
        Ok(NodeName {
            region: region.to_string(),
            id,
        })
    }
}

impl std::fmt::Display for NodeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.region, self.id)
    }
}

impl ClusterDir {
    /// The cluster kept in `root`.
    /// The directory is made absolute (against the current directory): the launcher writes it
    /// into every node's command line, and `kmsim down` recognises its nodes by that line, so a
    /// cluster started with `--data-dir /abs/path` and one addressed as `.kmsim` from its
    /// parent must be the same cluster.
    pub fn new(root: impl Into<PathBuf>) -> ClusterDir {
        let root = root.into();
        ClusterDir {
            root: std::path::absolute(&root).unwrap_or(root),
        }
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/topology.toml`
    pub fn topology_path(&self) -> PathBuf {
        self.root.join("topology.toml")
    }

    /// Reads the topology.
    pub fn topology(&self) -> Result<Topology, ClusterError> {
        if !self.topology_path().exists() {
            return Err(ClusterError::Invalid(format!(
                "no cluster in {0} (no topology.toml): start one with `kmsim up --data-dir {0}`",
                self.root.display()
            )));
        }
        Topology::load(&self.topology_path()).map_err(|e| ClusterError::Invalid(e.to_string()))
    }

    /// Changes the topology file as written (relative paths kept) with `edit`, checks the
    /// result and writes it back, owner-only (it holds the secret access key).
    pub fn edit_topology(&self, edit: impl FnOnce(&mut Topology)) -> Result<(), ClusterError> {
        let path = self.topology_path();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ClusterError::Invalid(format!("{}: {e}", path.display())))?;
        let mut topology =
            Topology::parse(&text).map_err(|e| ClusterError::Invalid(e.to_string()))?;
        edit(&mut topology);
        let text = topology.to_toml();
        Topology::parse(&text).map_err(|e| ClusterError::Invalid(e.to_string()))?;
        // A new file renamed over the old one: a reader never sees half a topology.
        let new = self.root.join("topology.toml.new");
        let _ = std::fs::remove_file(&new);
        write_secret_file(&new, text.trim_end())?;
        std::fs::rename(&new, &path).map_err(io(format!("replace {}", path.display())))
    }

    /// How the operator dials this cluster's nodes: the operator certificate of its `[tls]`
    /// table (plaintext for a topology without one). Build it once and reuse its channels.
    pub fn operator_dialer(&self) -> Result<Dialer, ClusterError> {
        Dialer::operator(self.topology()?.tls.as_ref())
            .map_err(|e| ClusterError::Invalid(format!("operator certificate: {e}")))
    }

    /// `<root>/pids/<region>-<id>.pid`
    pub fn pid_path(&self, n: &NodeName) -> PathBuf {
        self.root
            .join("pids")
            .join(format!("{}-{}.pid", n.region, n.id))
    }

    /// `<root>/logs/<region>-<id>.log`
    pub fn log_path(&self, n: &NodeName) -> PathBuf {
        self.root
            .join("logs")
            .join(format!("{}-{}.log", n.region, n.id))
    }

    /// `<root>/pids/gateway.pid`
    pub fn gateway_pid_path(&self) -> PathBuf {
        self.root.join("pids").join("gateway.pid")
    }

    /// `<root>/logs/gateway.log`
    pub fn gateway_log_path(&self) -> PathBuf {
        self.root.join("logs").join("gateway.log")
    }

    /// Writes a fresh topology for `regions` (name, node count) and a domain key per Region, for
    /// processes on 127.0.0.1 ([`Addressing::Loopback`]): gRPC ports are taken from `base_port`
    /// upwards and each node's AWS endpoint is on its gRPC port + [`AWS_PORT_OFFSET`]; with
    /// `base_port` 0 the OS chooses every node port. The gateway (the single AWS endpoint)
    /// listens on `aws_port`, or an OS-chosen port when it is 0. See [`ClusterDir::create_with`].
    pub fn create(
        &self,
        regions: &[(String, usize)],
        base_port: u16,
        aws_port: u16,
        test_hooks: bool,
        aws_tls: bool,
    ) -> Result<Topology, ClusterError> {
        self.create_with(
            regions,
            &Addressing::Loopback {
                base_port,
                aws_port,
            },
            test_hooks,
            aws_tls,
        )
    }

    /// Writes a fresh topology for `regions` (name, node count), addressed as `addressing` says,
    /// with a domain key and a transport key per Region and a trust anchor per partition. The
    /// credentials are [`default_credentials`]. A cluster CA signs one certificate per node, one
    /// for the operator and one for the gateway ([`write_certificates`]); with `aws_tls` the AWS
    /// endpoints serve HTTPS. The one way a cluster's secrets are made: `kmsim up` (processes),
    /// `kmsim deploy compose` (containers) and `kmsim deploy kubernetes` (pods) all come here.
    pub fn create_with(
        &self,
        regions: &[(String, usize)],
        addressing: &Addressing,
        test_hooks: bool,
        aws_tls: bool,
    ) -> Result<Topology, ClusterError> {
        if self.topology_path().exists() {
            return Err(ClusterError::Invalid(format!(
                "{} already holds a cluster; use it with `kmsim up --data-dir {0}` or remove it",
                self.root.display()
            )));
        }
        let dirs: &[&str] = match addressing {
            Addressing::Loopback { .. } => &["keys", "nodes", "logs", "pids"],
            // Containers keep their data in volumes and log to their runtime.
            Addressing::Containers { .. } | Addressing::Kubernetes(_) => &["keys"],
        };
        for d in dirs {
            std::fs::create_dir_all(self.root.join(d))
                .map_err(io(format!("create {}", self.root.join(d).display())))?;
        }
        // Only the owner may list or enter the directory of secret keys.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let keys = self.root.join("keys");
            std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o700))
                .map_err(io(format!("restrict {}", keys.display())))?;
        }
        let mut port = match addressing {
            Addressing::Loopback { base_port, .. } => *base_port,
            Addressing::Containers { .. } | Addressing::Kubernetes(_) => 0,
        };
        // With port 0, ports are chosen below the OS's ephemeral range and claimed for this
        // cluster (`ports.rs`), so a node killed and started again finds its port free.
        let mut claims = crate::ports::PortClaims::new(&self.root);
        let mut free_addr = || -> Result<SocketAddr, ClusterError> {
            claims.take().map_err(io("find a free port"))
        };
        let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let any = |port: u16| SocketAddr::from(([0, 0, 0, 0], port));
        // A node in its own network namespace: every port on 0.0.0.0, reached by `host`.
        let named = |host: String| NodeAddrs {
            listen: any(CONTAINER_GRPC_PORT),
            aws_listen: any(CONTAINER_AWS_PORT),
            advertise: Some(format!("{host}:{CONTAINER_GRPC_PORT}")),
            aws_advertise: Some(format!("{host}:{CONTAINER_AWS_PORT}")),
        };
        let mut node_addrs = |region: &str, id: u64| -> Result<NodeAddrs, ClusterError> {
            match addressing {
                Addressing::Loopback { base_port: 0, .. } => Ok(NodeAddrs {
                    listen: free_addr()?,
                    aws_listen: free_addr()?,
                    advertise: None,
                    aws_advertise: None,
                }),
                Addressing::Loopback { .. } => {
                    let grpc = port;
                    let aws = grpc.checked_add(AWS_PORT_OFFSET);
                    port = port
                        .checked_add(1)
                        .ok_or_else(|| ClusterError::Invalid("ran out of ports".into()))?;
                    let aws =
                        aws.ok_or_else(|| ClusterError::Invalid("ran out of ports".into()))?;
                    Ok(NodeAddrs {
                        listen: loopback(grpc),
                        aws_listen: loopback(aws),
                        advertise: None,
                        aws_advertise: None,
                    })
                }
                Addressing::Containers { prefix } => Ok(named(container_name(prefix, region, id))),
                Addressing::Kubernetes(names) => Ok(named(names.node_host(region, id))),
            }
        };
        let mut region_cfgs = Vec::new();
        // One trust anchor per partition: it certifies the transport key of each of the
        // partition's Regions. Its private half stays here (0600) for adding Regions later; no
        // node reads it.
        let mut anchors: BTreeMap<String, TrustAnchor> = BTreeMap::new();
        for (name, count) in regions {
            let key_rel = PathBuf::from("keys").join(format!("{name}.key"));
            let domain = DomainKey::generate(&mut rand::rngs::OsRng);
            write_secret_file(&self.root.join(&key_rel), &domain.to_hex())?;
            let partition = Region::parse(name)
                .map(|r| r.default_partition().to_string())
                .map_err(|e| {
                    ClusterError::Invalid(format!("invalid region name '{name}': {}", e.message()))
                })?;
            let anchor = anchors
                .entry(partition.clone())
                .or_insert_with(|| TrustAnchor::generate(&mut rand::rngs::OsRng));
            let transport = TransportKeyPair::generate(&mut rand::rngs::OsRng);
            let certificate = anchor.certify(
                &partition,
                name,
                &transport.public_key_der(),
                &mut rand::rngs::OsRng,
            );
            let transport_rel = PathBuf::from("keys").join(format!("{name}.transport"));
            write_secret_file(
                &self.root.join(&transport_rel),
                &wrap_transport_key(&domain, name, &transport, &mut rand::rngs::OsRng),
            )?;
            let mut nodes = Vec::new();
            for id in 1..=*count as u64 {
                let a = node_addrs(name, id)?;
                nodes.push(NodeEntry {
                    id,
                    listen: a.listen,
                    advertise: a.advertise,
                    aws_listen: Some(a.aws_listen),
                    aws_advertise: a.aws_advertise,
                    data_dir: node_data_dir(name, id),
                });
            }
            region_cfgs.push(RegionConfig {
                name: name.clone(),
                domain_key_file: key_rel,
                partition: None,
                transport_key_file: Some(transport_rel),
                transport_certificate: Some(hex::encode(certificate.to_bytes())),
                nodes,
            });
        }
        let mut trust_anchors = Vec::new();
        for (partition, anchor) in &anchors {
            write_secret_file(
                &self
                    .root
                    .join("keys")
                    .join(format!("trust-anchor-{partition}.key")),
                &hex::encode(anchor.to_pkcs8_der().expose()),
            )?;
            trust_anchors.push(TrustAnchorEntry {
                partition: partition.clone(),
                public_key: hex::encode(anchor.public_key_der()),
            });
        }
        // The key of STS session tokens: every node and the gateway read it.
        let sts_rel = PathBuf::from("keys").join("sts.key");
        write_secret_file(
            &self.root.join(&sts_rel),
            &DomainKey::generate(&mut rand::rngs::OsRng).to_hex(),
        )?;
        let gateway = match addressing {
            Addressing::Loopback { aws_port: 0, .. } => free_addr()?,
            Addressing::Loopback { aws_port, .. } => loopback(*aws_port),
            Addressing::Containers { .. } | Addressing::Kubernetes(_) => any(DEFAULT_AWS_PORT),
        };
        let account = "111122223333";
        let tls = TlsSettings {
            dir: PathBuf::from("keys").join("tls"),
            aws_https: aws_tls,
            operator_principal: None,
            clients: Vec::new(),
        };
        let topo = Topology {
            version: TOPOLOGY_VERSION,
            partition: "aws".into(),
            account: account.into(),
            test_hooks,
            raft: RaftTiming::default(),
            fault_seed: 0,
            endpoint: Some(EndpointConfig {
                listen: gateway,
                handoff: false,
            }),
            credentials: vec![default_credentials(account)],
            iam: None,
            sts: Some(kmsim_node::config::StsSettings {
                key_file: sts_rel.clone(),
            }),
            trust_anchors,
            sync: SyncTiming::default(),
            audit: kmsim_node::config::AuditSettings::default(),
            limits: kmsim_node::config::EndpointLimits::default(),
            caches: kmsim_node::config::CacheSettings::default(),
            quotas: kmsim_node::config::QuotaSettings::default(),
            tls: Some(tls),
            regions: region_cfgs,
        };
        // Validate before writing, so a bad Region name never leaves a half-made directory.
        Topology::parse(&topo.to_toml()).map_err(|e| ClusterError::Invalid(e.to_string()))?;
        write_certificates(&self.root, &topo)?;
        // The topology holds the secret access key: owner-only, like the key files.
        write_secret_file(&self.topology_path(), topo.to_toml().trim_end())?;
        self.topology()
    }

    /// Writes `topology` over the cluster's (owner-only, as it holds the secret access key),
    /// after checking it parses.
    pub fn write_topology(&self, topology: &Topology) -> Result<(), ClusterError> {
        let text = topology.to_toml();
        Topology::parse(&text).map_err(|e| ClusterError::Invalid(e.to_string()))?;
        write_secret_file(&self.topology_path(), text.trim_end())
    }

    /// Every node of the topology.
    pub fn nodes(&self) -> Result<Vec<(NodeName, NodeEntry)>, ClusterError> {
        let topo = self.topology()?;
        Ok(topo
            .regions
            .iter()
            .flat_map(|r| {
                r.nodes.iter().map(move |n| {
                    (
                        NodeName {
                            region: r.name.clone(),
                            id: n.id,
                        },
                        n.clone(),
                    )
                })
            })
            .collect())
    }
}

/// Makes the cluster CA of `topology` and every certificate it signs
/// ([`kmsim_node::tls::issue::cluster_files`]) and writes each file 0600 under `root`.
pub fn write_certificates(root: &Path, topology: &Topology) -> Result<(), ClusterError> {
    let Some(tls) = &topology.tls else {
        return Ok(());
    };
    let dir = root.join(&tls.dir);
    std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
    let files =
        cluster_files(topology).map_err(|e| ClusterError::Invalid(format!("certificates: {e}")))?;
    for (path, text) in files {
        write_secret_file(&root.join(path), text.trim_end())?;
    }
    Ok(())
}

/// Creates `path` (which must not exist) readable and writable by its owner only (0600) and
/// writes `text` and a newline: every file that holds a secret (keys, the topology with its
/// secret access key) is written this way.
fn write_secret_file(path: &Path, text: &str) -> Result<(), ClusterError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(io(format!("create {}", path.display())))?;
    f.write_all(text.as_bytes())
        .map_err(io(format!("write {}", path.display())))?;
    f.write_all(b"\n")
        .map_err(io(format!("write {}", path.display())))
}
