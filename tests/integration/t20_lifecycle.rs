//! Key lifecycle on the simulated clock.

use std::time::Duration;

use kmsim_proto::admin::v1::AdvanceClockRequest;
use kmsim_proto::kms::v1 as pb;

use crate::harness::{kms_err, ok, wait_for, Cluster};
use crate::t10_basics::create_key;

const R: &str = "us-east-1";
const DAY_MS: i64 = 86_400_000;

#[tokio::test(flavor = "multi_thread")]
async fn a_key_and_its_aliases_are_deleted_when_the_simulated_window_ends() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let doomed = create_key(&c, 1, "doomed").await.key_id.unwrap();
    let kept = create_key(&c, 2, "kept").await.key_id.unwrap();
    ok(c.kms(R, 2)
        .create_alias(pb::CreateAliasRequest {
            alias_name: Some("alias/doomed".into()),
            target_key_id: Some(doomed.clone()),
        })
        .await);
    ok(c.kms(R, 2)
        .create_alias(pb::CreateAliasRequest {
            alias_name: Some("alias/kept".into()),
            target_key_id: Some(kept.clone()),
        })
        .await);
    let blob = ok(c
        .kms(R, 3)
        .encrypt(pb::EncryptRequest {
            key_id: Some(doomed.clone()),
            plaintext: Some(b"secret".to_vec()),
            ..Default::default()
        })
        .await)
    .ciphertext_blob;

    let s = ok(c
        .kms(R, 3)
        .schedule_key_deletion(pb::ScheduleKeyDeletionRequest {
            key_id: Some(doomed.clone()),
            pending_window_in_days: Some(7),
        })
        .await);
    assert_eq!(s.key_state.as_deref(), Some("PendingDeletion"));
    let arn = s.key_id.clone().unwrap();

    // While pending: crypto refused with the AWS message, describe works, a second schedule is refused.
    let e = kms_err(
        c.kms(R, 1)
            .decrypt(pb::DecryptRequest {
                ciphertext_blob: blob.clone(),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(e.code(), "KMSInvalidStateException");
    assert_eq!(e.message(), format!("{arn} is pending deletion."));
    let e = kms_err(
        c.kms(R, 1)
            .schedule_key_deletion(pb::ScheduleKeyDeletionRequest {
                key_id: Some(doomed.clone()),
                pending_window_in_days: None,
            })
            .await,
    );
    assert_eq!(e.message(), format!("{arn} is pending deletion."));

    // Six days later the key still exists.
    let now0 = c.status(R, 1).await.unwrap().clock_now;
    ok(c.admin(R, c.leader(R).await)
        .advance_clock(AdvanceClockRequest { millis: 6 * DAY_MS })
        .await);
    for id in c.ids(R) {
        let st = wait_for(
            Duration::from_secs(10),
            "clock shift applied on every node",
            || async {
                c.status(R, id)
                    .await
                    .filter(|s| s.clock_offset_ms >= 6 * DAY_MS)
            },
        )
        .await;
        assert!(st.clock_now >= now0 + 6.0 * 86_400.0);
    }
    tokio::time::sleep(Duration::from_millis(600)).await; // three passes of the deletion task
    let d = ok(c
        .kms(R, 1)
        .describe_key(pb::DescribeKeyRequest {
            key_id: Some(doomed.clone()),
            ..Default::default()
        })
        .await);
    assert_eq!(
        d.key_metadata.unwrap().key_state.as_deref(),
        Some("PendingDeletion")
    );

    // One more day and a minute: gone from every node, with its alias; the other key stays.
    ok(c.admin(R, c.leader(R).await)
        .advance_clock(AdvanceClockRequest {
            millis: DAY_MS + 60_000,
        })
        .await);
    for id in c.ids(R) {
        let e = wait_for(Duration::from_secs(15), "key deleted on every node", || {
            let mut client = c.kms(R, id);
            let doomed = doomed.clone();
            async move {
                client
                    .describe_key(pb::DescribeKeyRequest {
                        key_id: Some(doomed),
                        ..Default::default()
                    })
                    .await
                    .err()
            }
        })
        .await;
        let e = kmsim_proto::status::error_from_status(&e);
        assert_eq!(e.code(), "NotFoundException");
        assert_eq!(e.message(), format!("Key '{arn}' does not exist"));
        let aliases = ok(c
            .kms(R, id)
            .list_aliases(pb::ListAliasesRequest::default())
            .await);
        let names: Vec<_> = aliases
            .aliases
            .iter()
            .filter_map(|a| a.alias_name.clone())
            .collect();
        assert_eq!(names, vec!["alias/kept".to_string()]);
        ok(c.kms(R, id)
            .describe_key(pb::DescribeKeyRequest {
                key_id: Some(kept.clone()),
                ..Default::default()
            })
            .await);
    }
    let e = kms_err(
        c.kms(R, 2)
            .decrypt(pb::DecryptRequest {
                ciphertext_blob: blob,
                ..Default::default()
            })
            .await,
    );
    assert_eq!(e.code(), "AccessDeniedException");
}
