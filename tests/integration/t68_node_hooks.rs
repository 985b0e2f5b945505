//! The chaos faults that live in the nodes (`kmsim chaos inject | sync | clock`): injected API
//! errors and delays, a paused synchronizer, a Region's clock jumped or skewed — each through
//! the real CLI against a live cluster, observed with real clients.

use std::time::{Duration, Instant};

use kmsim_proto::kms::v1 as pb;
use serde_json::json;

use crate::harness::{kms_err, kmsim_fails, ok, wait_for, Cluster};
use crate::t70_multi_region::{create_mrk, replicate, A, B};
use crate::t71_multi_region_faults::chaos;

const DAY_MS: i64 = 86_400_000;

async fn key_count(c: &Cluster, region: &str) -> u64 {
    c.status(region, 1).await.expect("node answers").key_count
}

#[tokio::test(flavor = "multi_thread")]
async fn injected_errors_hit_their_share_of_calls_and_an_injected_create_key_commits_nothing() {
    let c = Cluster::start(&[A], 3);
    c.leader(A).await;
    let key = new_key(&c, A).await;

    // An operation the one list does not know is refused, naming it.
    let refused = kmsim_fails(&[
        "chaos",
        "inject",
        "--region",
        A,
        "--operation",
        "Frobnicate",
        "--error",
        "ThrottlingException",
        "--percent",
        "30",
        "--data-dir",
        &c.data_dir(),
    ]);
    assert!(
        refused.contains("'Frobnicate' is not a KMS operation"),
        "{refused}"
    );

    // 30 % of Encrypts throttled, on both faces; other operations untouched.
    chaos(
        &c,
        &[
            "inject",
            "--region",
            A,
            "--operation",
            "Encrypt",
            "--error",
            "ThrottlingException",
            "--percent",
            "30",
        ],
    );
    let shown = chaos(&c, &["show"]);
    assert!(
        shown.contains("inject ThrottlingException on 30% of Encrypt"),
        "{shown}"
    );
    let calls = 400;
    let mut throttled = 0;
    for i in 0..calls {
        let r = c
            .kms(A, 1 + (i % 3) as u64)
            .encrypt(pb::EncryptRequest {
                key_id: Some(key.clone()),
                plaintext: Some(b"hooks".to_vec()),
                ..Default::default()
            })
            .await;
        if r.is_err() {
            let e = kms_err(r);
            assert_eq!(e.code(), "ThrottlingException");
            assert_eq!(e.to_string(), "ThrottlingException: Rate exceeded");
            throttled += 1;
        }
    }
    // Binomial(400, 0.3): mean 120, standard deviation 9.2; the bounds are beyond 5 of them.
    assert!(
        (72..=168).contains(&throttled),
        "{throttled} of {calls} Encrypts throttled, about 120 expected"
    );
    let json = c.raw(&c.gateway_url(), A);
    let mut json_throttled = 0;
    for _ in 0..100 {
        let a = json
            .call("Encrypt", &json!({"KeyId": key, "Plaintext": "aG9va3M="}))
            .await
            .unwrap();
        if let Some(code) = a.error_code() {
            assert_eq!(code, "ThrottlingException");
            assert_eq!(a.status.as_u16(), 400);
            assert_eq!(a.error_message(), "Rate exceeded");
            json_throttled += 1;
        }
        let d = json
            .call("DescribeKey", &json!({"KeyId": key}))
            .await
            .unwrap();
        assert_eq!(d.error_code(), None, "DescribeKey is not injected");
    }
    assert!(
        (10..=55).contains(&json_throttled),
        "{json_throttled} of 100 JSON Encrypts throttled, about 30 expected"
    );

    // Every CreateKey answered KMSInternalException: nothing is committed.
    chaos(
        &c,
        &[
            "inject",
            "--region",
            A,
            "--operation",
            "CreateKey",
            "--error",
            "KMSInternalException",
            "--percent",
            "100",
        ],
    );
    let before = key_count(&c, A).await;
    for id in c.ids(A) {
        let e = kms_err(
            c.kms(A, id)
                .create_key(pb::CreateKeyRequest::default())
                .await,
        );
        assert_eq!(e.code(), "KMSInternalException");
    }
    let a = json.call("CreateKey", &json!({})).await.unwrap();
    assert_eq!(a.error_code().as_deref(), Some("KMSInternalException"));
    assert_eq!(a.status.as_u16(), 500);
    c.settle(A).await;
    for id in c.ids(A) {
        assert_eq!(
            c.status(A, id).await.unwrap().key_count,
            before,
            "an injected CreateKey committed a key on {id}"
        );
    }
    let listed = ok(c.kms(A, 1).list_keys(pb::ListKeysRequest::default()).await).keys;
    assert_eq!(listed.len() as u64, before);

    // A delay on DescribeKey; then --clear removes every rule.
    chaos(
        &c,
        &[
            "inject",
            "--region",
            A,
            "--operation",
            "DescribeKey",
            "--delay",
            "300ms",
        ],
    );
    let start = Instant::now();
    c.describe(A, 1, &key).await;
    assert!(start.elapsed() >= Duration::from_millis(300));
    chaos(&c, &["inject", "--clear"]);
    ok(c.kms(A, 1)
        .create_key(pb::CreateKeyRequest::default())
        .await);
    let start = Instant::now();
    c.describe(A, 1, &key).await;
    assert!(start.elapsed() < Duration::from_millis(300));
    assert!(!chaos(&c, &["show"]).contains("inject"));
}

async fn rotations(c: &Cluster, region: &str, key: &str) -> usize {
    ok(c.kms(region, 1)
        .list_key_rotations(pb::ListKeyRotationsRequest {
            key_id: Some(key.into()),
            ..Default::default()
        })
        .await)
    .rotations
    .len()
}

async fn rotate(c: &Cluster, key: &str) {
    ok(c.kms(A, 1)
        .rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
            key_id: Some(key.into()),
        })
        .await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_paused_synchronizer_holds_a_rotation_until_it_resumes() {
    let c = Cluster::start(&[A, B], 3);
    c.leader(A).await;
    c.leader(B).await;
    let key = create_mrk(&c, A, None).await.key_id.unwrap();
    replicate(&c, &key, A, B, "Enabled").await;

    // The sending Region paused: the rotation waits in its state.
    chaos(&c, &["sync", "pause", "--region", A]);
    assert!(chaos(&c, &["show"]).contains("us-east-1/1: synchronizer PAUSED"));
    rotate(&c, &key).await;
    // (A fixed wait: what is checked is that nothing arrives; the synchronizer's passes run
    // every 100 ms and its retries within 2 s.)
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        rotations(&c, B, &key).await,
        0,
        "crossed a paused synchronizer"
    );
    chaos(&c, &["sync", "resume", "--region", A]);
    wait_for(
        Duration::from_secs(30),
        "the rotation delivered",
        || async { (rotations(&c, B, &key).await == 1).then_some(()) },
    )
    .await;

    // The receiving Region paused: it refuses deliveries until it resumes.
    chaos(&c, &["sync", "pause", "--region", B]);
    rotate(&c, &key).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        rotations(&c, B, &key).await,
        1,
        "a paused Region accepted a delivery"
    );
    chaos(&c, &["heal"]);
    assert!(!chaos(&c, &["show"]).contains("PAUSED"), "heal resumes");
    wait_for(
        Duration::from_secs(30),
        "the second rotation delivered",
        || async { (rotations(&c, B, &key).await == 2).then_some(()) },
    )
    .await;
}

async fn schedule(c: &Cluster, region: &str, key: &str) {
    let r = ok(c
        .kms(region, 1)
        .schedule_key_deletion(pb::ScheduleKeyDeletionRequest {
            key_id: Some(key.into()),
            pending_window_in_days: Some(7),
        })
        .await);
    assert_eq!(r.key_state.as_deref(), Some("PendingDeletion"));
}

async fn new_key(c: &Cluster, region: &str) -> String {
    let key = ok(c
        .kms(region, 1)
        .create_key(pb::CreateKeyRequest::default())
        .await)
    .key_metadata
    .unwrap()
    .key_id
    .unwrap();
    for id in c.ids(region) {
        c.wait_sees(region, id, &key).await;
    }
    key
}

async fn wait_gone(c: &Cluster, region: &str, key: &str, what: &str) {
    wait_for(Duration::from_secs(30), what, || async {
        let r = c
            .kms(region, 1)
            .describe_key(pb::DescribeKeyRequest {
                key_id: Some(key.into()),
                ..Default::default()
            })
            .await;
        r.is_err().then(|| kms_err(r).code().to_string())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_with_a_seven_day_window_is_deleted_after_an_eight_day_jump_not_before() {
    let c = Cluster::start(&[A, B], 1);
    c.leader(A).await;
    c.leader(B).await;
    let key = new_key(&c, A).await;
    schedule(&c, A, &key).await;

    // Six days: still pending (the lifecycle task looks every 200 ms).
    let out = chaos(&c, &["clock", "--region", A, "--jump", "6d"]);
    assert!(
        out.contains("moved the clock of us-east-1 forward"),
        "{out}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        c.describe(A, 1, &key).await.key_state.as_deref(),
        Some("PendingDeletion")
    );
    // Two more (eight in all): deleted.
    chaos(&c, &["clock", "--region", A, "--jump", "2d"]);
    wait_gone(&c, A, &key, "the key deleted after 8 days").await;
    assert!(c.status(A, 1).await.unwrap().clock_offset_ms >= 8 * DAY_MS);
    assert_eq!(
        c.status(B, 1).await.unwrap().clock_offset_ms,
        0,
        "one Region's clock moved"
    );

    // A skew: B's key goes, A's (whose clock the skew does not touch) stays pending; once the
    // skew is taken back B reads its Region's time again.
    let a_key = new_key(&c, A).await;
    let b_key = new_key(&c, B).await;
    schedule(&c, A, &a_key).await;
    schedule(&c, B, &b_key).await;
    let refused = kmsim_fails(&[
        "chaos",
        "clock",
        "--region",
        B,
        "--skew",
        "4000d",
        "--data-dir",
        &c.data_dir(),
    ]);
    assert!(refused.contains("beyond ten years"), "{refused}");
    chaos(&c, &["clock", "--region", B, "--skew", "8d"]);
    let s = c.status(B, 1).await.unwrap();
    assert!(s.clock_skew_ms >= 8 * DAY_MS - 1000, "{}", s.clock_skew_ms);
    wait_gone(&c, B, &b_key, "the key deleted by the skewed clock").await;
    // A skewed node still takes requests signed with the host's time (SigV4 accepts either).
    let a = c
        .raw(&c.gateway_url(), B)
        .call("ListKeys", &json!({}))
        .await
        .unwrap();
    assert_eq!(a.error_code(), None, "{}", a.error_message());
    assert_eq!(
        c.describe(A, 1, &a_key).await.key_state.as_deref(),
        Some("PendingDeletion"),
        "deleted early in a Region whose clock did not move"
    );
    chaos(&c, &["clock", "--region", B, "--clear"]);
    let s = c.status(B, 1).await.unwrap();
    assert_eq!(s.clock_skew_ms, 0);
    let host = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (s.clock_now - host).abs() < 60.0,
        "B reads its Region's time again"
    );
    // A negative skew goes back in time, and heal takes it back too.
    chaos(&c, &["clock", "--region", B, "--skew", "-2h"]);
    assert!(c.status(B, 1).await.unwrap().clock_skew_ms <= -2 * 3_600_000 + 1000);
    chaos(&c, &["heal"]);
    assert_eq!(c.status(B, 1).await.unwrap().clock_skew_ms, 0);
}
