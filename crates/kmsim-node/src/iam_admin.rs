//! Run-time IAM changes (`kmsim iam …`, admin `ChangeIam`) and reads (`GetIam`): each change
//! turns the document held into the next version (`crate::iam_changes`), proposed as
//! `Command::SetIam` on the version it was built on; a `ConflictException` (another change
//! came first) is retried on the newer version ([`change`]). Only the IAM home Region accepts
//! changes (`crate::iam` says how the other Regions get them).

use std::collections::BTreeMap;

use kmsim_core::iam::{IamDocument, IamEntity};
use kmsim_core::state::{Command, CommandOutput};
use kmsim_core::KmsError;

use crate::config::Secret;
use crate::iam_changes::{apply_change, new_access_key, IamChange, IamChangeError, IamCode};
use crate::kms::KmsApi;

/// How many times a change is built again after another change came first.
const CONFLICT_RETRIES: usize = 8;

/// The change an admin `ChangeIam` request asks for.
pub fn change_from_request(
    r: kmsim_proto::admin::v1::ChangeIamRequest,
) -> Result<IamChange, IamChangeError> {
    let tags: BTreeMap<String, String> = r.tags.into_iter().collect();
    let arn = r.arn;
    Ok(match r.action.as_str() {
        "create-user" => IamChange::CreateUser { arn, tags },
        "delete-user" => IamChange::DeleteUser { arn },
        "create-role" => IamChange::CreateRole {
            arn,
            trust_policy: r.document,
            max_session_duration: r.max_session_duration,
            tags,
        },
        "delete-role" => IamChange::DeleteRole { arn },
        "put-policy" => IamChange::PutPolicy {
            arn,
            name: r.policy_name,
            document: r.document,
        },
        "delete-policy" => IamChange::DeletePolicy {
            arn,
            name: r.policy_name,
        },
        "tag" => IamChange::Tag { arn, tags },
        "untag" => IamChange::Untag {
            arn,
            keys: r.tag_keys,
        },
        "create-access-key" => IamChange::CreateAccessKey { arn },
        "delete-access-key" => IamChange::DeleteAccessKey {
            arn,
            access_key_id: r.access_key_id,
        },
        other => {
            return Err(IamChangeError::iam(
                IamCode::ValidationError,
                format!("unknown IAM action '{other}'"),
            ))
        }
    })
}

/// The document as `kmsim iam get` shows it: principals, their policies (as JSON when they
/// parse), tags, trust policies and access key IDs; no secret, sealed or not.
pub fn document_json(doc: &IamDocument) -> serde_json::Value {
    let json_or_text = |t: &str| {
        serde_json::from_str::<serde_json::Value>(t)
            .unwrap_or_else(|_| serde_json::Value::String(t.to_string()))
    };
    let entity = |e: &IamEntity| {
        let mut v = serde_json::json!({
            "Arn": e.arn,
            "Policies": e.policies.iter().map(|(n, d)| (n.clone(), json_or_text(d))).collect::<serde_json::Map<_, _>>(),
            "Tags": e.tags,
        });
        if let Some(t) = &e.trust_policy {
            v["TrustPolicy"] = json_or_text(t);
            v["MaxSessionDuration"] = serde_json::json!(e.max_session_duration.unwrap_or(3600));
        }
        if !e.access_keys.is_empty() {
            v["AccessKeys"] = e
                .access_keys
                .iter()
                .map(|k| serde_json::json!({"AccessKeyId": k.access_key_id, "CreateDateMs": k.created_ms}))
                .collect();
        }
        v
    };
    serde_json::json!({
        "Users": doc.users.iter().map(entity).collect::<Vec<_>>(),
        "Roles": doc.roles.iter().map(entity).collect::<Vec<_>>(),
    })
}

/// What a change committed.
pub struct Changed {
    /// The new version.
    pub version: u64,
    /// A new access key's ID and secret (`CreateAccessKey`).
    pub access_key: Option<(String, Secret)>,
}

/// Makes `change` in this Region, which must be the IAM home Region: reads the version held
/// (after a read barrier, so a change just made through another node is seen), builds the
/// next one and proposes it on the version read; retried on the newer version when another
/// change came first.
pub async fn change(api: &KmsApi, change: &IamChange) -> Result<Changed, IamChangeError> {
    let home = api.iam.home_region();
    if api.scope.region.as_str() != home {
        return Err(IamChangeError::Region(KmsError::UnsupportedOperation(
            format!(
                "IAM changes are made in the IAM home Region {home}, not in {}",
                api.scope.region
            ),
        )));
    }
    let new_key = match change {
        IamChange::CreateAccessKey { .. } => {
            let seal = api.iam.sealing_key().ok_or_else(|| {
                IamChangeError::iam(
                    IamCode::ValidationError,
                    "access keys need the topology's [sts] key, which seals their secrets",
                )
            })?;
            Some(new_access_key(
                seal,
                api.clock.now_ms(),
                &mut api.entropy.rng(),
            ))
        }
        _ => None,
    };
    let mut last = None;
    for _ in 0..CONFLICT_RETRIES {
        api.reads.barrier().await.map_err(IamChangeError::Region)?;
        let (base, mut doc) = api
            .read(|s| match s.iam() {
                Some(h) => (h.version, h.document.clone()),
                None => (0, api.iam.topology_document().clone()),
            })
            .map_err(IamChangeError::Region)?;
        apply_change(&mut doc, change, new_key.as_ref().map(|k| &k.sealed))?;
        let cmd = Command::SetIam {
            base: Some(base),
            version: base + 1,
            document: Box::new(doc),
        };
        match api.proposer.propose(&cmd).await {
            Ok(CommandOutput::IamVersion(version)) => {
                tracing::info!(version, "iam changed");
                return Ok(Changed {
                    version,
                    access_key: new_key.map(|k| (k.sealed.access_key_id, k.secret)),
                });
            }
            Ok(other) => {
                return Err(IamChangeError::Region(KmsError::Internal(format!(
                    "unexpected output {other:?}"
                ))))
            }
            Err(KmsError::Conflict(m)) => last = Some(KmsError::Conflict(m)),
            Err(e) => return Err(IamChangeError::Region(e)),
        }
    }
    Err(IamChangeError::Region(last.unwrap_or_else(|| {
        KmsError::Conflict("IAM kept changing meanwhile".into())
    })))
}
