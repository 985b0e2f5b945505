//! IAM: the `[iam]` table of the topology (users and roles, their inline identity policies
//! and principal tags), checked when the topology is loaded, the run-time versions of it that
//! `kmsim iam …` writes (`crate::iam_admin`), and [`Iam`], the view the KMS operations ask "who
//! is this caller and which identity policies apply to it" and SigV4 asks "whose is this
//! run-time access key".
//!
//! IAM is global in AWS, and kmsim keeps every Region's copy the same this way
//! (docs/ARCHITECTURE.md "IAM"): version 0 is the topology's `[iam]`, which every node of every
//! Region loads from the same file. `kmsim iam …` changes it at run time, only in the IAM home
//! Region (`[iam] home_region`, default the topology's first Region, as AWS's control plane is
//! in us-east-1): each change is a new version of the whole document
//! (`kmsim_core::iam::IamDocument`), built on the version held (compare-and-set through the
//! home Region's Raft). The home Region's synchronizer sends the newest version to every other
//! Region, retried with backoff and resent at the anti-entropy pace; a Region takes it only from
//! the home Region and only when newer, through its own Raft, so every node of every Region
//! goes through the same versions in order and restarts with the last it applied. A Region cut
//! off keeps serving with its last version and converges after the heal (eventual consistency,
//! as in AWS).
//!
//! Without an `[iam]` table and before any run-time change, IAM is not modelled: every
//! principal other than an account root acts with one implicit identity policy allowing `kms:*`
//! on `*` (what kmsim did before authorization existed), so key policies, their `Deny`
//! statements and the lockout check still apply. With an `[iam]` table, or once a run-time
//! version exists, every user and role has exactly the policies listed, and every principal
//! that credentials or TLS clients name must be an account root or be declared.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use kmsim_core::iam::{IamDocument, IamEntity, VersionedIam};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use kmsim_policy::{Caller, IdentityPolicy, Policy, PrincipalKind};

use crate::aws::session_token::SessionKey;
use crate::config::Secret;

/// The `[iam]` table of the topology.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamConfig {
    /// IAM users (`[[iam.users]]`; default none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<IamPrincipalConfig>,
    /// IAM roles (`[[iam.roles]]`; default none). A role session
    /// (`arn:aws:sts::<acct>:assumed-role/<role>/<session>`) acts with its role's policies and
    /// tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<IamPrincipalConfig>,
    /// The IAM home Region: the only Region that accepts `kmsim iam …` changes, and whose
    /// synchronizer sends each new version to every other Region (default: the topology's
    /// first Region).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_region: Option<String>,
}

/// One IAM user or role.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamPrincipalConfig {
    /// Its ARN: `arn:aws:iam::<acct>:user/<path/>name` or `…:role/<path/>name` (required). The
    /// account may be any account, not only the topology's (for cross-account use).
    pub arn: String,
    /// Its inline identity policies (default none: it may do nothing through IAM).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<InlinePolicy>,
    /// Its tags, the values of `aws:PrincipalTag/<k>` (default none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// A role's trust policy (JSON text): who may assume it with STS `AssumeRole`. Its
    /// statements name a `Principal` and have no `Resource` (they are about the role). Default:
    /// none, and nobody may assume the role. Users have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_policy: Option<String>,
    /// A role's longest session, in seconds, 3600 to 43200 (AWS's `MaxSessionDuration`;
    /// default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_session_duration: Option<u32>,
}

/// A role's default and AWS's bounds of `MaxSessionDuration`, in seconds.
pub const DEFAULT_MAX_SESSION_SECS: u32 = 3600;
const MAX_SESSION_RANGE: std::ops::RangeInclusive<u32> = 3600..=43200;

/// Reads a role trust policy. IAM refuses a `Resource` in one ("Has prohibited field
/// Resource"); each statement is about the role, so it is read as a key policy whose statements
/// have `"Resource": "*"` (the evaluator's "this resource"), principals required. AWS evaluates
/// trust policies with the rules of KMS key policies (a statement naming the caller allows it
/// in the role's account; one naming only the account delegates to the caller's identity
/// policies; another account's caller needs both), so the one evaluator serves both.
pub fn parse_trust_policy(text: &str) -> Result<Policy, String> {
    let mut doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("trust policy is not JSON: {e}"))?;
    let statements = match doc.get_mut("Statement") {
        Some(serde_json::Value::Array(list)) => list.iter_mut().collect::<Vec<_>>(),
        Some(one) => vec![one],
        None => Vec::new(),
    };
    for st in statements {
        let Some(st) = st.as_object_mut() else {
            continue;
        };
        if st.contains_key("Resource") || st.contains_key("NotResource") {
            return Err("Has prohibited field Resource".into());
        }
        st.insert("Resource".into(), serde_json::Value::from("*"));
    }
    let policy = Policy::parse(&doc.to_string()).map_err(|e| e.to_string())?;
    policy.validate_key_policy().map_err(|e| e.to_string())?;
    Ok(policy)
}

/// One named identity policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InlinePolicy {
    /// The policy's name, unique per principal (required).
    pub name: String,
    /// The policy document, JSON text (required).
    pub document: String,
}

impl IamConfig {
    /// Checks every principal and policy, then that each of `named` (the principals of the
    /// topology's credentials and TLS clients, with where they come from) is a root or declared.
    pub fn check<'a>(
        &self,
        named: impl IntoIterator<Item = (&'a str, String)>,
    ) -> Result<(), String> {
        let mut seen = BTreeSet::new();
        let mut roles = BTreeSet::new();
        for (list, kind) in [
            (&self.users, PrincipalKind::User),
            (&self.roles, PrincipalKind::Role),
        ] {
            for p in list {
                let caller = Caller::from_arn(&p.arn)
                    .ok()
                    .filter(|c| c.kind == kind)
                    .ok_or_else(|| {
                        format!(
                            "iam: '{}' is not an IAM {} ARN",
                            p.arn,
                            if kind == PrincipalKind::User {
                                "user"
                            } else {
                                "role"
                            }
                        )
                    })?;
                if !seen.insert(p.arn.clone()) {
                    return Err(format!("iam: {} is listed twice", p.arn));
                }
                if kind == PrincipalKind::Role && !roles.insert(role_key(&caller, &p.arn)) {
                    return Err(format!(
                        "iam: two roles of one account have the name of {}",
                        p.arn
                    ));
                }
                let mut names = BTreeSet::new();
                for policy in &p.policies {
                    if policy.name.is_empty() || !names.insert(policy.name.as_str()) {
                        return Err(format!(
                            "iam: {}: policy names must be non-empty and unique ('{}')",
                            p.arn, policy.name
                        ));
                    }
                    Policy::parse(&policy.document)
                        .and_then(|d| d.validate_identity_policy())
                        .map_err(|e| {
                            format!("iam: {}: policy {} does not parse: {e}", p.arn, policy.name)
                        })?;
                }
                if kind == PrincipalKind::User
                    && (p.trust_policy.is_some() || p.max_session_duration.is_some())
                {
                    return Err(format!(
                        "iam: {}: only roles have a trust_policy or max_session_duration",
                        p.arn
                    ));
                }
                if let Some(t) = &p.trust_policy {
                    parse_trust_policy(t)
                        .map_err(|e| format!("iam: {}: trust_policy: {e}", p.arn))?;
                }
                if p.max_session_duration
                    .is_some_and(|d| !MAX_SESSION_RANGE.contains(&d))
                {
                    return Err(format!(
                        "iam: {}: max_session_duration must be 3600 to 43200 seconds",
                        p.arn
                    ));
                }
                if p.tags.keys().any(|k| k.is_empty() || k.len() > 128) {
                    return Err(format!(
                        "iam: {}: tag keys must be 1 to 128 characters",
                        p.arn
                    ));
                }
            }
        }
        let iam = Iam::new(Some(self));
        for (arn, origin) in named {
            if !iam.declares(arn) {
                return Err(format!(
                    "{origin}: principal '{arn}' is not an account root nor a user, role or role session declared in [iam]"
                ));
            }
        }
        Ok(())
    }
}

/// A role's key in the index: account and name (a session ARN names its role without path).
fn role_key(caller: &Caller, arn: &str) -> (String, String) {
    let name = arn.rsplit('/').next().unwrap_or_default();
    (caller.account.clone().unwrap_or_default(), name.to_string())
}

/// A declared principal, ready for evaluation.
#[derive(Debug, Clone)]
struct Declared {
    /// Its ARN as declared (with its path).
    arn: String,
    policies: Arc<[IdentityPolicy]>,
    tags: BTreeMap<String, String>,
    /// A role's trust policy.
    trust: Option<Arc<Policy>>,
    /// A role's longest session, seconds.
    max_session_secs: u32,
}

/// A declared role, as STS `AssumeRole` needs it.
#[derive(Debug, Clone)]
pub struct Role {
    /// Its trust policy (`None`: nobody may assume it).
    pub trust: Option<Arc<Policy>>,
    /// Its longest session, seconds.
    pub max_session_secs: u32,
}

impl Declared {
    fn new(p: &IamEntity) -> Declared {
        Declared {
            arn: p.arn.clone(),
            trust: p
                .trust_policy
                .as_deref()
                .and_then(|t| parse_trust_policy(t).ok())
                .map(Arc::new),
            max_session_secs: p.max_session_duration.unwrap_or(DEFAULT_MAX_SESSION_SECS),
            // Checked at load (or by the proposer of a run-time version); a document that does
            // not parse is left out rather than fail.
            policies: p
                .policies
                .iter()
                .filter_map(|(name, document)| {
                    Some(IdentityPolicy {
                        name: name.clone(),
                        policy: Policy::parse(document).ok()?,
                    })
                })
                .collect(),
            tags: p.tags.clone(),
        }
    }
}

/// A caller as authorization sees it: its identity (with `aws:userid` and principal tags) and
/// the identity policies that apply to it.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The caller.
    pub caller: Caller,
    /// Its identity policies (empty for a root user, to whom none apply).
    pub policies: Arc<[IdentityPolicy]>,
}

/// A run-time access key, its secret opened: whose it is.
#[derive(Debug, Clone)]
pub struct RuntimeKey {
    /// The user's ARN.
    pub principal_arn: String,
    /// The secret access key (`Debug` redacted).
    pub secret: Secret,
}

/// One version of IAM, indexed.
#[derive(Debug, Default)]
struct View {
    /// Whether IAM is modelled (an `[iam]` table, or a run-time version).
    modelled: bool,
    /// Users by ARN.
    users: HashMap<String, Declared>,
    /// Roles by (account, name).
    roles: HashMap<(String, String), Declared>,
    /// Run-time access keys by ID, secrets opened.
    access_keys: HashMap<String, RuntimeKey>,
}

impl View {
    fn new(modelled: bool, doc: &IamDocument, keys: Option<&SessionKey>) -> View {
        let mut view = View {
            modelled,
            ..Default::default()
        };
        for u in &doc.users {
            view.users.insert(u.arn.clone(), Declared::new(u));
            for k in &u.access_keys {
                // Sealed under the cluster's STS key by the proposer; a key this process
                // cannot open (no `[sts]`, another key) is left out and refused as unknown.
                let secret =
                    keys.and_then(|s| s.open_access_key(&k.access_key_id, &k.sealed_secret));
                match secret {
                    Some(secret) => {
                        view.access_keys.insert(
                            k.access_key_id.clone(),
                            RuntimeKey {
                                principal_arn: u.arn.clone(),
                                secret,
                            },
                        );
                    }
                    None => tracing::warn!(
                        access_key_id = %k.access_key_id,
                        "a run-time access key does not open under this process's STS key: refused"
                    ),
                }
            }
        }
        for r in &doc.roles {
            if let Ok(caller) = Caller::from_arn(&r.arn) {
                view.roles
                    .insert(role_key(&caller, &r.arn), Declared::new(r));
            }
        }
        view
    }

    fn declared(&self, caller: &Caller) -> Option<&Declared> {
        match caller.kind {
            PrincipalKind::User => self.users.get(&caller.arn),
            PrincipalKind::Role | PrincipalKind::AssumedRole => {
                self.roles.get(&role_key(caller, &caller.principal_arn))
            }
            PrincipalKind::AccountRoot | PrincipalKind::Service => None,
        }
    }
}

/// The principals of the cluster at the version this node applied (see the module docs).
#[derive(Debug)]
pub struct Iam {
    /// The version in force; swapped whole when a new one is installed.
    view: RwLock<Arc<View>>,
    /// Its version, moved after the view (see [`Iam::version`]).
    version: AtomicU64,
    /// Whether the topology has an `[iam]` table.
    topology_modelled: bool,
    /// Version 0: the topology's `[iam]` as a document.
    topology: IamDocument,
    /// The IAM home Region (`[iam] home_region`, else the topology's first Region).
    home_region: String,
    /// The key run-time access keys' secrets are sealed under (the topology's `[sts]` key).
    keys: Option<SessionKey>,
    /// The policy of every principal when IAM is not modelled.
    unmodelled: Arc<[IdentityPolicy]>,
}

/// The name of the implicit identity policy of a topology without `[iam]`.
pub const UNMODELLED_POLICY: &str = "kmsim-iam-not-modelled";

impl IamConfig {
    /// The table as version 0 of the IAM document.
    pub fn to_document(&self) -> IamDocument {
        let entity = |p: &IamPrincipalConfig| IamEntity {
            arn: p.arn.clone(),
            policies: p
                .policies
                .iter()
                .map(|ip| (ip.name.clone(), ip.document.clone()))
                .collect(),
            tags: p.tags.clone(),
            trust_policy: p.trust_policy.clone(),
            max_session_duration: p.max_session_duration,
            access_keys: Vec::new(),
        };
        IamDocument {
            users: self.users.iter().map(entity).collect(),
            roles: self.roles.iter().map(entity).collect(),
        }
    }
}

impl Iam {
    /// The IAM of a topology's `[iam]` table alone (`None`: no table), version 0, with no
    /// home Region and no key to open run-time access keys (checks and tests).
    pub fn new(config: Option<&IamConfig>) -> Iam {
        Iam::with_home(config, String::new(), None)
    }

    /// The IAM of a node: version 0 is `config` (the topology's `[iam]`), `first_region` the
    /// topology's first Region (the home Region unless `[iam] home_region` names another),
    /// `keys` the topology's STS key, which opens run-time access keys.
    pub fn with_home(
        config: Option<&IamConfig>,
        first_region: String,
        keys: Option<SessionKey>,
    ) -> Iam {
        let allow_all = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#,
        )
        .expect("invariant: the implicit policy parses");
        let topology = config.map(IamConfig::to_document).unwrap_or_default();
        let modelled = config.is_some();
        Iam {
            view: RwLock::new(Arc::new(View::new(modelled, &topology, keys.as_ref()))),
            version: AtomicU64::new(0),
            topology_modelled: modelled,
            topology,
            home_region: config
                .and_then(|c| c.home_region.clone())
                .unwrap_or(first_region),
            keys,
            unmodelled: Arc::from(vec![IdentityPolicy {
                name: UNMODELLED_POLICY.into(),
                policy: allow_all,
            }]),
        }
    }

    /// The IAM home Region: the only one that accepts changes.
    pub fn home_region(&self) -> &str {
        &self.home_region
    }

    /// The key run-time access keys' secrets are sealed under, if the topology has `[sts]`.
    pub fn sealing_key(&self) -> Option<&SessionKey> {
        self.keys.as_ref()
    }

    /// The document at version 0 (the topology's `[iam]`).
    pub fn topology_document(&self) -> &IamDocument {
        &self.topology
    }

    /// Makes `held` (what the Region's state holds after an applied command or an opened
    /// snapshot; `None`: version 0) the IAM in force, when it is not already.
    pub fn install(&self, held: Option<&VersionedIam>) {
        let version = held.map_or(0, |h| h.version);
        if version == self.version.load(Ordering::Acquire) {
            return;
        }
        let view = match held {
            Some(h) => View::new(true, &h.document, self.keys.as_ref()),
            None => View::new(self.topology_modelled, &self.topology, self.keys.as_ref()),
        };
        *self.view.write().expect("invariant: lock not poisoned") = Arc::new(view);
        // After the view: a reader that sees the new version sees the new principals.
        self.version.store(version, Ordering::Release);
        tracing::info!(version, "iam version in force");
    }

    fn view(&self) -> Arc<View> {
        self.view
            .read()
            .expect("invariant: lock not poisoned")
            .clone()
    }

    /// Whether IAM is modelled (an `[iam]` table, or a run-time version).
    pub fn is_modelled(&self) -> bool {
        self.view().modelled
    }

    /// The run-time access key `access_key_id`, its secret opened, if the version in force has
    /// it (a deleted key is gone as soon as the deletion is applied here).
    pub fn access_key(&self, access_key_id: &str) -> Option<RuntimeKey> {
        self.view().access_keys.get(access_key_id).cloned()
    }

    /// The role `role_arn` names exactly (path included), if declared.
    pub fn role(&self, role_arn: &str) -> Option<Role> {
        let caller = Caller::from_arn(role_arn)
            .ok()
            .filter(|c| c.kind == PrincipalKind::Role)?;
        self.view()
            .roles
            .get(&role_key(&caller, role_arn))
            .filter(|d| d.arn == role_arn)
            .map(|d| Role {
                trust: d.trust.clone(),
                max_session_secs: d.max_session_secs,
            })
    }

    /// Whether `arn` is a principal this IAM knows: a root, or a declared user, role or session
    /// of a declared role (any principal that parses when IAM is not modelled).
    pub fn declares(&self, arn: &str) -> bool {
        let view = self.view();
        match Caller::from_arn(arn) {
            Ok(c) if c.kind == PrincipalKind::AccountRoot => true,
            Ok(c) => !view.modelled || view.declared(&c).is_some(),
            Err(_) => false,
        }
    }

    /// The version of the principals and their policies in force, part of every cached
    /// authorization decision's key (`kms::authorize`): 0 for the topology's, then the
    /// run-time version applied. It moves after a new version is visible to
    /// [`Iam::principal`] (readers read it first), so a decision cached under a version was
    /// made with that version or a newer one.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The caller named by `arn` and the identity policies that apply to it. An ARN that is
    /// not a principal ARN acts as nobody anything allows (an undeclared user of a modelled IAM
    /// too: no identity policy, so only a key policy naming it can allow).
    pub fn principal(&self, arn: &str) -> Principal {
        let mut caller = match Caller::from_arn(arn) {
            Ok(c) => c,
            Err(_) => {
                return Principal {
                    caller: Caller::service(arn),
                    policies: Arc::from(Vec::new()),
                }
            }
        };
        caller.userid = Some(user_id(&caller));
        let view = self.view();
        let policies = match (caller.kind, view.declared(&caller)) {
            (PrincipalKind::AccountRoot, _) => Arc::from(Vec::new()),
            (_, Some(d)) => {
                caller.tags = d.tags.clone();
                d.policies.clone()
            }
            (_, None) if !view.modelled => self.unmodelled.clone(),
            (_, None) => Arc::from(Vec::new()),
        };
        Principal { caller, policies }
    }
}

/// `aws:userid`: the account ID for a root user; for a user, an `AIDA…` unique ID; for a role
/// or session, `AROA…` (with `:<session>` for a session). AWS assigns the IDs at creation;
/// kmsim derives them from the ARN so they are stable and the same in every Region.
fn user_id(caller: &Caller) -> String {
    let unique = |prefix: &str, of: &str| {
        const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let digest = Sha256::digest(of.as_bytes());
        let tail: String = digest
            .iter()
            .take(17)
            .map(|b| char::from(ALPHABET[usize::from(b % 32)]))
            .collect();
        format!("{prefix}{tail}")
    };
    match caller.kind {
        PrincipalKind::AccountRoot => caller.account.clone().unwrap_or_default(),
        PrincipalKind::User => unique("AIDA", &caller.arn),
        PrincipalKind::Role => unique("AROA", &caller.principal_arn),
        PrincipalKind::AssumedRole => {
            let session = caller.arn.rsplit('/').next().unwrap_or_default();
            format!("{}:{session}", unique("AROA", &caller.principal_arn))
        }
        PrincipalKind::Service => caller.arn.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALLOW_DECRYPT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}]}"#;

    fn config() -> IamConfig {
        IamConfig {
            users: vec![IamPrincipalConfig {
                arn: "arn:aws:iam::111122223333:user/alice".into(),
                policies: vec![InlinePolicy {
                    name: "use".into(),
                    document: ALLOW_DECRYPT.into(),
                }],
                tags: [("team".to_string(), "payroll".to_string())].into(),
                ..Default::default()
            }],
            roles: vec![IamPrincipalConfig {
                arn: "arn:aws:iam::444455556666:role/ops/Admin".into(),
                policies: vec![],
                tags: BTreeMap::new(),
                ..Default::default()
            }],
            home_region: None,
        }
    }

    #[test]
    fn declared_principals_get_their_policies_and_tags() {
        let iam = Iam::new(Some(&config()));
        let alice = iam.principal("arn:aws:iam::111122223333:user/alice");
        assert_eq!(alice.policies.len(), 1);
        assert_eq!(
            alice.caller.tags.get("team").map(String::as_str),
            Some("payroll")
        );
        assert!(alice
            .caller
            .userid
            .as_deref()
            .is_some_and(|u| u.starts_with("AIDA")));
        let session = iam.principal("arn:aws:sts::444455556666:assumed-role/Admin/s1");
        assert_eq!(session.caller.kind, PrincipalKind::AssumedRole);
        assert!(session
            .caller
            .userid
            .as_deref()
            .is_some_and(|u| u.ends_with(":s1")));
        assert!(iam.declares("arn:aws:sts::444455556666:assumed-role/Admin/s1"));
        assert!(iam.declares("arn:aws:iam::999988887777:root"));
        assert!(!iam.declares("arn:aws:iam::111122223333:user/bob"));
        assert!(iam
            .principal("arn:aws:iam::111122223333:user/bob")
            .policies
            .is_empty());
        let root = iam.principal("arn:aws:iam::111122223333:root");
        assert!(root.policies.is_empty());
        assert_eq!(root.caller.userid.as_deref(), Some("111122223333"));
    }

    #[test]
    fn without_iam_every_principal_may_use_kms_through_iam() {
        let iam = Iam::new(None);
        assert!(iam.declares("arn:aws:iam::111122223333:role/anything"));
        let p = iam.principal("arn:aws:iam::111122223333:role/anything");
        assert_eq!(p.policies[0].name, UNMODELLED_POLICY);
    }

    #[test]
    fn bad_principals_and_policies_are_refused_with_clear_errors() {
        let ok = config();
        assert_eq!(ok.check([]), Ok(()));
        let err = ok
            .check([(
                "credentials for AKIA1",
                "arn:aws:iam::111122223333:user/bob".to_string(),
            )])
            .unwrap_err();
        assert!(err.contains("user/bob") && err.contains("AKIA1"), "{err}");
        let mut bad = config();
        bad.users[0].policies[0].document = "{nope".into();
        let err = bad.check([]).unwrap_err();
        assert!(err.contains("policy use does not parse"), "{err}");
        let mut bad = config();
        bad.users[0].policies[0].document =
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}"#
                .into();
        assert!(bad.check([]).is_err());
        let mut bad = config();
        bad.users[0].arn = "arn:aws:iam::111122223333:role/x".into();
        assert!(bad.check([]).unwrap_err().contains("not an IAM user ARN"));
        let mut bad = config();
        bad.users.push(bad.users[0].clone());
        assert!(bad.check([]).unwrap_err().contains("listed twice"));
    }
}
