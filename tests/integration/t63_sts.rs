//! STS and the policy simulator end to end: `AssumeRole` signed as a user through the gateway
//! (SigV4 service `sts`, the AWS Query protocol), the session's credentials used by the AWS SDK
//! for Rust on KMS in two Regions that share nothing but the topology, the session's expiry on
//! the Region's clock, forged tokens, trust-policy refusals, and `kmsim iam simulate` on a live
//! cluster. Every assertion depends on STS or the simulator existing.

use std::process::Command;
use std::time::Duration;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use kmsim_node::config::{CredentialEntry, Secret};
use kmsim_node::iam::{IamConfig, IamPrincipalConfig, InlinePolicy};
use kmsim_sim::aws_client::{Answer, Signer};

use crate::harness::{kmsim_exe, sdk_client, wait_for, Cluster};

const A: &str = "us-east-1";
const B: &str = "eu-west-1";
const ACCOUNT: &str = "111122223333";

fn arn(kind: &str, name: &str) -> String {
    format!("arn:aws:iam::{ACCOUNT}:{kind}/{name}")
}

fn policy(name: &str, statements: &str) -> InlinePolicy {
    InlinePolicy {
        name: name.into(),
        document: format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#),
    }
}

/// `alice` may assume `Reader` (its trust policy names her) and, through her identity policy,
/// nothing else; `bob` is trusted by no role. `Reader` may encrypt and decrypt; `Delegated`
/// trusts the account only, so a caller also needs an identity policy allowing it.
fn principals(t: &mut kmsim_node::config::Topology) {
    let user = |name: &str, policies: Vec<InlinePolicy>| IamPrincipalConfig {
        arn: arn("user", name),
        policies,
        ..Default::default()
    };
    let alice_may = format!(
        r#"{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"{}"}}"#,
        arn("role", "Reader")
    );
    t.iam = Some(IamConfig {
        users: vec![
            user("alice", vec![policy("assume", &alice_may)]),
            user(
                "bob",
                vec![policy(
                    "assume",
                    r#"{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}"#,
                )],
            ),
        ],
        roles: vec![
            IamPrincipalConfig {
                arn: arn("role", "Reader"),
                policies: vec![policy(
                    "use",
                    r#"{"Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt","kms:DescribeKey"],"Resource":"*"}"#,
                )],
                trust_policy: Some(format!(
                    r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Alice","Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"sts:AssumeRole"}}]}}"#,
                    arn("user", "alice")
                )),
                ..Default::default()
            },
            IamPrincipalConfig {
                arn: arn("role", "Delegated"),
                trust_policy: Some(format!(
                    r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"sts:AssumeRole"}}]}}"#
                )),
                ..Default::default()
            },
        ],
        home_region: None,
    });
    for name in ["alice", "bob"] {
        t.credentials.push(CredentialEntry {
            access_key_id: format!("AKIA{}", name.to_uppercase()),
            secret_access_key: Secret::new(format!("{name}-secret")),
            principal_arn: arn("user", name),
            session_token: None,
        });
    }
}

/// The text of the first `<tag>` element of an XML answer.
fn element(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].replace("&amp;", "&"))
}

async fn sts(c: &Cluster, key: &str, secret: &str, token: Option<&str>, form: &str) -> Answer {
    let mut signer = Signer::new(key, secret, A);
    signer.session_token = token.map(String::from);
    let client = c.raw(&c.gateway_url(), A).with_signer(signer);
    let req = client.signed_sts(form).expect("sign");
    client.send(req).await.expect("an answer")
}

/// Temporary credentials of a role session.
struct Session {
    key: String,
    secret: String,
    token: String,
    arn: String,
}

async fn assume(c: &Cluster, user: &str, role: &str, session: &str) -> Result<Session, Answer> {
    let form = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName={session}&DurationSeconds=900",
        arn("role", role)
    );
    let a = sts(
        c,
        &format!("AKIA{}", user.to_uppercase()),
        &format!("{user}-secret"),
        None,
        &form,
    )
    .await;
    if !a.status.is_success() {
        return Err(a);
    }
    let xml = String::from_utf8_lossy(&a.body).into_owned();
    assert!(
        xml.starts_with("<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"),
        "{xml}"
    );
    Ok(Session {
        key: element(&xml, "AccessKeyId").expect("AccessKeyId"),
        secret: element(&xml, "SecretAccessKey").expect("SecretAccessKey"),
        token: element(&xml, "SessionToken").expect("SessionToken"),
        arn: element(&xml, "Arn").expect("Arn"),
    })
}

fn kms_as(c: &Cluster, s: &Session, token: &str, region: &str) -> aws_sdk_kms::Client {
    sdk_client(
        &c.gateway_url(),
        region,
        aws_sdk_kms::config::Credentials::new(
            &s.key,
            &s.secret,
            Some(token.to_string()),
            None,
            "t63-sts",
        ),
    )
}

/// The STS error code and message of a refused answer.
fn sts_error(a: &Answer) -> (String, String) {
    let xml = String::from_utf8_lossy(&a.body);
    assert!(xml.contains("<ErrorResponse"), "{xml}");
    assert!(xml.contains("<Type>Sender</Type>"), "{xml}");
    (
        element(&xml, "Code").unwrap_or_default(),
        element(&xml, "Message").unwrap_or_default(),
    )
}

/// The ID of the key a CreateKey request makes.
async fn new_key(
    req: aws_sdk_kms::operation::create_key::builders::CreateKeyFluentBuilder,
) -> String {
    let out = req.send().await.expect("create key");
    out.key_metadata.expect("metadata").key_id
}

/// Asserts an SDK error's code and message.
fn refused<E: ProvideErrorMetadata + std::fmt::Debug>(e: &E, code: &str, message: &str) {
    assert_eq!(e.code(), Some(code), "{e:?}");
    assert_eq!(e.message(), Some(message), "{e:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_role_session_from_assume_role_works_in_every_region_until_it_expires() {
    let c = Cluster::start_edited(&[A, B], 1, principals);
    let root_a = c.sdk(&c.gateway_url(), A);
    let key = new_key(root_a.create_key().multi_region(true)).await;
    root_a
        .replicate_key()
        .key_id(&key)
        .replica_region(B)
        .send()
        .await
        .expect("replicate");
    let root_b = c.sdk(&c.gateway_url(), B);
    wait_for(Duration::from_secs(30), "the replica in B", || async {
        root_b.describe_key().key_id(&key).send().await.ok()
    })
    .await;

    let s = assume(&c, "alice", "Reader", "job-1")
        .await
        .expect("alice assumes Reader");
    let session_arn = format!("arn:aws:sts::{ACCOUNT}:assumed-role/Reader/job-1");
    assert_eq!(s.arn, session_arn);
    assert!(s.key.starts_with("ASIA"), "{}", s.key);

    // GetCallerIdentity with the session's credentials names the session.
    let who = sts(
        &c,
        &s.key,
        &s.secret,
        Some(&s.token),
        "Action=GetCallerIdentity&Version=2011-06-15",
    )
    .await;
    assert!(who.status.is_success(), "{who:?}");
    let xml = String::from_utf8_lossy(&who.body).into_owned();
    assert_eq!(element(&xml, "Arn").as_deref(), Some(session_arn.as_str()));
    assert_eq!(element(&xml, "Account").as_deref(), Some(ACCOUNT));
    assert!(
        element(&xml, "UserId").is_some_and(|u| u.starts_with("AROA") && u.ends_with(":job-1")),
        "{xml}"
    );

    // The session encrypts in A and decrypts in B: no Region was told about it.
    let in_a = kms_as(&c, &s, &s.token, A);
    let in_b = kms_as(&c, &s, &s.token, B);
    let blob = in_a
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"payroll".to_vec()))
        .send()
        .await
        .expect("the role's policy allows Encrypt")
        .ciphertext_blob
        .expect("blob");
    let plain = in_b
        .decrypt()
        .key_id(&key)
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .expect("the role's policy allows Decrypt in B");
    assert_eq!(plain.plaintext.expect("plaintext").as_ref(), b"payroll");
    // Where the role's policy does not allow, the caller in the refusal is the session.
    let e = in_a
        .create_key()
        .send()
        .await
        .expect_err("CreateKey is not the role's");
    let why = format!("User: {session_arn} is not authorized to perform: kms:CreateKey on resource: * because no identity-based policy allows the kms:CreateKey action");
    refused(&e, "AccessDeniedException", &why);

    // A token altered in one character, or presented with another access key, is invalid.
    let mut forged = s.token.clone().into_bytes();
    let i = forged.len() / 2;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let e = kms_as(&c, &s, &forged, A)
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .expect_err("forged token");
    refused(
        &e,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    );

    // Past its expiry on A's clock the session is refused in A.
    c.advance_clock(A, 901_000).await;
    let e = in_a
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"late".to_vec()))
        .send()
        .await
        .expect_err("expired");
    refused(
        &e,
        "ExpiredTokenException",
        "The security token included in the request is expired",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn assume_role_is_judged_by_the_trust_policy_and_the_callers_identity_policy() {
    let c = Cluster::start_edited(&[A], 1, principals);
    // No trust policy names bob, and the account delegation needs his identity policy: he
    // has one for Delegated, so only Reader is refused to him.
    let a = assume(&c, "bob", "Reader", "sess")
        .await
        .err()
        .expect("refused");
    assert_eq!(
        a.status.as_u16(),
        403,
        "{}",
        String::from_utf8_lossy(&a.body)
    );
    let (code, message) = sts_error(&a);
    assert_eq!(code, "AccessDenied");
    assert_eq!(
        message,
        format!(
            "User: {} is not authorized to perform: sts:AssumeRole on resource: {} because no resource-based policy allows the sts:AssumeRole action",
            arn("user", "bob"),
            arn("role", "Reader")
        )
    );
    assert!(assume(&c, "bob", "Delegated", "sess").await.is_ok());
    // Alice's identity policy allows Reader only: the account-only trust of Delegated refuses.
    let a = assume(&c, "alice", "Delegated", "sess")
        .await
        .err()
        .expect("refused");
    let (code, message) = sts_error(&a);
    assert_eq!(code, "AccessDenied");
    assert!(
        message.ends_with("because no identity-based policy allows the sts:AssumeRole action"),
        "{message}"
    );
    // The root user may not assume roles; an undeclared role is refused; bad input is a
    // ValidationError.
    let a = sts(
        &c,
        "test",
        "test",
        None,
        &format!(
            "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName=sess",
            arn("role", "Reader")
        ),
    )
    .await;
    assert_eq!(
        sts_error(&a),
        (
            "AccessDenied".into(),
            "Roles may not be assumed by root accounts.".into()
        )
    );
    let a = assume(&c, "alice", "Nobody", "sess")
        .await
        .err()
        .expect("refused");
    assert_eq!(sts_error(&a).0, "AccessDenied");
    let a = assume(&c, "alice", "Reader", "no/slashes")
        .await
        .err()
        .expect("refused");
    assert_eq!(sts_error(&a).0, "ValidationError");
    // A wrong signature is STS's SignatureDoesNotMatch, in XML.
    let a = sts(
        &c,
        "AKIAALICE",
        "wrong",
        None,
        "Action=GetCallerIdentity&Version=2011-06-15",
    )
    .await;
    assert_eq!(sts_error(&a).0, "SignatureDoesNotMatch");
}

/// Runs `kmsim iam simulate` in Region A as `principal`, for `action` on `key` (and `extra`
/// arguments); returns whether it exited 0 and its stdout.
fn simulate_out(
    c: &Cluster,
    principal: &str,
    action: &str,
    key: &str,
    extra: &[&str],
) -> (bool, String) {
    let data = c.data_dir();
    let out = Command::new(kmsim_exe())
        .args(["iam", "simulate", "--data-dir", &data, "--region", A])
        .args([
            "--principal",
            principal,
            "--action",
            action,
            "--key-id",
            key,
        ])
        .args(extra)
        .output()
        .expect("run kmsim");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("allowed") || text.contains("Deny"),
        "no decision: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// [`simulate_out`] with `--json`, parsed.
fn simulate(
    c: &Cluster,
    principal: &str,
    action: &str,
    key: &str,
    extra: &[&str],
) -> (bool, serde_json::Value) {
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let (ok, text) = simulate_out(c, principal, action, key, &args);
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (ok, v)
}

#[tokio::test(flavor = "multi_thread")]
async fn iam_simulate_explains_allow_explicit_deny_and_implicit_deny() {
    let c = Cluster::start_edited(&[A], 1, principals);
    let root = c.sdk(&c.gateway_url(), A);
    let open_key = new_key(root.create_key()).await;
    let guarded = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Sid":"Admins","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:*","Resource":"*"}},
            {{"Sid":"NoReaderOutsideTheVpc","Effect":"Deny","Principal":{{"AWS":"{}"}},"Action":"kms:Decrypt","Resource":"*","Condition":{{"NotIpAddress":{{"aws:SourceIp":"10.0.0.0/8"}}}}}}]}}"#,
        arn("role", "Reader")
    );
    let guarded_key = new_key(root.create_key().policy(guarded)).await;
    let session = format!("arn:aws:sts::{ACCOUNT}:assumed-role/Reader/job-9");
    let outside = ["--context", "aws:SourceIp=192.0.2.7"];

    // Allowed: the key policy delegates to the account, the role's identity policy allows.
    let (ok, v) = simulate(&c, &session, "kms:Decrypt", &open_key, &[]);
    assert!(ok, "{v}");
    assert_eq!(v["decision"], "allowed");
    let check = &v["checks"][0];
    assert_eq!(
        check["resource"],
        format!("arn:aws:kms:{A}:{ACCOUNT}:key/{open_key}")
    );
    assert_eq!(check["statements"][0]["policyType"], "key");
    assert_eq!(check["statements"][1]["policyType"], "identity");
    assert_eq!(check["statements"][1]["policy"], "use");

    // Explicit deny, naming the statement by its Sid; the same request from inside 10/8 is
    // allowed (the request context is the simulator's input).
    let (ok, v) = simulate(&c, &session, "kms:Decrypt", &guarded_key, &outside);
    assert!(!ok);
    assert_eq!(v["decision"], "explicitDeny", "{v}");
    let check = &v["checks"][0];
    assert_eq!(check["statements"][0]["sid"], "NoReaderOutsideTheVpc");
    assert_eq!(check["statements"][0]["policy"], "default");
    let message = check["message"].as_str().unwrap_or_default();
    assert!(
        message.ends_with("with an explicit deny in a resource-based policy"),
        "{v}"
    );
    let inside = ["--context", "aws:SourceIp=10.1.2.3"];
    let (ok, v) = simulate(&c, &session, "kms:Decrypt", &guarded_key, &inside);
    assert!(ok, "{v}");

    // Implicit deny: bob's identity policies say nothing about KMS.
    let bob_arn = arn("user", "bob");
    let (ok, v) = simulate(&c, &bob_arn, "kms:Encrypt", &open_key, &[]);
    assert!(!ok);
    assert_eq!(v["decision"], "implicitDeny", "{v}");
    let message = v["checks"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.ends_with("because no identity-based policy allows the kms:Encrypt action"),
        "{v}"
    );

    // The simulator agrees with the real call.
    let bob = sdk_client(
        &c.gateway_url(),
        A,
        aws_sdk_kms::config::Credentials::new("AKIABOB", "bob-secret", None, None, "t63-sts"),
    );
    let e = bob
        .encrypt()
        .key_id(&open_key)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .expect_err("refused");
    assert_eq!(e.message(), Some(message));

    // Text output names the decision and the statement too.
    let (ok, text) = simulate_out(&c, &session, "kms:Decrypt", &guarded_key, &outside);
    assert!(!ok);
    assert!(text.contains("decision:  explicitDeny"), "{text}");
    assert!(text.contains("\"NoReaderOutsideTheVpc\""), "{text}");
}
