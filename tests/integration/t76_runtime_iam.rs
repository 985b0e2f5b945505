//! Run-time IAM (`kmsim iam create-user` …) across two Regions: a user, its inline policy and
//! an access key made at run time in the IAM home Region sign AWS SDK requests in both Regions,
//! on each Region's node and through the gateway (which holds no IAM); a Deny policy refuses in
//! both Regions and its removal allows again; a Region cut off keeps its copy and converges
//! after the heal; a restarted node keeps the run-time IAM; a deleted key is refused. Every
//! wait is on a condition (`--wait`, or each Region's version through admin `GetIam`).

use std::time::Duration;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use kmsim_proto::admin::v1::GetIamRequest;

use crate::harness::{kmsim, kmsim_fails, ok, sdk_client, wait_for, Cluster};
use crate::t71_multi_region_faults::chaos;

const A: &str = "us-east-1";
const B: &str = "eu-west-1";
const USER: &str = "arn:aws:iam::111122223333:user/apps/writer";
const ALLOW: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Encrypt","kms:DescribeKey"],"Resource":"*"}]}"#;
const DENY: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"NoEncrypt","Effect":"Deny","Action":"kms:Encrypt","Resource":"*"}]}"#;

/// The command line `kmsim iam <args> --data-dir …`.
fn iam_line<'a>(args: &[&'a str], dir: &'a str) -> Vec<&'a str> {
    let mut all = vec!["iam"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data-dir", dir]);
    all
}

/// Runs `kmsim iam <args>`, which must succeed; its standard output.
fn iam(c: &Cluster, args: &[&str]) -> String {
    let dir = c.data_dir();
    kmsim(&iam_line(args, &dir))
}

/// Runs `kmsim iam <args>`, which must fail; its standard error.
fn iam_fails(c: &Cluster, args: &[&str]) -> String {
    let dir = c.data_dir();
    kmsim_fails(&iam_line(args, &dir))
}

/// The value after `label` on a line of `out`.
fn field(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|l| l.strip_prefix(label))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("no {label} in {out}"))
}

/// Encrypts with `key` as the run-time user through `url` in `region`: `Ok` or the AWS code.
async fn encrypt(
    url: &str,
    region: &str,
    creds: &(String, String),
    key: &str,
) -> Result<(), String> {
    let client = sdk_client(
        url,
        region,
        aws_sdk_kms::config::Credentials::new(&creds.0, &creds.1, None, None, "t76"),
    );
    client
        .encrypt()
        .key_id(key)
        .plaintext(Blob::new(b"run-time iam".to_vec()))
        .send()
        .await
        .map(|_| ())
        .map_err(|e| e.code().unwrap_or("no code").to_string())
}

/// Every way the test reaches `region`: its node's own endpoint and the gateway.
fn urls(c: &Cluster, region: &str) -> [String; 2] {
    [c.aws_url(region, 1), c.gateway_url()]
}

/// Asserts what Encrypt answers the user in each Region, on the node and through the gateway.
async fn expect_everywhere(
    c: &Cluster,
    creds: &(String, String),
    keys: &[(&str, &str)],
    want: Result<(), &str>,
) {
    for (region, key) in keys {
        for url in urls(c, region) {
            let got = encrypt(&url, region, creds, key).await;
            assert_eq!(
                got.as_ref().copied().map_err(String::as_str),
                want,
                "Encrypt in {region} through {url}"
            );
        }
    }
}

/// The IAM version `region` holds (admin `GetIam` on its node 1).
async fn version(c: &Cluster, region: &str) -> u64 {
    ok(c.admin(region, 1).get_iam(GetIamRequest {}).await).version
}

/// The lowest IAM version a node of `region` has applied (the gateway may send a request to
/// any of them).
async fn lowest_version(c: &Cluster, region: &str) -> u64 {
    let mut lowest = u64::MAX;
    for id in c.ids(region) {
        lowest = lowest.min(ok(c.admin(region, id).get_iam(GetIamRequest {}).await).version);
    }
    lowest
}

#[tokio::test(flavor = "multi_thread")]
async fn run_time_iam_reaches_every_region_and_the_gateway_and_survives_partitions_and_restarts() {
    // Three nodes a Region: the gateway may send each request to any of them, so `--wait` must
    // wait for every node, not for the one that answers for its Region.
    let c = Cluster::start(&[A, B], 3);
    c.leader(A).await;
    c.leader(B).await;
    let mut keys = Vec::new();
    for region in [A, B] {
        let root = c.sdk(&c.gateway_url(), region);
        let out = root.create_key().send().await.expect("create key");
        keys.push(out.key_metadata.expect("metadata").key_id);
    }
    let keys = [(A, keys[0].as_str()), (B, keys[1].as_str())];

    // The user, its policy and its access key, made at run time in the home Region (A).
    let created = iam(
        &c,
        &["create-user", "--arn", USER, "--tag", "team=payments"],
    );
    assert!(created.contains("version 1"), "{created}");
    iam(
        &c,
        &[
            "put-policy",
            "--arn",
            USER,
            "--name",
            "use",
            "--document",
            ALLOW,
        ],
    );
    let out = iam(&c, &["create-access-key", "--arn", USER, "--wait"]);
    assert!(out.contains("every Region holds version 3"), "{out}");
    let creds = (field(&out, "AccessKeyId:"), field(&out, "SecretAccessKey:"));
    assert!(creds.0.starts_with("AKIA") && creds.0.len() == 20, "{out}");
    assert_eq!(creds.1.len(), 40);

    // The gateway first: it holds no IAM and relays; the serving node verifies.
    let via_gateway = encrypt(&c.gateway_url(), B, &creds, keys[1].1).await;
    assert_eq!(via_gateway, Ok(()), "through the gateway to {B}");
    expect_everywhere(&c, &creds, &keys, Ok(())).await;

    // IAM's errors.
    let err = iam_fails(&c, &["create-user", "--arn", USER]);
    assert!(err.contains("EntityAlreadyExists"), "{err}");
    let err = iam_fails(&c, &["delete-user", "--arn", USER]);
    assert!(err.contains("DeleteConflict"), "{err}");
    let err = iam_fails(
        &c,
        &[
            "put-policy",
            "--arn",
            USER,
            "--name",
            "bad",
            "--document",
            "{nope",
        ],
    );
    assert!(err.contains("MalformedPolicyDocument"), "{err}");
    let err = iam_fails(
        &c,
        &[
            "delete-policy",
            "--arn",
            "arn:aws:iam::111122223333:user/nobody",
            "--name",
            "use",
        ],
    );
    assert!(err.contains("NoSuchEntity"), "{err}");

    // A Deny refuses in both Regions; removing it allows again.
    iam(
        &c,
        &[
            "put-policy",
            "--arn",
            USER,
            "--name",
            "deny",
            "--document",
            DENY,
            "--wait",
        ],
    );
    expect_everywhere(&c, &creds, &keys, Err("AccessDeniedException")).await;
    iam(
        &c,
        &["delete-policy", "--arn", USER, "--name", "deny", "--wait"],
    );
    expect_everywhere(&c, &creds, &keys, Ok(())).await;

    // A Region cut off keeps serving with its copy and converges after the heal.
    chaos(&c, &["partition", A, B]);
    let out = iam(
        &c,
        &[
            "put-policy",
            "--arn",
            USER,
            "--name",
            "deny",
            "--document",
            DENY,
        ],
    );
    let cut_off_version = version(&c, B).await;
    assert!(out.contains("version 6"), "{out}");
    assert_eq!(cut_off_version, 5);
    assert_eq!(
        encrypt(&c.aws_url(A, 1), A, &creds, keys[0].1).await,
        Err("AccessDeniedException".to_string())
    );
    assert_eq!(
        encrypt(&c.aws_url(B, 1), B, &creds, keys[1].1).await,
        Ok(())
    );
    chaos(&c, &["heal"]);
    wait_for(
        Duration::from_secs(30),
        "every node of B to take version 6",
        || async { (lowest_version(&c, B).await == 6).then_some(()) },
    )
    .await;
    expect_everywhere(&c, &creds, &keys, Err("AccessDeniedException")).await;
    iam(
        &c,
        &["delete-policy", "--arn", USER, "--name", "deny", "--wait"],
    );

    // A restarted node keeps the run-time IAM (its Raft state holds it).
    c.restart(B, 1);
    c.leader(B).await;
    // The gateway's connection to the restarted node is made again before the checks.
    let root_b = c.sdk(&c.gateway_url(), B);
    wait_for(
        Duration::from_secs(30),
        "the gateway to reach B again",
        || async { root_b.describe_key().key_id(keys[1].1).send().await.ok() },
    )
    .await;
    assert_eq!(version(&c, B).await, 7);
    expect_everywhere(&c, &creds, &keys, Ok(())).await;
    let shown = iam(&c, &["get", "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("json");
    // Every node's version, by `REGION/ID`.
    let versions = shown["versions"].as_object().expect("versions");
    for region in [A, B] {
        let nodes: Vec<_> = versions
            .iter()
            .filter(|(n, _)| n.split('/').next() == Some(region))
            .collect();
        assert_eq!(nodes.len(), 3, "{shown}");
        assert!(nodes.iter().all(|(_, v)| **v == 7), "{shown}");
    }
    assert_eq!(shown["unreachable"], serde_json::json!({}), "{shown}");
    let text = shown.to_string();
    assert!(
        text.contains(&creds.0) && !text.contains(&creds.1),
        "{text}"
    );

    // A deleted key is refused everywhere once each Region applied the deletion.
    let out = iam(
        &c,
        &[
            "delete-access-key",
            "--arn",
            USER,
            "--access-key-id",
            &creds.0,
            "--wait",
        ],
    );
    assert!(out.contains("every Region holds version 8"), "{out}");
    expect_everywhere(&c, &creds, &keys, Err("UnrecognizedClientException")).await;
}
