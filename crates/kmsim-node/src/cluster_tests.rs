//! In-process Region tests: three nodes on 127.0.0.1 with OS-chosen ports, real gRPC, real
//! openraft, the in-memory engine. Fast checks of the node logic; the process-level tests with
//! RocksDB live in `tests/integration`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use tonic::transport::Channel;

use kmsim_crypto::DomainKey;
use kmsim_proto::admin::v1::admin_service_client::AdminServiceClient;
use kmsim_proto::admin::v1::{AdvanceClockRequest, StatusRequest};
use kmsim_proto::kms::v1 as pb;
use kmsim_proto::kms::v1::kms_service_client::KmsServiceClient;
use kmsim_proto::status::error_from_status;
use kmsim_store::MemKvEngine;

use crate::config::{NodeEntry, RaftTiming, RegionConfig, Topology, TOPOLOGY_VERSION};
use crate::tls::{Dialer, TlsSettings};

/// The IAM user the operator certificate acts as in the authorization tests.
const ALICE: &str = "arn:aws:iam::111122223333:user/alice";

struct Region {
    topology: Topology,
    key_hex: String,
    engines: Vec<Arc<MemKvEngine>>,
    stops: Vec<Option<oneshot::Sender<()>>>,
    /// The nodes' data dirs (only their call logs live there), removed with the Region.
    _dirs: tempfile::TempDir,
    /// How the test's clients dial (the operator certificate with `[tls]`).
    dialer: Dialer,
}

impl Region {
    fn new(n: usize) -> Region {
        Region::with_tls(n, false)
    }

    /// A Region whose topology has `[tls]` (every certificate written to its temp dir) when
    /// `tls` is true.
    fn with_tls(n: usize, tls: bool) -> Region {
        Region::edited(n, tls, |_| {})
    }

    /// A Region whose topology `edit` changes (after `[tls]` is added) before its nodes start.
    fn edited(n: usize, tls: bool, edit: impl FnOnce(&mut Topology)) -> Region {
        let dirs = tempfile::Builder::new()
            .prefix("kmsim-cluster-test-")
            .tempdir()
            .unwrap();
        // Hold every listener until all ports are chosen, so no port is handed out twice.
        let held: Vec<std::net::TcpListener> = (0..n)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
            .collect();
        let nodes = held
            .iter()
            .zip(1..)
            .map(|(l, id)| NodeEntry {
                id,
                listen: l.local_addr().unwrap(),
                advertise: None,
                aws_listen: None,
                aws_advertise: None,
                // Only the node's call log lives here (the engine is in memory).
                data_dir: dirs.path().join(format!("node-{id}")),
            })
            .collect();
        drop(held);
        let topology = Topology {
            version: TOPOLOGY_VERSION,
            partition: "aws".into(),
            account: "111122223333".into(),
            test_hooks: true,
            fault_seed: 0,
            raft: RaftTiming::default(),
            endpoint: None,
            credentials: Vec::new(),
            iam: None,
            sts: None,
            trust_anchors: Vec::new(),
            sync: Default::default(),
            audit: Default::default(),
            limits: Default::default(),
            caches: Default::default(),
            quotas: Default::default(),
            tls: None,
            regions: vec![RegionConfig {
                name: "us-east-1".into(),
                domain_key_file: PathBuf::from("unused"),
                partition: None,
                transport_key_file: None,
                transport_certificate: None,
                nodes,
            }],
        };
        let mut topology = topology;
        let mut dialer = Dialer::plain();
        if tls {
            topology.tls = Some(TlsSettings {
                dir: dirs.path().join("tls"),
                aws_https: false,
                operator_principal: None,
                clients: Vec::new(),
            });
        }
        // After `[tls]` is set, so that an edit can change it (e.g. the operator's principal).
        edit(&mut topology);
        if tls {
            std::fs::create_dir_all(dirs.path().join("tls")).unwrap();
            for (path, text) in crate::tls::issue::cluster_files(&topology).unwrap() {
                std::fs::write(path, text).unwrap();
            }
            dialer = Dialer::operator(topology.tls.as_ref()).unwrap();
        }
        let key_hex = DomainKey::generate(&mut rand::rngs::OsRng)
            .to_hex()
            .to_string();
        let engines = (0..n).map(|_| Arc::new(MemKvEngine::new())).collect();
        let mut r = Region {
            topology,
            key_hex,
            engines,
            stops: (0..n).map(|_| None).collect(),
            _dirs: dirs,
            dialer,
        };
        for id in 1..=n as u64 {
            r.start(id);
        }
        r
    }

    /// A one-node Region over TLS whose operator certificate acts as the IAM user [`ALICE`],
    /// whose one identity policy is `document`.
    fn with_operator_as_alice(document: &str) -> Region {
        use crate::iam::{IamConfig, IamPrincipalConfig, InlinePolicy};
        Region::edited(1, true, |t| {
            t.tls.as_mut().unwrap().operator_principal = Some(ALICE.into());
            t.iam = Some(IamConfig {
                users: vec![IamPrincipalConfig {
                    arn: ALICE.into(),
                    policies: vec![InlinePolicy {
                        name: "kms".into(),
                        document: document.into(),
                    }],
                    ..Default::default()
                }],
                roles: vec![],
                home_region: None,
            });
        })
    }

    fn start(&mut self, id: u64) {
        let (tx, rx) = oneshot::channel();
        let topo = self.topology.clone();
        let engine = self.engines[(id - 1) as usize].clone();
        let key = DomainKey::from_hex(&self.key_hex).unwrap();
        tokio::spawn(async move {
            let stop = async {
                let _ = rx.await;
            };
            crate::run_node_with_key(topo, "us-east-1", id, engine, key, stop)
                .await
                .unwrap();
        });
        self.stops[(id - 1) as usize] = Some(tx);
    }

    async fn stop(&mut self, id: u64) {
        if let Some(tx) = self.stops[(id - 1) as usize].take() {
            let _ = tx.send(());
        }
        // Wait until its port is free again (the server has shut down).
        let addr = self.addr(id);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(&addr).await.is_ok() {
            assert!(Instant::now() < deadline, "node {id} did not stop");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn addr(&self, id: u64) -> String {
        self.topology.regions[0].node(id).unwrap().advertise_addr()
    }

    fn channel(&self, id: u64) -> Channel {
        self.channel_with(&self.dialer, id)
    }

    fn channel_with(&self, dialer: &Dialer, id: u64) -> Channel {
        dialer
            .endpoint(&self.addr(id))
            .unwrap()
            .timeout(Duration::from_secs(15))
            .connect_lazy()
    }

    fn kms(&self, id: u64) -> KmsServiceClient<Channel> {
        KmsServiceClient::new(self.channel(id))
    }

    /// A new key, created through node `id`; its id.
    async fn create_key(&self, id: u64) -> String {
        let md = self
            .kms(id)
            .create_key(pb::CreateKeyRequest::default())
            .await
            .unwrap()
            .into_inner();
        md.key_metadata.unwrap().key_id.unwrap()
    }

    /// DescribeKey of `key_id` on node `id`.
    async fn describe(
        &self,
        id: u64,
        key_id: &str,
    ) -> Result<pb::DescribeKeyResponse, tonic::Status> {
        self.kms(id)
            .describe_key(pb::DescribeKeyRequest {
                key_id: Some(key_id.to_string()),
                ..Default::default()
            })
            .await
            .map(tonic::Response::into_inner)
    }

    async fn status(&self, id: u64) -> kmsim_proto::admin::v1::StatusResponse {
        AdminServiceClient::new(self.channel(id))
            .status(StatusRequest {})
            .await
            .unwrap()
            .into_inner()
    }

    async fn leader(&self, among: &[u64]) -> u64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            for id in among {
                let mut a = AdminServiceClient::new(self.channel(*id));
                if let Ok(Ok(s)) =
                    tokio::time::timeout(Duration::from_secs(1), a.status(StatusRequest {})).await
                {
                    let s = s.into_inner();
                    if s.role == "leader" {
                        return s.node_id;
                    }
                }
            }
            assert!(Instant::now() < deadline, "no leader");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_region_over_mutual_tls_elects_forwards_and_admits_by_identity() {
    let r = Region::with_tls(3, true);
    // Bootstrap (peers' Status) and elections run over mutual TLS.
    let leader = r.leader(&[1, 2, 3]).await;
    let follower = [1, 2, 3].into_iter().find(|i| *i != leader).unwrap();
    // A write through a follower is forwarded to the leader over TLS.
    let md = r
        .kms(follower)
        .create_key(pb::CreateKeyRequest::default())
        .await
        .unwrap()
        .into_inner()
        .key_metadata
        .unwrap();
    assert!(md.key_id.is_some());
    // Plaintext gets no answer from any service.
    let plain = r.channel_with(&Dialer::plain(), leader);
    let refused = KmsServiceClient::new(plain.clone())
        .list_keys(pb::ListKeysRequest::default())
        .await
        .unwrap_err();
    assert_ne!(refused.code(), tonic::Code::Ok);
    assert!(AdminServiceClient::new(plain)
        .status(StatusRequest {})
        .await
        .is_err());
    // A node's certificate may ask its Region's Status, not advance its clock.
    let tls = r.topology.tls.as_ref();
    let as_node = r.channel_with(
        &Dialer::for_node(tls, "us-east-1", follower).unwrap(),
        leader,
    );
    AdminServiceClient::new(as_node.clone())
        .status(StatusRequest {})
        .await
        .unwrap();
    let denied = AdminServiceClient::new(as_node)
        .advance_clock(AdvanceClockRequest { millis: 1 })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    assert!(
        denied.message().contains("node aws/us-east-1/"),
        "{denied:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_region_elects_serves_from_any_node_and_survives_its_leader() {
    let mut r = Region::new(3);
    let leader = r.leader(&[1, 2, 3]).await;
    let follower = [1, 2, 3].into_iter().find(|i| *i != leader).unwrap();

    // A write through a follower is forwarded, and the follower reads its own write at once.
    let key_id = r.create_key(follower).await;
    r.describe(follower, &key_id).await.unwrap();
    let blob = r
        .kms(follower)
        .encrypt(pb::EncryptRequest {
            key_id: Some(key_id.clone()),
            plaintext: Some(b"abc".to_vec()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .ciphertext_blob;
    let dec = r
        .kms(leader)
        .decrypt(pb::DecryptRequest {
            ciphertext_blob: blob.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dec.plaintext.as_deref(), Some(&b"abc"[..]));

    // Stop the leader: the others elect a new one and keep taking writes.
    r.stop(leader).await;
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|i| *i != leader).collect();
    let new_leader = r.leader(&rest).await;
    assert_ne!(new_leader, leader);
    for id in &rest {
        let md = r
            .kms(*id)
            .create_key(pb::CreateKeyRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert!(md.key_metadata.is_some());
    }
    // The old leader restarts from its engine and catches up.
    r.start(leader);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let listed = r
            .kms(leader)
            .list_keys(pb::ListKeysRequest::default())
            .await
            .map(|l| l.into_inner().keys.len());
        if listed.as_ref().ok() == Some(&3) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restarted node did not catch up: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dec = r
        .kms(leader)
        .decrypt(pb::DecryptRequest {
            ciphertext_blob: blob,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(dec.plaintext.as_deref(), Some(&b"abc"[..]));

    // The clock moves for the whole Region (AdvanceClock goes to the leader).
    let mut admin = AdminServiceClient::new(r.channel(r.leader(&rest).await));
    let moved = admin
        .advance_clock(AdvanceClockRequest { millis: 86_400_000 })
        .await
        .unwrap()
        .into_inner();
    assert!(moved.clock_offset_ms >= 86_400_000);
    let e = r
        .kms(rest[1])
        .schedule_key_deletion(pb::ScheduleKeyDeletionRequest {
            key_id: Some(key_id.clone()),
            pending_window_in_days: Some(6),
        })
        .await
        .unwrap_err();
    assert_eq!(error_from_status(&e).code(), "ValidationException");
    for id in [1, 2, 3] {
        r.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_leader_is_replaced_and_catches_up_after_heal() {
    use kmsim_proto::admin::v1::{
        ClearLinkFaultsRequest, GetLinkFaultsRequest, LinkProfile, SetLinkFaultsRequest,
    };

    let mut r = Region::new(3);
    let old = r.leader(&[1, 2, 3]).await;
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|i| *i != old).collect();
    let cut = |peer: u64| SetLinkFaultsRequest {
        peer: format!("us-east-1/{peer}"),
        profile: Some(LinkProfile {
            partitioned: true,
            ..Default::default()
        }),
    };
    // Cut the leader off in both directions.
    let mut admin_old = AdminServiceClient::new(r.channel(old));
    for o in &others {
        admin_old.set_link_faults(cut(*o)).await.unwrap();
        AdminServiceClient::new(r.channel(*o))
            .set_link_faults(cut(old))
            .await
            .unwrap();
    }
    let links = admin_old
        .get_link_faults(GetLinkFaultsRequest {})
        .await
        .unwrap()
        .into_inner()
        .links;
    assert_eq!(links.len(), 2);

    // The majority side elects a new leader and takes writes.
    let new = r.leader(&others).await;
    assert_ne!(new, old);
    let md = r
        .kms(others[0])
        .create_key(pb::CreateKeyRequest::default())
        .await
        .unwrap()
        .into_inner();
    let key_id = md.key_metadata.unwrap().key_id.unwrap();
    // The cut-off node cannot commit anything (a write through it times out or fails).
    let isolated = tokio::time::timeout(
        Duration::from_secs(2),
        r.kms(old).create_key(pb::CreateKeyRequest::default()),
    )
    .await;
    assert!(
        !matches!(isolated, Ok(Ok(_))),
        "the isolated node committed a write"
    );

    // Heal: the old leader learns the new term and catches up.
    for id in [1, 2, 3] {
        AdminServiceClient::new(r.channel(id))
            .clear_link_faults(ClearLinkFaultsRequest {})
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let seen = r
            .kms(old)
            .describe_key(pb::DescribeKeyRequest {
                key_id: Some(key_id.clone()),
                ..Default::default()
            })
            .await
            .is_ok();
        let status = AdminServiceClient::new(r.channel(old))
            .status(StatusRequest {})
            .await
            .unwrap()
            .into_inner();
        if seen && status.role == "follower" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old leader did not rejoin: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for id in [1, 2, 3] {
        r.stop(id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reads_on_followers_see_every_write_acknowledged_before_them() {
    let r = Region::new(3);
    let leader = r.leader(&[1, 2, 3]).await;
    let followers: Vec<u64> = [1, 2, 3].into_iter().filter(|i| *i != leader).collect();
    for round in 0..30 {
        let key_id = r
            .kms(leader)
            .create_key(pb::CreateKeyRequest::default())
            .await
            .unwrap()
            .into_inner()
            .key_metadata
            .unwrap()
            .key_id
            .unwrap();
        // Many reads at once on each follower: they share read-index rounds, and every one
        // must see the key the leader has just acknowledged.
        let mut reads = tokio::task::JoinSet::new();
        for f in &followers {
            for _ in 0..16 {
                let mut client = r.kms(*f);
                let key_id = key_id.clone();
                reads.spawn(async move {
                    client
                        .describe_key(pb::DescribeKeyRequest {
                            key_id: Some(key_id),
                            ..Default::default()
                        })
                        .await
                        .map(|_| ())
                });
            }
        }
        while let Some(read) = reads.join_next().await {
            if let Err(s) = read.unwrap() {
                panic!("round {round}: a follower did not see the acknowledged key: {s:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_never_refuses_because_of_a_state_its_region_has_left() {
    let r = Region::new(3);
    let leader = r.leader(&[1, 2, 3]).await;
    let followers: Vec<u64> = [1, 2, 3].into_iter().filter(|i| *i != leader).collect();
    let key_id = r
        .kms(leader)
        .create_key(pb::CreateKeyRequest::default())
        .await
        .unwrap()
        .into_inner()
        .key_metadata
        .unwrap()
        .key_id
        .unwrap();
    for round in 0..30 {
        let mut admin = r.kms(leader);
        admin
            .disable_key(pb::DisableKeyRequest {
                key_id: Some(key_id.clone()),
            })
            .await
            .unwrap();
        admin
            .enable_key(pb::EnableKeyRequest {
                key_id: Some(key_id.clone()),
            })
            .await
            .unwrap();
        // Encrypt at once on the followers: a follower that has not applied EnableKey yet
        // must confirm with the leader rather than answer DisabledException.
        let mut calls = tokio::task::JoinSet::new();
        for f in &followers {
            for _ in 0..8 {
                let mut client = r.kms(*f);
                let key_id = key_id.clone();
                calls.spawn(async move {
                    client
                        .encrypt(pb::EncryptRequest {
                            key_id: Some(key_id),
                            plaintext: Some(b"enabled again".to_vec()),
                            ..Default::default()
                        })
                        .await
                        .map(|_| ())
                });
            }
        }
        while let Some(call) = calls.join_next().await {
            if let Err(s) = call.unwrap() {
                panic!(
                    "round {round}: a follower refused: {:?}",
                    error_from_status(&s)
                );
            }
        }
    }
}

/// A follower forwarding a write to a leader that stops answering (here: the link to it holds
/// every message for ten minutes, as a frozen process would) does not wait for that leader:
/// once the Region elects another, the write is sent to the new leader (under the same
/// request ID) and acknowledged, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forwarded_write_follows_a_new_leader_instead_of_waiting_for_the_old_one() {
    use kmsim_proto::admin::v1::{ClearLinkFaultsRequest, LinkProfile, SetLinkFaultsRequest};

    let mut r = Region::new(3);
    let old = r.leader(&[1, 2, 3]).await;
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|i| *i != old).collect();
    let (via, other) = (others[0], others[1]);
    let key_count = |id: u64| {
        let mut admin = AdminServiceClient::new(r.channel(id));
        async move {
            admin
                .status(StatusRequest {})
                .await
                .unwrap()
                .into_inner()
                .key_count
        }
    };
    let before = key_count(old).await;
    let link = |peer: u64, profile: LinkProfile| SetLinkFaultsRequest {
        peer: format!("us-east-1/{peer}"),
        profile: Some(profile),
    };
    let cut = LinkProfile {
        partitioned: true,
        ..Default::default()
    };
    // What `via` sends the old leader waits ten minutes; the old leader is cut off from both
    // followers, and the other follower from it, so the followers elect a new leader.
    AdminServiceClient::new(r.channel(via))
        .set_link_faults(link(
            old,
            LinkProfile {
                delay_ms: 600_000,
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let mut admin_old = AdminServiceClient::new(r.channel(old));
    for o in &others {
        admin_old.set_link_faults(link(*o, cut)).await.unwrap();
    }
    AdminServiceClient::new(r.channel(other))
        .set_link_faults(link(old, cut))
        .await
        .unwrap();

    // Sent at once: `via` still takes `old` for the leader and forwards there.
    let generous = r
        .dialer
        .endpoint(&r.addr(via))
        .unwrap()
        .timeout(Duration::from_secs(60))
        .connect_lazy();
    let created = KmsServiceClient::new(generous)
        .create_key(pb::CreateKeyRequest {
            description: Some("follows the new leader".into()),
            ..Default::default()
        })
        .await
        .map_err(|s| error_from_status(&s))
        .expect("the forwarded write is acknowledged")
        .into_inner();
    let key_id = created.key_metadata.unwrap().key_id.unwrap();
    let new = r.leader(&others).await;
    assert_ne!(new, old);
    r.kms(new)
        .describe_key(pb::DescribeKeyRequest {
            key_id: Some(key_id),
            ..Default::default()
        })
        .await
        .expect("the new leader holds the key");
    assert_eq!(
        key_count(new).await,
        before + 1,
        "the write was applied once"
    );

    for id in [1, 2, 3] {
        AdminServiceClient::new(r.channel(id))
            .clear_link_faults(ClearLinkFaultsRequest {})
            .await
            .unwrap();
    }
    for id in [1, 2, 3] {
        r.stop(id).await;
    }
}

/// A follower whose engine is lost (a new, empty one) while the leader's log behind its
/// snapshot is purged is caught up by a snapshot install and the log after it, and serves
/// every key; the Region keeps taking writes meanwhile. (With a full Region restart first, so
/// every member opens its log from a purged store.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wiped_follower_is_caught_up_by_a_snapshot_and_the_log_after_it() {
    let mut r = Region::edited(3, false, |t| {
        t.raft.snapshot_after_logs = 25;
        t.raft.logs_kept_after_snapshot = 5;
    });
    let leader = r.leader(&[1, 2, 3]).await;
    let mut keys = Vec::new();
    for _ in 0..80 {
        keys.push(r.create_key(leader).await);
    }
    for id in [1, 2, 3] {
        r.stop(id).await;
    }
    for id in [1, 2, 3] {
        r.start(id);
    }
    let leader = r.leader(&[1, 2, 3]).await;
    let purged = r.status(leader).await.purged_index;
    assert!(purged.is_some(), "the leader purged no log");

    let wiped = [1, 2, 3].into_iter().find(|i| *i != leader).unwrap();
    r.stop(wiped).await;
    r.engines[(wiped - 1) as usize] = Arc::new(MemKvEngine::new());
    r.start(wiped);
    for _ in 0..10 {
        keys.push(r.create_key(leader).await);
    }
    let target = r.status(leader).await.last_applied_index;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        // The restarted node may not serve yet: an unanswered Status is "not yet".
        let s = AdminServiceClient::new(r.channel(wiped))
            .status(StatusRequest {})
            .await
            .map(tonic::Response::into_inner)
            .unwrap_or_default();
        if s.last_applied_index >= target && s.key_count == keys.len() as u64 {
            assert!(
                s.snapshot_index.is_some(),
                "caught up without a snapshot: {s:?}"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the wiped node did not catch up to {target:?}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for key_id in &keys {
        r.describe(wiped, key_id).await.unwrap();
    }
    // It keeps following: a later write reaches it too.
    let later = r.create_key(leader).await;
    r.describe(wiped, &later).await.unwrap();
    for id in [1, 2, 3] {
        r.stop(id).await;
    }
}

/// The gRPC face enforces the same authorization as the AWS JSON face: the operator certificate
/// acts here as an IAM user whose identity policy allows some actions and denies Decrypt.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_callers_are_authorized_by_key_policy_identity_policy_and_lockout_check() {
    let r = Region::with_operator_as_alice(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["kms:CreateKey","kms:Encrypt","kms:Decrypt","kms:DescribeKey","kms:PutKeyPolicy"],"Resource":"*"},
            {"Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}]}"#,
    );
    r.leader(&[1]).await;
    let key = r.create_key(1).await;
    let arn = format!("arn:aws:kms:us-east-1:111122223333:key/{key}");
    let blob = r
        .kms(1)
        .encrypt(pb::EncryptRequest {
            key_id: Some(key.clone()),
            plaintext: Some(b"payroll".to_vec()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .ciphertext_blob;
    let err = |s: tonic::Status| error_from_status(&s);
    // An explicit Deny in the identity policy wins over its Allow.
    let denied = err(r
        .kms(1)
        .decrypt(pb::DecryptRequest {
            ciphertext_blob: blob,
            ..Default::default()
        })
        .await
        .unwrap_err());
    assert_eq!(denied.code(), "AccessDeniedException");
    assert_eq!(
        denied.message(),
        format!("User: {ALICE} is not authorized to perform: kms:Decrypt on resource: {arn} with an explicit deny in an identity-based policy")
    );
    // No identity policy allows ScheduleKeyDeletion: refused, and nothing changed.
    let denied = err(r
        .kms(1)
        .schedule_key_deletion(pb::ScheduleKeyDeletionRequest {
            key_id: Some(key.clone()),
            ..Default::default()
        })
        .await
        .unwrap_err());
    assert!(denied
        .message()
        .ends_with("because no identity-based policy allows the kms:ScheduleKeyDeletion action"));
    let md = r.describe(1, &key).await.unwrap().key_metadata.unwrap();
    assert_eq!(md.key_state.as_deref(), Some("Enabled"));
    // A policy that names someone else would lock alice out: refused unless bypassed.
    let other = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/Admin"},"Action":"kms:*","Resource":"*"}]}"#;
    let put = |bypass: bool| pb::PutKeyPolicyRequest {
        key_id: Some(key.clone()),
        policy: Some(other.into()),
        bypass_policy_lockout_safety_check: Some(bypass),
        ..Default::default()
    };
    let locked = err(r.kms(1).put_key_policy(put(false)).await.unwrap_err());
    assert_eq!(locked.code(), "MalformedPolicyDocumentException");
    assert_eq!(
        locked.message(),
        "The new key policy will not allow you to update the key policy in the future."
    );
    r.kms(1).put_key_policy(put(true)).await.unwrap();
    // Now the key policy no longer delegates to the account: alice's identity policy is moot.
    let denied = err(r.describe(1, &key).await.unwrap_err());
    assert!(
        denied
            .message()
            .ends_with("because no resource-based policy allows the kms:DescribeKey action"),
        "{denied:?}"
    );
}

/// The policy simulator (admin `SimulateAuthorization`) judges with the Region's real key
/// policy and the topology's IAM, and names what decided: an Allow through the account
/// delegation and an identity policy, an explicit Deny by its Sid, an implicit deny.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_simulator_names_the_statement_that_decided() {
    use crate::iam::{IamConfig, IamPrincipalConfig, InlinePolicy};
    use kmsim_proto::admin::v1::SimulateAuthorizationRequest;
    let r = Region::edited(1, false, |t| {
        t.iam = Some(IamConfig {
            users: vec![IamPrincipalConfig {
                arn: ALICE.into(),
                policies: vec![InlinePolicy {
                    name: "use".into(),
                    document: r#"{"Version":"2012-10-17","Statement":[
                        {"Sid":"UseKeys","Effect":"Allow","Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*"}]}"#
                        .into(),
                }],
                ..Default::default()
            }],
            roles: vec![],
            home_region: None,
        });
    });
    r.leader(&[1]).await;
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Sid":"Account","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::111122223333:root"}},"Action":"kms:*","Resource":"*"}},
            {{"Sid":"NoAliceDecrypt","Effect":"Deny","Principal":{{"AWS":"{ALICE}"}},"Action":"kms:Decrypt","Resource":"*"}}]}}"#
    );
    let key = r
        .kms(1)
        .create_key(pb::CreateKeyRequest {
            policy: Some(policy),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .key_metadata
        .unwrap()
        .key_id
        .unwrap();
    let simulate = |action: &str| SimulateAuthorizationRequest {
        principal_arn: ALICE.into(),
        action: action.into(),
        key_id: key.clone(),
        ..Default::default()
    };
    let mut admin = AdminServiceClient::new(r.channel(1));
    let ok = admin
        .simulate_authorization(simulate("kms:Encrypt"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.decision, "allowed");
    let sids: Vec<&str> = ok.checks[0]
        .statements
        .iter()
        .map(|s| s.sid.as_str())
        .collect();
    assert_eq!(sids, ["Account", "UseKeys"]);
    assert!(ok.checks[0].message.is_empty());

    let deny = admin
        .simulate_authorization(simulate("kms:Decrypt"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deny.decision, "explicitDeny");
    let c = &deny.checks[0];
    assert_eq!(
        (
            c.statements[0].policy_type.as_str(),
            c.statements[0].sid.as_str(),
            c.statements[0].index
        ),
        ("key", "NoAliceDecrypt", 1)
    );
    assert_eq!(
        c.message,
        format!("User: {ALICE} is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:111122223333:key/{key} with an explicit deny in a resource-based policy")
    );

    let implicit = admin
        .simulate_authorization(simulate("kms:ScheduleKeyDeletion"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(implicit.decision, "implicitDeny");
    assert!(implicit.checks[0]
        .message
        .ends_with("because no identity-based policy allows the kms:ScheduleKeyDeletion action"));

    let bad = admin
        .simulate_authorization(simulate("s3:GetObject"))
        .await
        .unwrap_err();
    assert_eq!(error_from_status(&bad).code(), "ValidationException");
    let mut missing = simulate("kms:Encrypt");
    missing.key_id = "1234abcd-12ab-34cd-56ef-1234567890ab".into();
    let gone = admin.simulate_authorization(missing).await.unwrap_err();
    assert_eq!(error_from_status(&gone).code(), "NotFoundException");
}

/// Decisions are cached, and what changes them invalidates them: each step below first
/// repeats a call (so a stale decision would be the one kept) and then changes one thing the
/// decision depends on: a grant created, a grant revoked, the key policy replaced, and the
/// clock (a node-local skew, which goes through no Raft command, so only a decision that was
/// never kept can follow it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cached_decisions_follow_grants_key_policy_and_the_clock() {
    use kmsim_proto::admin::v1::SetClockSkewRequest;
    let r = Region::with_operator_as_alice(
        r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["kms:CreateKey","kms:CreateGrant","kms:RevokeGrant","kms:PutKeyPolicy"],"Resource":"*"}]}"#,
    );
    r.leader(&[1]).await;
    let key = r.create_key(1).await;
    // Encrypt twice; `Ok` or the error code, the same both times.
    let encrypt = || async {
        let mut answers = Vec::new();
        for _ in 0..2 {
            let a = r
                .kms(1)
                .encrypt(pb::EncryptRequest {
                    key_id: Some(key.clone()),
                    plaintext: Some(b"x".to_vec()),
                    ..Default::default()
                })
                .await
                .map(|_| ())
                .map_err(|s| error_from_status(&s).code().to_string());
            answers.push(a);
        }
        assert_eq!(answers[0], answers[1]);
        answers.remove(0)
    };
    let denied = Err("AccessDeniedException".to_string());
    assert_eq!(encrypt().await, denied, "no policy allows alice to encrypt");

    let grant_id = r
        .kms(1)
        .create_grant(pb::CreateGrantRequest {
            key_id: Some(key.clone()),
            grantee_principal: Some(ALICE.into()),
            operations: vec!["Encrypt".into()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .grant_id;
    assert_eq!(encrypt().await, Ok(()), "the new grant allows");

    r.kms(1)
        .revoke_grant(pb::RevokeGrantRequest {
            key_id: Some(key.clone()),
            grant_id,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(encrypt().await, denied, "the grant is gone");

    // Alice may encrypt until a day from now, by the Region's clock.
    let until = r.status(1).await.clock_now as i64 + 86_400;
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::111122223333:root"}},"Action":"kms:*","Resource":"*"}},
            {{"Effect":"Allow","Principal":{{"AWS":"{ALICE}"}},"Action":"kms:Encrypt","Resource":"*",
              "Condition":{{"DateLessThan":{{"aws:CurrentTime":"{until}"}}}}}}]}}"#
    );
    r.kms(1)
        .put_key_policy(pb::PutKeyPolicyRequest {
            key_id: Some(key.clone()),
            policy: Some(policy),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(encrypt().await, Ok(()), "the new key policy allows");

    AdminServiceClient::new(r.channel(1))
        .set_clock_skew(SetClockSkewRequest {
            skew_ms: 2 * 86_400_000,
            drift_ms_per_s: 0,
        })
        .await
        .unwrap();
    assert_eq!(
        encrypt().await,
        denied,
        "two days later the condition fails"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batched_key_view_shows_what_describe_rotations_and_aliases_show() {
    use kmsim_proto::admin::v1::ReadKeyViewsRequest;
    let r = Region::new(3);
    let leader = r.leader(&[1, 2, 3]).await;
    let follower = [1, 2, 3].into_iter().find(|i| *i != leader).unwrap();
    let mut kms = r.kms(leader);
    let create = |req: pb::CreateKeyRequest| {
        let mut kms = r.kms(leader);
        async move {
            kms.create_key(req)
                .await
                .unwrap()
                .into_inner()
                .key_metadata
                .unwrap()
                .key_id
                .unwrap()
        }
    };
    // A multi-Region primary with two aliases and one rotation; a signing key (no rotations
    // to list); a key pending deletion (still listed: ListKeyRotations serves every state).
    let mrk = create(pb::CreateKeyRequest {
        multi_region: Some(true),
        ..Default::default()
    })
    .await;
    for alias in ["alias/view-b", "alias/view-a"] {
        kms.create_alias(pb::CreateAliasRequest {
            alias_name: Some(alias.into()),
            target_key_id: Some(mrk.clone()),
        })
        .await
        .unwrap();
    }
    kms.rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
        key_id: Some(mrk.clone()),
    })
    .await
    .unwrap();
    let signing = create(pb::CreateKeyRequest {
        key_spec: Some("ECC_NIST_P256".into()),
        key_usage: Some("SIGN_VERIFY".into()),
        ..Default::default()
    })
    .await;
    let doomed = r.create_key(leader).await;
    kms.schedule_key_deletion(pb::ScheduleKeyDeletionRequest {
        key_id: Some(doomed.clone()),
        pending_window_in_days: Some(7),
    })
    .await
    .unwrap();

    // Asked of a follower right after the leader acknowledged the writes: the read index
    // makes it show all of them. A key the Region does not hold is left out.
    let absent = "00000000-0000-4000-8000-000000000000".to_string();
    let mut admin = AdminServiceClient::new(r.channel(follower));
    let views = admin
        .read_key_views(ReadKeyViewsRequest {
            key_ids: vec![mrk.clone(), absent, signing.clone(), doomed.clone()],
        })
        .await
        .unwrap()
        .into_inner()
        .keys;
    let ids: Vec<&str> = views.iter().map(|v| v.key_id.as_str()).collect();
    assert_eq!(ids, [mrk.as_str(), signing.as_str(), doomed.as_str()]);

    // Each view is what the KMS API of the same node says.
    let mut kms = r.kms(follower);
    for v in &views {
        let md = r
            .describe(follower, &v.key_id)
            .await
            .unwrap()
            .key_metadata
            .unwrap();
        assert_eq!(Some(&v.key_state), md.key_state.as_ref());
        let mrc = md.multi_region_configuration.unwrap_or_default();
        assert_eq!(v.multi_region_key_type, mrc.multi_region_key_type);
        assert_eq!(
            v.primary_region,
            mrc.primary_key.and_then(|p| p.region),
            "{}",
            v.key_id
        );
        assert!(v.replica_regions.is_empty());
        let rotations = kms
            .list_key_rotations(pb::ListKeyRotationsRequest {
                key_id: Some(v.key_id.clone()),
                ..Default::default()
            })
            .await
            .ok()
            .map(|a| a.into_inner().rotations.len() as u32);
        assert_eq!(v.rotations, rotations, "{}", v.key_id);
        let aliases: Vec<String> = kms
            .list_aliases(pb::ListAliasesRequest {
                key_id: Some(v.key_id.clone()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .aliases
            .into_iter()
            .filter_map(|a| a.alias_name)
            .collect();
        assert_eq!(v.aliases, aliases);
    }
    // What the API showed is what was written.
    assert_eq!(views[0].multi_region_key_type.as_deref(), Some("PRIMARY"));
    assert_eq!(views[0].primary_region.as_deref(), Some("us-east-1"));
    assert_eq!(views[0].aliases, ["alias/view-a", "alias/view-b"]);
    assert_eq!(views[0].rotations, Some(1));
    assert_eq!(views[1].rotations, None);
    assert_eq!(views[2].key_state, "PendingDeletion");
    assert_eq!(views[2].rotations, Some(0));

    // What is not a key ID, and too many at once, are refused.
    let bad = admin
        .read_key_views(ReadKeyViewsRequest {
            key_ids: vec!["alias/view-a".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");
    let many = admin
        .read_key_views(ReadKeyViewsRequest {
            key_ids: vec![mrk.clone(); 1001],
        })
        .await
        .unwrap_err();
    assert_eq!(many.code(), tonic::Code::InvalidArgument, "{many:?}");
}
