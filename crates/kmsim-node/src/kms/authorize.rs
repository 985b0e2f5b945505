//! The authorization step every KMS operation passes before it does anything (called by
//! [`KmsApi::consistent`], so both faces share it): who calls (the topology's IAM, `crate::iam`),
//! what the operation acts on ([`acts`], one row per operation that is not "the key its `KeyId`
//! names"), the condition keys (the request's members through one table, [`REQUEST_KEYS`], the
//! key's own properties, and the global keys), and `kmsim_policy::evaluate` over the key's
//! policy and grants as this Region's replicated state holds them.
//!
//! The request is read in its AWS JSON form (every `kmsim.kms.v1` request serializes to it), so
//! a condition key is one table row, not code in each operation; only the members this module
//! reads ([`READ_MEMBERS`]) are serialized, the rest (plaintext, message, signature, key
//! material, …) are skipped before they are encoded ([`super::trail::Conditions`]).
//!
//! Decisions are cached ([`PolicyCache`]). What a check is judged against (the key policy,
//! the caller's identity policies, the key's grants and aliases) is read once per version of
//! it, a [`PolicySet`] named by the key, the key's authorization version in this Region's
//! state (`KmsState::authorization_version`: its record, grants and aliases), the IAM's
//! generation and the caller; the set knows the condition keys its policies read
//! ([`ContextKeys`]). A decision is then kept by the set's name and the request's
//! fingerprint over exactly those keys ([`DecisionCache`]), and never when the policies read
//! the clock (`aws:CurrentTime`, `aws:EpochTime`).

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use lru::LruCache;

use serde_json::Value;
use time::OffsetDateTime;

use kmsim_core::ids::{AliasName, KeyId, KeyRef, RefForms, Region};
use kmsim_core::key::KeyRecord;
use kmsim_core::KmsError;
use kmsim_crypto::CiphertextBlob;
use kmsim_policy::{
    check_lockout_in, evaluate, CacheStats, ContextKeys, Decision, DecisionCache, Denied, Grant,
    GrantConstraints, IdentityPolicy, KeyAccess, Policy, PolicyError,
    RequestContext as PolicyContext,
};

use super::trail::{Conditions, Trail};
use super::{Interface, KmsApi, RequestContext};
use crate::iam::Principal;

/// What an operation is authorized against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acts {
    /// Identity policies only, on resource `*`: the operation names no existing key.
    Account,
    /// The key its `KeyId` member names (key policy, identity policies, grants).
    Key,
    /// Decrypt: the key `KeyId` names, else the key its ciphertext names.
    KeyOrCiphertext,
    /// ReEncrypt: `kms:ReEncryptFrom` on the source key, `kms:ReEncryptTo` on the destination.
    ReEncrypt,
    /// Aliases: the alias (identity policies) and every key it targets or will target.
    Alias,
    /// RetireGrant: the key of the grant (its token or `KeyId`), the grant being retired named.
    RetireGrant,
    /// ReplicateKey: `kms:ReplicateKey` on the primary, and `kms:CreateKey` (plus
    /// `kms:TagResource` with `Tags`) from identity policies as evaluated in the replica Region.
    Replicate,
}

/// The one table of operations whose resource is not "the key `KeyId` names".
fn acts(op: &str) -> Acts {
    match op {
        "CreateKey" | "ListKeys" | "ListAliases" | "GenerateRandom" | "ListRetirableGrants" => {
            Acts::Account
        }
        "Decrypt" => Acts::KeyOrCiphertext,
        "ReEncrypt" => Acts::ReEncrypt,
        "CreateAlias" | "UpdateAlias" | "DeleteAlias" => Acts::Alias,
        "RetireGrant" => Acts::RetireGrant,
        "ReplicateKey" => Acts::Replicate,
        _ => Acts::Key,
    }
}

/// The operations whose requests carry an encryption context (`kms:EncryptionContext:<k>`,
/// `kms:EncryptionContextKeys`, grant constraints), and the default `kms:EncryptionAlgorithm`.
const ENCRYPTION_CONTEXT_OPERATIONS: &[&str] = &[
    "Encrypt",
    "Decrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
];

/// How a request member becomes a condition key value.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A string (or each string of a list: a multi-valued key).
    Text,
    /// A number.
    Number,
    /// A Boolean.
    Bool,
    /// Epoch seconds, as a date.
    Date,
}

/// Request members that are condition keys, for every operation that has the member.
const REQUEST_KEYS: &[(&str, &str, Kind)] = &[
    ("EncryptionAlgorithm", "kms:EncryptionAlgorithm", Kind::Text),
    ("SigningAlgorithm", "kms:SigningAlgorithm", Kind::Text),
    ("MacAlgorithm", "kms:MacAlgorithm", Kind::Text),
    ("MessageType", "kms:MessageType", Kind::Text),
    ("KeyPairSpec", "kms:DataKeyPairSpec", Kind::Text),
    (
        "KeyAgreementAlgorithm",
        "kms:KeyAgreementAlgorithm",
        Kind::Text,
    ),
    ("ExpirationModel", "kms:ExpirationModel", Kind::Text),
    ("ValidTo", "kms:ValidTo", Kind::Date),
    ("WrappingAlgorithm", "kms:WrappingAlgorithm", Kind::Text),
    ("WrappingKeySpec", "kms:WrappingKeySpec", Kind::Text),
    (
        "PendingWindowInDays",
        "kms:ScheduleKeyDeletionPendingWindowInDays",
        Kind::Number,
    ),
    (
        "RotationPeriodInDays",
        "kms:RotationPeriodInDays",
        Kind::Number,
    ),
    (
        "BypassPolicyLockoutSafetyCheck",
        "kms:BypassPolicyLockoutSafetyCheck",
        Kind::Bool,
    ),
    ("ReplicaRegion", "kms:ReplicaRegion", Kind::Text),
    ("PrimaryRegion", "kms:PrimaryRegion", Kind::Text),
    ("GranteePrincipal", "kms:GranteePrincipal", Kind::Text),
    ("RetiringPrincipal", "kms:RetiringPrincipal", Kind::Text),
    ("Operations", "kms:GrantOperations", Kind::Text),
    ("TagKeys", "aws:TagKeys", Kind::Text),
];

/// Every request member this module reads (besides [`REQUEST_KEYS`]'), nested ones included
/// (`Constraints`' and `Tags`' members): the only ones serialized for it.
const READ_MEMBERS: &[&str] = &[
    "KeyId",
    "SourceKeyId",
    "DestinationKeyId",
    "TargetKeyId",
    "CiphertextBlob",
    "AliasName",
    "GrantToken",
    "GrantId",
    "Tags",
    "TagKey",
    "TagValue",
    "KeySpec",
    "CustomerMasterKeySpec",
    "KeyUsage",
    "Origin",
    "MultiRegion",
    "Constraints",
    "EncryptionContextSubset",
    "EncryptionContextEquals",
    "EncryptionContext",
    "SourceEncryptionContext",
    "DestinationEncryptionContext",
    "SourceEncryptionAlgorithm",
    "DestinationEncryptionAlgorithm",
];

/// Whether authorization reads request member `name` (so it must be serialized).
pub(super) fn reads_member(name: &str) -> bool {
    READ_MEMBERS.contains(&name) || REQUEST_KEYS.iter().any(|(m, _, _)| *m == name)
}

/// Defaults AWS puts in the context when the member is absent, by operation.
fn default_keys(op: &str) -> &'static [(&'static str, &'static str)] {
    match op {
        o if ENCRYPTION_CONTEXT_OPERATIONS.contains(&o) || o == "ReEncrypt" => {
            &[("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT")]
        }
        "Sign" | "Verify" => &[("kms:MessageType", "RAW")],
        "CreateKey" => &[
            ("kms:KeySpec", "SYMMETRIC_DEFAULT"),
            ("kms:KeyOrigin", "AWS_KMS"),
            ("kms:BypassPolicyLockoutSafetyCheck", "false"),
        ],
        "PutKeyPolicy" => &[("kms:BypassPolicyLockoutSafetyCheck", "false")],
        _ => &[],
    }
}

/// One decision the operation needs.
struct Check {
    /// `kms:<Action>`.
    action: String,
    /// What it is on.
    target: Target,
    /// `aws:RequestedRegion` when not this Region (ReplicateKey's replica-side checks).
    region: Option<Region>,
    /// The member holding this check's encryption context, if it takes one.
    context_member: Option<&'static str>,
    /// The member holding this check's encryption algorithm (ReEncrypt's two sides).
    algorithm_member: Option<&'static str>,
    /// The grant a RetireGrant retires.
    retiring_grant: Option<String>,
}

impl Check {
    fn new(action: &str, target: Target) -> Check {
        Check {
            action: format!("kms:{action}"),
            target,
            region: None,
            context_member: None,
            algorithm_member: None,
            retiring_grant: None,
        }
    }
}

/// What one check is on.
enum Target {
    /// Resource `*`, identity policies only.
    Account,
    /// An alias ARN, identity policies only (key policies do not govern aliases).
    Alias(String),
    /// A key of this Region, and the `KeyId` as the request gave it (for `kms:RequestAlias`).
    Key(Arc<KeyRecord>, Option<String>),
}

/// One check of a simulated request (`KmsApi::simulate`).
#[derive(Debug, Clone)]
pub struct Simulated {
    /// The action judged (`kms:Decrypt`, `kms:ReEncryptFrom`, …).
    pub action: String,
    /// The resource it was judged on (a key ARN, an alias ARN, or `*`).
    pub resource: String,
    /// The decision, naming the statement or grant that decided.
    pub decision: Decision,
    /// AWS's `AccessDeniedException` message when refused.
    pub message: Option<String>,
}

/// What one check is judged against, read once per version of it: the key policy (for a
/// check on no key, the delegation to the caller's account), the caller's identity policies,
/// the key's grants and alias names, and the condition keys those policies read.
struct PolicySet {
    /// Its name in the decision cache; empty when it must not be cached (the key vanished
    /// while it was read).
    scope: String,
    /// `None`: nothing can allow (a caller with no account, on no key).
    policy: Option<Arc<Result<Policy, PolicyError>>>,
    identity: Arc<[IdentityPolicy]>,
    grants: Vec<Grant>,
    aliases: Vec<String>,
    keys: ContextKeys,
}

/// Parsed key policies by text (a policy is parsed once, not on every request), the policy
/// sets of recent (key version, caller) pairs, and recent decisions.
pub struct PolicyCache {
    parsed: Mutex<HashMap<String, Arc<Result<Policy, PolicyError>>>>,
    sets: Mutex<LruCache<String, Arc<PolicySet>>>,
    decisions: DecisionCache,
}

/// Policies the cache holds before it is emptied.
const POLICY_CACHE_LIMIT: usize = 4096;

/// Policy sets kept (least recently used dropped first).
const POLICY_SETS: usize = 4096;

/// Decisions kept (least recently used dropped first): some megabytes at most.
const DECISIONS: usize = 16_384;

impl Default for PolicyCache {
    fn default() -> Self {
        PolicyCache {
            parsed: Mutex::default(),
            sets: Mutex::new(LruCache::new(
                NonZeroUsize::new(POLICY_SETS).unwrap_or(NonZeroUsize::MIN),
            )),
            decisions: DecisionCache::new(DECISIONS),
        }
    }
}

impl PolicyCache {
    /// How the decision cache has answered so far (for the node's metrics).
    pub fn decision_stats(&self) -> CacheStats {
        self.decisions.stats()
    }

    fn set(&self, scope: &str) -> Option<Arc<PolicySet>> {
        self.sets
            .lock()
            .expect("invariant: lock not poisoned")
            .get(scope)
            .cloned()
    }

    fn keep_set(&self, set: Arc<PolicySet>) {
        if !set.scope.is_empty() {
            let mut sets = self.sets.lock().expect("invariant: lock not poisoned");
            sets.put(set.scope.clone(), set);
        }
    }

    fn get(&self, text: &str) -> Arc<Result<Policy, PolicyError>> {
        let mut map = self.parsed.lock().expect("invariant: lock not poisoned");
        if let Some(p) = map.get(text) {
            return p.clone();
        }
        if map.len() >= POLICY_CACHE_LIMIT {
            map.clear();
        }
        let p = Arc::new(Policy::parse(text));
        map.insert(text.to_string(), p.clone());
        p
    }
}

impl std::fmt::Debug for PolicyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PolicyCache")
    }
}

/// A string member of the request.
fn member<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

/// A map member of strings (an encryption context).
fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// `Tags` (`[{TagKey, TagValue}]`) as pairs.
fn tags_member(body: &Value) -> Option<Vec<(String, String)>> {
    let list = body.get("Tags")?.as_array()?;
    Some(
        list.iter()
            .filter_map(|t| {
                Some((
                    t.get("TagKey")?.as_str()?.to_string(),
                    t.get("TagValue")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                ))
            })
            .collect(),
    )
}

impl KmsApi {
    /// Authorizes one request of operation `op`: `Ok` to proceed, else the
    /// `AccessDeniedException` the caller gets (nothing has happened yet). A key the request
    /// names that cannot be resolved is not judged here: the operation answers for it
    /// (`NotFoundException`, `InvalidArnException`, …), as AWS does for keys of the caller's
    /// own account.
    pub fn authorize<Req: serde::Serialize>(
        &self,
        op: &str,
        ctx: &RequestContext,
        req: &Req,
    ) -> Result<(), KmsError> {
        // Only the members condition keys and key resolution read: payloads are skipped
        // before they are encoded (a 4 KiB plaintext cost a quarter of Encrypt's throughput).
        let body = serde_json::to_value(Trail::<_, Conditions>::new(req)).unwrap_or(Value::Null);
        // The generation first, then what it versions (see `Iam::version`).
        let iam_version = self.iam.version();
        let principal = self.iam.principal(&ctx.principal_arn);
        let base = self.base_context(op, ctx, &principal, &body);
        for check in self.checks(op, &body)? {
            self.decide(&check, &base, &principal, iam_version, &body)?;
        }
        Ok(())
    }

    /// The checks `op` needs on this request (keys resolved in this Region's state).
    fn checks(&self, op: &str, body: &Value) -> Result<Vec<Check>, KmsError> {
        let key = |member_name: &str| -> Option<Target> {
            let named = member(body, member_name)?;
            let k = self.resolve(named, RefForms::KeyOrAlias).ok()?;
            Some(Target::Key(k, Some(named.to_string())))
        };
        let mut checks = Vec::new();
        match acts(op) {
            Acts::Account => checks.push(Check::new(op, Target::Account)),
            Acts::Key => {
                if let Some(t) = key("KeyId") {
                    checks.push(Check::new(op, t));
                }
            }
            Acts::KeyOrCiphertext => {
                if let Some(t) = key("KeyId").or_else(|| self.ciphertext_key(body)) {
                    checks.push(Check::new(op, t));
                }
            }
            Acts::ReEncrypt => {
                if let Some(t) = key("SourceKeyId").or_else(|| self.ciphertext_key(body)) {
                    let mut c = Check::new("ReEncryptFrom", t);
                    c.context_member = Some("SourceEncryptionContext");
                    c.algorithm_member = Some("SourceEncryptionAlgorithm");
                    checks.push(c);
                }
                if let Some(t) = key("DestinationKeyId") {
                    let mut c = Check::new("ReEncryptTo", t);
                    c.context_member = Some("DestinationEncryptionContext");
                    c.algorithm_member = Some("DestinationEncryptionAlgorithm");
                    checks.push(c);
                }
            }
            Acts::Alias => {
                let Some(name) = member(body, "AliasName").and_then(|n| AliasName::parse(n).ok())
                else {
                    return Ok(checks);
                };
                checks.push(Check::new(op, Target::Alias(self.scope.alias_arn(&name))));
                // The key the alias points at now (UpdateAlias, DeleteAlias), then the new one.
                if let Some(current) = self.read(|s| s.alias(&name))? {
                    if let Some(k) = self.read(|s| s.key(&current.target))? {
                        checks.push(Check::new(op, Target::Key(k, None)));
                    }
                }
                if let Some(t) = key("TargetKeyId") {
                    checks.push(Check::new(op, t));
                }
            }
            Acts::RetireGrant => {
                let named = match member(body, "GrantToken") {
                    Some(token) => super::tokens::open_grant_token(&self.materials, token)
                        .ok()
                        .and_then(|(id, grant)| Some((self.read(|s| s.key(&id)).ok()??, grant))),
                    None => member(body, "KeyId")
                        .and_then(|k| self.resolve(k, RefForms::KeyOnly).ok())
                        .zip(member(body, "GrantId").map(String::from)),
                };
                if let Some((k, grant)) = named {
                    let mut c = Check::new(op, Target::Key(k, None));
                    c.retiring_grant = Some(grant);
                    checks.push(c);
                }
            }
            Acts::Replicate => {
                let Some(t) = key("KeyId") else {
                    return Ok(checks);
                };
                checks.push(Check::new(op, t));
                // IAM is global: the identity policies the replica Region would evaluate are
                // the ones this Region has (the same topology), judged for that Region.
                let Some(region) =
                    member(body, "ReplicaRegion").and_then(|r| Region::parse(r).ok())
                else {
                    return Ok(checks);
                };
                let mut create = Check::new("CreateKey", Target::Account);
                create.region = Some(region.clone());
                checks.push(create);
                if tags_member(body).is_some_and(|t| !t.is_empty()) {
                    let mut tag = Check::new("TagResource", Target::Account);
                    tag.region = Some(region);
                    checks.push(tag);
                }
            }
        }
        Ok(checks)
    }

    /// The key a symmetric `CiphertextBlob` names (Decrypt and ReEncrypt without a key).
    fn ciphertext_key(&self, body: &Value) -> Option<Target> {
        let blob = base64_decode(member(body, "CiphertextBlob")?)?;
        let parsed = CiphertextBlob::parse(&blob).ok()?;
        let id = KeyId::parse(parsed.key_id())?;
        Some(Target::Key(self.read(|s| s.key(&id)).ok()??, None))
    }

    /// The context every check of one request starts from: the caller's keys, the global keys
    /// and the request's members.
    fn base_context(
        &self,
        op: &str,
        ctx: &RequestContext,
        principal: &Principal,
        body: &Value,
    ) -> PolicyContext {
        let now_ms = self.clock.now_ms();
        let mut c = PolicyContext::new(principal.caller.clone(), &format!("kms:{op}"), "*")
            .with("aws:RequestedRegion", self.scope.region.as_str())
            .with(
                "aws:CurrentTime",
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms) * 1_000_000)
                    .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            )
            .with("aws:EpochTime", now_ms / 1000)
            .with(
                "aws:SecureTransport",
                match ctx.interface {
                    Interface::Grpc => self.secure_transport.grpc,
                    Interface::AwsJson => self.secure_transport.aws_json,
                },
            );
        if let Some(ip) = ctx
            .source_ip
            .as_deref()
            .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
        {
            c = c.with("aws:SourceIp", ip);
        }
        for (k, v) in default_keys(op) {
            c = match *v {
                "false" => c.with(k, false),
                v => c.with(k, v),
            };
        }
        for (name, key, kind) in REQUEST_KEYS {
            let Some(v) = body.get(*name).filter(|v| !v.is_null()) else {
                continue;
            };
            c = match (kind, v) {
                (Kind::Text, Value::String(s)) => c.with(key, s.as_str()),
                (Kind::Text, Value::Array(list)) => {
                    c.with_values(key, list.iter().filter_map(Value::as_str))
                }
                (Kind::Number, Value::Number(n)) => c.with(key, n.as_f64().unwrap_or(0.0)),
                (Kind::Bool, Value::Bool(b)) => c.with(key, *b),
                (Kind::Date, Value::Number(n)) => {
                    let nanos = (n.as_f64().unwrap_or(0.0) * 1e9) as i128;
                    match OffsetDateTime::from_unix_timestamp_nanos(nanos) {
                        Ok(d) => c.with(key, d),
                        Err(_) => c,
                    }
                }
                _ => c,
            };
        }
        if let Some(tags) = tags_member(body) {
            c = c.with_values("aws:TagKeys", tags.iter().map(|(k, _)| k.as_str()));
            for (k, v) in &tags {
                c = c.with(&format!("aws:RequestTag/{k}"), v.as_str());
            }
        }
        if op == "CreateKey" {
            let spec = member(body, "KeySpec").or(member(body, "CustomerMasterKeySpec"));
            if let Some(spec) = spec {
                c = c.with("kms:KeySpec", spec);
            }
            let usage = member(body, "KeyUsage").or(match spec {
                None | Some("SYMMETRIC_DEFAULT") => Some("ENCRYPT_DECRYPT"),
                _ => None,
            });
            if let Some(u) = usage {
                c = c.with("kms:KeyUsage", u);
            }
            if let Some(o) = member(body, "Origin") {
                c = c.with("kms:KeyOrigin", o);
            }
            let multi = body
                .get("MultiRegion")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            c = c.with("kms:MultiRegion", multi);
            if multi {
                c = c.with("kms:MultiRegionKeyType", "PRIMARY");
            }
        }
        if op == "CreateGrant" {
            c = c.with("kms:GrantIsForAWSResource", false);
            if let Some(cons) = body.get("Constraints").and_then(Value::as_object) {
                let mut types = Vec::new();
                let mut pairs = BTreeMap::new();
                for t in ["EncryptionContextSubset", "EncryptionContextEquals"] {
                    if let Some(m) = cons.get(t).filter(|m| !m.is_null()) {
                        types.push(t);
                        pairs.extend(string_map(Some(m)));
                    }
                }
                c = c.with_values("kms:GrantConstraintType", types);
                if !pairs.is_empty() {
                    c = c.with_encryption_context(pairs);
                }
            }
        }
        if ENCRYPTION_CONTEXT_OPERATIONS.contains(&op) {
            c = c.with_encryption_context(string_map(body.get("EncryptionContext")));
        }
        c
    }

    /// Judges one check and turns a refusal into `AccessDeniedException`.
    fn decide(
        &self,
        check: &Check,
        base: &PolicyContext,
        principal: &Principal,
        iam_version: u64,
        body: &Value,
    ) -> Result<(), KmsError> {
        let (ctx, decision) = self.judge(check, base, principal, iam_version, body, None)?;
        match decision.access_denied_message(&ctx) {
            None => Ok(()),
            Some(message) => {
                tracing::debug!(action = %ctx.action, resource = %ctx.resource, caller = %ctx.caller.arn, %decision, "access denied");
                Err(KmsError::AccessDenied(message))
            }
        }
    }

    /// The decision of one check, and the request context it was judged with. A simulation
    /// gives `overrides` (condition keys set last), and is not answered from the cache nor
    /// kept in it.
    fn judge(
        &self,
        check: &Check,
        base: &PolicyContext,
        principal: &Principal,
        iam_version: u64,
        body: &Value,
        overrides: Option<&[(String, String)]>,
    ) -> Result<(PolicyContext, Decision), KmsError> {
        let (resource, key) = match &check.target {
            Target::Account => ("*".to_string(), None),
            Target::Alias(arn) => (arn.clone(), None),
            Target::Key(k, _) => (self.arn(k), Some(k)),
        };
        let set = self.policy_set(&check.target, principal, iam_version)?;
        let mut ctx = base.for_action(&check.action, &resource);
        if let Some(region) = &check.region {
            ctx = ctx.with("aws:RequestedRegion", region.as_str());
        }
        if let Some(m) = check.context_member {
            ctx = ctx.with_encryption_context(string_map(body.get(m)));
        }
        if let Some(m) = check.algorithm_member {
            ctx = ctx.with(
                "kms:EncryptionAlgorithm",
                member(body, m).unwrap_or("SYMMETRIC_DEFAULT"),
            );
        }
        if let Some(g) = &check.retiring_grant {
            ctx = ctx.with_retiring_grant(g);
        }
        if let (Target::Key(k, named), Some(_)) = (&check.target, key) {
            ctx = self.key_context(ctx, k, named.as_deref(), body, &set.aliases);
        }
        for (k, v) in overrides.unwrap_or_default() {
            ctx = ctx.with(k, v.as_str());
        }
        let decision = match set.policy.as_deref() {
            // A stored policy this evaluator cannot read allows nothing; nor does a key
            // policy for a caller of no account.
            None | Some(Err(_)) => Decision::Deny(Denied::NoResourcePolicyAllows),
            Some(Ok(policy)) => {
                let access = KeyAccess {
                    key_policy: policy,
                    identity_policies: &set.identity,
                    grants: &set.grants,
                };
                if overrides.is_none() && !set.scope.is_empty() {
                    self.policies
                        .decisions
                        .decide(&set.scope, &set.keys, &access, &ctx)
                } else {
                    evaluate(&access, &ctx)
                }
            }
        };
        Ok((ctx, decision))
    }

    /// What `target` is judged against for `principal` (whose identity policies are those
    /// of IAM generation `iam_version`): from the cache when the key has not changed since,
    /// else read (the key's record, grants and aliases in one read of the state, with their
    /// version) and kept.
    fn policy_set(
        &self,
        target: &Target,
        principal: &Principal,
        iam_version: u64,
    ) -> Result<Arc<PolicySet>, KmsError> {
        let scope = |key| set_name(key, iam_version, &principal.caller.arn);
        let key_id = match target {
            Target::Key(k, _) => Some(&k.key_id),
            Target::Account | Target::Alias(_) => None,
        };
        let name = match key_id {
            Some(id) => scope(Some((id, self.read(|s| s.authorization_version(id))?))),
            None => scope(None),
        };
        if let Some(set) = self.policies.set(&name) {
            return Ok(set);
        }
        let mut set = PolicySet {
            scope: name,
            policy: None,
            identity: principal.policies.clone(),
            grants: Vec::new(),
            aliases: Vec::new(),
            keys: ContextKeys::default(),
        };
        match (target, key_id) {
            (Target::Key(k, _), Some(id)) => {
                let (version, fresh, grants, aliases) = self.read(|s| {
                    (
                        s.authorization_version(id),
                        s.key(id),
                        s.grants_of(id),
                        s.aliases_of(id),
                    )
                })?;
                // A key deleted meanwhile: judged on the record the check resolved, not kept.
                set.scope = match fresh.is_some() {
                    true => scope(Some((id, version))),
                    false => String::new(),
                };
                let record: &KeyRecord = fresh.as_deref().unwrap_or(k);
                set.policy = Some(self.policies.get(&record.regional.policy));
                set.grants = grants.into_iter().map(grant_of).collect();
                set.aliases = aliases
                    .into_iter()
                    .map(|a| a.name.as_str().to_string())
                    .collect();
            }
            _ => {
                // No key: identity policies alone, as if a key policy delegated everything to
                // the caller's account (a root user is allowed, a service principal is not).
                set.policy = principal.caller.account_root_arn().map(|root| {
                    self.policies.get(&format!(
                        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{root}"}},"Action":"*","Resource":"*"}}]}}"#
                    ))
                });
            }
        }
        let key_policy = set.policy.as_deref().and_then(|p| p.as_ref().ok());
        set.keys = ContextKeys::of(
            key_policy
                .into_iter()
                .chain(set.identity.iter().map(|p| &p.policy)),
        );
        let set = Arc::new(set);
        self.policies.keep_set(set.clone());
        Ok(set)
    }

    /// What `kmsim iam simulate` asks: every check operation `op` needs for a request `body`
    /// (its AWS JSON form) by the caller of `ctx`, judged exactly as [`KmsApi::authorize`]
    /// would on this Region's state, each with its decision and, when refused, AWS's message.
    /// `overrides` set condition keys after the request's own (e.g. `aws:SourceIp`).
    pub fn simulate(
        &self,
        op: &str,
        ctx: &RequestContext,
        body: &Value,
        overrides: &[(String, String)],
    ) -> Result<Vec<Simulated>, KmsError> {
        let iam_version = self.iam.version();
        let principal = self.iam.principal(&ctx.principal_arn);
        let base = self.base_context(op, ctx, &principal, body);
        let mut out = Vec::new();
        for check in self.checks(op, body)? {
            let (c, decision) = self.judge(
                &check,
                &base,
                &principal,
                iam_version,
                body,
                Some(overrides),
            )?;
            out.push(Simulated {
                action: c.action.clone(),
                resource: c.resource.clone(),
                message: decision.access_denied_message(&c),
                decision,
            });
        }
        Ok(out)
    }

    /// STS `AssumeRole`: whether the caller of `ctx` may assume `role_arn` under its `trust`
    /// policy, judged by the one evaluator as a key policy is (with the caller's identity
    /// policies; see `crate::iam::parse_trust_policy`), with the global condition keys and
    /// `extra` (`sts:RoleSessionName`, `sts:ExternalId`). A refusal is `AccessDenied`'s text.
    pub fn authorize_assume_role(
        &self,
        ctx: &RequestContext,
        role_arn: &str,
        trust: &Policy,
        extra: &[(&str, &str)],
    ) -> Result<(), String> {
        let principal = self.iam.principal(&ctx.principal_arn);
        let mut c = self
            .base_context("AssumeRole", ctx, &principal, &Value::Null)
            .for_action("sts:AssumeRole", role_arn);
        for (k, v) in extra {
            c = c.with(k, *v);
        }
        let decision = evaluate(
            &KeyAccess {
                key_policy: trust,
                identity_policies: &principal.policies,
                grants: &[],
            },
            &c,
        );
        match decision.access_denied_message(&c) {
            None => Ok(()),
            Some(message) => {
                tracing::debug!(caller = %c.caller.arn, role = role_arn, %decision, "assume role denied");
                Err(message)
            }
        }
    }

    /// Adds the keys a key supplies: its spec, usage, origin, multi-Region type, tags and
    /// aliases (`aliases`, read with its policy), and `kms:RequestAlias` when the request
    /// named it by an alias.
    fn key_context(
        &self,
        mut ctx: PolicyContext,
        k: &KeyRecord,
        named: Option<&str>,
        body: &Value,
        aliases: &[String],
    ) -> PolicyContext {
        let shared = &k.shared;
        ctx = ctx
            .with("kms:KeySpec", shared.key_spec.as_str())
            .with("kms:KeyUsage", shared.key_usage.as_str())
            .with("kms:KeyOrigin", shared.origin.as_str())
            .with("kms:MultiRegion", shared.mrk.is_some());
        if let Some(m) = &shared.mrk {
            let kind = if m.primary == self.scope.region {
                "PRIMARY"
            } else {
                "REPLICA"
            };
            ctx = ctx.with("kms:MultiRegionKeyType", kind);
        }
        for t in &k.regional.tags {
            ctx = ctx.with(&format!("aws:ResourceTag/{}", t.key), t.value.as_str());
        }
        ctx = ctx.with_values("kms:ResourceAliases", aliases.iter().map(String::as_str));
        if let Some(Ok(KeyRef::Alias(alias))) =
            named.map(|n| KeyRef::parse(n, &self.scope, RefForms::KeyOrAlias))
        {
            ctx = ctx.with("kms:RequestAlias", alias.as_str());
        }
        if ctx.action == "kms:ReEncryptFrom" || ctx.action == "kms:ReEncryptTo" {
            let dest = member(body, "DestinationKeyId")
                .and_then(|d| self.resolve(d, RefForms::KeyOrAlias).ok());
            let same = dest.is_some_and(|d| d.key_id == k.key_id)
                && member(body, "SourceKeyId").is_none_or(|s| {
                    self.resolve(s, RefForms::KeyOrAlias)
                        .is_ok_and(|s| s.key_id == k.key_id)
                });
            ctx = ctx.with("kms:ReEncryptOnSameKey", same);
        }
        ctx
    }

    /// The policy lockout safety check of CreateKey, PutKeyPolicy and ReplicateKey: `policy`
    /// (already checked by `validate_policy`) must parse as a key policy, and, unless `bypass`,
    /// let the caller call `kms:PutKeyPolicy` on `key_arn` afterwards (judged with the
    /// request's condition keys, `aws:RequestedRegion` being `region`).
    pub(super) fn check_new_key_policy(
        &self,
        ctx: &RequestContext,
        op: &str,
        policy: &str,
        key_arn: &str,
        region: &Region,
        bypass: bool,
    ) -> Result<(), KmsError> {
        let parsed = self.policies.get(policy);
        let parsed = match parsed.as_ref() {
            Ok(p) => p,
            Err(e) => return Err(KmsError::MalformedPolicyDocument(e.to_string())),
        };
        parsed
            .validate_key_policy()
            .map_err(|e| KmsError::MalformedPolicyDocument(e.to_string()))?;
        if bypass {
            return Ok(());
        }
        let principal = self.iam.principal(&ctx.principal_arn);
        let request = self
            .base_context(op, ctx, &principal, &Value::Null)
            .with("aws:RequestedRegion", region.as_str());
        check_lockout_in(parsed, &request, &principal.policies, key_arn)
            .map_err(|e| KmsError::MalformedPolicyDocument(e.to_string()))
    }
}

/// The name of a policy set in the cache: the key and its authorization version (none for a
/// check on no key), the IAM generation, the caller. A change to any of them names another set.
fn set_name(key: Option<(&KeyId, (u64, u64))>, iam_version: u64, caller: &str) -> String {
    match key {
        Some((id, (region, k))) => format!("key {id} {region} {k} iam {iam_version} {caller}"),
        None => format!("account iam {iam_version} {caller}"),
    }
}

/// A stored grant as the evaluator reads it.
fn grant_of(g: kmsim_core::grant::GrantRecord) -> Grant {
    Grant {
        grant_id: g.grant_id,
        grantee_principal: g.grantee,
        retiring_principal: g.retiring,
        operations: g
            .operations
            .iter()
            .map(|o| o.as_str().to_string())
            .collect(),
        constraints: g
            .constraints
            .filter(|c| !c.is_empty())
            .map(|c| GrantConstraints {
                encryption_context_equals: (!c.equals.is_empty()).then_some(c.equals),
                encryption_context_subset: (!c.subset.is_empty()).then_some(c.subset),
            }),
    }
}

/// Standard base64 (the AWS JSON form of blobs).
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

/// Whether each face of this node is reached over TLS (`aws:SecureTransport`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SecureTransport {
    /// The gRPC face: mutual TLS when the topology has `[tls]`.
    pub grpc: bool,
    /// The AWS JSON face: HTTPS with `[tls] aws_https`.
    pub aws_json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_operations_that_name_no_key_are_judged_on_the_account() {
        for op in crate::aws::dispatch::OPERATIONS {
            let account = acts(op) == Acts::Account;
            let expected = matches!(
                *op,
                "CreateKey" | "ListKeys" | "ListAliases" | "GenerateRandom" | "ListRetirableGrants"
            );
            assert_eq!(account, expected, "{op}");
        }
        assert_eq!(acts("ReplicateKey"), Acts::Replicate);
        assert_eq!(acts("Encrypt"), Acts::Key);
    }

    #[test]
    fn a_new_key_version_iam_generation_or_caller_names_another_policy_set() {
        let id = KeyId::single_region_from_bytes([7; 16]);
        let alice = "arn:aws:iam::111122223333:user/alice";
        let base = set_name(Some((&id, (1, 2))), 0, alice);
        for other in [
            set_name(Some((&id, (1, 3))), 0, alice),
            set_name(Some((&id, (4, 2))), 0, alice),
            set_name(Some((&id, (1, 2))), 1, alice),
            set_name(Some((&id, (1, 2))), 0, "arn:aws:iam::111122223333:user/bob"),
            set_name(None, 0, alice),
        ] {
            assert_ne!(base, other);
        }
        assert_eq!(base, set_name(Some((&id, (1, 2))), 0, alice));
    }

    #[test]
    fn every_member_read_is_serialized_and_payloads_are_not() {
        for (m, _, _) in REQUEST_KEYS {
            assert!(reads_member(m), "{m}");
        }
        for m in ["KeyId", "EncryptionContext", "Constraints", "TagKey"] {
            assert!(reads_member(m), "{m}");
        }
        for m in super::super::trail::SECRET_MEMBERS {
            assert_eq!(reads_member(m), *m == "CiphertextBlob", "{m}");
        }
    }

    #[test]
    fn request_members_become_condition_keys() {
        let body = serde_json::json!({
            "Tags": [{"TagKey": "team", "TagValue": "blue"}],
            "Operations": ["Decrypt", "Encrypt"],
        });
        assert_eq!(
            tags_member(&body),
            Some(vec![("team".to_string(), "blue".to_string())])
        );
        assert!(REQUEST_KEYS
            .iter()
            .any(|(m, k, _)| *m == "ReplicaRegion" && *k == "kms:ReplicaRegion"));
        assert_eq!(
            string_map(Some(&serde_json::json!({"tenant": "a", "n": 1}))),
            [("tenant".to_string(), "a".to_string())].into()
        );
    }
}
