//! The policy simulator (admin `SimulateAuthorization`, `kmsim iam simulate`): a KMS request is
//! built from a principal, an action, a key and a context, and judged by
//! [`KmsApi::simulate`], the same checks, condition keys and evaluator every operation passes
//! through ([`KmsApi::authorize`]), on this Region's state. Nothing runs and nothing is
//! recorded; the answer names the statement or grant that decided.

use serde_json::{Map, Value};

use kmsim_core::KmsError;
use kmsim_policy::{Allowed, Decision, Denied, PolicyType, StatementRef};
use kmsim_proto::admin::v1 as pb;

use crate::kms::{KmsApi, RequestContext, Simulated};

/// The access key a simulated request is recorded as made with (it is never recorded).
const SIMULATION_KEY: &str = "kmsim-iam-simulate";

/// Answers one `SimulateAuthorization`.
pub async fn simulate(
    api: &KmsApi,
    req: pb::SimulateAuthorizationRequest,
) -> Result<pb::SimulateAuthorizationResponse, KmsError> {
    let (op, side) = operation(&req.action)?;
    let mut body = match req.request_json.trim() {
        "" => Map::new(),
        text => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(m)) => m,
            _ => {
                return Err(KmsError::Validation(
                    "request_json must be a JSON object of the operation's members".into(),
                ))
            }
        },
    };
    let context = Value::Object(
        req.encryption_context
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect(),
    );
    let (key_member, context_member) = match (op, side) {
        ("ReEncrypt", Some("ReEncryptTo")) => ("DestinationKeyId", "DestinationEncryptionContext"),
        ("ReEncrypt", _) => ("SourceKeyId", "SourceEncryptionContext"),
        ("CreateAlias" | "UpdateAlias" | "DeleteAlias", _) if req.key_id.starts_with("alias/") => {
            ("AliasName", "EncryptionContext")
        }
        ("CreateAlias" | "UpdateAlias", _) => ("TargetKeyId", "EncryptionContext"),
        _ => ("KeyId", "EncryptionContext"),
    };
    if !req.key_id.is_empty() {
        body.insert(key_member.into(), Value::from(req.key_id.as_str()));
    }
    if !req.encryption_context.is_empty() {
        body.insert(context_member.into(), context);
    }
    if !req.grant_tokens.is_empty() {
        body.insert("GrantTokens".into(), Value::from(req.grant_tokens.clone()));
    }
    let overrides: Vec<(String, String)> = req
        .context
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // Every policy and grant the Region has committed, as a confirmed read sees them.
    api.reads.barrier().await?;
    let ctx = RequestContext::aws_json(
        uuid::Uuid::new_v4().to_string(),
        req.principal_arn.clone(),
        SIMULATION_KEY.into(),
        None,
        None,
    );
    let mut checks = api.simulate(op, &ctx, &Value::Object(body), &overrides)?;
    if let Some(side) = side {
        let action = format!("kms:{side}");
        checks.retain(|c| c.action == action);
    }
    if checks.is_empty() {
        return Err(KmsError::NotFound(format!(
            "Key '{}' does not exist in {}",
            req.key_id, api.scope.region
        )));
    }
    let checks: Vec<pb::SimulatedCheck> = checks.into_iter().map(check).collect();
    let decision = checks
        .iter()
        .find(|c| c.decision != "allowed")
        .map_or("allowed", |c| c.decision.as_str())
        .to_string();
    Ok(pb::SimulateAuthorizationResponse { decision, checks })
}

/// The operation an action names, and the side of ReEncrypt it is.
fn operation(action: &str) -> Result<(&'static str, Option<&'static str>), KmsError> {
    let name = action
        .split_once(':')
        .filter(|(service, _)| service.eq_ignore_ascii_case("kms"))
        .map(|(_, op)| op)
        .unwrap_or("");
    for side in ["ReEncryptFrom", "ReEncryptTo"] {
        if name.eq_ignore_ascii_case(side) {
            return Ok(("ReEncrypt", Some(side)));
        }
    }
    crate::aws::dispatch::OPERATIONS
        .iter()
        .find(|op| op.eq_ignore_ascii_case(name))
        .map(|op| (*op, None))
        .ok_or_else(|| {
            KmsError::Validation(format!(
                "'{}' is not a KMS action (kms:<Operation>, e.g. kms:Decrypt)",
                crate::aws::errors::truncate(action, 128)
            ))
        })
}

fn statement(policy_type: &str, s: &StatementRef) -> pb::SimulatedStatement {
    pb::SimulatedStatement {
        policy_type: policy_type.into(),
        policy: s.policy.clone(),
        index: u32::try_from(s.index).unwrap_or(u32::MAX),
        sid: s.sid.clone().unwrap_or_default(),
    }
}

/// One judged check in the admin API's terms.
fn check(c: Simulated) -> pb::SimulatedCheck {
    // A request on no key or on an alias is judged against a delegation to the caller's
    // account that no key holds: only the identity statements are worth naming.
    let on_key = c.resource.contains(":key/");
    let key = |s: &StatementRef| on_key.then(|| statement("key", s));
    let (decision, statements, grant_id) = match &c.decision {
        Decision::Allow(Allowed::KeyPolicy(s)) => ("allowed", key(s).into_iter().collect(), ""),
        Decision::Allow(Allowed::KeyPolicyAndIdentity {
            key_policy,
            identity,
        }) => (
            "allowed",
            key(key_policy)
                .into_iter()
                .chain(identity.iter().map(|s| statement("identity", s)))
                .collect(),
            "",
        ),
        Decision::Allow(Allowed::Grant(g) | Allowed::RetiringPrincipal(g)) => {
            ("allowed", Vec::new(), g.as_str())
        }
        Decision::Deny(Denied::ExplicitDeny {
            policy_type,
            statement: s,
        }) => {
            let t = match policy_type {
                PolicyType::ResourceBased => "key",
                PolicyType::IdentityBased => "identity",
            };
            ("explicitDeny", vec![statement(t, s)], "")
        }
        Decision::Deny(Denied::NoResourcePolicyAllows) => ("implicitDeny", Vec::new(), ""),
        Decision::Deny(Denied::NoIdentityPolicyAllows { key_policy }) => {
            ("implicitDeny", key(key_policy).into_iter().collect(), "")
        }
    };
    pb::SimulatedCheck {
        action: c.action,
        resource: c.resource,
        decision: decision.into(),
        statements,
        grant_id: grant_id.into(),
        reason: c.decision.to_string(),
        message: c.message.unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_name_operations_and_the_sides_of_reencrypt() {
        assert_eq!(operation("kms:Decrypt").unwrap(), ("Decrypt", None));
        assert_eq!(operation("KMS:decrypt").unwrap(), ("Decrypt", None));
        assert_eq!(
            operation("kms:ReEncryptTo").unwrap(),
            ("ReEncrypt", Some("ReEncryptTo"))
        );
        assert_eq!(
            operation("s3:GetObject").unwrap_err().code(),
            "ValidationException"
        );
        assert!(operation("kms:Nope").is_err());
    }

    #[test]
    fn decisions_name_their_statements() {
        let s = StatementRef {
            policy: "default".into(),
            index: 2,
            sid: Some("DenyOthers".into()),
        };
        let c = check(Simulated {
            action: "kms:Decrypt".into(),
            resource: "arn:aws:kms:us-east-1:111122223333:key/k".into(),
            decision: Decision::Deny(Denied::ExplicitDeny {
                policy_type: PolicyType::ResourceBased,
                statement: s,
            }),
            message: Some("User: x ...".into()),
        });
        assert_eq!(c.decision, "explicitDeny");
        assert_eq!(c.statements[0].sid, "DenyOthers");
        assert_eq!(c.statements[0].policy_type, "key");
        assert_eq!(c.statements[0].index, 2);
        assert!(c.reason.contains("DenyOthers"), "{}", c.reason);
    }
}
