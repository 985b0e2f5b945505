//! Tests of the Region state: determinism, persistence round trips and invariants.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::records::MemSource;
use super::*;
use crate::grant::GrantRecord;
use crate::ids::{AccountId, Partition, Region};
use crate::key::{
    GrantOperation, ImportType, KeySpec, KeyUsage, MaterialInfo, Origin, RegionalMaterial,
    RegionalProps, RotationConfig, RotationType, SharedProps, Tag,
};

fn scope() -> Scope {
    Scope {
        partition: Partition::parse("aws").unwrap(),
        region: Region::parse("us-east-1").unwrap(),
        account: AccountId::parse("111122223333").unwrap(),
    }
}

pub(super) fn key(n: u8) -> KeyRecord {
    KeyRecord {
        key_id: KeyId::single_region_from_bytes([n; 16]),
        shared: SharedProps {
            key_spec: KeySpec::SymmetricDefault,
            key_usage: KeyUsage::EncryptDecrypt,
            origin: Origin::AwsKms,
            mrk: None,
            materials: vec![MaterialInfo {
                version: 0,
                key_material_id: "ab".repeat(32),
                created_ms: 1,
                rotation: None,
            }],
            current_version: Some(0),
            public_key: None,
            rotation: RotationConfig::default(),
        },
        regional: RegionalProps {
            creation_ms: 1,
            description: String::new(),
            state: KeyState::Enabled,
            deletion_ms: None,
            pending_window_days: None,
            policy: "{}".into(),
            tags: vec![],
            materials: BTreeMap::from([(
                0,
                RegionalMaterial {
                    wrapped: vec![n; 61],
                    import: None,
                },
            )]),
            sync: Default::default(),
        },
    }
}

/// True when the store holds nothing but the audit log and the counters.
fn only_log_records(store: &BTreeMap<Vec<u8>, Vec<u8>>) -> bool {
    store
        .keys()
        .all(|k| k.starts_with(b"audit/") || k.starts_with(b"meta/"))
}

/// A state opened over `source` (what a node does at start-up); writes the records its
/// opening asks for.
pub(super) fn opened(source: &Arc<MemSource>) -> KmsState {
    let mut s = KmsState::new(scope());
    let upgrade = s.open(source.clone()).unwrap();
    source.write(&upgrade);
    s.persisted();
    s
}

/// What every reader of a state answers, to compare two states.
fn answers(s: &KmsState) -> impl PartialEq + std::fmt::Debug {
    let far = i64::MAX - 1;
    (
        s.list_keys(None, usize::MAX - 1).0,
        s.list_aliases(None, None, usize::MAX - 1).0,
        s.keys_by_state().clone(),
        s.clock_offset_ms(),
        s.outbox(),
        s.audit_events(None, None, usize::MAX),
        (
            s.expired_keys(far),
            s.due_rotations(far),
            s.expired_imports(far),
        ),
        s.sync_keys(),
        s.audit_dropped(),
        s.remembered_requests(),
        s.iam().cloned(),
    )
}

/// Applies `cmd` to `s` and checks the persisted changes rebuild exactly the same state.
fn apply_and_check(
    s: &mut KmsState,
    store: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    cmd: &Command,
) -> CommandResult {
    let (r, changes) = s.apply(cmd);
    let source = MemSource::with(std::mem::take(store));
    source.write(&changes);
    *store = source.records();
    // The changes reported are exactly the records the state holds.
    assert_eq!(&s.records.all(), store);
    // A state opened over them answers the same.
    assert_eq!(answers(&opened(&source)), answers(s));
    // Indexes built from the keys and aliases alone equal those kept command by command.
    let bare: BTreeMap<Vec<u8>, Vec<u8>> = store
        .iter()
        .filter(|(k, _)| !k.starts_with(b"idx/") && !k.starts_with(KEY_STATES_KEY))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let rebuilt = MemSource::with(bare);
    opened(&rebuilt);
    let mut expected = store.clone();
    expected.insert(SCHEMA_KEY.to_vec(), postcard::to_allocvec(&SCHEMA).unwrap());
    expected
        .entry(KEY_STATES_KEY.to_vec())
        .or_insert_with(|| postcard::to_allocvec(&BTreeMap::<KeyState, u64>::new()).unwrap());
    assert_eq!(rebuilt.records(), expected);
    r
}

#[test]
fn deletion_lifecycle() {
    let mut s = KmsState::new(scope());
    let mut store = BTreeMap::new();
    let k = key(1);
    let id = k.key_id.clone();
    apply_and_check(&mut s, &mut store, &Command::CreateKey { key: k.clone() }).unwrap();
    // Replaying the identical command is harmless; a different key with the same id is not.
    apply_and_check(&mut s, &mut store, &Command::CreateKey { key: k.clone() }).unwrap();
    let mut other = k.clone();
    other.regional.description = "x".into();
    assert_eq!(
        apply_and_check(&mut s, &mut store, &Command::CreateKey { key: other })
            .unwrap_err()
            .code(),
        "AlreadyExistsException"
    );

    let alias = AliasName::parse("alias/a").unwrap();
    apply_and_check(
        &mut s,
        &mut store,
        &Command::CreateAlias {
            name: alias.clone(),
            target: id.clone(),
            now_ms: 5,
        },
    )
    .unwrap();
    apply_and_check(
        &mut s,
        &mut store,
        &Command::ScheduleKeyDeletion {
            key_id: id.clone(),
            window_days: 7,
            now_ms: 10,
        },
    )
    .unwrap();
    assert_eq!(s.expired_keys(10 + 7 * DAY_MS - 1), vec![]);
    assert_eq!(s.expired_keys(10 + 7 * DAY_MS), vec![id.clone()]);
    // Too early: nothing happens.
    apply_and_check(
        &mut s,
        &mut store,
        &Command::DeleteExpiredKey {
            key_id: id.clone(),
            now_ms: 11,
        },
    )
    .unwrap();
    assert!(s.key(&id).is_some());
    apply_and_check(
        &mut s,
        &mut store,
        &Command::DeleteExpiredKey {
            key_id: id.clone(),
            now_ms: 10 + 7 * DAY_MS,
        },
    )
    .unwrap();
    assert!(s.key(&id).is_none());
    assert!(s.list_aliases(None, None, 10).0.is_empty());
    assert!(only_log_records(&store), "{:?}", store.keys());
}

#[test]
fn cancel_gives_disabled_and_clock_never_goes_back() {
    let mut s = KmsState::new(scope());
    let mut store = BTreeMap::new();
    let k = key(2);
    let id = k.key_id.clone();
    apply_and_check(&mut s, &mut store, &Command::CreateKey { key: k }).unwrap();
    let e = apply_and_check(
        &mut s,
        &mut store,
        &Command::CancelKeyDeletion { key_id: id.clone() },
    )
    .unwrap_err();
    assert_eq!(e.code(), "KMSInvalidStateException");
    apply_and_check(
        &mut s,
        &mut store,
        &Command::ScheduleKeyDeletion {
            key_id: id.clone(),
            window_days: 30,
            now_ms: 0,
        },
    )
    .unwrap();
    match apply_and_check(
        &mut s,
        &mut store,
        &Command::CancelKeyDeletion { key_id: id.clone() },
    )
    .unwrap()
    {
        CommandOutput::Key(k) => {
            assert_eq!(k.regional.state, KeyState::Disabled);
            assert_eq!(k.regional.deletion_ms, None);
        }
        other => panic!("{other:?}"),
    }
    apply_and_check(
        &mut s,
        &mut store,
        &Command::SetClockOffset { offset_ms: 100 },
    )
    .unwrap();
    apply_and_check(
        &mut s,
        &mut store,
        &Command::SetClockOffset { offset_ms: 50 },
    )
    .unwrap();
    assert_eq!(s.clock_offset_ms(), 100);
}

fn external_key(n: u8) -> KeyRecord {
    let mut k = key(n);
    k.shared.origin = Origin::External;
    k.shared.materials.clear();
    k.shared.current_version = None;
    k.regional.materials.clear();
    k.regional.state = KeyState::PendingImport;
    k
}

pub(super) fn regional(byte: u8) -> RegionalMaterial {
    RegionalMaterial {
        wrapped: vec![byte; 61],
        import: None,
    }
}

fn import(key_id: &KeyId, commitment: &str, version: u32, t: Option<ImportType>) -> Command {
    Command::ImportKeyMaterial {
        key_id: key_id.clone(),
        import_type: t,
        requested_material_id: None,
        commitment: commitment.to_string(),
        version,
        public_key: None,
        material: regional(9),
        now_ms: 5,
    }
}

fn output_key(r: CommandResult) -> KeyRecord {
    match r {
        Ok(CommandOutput::Key(k)) => *k,
        other => panic!("expected a key, got {other:?}"),
    }
}

#[test]
fn automatic_rotation_fires_only_when_due_and_keeps_old_versions() {
    let mut s = KmsState::new(scope());
    let mut store = BTreeMap::new();
    let k = key(4);
    let id = k.key_id.clone();
    apply_and_check(&mut s, &mut store, &Command::CreateKey { key: k }).unwrap();
    apply_and_check(
        &mut s,
        &mut store,
        &Command::SetKeyRotation {
            key_id: id.clone(),
            enabled: true,
            period_days: Some(90),
            now_ms: 0,
        },
    )
    .unwrap();
    assert_eq!(s.due_rotations(90 * DAY_MS - 1), vec![]);
    assert_eq!(s.due_rotations(90 * DAY_MS), vec![(id.clone(), 1)]);
    let rotate = |now_ms: i64, version: u32| Command::RotateKey {
        key_id: id.clone(),
        kind: RotationType::Automatic,
        info: MaterialInfo {
            version,
            key_material_id: format!("{version:064x}"),
            created_ms: now_ms,
            rotation: None,
        },
        material: regional(version as u8),
        now_ms,
    };
    // Too early: a stale proposal changes nothing.
    apply_and_check(&mut s, &mut store, &rotate(DAY_MS, 1)).unwrap();
    assert_eq!(s.key(&id).unwrap().shared.current_version, Some(0));
    apply_and_check(&mut s, &mut store, &rotate(90 * DAY_MS, 1)).unwrap();
    // The same proposal applied twice (a retry): still one rotation.
    apply_and_check(&mut s, &mut store, &rotate(90 * DAY_MS, 1)).unwrap();
    let k = s.key(&id).unwrap();
    assert_eq!(k.shared.current_version, Some(1));
    assert_eq!(k.shared.materials.len(), 2);
    assert!(
        k.regional.materials.contains_key(&0),
        "old material is kept"
    );
    assert_eq!(
        k.shared.materials[1].rotation.map(|r| r.kind),
        Some(RotationType::Automatic)
    );
    assert_eq!(k.shared.rotation.next_rotation_ms, Some(180 * DAY_MS));
}

#[test]
fn on_demand_rotation_has_a_limit_and_conflicts_with_a_near_automatic_one() {
    let mut s = KmsState::new(scope());
    let mut store = BTreeMap::new();
    let k = key(5);
    let id = k.key_id.clone();
    apply_and_check(&mut s, &mut store, &Command::CreateKey { key: k }).unwrap();
    let on_demand = |s: &KmsState, now_ms: i64| {
        let version = s.key(&id).unwrap().shared.next_version();
        Command::RotateKey {
            key_id: id.clone(),
            kind: RotationType::OnDemand,
            info: MaterialInfo {
                version,
                key_material_id: format!("{version:064x}"),
                created_ms: now_ms,
                rotation: None,
            },
            material: regional(1),
            now_ms,
        }
    };
    for _ in 0..crate::key::MAX_ON_DEMAND_ROTATIONS {
        let c = on_demand(&s, 10);
        apply_and_check(&mut s, &mut store, &c).unwrap();
    }
    let c = on_demand(&s, 10);
    let e = apply_and_check(&mut s, &mut store, &c).unwrap_err();
    assert_eq!(e.code(), "LimitExceededException");
    assert!(e.message().ends_with(&s.arn(&id)), "{e}");

    let k2 = key(6);
    let id2 = k2.key_id.clone();
    apply_and_check(&mut s, &mut store, &Command::CreateKey { key: k2 }).unwrap();
    apply_and_check(
        &mut s,
        &mut store,
        &Command::SetKeyRotation {
            key_id: id2.clone(),
            enabled: true,
            period_days: None,
            now_ms: 0,
        },
    )
    .unwrap();
    let near = 365 * DAY_MS - 60_000;
    let cmd = Command::RotateKey {
        key_id: id2.clone(),
        kind: RotationType::OnDemand,
        info: MaterialInfo {
            version: 1,
            key_material_id: "cd".repeat(32),
            created_ms: near,
            rotation: None,
        },
        material: regional(2),
        now_ms: near,
    };
    assert_eq!(
        apply_and_check(&mut s, &mut store, &cmd)
            .unwrap_err()
            .code(),
        "ConflictException"
    );
    // A stale version number is refused rather than silently overwriting.
    let mut stale = cmd.clone();
    if let Command::RotateKey { info, now_ms, .. } = &mut stale {
        info.version = 0;
        *now_ms = 10;
    }
    assert_eq!(
        apply_and_check(&mut s, &mut store, &stale)
            .unwrap_err()
            .code(),
        "ConflictException"
    );
}

#[test]
fn imported_material_lifecycle() {
    let mut s = KmsState::new(scope());
    let mut store = BTreeMap::new();
    let k = external_key(7);
    let id = k.key_id.clone();
    apply_and_check(&mut s, &mut store, &Command::CreateKey { key: k }).unwrap();
    let a = "aa".repeat(32);
    let b = "bb".repeat(32);
    // Wrong version prediction: refused.
    assert_eq!(
        apply_and_check(&mut s, &mut store, &import(&id, &a, 3, None))
            .unwrap_err()
            .code(),
        "ConflictException"
    );
    let k = output_key(apply_and_check(
        &mut s,
        &mut store,
        &import(&id, &a, 0, None),
    ));
    assert_eq!(k.regional.state, KeyState::Enabled);
    assert_eq!(k.shared.current_version, Some(0));
    // Other material as EXISTING: refused with AWS's exception.
    let e = apply_and_check(&mut s, &mut store, &import(&id, &b, 0, None)).unwrap_err();
    assert_eq!(e.code(), "IncorrectKeyMaterialException");
    // Delete, then only the same material brings the key back.
    let k = output_key(apply_and_check(
        &mut s,
        &mut store,
        &Command::DeleteImportedMaterial {
            key_id: id.clone(),
            material_id: None,
            expired_at_ms: None,
        },
    ));
    assert_eq!(k.regional.state, KeyState::PendingImport);
    assert_eq!(
        k.shared.current_version,
        Some(0),
        "CurrentKeyMaterialId is kept"
    );
    assert!(k.regional.materials.is_empty());
    let k = output_key(apply_and_check(
        &mut s,
        &mut store,
        &import(&id, &a, 0, None),
    ));
    assert_eq!(k.regional.state, KeyState::Enabled);

    // New material pends until RotateKeyOnDemand; a second new material is refused meanwhile.
    let k = output_key(apply_and_check(
        &mut s,
        &mut store,
        &import(&id, &b, 1, Some(ImportType::NewKeyMaterial)),
    ));
    assert_eq!(
        k.shared.material_state(1),
        crate::key::KeyMaterialState::PendingRotation
    );
    let c = "cc".repeat(32);
    let e = apply_and_check(
        &mut s,
        &mut store,
        &import(&id, &c, 2, Some(ImportType::NewKeyMaterial)),
    )
    .unwrap_err();
    assert_eq!(e.code(), "KMSInvalidStateException");
    assert!(e.message().contains("is pending rotation"), "{e}");
    let k = output_key(apply_and_check(
        &mut s,
        &mut store,
        &Command::PromotePendingMaterial {
            key_id: id.clone(),
            now_ms: 9,
        },
    ));
    assert_eq!(k.shared.current_version, Some(1));
    let e = apply_and_check(
        &mut s,
        &mut store,
        &Command::PromotePendingMaterial {
            key_id: id.clone(),
            now_ms: 10,
        },
    )
    .unwrap_err();
    assert!(
        e.message()
            .starts_with("No available key material pending rotation"),
        "{e}"
    );
}

#[test]
fn imported_material_expires_only_when_due() {
    let mut s = KmsState::new(scope());
    let mut store = BTreeMap::new();
    let k = external_key(8);
    let id = k.key_id.clone();
    apply_and_check(&mut s, &mut store, &Command::CreateKey { key: k }).unwrap();
    let mut cmd = import(&id, &"aa".repeat(32), 0, None);
    if let Command::ImportKeyMaterial { material, .. } = &mut cmd {
        material.import = Some(crate::key::ImportedMaterial {
            expiration_model: crate::key::ExpirationModel::KeyMaterialExpires,
            valid_to_ms: Some(1_000),
            description: None,
        });
    }
    apply_and_check(&mut s, &mut store, &cmd).unwrap();
    assert!(s.expired_imports(999).is_empty());
    assert_eq!(s.expired_imports(1_000).len(), 1);
    let expire = |at: i64| Command::DeleteImportedMaterial {
        key_id: id.clone(),
        material_id: None,
        expired_at_ms: Some(at),
    };
    apply_and_check(&mut s, &mut store, &expire(500)).unwrap();
    assert_eq!(s.key(&id).unwrap().regional.state, KeyState::Enabled);
    apply_and_check(&mut s, &mut store, &expire(1_000)).unwrap();
    assert_eq!(s.key(&id).unwrap().regional.state, KeyState::PendingImport);
    // Enabling a key whose material is gone leaves it pending import.
    let e = apply_and_check(
        &mut s,
        &mut store,
        &Command::SetEnabled {
            key_id: id.clone(),
            enabled: true,
        },
    )
    .unwrap_err();
    assert_eq!(e.code(), "KMSInvalidStateException");
}

fn grant(key_id: &KeyId, id: u8, name: Option<&str>) -> GrantRecord {
    GrantRecord {
        grant_id: format!("{:064x}", id),
        key_id: key_id.clone(),
        name: name.map(str::to_string),
        creation_ms: 1,
        grantee: "arn:aws:iam::111122223333:role/app".into(),
        retiring: Some("arn:aws:iam::111122223333:role/ops".into()),
        issuing_account: "arn:aws:iam::111122223333:root".into(),
        operations: vec![GrantOperation::Encrypt, GrantOperation::Decrypt],
        constraints: None,
    }
}

#[test]
fn grants_are_idempotent_by_name_listed_and_go_with_their_key() {
    let mut s = KmsState::new(scope());
    let mut store = BTreeMap::new();
    let k = key(9);
    let id = k.key_id.clone();
    apply_and_check(&mut s, &mut store, &Command::CreateKey { key: k }).unwrap();
    let g1 = grant(&id, 1, Some("n"));
    assert_eq!(
        apply_and_check(
            &mut s,
            &mut store,
            &Command::CreateGrant { grant: g1.clone() }
        ),
        Ok(CommandOutput::Grant(g1.grant_id.clone()))
    );
    // Same name, same parameters, another proposed ID: the original grant.
    let retry = GrantRecord {
        grant_id: format!("{:064x}", 2),
        operations: vec![GrantOperation::Decrypt, GrantOperation::Encrypt],
        ..g1.clone()
    };
    assert_eq!(
        apply_and_check(&mut s, &mut store, &Command::CreateGrant { grant: retry }),
        Ok(CommandOutput::Grant(g1.grant_id.clone()))
    );
    // Same name, other parameters: a new grant.
    let other = GrantRecord {
        grant_id: format!("{:064x}", 3),
        grantee: "arn:aws:iam::111122223333:role/other".into(),
        ..g1.clone()
    };
    apply_and_check(&mut s, &mut store, &Command::CreateGrant { grant: other }).unwrap();
    assert_eq!(s.grants_of(&id).len(), 2);
    let (page1, next) = s.list_grants(&id, None, None, None, 1);
    assert_eq!(page1.len(), 1);
    let (page2, end) = s.list_grants(&id, None, None, next.as_deref(), 1);
    assert_eq!(page2.len(), 1);
    assert_eq!(end, None);
    let (retirable, _) = s.list_retirable_grants("arn:aws:iam::111122223333:role/ops", None, 10);
    assert_eq!(retirable.len(), 2);

    let e = apply_and_check(
        &mut s,
        &mut store,
        &Command::DeleteGrant {
            key_id: id.clone(),
            grant_id: format!("{:064x}", 7),
        },
    )
    .unwrap_err();
    assert_eq!(e.code(), "NotFoundException");
    apply_and_check(
        &mut s,
        &mut store,
        &Command::DeleteGrant {
            key_id: id.clone(),
            grant_id: g1.grant_id.clone(),
        },
    )
    .unwrap();
    assert_eq!(s.grants_of(&id).len(), 1);

    apply_and_check(
        &mut s,
        &mut store,
        &Command::ScheduleKeyDeletion {
            key_id: id.clone(),
            window_days: 7,
            now_ms: 0,
        },
    )
    .unwrap();
    apply_and_check(
        &mut s,
        &mut store,
        &Command::DeleteExpiredKey {
            key_id: id.clone(),
            now_ms: 7 * DAY_MS,
        },
    )
    .unwrap();
    assert_eq!(s.grants_of(&id).len(), 0);
    assert!(
        only_log_records(&store),
        "nothing of the key is left on disk"
    );
}

fn arb_command(ids: Vec<KeyId>) -> impl Strategy<Value = Command> {
    let id = proptest::sample::select(ids);
    let alias =
        prop_oneof![Just("alias/a"), Just("alias/b")].prop_map(|a| AliasName::parse(a).unwrap());
    prop_oneof![
        (0u8..3).prop_map(|n| Command::CreateKey { key: key(n) }),
        (id.clone(), any::<bool>())
            .prop_map(|(key_id, enabled)| Command::SetEnabled { key_id, enabled }),
        (id.clone(), 7u32..=30, 0i64..1000).prop_map(|(key_id, window_days, now_ms)| {
            Command::ScheduleKeyDeletion {
                key_id,
                window_days,
                now_ms,
            }
        }),
        id.clone()
            .prop_map(|key_id| Command::CancelKeyDeletion { key_id }),
        (id.clone(), 0i64..(40 * DAY_MS))
            .prop_map(|(key_id, now_ms)| Command::DeleteExpiredKey { key_id, now_ms }),
        (alias.clone(), id.clone()).prop_map(|(name, target)| Command::CreateAlias {
            name,
            target,
            now_ms: 1
        }),
        (alias.clone(), id.clone()).prop_map(|(name, target)| Command::UpdateAlias {
            name,
            target,
            now_ms: 2
        }),
        alias.prop_map(|name| Command::DeleteAlias { name }),
        (id.clone(), proptest::collection::vec("[a-c]", 0..3)).prop_map(|(key_id, ks)| {
            Command::TagResource {
                key_id,
                tags: ks
                    .into_iter()
                    .map(|k| Tag {
                        key: k,
                        value: "v".into(),
                    })
                    .collect(),
            }
        }),
        (0i64..100).prop_map(|offset_ms| Command::SetClockOffset { offset_ms }),
    ]
}

proptest! {
    /// Any sequence of commands: applying is deterministic (two replicas agree), the
    /// persisted changes always rebuild the in-memory state, and invariants hold.
    #[test]
    fn replicas_applying_the_same_log_agree(cmds in proptest::collection::vec(arb_command((0u8..3).map(|n| key(n).key_id).collect()), 0..40)) {
        let mut a = KmsState::new(scope());
        // The other replica reads its records from a store, which it is given every other
        // command (so reads also merge written and persisted records).
        let source = MemSource::default().into();
        let mut b = opened(&source);
        let mut b_unpersisted = Vec::new();
        let mut store = BTreeMap::new();
        for (i, cmd) in cmds.iter().enumerate() {
            let ra = apply_and_check(&mut a, &mut store, cmd);
            let (rb, changes) = b.apply(cmd);
            prop_assert_eq!(ra, rb);
            b_unpersisted.extend(changes);
            if i % 2 == 1 {
                source.write(&std::mem::take(&mut b_unpersisted));
                b.persisted();
            }
            prop_assert_eq!(answers(&b), answers(&a));
            // Every alias points at an existing key; deletion dates exist exactly when pending.
            let keys = a.list_keys(None, usize::MAX - 1).0;
            for al in a.list_aliases(None, None, usize::MAX - 1).0 {
                prop_assert!(a.key(&al.target).is_some());
            }
            for g in store.keys().filter(|k| k.starts_with(GRANT_PREFIX)) {
                let key_id = String::from_utf8_lossy(&g[GRANT_PREFIX.len()..]).split('/').next().unwrap().to_string();
                prop_assert!(a.key(&KeyId::parse(&key_id).unwrap()).is_some());
            }
            for k in &keys {
                prop_assert_eq!(k.regional.deletion_ms.is_some(), k.regional.state == KeyState::PendingDeletion);
                // The current material exists, versions are unique and this Region holds every one.
                let current = k.shared.current_version.unwrap();
                prop_assert!(k.shared.material(current).is_some());
                let mut versions: Vec<u32> = k.shared.materials.iter().map(|m| m.version).collect();
                versions.dedup();
                prop_assert_eq!(versions.len(), k.shared.materials.len());
                prop_assert!(k.has_all_current_material());
            }
        }
    }
}

// ---- forwarded writes, applied once per request ID ----

fn dedup(id: u8, cmd: Command) -> Command {
    Command::Deduplicated {
        request_id: RequestId([id; 16]),
        cmd: Box::new(cmd),
    }
}

/// Replays every record change into a fresh state (what a restart or a snapshot install does).
fn reloaded(all_changes: &[RecordChange]) -> KmsState {
    let source = Arc::new(MemSource::default());
    source.write(all_changes);
    opened(&source)
}

#[test]
fn a_retried_forward_creates_one_key_and_answers_the_first_result() {
    let mut s = KmsState::new(scope());
    let (first, c1) = s.apply(&dedup(1, Command::CreateKey { key: key(1) }));
    assert!(first.is_ok());
    // The retry of the same forward: same result, nothing written.
    let (again, c2) = s.apply(&dedup(1, Command::CreateKey { key: key(1) }));
    assert_eq!(again, first);
    assert!(c2.is_empty());
    assert_eq!(s.key_count(), 1);
    // The memory survives a reload (it is in snapshots and on disk).
    let mut fresh = reloaded(&c1);
    assert_eq!(fresh.remembered_requests(), 1);
    let (after_restart, c3) = fresh.apply(&dedup(1, Command::CreateKey { key: key(1) }));
    assert_eq!(after_restart, first);
    assert!(c3.is_empty());
}

#[test]
fn a_failed_forward_is_remembered_with_its_error() {
    let mut s = KmsState::new(scope());
    let missing = Command::SetEnabled {
        key_id: key(9).key_id,
        enabled: false,
    };
    let (r1, _) = s.apply(&dedup(2, missing.clone()));
    assert!(r1.is_err());
    assert!(s.apply(&Command::CreateKey { key: key(9) }).0.is_ok());
    // The retry answers the first outcome, not a second attempt.
    let (r2, _) = s.apply(&dedup(2, missing));
    assert_eq!(r1, r2);
}

#[test]
fn the_request_memory_is_bounded_and_forgets_the_oldest() {
    let mut s = KmsState::new(scope());
    let mut all = Vec::new();
    let n = MAX_REMEMBERED_REQUESTS + 3;
    for i in 0..n {
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let (_, c) = s.apply(&Command::Deduplicated {
            request_id: RequestId(id),
            cmd: Box::new(Command::SetClockOffset {
                offset_ms: i as i64 + 1,
            }),
        });
        all.extend(c);
    }
    assert_eq!(s.remembered_requests(), MAX_REMEMBERED_REQUESTS);
    let fresh = reloaded(&all);
    assert_eq!(fresh.remembered_requests(), MAX_REMEMBERED_REQUESTS);
    // The oldest was forgotten: applying it again acts again (here: a no-op clock move).
    let (_, c) = s.apply(&Command::Deduplicated {
        request_id: RequestId([0; 16]),
        cmd: Box::new(Command::SetClockOffset { offset_ms: 1 }),
    });
    assert!(c.iter().any(|c| matches!(c, RecordChange::Put { .. })));
}

#[test]
fn wrappers_inside_wrappers_are_refused_at_apply() {
    let mut s = KmsState::new(scope());
    let call = crate::audit::ApiCall {
        event_name: "CreateKey".into(),
        time_ms: 1,
        request_id: "r".into(),
        principal_arn: "p".into(),
        access_key_id: None,
        source_ip: None,
        user_agent: None,
        request_parameters: "{}".into(),
        response_elements: None,
    };
    let inner = Command::Audited {
        call: call.clone(),
        cmd: Box::new(Command::CreateKey { key: key(3) }),
    };
    let (r, c) = s.apply(&Command::Audited {
        call,
        cmd: Box::new(inner),
    });
    assert!(r.is_err());
    assert!(c.is_empty());
    let (r, _) = s.apply(&dedup(4, dedup(5, Command::CreateKey { key: key(3) })));
    assert!(r.is_err());
    assert_eq!(s.key_count(), 0);
}

#[test]
fn resource_quotas_from_the_topology_refuse_the_next_key_alias_and_grant() {
    let quotas = ResourceQuotas {
        keys_per_region: 2,
        aliases_per_key: 1,
        grants_per_key: 1,
    };
    let mut s = KmsState::new(scope()).with_resource_quotas(quotas);
    let mut store = BTreeMap::new();
    for n in 0..2 {
        apply_and_check(&mut s, &mut store, &Command::CreateKey { key: key(n) }).unwrap();
    }
    let third = apply_and_check(&mut s, &mut store, &Command::CreateKey { key: key(2) });
    let e = third.unwrap_err();
    assert_eq!(e.code(), "LimitExceededException");
    assert_eq!(
        e.message(),
        "Key quota for this account in this region is 2 but the current usage is 2."
    );
    // A key pending deletion still counts (AWS counts keys in every key state).
    let id = key(0).key_id;
    apply_and_check(
        &mut s,
        &mut store,
        &Command::ScheduleKeyDeletion {
            key_id: id.clone(),
            window_days: 10,
            now_ms: 1,
        },
    )
    .unwrap();
    assert!(s.key_room().is_err());
    // One alias and one grant per key, then LimitExceededException.
    let target = key(1).key_id;
    let alias = |n: &str| Command::CreateAlias {
        name: AliasName::parse(n).unwrap(),
        target: target.clone(),
        now_ms: 1,
    };
    apply_and_check(&mut s, &mut store, &alias("alias/one")).unwrap();
    let e = apply_and_check(&mut s, &mut store, &alias("alias/two")).unwrap_err();
    assert_eq!(e.code(), "LimitExceededException");
    assert!(e.message().contains("already has 1 aliases"), "{e}");
    apply_and_check(
        &mut s,
        &mut store,
        &Command::CreateGrant {
            grant: grant(&target, 1, None),
        },
    )
    .unwrap();
    let e = apply_and_check(
        &mut s,
        &mut store,
        &Command::CreateGrant {
            grant: grant(&target, 2, None),
        },
    )
    .unwrap_err();
    assert_eq!(e.code(), "LimitExceededException");
    // The defaults are AWS's.
    assert_eq!(
        ResourceQuotas::default(),
        ResourceQuotas {
            keys_per_region: 100_000,
            aliases_per_key: 50,
            grants_per_key: 50_000
        }
    );
}

#[test]
fn what_authorization_reads_has_a_version_that_every_change_moves() {
    let mut s = KmsState::new(scope());
    let mut store = BTreeMap::new();
    let (k, other) = (key(11), key(12));
    let (id, other_id) = (k.key_id.clone(), other.key_id.clone());
    apply_and_check(&mut s, &mut store, &Command::CreateKey { key: k }).unwrap();
    apply_and_check(&mut s, &mut store, &Command::CreateKey { key: other }).unwrap();
    let mut seen = vec![s.authorization_version(&id)];
    let mut changed = |s: &KmsState, what: &str| {
        let v = s.authorization_version(&id);
        assert!(!seen.contains(&v), "{what} left the version at {v:?}");
        seen.push(v);
    };
    let other_before = s.authorization_version(&other_id);
    let policy = r#"{"Version":"2012-10-17","Statement":[]}"#.to_string();
    let g = grant(&id, 1, None);
    let alias = AliasName::parse("alias/v").unwrap();
    let steps = [
        (
            "PutKeyPolicy",
            Command::PutKeyPolicy {
                key_id: id.clone(),
                policy,
            },
        ),
        ("CreateGrant", Command::CreateGrant { grant: g.clone() }),
        (
            "RetireGrant",
            Command::DeleteGrant {
                key_id: id.clone(),
                grant_id: g.grant_id.clone(),
            },
        ),
        (
            "TagResource",
            Command::TagResource {
                key_id: id.clone(),
                tags: vec![Tag {
                    key: "team".into(),
                    value: "blue".into(),
                }],
            },
        ),
    ];
    for (what, cmd) in steps {
        apply_and_check(&mut s, &mut store, &cmd).unwrap();
        changed(&s, what);
    }
    // A change to another key leaves this key's version alone, and the reverse.
    let after_steps = s.authorization_version(&id);
    assert_eq!(s.authorization_version(&other_id), other_before);
    apply_and_check(
        &mut s,
        &mut store,
        &Command::SetEnabled {
            key_id: other_id.clone(),
            enabled: false,
        },
    )
    .unwrap();
    assert_eq!(s.authorization_version(&id), after_steps);
    // An alias moving away from a key changes it although the command names another key.
    for cmd in [
        Command::CreateAlias {
            name: alias.clone(),
            target: id.clone(),
            now_ms: 5,
        },
        Command::UpdateAlias {
            name: alias.clone(),
            target: other_id.clone(),
            now_ms: 6,
        },
        Command::DeleteAlias { name: alias },
    ] {
        apply_and_check(&mut s, &mut store, &cmd).unwrap();
        changed(&s, "an alias change");
    }
    // Reopening (a snapshot installed) gives versions never given before.
    let source = Arc::new(MemSource::default());
    s.open(source).unwrap();
    changed(&s, "reopening");
}

fn iam_doc(version: u64) -> Box<crate::iam::IamDocument> {
    Box::new(crate::iam::IamDocument {
        users: vec![crate::iam::IamEntity {
            arn: format!("arn:aws:iam::111122223333:user/v{version}"),
            ..Default::default()
        }],
        roles: Vec::new(),
    })
}

proptest! {
    /// IAM versions from the home Region applied in any order, each any number of times, leave
    /// the Region at the newest, persisted (a reopened state holds the same), and each answer
    /// is the version held after it.
    #[test]
    fn iam_versions_in_any_order_end_at_the_newest(order in proptest::collection::vec(1u64..6, 1..12)) {
        let mut s = KmsState::new(scope());
        let mut store = BTreeMap::new();
        let mut newest = 0;
        for v in &order {
            let cmd = Command::SetIam { base: None, version: *v, document: iam_doc(*v) };
            newest = newest.max(*v);
            let r = apply_and_check(&mut s, &mut store, &cmd);
            prop_assert_eq!(r, Ok(CommandOutput::IamVersion(newest)));
        }
        prop_assert_eq!(s.iam_version(), newest);
        prop_assert_eq!(s.iam().map(|i| &i.document), Some(&*iam_doc(newest)));
    }
}

#[test]
fn an_iam_write_builds_on_the_version_held_or_conflicts() {
    let mut s = KmsState::new(scope());
    let mut store = BTreeMap::new();
    let write = |base, version| Command::SetIam {
        base: Some(base),
        version,
        document: iam_doc(version),
    };
    assert_eq!(
        apply_and_check(&mut s, &mut store, &write(0, 1)),
        Ok(CommandOutput::IamVersion(1))
    );
    let stale = apply_and_check(&mut s, &mut store, &write(0, 1)).unwrap_err();
    assert_eq!(stale.code(), "ConflictException");
    // A version received from the home Region moves it on; a write must then build on that.
    let received = Command::SetIam {
        base: None,
        version: 4,
        document: iam_doc(4),
    };
    assert_eq!(
        apply_and_check(&mut s, &mut store, &received),
        Ok(CommandOutput::IamVersion(4))
    );
    assert!(apply_and_check(&mut s, &mut store, &write(1, 2)).is_err());
    assert_eq!(
        apply_and_check(&mut s, &mut store, &write(4, 5)),
        Ok(CommandOutput::IamVersion(5))
    );
    assert_eq!(s.iam_version(), 5);
}
