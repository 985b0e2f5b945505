//! The topology file (TOML, `version = 1`): the partition, the account, the Regions, their
//! nodes and the domain key of each Region, the single AWS endpoint (the gateway) and the
//! credentials AWS clients sign with. The same file configures every node of every Region and
//! the gateway; a node picks its own entry by Region and node id.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use kmsim_core::ids::{AccountId, Partition, Region, Scope};

/// The only topology format version this build reads.
pub const TOPOLOGY_VERSION: u32 = 1;

/// Errors reading or checking a topology file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read topology file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this schema.
    #[error("invalid topology file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// The file parses but breaks a rule (duplicate ids, bad names, …).
    #[error("invalid topology: {0}")]
    Invalid(String),
}

/// The whole topology file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Topology {
    /// Format version; must be 1.
    pub version: u32,
    /// AWS partition of every Region in this file (default `aws`).
    #[serde(default = "default_partition")]
    pub partition: String,
    /// The one account that owns every key (default `111122223333`).
    #[serde(default = "default_account")]
    pub account: String,
    /// Test-only hooks (the admin `DebugKeyMaterial` RPC). Never enable outside tests.
    #[serde(default)]
    pub test_hooks: bool,
    /// Raft timing for every Region.
    #[serde(default)]
    pub raft: RaftTiming,
    /// Seed of the fault layer's random choices (jitter, loss); each node mixes in its Region
    /// and id (default 0).
    #[serde(default)]
    pub fault_seed: u64,
    /// The single AWS endpoint for every Region, served by `kmsim gateway` (default: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<EndpointConfig>,
    /// The credentials AWS JSON clients sign their requests with (SigV4). Default: none, so no
    /// AWS JSON request authenticates; `kmsim up` writes access key `test`, secret `test`,
    /// principal `arn:aws:iam::111122223333:root`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub credentials: Vec<CredentialEntry>,
    /// IAM users and roles with their identity policies and tags (`crate::iam`). Default:
    /// none, and IAM is not modelled: every principal but an account root acts with an
    /// implicit identity policy allowing `kms:*`, so only key policies restrict it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam: Option<crate::iam::IamConfig>,
    /// STS (`AssumeRole`): the key that seals session tokens, the same for every node of every
    /// Region and for the gateway, so any of them accepts a role session's credentials without
    /// replicating anything. Default: none, and `AssumeRole` is refused (`GetCallerIdentity`
    /// works); `kmsim up` writes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sts: Option<StsSettings>,
    /// The public key (hex of DER SubjectPublicKeyInfo) of each partition's trust anchor,
    /// which certifies the transport keys of that partition's Regions. `kmsim up` creates one
    /// per partition and keeps its private half in `keys/trust-anchor-<partition>.key`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trust_anchors: Vec<TrustAnchorEntry>,
    /// Timing of the synchronizer between Regions.
    #[serde(default)]
    pub sync: SyncTiming,
    /// The nodes' call logs (audit records of calls the Region's replicated log does not keep).
    #[serde(default)]
    pub audit: AuditSettings,
    /// Resource limits of the AWS JSON endpoint (nodes and gateway).
    #[serde(default, skip_serializing_if = "EndpointLimits::is_default")]
    pub limits: EndpointLimits,
    /// Sizes of every node's in-memory caches.
    #[serde(default, skip_serializing_if = "CacheSettings::is_default")]
    pub caches: CacheSettings,
    /// Request and resource quotas (`crate::quotas`): `quotas = "aws"` turns AWS's request
    /// quotas on, a `[quotas]` table also overrides them by name and sets the resource quotas.
    /// Default: no request quota, AWS's resource quotas.
    #[serde(
        default,
        deserialize_with = "read_quotas",
        skip_serializing_if = "QuotaSettings::is_default"
    )]
    pub quotas: QuotaSettings,
    /// Transport security: mutual TLS on every gRPC link, admission by certificate identity,
    /// HTTPS for the AWS endpoints on request (`crate::tls`). Without it every link is
    /// plaintext and every service admits anyone: for hand-written single-node topologies only;
    /// `kmsim up` always writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<crate::tls::TlsSettings>,
    /// The Regions.
    pub regions: Vec<RegionConfig>,
}

/// The `[sts]` table: where the session-token key is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StsSettings {
    /// The file holding the key (64 hex characters, mode 0600), relative to the topology's
    /// directory (required; `kmsim up` writes `keys/sts.key`). The environment variable
    /// `KMSIM_STS_KEY` (hex), when set, is used instead.
    pub key_file: PathBuf,
}

/// One partition's trust anchor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustAnchorEntry {
    /// The partition, e.g. `aws`.
    pub partition: String,
    /// Hex of the anchor's DER SubjectPublicKeyInfo (P-384).
    pub public_key: String,
}

/// The `[limits]` table: what one client may hold of an AWS JSON endpoint (every node's and the
/// gateway's), so that slow or idle sockets cannot exhaust it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointLimits {
    /// Connections served at once (default 1024). Further connections wait in the listen
    /// backlog, unaccepted, until one closes.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// How long a client may take to send a request's headers, and how long an idle keep-alive
    /// connection waits for the next request (default 30000 ms; at least 1000).
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_ms: u64,
    /// How long a client may take to send a request's body once its headers are in (default
    /// 30000 ms; at least 1000).
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout_ms: u64,
    /// A connection on which no byte moves either way for this long is closed, whatever state it
    /// is in (a client that stops reading its answer; default 60000 ms; at least 1000).
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout_ms: u64,
}

impl Default for EndpointLimits {
    fn default() -> Self {
        EndpointLimits {
            max_connections: default_max_connections(),
            header_read_timeout_ms: default_header_read_timeout(),
            body_read_timeout_ms: default_body_read_timeout(),
            idle_timeout_ms: default_idle_timeout(),
        }
    }
}

impl EndpointLimits {
    /// True for the defaults (the table is then left out of a written topology).
    pub fn is_default(&self) -> bool {
        *self == EndpointLimits::default()
    }
}

fn default_max_connections() -> usize {
    1024
}

fn default_header_read_timeout() -> u64 {
    30_000
}

fn default_body_read_timeout() -> u64 {
    30_000
}

fn default_idle_timeout() -> u64 {
    60_000
}

/// The `[caches]` table: how much each node keeps in memory, whatever the number of keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSettings {
    /// Keys whose unwrapped material (every version in use) a node keeps in memory, least
    /// recently used evicted first (default 10000; at least 1). A key not held is unwrapped
    /// again on its next use: one AES-GCM open, plus parsing for an asymmetric key.
    #[serde(default = "default_material_keys")]
    pub material_keys: usize,
    /// Decoded key records each node keeps in memory, least recently used evicted first
    /// (default 10000; at least 1). The Region's state is on disk: a key not held is read
    /// from RocksDB and decoded on its next use.
    #[serde(default = "default_key_records")]
    pub key_records: usize,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            material_keys: default_material_keys(),
            key_records: default_key_records(),
        }
    }
}

impl CacheSettings {
    /// True for the defaults (the table is then left out of a written topology).
    pub fn is_default(&self) -> bool {
        *self == CacheSettings::default()
    }
}

fn default_material_keys() -> usize {
    10_000
}

fn default_key_records() -> usize {
    kmsim_core::state::DEFAULT_KEY_CACHE
}

/// Whether AWS's request quotas apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RequestQuotaMode {
    /// No request quota but those named in `[quotas.overrides]` (the default).
    #[default]
    Off,
    /// AWS's request quotas (kms-api.md §8.1), with `[quotas.overrides]` over them.
    Aws,
}

/// The `[quotas]` table, or the string `quotas = "aws"` (the same as `[quotas] requests =
/// "aws"`):
///
/// ```toml
/// [quotas]
/// requests = "aws"            # or "off" (default): AWS's request quotas
/// [quotas.overrides]          # requests per second for the whole Region, by quota name
/// Encrypt = 50                # an operation (its own bucket), or a shared quota:
/// CryptographicOperationsSymmetric = 1000
/// "GenerateDataKeyPair/RSA_2048" = 2
/// [quotas.resources]
/// keys_per_region = 5         # default 100000
/// aliases_per_key = 50        # default 50
/// grants_per_key = 50000      # default 50000
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSettings {
    /// Whether AWS's request quotas apply (default `off`).
    #[serde(default)]
    pub requests: RequestQuotaMode,
    /// Requests per second for the whole Region, by quota: an operation (e.g. `Encrypt`) or a
    /// shared quota (`crate::quotas::SHARED_QUOTAS`). Applies whatever `requests` says
    /// (default: none).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub overrides: std::collections::BTreeMap<String, f64>,
    /// The resource quotas (default: AWS's).
    #[serde(default, skip_serializing_if = "ResourceQuotaSettings::is_default")]
    pub resources: ResourceQuotaSettings,
}

impl QuotaSettings {
    /// True for the defaults (the table is then left out of a written topology).
    pub fn is_default(&self) -> bool {
        *self == QuotaSettings::default()
    }

    fn check(&self) -> Result<(), String> {
        for (name, rate) in &self.overrides {
            if crate::quotas::quota_index(name).is_none() {
                return Err(format!(
                    "quotas.overrides: {}",
                    crate::quotas::unknown_quota(name)
                ));
            }
            if !rate.is_finite() || *rate < 0.0 {
                return Err(format!(
                    "quotas.overrides: {name} must be 0 or more requests per second"
                ));
            }
        }
        let r = &self.resources;
        if r.keys_per_region == 0 || r.aliases_per_key == 0 || r.grants_per_key == 0 {
            return Err("quotas.resources: every quota must be at least 1".into());
        }
        Ok(())
    }
}

/// `quotas = "aws"` (or `"off"`) stands for `[quotas] requests = "aws"`.
impl<'de> Deserialize<'de> for QuotaSettingsWire {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = QuotaSettings;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"off\", \"aws\" or a [quotas] table")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<QuotaSettings, E> {
                let requests = match v {
                    "off" => RequestQuotaMode::Off,
                    "aws" => RequestQuotaMode::Aws,
                    other => {
                        return Err(E::custom(format!(
                            "quotas = \"{other}\": expected \"off\", \"aws\" or a [quotas] table"
                        )))
                    }
                };
                Ok(QuotaSettings {
                    requests,
                    ..QuotaSettings::default()
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<QuotaSettings, A::Error> {
                QuotaSettings::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_any(Visit).map(QuotaSettingsWire)
    }
}

/// The form [`Topology::quotas`] is read in (a string or a table).
struct QuotaSettingsWire(QuotaSettings);

fn read_quotas<'de, D: serde::Deserializer<'de>>(d: D) -> Result<QuotaSettings, D::Error> {
    QuotaSettingsWire::deserialize(d).map(|w| w.0)
}

/// The `[quotas.resources]` table: AWS's adjustable resource quotas (the key policy size,
/// 32 KiB, is not adjustable and not here).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceQuotaSettings {
    /// Keys in each Region, in any key state; each key of a multi-Region set counts once, in
    /// its own Region (default 100000).
    #[serde(default = "default_keys_per_region")]
    pub keys_per_region: u64,
    /// Aliases per key (default 50).
    #[serde(default = "default_aliases_per_key")]
    pub aliases_per_key: usize,
    /// Grants per key (default 50000).
    #[serde(default = "default_grants_per_key")]
    pub grants_per_key: usize,
}

impl Default for ResourceQuotaSettings {
    fn default() -> Self {
        ResourceQuotaSettings {
            keys_per_region: default_keys_per_region(),
            aliases_per_key: default_aliases_per_key(),
            grants_per_key: default_grants_per_key(),
        }
    }
}

impl ResourceQuotaSettings {
    /// True for AWS's values.
    pub fn is_default(&self) -> bool {
        *self == ResourceQuotaSettings::default()
    }

    /// The quotas the Region's state machine checks.
    pub fn to_state(&self) -> kmsim_core::state::ResourceQuotas {
        kmsim_core::state::ResourceQuotas {
            keys_per_region: self.keys_per_region,
            aliases_per_key: self.aliases_per_key,
            grants_per_key: self.grants_per_key,
        }
    }
}

fn default_keys_per_region() -> u64 {
    kmsim_core::state::MAX_KEYS_PER_REGION
}

fn default_aliases_per_key() -> usize {
    kmsim_core::state::MAX_ALIASES_PER_KEY
}

fn default_grants_per_key() -> usize {
    kmsim_core::grant::MAX_GRANTS_PER_KEY
}

/// The `[audit]` table: retention of the Region's replicated log and of every node's call log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Each node keeps at least its newest this many call records; older ones are deleted in
    /// whole segments (default 200000, about 200 MB of disk per node).
    #[serde(default = "default_retention_events")]
    pub retention_events: u64,
    /// The Region's replicated log keeps its newest this many events (default 10000): it is
    /// part of the Raft state, held in memory on every node and copied in every snapshot, so
    /// keep it small. Must be the same for every node of a Region (it is: every node reads the
    /// same topology).
    #[serde(default = "default_region_retention_events")]
    pub region_retention_events: usize,
    /// Whether nodes keep call logs at all (default true). `false` leaves only the Region's
    /// replicated log; it exists to measure what recording calls costs.
    #[serde(default = "default_true")]
    pub record_calls: bool,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            retention_events: default_retention_events(),
            region_retention_events: default_region_retention_events(),
            record_calls: true,
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_retention_events() -> u64 {
    200_000
}

fn default_region_retention_events() -> usize {
    kmsim_core::audit::DEFAULT_REGION_RETENTION
}

/// Synchronizer timing, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncTiming {
    /// First retry after a failed delivery; doubles up to `retry_max_ms` (default 50).
    #[serde(default = "default_retry_min")]
    pub retry_min_ms: u64,
    /// Longest pause between retries (default 2000).
    #[serde(default = "default_retry_max")]
    pub retry_max_ms: u64,
    /// How often every (key, replica) pair is sent again even when acknowledged (default 10000).
    #[serde(default = "default_anti_entropy")]
    pub anti_entropy_ms: u64,
    /// How long a node's session key (what requests to it are sealed to) is current; it is kept
    /// one more period for requests sealed just before, then wiped, so a recorded request
    /// cannot be opened or replayed later (default 300000, 5 minutes; at least 1000).
    #[serde(default = "default_session_key")]
    pub session_key_ms: u64,
}

impl Default for SyncTiming {
    fn default() -> Self {
        SyncTiming {
            retry_min_ms: default_retry_min(),
            retry_max_ms: default_retry_max(),
            anti_entropy_ms: default_anti_entropy(),
            session_key_ms: default_session_key(),
        }
    }
}

fn default_retry_min() -> u64 {
    50
}
fn default_retry_max() -> u64 {
    2000
}
fn default_anti_entropy() -> u64 {
    10_000
}
/// The shortest session key period a topology may set: a sender uses a fetched key for half a
/// period, and the node holds it for two, which leaves a request a period to arrive.
pub const MIN_SESSION_KEY_MS: u64 = 1000;

fn default_session_key() -> u64 {
    300_000
}

/// The single AWS endpoint: a `kmsim gateway` process that serves AWS JSON 1.1 for every Region
/// of the topology by forwarding each request to a node of the Region it is signed for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointConfig {
    /// Address the gateway's HTTP server binds (`kmsim up` uses `127.0.0.1:4599` unless told
    /// otherwise with `--aws-port`). Required in an `[endpoint]` section.
    pub listen: SocketAddr,
    /// Hand each client connection to a node of the Region its first request is signed for
    /// instead of relaying its requests (`kmsim up --gateway-handoff`; default false): the node
    /// then serves the connection directly, and the gateway is out of its path. Only for nodes
    /// on the gateway's host (the descriptor goes over a Unix socket in the node's data
    /// directory) and plain HTTP; see [`crate::aws::handoff`] for what it changes under faults.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub handoff: bool,
}

/// A secret string (secret access key, session token): compared and used, never printed. Its
/// `Debug` shows `<redacted>`, so a logged topology or error never carries it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself, for signing and comparing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One set of credentials for AWS JSON clients: requests signed (SigV4) with this access key
/// and secret act as `principal_arn`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialEntry {
    /// The access key id clients put in the SigV4 credential scope (required, unique).
    pub access_key_id: String,
    /// The secret access key clients sign with (required).
    pub secret_access_key: Secret,
    /// The principal requests signed with this key act as, e.g.
    /// `arn:aws:iam::111122223333:root` (required).
    pub principal_arn: String,
    /// A session token (temporary credentials). When set, every request signed with this key
    /// must carry it, signed, in `X-Amz-Security-Token`; when not set (the default), a request
    /// that carries a token is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token: Option<Secret>,
}

/// Raft timing, in milliseconds. The defaults are for loopback and LAN. A follower whose leader
/// is gone (its `Status` probe unanswered) calls an election `election_timeout_max_ms`
/// (openraft's leader lease) plus 30 ms (plus 60 ms per follower of lower id) after the
/// leader's last heartbeat (`leader_watch.rs`); openraft's own timer (the lease plus a random
/// election timeout) is the fallback. With these, writes resumed after a killed leader in 465 ms
/// at the median (p99 539 ms) and after a frozen one in 658 ms (p99 724 ms)
/// (`docs/PERFORMANCE.md`, "Failover"); 50/150/300 changed leaders under a full CreateKey load
/// on a loaded 2-core machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaftTiming {
    /// Leader heartbeat interval, also the deadline of one AppendEntries (default 100).
    #[serde(default = "default_heartbeat")]
    pub heartbeat_ms: u64,
    /// Lower bound of the randomized election timeout (default 200).
    #[serde(default = "default_election_min")]
    pub election_timeout_min_ms: u64,
    /// Upper bound of the randomized election timeout, and the leader lease (default 400).
    #[serde(default = "default_election_max")]
    pub election_timeout_max_ms: u64,
    /// The fewest log entries between two snapshots (default 10,000).
    #[serde(default = "default_snapshot_logs")]
    pub snapshot_after_logs: u64,
    /// Log entries between two snapshots as a percentage of the records in the last one
    /// (default 50), when that is more than `snapshot_after_logs`: a snapshot copies the
    /// whole state, so spacing them by its size keeps their cost per write bounded.
    #[serde(default = "default_snapshot_log_percent")]
    pub snapshot_log_percent: u64,
    /// Log entries kept behind a snapshot for slow followers (default 1,000).
    #[serde(default = "default_keep_logs")]
    pub logs_kept_after_snapshot: u64,
}

impl Default for RaftTiming {
    fn default() -> Self {
        RaftTiming {
            heartbeat_ms: default_heartbeat(),
            election_timeout_min_ms: default_election_min(),
            election_timeout_max_ms: default_election_max(),
            snapshot_after_logs: default_snapshot_logs(),
            snapshot_log_percent: default_snapshot_log_percent(),
            logs_kept_after_snapshot: default_keep_logs(),
        }
    }
}

fn default_partition() -> String {
    "aws".into()
}
fn default_account() -> String {
    "111122223333".into()
}
fn default_heartbeat() -> u64 {
    100
}
fn default_election_min() -> u64 {
    200
}
fn default_election_max() -> u64 {
    400
}
fn default_snapshot_logs() -> u64 {
    10_000
}
fn default_snapshot_log_percent() -> u64 {
    50
}
fn default_keep_logs() -> u64 {
    1_000
}

/// One Region: a Raft group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionConfig {
    /// Region name, e.g. `us-east-1`.
    pub name: String,
    /// File holding the Region's domain key (64 hex chars, mode 0600); relative paths are
    /// relative to the topology file. `KMSIM_DOMAIN_KEY_<REGION>` (Region upper-cased, dashes
    /// as underscores) overrides it.
    pub domain_key_file: PathBuf,
    /// The Region's partition (default: `aws-cn` for `cn-*` Regions, `aws-us-gov` for
    /// `us-gov-*`, else the topology's `partition`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// File holding the Region's transport private key (P-384, PKCS#8), wrapped under its
    /// domain key, as hex; relative to the topology file. Without it the Region takes no part
    /// in multi-Region synchronization (default: none; `kmsim up` writes `keys/<region>.transport`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_key_file: Option<PathBuf>,
    /// Hex of the Region's transport certificate, signed by its partition's trust anchor
    /// (public; every Region seals to the key it certifies). Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport_certificate: Option<String>,
    /// The Region's nodes (1 to 7).
    pub nodes: Vec<NodeEntry>,
}

/// One node of a Region.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// Raft node id, unique within the Region (>= 1).
    pub id: u64,
    /// Address the node's gRPC server binds (KMS, Raft and admin services).
    pub listen: SocketAddr,
    /// Address other nodes and clients use to reach it (default: `listen`).
    #[serde(default)]
    pub advertise: Option<String>,
    /// Address the node's AWS JSON 1.1 (HTTP, SigV4) server binds (default: none, the node
    /// serves no AWS endpoint; `kmsim up` always sets it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_listen: Option<SocketAddr>,
    /// Address the gateway and other nodes use to reach the AWS endpoint (default:
    /// `aws_listen`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_advertise: Option<String>,
    /// The node's data directory; relative paths are relative to the topology file.
    pub data_dir: PathBuf,
}

impl NodeEntry {
    /// The address peers dial.
    pub fn advertise_addr(&self) -> String {
        self.advertise
            .clone()
            .unwrap_or_else(|| self.listen.to_string())
    }

    /// The address of the node's AWS endpoint, if it serves one.
    pub fn aws_advertise_addr(&self) -> Option<String> {
        self.aws_advertise
            .clone()
            .or_else(|| self.aws_listen.map(|a| a.to_string()))
    }
}

impl Topology {
    /// Reads and checks a topology file; relative paths are resolved against its directory.
    pub fn load(path: &Path) -> Result<Topology, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut topo = Topology::parse(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        topo.resolve_paths(base);
        Ok(topo)
    }

    /// Parses and checks topology text (paths left as written).
    pub fn parse(text: &str) -> Result<Topology, ConfigError> {
        let topo: Topology = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::from("<text>"),
            message: e.to_string(),
        })?;
        topo.check()?;
        Ok(topo)
    }

    /// Renders the topology as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("invariant: topology always serializes")
    }

    fn resolve_paths(&mut self, base: &Path) {
        if let Some(s) = self.sts.as_mut().filter(|s| s.key_file.is_relative()) {
            s.key_file = base.join(&s.key_file);
        }
        if let Some(t) = self.tls.as_mut().filter(|t| t.dir.is_relative()) {
            t.dir = base.join(&t.dir);
        }
        for r in &mut self.regions {
            if r.domain_key_file.is_relative() {
                r.domain_key_file = base.join(&r.domain_key_file);
            }
            if let Some(t) = r.transport_key_file.as_mut().filter(|t| t.is_relative()) {
                *t = base.join(&*t);
            }
            for n in &mut r.nodes {
                if n.data_dir.is_relative() {
                    n.data_dir = base.join(&n.data_dir);
                }
            }
        }
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        if self.version != TOPOLOGY_VERSION {
            return bad(format!(
                "version {} is not supported (expected {TOPOLOGY_VERSION})",
                self.version
            ));
        }
        Partition::parse(&self.partition)
            .map_err(|e| ConfigError::Invalid(e.message().to_string()))?;
        AccountId::parse(&self.account)
            .map_err(|e| ConfigError::Invalid(e.message().to_string()))?;
        if self.regions.is_empty() {
            return bad("no regions".into());
        }
        let t = &self.raft;
        if t.heartbeat_ms == 0
            || t.election_timeout_min_ms <= t.heartbeat_ms
            || t.election_timeout_max_ms <= t.election_timeout_min_ms
        {
            return bad("raft timing must satisfy 0 < heartbeat_ms < election_timeout_min_ms < election_timeout_max_ms".into());
        }
        let l = &self.limits;
        if l.max_connections == 0
            || l.header_read_timeout_ms < 1000
            || l.body_read_timeout_ms < 1000
            || l.idle_timeout_ms < 1000
        {
            return bad(
                "limits: max_connections must be at least 1 and every timeout at least 1000 ms"
                    .into(),
            );
        }
        self.quotas.check().map_err(ConfigError::Invalid)?;
        if self.endpoint.as_ref().is_some_and(|e| e.handoff) && self.aws_scheme() == "https" {
            // A TLS session's state lives in the process that made the handshake.
            return bad("endpoint: handoff needs plain HTTP on the AWS endpoints (no [tls] aws_https): a TLS connection cannot be handed to another process".into());
        }
        if self.caches.material_keys == 0 {
            return bad("caches: material_keys must be at least 1".into());
        }
        if self.caches.key_records == 0 {
            return bad("caches: key_records must be at least 1".into());
        }
        if self.sync.session_key_ms < MIN_SESSION_KEY_MS {
            // A request must reach its node while the key it was sealed to is still held.
            return bad(format!(
                "sync session_key_ms must be at least {MIN_SESSION_KEY_MS}"
            ));
        }
        let mut names = BTreeSet::new();
        let mut addrs = BTreeSet::new();
        for r in &self.regions {
            Region::parse(&r.name)
                .map_err(|_| ConfigError::Invalid(format!("invalid region name '{}'", r.name)))?;
            if !names.insert(r.name.clone()) {
                return bad(format!("region {} is listed twice", r.name));
            }
            Partition::parse(&self.region_partition(r))
                .map_err(|e| ConfigError::Invalid(e.message().to_string()))?;
            if r.transport_certificate
                .as_ref()
                .is_some_and(|c| hex::decode(c).is_err())
            {
                return bad(format!(
                    "region {}: transport_certificate is not hex",
                    r.name
                ));
            }
            if r.nodes.is_empty() || r.nodes.len() > 7 {
                return bad(format!("region {} must have 1 to 7 nodes", r.name));
            }
            let mut ids = BTreeSet::new();
            for n in &r.nodes {
                if n.id == 0 || !ids.insert(n.id) {
                    return bad(format!(
                        "region {}: node ids must be unique and >= 1 (id {})",
                        r.name, n.id
                    ));
                }
                // Addresses are unique as others reach them: nodes on one host listen on
                // different ports, nodes in containers may all listen on 0.0.0.0:4601 and are
                // told apart by their advertised names.
                for addr in std::iter::once(n.advertise_addr()).chain(n.aws_advertise_addr()) {
                    if !addrs.insert(addr.clone()) {
                        return bad(format!("address {addr} is used twice"));
                    }
                }
            }
        }
        if let Some(e) = &self.endpoint {
            if !addrs.insert(e.listen.to_string()) {
                return bad(format!("address {} is used twice", e.listen));
            }
        }
        if let Some(t) = &self.tls {
            t.check().map_err(ConfigError::Invalid)?;
        }
        let mut keys = BTreeSet::new();
        for c in &self.credentials {
            if c.access_key_id.is_empty() || c.secret_access_key.expose().is_empty() {
                return bad(
                    "credentials need a non-empty access_key_id and secret_access_key".into(),
                );
            }
            if !keys.insert(c.access_key_id.as_str()) {
                return bad(format!(
                    "credentials: access key {} is listed twice",
                    c.access_key_id
                ));
            }
            if kmsim_policy::Caller::from_arn(&c.principal_arn).is_err() {
                return bad(format!(
                    "credentials for {}: principal_arn '{}' is not an account root, IAM user, IAM role or role session ARN",
                    c.access_key_id, c.principal_arn
                ));
            }
            if c.session_token
                .as_ref()
                .is_some_and(|t| t.expose().is_empty())
            {
                return bad(format!(
                    "credentials for {}: session_token must not be empty",
                    c.access_key_id
                ));
            }
        }
        if let Some(iam) = &self.iam {
            let credentials = self.credentials.iter().map(|c| {
                (
                    c.principal_arn.as_str(),
                    format!("credentials for {}", c.access_key_id),
                )
            });
            let clients = self.tls.iter().flat_map(|t| {
                t.clients
                    .iter()
                    .map(|c| (c.principal_arn.as_str(), format!("tls client {}", c.name)))
                    .chain(
                        t.operator_principal
                            .as_deref()
                            .map(|p| (p, "tls operator_principal".to_string())),
                    )
            });
            iam.check(credentials.chain(clients))
                .map_err(ConfigError::Invalid)?;
            if let Some(home) = &iam.home_region {
                if self.region(home).is_none() {
                    return bad(format!(
                        "iam: home_region {home} is not a Region of the topology"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The scheme of the AWS endpoints: `https` with `[tls] aws_https`, else `http`.
    pub fn aws_scheme(&self) -> &'static str {
        match self.tls.as_ref().is_some_and(|t| t.aws_https) {
            true => "https",
            false => "http",
        }
    }

    /// The Region entry with this name.
    pub fn region(&self, name: &str) -> Option<&RegionConfig> {
        self.regions.iter().find(|r| r.name == name)
    }

    /// The partition of a Region of this topology.
    pub fn region_partition(&self, r: &RegionConfig) -> String {
        if let Some(p) = &r.partition {
            return p.clone();
        }
        match Region::parse(&r.name) {
            Ok(region) if region.default_partition().as_str() != "aws" => {
                region.default_partition().to_string()
            }
            _ => self.partition.clone(),
        }
    }

    /// The partition/Region/account scope of a Region of this topology.
    pub fn scope(&self, region: &str) -> Result<Scope, ConfigError> {
        let invalid = |e: kmsim_core::KmsError| ConfigError::Invalid(e.message().to_string());
        let partition = match self.region(region) {
            Some(r) => self.region_partition(r),
            None => self.partition.clone(),
        };
        Ok(Scope {
            partition: Partition::parse(&partition).map_err(invalid)?,
            region: Region::parse(region).map_err(invalid)?,
            account: AccountId::parse(&self.account).map_err(invalid)?,
        })
    }
}

impl RegionConfig {
    /// The node entry with this id.
    pub fn node(&self, id: u64) -> Option<&NodeEntry> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The node whose advertised address has the host `name`, or a host whose first DNS label
    /// is `name` (`kmsim-us-east-1-2` finds `kmsim-us-east-1-2.kmsim-us-east-1-peers.…:4601`):
    /// how a Kubernetes pod, which knows only its own name, finds its entry. `None` when no
    /// node or more than one matches.
    pub fn node_by_host(&self, name: &str) -> Option<&NodeEntry> {
        if name.is_empty() {
            return None;
        }
        let mut found = self.nodes.iter().filter(|n| {
            let host = crate::tls::issue::host_of(&n.advertise_addr());
            host == name || host.split('.').next() == Some(name)
        });
        match (found.next(), found.next()) {
            (Some(n), None) => Some(n),
            _ => None,
        }
    }

    /// The environment variable that may carry this Region's domain key.
    pub fn domain_key_env(&self) -> String {
        format!(
            "KMSIM_DOMAIN_KEY_{}",
            self.name.to_ascii_uppercase().replace('-', "_")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
version = 1
[[regions]]
name = "us-east-1"
domain_key_file = "keys/us-east-1.key"
[[regions.nodes]]
id = 1
listen = "127.0.0.1:4601"
data_dir = "data/us-east-1/node-1"
"#;

    #[test]
    fn sample_parses_with_defaults() {
        let t = Topology::parse(SAMPLE).unwrap();
        assert_eq!(t.partition, "aws");
        assert_eq!(t.account, "111122223333");
        assert_eq!(t.raft, RaftTiming::default());
        assert_eq!(t.regions[0].nodes[0].advertise_addr(), "127.0.0.1:4601");
        assert_eq!(t.regions[0].domain_key_env(), "KMSIM_DOMAIN_KEY_US_EAST_1");
        assert_eq!(Topology::parse(&t.to_toml()).unwrap(), t);
    }

    #[test]
    fn quotas_read_as_a_string_or_a_table_and_unknown_names_are_refused() {
        // Top-level keys go before the first table.
        let with = |head: &str, tail: &str| format!("{head}\n{SAMPLE}\n{tail}");
        let t = Topology::parse(&with("quotas = \"aws\"", "")).unwrap();
        assert_eq!(t.quotas.requests, RequestQuotaMode::Aws);
        assert!(t.quotas.overrides.is_empty());
        assert_eq!(Topology::parse(&t.to_toml()).unwrap(), t);
        assert_eq!(
            Topology::parse(SAMPLE).unwrap().quotas,
            QuotaSettings::default()
        );
        let table = "[quotas]\nrequests = \"off\"\n[quotas.overrides]\nEncrypt = 50\n\
                     \"GenerateDataKeyPair/RSA_2048\" = 2.5\n[quotas.resources]\nkeys_per_region = 5\n";
        let t = Topology::parse(&with("", table)).unwrap();
        assert_eq!(t.quotas.requests, RequestQuotaMode::Off);
        assert_eq!(t.quotas.overrides["Encrypt"], 50.0);
        assert_eq!(t.quotas.overrides["GenerateDataKeyPair/RSA_2048"], 2.5);
        assert_eq!(t.quotas.resources.keys_per_region, 5);
        assert_eq!(t.quotas.resources.grants_per_key, 50_000);
        assert_eq!(Topology::parse(&t.to_toml()).unwrap(), t);
        for (bad, why) in [
            (with("quotas = \"lots\"", ""), "expected \"off\", \"aws\""),
            (
                with("", "[quotas.overrides]\nEncrypts = 5\n"),
                "'Encrypts' is no KMS operation",
            ),
            (with("", "[quotas.overrides]\nEncrypt = -1\n"), "0 or more"),
            (with("", "[quotas]\nrequest = \"aws\"\n"), "unknown field"),
            (with("", "[quotas.resources]\nkeys = 5\n"), "unknown field"),
            (
                with("", "[quotas.resources]\nkeys_per_region = 0\n"),
                "at least 1",
            ),
        ] {
            let e = Topology::parse(&bad).unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    const AWS: &str = r#"
[endpoint]
listen = "127.0.0.1:4599"

[[credentials]]
access_key_id = "test"
secret_access_key = "very-secret"
principal_arn = "arn:aws:iam::111122223333:root"

[[credentials]]
access_key_id = "ASIATEMP"
secret_access_key = "s2"
principal_arn = "arn:aws:iam::111122223333:role/r"
session_token = "tok"
"#;

    #[test]
    fn endpoint_credentials_and_aws_addresses_parse_and_secrets_stay_hidden() {
        let text = format!(
            "{}{}",
            SAMPLE.replace(
                "listen = \"127.0.0.1:4601\"",
                "listen = \"127.0.0.1:4601\"\naws_listen = \"127.0.0.1:4701\""
            ),
            AWS
        );
        let t = Topology::parse(&text).unwrap();
        assert_eq!(
            t.endpoint.as_ref().map(|e| e.listen.to_string()).as_deref(),
            Some("127.0.0.1:4599")
        );
        let n = &t.regions[0].nodes[0];
        assert_eq!(n.aws_advertise_addr().as_deref(), Some("127.0.0.1:4701"));
        assert_eq!(t.credentials.len(), 2);
        assert_eq!(t.credentials[0].secret_access_key.expose(), "very-secret");
        assert_eq!(
            t.credentials[1].session_token.as_ref().map(Secret::expose),
            Some("tok")
        );
        let debug = format!("{t:?}");
        assert!(
            !debug.contains("very-secret") && !debug.contains("tok\""),
            "{debug}"
        );
        assert_eq!(Topology::parse(&t.to_toml()).unwrap(), t);
        // Without the new sections the defaults hold.
        let plain = Topology::parse(SAMPLE).unwrap();
        assert!(plain.endpoint.is_none() && plain.credentials.is_empty());
        assert_eq!(plain.regions[0].nodes[0].aws_advertise_addr(), None);
    }

    #[test]
    fn bad_credentials_and_reused_addresses_are_rejected() {
        let with = |extra: &str| Topology::parse(&format!("{SAMPLE}{extra}"));
        assert!(with(AWS).is_ok());
        assert!(with(&AWS.replace("ASIATEMP", "test")).is_err());
        assert!(with(&AWS.replace("\"very-secret\"", "\"\"")).is_err());
        assert!(with(&AWS.replace("arn:aws:iam::111122223333:root", "root")).is_err());
        assert!(with(&AWS.replace("\"tok\"", "\"\"")).is_err());
        assert!(with(&AWS.replace("4599", "4601")).is_err());
        assert!(with("[endpoint]\nlisten = \"127.0.0.1:1\"\nbogus = 1\n").is_err());
        assert!(Topology::parse(&SAMPLE.replace(
            "listen = \"127.0.0.1:4601\"",
            "listen = \"127.0.0.1:4601\"\naws_listen = \"127.0.0.1:4601\""
        ))
        .is_err());
    }

    #[test]
    fn a_node_is_found_by_its_advertised_host_or_its_first_label() {
        let mut t = Topology::parse(SAMPLE).unwrap();
        let r = &mut t.regions[0];
        let mut second = r.nodes[0].clone();
        second.id = 2;
        second.advertise = Some("k-us-east-1-2.peers.ns.svc.cluster.local:4601".into());
        r.nodes[0].advertise = Some("k-us-east-1-1.peers.ns.svc.cluster.local:4601".into());
        let mut tenth = second.clone();
        tenth.id = 10;
        tenth.advertise = Some("k-us-east-1-10.peers.ns.svc.cluster.local:4601".into());
        r.nodes.extend([second, tenth]);
        let id = |name: &str| r.node_by_host(name).map(|n| n.id);
        assert_eq!(id("k-us-east-1-1"), Some(1));
        assert_eq!(id("k-us-east-1-2.peers.ns.svc.cluster.local"), Some(2));
        assert_eq!(id("k-us-east-1-10"), Some(10));
        for none in [
            "",
            "k-us-east-1",
            "k-us-east-1-3",
            "peers",
            "k-us-east-1-1.peers.ns",
        ] {
            assert_eq!(id(none), None, "{none}");
        }
        // A name two nodes answer to is no answer.
        r.nodes[1].advertise = Some("k-us-east-1-1.other:4601".into());
        assert!(r.node_by_host("k-us-east-1-1").is_none());
    }

    #[test]
    fn unknown_fields_and_bad_values_are_rejected() {
        assert!(Topology::parse(&SAMPLE.replace("version = 1", "version = 1\nbogus = 2")).is_err());
        assert!(Topology::parse(&SAMPLE.replace("version = 1", "version = 2")).is_err());
        assert!(Topology::parse(&SAMPLE.replace("us-east-1\"\n", "NOPE\"\n")).is_err());
        assert!(Topology::parse(&SAMPLE.replace("id = 1", "id = 0")).is_err());
    }

    #[test]
    fn endpoint_limits_default_parse_and_refuse_zero_or_tiny_values() {
        let t = Topology::parse(SAMPLE).unwrap();
        assert_eq!(t.limits, EndpointLimits::default());
        assert_eq!(t.limits.max_connections, 1024);
        assert!(
            !t.to_toml().contains("[limits]"),
            "defaults are not written"
        );
        let with = |table: &str| format!("{SAMPLE}\n[limits]\n{table}\n");
        let t = Topology::parse(&with("max_connections = 8\nbody_read_timeout_ms = 2000")).unwrap();
        assert_eq!(t.limits.max_connections, 8);
        assert_eq!(t.limits.body_read_timeout_ms, 2000);
        assert_eq!(t.limits.header_read_timeout_ms, 30_000);
        assert_eq!(Topology::parse(&t.to_toml()).unwrap(), t);
        for bad in [
            "max_connections = 0",
            "header_read_timeout_ms = 999",
            "body_read_timeout_ms = 0",
            "idle_timeout_ms = 10",
            "bogus = 1",
        ] {
            assert!(Topology::parse(&with(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn material_cache_size_defaults_to_ten_thousand_keys_and_refuses_zero() {
        let t = Topology::parse(SAMPLE).unwrap();
        assert_eq!(t.caches.material_keys, 10_000);
        assert!(
            !t.to_toml().contains("[caches]"),
            "defaults are not written"
        );
        let with = |table: &str| format!("{SAMPLE}\n[caches]\n{table}\n");
        let t = Topology::parse(&with("material_keys = 4")).unwrap();
        assert_eq!(t.caches.material_keys, 4);
        assert_eq!(Topology::parse(&t.to_toml()).unwrap(), t);
        assert_eq!(
            t.caches.key_records, 10_000,
            "the other size keeps its default"
        );
        let t = Topology::parse(&with("key_records = 7")).unwrap();
        assert_eq!(t.caches.key_records, 7);
        for bad in [
            "material_keys = 0",
            "material_keys = -1",
            "key_records = 0",
            "bogus = 1",
        ] {
            assert!(Topology::parse(&with(bad)).is_err(), "{bad}");
        }
    }

    /// A topology using most sections: two Regions of two partitions, a trust anchor, Raft
    /// and sync timing, the endpoint and credentials.
    fn full_sample() -> String {
        let second = r#"
[[regions]]
name = "cn-north-1"
partition = "aws-cn"
domain_key_file = "keys/cn-north-1.key"
[[regions.nodes]]
id = 1
listen = "127.0.0.1:4611"
data_dir = "data/cn-north-1/node-1"
[[regions.nodes]]
id = 2
listen = "127.0.0.1:4612"
data_dir = "data/cn-north-1/node-2"
"#;
        let timing = "[raft]\nheartbeat_ms = 50\nelection_timeout_min_ms = 200\nelection_timeout_max_ms = 400\n";
        let tls = "[tls]\ndir = \"keys/tls\"\naws_https = true\n[[tls.clients]]\nname = \"app\"\nprincipal_arn = \"arn:aws:iam::111122223333:role/app\"\n";
        format!("{SAMPLE}{second}{AWS}{timing}{tls}{IAM}")
    }

    /// Principals for the sample's credentials and TLS client, and a user with a policy.
    const IAM: &str = r#"
[[iam.users]]
arn = "arn:aws:iam::444455556666:user/dev/alice"
tags = { team = "payroll" }
[[iam.users.policies]]
name = "use-keys"
document = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"arn:aws:kms:*:111122223333:key/*"}]}'
[[iam.roles]]
arn = "arn:aws:iam::111122223333:role/r"
[[iam.roles]]
arn = "arn:aws:iam::111122223333:role/app"
"#;

    proptest::proptest! {
        /// A topology file is read from disk, so any text: parsed or refused, never a panic.
        #[test]
        fn any_text_is_parsed_or_refused(text in "(?s).{0,400}") {
            let _ = Topology::parse(&text);
        }

        /// A real topology with characters changed, lines dropped or repeated: refused with
        /// an error, or parsed into a topology that renders and parses back to itself.
        #[test]
        fn edited_topologies_are_refused_or_round_trip(
            edits in proptest::collection::vec(
                (proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>(), 0u8..3),
                1..6,
            ),
        ) {
            let base = full_sample();
            proptest::prop_assume!(Topology::parse(&base).is_ok());
            let mut lines: Vec<String> = base.lines().map(str::to_string).collect();
            for (at, byte, kind) in edits {
                let (i, column) = (at % lines.len(), at / lines.len());
                match kind {
                    0 => {
                        let line = &mut lines[i];
                        let mut chars: Vec<char> = line.chars().collect();
                        if !chars.is_empty() {
                            let j = column % chars.len();
                            // Printable ASCII, the alphabet of a hand-edited file.
                            chars[j] = char::from(b' ' + byte % 95);
                        }
                        *line = chars.into_iter().collect();
                    }
                    1 => {
                        lines.remove(i);
                        if lines.is_empty() {
                            lines.push(String::new());
                        }
                    }
                    _ => {
                        let copy = lines[i].clone();
                        lines.insert(i, copy);
                    }
                }
            }
            let text = lines.join("\n");
            if let Ok(t) = Topology::parse(&text) {
                let again = Topology::parse(&t.to_toml());
                proptest::prop_assert!(again.is_ok(), "{}: {:?}", t.to_toml(), again.err());
                proptest::prop_assert_eq!(again.unwrap(), t);
            }
        }
    }

    #[test]
    fn the_full_sample_parses() {
        let t = Topology::parse(&full_sample()).unwrap();
        assert_eq!(t.regions.len(), 2);
        assert_eq!(t.region_partition(&t.regions[1]), "aws-cn");
        let tls = t.tls.as_ref().unwrap();
        assert!(tls.aws_https);
        assert_eq!(tls.clients[0].name, "app");
        let iam = t.iam.as_ref().unwrap();
        assert_eq!(iam.users[0].policies[0].name, "use-keys");
        assert_eq!(iam.roles.len(), 2);
        let bad = |from: &str, to: &str| Topology::parse(&full_sample().replace(from, to)).is_err();
        // Every principal credentials or TLS clients name must be declared, every policy parse.
        let err = |from: &str, to: &str| {
            Topology::parse(&full_sample().replace(from, to))
                .unwrap_err()
                .to_string()
        };
        assert!(err(
            "\narn = \"arn:aws:iam::111122223333:role/app\"",
            "\narn = \"arn:aws:iam::111122223333:role/other\""
        )
        .contains("tls client app: principal 'arn:aws:iam::111122223333:role/app' is not"));
        assert!(err(
            "\narn = \"arn:aws:iam::111122223333:role/r\"",
            "\narn = \"arn:aws:iam::111122223333:role/q\""
        )
        .contains("credentials for"));
        assert!(err("\"Allow\"", "\"Perhaps\"").contains("policy use-keys does not parse"));
        assert!(bad("name = \"app\"", "name = \"a/b\""));
        assert!(bad(
            "\"arn:aws:iam::111122223333:role/app\"",
            "\"role/app\""
        ));
    }
}
