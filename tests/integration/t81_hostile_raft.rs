//! A hostile peer on the Raft service of a Region (issue 10, "validated at the door"): every
//! attack goes to real node processes through `kmsim.raft.v1` and `kmsim.admin.v1`, is refused
//! with a clear error, commits nothing, and leaves the Region serving with the same leader.

use std::collections::BTreeMap;
use std::time::Duration;

use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use openraft::{SnapshotMeta, StoredMembership, Vote};
use tonic::Code;

use kmsim_core::audit::ApiCall;
use kmsim_core::ids::{KeyId, Region};
use kmsim_core::key::{
    KeyRecord, KeySpec, KeyState, KeyUsage, MaterialInfo, Origin, RegionalMaterial, RegionalProps,
    RotationConfig, RotationType, SharedProps,
};
use kmsim_core::state::{decode_result, encode_command, Command, CommandOutput, RequestId, DAY_MS};
use kmsim_proto::admin::v1::{AdvanceClockRequest, StatusResponse};
use kmsim_proto::kms::v1 as pb;
use kmsim_proto::raft::v1::{ProposeRequest, ProposeResponse, RaftPayload};
use kmsim_store::TypeConfig;

use crate::harness::{ok, wait_for, Cluster};

/// A Raft message as peers encode it into `RaftPayload` (postcard, as `kmsim_node`'s wire
/// module does).
fn wire<T: serde::Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).unwrap()
}

const R: &str = "us-east-1";

/// A Propose as a peer would send it.
async fn propose(
    c: &Cluster,
    id: u64,
    command: Vec<u8>,
    request_id: [u8; 16],
) -> Result<ProposeResponse, tonic::Status> {
    c.raft(R, id)
        .propose(ProposeRequest {
            command,
            hops: 0,
            request_id: request_id.to_vec(),
        })
        .await
        .map(|r| r.into_inner())
}

/// A three-node Region with one key, settled; returns it, its leader, a follower and the key.
async fn region_with_a_key() -> (Cluster, u64, u64, KeyId) {
    let c = Cluster::start(&[R], 3);
    let leader = c.leader(R).await;
    let md = ok(c
        .kms(R, leader)
        .create_key(pb::CreateKeyRequest::default())
        .await)
    .key_metadata
    .unwrap();
    let key_id = KeyId::parse(md.key_id.as_deref().unwrap()).unwrap();
    c.settle(R).await;
    let follower = c.ids(R).into_iter().find(|i| *i != leader).unwrap();
    (c, leader, follower, key_id)
}

async fn status(c: &Cluster, id: u64) -> StatusResponse {
    c.status(R, id).await.expect("the node answers")
}

/// The Region after an attack: the same leader in the same term, no new log entry, and still
/// taking writes and reads.
async fn assert_untouched(c: &Cluster, leader: u64, before: &StatusResponse) {
    let after = status(c, leader).await;
    assert_eq!(after.role, "leader", "the leader kept its role");
    assert_eq!(after.term, before.term, "no new term");
    assert_eq!(
        after.last_log_index, before.last_log_index,
        "nothing was appended to the log"
    );
    assert_eq!(after.key_count, before.key_count);
    assert_eq!(after.clock_offset_ms, before.clock_offset_ms);
    assert_eq!(c.leader(R).await, leader);
    for id in c.ids(R) {
        ok(c.kms(R, id).list_keys(pb::ListKeysRequest::default()).await);
    }
}

fn call(event: &str) -> ApiCall {
    ApiCall {
        event_name: event.into(),
        time_ms: 1,
        request_id: "hostile".into(),
        principal_arn: "arn:aws:iam::111122223333:root".into(),
        access_key_id: None,
        source_ip: None,
        user_agent: None,
        request_parameters: "{}".into(),
        response_elements: None,
    }
}

fn audited(cmd: Command) -> Command {
    Command::Audited {
        call: call("DisableKey"),
        cmd: Box::new(cmd),
    }
}

/// Every command only the leader's own tasks propose, aimed at `key_id`.
fn internal_commands(key_id: &KeyId) -> Vec<Command> {
    let other = Region::parse("eu-west-1").unwrap();
    vec![
        Command::SetClockOffset {
            offset_ms: 400 * DAY_MS,
        },
        Command::DeleteExpiredKey {
            key_id: key_id.clone(),
            now_ms: i64::MAX,
        },
        Command::RotateKey {
            key_id: key_id.clone(),
            kind: RotationType::Automatic,
            info: MaterialInfo {
                version: 1,
                key_material_id: "ab".repeat(32),
                created_ms: 1,
                rotation: None,
            },
            material: RegionalMaterial {
                wrapped: vec![0; 61],
                import: None,
            },
            now_ms: 1,
        },
        Command::DeleteImportedMaterial {
            key_id: key_id.clone(),
            material_id: None,
            expired_at_ms: Some(1),
        },
        Command::SyncAcked {
            key_id: key_id.clone(),
            region: other.clone(),
            stamp: (99, 99),
        },
        Command::ReplicaGone {
            key_id: key_id.clone(),
            region: other.clone(),
            now_ms: 1,
        },
        Command::NoticeDone { seq: 0 },
        Command::NoticeRetarget { seq: 0, to: other },
        Command::PromoteRotation {
            key_id: key_id.clone(),
            version: 1,
            now_ms: 1,
        },
        Command::Deduplicated {
            request_id: RequestId([9; 16]),
            cmd: Box::new(Command::SetEnabled {
                key_id: key_id.clone(),
                enabled: false,
            }),
        },
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn propose_of_each_internal_command_is_refused_and_nothing_is_committed() {
    let (c, leader, follower, key_id) = region_with_a_key().await;
    let before = status(&c, leader).await;
    for cmd in internal_commands(&key_id) {
        for bytes in [encode_command(&cmd), encode_command(&audited(cmd.clone()))] {
            for node in [leader, follower] {
                let e = propose(&c, node, bytes.clone(), [1; 16]).await.unwrap_err();
                assert_eq!(e.code(), Code::PermissionDenied, "{cmd:?}: {e:?}");
                assert!(
                    e.message()
                        .contains("may only be proposed by the leader's own tasks"),
                    "{e:?}"
                );
            }
        }
    }
    assert_untouched(&c, leader, &before).await;
    let d = ok(c
        .kms(R, follower)
        .describe_key(pb::DescribeKeyRequest {
            key_id: Some(key_id.to_string()),
            ..Default::default()
        })
        .await);
    assert_eq!(
        d.key_metadata.unwrap().key_state.as_deref(),
        Some("Enabled"),
        "the key was neither deleted nor touched"
    );
    // The Region still takes writes, forwarded from a follower too.
    ok(c.kms(R, follower)
        .create_key(pb::CreateKeyRequest::default())
        .await);
    c.down();
}

/// `depth` `Audited` wrappers around DisableKey, encoded by hand (postcard: the variant index,
/// the call, then the inner command), so no recursive encoder runs here either.
fn nested_audited(key_id: &KeyId, depth: usize) -> Vec<u8> {
    let inner = encode_command(&Command::SetEnabled {
        key_id: key_id.clone(),
        enabled: false,
    });
    let one = encode_command(&audited(Command::SetEnabled {
        key_id: key_id.clone(),
        enabled: false,
    }));
    let prefix = &one[..one.len() - inner.len()];
    let mut out = prefix.repeat(depth);
    out.extend_from_slice(&inner);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn nested_audited_proposals_are_refused() {
    let (c, leader, follower, key_id) = region_with_a_key().await;
    let before = status(&c, leader).await;
    // Two levels decode but are not a call's shape.
    let e = propose(&c, leader, nested_audited(&key_id, 2), [2; 16])
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("cannot wrap another wrapper"), "{e:?}");
    // Deep enough to overflow a worker's stack if it were decoded recursively (about 60 bytes
    // a level, within the size bound): refused at the nesting bound.
    for node in [leader, follower] {
        let deep = nested_audited(&key_id, 5_000);
        assert!(deep.len() < 512 * 1024);
        let e = propose(&c, node, deep, [3; 16]).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains("nested more than 2 deep"), "{e:?}");
    }
    assert_untouched(&c, leader, &before).await;
    c.down();
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_payloads_are_refused() {
    let (c, leader, follower, key_id) = region_with_a_key().await;
    let before = status(&c, leader).await;
    // A well-formed command above the command bound.
    let big = encode_command(&Command::UpdateKeyDescription {
        key_id: key_id.clone(),
        description: "x".repeat(600 * 1024),
    });
    let e = propose(&c, follower, big, [4; 16]).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("larger than the limit"), "{e:?}");
    // A Raft message above the service's message bound (24 MiB).
    let e = c
        .raft(R, follower)
        .append_entries(RaftPayload {
            data: vec![0; 30 << 20],
        })
        .await
        .unwrap_err();
    assert!(
        matches!(e.code(), Code::OutOfRange | Code::ResourceExhausted),
        "{e:?}"
    );
    assert_untouched(&c, leader, &before).await;
    c.down();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_chunk_at_a_huge_offset_is_refused_and_the_node_lives() {
    let (c, leader, follower, _key_id) = region_with_a_key().await;
    let before = status(&c, leader).await;
    let f = status(&c, follower).await;
    // The chunks claim the real leader's vote, so openraft itself would take them.
    let vote = Vote::<u64>::new_committed(f.term, leader);
    let chunk = |offset: u64, data: Vec<u8>| InstallSnapshotRequest::<TypeConfig> {
        vote,
        meta: SnapshotMeta {
            last_log_id: None,
            last_membership: StoredMembership::default(),
            snapshot_id: "hostile-1".into(),
        },
        offset,
        data,
        done: false,
    };
    let send = |req: InstallSnapshotRequest<TypeConfig>| {
        // Sent with the leader's certificate, as the vote it carries says.
        let mut raft = c.raft_as(R, leader, follower);
        async move {
            raft.install_snapshot(RaftPayload { data: wire(&req) })
                .await
        }
    };
    // The start of a stream is taken (nothing is installed until `done`).
    send(chunk(0, vec![0; 16])).await.unwrap();
    for (offset, what) in [
        (1u64 << 50, "ends beyond the limit"),
        (u64::MAX - 4, "ends beyond the limit"),
        (1 << 20, "leaves a gap"),
    ] {
        let e = send(chunk(offset, vec![1; 8])).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains(what), "{offset}: {e:?}");
    }
    // Same process, still a follower, still serving.
    let after = status(&c, follower).await;
    assert_eq!(after.pid, f.pid, "the node did not restart");
    assert_eq!(after.role, "follower");
    assert_untouched(&c, leader, &before).await;
    c.down();
}

#[tokio::test(flavor = "multi_thread")]
async fn raft_rpcs_from_a_made_up_node_or_for_another_member_are_refused_and_the_leader_stays() {
    let (c, leader, follower, _key_id) = region_with_a_key().await;
    let before = status(&c, leader).await;
    let phantom = 99;
    let vote = Vote::<u64>::new_committed(before.term + 10, phantom);
    let append = AppendEntriesRequest::<TypeConfig> {
        vote,
        prev_log_id: None,
        entries: vec![],
        leader_commit: None,
    };
    for node in [follower, leader] {
        let e = c
            .raft(R, node)
            .append_entries(RaftPayload {
                data: wire(&append),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        assert!(
            e.message()
                .contains("from node 99, which is not a member of this Region"),
            "{e:?}"
        );
        let ballot = VoteRequest::<u64>::new(Vote::new(before.term + 10, phantom), None);
        let e = c
            .raft(R, node)
            .vote(RaftPayload {
                data: wire(&ballot),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    }
    // A member speaking for another member: the follower's certificate, a vote naming the
    // third node (or the leader), at a higher term. Refused before Raft sees it.
    let third = c
        .ids(R)
        .into_iter()
        .find(|i| *i != leader && *i != follower)
        .unwrap();
    for (claimed, to) in [(third, leader), (leader, third)] {
        let append = AppendEntriesRequest::<TypeConfig> {
            vote: Vote::<u64>::new_committed(before.term + 10, claimed),
            prev_log_id: None,
            entries: vec![],
            leader_commit: None,
        };
        let e = c
            .raft_as(R, follower, to)
            .append_entries(RaftPayload {
                data: wire(&append),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        let expected = format!("speaks for node {claimed}, but node aws/{R}/{follower} sent it");
        assert!(e.message().contains(&expected), "{e:?}");
        let ballot = VoteRequest::<u64>::new(Vote::new(before.term + 10, claimed), None);
        let e = c
            .raft_as(R, follower, to)
            .vote(RaftPayload {
                data: wire(&ballot),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        assert!(e.message().contains(&expected), "{e:?}");
    }
    assert_untouched(&c, leader, &before).await;
    c.down();
}

#[tokio::test(flavor = "multi_thread")]
async fn advance_clock_beyond_its_bounds_is_refused() {
    let (c, leader, follower, _key_id) = region_with_a_key().await;
    let before = status(&c, leader).await;
    for millis in [i64::MAX, 11 * 366 * DAY_MS, 0, -DAY_MS] {
        let e = c
            .admin(R, leader)
            .advance_clock(AdvanceClockRequest { millis })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{millis}: {e:?}");
    }
    let e = c
        .admin(R, leader)
        .advance_clock(AdvanceClockRequest { millis: i64::MAX })
        .await
        .unwrap_err();
    assert!(e.message().contains("at most"), "{e:?}");
    // A follower does not take it (the clock is the leader's command) and names the leader.
    let e = c
        .admin(R, follower)
        .advance_clock(AdvanceClockRequest { millis: DAY_MS })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().contains(&format!("node {leader} at")), "{e:?}");
    assert_untouched(&c, leader, &before).await;
    // Ten years in one step is allowed, and lands on every node.
    c.advance_clock(R, 10 * 366 * DAY_MS).await;
    c.down();
}

/// A key record as a proposing node would build it (the material is not real: only its
/// existence is counted here).
fn new_key() -> KeyRecord {
    let key_id = KeyId::single_region_from_bytes(rand::random());
    KeyRecord {
        key_id,
        shared: SharedProps {
            key_spec: KeySpec::SymmetricDefault,
            key_usage: KeyUsage::EncryptDecrypt,
            origin: Origin::AwsKms,
            mrk: None,
            materials: vec![MaterialInfo {
                version: 0,
                key_material_id: "cd".repeat(32),
                created_ms: 1,
                rotation: None,
            }],
            current_version: Some(0),
            public_key: None,
            rotation: RotationConfig::default(),
        },
        regional: RegionalProps {
            creation_ms: 1,
            description: "forwarded twice".into(),
            state: KeyState::Enabled,
            deletion_ms: None,
            pending_window_days: None,
            // A real key policy: the test's DisableKey is authorized by it.
            policy: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#.into(),
            tags: vec![],
            materials: BTreeMap::from([(
                0,
                RegionalMaterial {
                    wrapped: vec![7; 61],
                    import: None,
                },
            )]),
            sync: Default::default(),
        },
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_forward_with_the_same_request_id_creates_one_key() {
    let (c, leader, follower, _key_id) = region_with_a_key().await;
    let keys_before = status(&c, leader).await.key_count;
    let key = new_key();
    let create = encode_command(&Command::CreateKey { key: key.clone() });
    let id: [u8; 16] = rand::random();
    // The first forward (through a follower, which forwards it on) and its retry (straight to
    // the leader, as after a timeout towards a follower that had passed it on).
    let first = propose(&c, follower, create.clone(), id).await.unwrap();
    // Meanwhile the key changes: applied a second time, the same CreateKey would now fail
    // with AlreadyExistsException.
    ok(c.kms(R, leader)
        .disable_key(pb::DisableKeyRequest {
            key_id: Some(key.key_id.to_string()),
        })
        .await);
    let retry = propose(&c, leader, create, id).await.unwrap();
    assert_eq!(
        retry.result, first.result,
        "the retry answers the first result"
    );
    match decode_result(&first.result) {
        Ok(CommandOutput::Key(k)) => assert_eq!(k.key_id, key.key_id),
        other => panic!("unexpected result {other:?}"),
    }
    c.settle(R).await;
    for node in c.ids(R) {
        let st = wait_for(Duration::from_secs(10), "the key on every node", || async {
            c.status(R, node)
                .await
                .filter(|s| s.key_count == keys_before + 1)
        })
        .await;
        assert_eq!(st.key_count, keys_before + 1, "one key, not two");
    }
    // A request ID that is not 16 bytes is refused.
    let e = c
        .raft(R, leader)
        .propose(ProposeRequest {
            command: encode_command(&Command::CreateKey { key: new_key() }),
            hops: 0,
            request_id: vec![1, 2, 3],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    c.down();
}
