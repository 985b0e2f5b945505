//! Properties of the evaluator over generated policies and requests:
//! - an explicit Deny that matches the request wins over anything;
//! - adding an Allow statement never takes access away;
//! - without a statement naming the account, identity policies do nothing for the key's own
//!   principals;
//! - decisions and parsing never panic;
//! - a decision kept by the cache is the one evaluation gives.

use kmsim_policy::{
    evaluate, Caller, ContextKeys, Decision, DecisionCache, Denied, Grant, GrantConstraints,
    IdentityPolicy, KeyAccess, Policy, PolicyType, RequestContext,
};
use proptest::prelude::*;
use serde_json::{json, Value};

const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const MRK: &str = "arn:aws:kms:eu-west-1:111122223333:key/mrk-1234abcd12ab34cd56ef1234567890ab";

const CALLERS: &[&str] = &[
    "arn:aws:iam::111122223333:root",
    "arn:aws:iam::111122223333:user/alice",
    "arn:aws:sts::111122223333:assumed-role/AppRole/s1",
    "arn:aws:iam::444455556666:user/carol",
    "service:logs.us-east-1.amazonaws.com",
];
/// Callers of the key's account that identity policies govern.
const OWN_USERS: &[&str] = &[
    "arn:aws:iam::111122223333:user/alice",
    "arn:aws:sts::111122223333:assumed-role/AppRole/s1",
];
const ACTIONS: &[&str] = &[
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:CreateGrant",
];

fn caller(s: &str) -> Caller {
    match s.strip_prefix("service:") {
        Some(name) => Caller::service(name),
        None => Caller::from_arn(s).expect("the generator's callers are valid"),
    }
}

fn arb_principal(with_account: bool) -> BoxedStrategy<Value> {
    let mut options = vec![
        Just(json!("*")).boxed(),
        Just(json!({"AWS": "arn:aws:iam::111122223333:user/alice"})).boxed(),
        Just(json!({"AWS": "arn:aws:iam::111122223333:role/AppRole"})).boxed(),
        Just(json!({"AWS": ["arn:aws:iam::444455556666:user/carol", "*"]})).boxed(),
        Just(json!({"Service": "logs.us-east-1.amazonaws.com"})).boxed(),
        Just(json!({"AWS": "arn:aws:iam::444455556666:root"})).boxed(),
    ];
    if with_account {
        options.push(Just(json!({"AWS": "arn:aws:iam::111122223333:root"})).boxed());
        options.push(Just(json!({"AWS": "111122223333"})).boxed());
    }
    proptest::strategy::Union::new(options).boxed()
}

fn arb_condition() -> impl Strategy<Value = Option<Value>> {
    proptest::option::of(prop_oneof![
        Just(json!({"StringEquals": {"kms:ViaService": "ec2.us-east-1.amazonaws.com"}})),
        Just(json!({"StringNotEquals": {"kms:CallerAccount": "111122223333"}})),
        Just(json!({"Bool": {"aws:SecureTransport": "true"}})),
        Just(json!({"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "2001:db8::/32"]}})),
        Just(json!({"StringEqualsIfExists": {"kms:EncryptionContext:dept": "IT"}})),
        Just(json!({"ForAllValues:StringLike": {"kms:EncryptionContextKeys": ["dept", "app*"]}})),
        Just(json!({"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": "dept"}})),
        Just(json!({"Null": {"kms:EncryptionContextKeys": "true"}})),
        Just(json!({"DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}})),
        Just(json!({"StringEquals": {"kms:EncryptionContext:app1": "${aws:username}"}})),
    ])
}

fn arb_actions() -> impl Strategy<Value = (bool, Value)> {
    (
        any::<bool>(),
        proptest::sample::subsequence(
            vec![
                "kms:*",
                "kms:Decrypt",
                "kms:Encrypt",
                "kms:De*",
                "kms:Put*",
                "kms:ReEncrypt?rom",
                "KMS:CREATEGRANT",
            ],
            1..3,
        ),
    )
        .prop_map(|(not, list)| (not, json!(list)))
}

fn arb_resource() -> impl Strategy<Value = (bool, Value)> {
    (
        prop_oneof![Just(false), Just(false), Just(true)],
        prop_oneof![
            Just(json!("*")),
            Just(json!(KEY)),
            Just(json!("arn:aws:kms:*:111122223333:key/mrk-*")),
        ],
    )
}

/// A statement; `principal` is `None` for identity policies.
fn statement(
    effect: &str,
    principal: Option<Value>,
    actions: (bool, Value),
    resource: (bool, Value),
    condition: Option<Value>,
) -> Value {
    let mut st = serde_json::Map::new();
    st.insert("Effect".into(), json!(effect));
    if let Some(p) = principal {
        st.insert("Principal".into(), p);
    }
    st.insert(
        if actions.0 { "NotAction" } else { "Action" }.into(),
        actions.1,
    );
    st.insert(
        if resource.0 {
            "NotResource"
        } else {
            "Resource"
        }
        .into(),
        resource.1,
    );
    if let Some(c) = condition {
        st.insert("Condition".into(), c);
    }
    Value::Object(st)
}

fn arb_key_statement(with_account: bool) -> impl Strategy<Value = Value> {
    (
        prop_oneof![Just("Allow"), Just("Allow"), Just("Deny")],
        arb_principal(with_account),
        arb_actions(),
        arb_resource(),
        arb_condition(),
    )
        .prop_map(|(e, p, a, r, c)| statement(e, Some(p), a, r, c))
}

fn arb_identity_statement(effects: &'static [&'static str]) -> impl Strategy<Value = Value> {
    (
        proptest::sample::select(effects),
        arb_actions(),
        arb_resource(),
        arb_condition(),
    )
        .prop_map(|(e, a, r, c)| statement(e, None, a, r, c))
}

fn policy(statements: Vec<Value>) -> Policy {
    Policy::from_json(&json!({"Version": "2012-10-17", "Statement": statements}))
        .expect("generated policies parse")
}

/// A request: caller, action, resource and some of the keys the conditions look at.
fn arb_request(callers: &'static [&'static str]) -> impl Strategy<Value = RequestContext> {
    (
        proptest::sample::select(callers),
        proptest::sample::select(ACTIONS),
        prop_oneof![Just(KEY), Just(MRK)],
        proptest::option::of(Just("ec2.us-east-1.amazonaws.com")),
        proptest::option::of(any::<bool>()),
        proptest::option::of(prop_oneof![
            Just("10.1.2.3"),
            Just("192.0.2.1"),
            Just("2001:db8::1")
        ]),
        proptest::option::of(proptest::collection::btree_map(
            prop_oneof![Just("dept"), Just("app1"), Just("Dept"), Just("other")],
            prop_oneof![Just("IT"), Just("it"), Just("x")],
            0..3,
        )),
        proptest::option::of(prop_oneof![
            Just("2025-01-01T00:00:00Z"),
            Just("2031-01-01T00:00:00Z")
        ]),
    )
        .prop_map(|(c, action, resource, via, tls, ip, ec, now)| {
            let mut ctx = RequestContext::new(caller(c), action, resource);
            if let Some(via) = via {
                ctx = ctx.with("kms:ViaService", via);
            }
            if let Some(tls) = tls {
                ctx = ctx.with("aws:SecureTransport", tls);
            }
            if let Some(ip) = ip {
                ctx = ctx.with("aws:SourceIp", ip);
            }
            if let Some(ec) = ec {
                ctx = ctx.with_encryption_context(ec);
            }
            if let Some(now) = now {
                ctx = ctx.with("aws:CurrentTime", now);
            }
            ctx
        })
}

fn arb_grants() -> impl Strategy<Value = Vec<Grant>> {
    proptest::collection::vec(
        (
            proptest::sample::select(vec![
                "arn:aws:iam::111122223333:user/alice",
                "arn:aws:iam::111122223333:role/AppRole",
                "arn:aws:iam::444455556666:user/carol",
            ]),
            proptest::sample::subsequence(vec!["Decrypt", "Encrypt", "CreateGrant"], 1..3),
        )
            .prop_map(|(grantee, ops)| Grant {
                grant_id: format!("g-{grantee}"),
                grantee_principal: grantee.to_string(),
                retiring_principal: None,
                operations: ops.into_iter().map(str::to_string).collect(),
                constraints: None,
            }),
        0..2,
    )
}

#[derive(Debug, Clone)]
struct World {
    key: Vec<Value>,
    identity: Vec<Vec<Value>>,
    grants: Vec<Grant>,
}

impl World {
    /// The world's policies, parsed: the key policy and the identity policies.
    fn policies(&self) -> (Policy, Vec<IdentityPolicy>) {
        let identity = self
            .identity
            .iter()
            .enumerate()
            .map(|(i, st)| IdentityPolicy {
                name: format!("p{i}"),
                policy: policy(st.clone()),
            })
            .collect();
        (policy(self.key.clone()), identity)
    }

    fn decide(&self, ctx: &RequestContext) -> Decision {
        let (key_policy, identity) = self.policies();
        let access = KeyAccess {
            key_policy: &key_policy,
            identity_policies: &identity,
            grants: &self.grants,
        };
        evaluate(&access, ctx)
    }
}

fn arb_world(
    with_account: bool,
    identity_effects: &'static [&'static str],
) -> impl Strategy<Value = World> {
    (
        proptest::collection::vec(arb_key_statement(with_account), 1..5),
        proptest::collection::vec(
            proptest::collection::vec(arb_identity_statement(identity_effects), 1..4),
            0..3,
        ),
        arb_grants(),
    )
        .prop_map(|(key, identity, grants)| World {
            key,
            identity,
            grants,
        })
}

/// A Deny statement that matches every request for `action`.
fn deny_all(action: &str, principal: bool) -> Value {
    let mut st = json!({"Effect": "Deny", "Action": action, "Resource": "*"});
    if principal {
        st["Principal"] = json!("*");
    }
    st
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// A matching Deny in the key policy refuses any request, whatever else allows it.
    #[test]
    fn a_matching_deny_in_the_key_policy_always_wins(
        mut world in arb_world(true, &["Allow", "Deny"]),
        ctx in arb_request(CALLERS),
        at in any::<prop::sample::Index>(),
    ) {
        let i = at.index(world.key.len() + 1);
        world.key.insert(i, deny_all(&ctx.action, true));
        let d = world.decide(&ctx);
        prop_assert!(
            matches!(d, Decision::Deny(Denied::ExplicitDeny { policy_type: PolicyType::ResourceBased, .. })),
            "{d}"
        );
    }

    /// A matching Deny in an identity policy refuses any request of a principal it governs.
    #[test]
    fn a_matching_deny_in_an_identity_policy_always_wins(
        mut world in arb_world(true, &["Allow", "Deny"]),
        ctx in arb_request(OWN_USERS),
    ) {
        world.identity.push(vec![deny_all(&ctx.action, false)]);
        let d = world.decide(&ctx);
        prop_assert!(matches!(d, Decision::Deny(Denied::ExplicitDeny { .. })), "{d}");
    }

    /// Adding an Allow statement, to the key policy or to an identity policy, never turns an
    /// allowed request into a refused one.
    #[test]
    fn adding_an_allow_never_removes_access(
        mut world in arb_world(true, &["Allow", "Deny"]),
        ctx in arb_request(CALLERS),
        key_allow in arb_key_statement(true),
        identity_allow in arb_identity_statement(&["Allow"]),
        to_key in any::<bool>(),
    ) {
        let before = world.decide(&ctx);
        let allow_only = |mut st: Value| { st["Effect"] = json!("Allow"); st };
        if to_key {
            world.key.push(allow_only(key_allow));
        } else {
            world.identity.push(vec![identity_allow]);
        }
        let after = world.decide(&ctx);
        prop_assert!(!before.is_allowed() || after.is_allowed(), "before: {before}, after: {after}");
    }

    /// Without a statement naming the account (its root or its ID), a principal of the key's
    /// account gets exactly the same answer with or without its identity Allow policies.
    #[test]
    fn without_the_account_statement_identity_policies_are_ineffective(
        world in arb_world(false, &["Allow"]),
        ctx in arb_request(OWN_USERS),
    ) {
        let with_iam = world.decide(&ctx);
        let without = World { identity: Vec::new(), ..world };
        let without_iam = without.decide(&ctx);
        prop_assert_eq!(with_iam.is_allowed(), without_iam.is_allowed(), "{} / {}", with_iam, without_iam);
    }

    /// Over a stream of generated requests on one world (many of them alike, so that the
    /// cache answers some), every decision the cache gives is the one evaluation gives, and a
    /// request that reads the clock is never answered from the cache.
    #[test]
    fn a_cached_decision_is_the_evaluated_one(
        mut world in arb_world(true, &["Allow", "Deny"]),
        constrained in proptest::collection::vec(proptest::option::of(prop_oneof![
            Just(("dept", "IT", false)),
            Just(("dept", "IT", true)),
            Just(("app1", "x", false)),
        ]), 2),
        requests in proptest::collection::vec(arb_request(CALLERS), 1..24),
    ) {
        for (g, c) in world.grants.iter_mut().zip(constrained) {
            g.constraints = c.map(|(k, v, equals)| {
                let pairs = [(k.to_string(), v.to_string())].into();
                if equals {
                    GrantConstraints { encryption_context_equals: Some(pairs), ..Default::default() }
                } else {
                    GrantConstraints { encryption_context_subset: Some(pairs), ..Default::default() }
                }
            });
        }
        let (key_policy, identity) = world.policies();
        let keys = ContextKeys::of(
            std::iter::once(&key_policy).chain(identity.iter().map(|p| &p.policy)),
        );
        let access = KeyAccess { key_policy: &key_policy, identity_policies: &identity, grants: &world.grants };
        let cache = DecisionCache::new(8);
        // Each request twice: the second is answered from the cache unless it reads the clock.
        for ctx in requests.iter().flat_map(|c| [c, c]) {
            let cached = cache.decide("world", &keys, &access, ctx);
            prop_assert_eq!(&cached, &evaluate(&access, ctx), "{:?}", ctx);
        }
        let stats = cache.stats();
        if keys.reads_clock() {
            prop_assert_eq!(stats.hits + stats.misses, 0);
        } else {
            prop_assert!(stats.hits >= requests.len() as u64, "{:?}", stats);
        }
    }

    /// Parsing and judging arbitrary text never panics.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}", ctx in arb_request(CALLERS)) {
        if let Ok(p) = Policy::parse(&text) {
            let access = KeyAccess { key_policy: &p, identity_policies: &[], grants: &[] };
            let _ = evaluate(&access, &ctx);
        }
    }
}
