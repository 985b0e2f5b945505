//! Audit parity with CloudTrail: every call is recorded — management calls (with
//! responseElements where CloudTrail fills them), cryptographic calls (encryption context and
//! algorithms kept, data and key material never written, responseElements null), refused calls
//! (errorCode, errorMessage), including calls the AWS front refuses before any operation —
//! and `kmsim audit` filters them and prints ISO-8601 times.

use std::time::SystemTime;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{GrantOperation, KeySpec, KeyUsageType, SigningAlgorithmSpec, Tag};
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use serde_json::{json, Value};

use kmsim_proto::admin::v1::ListAuditEventsRequest;
use kmsim_sim::aws_client::Signer;

use crate::harness::{kmsim, ok, Cluster};

const R: &str = "us-east-1";
const R2: &str = "eu-west-1";

/// CloudTrail's date format inside responseElements (`Aug 10, 2022, 10:38:27 PM`).
fn is_cloudtrail_date(v: &Value) -> bool {
    let Some(s) = v.as_str() else { return false };
    let parts: Vec<&str> = s.split(' ').collect();
    parts.len() == 5
        && parts[0].len() == 3
        && parts[1].ends_with(',')
        && parts[2].len() == 5
        && parts[2].ends_with(',')
        && parts[3].split(':').count() == 3
        && (parts[4] == "AM" || parts[4] == "PM")
}

/// Records of one log of node 1 (`node_calls`: its call log; else the Region's log).
async fn records(c: &Cluster, node_calls: bool, event_name: &str) -> Vec<Value> {
    ok(c.admin(R, 1)
        .list_audit_events(ListAuditEventsRequest {
            event_name: event_name.into(),
            node_calls,
            limit: Some(10_000),
            ..Default::default()
        })
        .await)
    .events
    .iter()
    .map(|e| serde_json::from_str(&e.record).unwrap())
    .collect()
}

/// The CloudTrail members every API call record has; `agent` is part of the caller's user agent
/// (`aws-sdk` for the AWS SDK, `kmsim` for the hand-made requests of the raw client).
fn assert_common(r: &Value, name: &str, agent: &str) {
    assert_eq!(r["eventName"], name, "{r}");
    assert_eq!(r["eventVersion"], "1.08");
    assert_eq!(r["eventSource"], "kms.amazonaws.com");
    assert_eq!(r["awsRegion"], R);
    assert_eq!(r["eventType"], "AwsApiCall");
    assert_eq!(r["recipientAccountId"], "111122223333");
    assert_eq!(r["userIdentity"]["accessKeyId"], "test", "{r}");
    assert!(
        r["userAgent"].as_str().is_some_and(|u| u.contains(agent)),
        "{r}"
    );
    assert!(r["requestID"].as_str().is_some_and(|id| !id.is_empty()));
    let t = r["eventTime"].as_str().unwrap();
    assert!(
        t.len() == 20 && t.ends_with('Z') && &t[10..11] == "T",
        "{t}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn management_calls_are_recorded_with_their_response_elements() {
    let c = Cluster::start(&[R, R2], 1);
    c.leader(R).await;
    c.leader(R2).await;
    let sdk = c.sdk(&c.gateway_url(), R);
    let md = sdk
        .create_key()
        .description("audited")
        .multi_region(true)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .clone();
    let key = md.key_id().to_string();
    let arn = md.arn().unwrap().to_string();
    let tag = Tag::builder()
        .tag_key("team")
        .tag_value("kms")
        .build()
        .unwrap();
    sdk.tag_resource()
        .key_id(&key)
        .tags(tag)
        .send()
        .await
        .unwrap();
    sdk.describe_key().key_id(&key).send().await.unwrap();
    let replica = sdk
        .replicate_key()
        .key_id(&key)
        .replica_region(R2)
        .description("the replica")
        .send()
        .await
        .unwrap();
    let grant = sdk
        .create_grant()
        .key_id(&key)
        .grantee_principal("arn:aws:iam::111122223333:role/app")
        .operations(GrantOperation::Encrypt)
        .send()
        .await
        .unwrap();
    let single = sdk.create_key().send().await.unwrap();
    let single = single.key_metadata().unwrap().key_id().to_string();
    sdk.schedule_key_deletion()
        .key_id(&single)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    sdk.cancel_key_deletion()
        .key_id(&single)
        .send()
        .await
        .unwrap();

    // CreateKey: the Region's replicated log, with the new key's metadata.
    let created = records(&c, false, "CreateKey").await;
    let r = created
        .iter()
        .find(|r| r["resources"][0]["ARN"] == arn.as_str())
        .expect("CreateKey recorded");
    assert_common(r, "CreateKey", "aws-sdk");
    assert_eq!(r["requestParameters"]["keySpec"], "SYMMETRIC_DEFAULT");
    assert_eq!(r["requestParameters"]["multiRegion"], true);
    assert_eq!(r["readOnly"], false);
    assert_eq!(r["managementEvent"], true);
    let m = &r["responseElements"]["keyMetadata"];
    assert_eq!(m["keyId"], key.as_str(), "{r}");
    assert_eq!(m["arn"], arn.as_str());
    assert_eq!(m["aWSAccountId"], "111122223333");
    assert_eq!(m["keyState"], "Enabled");
    assert_eq!(m["enabled"], true);
    assert_eq!(m["description"], "audited");
    assert_eq!(m["multiRegion"], true);
    assert_eq!(m["encryptionAlgorithms"][0], "SYMMETRIC_DEFAULT");
    assert!(is_cloudtrail_date(&m["creationDate"]), "{m}");

    // ReplicateKey: in the primary's Region, with the replica's metadata and policy.
    let replicated = records(&c, false, "ReplicateKey").await;
    assert_eq!(replicated.len(), 1, "{replicated:?}");
    let r = &replicated[0];
    assert_common(r, "ReplicateKey", "aws-sdk");
    assert_eq!(r["requestParameters"]["replicaRegion"], R2);
    assert_eq!(r["resources"][0]["ARN"], arn.as_str());
    let m = &r["responseElements"]["replicaKeyMetadata"];
    let replica_arn = replica.replica_key_metadata().unwrap().arn().unwrap();
    assert_eq!(m["arn"], replica_arn, "{r}");
    assert_eq!(m["keyState"], "Creating");
    assert_eq!(m["enabled"], false);
    assert_eq!(m["description"], "the replica");
    let mrc = &m["multiRegionConfiguration"];
    assert_eq!(mrc["multiRegionKeyType"], "REPLICA");
    assert_eq!(mrc["primaryKey"]["arn"], arn.as_str());
    assert_eq!(mrc["primaryKey"]["region"], R);
    assert_eq!(mrc["replicaKeys"][0]["region"], R2);
    let policy: Value =
        serde_json::from_str(r["responseElements"]["replicaPolicy"].as_str().unwrap()).unwrap();
    assert_eq!(
        policy["Statement"][0]["Principal"]["AWS"],
        "arn:aws:iam::111122223333:root"
    );

    // ScheduleKeyDeletion and CancelKeyDeletion: what the key became.
    let scheduled = records(&c, false, "ScheduleKeyDeletion").await;
    assert_eq!(scheduled.len(), 1, "{scheduled:?}");
    let e = &scheduled[0]["responseElements"];
    assert!(e["keyId"].as_str().unwrap().ends_with(&single), "{e}");
    assert!(e["keyId"].as_str().unwrap().starts_with("arn:aws:kms:"));
    assert_eq!(e["keyState"], "PendingDeletion");
    assert_eq!(e["pendingWindowInDays"], 7);
    assert!(is_cloudtrail_date(&e["deletionDate"]), "{e}");
    let cancelled = records(&c, false, "CancelKeyDeletion").await;
    assert_eq!(cancelled.len(), 1);
    assert_eq!(
        cancelled[0]["responseElements"],
        json!({"keyId": scheduled[0]["resources"][0]["ARN"]})
    );

    // TagResource (a write) and DescribeKey (a read): the node's call log, no response.
    let tagged = records(&c, true, "TagResource").await;
    assert_eq!(tagged.len(), 1, "{tagged:?}");
    let r = &tagged[0];
    assert_common(r, "TagResource", "aws-sdk");
    assert_eq!(r["requestParameters"]["keyId"], key.as_str());
    assert_eq!(r["requestParameters"]["tags"][0]["tagKey"], "team");
    assert_eq!(r["requestParameters"]["tags"][0]["tagValue"], "kms");
    assert_eq!(r["readOnly"], false);
    assert_eq!(r["responseElements"], Value::Null);
    assert_eq!(r["resources"][0]["ARN"], arn.as_str());
    assert_eq!(r["resources"][0]["type"], "AWS::KMS::Key");
    assert!(r.get("errorCode").is_none());
    let described = records(&c, true, "DescribeKey").await;
    let d = described
        .iter()
        .find(|r| r["requestParameters"]["keyId"] == key.as_str())
        .unwrap_or_else(|| panic!("DescribeKey recorded: {described:?}"));
    assert_eq!(d["readOnly"], true);
    assert_eq!(d["eventCategory"], "Management");
    assert_eq!(d["responseElements"], Value::Null);

    // CreateGrant: the grant's ID, never its token.
    let granted = records(&c, true, "CreateGrant").await;
    assert_eq!(granted.len(), 1, "{granted:?}");
    let g = &granted[0];
    assert_eq!(
        g["responseElements"],
        json!({"grantId": grant.grant_id().unwrap()})
    );
    assert_eq!(g["requestParameters"]["operations"][0], "Encrypt");
    assert!(!g.to_string().contains(grant.grant_token().unwrap()));
}

#[tokio::test(flavor = "multi_thread")]
async fn cryptographic_calls_are_recorded_without_secrets() {
    let c = Cluster::start(&[R], 1);
    c.leader(R).await;
    let sdk = c.sdk(&c.gateway_url(), R);
    let key = sdk.create_key().send().await.unwrap();
    let key = key.key_metadata().unwrap().key_id().to_string();
    let plaintext = b"the audited secret 0123456789".to_vec();
    let enc = sdk
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(plaintext.clone()))
        .encryption_context("Purpose", "audit-test")
        .send()
        .await
        .unwrap();
    let blob = enc.ciphertext_blob().unwrap().as_ref().to_vec();
    let dec = sdk
        .decrypt()
        .ciphertext_blob(Blob::new(blob.clone()))
        .encryption_context("Purpose", "audit-test")
        .send()
        .await
        .unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), &plaintext[..]);
    let dk = sdk
        .generate_data_key()
        .key_id(&key)
        .number_of_bytes(32)
        .encryption_context("Purpose", "dk")
        .send()
        .await
        .unwrap();
    let data_key = dk.plaintext().unwrap().as_ref().to_vec();
    let signer = sdk
        .create_key()
        .key_usage(KeyUsageType::SignVerify)
        .key_spec(KeySpec::EccNistP256)
        .send()
        .await
        .unwrap();
    let signer = signer.key_metadata().unwrap().key_id().to_string();
    let sig = sdk
        .sign()
        .key_id(&signer)
        .message(Blob::new(plaintext.clone()))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap();
    let signature = sig.signature().unwrap().as_ref().to_vec();

    let all = records(&c, true, "").await;
    let one = |name: &str| -> Value {
        let found: Vec<&Value> = all.iter().filter(|r| r["eventName"] == name).collect();
        assert_eq!(found.len(), 1, "{name}: {all:?}");
        found[0].clone()
    };
    for r in &all {
        assert_eq!(r["responseElements"], Value::Null, "{r}");
        assert_eq!(r["readOnly"], true, "{r}");
    }
    let e = one("Encrypt");
    assert_common(&e, "Encrypt", "aws-sdk");
    assert_eq!(e["requestParameters"]["keyId"], key.as_str());
    assert_eq!(
        e["requestParameters"]["encryptionContext"]["Purpose"],
        "audit-test"
    );
    assert_eq!(e["readOnly"], true);
    assert_eq!(e["responseElements"], Value::Null);
    assert!(e["resources"][0]["ARN"].as_str().unwrap().ends_with(&key));
    let d = one("Decrypt");
    assert_eq!(
        d["requestParameters"]["encryptionContext"]["Purpose"],
        "audit-test"
    );
    // Decrypt names no key; the record's resource is the key the ciphertext named.
    assert!(
        d["resources"][0]["ARN"].as_str().unwrap().ends_with(&key),
        "{d}"
    );
    let g = one("GenerateDataKey");
    assert_eq!(g["requestParameters"]["numberOfBytes"], 32);
    assert_eq!(g["requestParameters"]["encryptionContext"]["Purpose"], "dk");
    let s = one("Sign");
    assert_eq!(s["requestParameters"]["signingAlgorithm"], "ECDSA_SHA_256");
    assert_eq!(s["requestParameters"]["keyId"], signer.as_str());

    // No data, ciphertext, data key or signature, raw or base64, anywhere in any record.
    let text = all.iter().map(|r| r.to_string()).collect::<String>();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    for (what, bytes) in [
        ("plaintext", &plaintext),
        ("ciphertext", &blob),
        ("data key", &data_key),
        ("signature", &signature),
    ] {
        assert!(
            !text.contains(&b64(bytes)),
            "base64 of the {what} in the records"
        );
    }
    assert!(!text.contains("the audited secret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_calls_are_recorded_with_their_error() {
    let c = Cluster::start(&[R], 1);
    c.leader(R).await;
    let sdk = c.sdk(&c.gateway_url(), R);
    let missing = "1234abcd-12ab-34cd-56ef-1234567890ab";
    let err = sdk.describe_key().key_id(missing).send().await.unwrap_err();
    let err = err.into_service_error();
    assert!(err.is_not_found_exception());
    let key = sdk.create_key().send().await.unwrap();
    let key = key.key_metadata().unwrap().key_id().to_string();
    sdk.disable_key().key_id(&key).send().await.unwrap();
    sdk.encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();

    let d = records(&c, true, "DescribeKey").await;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_common(&d[0], "DescribeKey", "aws-sdk");
    assert_eq!(d[0]["errorCode"], "NotFoundException");
    assert!(
        d[0]["errorMessage"].as_str().unwrap().contains(missing),
        "{}",
        d[0]
    );
    assert_eq!(d[0]["requestParameters"]["keyId"], missing);
    let e = records(&c, true, "Encrypt").await;
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0]["errorCode"], "DisabledException");
    assert!(
        e[0]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("is disabled"),
        "{}",
        e[0]
    );
    assert!(e[0]["resources"][0]["ARN"]
        .as_str()
        .unwrap()
        .ends_with(&key));
    // The successful DisableKey carries no error.
    let ok_call = records(&c, true, "DisableKey").await;
    assert_eq!(ok_call.len(), 1);
    assert!(ok_call[0].get("errorCode").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_refused_at_the_aws_front_are_recorded_when_authenticated() {
    let c = Cluster::start(&[R], 1);
    c.leader(R).await;
    // Node 1's own endpoint: its call log records what its front refused.
    let client = c.raw(&c.aws_url(R, 1), R);
    let request_id = |a: &kmsim_sim::aws_client::Answer| {
        a.headers["x-amzn-requestid"].to_str().unwrap().to_string()
    };

    // Authenticated, refused before any operation: recorded.
    let malformed = client
        .send(
            client
                .signed("Encrypt", Bytes::from_static(b"{\"KeyId\": 5"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        malformed.error_code().as_deref(),
        Some("SerializationException")
    );
    let unknown = client
        .send(
            client
                .signed("DoSomethingElse", Bytes::from_static(b"{}"))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        unknown.error_code().as_deref(),
        Some("UnknownOperationException")
    );
    let mut plain = client.unsigned("ListKeys", Bytes::from_static(b"{}"));
    plain.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    Signer::new("test", "test", R)
        .sign(&mut plain, b"{}", SystemTime::now())
        .unwrap();
    let media = client.send(plain).await.unwrap();
    assert_eq!(media.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Not authenticated: no caller to attribute the call to, so no record (as in AWS).
    let stranger = client
        .with_signer(Signer::new("AKIAUNKNOWN", "secret", R))
        .call("ListKeys", &json!({}))
        .await
        .unwrap();
    assert_eq!(
        stranger.error_code().as_deref(),
        Some("UnrecognizedClientException")
    );
    let forged = client
        .with_signer(Signer::new("test", "wrong secret", R))
        .call("ListKeys", &json!({}))
        .await
        .unwrap();
    assert_eq!(
        forged.error_code().as_deref(),
        Some("InvalidSignatureException")
    );
    let unsigned = client
        .send(client.unsigned("ListKeys", Bytes::from_static(b"{}")))
        .await
        .unwrap();
    assert_eq!(unsigned.status, StatusCode::BAD_REQUEST);

    let all = records(&c, true, "").await;
    let by_id = |id: String| -> Option<Value> {
        all.iter().find(|r| r["requestID"] == id.as_str()).cloned()
    };
    let r = by_id(request_id(&malformed)).expect("malformed body recorded");
    assert_common(&r, "Encrypt", "kmsim");
    assert_eq!(r["errorCode"], "SerializationException");
    assert!(!r["errorMessage"].as_str().unwrap().is_empty(), "{r}");
    assert_eq!(r["requestParameters"], Value::Null);
    assert_eq!(r["responseElements"], Value::Null);
    assert_eq!(r["resources"], Value::Null);
    assert_eq!(r["userIdentity"]["arn"], "arn:aws:iam::111122223333:root");
    assert_eq!(r["readOnly"], true);
    let r = by_id(request_id(&unknown)).expect("unknown target recorded");
    assert_eq!(r["eventName"], "DoSomethingElse");
    assert_eq!(r["errorCode"], "UnknownOperationException");
    assert!(
        r["errorMessage"]
            .as_str()
            .unwrap()
            .contains("DoSomethingElse"),
        "{r}"
    );
    let r = by_id(request_id(&media)).expect("wrong Content-Type recorded");
    assert_eq!(r["eventName"], "ListKeys");
    assert_eq!(r["errorCode"], "SerializationException");
    assert!(
        r["errorMessage"].as_str().unwrap().contains("text/plain"),
        "{r}"
    );
    for refused in [&stranger, &forged, &unsigned] {
        assert!(
            by_id(request_id(refused)).is_none(),
            "an unauthenticated call was recorded: {:?}",
            refused.body
        );
    }
    assert_eq!(all.len(), 3, "{all:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn kmsim_audit_merges_filters_and_prints_iso_times() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let mut keys = Vec::new();
    for id in c.ids(R) {
        // Calls through each node's own endpoint land in that node's call log.
        let sdk = c.sdk(&c.aws_url(R, id), R);
        let key = sdk.create_key().send().await.unwrap();
        let key = key.key_metadata().unwrap().key_id().to_string();
        c.wait_sees(R, id, &key).await;
        sdk.encrypt()
            .key_id(&key)
            .plaintext(Blob::new(b"x".to_vec()))
            .send()
            .await
            .unwrap();
        keys.push(key);
    }
    let dir = c.data_dir();
    let enc = kmsim(&[
        "audit",
        "--data-dir",
        &dir,
        "--event-name",
        "Encrypt",
        "--brief",
    ]);
    let lines: Vec<&str> = enc.lines().collect();
    assert_eq!(lines.len(), 3, "{enc}");
    for (line, key) in lines.iter().zip(&keys) {
        let time = line.split_whitespace().next().unwrap();
        assert!(
            time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
                .is_ok(),
            "{line}"
        );
        // Fixed width (milliseconds always written), so the columns line up.
        assert_eq!(time.len(), 24, "{line}");
        assert_eq!(&time[19..20], ".", "{line}");
        assert_eq!(line.find("us-east-1"), Some(25), "{enc}");
        assert!(
            line.contains("Encrypt") && line.contains(key.as_str()),
            "{line}"
        );
    }
    // --key-id: that key's CreateKey (Region log) and Encrypt (call log).
    let one = kmsim(&["audit", "--data-dir", &dir, "--key-id", &keys[1]]);
    let records: Vec<Value> = one
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(records.iter().all(|r| r["resources"][0]["ARN"]
        .as_str()
        .unwrap()
        .ends_with(&keys[1])));
    // (wait_sees made DescribeKey calls too.)
    let names: Vec<&str> = records
        .iter()
        .map(|r| r["eventName"].as_str().unwrap())
        .filter(|n| *n != "DescribeKey")
        .collect();
    assert_eq!(names, ["CreateKey", "Encrypt"], "{one}");
    // --since after everything: nothing; --until before everything: nothing; --limit.
    let far = kmsim(&[
        "audit",
        "--data-dir",
        &dir,
        "--since",
        "2999-01-01T00:00:00Z",
    ]);
    assert!(far.is_empty(), "{far}");
    let early = kmsim(&[
        "audit",
        "--data-dir",
        &dir,
        "--until",
        "1971-01-01T00:00:00Z",
    ]);
    assert!(early.is_empty(), "{early}");
    let last = kmsim(&["audit", "--data-dir", &dir, "--limit", "2", "--brief"]);
    assert_eq!(last.lines().count(), 2, "{last}");
    // Paging through the admin API returns each record once.
    let mut admin = c.admin(R, 1);
    let mut after = None;
    let mut seen = Vec::new();
    loop {
        let page = ok(admin
            .list_audit_events(ListAuditEventsRequest {
                node_calls: true,
                after,
                limit: Some(1),
                ..Default::default()
            })
            .await)
        .events;
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        seen.push(last.seq);
    }
    assert!(
        seen.len() >= 2 && seen.windows(2).all(|w| w[0] < w[1]),
        "{seen:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn region_log_retention_is_configurable_and_reported() {
    let c = Cluster::start_edited(&[R], 1, |t| t.audit.region_retention_events = 3);
    c.leader(R).await;
    let sdk = c.sdk(&c.gateway_url(), R);
    let mut keys = Vec::new();
    for _ in 0..5 {
        let k = sdk.create_key().send().await.unwrap();
        keys.push(k.key_metadata().unwrap().key_id().to_string());
    }
    let page = ok(c
        .admin(R, 1)
        .list_audit_events(ListAuditEventsRequest {
            limit: Some(100),
            ..Default::default()
        })
        .await);
    // The newest three CreateKey events are kept, the two oldest are reported as dropped.
    let kept: Vec<&str> = page.events.iter().map(|e| e.key_id.as_str()).collect();
    assert_eq!(
        kept,
        keys[2..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(page.dropped_events, 2);
    let run = std::process::Command::new(crate::harness::kmsim_exe())
        .args([
            "audit",
            "--data-dir",
            &c.data_dir(),
            "--event-name",
            "CreateKey",
        ])
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    let (out, err) = (
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr),
    );
    assert_eq!(out.lines().count(), 3, "{out}");
    assert!(
        err.contains("deleted the oldest 2 events of the Region's log"),
        "{err}"
    );
}
