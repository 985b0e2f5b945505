//! The decision table: each row is a key policy, the caller's identity policies, the key's
//! grants, a request, and the decision AWS makes for it (with the statement or grant that
//! decides). Rows are grouped by what they exercise.

mod policies;
mod rows;

use kmsim_policy::{
    evaluate, Allowed, Caller, Decision, Denied, Grant, GrantConstraints, IdentityPolicy,
    KeyAccess, Policy, PolicyType, RequestContext, StatementRef,
};

/// A grant of a row.
pub struct G {
    pub id: &'static str,
    pub grantee: &'static str,
    pub retiring: Option<&'static str>,
    pub ops: &'static [&'static str],
    pub equals: Option<&'static [(&'static str, &'static str)]>,
    pub subset: Option<&'static [(&'static str, &'static str)]>,
}

/// What a row expects. Statements are named by `Sid`, or `#<index>` without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Allowed by the key policy alone.
    KeyPolicy(&'static str),
    /// Allowed by the key policy statement and the identity statement (`""`: the root user).
    WithIdentity(&'static str, &'static str),
    /// Allowed by a grant.
    Grant(&'static str),
    /// Allowed as the grant's retiring principal.
    Retiring(&'static str),
    /// Explicit deny in the key policy.
    DenyKey(&'static str),
    /// Explicit deny in an identity policy.
    DenyIdentity(&'static str),
    /// No key policy statement allows.
    NoResource,
    /// The key policy delegates (statement named) but no identity policy allows.
    NoIdentity(&'static str),
}

/// One row.
pub struct Case {
    pub name: &'static str,
    pub key_policy: &'static str,
    pub identity: &'static [&'static str],
    pub grants: &'static [G],
    /// A caller ARN, or `service:<name>`.
    pub caller: &'static str,
    pub principal_tags: &'static [(&'static str, &'static str)],
    pub action: &'static str,
    pub resource: &'static str,
    /// Condition keys; a key listed twice is multi-valued.
    pub keys: &'static [(&'static str, &'static str)],
    /// Multi-valued keys given as lists (an empty list is an empty key).
    pub lists: &'static [(&'static str, &'static [&'static str])],
    pub encryption_context: Option<&'static [(&'static str, &'static str)]>,
    pub retiring_grant: Option<&'static str>,
    pub expect: Expect,
}

fn name_of(s: &StatementRef) -> String {
    s.sid.clone().unwrap_or_else(|| format!("#{}", s.index))
}

fn observed(d: &Decision) -> (String, String, String) {
    let s = |x: &str| x.to_string();
    match d {
        Decision::Allow(Allowed::KeyPolicy(k)) => (s("KeyPolicy"), name_of(k), s("")),
        Decision::Allow(Allowed::KeyPolicyAndIdentity {
            key_policy,
            identity,
        }) => (
            s("WithIdentity"),
            name_of(key_policy),
            identity.as_ref().map(name_of).unwrap_or_default(),
        ),
        Decision::Allow(Allowed::Grant(g)) => (s("Grant"), g.clone(), s("")),
        Decision::Allow(Allowed::RetiringPrincipal(g)) => (s("Retiring"), g.clone(), s("")),
        Decision::Deny(Denied::ExplicitDeny {
            policy_type: PolicyType::ResourceBased,
            statement,
        }) => (s("DenyKey"), name_of(statement), s("")),
        Decision::Deny(Denied::ExplicitDeny {
            policy_type: PolicyType::IdentityBased,
            statement,
        }) => (s("DenyIdentity"), name_of(statement), s("")),
        Decision::Deny(Denied::NoResourcePolicyAllows) => (s("NoResource"), s(""), s("")),
        Decision::Deny(Denied::NoIdentityPolicyAllows { key_policy }) => {
            (s("NoIdentity"), name_of(key_policy), s(""))
        }
    }
}

fn expected(e: Expect) -> (String, String, String) {
    let s = |x: &str| x.to_string();
    match e {
        Expect::KeyPolicy(k) => (s("KeyPolicy"), s(k), s("")),
        Expect::WithIdentity(k, i) => (s("WithIdentity"), s(k), s(i)),
        Expect::Grant(g) => (s("Grant"), s(g), s("")),
        Expect::Retiring(g) => (s("Retiring"), s(g), s("")),
        Expect::DenyKey(k) => (s("DenyKey"), s(k), s("")),
        Expect::DenyIdentity(k) => (s("DenyIdentity"), s(k), s("")),
        Expect::NoResource => (s("NoResource"), s(""), s("")),
        Expect::NoIdentity(k) => (s("NoIdentity"), s(k), s("")),
    }
}

fn pairs(p: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    p.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn context(case: &Case) -> RequestContext {
    let mut caller = match case.caller.strip_prefix("service:") {
        Some(name) => Caller::service(name),
        None => Caller::from_arn(case.caller).expect("caller ARNs of the table are valid"),
    };
    for (k, v) in case.principal_tags {
        caller = caller.with_tag(k, v);
    }
    let mut ctx = RequestContext::new(caller, case.action, case.resource);
    let mut keys: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for (k, v) in case.keys {
        keys.entry(k).or_default().push(v);
    }
    for (k, vs) in keys {
        ctx = ctx.with_values(k, vs);
    }
    for (k, vs) in case.lists {
        ctx = ctx.with_values(k, vs.iter().copied());
    }
    if let Some(ec) = case.encryption_context {
        ctx = ctx.with_encryption_context(ec.iter().copied());
    }
    if let Some(g) = case.retiring_grant {
        ctx = ctx.with_retiring_grant(g);
    }
    ctx
}

pub fn run(case: &Case) -> Result<(), String> {
    let key_policy = Policy::parse(case.key_policy).map_err(|e| format!("key policy: {e}"))?;
    key_policy
        .validate_key_policy()
        .map_err(|e| format!("key policy: {e}"))?;
    let identity: Vec<IdentityPolicy> = case
        .identity
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let policy = Policy::parse(text).map_err(|e| format!("identity policy {i}: {e}"))?;
            policy
                .validate_identity_policy()
                .map_err(|e| format!("identity policy {i}: {e}"))?;
            Ok(IdentityPolicy {
                name: format!("identity-{i}"),
                policy,
            })
        })
        .collect::<Result<_, String>>()?;
    let grants: Vec<Grant> = case
        .grants
        .iter()
        .map(|g| Grant {
            grant_id: g.id.to_string(),
            grantee_principal: g.grantee.to_string(),
            retiring_principal: g.retiring.map(str::to_string),
            operations: g.ops.iter().map(|o| o.to_string()).collect(),
            constraints: (g.equals.is_some() || g.subset.is_some()).then(|| GrantConstraints {
                encryption_context_equals: g.equals.map(pairs),
                encryption_context_subset: g.subset.map(pairs),
            }),
        })
        .collect();
    let ctx = context(case);
    let access = KeyAccess {
        key_policy: &key_policy,
        identity_policies: &identity,
        grants: &grants,
    };
    let decision = evaluate(&access, &ctx);
    let (got, want) = (observed(&decision), expected(case.expect));
    if got != want {
        return Err(format!("expected {want:?}, got {got:?} ({decision})"));
    }
    // A refusal carries the AccessDenied text of its kind; an allowed request none.
    match decision.access_denied_message(&ctx) {
        Some(m) if decision.is_allowed() => return Err(format!("allowed but message {m}")),
        None if !decision.is_allowed() => return Err("denied without a message".into()),
        Some(m)
            if !m.starts_with(&format!(
                "User: {} is not authorized to perform: {} on resource: {}",
                ctx.caller.arn, case.action, case.resource
            )) =>
        {
            return Err(format!("message of the wrong shape: {m}"))
        }
        _ => {}
    }
    Ok(())
}

#[test]
fn the_decision_table() {
    let cases = rows::CASES;
    assert!(cases.len() >= 150, "the table has {} rows", cases.len());
    let mut names = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for case in cases {
        assert!(names.insert(case.name), "duplicate row name {}", case.name);
        if let Err(why) = run(case) {
            failures.push(format!("{}: {why}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
