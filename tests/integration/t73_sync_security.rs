//! The synchronizer trusts only certified Regions: forged, replayed and tampered messages are
//! refused and change nothing. The test plays a Region itself, with that Region's real
//! transport key read from its data directory (as an attacker who stole it would), and with a
//! key of its own that no trust anchor certified.

use std::collections::HashMap;
use std::sync::Mutex;

use kmsim_core::ids::{KeyId, Region};
use kmsim_core::key::{
    KeySpec, KeyUsage, MaterialInfo, MultiRegion, Origin, RotationConfig, SharedProps,
};
use kmsim_core::sync::{SyncMessage, SyncReply};
use kmsim_crypto::{DomainKey, TransportKeyPair, TrustAnchor};
use kmsim_node::sync::envelope::{open, seal, Bundle};
use kmsim_node::sync::SyncIdentity;
use kmsim_proto::admin::v1::ListAuditEventsRequest;
use kmsim_proto::kms::v1 as pb;
use kmsim_proto::sync::v1::sync_service_client::SyncServiceClient;
use kmsim_proto::sync::v1::SyncEnvelope;

use crate::harness::{ok, Cluster};
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

async fn deliver(c: &Cluster, env: SyncEnvelope) -> Result<SyncEnvelope, tonic::Status> {
    // Over the link a node of A opens (its certificate): the synchronizer's own checks are
    // what this file tests, behind the transport's.
    let mut client = SyncServiceClient::new(c.channel_as_node(A, 1, B, 1));
    client.deliver(env).await.map(|r| r.into_inner())
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
    c.settle(B).await;
    let before = c.describe(B, 1, &key).await;
    let events = audit_count(&c, &key).await;

    let a = identity_of(&c, A);
    let b_public = a.recipient_key(B).unwrap();
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
    };
    let genuine = seal(
        &a,
        B,
        &b_public,
        &key,
        100,
        &message(100, 200),
        &Bundle::default(),
        &kmsim_node::entropy::Entropy,
    )
    .unwrap();

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
    let forged = seal(
        &rogue,
        B,
        &b_public,
        &key,
        100,
        &message(100, 300),
        &Bundle::default(),
        &kmsim_node::entropy::Entropy,
    )
    .unwrap();
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
    let as_primary = seal(
        &other,
        B,
        &other.recipient_key(B).unwrap(),
        &key,
        100,
        &message(100, 600),
        &Bundle::default(),
        &kmsim_node::entropy::Entropy,
    )
    .unwrap();
    assert!(deliver(&c, as_primary).await.is_err());
    let mut usurp = shared(101, 700);
    usurp.mrk.as_mut().unwrap().primary = Region::parse(C).unwrap();
    let usurper = seal(
        &other,
        B,
        &other.recipient_key(B).unwrap(),
        &key,
        101,
        &SyncMessage::Key {
            key_id: KeyId::parse(&key).unwrap(),
            shared: Box::new(usurp),
            create: None,
            promote: false,
        },
        &Bundle::default(),
        &kmsim_node::entropy::Entropy,
    )
    .unwrap();
    assert!(deliver(&c, usurper).await.is_err());

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

    // 4. The genuine message is taken (the refusals above were not refusing everything)...
    let reply = deliver(&c, genuine.clone()).await.unwrap();
    let opened = open::<SyncReply>(&a, &reply).unwrap();
    assert_eq!(
        opened.message,
        SyncReply::Applied {
            epoch: 1,
            version: 100
        }
    );
    let s = ok(c
        .kms(B, 1)
        .get_key_rotation_status(pb::GetKeyRotationStatusRequest {
            key_id: Some(key.clone()),
        })
        .await);
    assert_eq!(s.rotation_period_in_days, Some(200));
    let events = audit_count(&c, &key).await;
    // ...and replaying it, or an older one, changes nothing.
    let replay = deliver(&c, genuine).await.unwrap();
    assert_eq!(
        open::<SyncReply>(&a, &replay).unwrap().message,
        SyncReply::Applied {
            epoch: 1,
            version: 100
        }
    );
    let older = seal(
        &a,
        B,
        &b_public,
        &key,
        50,
        &message(50, 400),
        &Bundle::default(),
        &kmsim_node::entropy::Entropy,
    )
    .unwrap();
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
