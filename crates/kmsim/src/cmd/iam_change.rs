//! `kmsim iam create-user` and the other run-time IAM changes, and `kmsim iam get`: each change
//! goes to a node of the IAM home Region (admin `ChangeIam`), which commits a new version of the
//! IAM document; its synchronizer sends it to every other Region. `--wait` returns once every
//! node that answers holds that version (admin `GetIam` on every node at once, polled). `get`
//! shows every node's version, naming the nodes that do not answer.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use tonic::transport::Channel;

use kmsim_node::config::Topology;
use kmsim_node::tls::Dialer;
use kmsim_proto::admin::v1::admin_service_client::AdminServiceClient;
use kmsim_proto::admin::v1::{ChangeIamRequest, GetIamRequest, GetIamResponse};
use kmsim_proto::status::ERROR_CODE_HEADER;
use kmsim_sim::cluster::ClusterDir;

/// Flags every change takes.
#[derive(Args, Clone)]
pub struct ChangeFlags {
    /// Return only once every node of every Region holds the new version (IAM is eventually
    /// consistent, as in AWS: without it, other Regions, and other nodes of the home Region,
    /// may still use the previous version for a moment). Nodes that do not answer (stopped or
    /// cut off) are named and not waited for; each Region must answer through one node at least.
    #[arg(long)]
    wait: bool,
    /// How long `--wait` waits, in seconds, before it fails naming the Regions behind.
    #[arg(long, default_value_t = 60)]
    wait_timeout: u64,
    /// The cluster's data directory.
    #[arg(long, env = "KMSIM_DATA_DIR", default_value = crate::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

/// The run-time IAM subcommands.
#[derive(Subcommand, Clone)]
pub enum ChangeCommand {
    /// Creates an IAM user (its ARN is arn:aws:iam::<account>:user/<path/>name). It may do
    /// nothing until an inline policy allows it; it signs requests with an access key from
    /// create-access-key.
    CreateUser {
        /// The user's ARN.
        #[arg(long)]
        arn: String,
        /// A tag, KEY=VALUE (repeatable): the value of aws:PrincipalTag/KEY.
        #[arg(long = "tag", value_parser = super::iam::parse_pair)]
        tags: Vec<(String, String)>,
        #[command(flatten)]
        flags: ChangeFlags,
    },
    /// Deletes an IAM user; its inline policies and access keys must be deleted first
    /// (DeleteConflict).
    DeleteUser {
        /// The user's ARN.
        #[arg(long)]
        arn: String,
        #[command(flatten)]
        flags: ChangeFlags,
    },
    /// Creates an IAM role that STS AssumeRole can assume as its trust policy allows.
    CreateRole {
        /// The role's ARN (arn:aws:iam::<account>:role/<path/>name).
        #[arg(long)]
        arn: String,
        /// The trust policy: JSON, or @FILE to read it from a file. Its statements name a
        /// Principal and no Resource.
        #[arg(long)]
        trust_policy: String,
        /// The longest session, 3600 to 43200 seconds [default: 3600].
        #[arg(long)]
        max_session_duration: Option<u32>,
        /// A tag, KEY=VALUE (repeatable).
        #[arg(long = "tag", value_parser = super::iam::parse_pair)]
        tags: Vec<(String, String)>,
        #[command(flatten)]
        flags: ChangeFlags,
    },
    /// Deletes an IAM role; its inline policies must be deleted first (DeleteConflict).
    DeleteRole {
        /// The role's ARN.
        #[arg(long)]
        arn: String,
        #[command(flatten)]
        flags: ChangeFlags,
    },
    /// Adds or replaces an inline identity policy of a user or role (MalformedPolicyDocument
    /// when it does not parse as an identity policy).
    PutPolicy {
        /// The user's or role's ARN.
        #[arg(long)]
        arn: String,
        /// The policy's name (1 to 128 of A-Z a-z 0-9 +=,.@_-).
        #[arg(long)]
        name: String,
        /// The policy document: JSON, or @FILE to read it from a file.
        #[arg(long)]
        document: String,
        #[command(flatten)]
        flags: ChangeFlags,
    },
    /// Deletes an inline identity policy of a user or role.
    DeletePolicy {
        /// The user's or role's ARN.
        #[arg(long)]
        arn: String,
        /// The policy's name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        flags: ChangeFlags,
    },
    /// Adds or replaces tags of a user or role (aws:PrincipalTag/KEY in policies).
    Tag {
        /// The user's or role's ARN.
        #[arg(long)]
        arn: String,
        /// A tag, KEY=VALUE (repeatable).
        #[arg(long = "tag", value_parser = super::iam::parse_pair, required = true)]
        tags: Vec<(String, String)>,
        #[command(flatten)]
        flags: ChangeFlags,
    },
    /// Removes tags of a user or role (keys it does not have are ignored).
    Untag {
        /// The user's or role's ARN.
        #[arg(long)]
        arn: String,
        /// A tag key (repeatable).
        #[arg(long = "tag-key", required = true)]
        keys: Vec<String>,
        #[command(flatten)]
        flags: ChangeFlags,
    },
    /// Creates an access key of a user (at most 2 per user, LimitExceeded) and prints its ID
    /// (AKIA…) and secret access key. The secret is shown this once: the cluster keeps it only
    /// sealed under the topology's [sts] key.
    CreateAccessKey {
        /// The user's ARN.
        #[arg(long)]
        arn: String,
        #[command(flatten)]
        flags: ChangeFlags,
    },
    /// Deletes an access key of a user: refused in each Region as soon as that Region applies
    /// the change. The topology's [[credentials]] are not IAM's and cannot be deleted so.
    DeleteAccessKey {
        /// The user's ARN.
        #[arg(long)]
        arn: String,
        /// The access key ID.
        #[arg(long)]
        access_key_id: String,
        #[command(flatten)]
        flags: ChangeFlags,
    },
}

impl ChangeCommand {
    /// The admin request and the flags of this change.
    fn request(&self) -> anyhow::Result<(ChangeIamRequest, &ChangeFlags)> {
        let tag_map = |t: &[(String, String)]| t.iter().cloned().collect::<HashMap<_, _>>();
        let base = |action: &str, arn: &str| ChangeIamRequest {
            action: action.to_string(),
            arn: arn.to_string(),
            ..Default::default()
        };
        Ok(match self {
            ChangeCommand::CreateUser { arn, tags, flags } => (
                ChangeIamRequest {
                    tags: tag_map(tags),
                    ..base("create-user", arn)
                },
                flags,
            ),
            ChangeCommand::DeleteUser { arn, flags } => (base("delete-user", arn), flags),
            ChangeCommand::CreateRole {
                arn,
                trust_policy,
                max_session_duration,
                tags,
                flags,
            } => (
                ChangeIamRequest {
                    document: text_or_file(trust_policy)?,
                    max_session_duration: *max_session_duration,
                    tags: tag_map(tags),
                    ..base("create-role", arn)
                },
                flags,
            ),
            ChangeCommand::DeleteRole { arn, flags } => (base("delete-role", arn), flags),
            ChangeCommand::PutPolicy {
                arn,
                name,
                document,
                flags,
            } => (
                ChangeIamRequest {
                    policy_name: name.clone(),
                    document: text_or_file(document)?,
                    ..base("put-policy", arn)
                },
                flags,
            ),
            ChangeCommand::DeletePolicy { arn, name, flags } => (
                ChangeIamRequest {
                    policy_name: name.clone(),
                    ..base("delete-policy", arn)
                },
                flags,
            ),
            ChangeCommand::Tag { arn, tags, flags } => (
                ChangeIamRequest {
                    tags: tag_map(tags),
                    ..base("tag", arn)
                },
                flags,
            ),
            ChangeCommand::Untag { arn, keys, flags } => (
                ChangeIamRequest {
                    tag_keys: keys.clone(),
                    ..base("untag", arn)
                },
                flags,
            ),
            ChangeCommand::CreateAccessKey { arn, flags } => {
                (base("create-access-key", arn), flags)
            }
            ChangeCommand::DeleteAccessKey {
                arn,
                access_key_id,
                flags,
            } => (
                ChangeIamRequest {
                    access_key_id: access_key_id.clone(),
                    ..base("delete-access-key", arn)
                },
                flags,
            ),
        })
    }
}

/// `kmsim iam get` and `kmsim iam list`'s flags.
#[derive(Args, Clone)]
pub struct GetArgs {
    /// Print one JSON object instead of text: `homeRegion`; `versions`, the IAM version each
    /// node holds by `REGION/ID`; `unreachable`, why each node that did not answer did not;
    /// and `document`, the home Region's.
    #[arg(long)]
    json: bool,
    /// The cluster's data directory.
    #[arg(long, env = "KMSIM_DATA_DIR", default_value = crate::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

/// A policy given as JSON text, or `@FILE`.
fn text_or_file(v: &str) -> anyhow::Result<String> {
    match v.strip_prefix('@') {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {path}: {e}"))
        }
        None => Ok(v.to_string()),
    }
}

/// The IAM home Region of a topology.
fn home_region(t: &Topology) -> String {
    t.iam
        .as_ref()
        .and_then(|i| i.home_region.clone())
        .or_else(|| t.regions.first().map(|r| r.name.clone()))
        .unwrap_or_default()
}

/// Calls `call` on the nodes of `region` in turn until one answers; a node's refusal (an API
/// error it sent) is the answer.
pub(super) async fn on_region<T, F, Fut>(
    t: &Topology,
    dialer: &Dialer,
    region: &str,
    call: F,
) -> anyhow::Result<T>
where
    F: Fn(AdminServiceClient<Channel>) -> Fut,
    Fut: std::future::Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let addrs: Vec<String> = t
        .region(region)
        .map(|c| c.nodes.iter().map(|n| n.advertise_addr()).collect())
        .ok_or_else(|| anyhow::anyhow!("Region {region} is not in the cluster"))?;
    let mut last = None;
    for addr in &addrs {
        match call(AdminServiceClient::new(super::admin_channel(dialer, addr)?)).await {
            Ok(r) => return Ok(r.into_inner()),
            Err(s) => match s.metadata().get(ERROR_CODE_HEADER) {
                Some(code) => {
                    anyhow::bail!("{}: {}", code.to_str().unwrap_or("Error"), s.message())
                }
                None => last = Some(anyhow::anyhow!("node {addr}: {}", s.message())),
            },
        }
    }
    Err(last.unwrap_or_else(|| anyhow::anyhow!("Region {region} has no nodes")))
}

/// `kmsim iam <change>`
pub fn change(c: ChangeCommand) -> anyhow::Result<ExitCode> {
    let (req, flags) = c.request()?;
    if let Some(code) = super::relayed(&flags.data_dir)? {
        return Ok(code);
    }
    let dir = ClusterDir::new(&flags.data_dir);
    let dialer = dir.operator_dialer()?;
    let topo = dir.topology()?;
    let home = home_region(&topo);
    let rt = super::runtime()?;
    let changed = rt.block_on(on_region(&topo, &dialer, &home, |mut c| {
        let req = req.clone();
        async move { c.change_iam(req).await }
    }))?;
    if !changed.access_key_id.is_empty() {
        outln!("AccessKeyId:     {}", changed.access_key_id);
        outln!("SecretAccessKey: {}", changed.secret_access_key);
    }
    outln!("version {} (committed in {home})", changed.version);
    if flags.wait {
        let deadline = Instant::now() + Duration::from_secs(flags.wait_timeout);
        loop {
            let held = rt.block_on(every_node(&topo, &dialer));
            let behind: Vec<String> = held
                .iter()
                .filter(|(_, h)| matches!(h, Held::Version(v) if v.version < changed.version))
                .map(|(n, _)| n.clone())
                .collect();
            let down = down(&held);
            // Every Region must have answered through at least one node.
            let unanswered = unanswered(&topo, &held);
            if behind.is_empty() && unanswered.is_empty() {
                outln!("every Region holds version {}", changed.version);
                if !down.is_empty() {
                    outln!(
                        "not waited for (unreachable; they catch up through Raft when they serve again): {}",
                        down.join(", ")
                    );
                }
                break;
            }
            if Instant::now() >= deadline {
                let mut late = behind;
                late.extend(unanswered.iter().map(|r| format!("{r} (no node answered)")));
                anyhow::bail!(
                    "after {} s, these nodes do not hold version {} yet: {}",
                    flags.wait_timeout,
                    changed.version,
                    late.join(", ")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// How long one node may take to answer `GetIam` in a poll: a node that takes longer (frozen,
/// or its Region without a leader) is named as not answering rather than holding up the poll.
const GET_IAM_TIMEOUT: Duration = Duration::from_secs(5);

/// What one node answered `GetIam`.
enum Held {
    /// The IAM it has applied (after its Region's read index).
    Version(GetIamResponse),
    /// It did not answer (stopped, unreachable, or its Region has no leader).
    Down(String),
}

/// Every node's answer to `GetIam`, as `REGION/ID` in the topology's order (so `/10` comes
/// after `/2`), all asked at once: `--wait` waits for each
/// node rather than for one node per Region, since any node may serve the next request (the
/// gateway spreads them) and a follower applies a version a moment after the node that answered
/// for its Region.
async fn every_node(t: &Topology, dialer: &Dialer) -> Vec<(String, Held)> {
    let asks = t.regions.iter().flat_map(|r| {
        r.nodes.iter().map(move |n| async move {
            let name = format!("{}/{}", r.name, n.id);
            let held = match super::admin_channel(dialer, &n.advertise_addr()) {
                Ok(ch) => {
                    let mut client = AdminServiceClient::new(ch);
                    let ask = client.get_iam(GetIamRequest {});
                    match tokio::time::timeout(GET_IAM_TIMEOUT, ask).await {
                        Ok(Ok(g)) => Held::Version(g.into_inner()),
                        Ok(Err(s)) => Held::Down(s.message().to_string()),
                        Err(_) => {
                            Held::Down(format!("no answer within {} s", GET_IAM_TIMEOUT.as_secs()))
                        }
                    }
                }
                Err(e) => Held::Down(e.to_string()),
            };
            (name, held)
        })
    });
    futures::future::join_all(asks).await.into_iter().collect()
}

/// The nodes that did not answer, as `REGION/ID (why)`.
fn down(held: &[(String, Held)]) -> Vec<String> {
    held.iter()
        .filter_map(|(n, h)| match h {
            Held::Down(why) => Some(format!("{n} ({why})")),
            Held::Version(_) => None,
        })
        .collect()
}

/// The Regions none of whose nodes answered.
fn unanswered<'a>(t: &'a Topology, held: &[(String, Held)]) -> Vec<&'a str> {
    t.regions
        .iter()
        .map(|r| r.name.as_str())
        .filter(|r| {
            !held
                .iter()
                .any(|(n, h)| n.split('/').next() == Some(*r) && !matches!(h, Held::Down(_)))
        })
        .collect()
}

/// `kmsim iam get` (`full`) and `kmsim iam list`
pub fn get(a: GetArgs, full: bool) -> anyhow::Result<ExitCode> {
    if let Some(code) = super::relayed(&a.data_dir)? {
        return Ok(code);
    }
    let dir = ClusterDir::new(&a.data_dir);
    let dialer = dir.operator_dialer()?;
    let topo = dir.topology()?;
    let home = home_region(&topo);
    let rt = super::runtime()?;
    let held = rt.block_on(every_node(&topo, &dialer));
    // The newest document a node of the home Region holds.
    let document = held
        .iter()
        .filter(|(n, _)| n.split('/').next() == Some(home.as_str()))
        .filter_map(|(_, h)| match h {
            Held::Version(g) => Some(g),
            Held::Down(_) => None,
        })
        .max_by_key(|g| g.version)
        .and_then(|g| serde_json::from_str::<serde_json::Value>(&g.document_json).ok());
    let versions: BTreeMap<&String, u64> = held
        .iter()
        .filter_map(|(n, h)| match h {
            Held::Version(g) => Some((n, g.version)),
            Held::Down(_) => None,
        })
        .collect();
    let unreachable: BTreeMap<&String, &String> = held
        .iter()
        .filter_map(|(n, h)| match h {
            Held::Down(why) => Some((n, why)),
            Held::Version(_) => None,
        })
        .collect();
    let unanswered = unanswered(&topo, &held);
    if a.json {
        outln!(
            "{}",
            serde_json::json!({
                "homeRegion": home,
                "versions": versions,
                "unreachable": unreachable,
                "document": document,
            })
        );
    } else {
        outln!("home Region: {home}");
        for (n, h) in &held {
            match h {
                Held::Version(g) => outln!("{n}: version {}", g.version),
                Held::Down(why) => outln!("{n}: no answer ({why})"),
            }
        }
        match document {
            Some(d) if full => {
                outln!("{}", serde_json::to_string_pretty(&d).unwrap_or_default());
            }
            Some(d) => {
                for kind in ["Users", "Roles"] {
                    for e in d[kind].as_array().into_iter().flatten() {
                        let policies = e["Policies"]
                            .as_object()
                            .map(|p| p.keys().cloned().collect::<Vec<_>>().join(","))
                            .unwrap_or_default();
                        let keys = e["AccessKeys"].as_array().map(|k| k.len()).unwrap_or(0);
                        outln!(
                            "{}  policies: [{policies}]  access keys: {keys}",
                            e["Arn"].as_str().unwrap_or_default()
                        );
                    }
                }
            }
            None => {}
        }
    }
    Ok(if unanswered.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
