//! The synchronizer trusts only certified Regions: forged, replayed and tampered messages are
//! refused and change nothing; recorded answers never satisfy another request; a request
//! recorded before its session key was wiped cannot be replayed; material that does not match
//! its commitment is never stored. The test plays a Region itself, with that Region's real
//! transport key read from its data directory (as an attacker who stole it would), and with a
//! key of its own that no trust anchor certified.

use std::collections::HashMap;
use std::sync::Mutex;

use kmsim_core::ids::{KeyId, Region};
use kmsim_core::key::{
    KeySpec, KeyUsage, MaterialInfo, MultiRegion, Origin, RotationConfig, SharedProps,
};
use kmsim_core::sync::{NoticeKind, SyncMessage, SyncReply};
use kmsim_crypto::{material_commitment, AnswerKey, DomainKey, TransportKeyPair, TrustAnchor};
use kmsim_node::entropy::Entropy;
use kmsim_node::sync::envelope::{open_answer, seal, Bundle, UNKNOWN_SESSION_KEY};
use kmsim_node::sync::link::fetch_session_key;
use kmsim_node::sync::SyncIdentity;
use kmsim_proto::admin::v1::ListAuditEventsRequest;
use kmsim_proto::kms::v1 as pb;
use kmsim_proto::sync::v1::sync_service_client::SyncServiceClient;
use kmsim_proto::sync::v1::SyncEnvelope;

use crate::harness::{ok, wait_for, Cluster};
use crate::t70_multi_region::{create_mrk, replicate, A, B, C};

/// Region `as_region`'s identity, built from the cluster's own files.
fn identity_of(c: &Cluster, as_region: &str) -> SyncIdentity {
    let topo = c.dir.topology().unwrap();
    let r = topo.region(as_region).unwrap();
    let domain =
        DomainKey::from_hex(&std::fs::read_to_string(&r.domain_key_file).unwrap()).unwrap();
    let transport = kmsim_node::key_files::load_transport_key(&domain, r).unwrap();
    let dialer = kmsim_node::tls::Dialer::for_node(topo.tls.as_ref(), as_region, 1).unwrap();
    let mut id = kmsim_node::node::sync_identity(&topo, as_region, transport, dialer).unwrap();
    id.channels = Mutex::new(HashMap::new());
    id
}

/// A client of node 1 of `to`, over the link a node of another Region opens (its certificate): the
/// synchronizer's own checks are what this file tests, behind the transport's.
async fn client(c: &Cluster, to: &str) -> SyncServiceClient<tonic::transport::Channel> {
    let from = if to == A { B } else { A };
    SyncServiceClient::new(c.channel_as_node(from, 1, to, 1))
}

/// Seals `message` from `id`'s Region to node 1 of `to`, as the synchronizer does: the node's
/// session key fetched with a fresh challenge and checked, then the request sealed to it.
async fn seal_to(
    c: &Cluster,
    id: &SyncIdentity,
    to: &str,
    key: &str,
    stamp: u64,
    message: &SyncMessage,
    secret: &Bundle,
) -> (SyncEnvelope, AnswerKey) {
    let session = fetch_session_key(
        id,
        &mut client(c, to).await,
        to,
        1,
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap();
    seal(id, to, &session, key, stamp, message, secret, &Entropy).unwrap()
}

async fn deliver_to(
    c: &Cluster,
    to: &str,
    env: SyncEnvelope,
) -> Result<SyncEnvelope, tonic::Status> {
    client(c, to)
        .await
        .deliver(env)
        .await
        .map(|r| r.into_inner())
}

async fn deliver(c: &Cluster, env: SyncEnvelope) -> Result<SyncEnvelope, tonic::Status> {
    deliver_to(c, B, env).await
}

async fn audit_count(c: &Cluster, key: &str) -> usize {
    ok(c.admin(B, 1)
        .list_audit_events(ListAuditEventsRequest {
            key_id: key.into(),
            ..Default::default()
        })
        .await)
    .events
    .len()
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_replayed_and_tampered_sync_messages_are_refused() {
    let c = Cluster::start(&[A, B, C], 2);
    for r in [A, B, C] {
        c.leader(r).await;
    }
    let md = create_mrk(&c, A, None).await;
    let key = md.key_id.clone().unwrap();
    replicate(&c, &key, A, B, "Enabled").await;
    let blob = ok(c
        .kms(A, 1)
        .encrypt(pb::EncryptRequest {
            key_id: Some(key.clone()),
            plaintext: Some(b"made before".to_vec()),
            ..Default::default()
        })
        .await)
    .ciphertext_blob
    .unwrap();
    c.settle(B).await;
    let before = c.describe(B, 1, &key).await;
    let events = audit_count(&c, &key).await;

    let a = identity_of(&c, A);
    // A message A could send: the set with a rotation setting B has not seen, at version 100.
    let shared = |version: u64, period: u32| SharedProps {
        key_spec: KeySpec::SymmetricDefault,
        key_usage: KeyUsage::EncryptDecrypt,
        origin: Origin::AwsKms,
        mrk: Some(MultiRegion {
            primary: Region::parse(A).unwrap(),
            replicas: vec![Region::parse(B).unwrap()],
            epoch: 1,
            version,
        }),
        materials: vec![MaterialInfo {
            version: 0,
            key_material_id: md.current_key_material_id.clone().unwrap(),
            created_ms: 0,
            rotation: None,
        }],
        current_version: Some(0),
        public_key: None,
        rotation: RotationConfig {
            enabled: true,
            period_days: period,
            ..Default::default()
        },
    };
    let message = |version, period| SyncMessage::Key {
        key_id: KeyId::parse(&key).unwrap(),
        shared: Box::new(shared(version, period)),
        create: None,
        promote: false,
        origin: None,
    };
    let (genuine, genuine_key) =
        seal_to(&c, &a, B, &key, 100, &message(100, 200), &Bundle::default()).await;

    // 1. An uncertified sender: its own trust anchor, its own key, claiming to be us-east-1.
    let rogue_anchor = TrustAnchor::generate(&mut rand::rngs::OsRng);
    let rogue_key = TransportKeyPair::generate(&mut rand::rngs::OsRng);
    let mut rogue = identity_of(&c, A);
    rogue.certificate = rogue_anchor
        .certify(
            "aws",
            A,
            &rogue_key.public_key_der(),
            &mut rand::rngs::OsRng,
        )
        .to_bytes();
    rogue.transport = rogue_key;
    let (forged, _) = seal_to(
        &c,
        &rogue,
        B,
        &key,
        100,
        &message(100, 300),
        &Bundle::default(),
    )
    .await;
    let e = deliver(&c, forged).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert!(
        e.message().contains("not signed by the aws trust anchor"),
        "{}",
        e.message()
    );

    // 2. Tampering with any part of a genuine message: stamp, message, seal, addressing.
    let mut t = genuine.clone();
    t.stamp += 1;
    assert_eq!(
        deliver(&c, t).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    let mut t = genuine.clone();
    let i = t.message.len() / 2;
    t.message[i] ^= 0x01;
    assert_eq!(
        deliver(&c, t).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    let mut t = genuine.clone();
    let n = t.sealed.len() - 1;
    t.sealed[n] ^= 0x80;
    assert_eq!(
        deliver(&c, t).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );
    let mut t = genuine.clone();
    t.source = "ap-southeast-2".into();
    assert_eq!(
        deliver(&c, t).await.unwrap_err().code(),
        tonic::Code::PermissionDenied
    );

    // 3. A certified Region that is not the primary cannot speak for the set: neither in the
    // primary's name nor by naming itself primary without a hand-over (a newer epoch).
    let other = identity_of(&c, C);
    let (as_primary, _) = seal_to(
        &c,
        &other,
        B,
        &key,
        100,
        &message(100, 600),
        &Bundle::default(),
    )
    .await;
    assert!(deliver(&c, as_primary).await.is_err());
    let mut usurp = shared(101, 700);
    usurp.mrk.as_mut().unwrap().primary = Region::parse(C).unwrap();
    let usurp = SyncMessage::Key {
        key_id: KeyId::parse(&key).unwrap(),
        shared: Box::new(usurp),
        create: None,
        promote: false,
        origin: None,
    };
    let (usurper, _) = seal_to(&c, &other, B, &key, 101, &usurp, &Bundle::default()).await;
    assert!(deliver(&c, usurper).await.is_err());

    // 4. The primary itself (its real transport key) cannot plant other material for the
    // version B holds: neither under the genuine KeyMaterialId, nor with a KeyMaterialId
    // made for the planted material.
    let planted = vec![0x5a; 32];
    let plant = |material_id: String| {
        let mut s = shared(102, 800);
        s.materials[0].key_material_id = material_id;
        SyncMessage::Key {
            key_id: KeyId::parse(&key).unwrap(),
            shared: Box::new(s),
            create: None,
            promote: false,
            origin: None,
        }
    };
    for (material_id, why) in [
        (
            md.current_key_material_id.clone().unwrap(),
            "does not match its commitment",
        ),
        (material_commitment(&key, &planted), "cannot become"),
    ] {
        let bundle = Bundle(vec![(0, planted.clone())]);
        let (env, _) = seal_to(&c, &a, B, &key, 102, &plant(material_id), &bundle).await;
        let e = deliver(&c, env).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
        assert!(e.message().contains(why), "{}", e.message());
    }
    // The ciphertext made before still decrypts in B, with B's own (genuine) material.
    let d = ok(c
        .kms(B, 2)
        .decrypt(pb::DecryptRequest {
            ciphertext_blob: Some(blob.clone()),
            ..Default::default()
        })
        .await);
    assert_eq!(d.plaintext.as_deref(), Some(&b"made before"[..]));

    // None of it changed anything.
    c.settle(B).await;
    assert_eq!(c.describe(B, 1, &key).await, before);
    assert_eq!(audit_count(&c, &key).await, events);
    let s = ok(c
        .kms(B, 1)
        .get_key_rotation_status(pb::GetKeyRotationStatusRequest {
            key_id: Some(key.clone()),
        })
        .await);
    assert_eq!(s.key_rotation_enabled, Some(false));

    // 5. The genuine message is taken (the refusals above were not refusing everything)...
    let reply = deliver(&c, genuine.clone()).await.unwrap();
    let applied = SyncReply::Applied {
        epoch: 1,
        version: 100,
    };
    assert_eq!(
        open_answer::<SyncReply>(&genuine, &genuine_key, &reply).unwrap(),
        applied
    );
    let s = ok(c
        .kms(B, 1)
        .get_key_rotation_status(pb::GetKeyRotationStatusRequest {
            key_id: Some(key.clone()),
        })
        .await);
    assert_eq!(s.rotation_period_in_days, Some(200));
    let events = audit_count(&c, &key).await;
    // ...the same request replayed is refused: B already took it...
    let e = deliver(&c, genuine).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert!(e.message().contains("replayed"), "{}", e.message());
    // ...while the synchronizer's retry (the same message sealed afresh) is answered, and
    // changes nothing, as does an older one.
    let (retry, retry_key) =
        seal_to(&c, &a, B, &key, 100, &message(100, 200), &Bundle::default()).await;
    let again = deliver(&c, retry.clone()).await.unwrap();
    assert_eq!(
        open_answer::<SyncReply>(&retry, &retry_key, &again).unwrap(),
        applied
    );
    // The answer recorded for the first request does not answer the retry, although key,
    // stamp and message are the same: it is bound to the first request's challenge.
    let recorded = reply;
    assert!(open_answer::<SyncReply>(&retry, &retry_key, &recorded)
        .unwrap_err()
        .contains("not authentic"));
    let (older, _) = seal_to(&c, &a, B, &key, 50, &message(50, 400), &Bundle::default()).await;
    deliver(&c, older).await.unwrap();
    let s = ok(c
        .kms(B, 1)
        .get_key_rotation_status(pb::GetKeyRotationStatusRequest {
            key_id: Some(key.clone()),
        })
        .await);
    assert_eq!(s.rotation_period_in_days, Some(200));
    assert_eq!(audit_count(&c, &key).await, events);
}

/// A Region's notice to the primary, as B sends it.
fn notice(key: &str) -> SyncMessage {
    SyncMessage::Notice {
        key_id: KeyId::parse(key).unwrap(),
        from: Region::parse(B).unwrap(),
        kind: NoticeKind::ReplicaDeleted,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn replayed_notices_and_their_answers_are_refused_and_sessions_expire() {
    // Session keys current for 1 s and wiped 2 s after they are made.
    let c = Cluster::start_edited(&[A, B], 2, |t| t.sync.session_key_ms = 1000);
    for r in [A, B] {
        c.leader(r).await;
    }
    // Replication and rotation work across many session-key rotations.
    let md = create_mrk(&c, A, None).await;
    let key = md.key_id.clone().unwrap();
    replicate(&c, &key, A, B, "Enabled").await;
    let b = identity_of(&c, B);

    // B's genuine notice: its replica is gone. The primary takes it and drops B from the set.
    let (first, first_key) = seal_to(&c, &b, A, &key, 0, &notice(&key), &Bundle::default()).await;
    let answer = deliver_to(&c, A, first.clone()).await.unwrap();
    assert_eq!(
        open_answer::<SyncReply>(&first, &first_key, &answer).unwrap(),
        SyncReply::Noted
    );
    c.wait_key(A, 1, &key, "B off the set", |m| {
        m.multi_region_configuration
            .as_ref()
            .is_some_and(|mr| mr.replica_keys.is_empty())
    })
    .await;
    // The same notice sent again, and the same answer given to a new request, are refused.
    let (second, second_key) = seal_to(&c, &b, A, &key, 0, &notice(&key), &Bundle::default()).await;
    assert!(open_answer::<SyncReply>(&second, &second_key, &answer)
        .unwrap_err()
        .contains("not authentic"));
    // A recorded notice is refused within its session key's window (seen) and after it (the
    // key is wiped: nobody can open it any more). Each probe is a replay; none is ever taken.
    let e = wait_for(
        std::time::Duration::from_secs(30),
        "the notice's session key to be wiped",
        || async {
            match deliver_to(&c, A, first.clone()).await {
                Ok(_) => panic!("a replayed notice was taken"),
                Err(e) if e.code() == tonic::Code::FailedPrecondition => Some(e),
                Err(e) => {
                    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
                    assert!(e.message().contains("replayed"), "{}", e.message());
                    None
                }
            }
        },
    )
    .await;
    assert_eq!(e.message(), UNKNOWN_SESSION_KEY);

    // And the synchronizer still works: a new key replicates, rotates and decrypts in both
    // Regions after the session keys have changed many times.
    let md = create_mrk(&c, A, None).await;
    let key = md.key_id.clone().unwrap();
    replicate(&c, &key, A, B, "Enabled").await;
    ok(c.kms(A, 1)
        .rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
            key_id: Some(key.clone()),
        })
        .await);
    let rotated = c
        .wait_key(A, 1, &key, "the rotation to become current", |m| {
            m.current_key_material_id != md.current_key_material_id
        })
        .await;
    c.wait_key(B, 1, &key, "the replica to follow the rotation", |m| {
        m.current_key_material_id == rotated.current_key_material_id
    })
    .await;
    let blob = ok(c
        .kms(A, 2)
        .encrypt(pb::EncryptRequest {
            key_id: Some(key.clone()),
            plaintext: Some(b"after rotation".to_vec()),
            ..Default::default()
        })
        .await)
    .ciphertext_blob
    .unwrap();
    let d = ok(c
        .kms(B, 2)
        .decrypt(pb::DecryptRequest {
            ciphertext_blob: Some(blob),
            ..Default::default()
        })
        .await);
    assert_eq!(d.plaintext.as_deref(), Some(&b"after rotation"[..]));
}
