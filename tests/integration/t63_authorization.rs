//! Authorization end to end: several principals of the topology's `[iam]`, each with its own
//! access key, signing real SigV4 requests through the gateway with the AWS SDK for Rust. Every
//! test expects refusals that only policy evaluation produces, so each fails if enforcement
//! were missing.

use std::time::Duration;

use aws_sdk_kms::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{GrantConstraints, GrantOperation};
use aws_sdk_kms::Client;
use kmsim_node::config::{CredentialEntry, Secret, Topology};
use kmsim_node::iam::{IamConfig, IamPrincipalConfig, InlinePolicy};
use kmsim_proto::admin::v1::ListAuditEventsRequest;
use serde_json::Value;

use crate::harness::{ok, sdk_client, wait_for, Cluster};

const A: &str = "us-east-1";
const B: &str = "eu-west-1";
const C: &str = "ap-southeast-2";
const ACCOUNT: &str = "111122223333";

fn arn(kind: &str, name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:{kind}/{name}")
}

/// An identity policy of one Allow (and, optionally, one Deny) statement.
fn identity(name: &str, allow: &str, extra: &str) -> InlinePolicy {
    InlinePolicy {
        name: name.into(),
        document: format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":{allow},"Resource":"*"}}{extra}]}}"#
        ),
    }
}

fn principal(
    arn: String,
    tags: &[(&str, &str)],
    policies: Vec<InlinePolicy>,
) -> IamPrincipalConfig {
    IamPrincipalConfig {
        arn,
        policies,
        tags: tags
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// Adds `[iam]`, one access key per user (`AKIA<NAME>` / `<name>-secret`, the name being the
/// last part of its ARN) and one per `sessions` entry (name, session ARN).
fn with_principals(
    t: &mut Topology,
    users: Vec<IamPrincipalConfig>,
    roles: Vec<IamPrincipalConfig>,
    sessions: &[(&str, String)],
) {
    let mut keys: Vec<(String, String)> = users
        .iter()
        .map(|u| (u.arn.rsplit('/').next().unwrap().to_string(), u.arn.clone()))
        .collect();
    keys.extend(sessions.iter().map(|(n, a)| (n.to_string(), a.clone())));
    t.iam = Some(IamConfig {
        users,
        roles,
        home_region: None,
    });
    for (name, principal_arn) in &keys {
        t.credentials.push(CredentialEntry {
            access_key_id: access_key(name),
            secret_access_key: Secret::new(format!("{name}-secret")),
            principal_arn: principal_arn.clone(),
            session_token: None,
        });
    }
}

fn access_key(name: &str) -> String {
    format!("AKIA{}", name.to_uppercase().replace('-', ""))
}

/// An SDK client of the gateway signing as `name` for `region`.
fn as_(c: &Cluster, name: &str, region: &str) -> Client {
    sdk_client(
        &c.gateway_url(),
        region,
        aws_sdk_kms::config::Credentials::new(
            access_key(name),
            format!("{name}-secret"),
            None,
            None,
            "t63",
        ),
    )
}

/// The message of an `AccessDeniedException` (any other outcome fails the test).
fn denied<T: std::fmt::Debug, E: ProvideErrorMetadata + std::fmt::Debug, R: std::fmt::Debug>(
    r: Result<T, SdkError<E, R>>,
) -> String {
    let e = r.expect_err("access denied");
    assert_eq!(e.code(), Some("AccessDeniedException"), "{e:?}");
    e.message().unwrap_or_default().to_string()
}

async fn encrypt(k: &Client, key: &str, context: &[(&str, &str)]) -> Result<Blob, String> {
    let mut req = k
        .encrypt()
        .key_id(key)
        .plaintext(Blob::new(b"salary".to_vec()));
    for (n, v) in context {
        req = req.encryption_context(*n, *v);
    }
    req.send()
        .await
        .map(|o| o.ciphertext_blob.expect("blob"))
        .map_err(|e| e.code().unwrap_or("?").to_string())
}

/// Creates a key (with `policy`, else the default one); `multi_region` makes it a primary.
async fn create_key_with(k: &Client, policy: Option<String>, multi_region: bool) -> String {
    k.create_key()
        .multi_region(multi_region)
        .set_policy(policy)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id
}

async fn create_key(k: &Client, policy: Option<String>) -> String {
    create_key_with(k, policy, false).await
}

/// A key policy: the account's root keeps `kms:*`, plus `statements` (JSON objects, comma
/// separated).
fn key_policy(statements: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"root","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:*","Resource":"*"}},{statements}]}}"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn identity_policies_key_policies_and_denies_decide_who_uses_a_key() {
    let session = format!("arn:aws:sts::{ACCOUNT}:assumed-role/App/worker");
    let c = Cluster::start_edited(&[A], 1, |t| {
        let users = vec![
            principal(
                arn("user", "alice"),
                &[],
                vec![identity(
                    "use",
                    r#"["kms:CreateKey","kms:Encrypt","kms:Decrypt","kms:DescribeKey"]"#,
                    "",
                )],
            ),
            principal(arn("user", "bob"), &[], vec![]),
            principal(
                arn("user", "mallory"),
                &[],
                vec![identity(
                    "all-but-decrypt",
                    r#""kms:*""#,
                    r#",{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}"#,
                )],
            ),
        ];
        let roles = vec![principal(arn("role", "App"), &[], vec![])];
        with_principals(t, users, roles, &[("app", session.clone())]);
    });
    c.leader(A).await;
    let root = c.sdk(&c.gateway_url(), A);
    let (alice, bob, mallory, app) = (
        as_(&c, "alice", A),
        as_(&c, "bob", A),
        as_(&c, "mallory", A),
        as_(&c, "app", A),
    );

    // Alice: the default key policy delegates to the account, her identity policy allows.
    let key = create_key(&alice, None).await;
    let key_arn = format!("arn:aws:kms:{A}:{ACCOUNT}:key/{key}");
    let blob = encrypt(&alice, &key, &[]).await.unwrap();
    let plain = alice
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(plain.plaintext.unwrap().as_ref(), b"salary");
    // Bob has no identity policy: the delegation alone allows nothing.
    assert_eq!(
        denied(bob.encrypt().key_id(&key).plaintext(Blob::new(b"x".to_vec())).send().await),
        format!("User: {} is not authorized to perform: kms:Encrypt on resource: {key_arn} because no identity-based policy allows the kms:Encrypt action", arn("user", "bob"))
    );
    assert!(denied(bob.create_key().send().await)
        .ends_with("because no identity-based policy allows the kms:CreateKey action"));
    // Alice may not do what her policy does not name.
    assert!(denied(alice.disable_key().key_id(&key).send().await)
        .ends_with("because no identity-based policy allows the kms:DisableKey action"));
    let md = root.describe_key().key_id(&key).send().await.unwrap();
    assert!(
        md.key_metadata.unwrap().enabled,
        "a refused DisableKey changed the key"
    );

    // Mallory: kms:* but an explicit Deny of Decrypt in her identity policy.
    encrypt(&mallory, &key, &[]).await.unwrap();
    assert!(
        denied(mallory.decrypt().ciphertext_blob(blob.clone()).send().await)
            .ends_with("with an explicit deny in an identity-based policy")
    );
    // A Deny in the key policy wins over her identity policy's Allow too.
    let deny_mallory = key_policy(&format!(
        r#"{{"Effect":"Deny","Principal":{{"AWS":"{}"}},"Action":"kms:Encrypt","Resource":"*"}}"#,
        arn("user", "mallory")
    ));
    root.put_key_policy()
        .key_id(&key)
        .policy(deny_mallory)
        .send()
        .await
        .unwrap();
    assert!(denied(
        mallory
            .encrypt()
            .key_id(&key)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await
    )
    .ends_with("with an explicit deny in a resource-based policy"));

    // The App role has no identity policy: refused on a key whose policy only delegates...
    assert!(denied(
        app.encrypt()
            .key_id(&key)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await
    )
    .starts_with(&format!("User: {session} is not authorized")));
    // ...allowed on a key whose policy names the role (its sessions act as it).
    let named = create_key(
        &root,
        Some(key_policy(&format!(
            r#"{{"Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}}"#,
            arn("role", "App")
        ))),
    )
    .await;
    let blob = encrypt(&app, &named, &[]).await.unwrap();
    app.decrypt().ciphertext_blob(blob).send().await.unwrap();
    // (Its policy delegates DescribeKey to the account only, and the role has no policy.)
    assert!(denied(app.describe_key().key_id(&named).send().await)
        .ends_with("because no identity-based policy allows the kms:DescribeKey action"));

    // Refusals are audited with AWS's error code and message.
    let events = wait_for(
        Duration::from_secs(10),
        "the denials in the call log",
        || async {
            let events = ok(c
                .admin(A, 1)
                .list_audit_events(ListAuditEventsRequest {
                    event_name: "Encrypt".into(),
                    node_calls: true,
                    limit: Some(1000),
                    ..Default::default()
                })
                .await)
            .events;
            let denials: Vec<Value> = events
                .iter()
                .map(|e| serde_json::from_str::<Value>(&e.record).unwrap())
                .filter(|r| r["errorCode"] == "AccessDeniedException")
                .collect();
            (denials.len() >= 3).then_some(denials)
        },
    )
    .await;
    assert!(events
        .iter()
        .any(|r| r["userIdentity"]["arn"] == arn("user", "bob").as_str()
            && r["errorMessage"]
                .as_str()
                .is_some_and(|m| m.contains("no identity-based policy"))));
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_are_separated_by_encryption_context_and_a_grantee_decrypts_only_through_its_grant()
{
    let c = Cluster::start_edited(&[A], 1, |t| {
        let users = vec![
            principal(arn("user", "tenant-a"), &[("tenant", "a")], vec![]),
            principal(arn("user", "tenant-b"), &[("tenant", "b")], vec![]),
            principal(arn("user", "backup"), &[], vec![]),
        ];
        with_principals(t, users, vec![], &[]);
    });
    c.leader(A).await;
    let root = c.sdk(&c.gateway_url(), A);

    // One shared key; each tenant may use it only with its own tenant in the context.
    let policy = key_policy(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":["{}","{}"]}},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*",
            "Condition":{{"StringEquals":{{"kms:EncryptionContext:tenant":"${{aws:PrincipalTag/tenant}}"}}}}}}"#,
        arn("user", "tenant-a"),
        arn("user", "tenant-b")
    ));
    let key = create_key(&root, Some(policy)).await;
    let (ta, tb) = (as_(&c, "tenant-a", A), as_(&c, "tenant-b", A));
    let blob_a = encrypt(&ta, &key, &[("tenant", "a")]).await.unwrap();
    assert_eq!(
        encrypt(&ta, &key, &[("tenant", "b")]).await.unwrap_err(),
        "AccessDeniedException"
    );
    assert_eq!(
        encrypt(&ta, &key, &[]).await.unwrap_err(),
        "AccessDeniedException"
    );
    ta.decrypt()
        .ciphertext_blob(blob_a.clone())
        .encryption_context("tenant", "a")
        .send()
        .await
        .unwrap();
    // Tenant b cannot read tenant a's data: its own tag does not match the context.
    denied(
        tb.decrypt()
            .ciphertext_blob(blob_a)
            .encryption_context("tenant", "a")
            .send()
            .await,
    );
    encrypt(&tb, &key, &[("tenant", "b")]).await.unwrap();

    // The backup user has no policy anywhere; a grant with a constraint lets it decrypt
    // exactly what carries purpose=backup.
    let key = create_key(&root, None).await;
    let backup = as_(&c, "backup", A);
    let ours = encrypt(&root, &key, &[("purpose", "backup"), ("day", "mon")])
        .await
        .unwrap();
    let other = encrypt(&root, &key, &[("purpose", "reports")])
        .await
        .unwrap();
    let decrypt = |blob: Blob, purpose: &'static str| {
        let mut req = backup
            .decrypt()
            .ciphertext_blob(blob)
            .encryption_context("purpose", purpose);
        if purpose == "backup" {
            req = req.encryption_context("day", "mon");
        }
        req.send()
    };
    denied(decrypt(ours.clone(), "backup").await);
    let grant = root
        .create_grant()
        .key_id(&key)
        .grantee_principal(arn("user", "backup"))
        .operations(GrantOperation::Decrypt)
        .constraints(
            GrantConstraints::builder()
                .encryption_context_subset("purpose", "backup")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let plain = decrypt(ours.clone(), "backup").await.unwrap();
    assert_eq!(plain.plaintext.unwrap().as_ref(), b"salary");
    assert!(denied(decrypt(other, "reports").await)
        .ends_with("because no identity-based policy allows the kms:Decrypt action"));
    denied(
        backup
            .encrypt()
            .key_id(&key)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await,
    );
    root.revoke_grant()
        .key_id(&key)
        .grant_id(grant.grant_id.unwrap())
        .send()
        .await
        .unwrap();
    denied(decrypt(ours, "backup").await);
}

/// Creates a multi-Region primary in A as root, replicates it to B (with `replica_policy`),
/// and waits until the replica is Enabled.
async fn mrk_with_replica(
    c: &Cluster,
    policy: Option<String>,
    replica_policy: Option<String>,
) -> String {
    let root = c.sdk(&c.gateway_url(), A);
    let key = create_key_with(&root, policy, true).await;
    root.replicate_key()
        .key_id(&key)
        .replica_region(B)
        .set_policy(replica_policy)
        .send()
        .await
        .unwrap();
    c.wait_key(B, 1, &key, "the replica is Enabled", |m| {
        m.key_state.as_deref() == Some("Enabled")
    })
    .await;
    key
}

#[tokio::test(flavor = "multi_thread")]
async fn payroll_in_one_region_cannot_read_the_related_key_in_another() {
    let c = Cluster::start_edited(&[A, B], 1, |t| {
        let us_only = InlinePolicy {
            name: "payroll-us-east-1".into(),
            document: format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],
                   "Resource":"arn:aws:kms:*:{ACCOUNT}:key/*","Condition":{{"StringEquals":{{"aws:RequestedRegion":"us-east-1"}}}}}}]}}"#
            ),
        };
        let users = vec![
            principal(arn("user", "payroll-us"), &[], vec![]),
            principal(arn("user", "payroll-iam"), &[], vec![us_only]),
            principal(
                arn("user", "mover"),
                &[],
                vec![identity(
                    "move",
                    r#"["kms:UpdatePrimaryRegion","kms:DescribeKey"]"#,
                    "",
                )],
            ),
        ];
        with_principals(t, users, vec![], &[]);
    });
    c.leader(A).await;
    c.leader(B).await;

    // By the replica's own policy: the primary's policy names the payroll user, the
    // replica's (default) does not.
    let named = key_policy(&format!(
        r#"{{"Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}}"#,
        arn("user", "payroll-us")
    ));
    let key = mrk_with_replica(&c, Some(named), None).await;
    let (us, eu) = (as_(&c, "payroll-us", A), as_(&c, "payroll-us", B));
    let blob = encrypt(&us, &key, &[("dept", "payroll")]).await.unwrap();
    us.decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("dept", "payroll")
        .send()
        .await
        .unwrap();
    let message = denied(
        eu.decrypt()
            .ciphertext_blob(blob.clone())
            .encryption_context("dept", "payroll")
            .send()
            .await,
    );
    assert!(
        message.contains(&format!("on resource: arn:aws:kms:{B}:{ACCOUNT}:key/{key}")),
        "{message}"
    );
    // Root, allowed by the replica's policy, decrypts there: the ciphertext is good.
    c.sdk(&c.gateway_url(), B)
        .decrypt()
        .ciphertext_blob(blob)
        .encryption_context("dept", "payroll")
        .send()
        .await
        .unwrap();

    // By an aws:RequestedRegion condition of an identity policy: both keys delegate to the
    // account, the user's policy allows us-east-1 only.
    let key = mrk_with_replica(&c, None, None).await;
    let (us, eu) = (as_(&c, "payroll-iam", A), as_(&c, "payroll-iam", B));
    let blob = encrypt(&us, &key, &[]).await.unwrap();
    us.decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .unwrap();
    assert!(denied(eu.decrypt().ciphertext_blob(blob).send().await)
        .ends_with("because no identity-based policy allows the kms:Decrypt action"));
    assert_eq!(
        encrypt(&eu, &key, &[]).await.unwrap_err(),
        "AccessDeniedException"
    );

    // UpdatePrimaryRegion needs the permission on both keys, each judged by its own policy in
    // its own Region: the replica's policy denies the mover, so nothing moves.
    let deny_mover = key_policy(&format!(
        r#"{{"Effect":"Deny","Principal":{{"AWS":"{}"}},"Action":"kms:UpdatePrimaryRegion","Resource":"*"}}"#,
        arn("user", "mover")
    ));
    let guarded = mrk_with_replica(&c, None, Some(deny_mover)).await;
    let mover = as_(&c, "mover", A);
    let message = denied(
        mover
            .update_primary_region()
            .key_id(&guarded)
            .primary_region(B)
            .send()
            .await,
    );
    assert_eq!(
        message,
        format!("User: {} is not authorized to perform: kms:UpdatePrimaryRegion on resource: arn:aws:kms:{B}:{ACCOUNT}:key/{guarded} with an explicit deny in a resource-based policy", arn("user", "mover"))
    );
    let md = c.describe(A, 1, &guarded).await;
    assert_eq!(md.key_state.as_deref(), Some("Enabled"));
    assert_eq!(
        md.multi_region_configuration
            .unwrap()
            .multi_region_key_type
            .as_deref(),
        Some("PRIMARY")
    );
    // Where both policies delegate to the account, the mover's identity policy suffices.
    mover
        .update_primary_region()
        .key_id(&key)
        .primary_region(B)
        .send()
        .await
        .unwrap();
}

/// ReplicateKey by `k` to `region`, refused because no identity policy allows `action`.
async fn replicate_refused(k: &Client, key: &str, region: &str, action: &str) {
    let message = denied(
        k.replicate_key()
            .key_id(key)
            .replica_region(region)
            .send()
            .await,
    );
    let why = format!("because no identity-based policy allows the {action} action");
    assert!(message.ends_with(&why), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn replicate_key_needs_the_replica_region_allowed_and_create_key_there() {
    let c = Cluster::start_edited(&[A, B, C], 1, |t| {
        let eu_only = InlinePolicy {
            name: "replicate-to-eu".into(),
            document: r#"{"Version":"2012-10-17","Statement":[
                {"Effect":"Allow","Action":"kms:ReplicateKey","Resource":"*","Condition":{"StringLike":{"kms:ReplicaRegion":"eu-*"}}},
                {"Effect":"Allow","Action":["kms:CreateKey","kms:DescribeKey"],"Resource":"*"}]}"#
                .into(),
        };
        let users = vec![
            principal(arn("user", "replicator"), &[], vec![eu_only]),
            principal(
                arn("user", "no-create"),
                &[],
                vec![identity("replicate", r#""kms:ReplicateKey""#, "")],
            ),
        ];
        with_principals(t, users, vec![], &[]);
    });
    for r in [A, B, C] {
        c.leader(r).await;
    }
    let root = c.sdk(&c.gateway_url(), A);
    let key = create_key_with(&root, None, true).await;
    let replicator = as_(&c, "replicator", A);
    replicate_refused(&replicator, &key, C, "kms:ReplicateKey").await;
    // Nothing was created in the refused Region.
    let not_there = c
        .sdk(&c.gateway_url(), C)
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(not_there.code(), Some("NotFoundException"));
    // Without kms:CreateKey (judged for the replica Region) the request is refused as well.
    replicate_refused(&as_(&c, "no-create", A), &key, B, "kms:CreateKey").await;
    // An eu-* Region with kms:CreateKey: replicated.
    replicator
        .replicate_key()
        .key_id(&key)
        .replica_region(B)
        .send()
        .await
        .unwrap();
    c.wait_key(B, 1, &key, "the replica exists", |_| true).await;

    // The lockout check: a replica policy that would shut the caller out is refused.
    let key2 = create_key_with(&root, None, true).await;
    let other = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"kms:*","Resource":"*"}}]}}"#,
        arn("user", "replicator")
    );
    let e = root
        .replicate_key()
        .key_id(&key2)
        .replica_region(B)
        .policy(&other)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("MalformedPolicyDocumentException"), "{e:?}");
    assert_eq!(
        e.message(),
        Some("The new key policy will not allow you to update the key policy in the future.")
    );
}
