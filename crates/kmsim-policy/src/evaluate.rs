//! The decision for one request on one KMS key, as AWS makes it, with the reason.
//!
//! 1. An explicit `Deny` that applies, in the key policy or in any of the caller's identity
//!    policies, refuses the request (grants cannot override it).
//! 2. Otherwise a grant whose grantee is the caller, whose operations include the action and
//!    whose constraints the request's encryption context satisfies, allows it; so does being the
//!    retiring principal of the grant a `kms:RetireGrant` retires.
//! 3. Otherwise the key policy must allow: naming the caller (or `*`) allows a caller of the
//!    key's own account outright; naming only the caller's account (its root, or the bare ID)
//!    delegates to IAM, and an identity policy of the caller must allow too. A caller from
//!    another account always needs both: the key policy naming it or its account, and its
//!    own identity policy. An account's root user is not subject to identity policies.

use std::collections::BTreeMap;
use std::fmt;

use crate::context::{PrincipalKind, RequestContext};
use crate::document::{Effect, Policy};
use crate::message;
use crate::statement::PrincipalMatch;

/// The name AWS gives the one policy of a key.
pub const KEY_POLICY_NAME: &str = "default";

/// An IAM policy attached to the caller (user, role, or the user's groups).
#[derive(Debug, Clone, PartialEq)]
pub struct IdentityPolicy {
    /// The policy's name, for explanations.
    pub name: String,
    /// The document.
    pub policy: Policy,
}

/// The constraints of a grant, checked against the request's encryption context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantConstraints {
    /// The request's encryption context must be exactly this.
    pub encryption_context_equals: Option<BTreeMap<String, String>>,
    /// The request's encryption context must include these pairs.
    pub encryption_context_subset: Option<BTreeMap<String, String>>,
}

impl GrantConstraints {
    /// Whether an encryption context satisfies the constraints (pairs compared exactly).
    pub fn allow(&self, context: &BTreeMap<String, String>) -> bool {
        let equals = self
            .encryption_context_equals
            .as_ref()
            .is_none_or(|want| want == context);
        let subset = self
            .encryption_context_subset
            .as_ref()
            .is_none_or(|want| want.iter().all(|(k, v)| context.get(k) == Some(v)));
        equals && subset
    }
}

/// A grant on the key, as far as authorization needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The grant ID.
    pub grant_id: String,
    /// Who may use it: a user, role or session ARN (a role covers its sessions), or an account
    /// root ARN (only the root user).
    pub grantee_principal: String,
    /// Who may retire it besides the grantee (when the grant includes `RetireGrant`).
    pub retiring_principal: Option<String>,
    /// KMS operation names, e.g. `Decrypt`, `GenerateDataKey`, `RetireGrant`.
    pub operations: Vec<String>,
    /// Encryption-context constraints, if any.
    pub constraints: Option<GrantConstraints>,
}

/// Operations whose requests carry an encryption context, the ones grant constraints apply to.
const ENCRYPTION_CONTEXT_OPERATIONS: &[&str] = &[
    "Encrypt",
    "Decrypt",
    "ReEncryptFrom",
    "ReEncryptTo",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
];

impl Grant {
    fn names(principal: &str, ctx: &RequestContext) -> bool {
        let caller = &ctx.caller;
        caller.kind != PrincipalKind::Service
            && (principal == caller.arn || principal == caller.principal_arn)
    }

    /// Whether this grant lets the request's caller perform its action.
    pub fn allows(&self, ctx: &RequestContext) -> bool {
        let Some(operation) = kms_operation(&ctx.action) else {
            return false;
        };
        if !Grant::names(&self.grantee_principal, ctx)
            || !self.operations.iter().any(|o| o == operation)
        {
            return false;
        }
        if operation == "RetireGrant" && ctx.retiring_grant().is_some_and(|g| g != self.grant_id) {
            return false;
        }
        match (
            &self.constraints,
            ENCRYPTION_CONTEXT_OPERATIONS.contains(&operation),
        ) {
            (Some(constraints), true) => {
                let empty = BTreeMap::new();
                constraints.allow(ctx.encryption_context().unwrap_or(&empty))
            }
            _ => true,
        }
    }

    /// Whether the request is its retiring principal retiring it.
    pub fn retirable_by(&self, ctx: &RequestContext) -> bool {
        kms_operation(&ctx.action) == Some("RetireGrant")
            && ctx.retiring_grant() == Some(self.grant_id.as_str())
            && self
                .retiring_principal
                .as_deref()
                .is_some_and(|p| Grant::names(p, ctx))
    }
}

/// `kms:Decrypt` → `Decrypt` (the prefix in any case).
fn kms_operation(action: &str) -> Option<&str> {
    let (service, op) = action.split_once(':')?;
    service.eq_ignore_ascii_case("kms").then_some(op)
}

/// Everything that can authorize a request on one key.
#[derive(Debug, Clone, Copy)]
pub struct KeyAccess<'a> {
    /// The key's policy.
    pub key_policy: &'a Policy,
    /// The caller's identity policies (ignored for root users and service principals).
    pub identity_policies: &'a [IdentityPolicy],
    /// The key's grants.
    pub grants: &'a [Grant],
}

/// A statement, named by its policy and its `Sid` or position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementRef {
    /// The policy's name (`default` for the key policy).
    pub policy: String,
    /// The statement's position (0-based).
    pub index: usize,
    /// Its `Sid`, if any.
    pub sid: Option<String>,
}

impl fmt::Display for StatementRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.sid {
            Some(sid) => write!(f, "policy {} statement \"{sid}\"", self.policy),
            None => write!(f, "policy {} statement #{}", self.policy, self.index),
        }
    }
}

/// Which kind of policy denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyType {
    /// The key policy.
    ResourceBased,
    /// An IAM policy of the caller.
    IdentityBased,
}

/// Why a request is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// The key policy names the caller (or `*`) and the caller is in the key's account (or is a
    /// service).
    KeyPolicy(StatementRef),
    /// The key policy allows (naming the account, or a principal of another account) and an
    /// identity policy of the caller allows; `identity` is `None` for an account root user.
    KeyPolicyAndIdentity {
        /// The key policy statement.
        key_policy: StatementRef,
        /// The identity policy statement.
        identity: Option<StatementRef>,
    },
    /// A grant.
    Grant(String),
    /// The caller is the retiring principal of the grant being retired.
    RetiringPrincipal(String),
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// A `Deny` statement applies.
    ExplicitDeny {
        /// Where the statement is.
        policy_type: PolicyType,
        /// Which statement.
        statement: StatementRef,
    },
    /// The key policy does not allow the caller, not even through its account.
    NoResourcePolicyAllows,
    /// The key policy delegates to IAM (or names a principal of another account) but no identity
    /// policy of the caller allows.
    NoIdentityPolicyAllows {
        /// The key policy statement that delegated.
        key_policy: StatementRef,
    },
}

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed, and what allowed it.
    Allow(Allowed),
    /// Refused, and why.
    Deny(Denied),
}

impl Decision {
    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// AWS's `AccessDeniedException` message for a refused request; `None` when allowed.
    pub fn access_denied_message(&self, ctx: &RequestContext) -> Option<String> {
        let (caller, action, resource) = (&ctx.caller.arn, &ctx.action, &ctx.resource);
        match self {
            Decision::Allow(_) => None,
            Decision::Deny(Denied::ExplicitDeny {
                policy_type: PolicyType::ResourceBased,
                ..
            }) => Some(message::explicit_deny_in_resource_policy(
                caller, action, resource,
            )),
            Decision::Deny(Denied::ExplicitDeny {
                policy_type: PolicyType::IdentityBased,
                ..
            }) => Some(message::explicit_deny_in_identity_policy(
                caller, action, resource,
            )),
            Decision::Deny(Denied::NoResourcePolicyAllows) => {
                Some(message::no_resource_policy_allows(caller, action, resource))
            }
            Decision::Deny(Denied::NoIdentityPolicyAllows { .. }) => {
                Some(message::no_identity_policy_allows(caller, action, resource))
            }
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allow(Allowed::KeyPolicy(s)) => write!(f, "allowed by key {s}"),
            Decision::Allow(Allowed::KeyPolicyAndIdentity {
                key_policy,
                identity,
            }) => match identity {
                Some(id) => write!(f, "allowed by key {key_policy} and identity {id}"),
                None => write!(f, "allowed by key {key_policy} for the account root user"),
            },
            Decision::Allow(Allowed::Grant(id)) => write!(f, "allowed by grant {id}"),
            Decision::Allow(Allowed::RetiringPrincipal(id)) => {
                write!(f, "allowed as retiring principal of grant {id}")
            }
            Decision::Deny(Denied::ExplicitDeny {
                policy_type,
                statement,
            }) => {
                let kind = match policy_type {
                    PolicyType::ResourceBased => "key",
                    PolicyType::IdentityBased => "identity",
                };
                write!(f, "denied explicitly by {kind} {statement}")
            }
            Decision::Deny(Denied::NoResourcePolicyAllows) => {
                write!(f, "denied: no key policy statement allows")
            }
            Decision::Deny(Denied::NoIdentityPolicyAllows { key_policy }) => write!(
                f,
                "denied: key {key_policy} delegates to IAM but no identity policy allows"
            ),
        }
    }
}

/// What the statements of one policy say about a request.
#[derive(Default)]
struct Verdict {
    deny: Option<StatementRef>,
    direct: Option<StatementRef>,
    account: Option<StatementRef>,
}

fn judge(name: &str, policy: &Policy, ctx: &RequestContext, verdict: &mut Verdict) {
    for (index, st) in policy.statements.iter().enumerate() {
        let Some(how) = st.applies(policy, ctx) else {
            continue;
        };
        let slot = match (st.effect, how) {
            (Effect::Deny, _) => &mut verdict.deny,
            (Effect::Allow, PrincipalMatch::Direct) => &mut verdict.direct,
            (Effect::Allow, PrincipalMatch::Account) => &mut verdict.account,
        };
        if slot.is_none() {
            *slot = Some(StatementRef {
                policy: name.to_string(),
                index,
                sid: st.sid.clone(),
            });
        }
    }
}

/// The account of an ARN (`arn:p:s:r:<account>:…`).
fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

/// Decides a request on a key.
pub fn evaluate(access: &KeyAccess<'_>, ctx: &RequestContext) -> Decision {
    let mut key = Verdict::default();
    judge(KEY_POLICY_NAME, access.key_policy, ctx, &mut key);
    if let Some(statement) = key.deny {
        return Decision::Deny(Denied::ExplicitDeny {
            policy_type: PolicyType::ResourceBased,
            statement,
        });
    }
    let kind = ctx.caller.kind;
    let mut identity = Verdict::default();
    if !matches!(kind, PrincipalKind::AccountRoot | PrincipalKind::Service) {
        for p in access.identity_policies {
            judge(&p.name, &p.policy, ctx, &mut identity);
        }
    }
    if let Some(statement) = identity.deny {
        return Decision::Deny(Denied::ExplicitDeny {
            policy_type: PolicyType::IdentityBased,
            statement,
        });
    }
    // Some(None): the root user, whom no identity policy governs.
    let identity_allows: Option<Option<StatementRef>> = match kind {
        PrincipalKind::AccountRoot => Some(None),
        PrincipalKind::Service => None,
        _ => identity.direct.map(Some),
    };
    if let Some(g) = access.grants.iter().find(|g| g.retirable_by(ctx)) {
        return Decision::Allow(Allowed::RetiringPrincipal(g.grant_id.clone()));
    }
    if let Some(g) = access.grants.iter().find(|g| g.allows(ctx)) {
        return Decision::Allow(Allowed::Grant(g.grant_id.clone()));
    }
    let same_account = match (arn_account(&ctx.resource), ctx.caller.account.as_deref()) {
        (Some(key_account), Some(caller_account)) => key_account == caller_account,
        _ => true,
    };
    if let Some(statement) = &key.direct {
        if same_account || kind == PrincipalKind::Service {
            return Decision::Allow(Allowed::KeyPolicy(statement.clone()));
        }
    }
    let Some(key_policy) = key.direct.or(key.account) else {
        return Decision::Deny(Denied::NoResourcePolicyAllows);
    };
    match identity_allows {
        Some(identity) => Decision::Allow(Allowed::KeyPolicyAndIdentity {
            key_policy,
            identity,
        }),
        None => Decision::Deny(Denied::NoIdentityPolicyAllows { key_policy }),
    }
}
