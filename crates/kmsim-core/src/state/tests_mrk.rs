//! Multi-Region rules at the state-machine level: two Regions' states, with the messages of
//! the synchronizer carried by hand.

use std::collections::BTreeMap;

use super::tests::{key, regional};
use super::*;
use crate::ids::{AccountId, Partition, Region};
use crate::key::{MaterialInfo, MultiRegion, ReplicaSpec, RotationType};
use crate::sync::{NoticeKind, SyncReply};

fn scope(region: &str) -> Scope {
    Scope {
        partition: Partition::parse("aws").unwrap(),
        region: Region::parse(region).unwrap(),
        account: AccountId::parse("111122223333").unwrap(),
    }
}

fn region(r: &str) -> Region {
    Region::parse(r).unwrap()
}

fn spec() -> ReplicaSpec {
    ReplicaSpec {
        description: "replica".into(),
        policy: "{}".into(),
        tags: vec![],
    }
}

/// A multi-Region primary in us-east-1 and an empty eu-west-1.
fn two_regions() -> (KmsState, KmsState, KeyId) {
    let mut a = KmsState::new(scope("us-east-1"));
    let b = KmsState::new(scope("eu-west-1"));
    let mut k = key(1);
    k.key_id = KeyId::multi_region_from_bytes([1; 16]);
    k.shared.mrk = Some(MultiRegion {
        primary: region("us-east-1"),
        replicas: vec![],
        epoch: 1,
        version: 1,
    });
    let id = k.key_id.clone();
    a.apply(&Command::CreateKey { key: k }).0.unwrap();
    (a, b, id)
}

/// What the synchronizer does for one (key, destination): send the sender's view, apply it
/// there, record the acknowledgement at the sender. Returns the reply.
fn sync(from: &mut KmsState, to: &mut KmsState, id: &KeyId, promote: bool) -> SyncReply {
    let k = from.key(id).unwrap();
    let create = k.regional.sync.creating.get(&to.scope().region).cloned();
    let (r, _) = to.apply(&Command::ApplySync {
        key_id: id.clone(),
        source: from.scope().region.clone(),
        shared: k.shared.clone(),
        materials: k.regional.materials.clone(),
        create,
        promote,
        now_ms: 100,
    });
    let reply = match r.unwrap() {
        CommandOutput::Sync(reply) => reply,
        other => panic!("{other:?}"),
    };
    if let SyncReply::Applied { epoch, version } = reply {
        from.apply(&Command::SyncAcked {
            key_id: id.clone(),
            region: to.scope().region.clone(),
            stamp: (epoch, version),
        })
        .0
        .unwrap();
    }
    reply
}

fn rotate_on_demand(s: &mut KmsState, id: &KeyId) -> CommandResult {
    let version = s.key(id).unwrap().shared.next_version();
    s.apply(&Command::RotateKey {
        key_id: id.clone(),
        kind: RotationType::OnDemand,
        info: MaterialInfo {
            version,
            key_material_id: format!("{version:064x}"),
            created_ms: 50,
            rotation: None,
        },
        material: regional(version as u8),
        now_ms: 50,
    })
    .0
}

#[test]
fn a_replica_is_created_by_sync_and_rotation_waits_for_every_replica() {
    let (mut a, mut b, id) = two_regions();
    a.apply(&Command::ReplicateKey {
        key_id: id.clone(),
        replica: region("eu-west-1"),
        spec: spec(),
    })
    .0
    .unwrap();
    // The same Region again: refused as AWS does.
    let e = a
        .apply(&Command::ReplicateKey {
            key_id: id.clone(),
            replica: region("eu-west-1"),
            spec: spec(),
        })
        .0
        .unwrap_err();
    assert_eq!(e.code(), "AlreadyExistsException");
    assert!(matches!(
        sync(&mut a, &mut b, &id, false),
        SyncReply::Applied { .. }
    ));
    let replica = b.key(&id).unwrap();
    assert_eq!(replica.regional.state, KeyState::Enabled);
    assert_eq!(replica.regional.description, "replica");
    assert!(a.key(&id).unwrap().regional.sync.creating.is_empty());
    // A replica cannot change shared properties.
    let e = rotate_on_demand(&mut b, &id).unwrap_err();
    assert!(
        e.message().ends_with("is not a multi-region primary key."),
        "{e}"
    );

    // Rotation on the primary: the new material is pending until the replica holds it.
    rotate_on_demand(&mut a, &id).unwrap();
    let k = a.key(&id).unwrap();
    assert_eq!(k.shared.current_version, Some(0));
    assert!(k.shared.rotation.on_demand_started_ms.is_some());
    assert_eq!(mrk::rotation_ready(&k, &a.scope().region), None);
    sync(&mut a, &mut b, &id, false);
    assert!(
        b.key(&id).unwrap().regional.materials.contains_key(&1),
        "replica holds v1"
    );
    let k = a.key(&id).unwrap();
    assert_eq!(mrk::rotation_ready(&k, &a.scope().region), Some(1));
    a.apply(&Command::PromoteRotation {
        key_id: id.clone(),
        version: 1,
        now_ms: 60,
    })
    .0
    .unwrap();
    sync(&mut a, &mut b, &id, false);
    assert_eq!(a.key(&id).unwrap().shared.current_version, Some(1));
    assert_eq!(b.key(&id).unwrap().shared.current_version, Some(1));
    assert_eq!(
        a.key(&id).unwrap().shared.rotation.on_demand_started_ms,
        None
    );
    // Every applied sync is audited in the receiving Region.
    let names: Vec<String> = b
        .audit_events(Some(&id), None, 100)
        .into_iter()
        .map(|e| e.event_name)
        .collect();
    assert_eq!(names[0], "CreateKey");
    assert!(
        names
            .iter()
            .filter(|n| *n == "SynchronizeMultiRegionKey")
            .count()
            >= 2,
        "{names:?}"
    );
}

#[test]
fn stale_and_repeated_synchronizations_change_nothing() {
    let (mut a, mut b, id) = two_regions();
    a.apply(&Command::ReplicateKey {
        key_id: id.clone(),
        replica: region("eu-west-1"),
        spec: spec(),
    })
    .0
    .unwrap();
    let old = a.key(&id).unwrap();
    sync(&mut a, &mut b, &id, false);
    a.apply(&Command::SetKeyRotation {
        key_id: id.clone(),
        enabled: true,
        period_days: Some(100),
        now_ms: 0,
    })
    .0
    .unwrap();
    sync(&mut a, &mut b, &id, false);
    let now = b.key(&id).unwrap();
    assert!(now.shared.rotation.enabled);
    // The older message delivered late: ignored, and the answer says what b holds.
    let (r, changes) = b.apply(&Command::ApplySync {
        key_id: id.clone(),
        source: region("us-east-1"),
        shared: old.shared.clone(),
        materials: old.regional.materials.clone(),
        create: None,
        promote: false,
        now_ms: 200,
    });
    assert!(changes.is_empty(), "a stale sync writes nothing");
    let stamp = now.shared.mrk.as_ref().unwrap().stamp();
    assert_eq!(
        r,
        Ok(CommandOutput::Sync(SyncReply::Applied {
            epoch: stamp.0,
            version: stamp.1
        }))
    );
    assert_eq!(b.key(&id).unwrap(), now);
}

#[test]
fn a_hand_over_fences_the_old_primary_before_the_new_one_takes_over() {
    let (mut a, mut b, id) = two_regions();
    a.apply(&Command::ReplicateKey {
        key_id: id.clone(),
        replica: region("eu-west-1"),
        spec: spec(),
    })
    .0
    .unwrap();
    sync(&mut a, &mut b, &id, false);
    a.apply(&Command::BeginHandover {
        key_id: id.clone(),
        to: region("eu-west-1"),
    })
    .0
    .unwrap();
    let old = a.key(&id).unwrap();
    assert_eq!(old.regional.state, KeyState::Updating);
    assert_eq!(
        old.shared.mrk.as_ref().unwrap().primary,
        region("eu-west-1")
    );
    // Fenced: the old primary accepts no shared-property change any more.
    assert!(rotate_on_demand(&mut a, &id).is_err());
    assert!(matches!(
        sync(&mut a, &mut b, &id, true),
        SyncReply::Applied { epoch: 2, .. }
    ));
    assert_eq!(
        b.key(&id).unwrap().shared.mrk.as_ref().unwrap().primary,
        region("eu-west-1")
    );
    // The promotion repeated: idempotent.
    assert!(matches!(
        sync(&mut a, &mut b, &id, true),
        SyncReply::Applied { epoch: 2, .. }
    ));
    a.apply(&Command::EndHandover {
        key_id: id.clone(),
        epoch: 2,
        promoted: true,
    })
    .0
    .unwrap();
    assert_eq!(a.key(&id).unwrap().regional.state, KeyState::Enabled);
    // The new primary is Updating too, until the old one acknowledges the new epoch.
    assert_eq!(b.key(&id).unwrap().regional.state, KeyState::Updating);
    assert!(rotate_on_demand(&mut b, &id).is_err());
    assert!(matches!(
        sync(&mut b, &mut a, &id, false),
        SyncReply::Applied { epoch: 2, .. }
    ));
    assert_eq!(b.key(&id).unwrap().regional.state, KeyState::Enabled);
    assert!(b.key(&id).unwrap().regional.sync.promoted.is_none());
    // The old primary no longer speaks for the set: its synchronizations are refused.
    let stale = a.key(&id).unwrap();
    let (r, changes) = b.apply(&Command::ApplySync {
        key_id: id.clone(),
        source: region("us-east-1"),
        shared: stale.shared.clone(),
        materials: stale.regional.materials.clone(),
        create: None,
        promote: false,
        now_ms: 150,
    });
    assert!(r.is_err() && changes.is_empty(), "{r:?}");
    // The new primary's changes reach the old one, now a replica.
    rotate_on_demand(&mut b, &id).unwrap();
    assert!(matches!(
        sync(&mut b, &mut a, &id, false),
        SyncReply::Applied { .. }
    ));
    assert!(a.key(&id).unwrap().regional.materials.contains_key(&1));
    assert_eq!(
        a.key(&id).unwrap().shared.mrk.as_ref().unwrap().primary,
        region("eu-west-1")
    );
}

#[test]
fn a_new_primary_handed_back_before_its_promotion_was_acknowledged_ends_enabled() {
    // Found by the primary-handover-partition experiment: eu-west-1, just promoted and still
    // `Updating` until us-east-1 acknowledges the new epoch, hands the primary back at once.
    let (mut a, mut b, id) = two_regions();
    a.apply(&Command::ReplicateKey {
        key_id: id.clone(),
        replica: region("eu-west-1"),
        spec: spec(),
    })
    .0
    .unwrap();
    sync(&mut a, &mut b, &id, false);
    let begin = |to: &str| Command::BeginHandover {
        key_id: id.clone(),
        to: region(to),
    };
    let end = |epoch| Command::EndHandover {
        key_id: id.clone(),
        epoch,
        promoted: true,
    };
    a.apply(&begin("eu-west-1")).0.unwrap();
    sync(&mut a, &mut b, &id, true);
    a.apply(&end(2)).0.unwrap();
    assert_eq!(b.key(&id).unwrap().regional.state, KeyState::Updating);
    // Back to us-east-1 before eu-west-1's first synchronization was acknowledged.
    b.apply(&begin("us-east-1")).0.unwrap();
    assert!(matches!(
        sync(&mut b, &mut a, &id, true),
        SyncReply::Applied { epoch: 3, .. }
    ));
    b.apply(&end(3)).0.unwrap();
    let k = b.key(&id).unwrap();
    assert_eq!(k.regional.state, KeyState::Enabled, "not left Updating");
    assert!(k.regional.sync.promoted.is_none() && k.regional.sync.handover.is_none());
    // us-east-1, the primary again, is Updating until eu-west-1 acknowledges epoch 3.
    assert_eq!(a.key(&id).unwrap().regional.state, KeyState::Updating);
    sync(&mut a, &mut b, &id, false);
    assert_eq!(a.key(&id).unwrap().regional.state, KeyState::Enabled);
    assert_eq!(b.key(&id).unwrap().regional.state, KeyState::Enabled);
    // And eu-west-1 can be made the primary again.
    a.apply(&begin("eu-west-1")).0.unwrap();
    assert!(matches!(
        sync(&mut a, &mut b, &id, true),
        SyncReply::Applied { epoch: 4, .. }
    ));
}

#[test]
fn a_refused_promotion_is_fenced_and_the_old_primary_resumes_with_a_newer_epoch() {
    let (mut a, mut b, id) = two_regions();
    a.apply(&Command::ReplicateKey {
        key_id: id.clone(),
        replica: region("eu-west-1"),
        spec: spec(),
    })
    .0
    .unwrap();
    sync(&mut a, &mut b, &id, false);
    b.apply(&Command::SetEnabled {
        key_id: id.clone(),
        enabled: false,
    })
    .0
    .unwrap();
    a.apply(&Command::BeginHandover {
        key_id: id.clone(),
        to: region("eu-west-1"),
    })
    .0
    .unwrap();
    let promote = a.key(&id).unwrap();
    assert!(matches!(
        sync(&mut a, &mut b, &id, true),
        SyncReply::PromotionRefused { .. }
    ));
    a.apply(&Command::EndHandover {
        key_id: id.clone(),
        epoch: 2,
        promoted: false,
    })
    .0
    .unwrap();
    let m = a.key(&id).unwrap().shared.mrk.clone().unwrap();
    assert_eq!((m.primary.as_str(), m.epoch), ("us-east-1", 3));
    // The replica is enabled again and the refused promotion arrives late: still refused.
    b.apply(&Command::SetEnabled {
        key_id: id.clone(),
        enabled: true,
    })
    .0
    .unwrap();
    let (r, _) = b.apply(&Command::ApplySync {
        key_id: id.clone(),
        source: region("us-east-1"),
        shared: promote.shared.clone(),
        materials: BTreeMap::new(),
        create: None,
        promote: true,
        now_ms: 300,
    });
    assert!(matches!(
        r,
        Ok(CommandOutput::Sync(SyncReply::PromotionRefused { .. }))
    ));
    assert_eq!(
        b.key(&id).unwrap().shared.mrk.as_ref().unwrap().primary,
        region("us-east-1")
    );
}

#[test]
fn a_primary_waits_for_its_last_replica_to_be_deleted() {
    let (mut a, mut b, id) = two_regions();
    a.apply(&Command::ReplicateKey {
        key_id: id.clone(),
        replica: region("eu-west-1"),
        spec: spec(),
    })
    .0
    .unwrap();
    sync(&mut a, &mut b, &id, false);
    let schedule = |window_days| Command::ScheduleKeyDeletion {
        key_id: id.clone(),
        window_days,
        now_ms: 0,
    };
    a.apply(&schedule(7)).0.unwrap();
    let k = a.key(&id).unwrap();
    assert_eq!(k.regional.state, KeyState::PendingReplicaDeletion);
    assert_eq!(k.regional.deletion_ms, None);
    assert!(a.expired_keys(i64::MAX).is_empty());
    b.apply(&schedule(7)).0.unwrap();
    b.apply(&Command::DeleteExpiredKey {
        key_id: id.clone(),
        now_ms: 7 * DAY_MS,
    })
    .0
    .unwrap();
    assert!(b.key(&id).is_none());
    let notice = b.outbox().first().cloned().unwrap();
    assert_eq!(
        (notice.to.as_str(), &notice.kind),
        ("us-east-1", &NoticeKind::ReplicaDeleted)
    );
    let (r, _) = a.apply(&Command::ApplyNotice {
        key_id: id.clone(),
        from: region("eu-west-1"),
        kind: NoticeKind::ReplicaDeleted,
        now_ms: 7 * DAY_MS,
    });
    assert_eq!(r, Ok(CommandOutput::Sync(SyncReply::Noted)));
    b.apply(&Command::NoticeDone { seq: notice.seq }).0.unwrap();
    assert_eq!(b.outbox().len(), 0);
    let k = a.key(&id).unwrap();
    assert_eq!(k.regional.state, KeyState::PendingDeletion);
    assert_eq!(k.regional.deletion_ms, Some(14 * DAY_MS));
    assert!(k.shared.mrk.as_ref().unwrap().replicas.is_empty());
    // A notice that reaches a Region that is not primary names the primary it knows.
    let (r, _) = b.apply(&Command::ApplyNotice {
        key_id: id.clone(),
        from: region("ap-southeast-2"),
        kind: NoticeKind::ReplicaDeleted,
        now_ms: 0,
    });
    assert_eq!(
        r,
        Ok(CommandOutput::Sync(SyncReply::Noted)),
        "b has no key any more"
    );
}

/// The bytes of a real synchronization of a multi-Region key with a replica being created.
fn encoded_key_message() -> Vec<u8> {
    let (mut a, _, id) = two_regions();
    a.apply(&Command::ReplicateKey {
        key_id: id.clone(),
        replica: region("eu-west-1"),
        spec: spec(),
    })
    .0
    .unwrap();
    let k = a.key(&id).unwrap();
    crate::sync::encode(&crate::sync::SyncMessage::Key {
        key_id: id.clone(),
        shared: Box::new(k.shared.clone()),
        create: k.regional.sync.creating.get(&region("eu-west-1")).cloned(),
        promote: false,
        origin: Some(crate::sync::ChangeOrigin {
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            committed_unix_ms: 1_700_000_000_000,
        }),
    })
}

/// Every identifier a decoded message carries is well-formed (deserializing parses).
fn identifiers_are_well_formed(m: &crate::sync::SyncMessage) -> bool {
    let region_ok = |r: &Region| Region::parse(r.as_str()).is_ok();
    match m {
        crate::sync::SyncMessage::Key { key_id, shared, .. }
        | crate::sync::SyncMessage::CreateReplica { key_id, shared, .. } => {
            KeyId::parse(key_id.as_str()).is_some()
                && shared
                    .mrk
                    .as_ref()
                    .is_none_or(|m| region_ok(&m.primary) && m.replicas.iter().all(region_ok))
        }
        crate::sync::SyncMessage::Notice { key_id, from, .. } => {
            KeyId::parse(key_id.as_str()).is_some() && region_ok(from)
        }
        crate::sync::SyncMessage::AbandonReplica { key_id }
        | crate::sync::SyncMessage::Authorize { key_id, .. } => {
            KeyId::parse(key_id.as_str()).is_some()
        }
        // Names no key or Region (its ARNs were checked by the home Region that wrote it).
        crate::sync::SyncMessage::Iam { .. } => true,
    }
}

#[test]
fn a_real_key_message_round_trips() {
    let bytes = encoded_key_message();
    let m: crate::sync::SyncMessage = crate::sync::decode(&bytes).unwrap();
    assert!(identifiers_are_well_formed(&m));
    assert_eq!(crate::sync::encode(&m), bytes);
}

#[test]
fn a_message_naming_a_malformed_region_or_key_is_refused() {
    let bytes = encoded_key_message();
    let good: crate::sync::SyncMessage = crate::sync::decode(&bytes).unwrap();
    // The same message with the primary's name changed in place to something that is no
    // Region (same length, so the encoding stays aligned).
    let mut bad = bytes.clone();
    let at = bad
        .windows(9)
        .position(|w| w == b"us-east-1")
        .expect("the primary's name is in the message");
    bad[at..at + 9].copy_from_slice(b"US_EAST_1");
    assert_eq!(crate::sync::decode::<crate::sync::SyncMessage>(&bad), None);
    let mut bad_key = bytes.clone();
    let at = bad_key.windows(4).position(|w| w == b"mrk-").unwrap();
    bad_key[at..at + 4].copy_from_slice(b"MRK-");
    assert_eq!(
        crate::sync::decode::<crate::sync::SyncMessage>(&bad_key),
        None
    );
    assert!(identifiers_are_well_formed(&good));
}

proptest::proptest! {
    /// Bytes from another Region: any input decodes to a well-formed message or to nothing,
    /// never a panic; the same for answers and for the secret bundle's shape.
    #[test]
    fn arbitrary_sync_bytes_decode_to_well_formed_values_or_nothing(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
    ) {
        if let Some(m) = crate::sync::decode::<crate::sync::SyncMessage>(&bytes) {
            proptest::prop_assert!(identifiers_are_well_formed(&m));
        }
        let _ = crate::sync::decode::<SyncReply>(&bytes);
        let _ = crate::sync::decode::<Vec<(u32, Vec<u8>)>>(&bytes);
    }

    /// A real message with bytes changed, cut or appended decodes to a well-formed message or
    /// to nothing.
    #[test]
    fn mutated_key_messages_decode_to_well_formed_values_or_nothing(
        edits in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 1..8),
        cut in proptest::option::of(proptest::prelude::any::<usize>()),
    ) {
        let mut bytes = encoded_key_message();
        for (at, b) in edits {
            let n = bytes.len();
            bytes[at % n] = b;
        }
        if let Some(c) = cut {
            let n = bytes.len();
            bytes.truncate(c % n);
        }
        if let Some(m) = crate::sync::decode::<crate::sync::SyncMessage>(&bytes) {
            proptest::prop_assert!(identifiers_are_well_formed(&m));
        }
    }
}

/// ReplicateKey as the node runs it: the plan, the replica Region's `CreateReplica`, then the
/// primary's commit. Returns the replica Region's answer.
fn replicate_in_request(a: &mut KmsState, b: &mut KmsState, id: &KeyId, now_ms: i64) -> SyncReply {
    let to = b.scope().region.clone();
    let shared = a.replication_plan(id, &to).unwrap();
    let (r, _) = b.apply(&Command::CreateReplica {
        key_id: id.clone(),
        source: a.scope().region.clone(),
        shared: Box::new(shared),
        spec: spec(),
        now_ms,
    });
    let CommandOutput::Sync(reply) = r.unwrap() else {
        panic!("not a sync answer")
    };
    a.apply(&Command::ReplicateKey {
        key_id: id.clone(),
        replica: to,
        spec: spec(),
    })
    .0
    .unwrap();
    reply
}

#[test]
fn a_replica_is_creating_in_its_region_before_the_primary_commits_and_enabled_by_its_first_sync() {
    let (mut a, mut b, id) = two_regions();
    let reply = replicate_in_request(&mut a, &mut b, &id, 77);
    assert_eq!(reply, SyncReply::ReplicaCreating { creation_ms: 77 });
    let r = b.key(&id).unwrap();
    assert_eq!(r.regional.state, KeyState::Creating);
    assert_eq!(r.regional.creation_ms, 77);
    assert!(r.regional.materials.is_empty());
    let m = r.shared.mrk.as_ref().unwrap();
    assert_eq!(m.primary, region("us-east-1"));
    assert_eq!(m.replicas, vec![region("eu-west-1")]);
    // The record's stamp is older than the primary's commit, so the first sync applies.
    assert!(m.stamp() < a.key(&id).unwrap().shared.mrk.as_ref().unwrap().stamp());
    // A retried request is answered with the same record; a second ReplicateKey is refused.
    let shared = a.key(&id).unwrap().shared.clone();
    let again = b.apply(&Command::CreateReplica {
        key_id: id.clone(),
        source: region("us-east-1"),
        shared: Box::new(shared),
        spec: spec(),
        now_ms: 99,
    });
    assert_eq!(
        again.0.unwrap(),
        CommandOutput::Sync(SyncReply::ReplicaCreating { creation_ms: 77 })
    );
    let e = a.replication_plan(&id, &region("eu-west-1")).unwrap_err();
    assert_eq!(e.code(), "AlreadyExistsException");
    // The synchronizer's first delivery brings the material and ends Creating.
    assert!(matches!(
        sync(&mut a, &mut b, &id, false),
        SyncReply::Applied { .. }
    ));
    let r = b.key(&id).unwrap();
    assert_eq!(r.regional.state, KeyState::Enabled);
    assert_eq!(r.regional.creation_ms, 77);
    assert_eq!(r.regional.materials.len(), 1);
    assert!(a.key(&id).unwrap().regional.sync.creating.is_empty());
}

#[test]
fn an_abandoned_replica_goes_only_while_it_is_creating_for_that_primary() {
    let (mut a, mut b, id) = two_regions();
    let shared = a.replication_plan(&id, &region("eu-west-1")).unwrap();
    b.apply(&Command::CreateReplica {
        key_id: id.clone(),
        source: region("us-east-1"),
        shared: Box::new(shared),
        spec: spec(),
        now_ms: 5,
    })
    .0
    .unwrap();
    // Another Region cannot take it back.
    b.apply(&Command::AbandonReplica {
        key_id: id.clone(),
        source: region("ap-southeast-2"),
        now_ms: 6,
    })
    .0
    .unwrap();
    assert!(b.key(&id).is_some());
    let events = b.audit_events(None, None, usize::MAX).len();
    b.apply(&Command::AbandonReplica {
        key_id: id.clone(),
        source: region("us-east-1"),
        now_ms: 7,
    })
    .0
    .unwrap();
    assert!(b.key(&id).is_none());
    assert_eq!(
        b.audit_events(None, None, usize::MAX).len(),
        events + 1,
        "a DeleteKey event"
    );
    // An Enabled replica is never taken back.
    replicate_in_request(&mut a, &mut b, &id, 8);
    sync(&mut a, &mut b, &id, false);
    b.apply(&Command::AbandonReplica {
        key_id: id.clone(),
        source: region("us-east-1"),
        now_ms: 9,
    })
    .0
    .unwrap();
    assert_eq!(b.key(&id).unwrap().regional.state, KeyState::Enabled);
}

/// The replica Region asks the primary about a replica of `id` it holds `Creating`.
fn ask_about_creating(a: &mut KmsState, id: &KeyId) -> SyncReply {
    let (r, _) = a.apply(&Command::ApplyNotice {
        key_id: id.clone(),
        from: region("eu-west-1"),
        kind: crate::sync::NoticeKind::ReplicaCreating,
        now_ms: 50,
    });
    let CommandOutput::Sync(reply) = r.unwrap() else {
        panic!("not a sync answer")
    };
    reply
}

#[test]
fn a_replica_whose_replicate_key_never_committed_on_the_primary_is_found_and_taken_back() {
    let (mut a, mut b, id) = two_regions();
    // The replica Region committed the replica, then the primary's node died before its own
    // commit: the primary does not list it.
    let shared = a.replication_plan(&id, &region("eu-west-1")).unwrap();
    b.apply(&Command::CreateReplica {
        key_id: id.clone(),
        source: region("us-east-1"),
        shared: Box::new(shared),
        spec: spec(),
        now_ms: 5,
    })
    .0
    .unwrap();
    // The synchronizer of the replica Region sees it (a sync key while Creating).
    assert!(b.sync_keys().iter().any(|k| k.key_id == id));
    assert_eq!(ask_about_creating(&mut a, &id), SyncReply::UnknownKey);
    b.apply(&Command::AbandonReplica {
        key_id: id.clone(),
        source: region("us-east-1"),
        now_ms: 6,
    })
    .0
    .unwrap();
    assert!(b.key(&id).is_none());
    assert!(!b.sync_keys().iter().any(|k| k.key_id == id));
    // Had the primary committed after all, its synchronization creates the replica again.
    a.apply(&Command::ReplicateKey {
        key_id: id.clone(),
        replica: region("eu-west-1"),
        spec: spec(),
    })
    .0
    .unwrap();
    assert_eq!(ask_about_creating(&mut a, &id), SyncReply::Noted);
    sync(&mut a, &mut b, &id, false);
    assert_eq!(b.key(&id).unwrap().regional.state, KeyState::Enabled);
    // A key the primary no longer has at all: unknown too.
    let gone = KeyId::parse("mrk-00000000000000000000000000000000").unwrap();
    assert_eq!(ask_about_creating(&mut a, &gone), SyncReply::UnknownKey);
}

#[test]
fn a_replica_request_that_does_not_name_the_destination_or_its_sender_is_refused() {
    let (a, mut b, id) = two_regions();
    let mut shared = a.key(&id).unwrap().shared.clone();
    // Not listing eu-west-1 among the replicas.
    let e = b
        .apply(&Command::CreateReplica {
            key_id: id.clone(),
            source: region("us-east-1"),
            shared: Box::new(shared.clone()),
            spec: spec(),
            now_ms: 1,
        })
        .0
        .unwrap_err();
    assert_eq!(e.code(), "ValidationException");
    // Sent by a Region that is not the primary it names.
    shared.mrk.as_mut().unwrap().replicas = vec![region("eu-west-1")];
    let e = b
        .apply(&Command::CreateReplica {
            key_id: id.clone(),
            source: region("ap-southeast-2"),
            shared: Box::new(shared),
            spec: spec(),
            now_ms: 1,
        })
        .0
        .unwrap_err();
    assert_eq!(e.code(), "ValidationException");
    assert!(b.key(&id).is_none());
}

#[test]
fn a_synchronization_cannot_change_the_material_of_a_version_the_region_holds() {
    let (mut a, mut b, id) = two_regions();
    a.apply(&Command::ReplicateKey {
        key_id: id.clone(),
        replica: region("eu-west-1"),
        spec: spec(),
    })
    .0
    .unwrap();
    sync(&mut a, &mut b, &id, false);
    let held = b.key(&id).unwrap();
    // The primary's view with version 0 described as other material, at a newer stamp, with a
    // copy of that other material: refused whole, nothing written.
    let mut planted = a.key(&id).unwrap().shared.clone();
    planted.materials[0].key_material_id = format!("{:064x}", 0xbad);
    planted.mrk.as_mut().unwrap().version += 10;
    for promote in [false, true] {
        let (r, changes) = b.apply(&Command::ApplySync {
            key_id: id.clone(),
            source: region("us-east-1"),
            shared: planted.clone(),
            materials: [(0, regional(99))].into(),
            create: None,
            promote,
            now_ms: 300,
        });
        assert!(
            matches!(&r, Err(KmsError::Validation(m)) if m.contains("material version 0")),
            "{r:?}"
        );
        assert!(changes.is_empty());
        assert_eq!(b.key(&id).unwrap(), held);
    }
    // An EXTERNAL set may describe a version anew (pending imported material deleted, other
    // material imported under the same number): the Region's own copy of it is dropped.
    let mut external = KeyRecord::clone(&b.key(&id).unwrap());
    external.shared.origin = crate::key::Origin::External;
    let mut renamed = external.shared.clone();
    renamed.materials[0].key_material_id = format!("{:064x}", 0xface);
    mrk::merge_shared(&mut external, &renamed, &BTreeMap::new());
    assert!(external.regional.materials.is_empty());
    assert_eq!(external.shared, renamed);
}

#[test]
fn a_replica_into_a_region_at_its_key_quota_is_refused_and_the_primary_is_untouched() {
    let (mut a, b, id) = two_regions();
    let quotas = ResourceQuotas {
        keys_per_region: 1,
        ..ResourceQuotas::default()
    };
    let mut b = b.with_resource_quotas(quotas);
    // eu-west-1 already holds one key of its own: its quota of 1 is used up.
    b.apply(&Command::CreateKey { key: key(7) }).0.unwrap();
    let refused = b.replica_slot(&id, &region("us-east-1")).unwrap_err();
    assert_eq!(refused.code(), "LimitExceededException");
    assert_eq!(
        refused.message(),
        "Key quota for this account in this region is 1 but the current usage is 1."
    );
    // Apply checks it too (the dry run and the commit may be apart).
    let shared = a.replication_plan(&id, &region("eu-west-1")).unwrap();
    let (r, changes) = b.apply(&Command::CreateReplica {
        key_id: id.clone(),
        source: region("us-east-1"),
        shared: Box::new(shared),
        spec: spec(),
        now_ms: 5,
    });
    assert_eq!(r.unwrap_err().code(), "LimitExceededException");
    assert!(changes
        .iter()
        .all(|c| !format!("{c:?}").contains("key/mrk-")));
    assert!(b.key(&id).is_none());
    assert_eq!(b.key_count(), 1);
    // The primary's Region has its own quota: untouched, the set still has no replica.
    let primary = a.key(&id).unwrap();
    assert!(primary.shared.mrk.as_ref().unwrap().replicas.is_empty());
    a.apply(&Command::CreateKey { key: key(8) }).0.unwrap();
    assert_eq!(a.key_count(), 2);
}
