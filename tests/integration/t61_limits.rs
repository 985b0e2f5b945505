//! Resource limits against hostile or broken clients: slow sockets on the AWS JSON endpoint are
//! closed after their timeouts while a well-behaved client keeps its answers; a flood of
//! RSA-4096 key pairs does not starve Raft (no leader change); an oversized gRPC message is
//! refused before it is decoded.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use kmsim_node::config::EndpointLimits;
use kmsim_proto::kms::v1 as pb;

use crate::harness::{wait_for, Cluster};
use crate::t10_basics::create_key;
use crate::t41_aws_json_edges::head_bytes;

const R: &str = "us-east-1";

/// A slow client: connects, sends `first`, then one byte of `trickle` every 250 ms, and reports
/// whether the server closed the connection within `bound`.
async fn slow_socket(addr: String, first: Vec<u8>, trickle: u8, bound: Duration) -> bool {
    let Ok(mut s) = TcpStream::connect(&addr).await else {
        return false;
    };
    if s.write_all(&first).await.is_err() {
        return true;
    }
    let deadline = tokio::time::Instant::now() + bound;
    let mut buf = [0u8; 4096];
    while tokio::time::Instant::now() < deadline {
        // Once the server has closed, a write fails or a read sees the end (after any answer).
        if s.write_all(&[trickle]).await.is_err() {
            return true;
        }
        match tokio::time::timeout(Duration::from_millis(250), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) | Err(_) => {}
        }
    }
    false
}

/// A cap of 8 connections and 2 s timeouts; 16 slow sockets (half trickling a head, half a
/// body) are opened. A client that holds a connection from before keeps getting answers on it
/// while they are open; every slow socket is closed by the server (without the header and body
/// timeouts they would trickle on for the whole bound); afterwards a new connection is served.
#[tokio::test(flavor = "multi_thread")]
async fn slow_sockets_are_closed_and_a_well_behaved_client_keeps_its_answers() {
    let limits = EndpointLimits {
        max_connections: 8,
        header_read_timeout_ms: 2000,
        body_read_timeout_ms: 2000,
        idle_timeout_ms: 4000,
    };
    let c = Cluster::start_edited(&[R], 1, |t| t.limits = limits.clone());
    c.leader(R).await;
    let url = c.aws_url(R, 1);
    let client = c.raw(&url, R);
    let addr = client.authority().to_string();

    let mut good = client.connect().await.unwrap();
    let list = || {
        client
            .signed("ListKeys", Bytes::from_static(b"{}"))
            .unwrap()
    };
    assert_eq!(good.send(list()).await.unwrap().status, StatusCode::OK);

    // Twice the cap: half stop inside the head, half send a signed head and trickle the body.
    let bound = Duration::from_secs(20);
    let mut slow = tokio::task::JoinSet::new();
    for i in 0..2 * limits.max_connections {
        let first = if i % 2 == 0 {
            b"POST / HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ".to_vec()
        } else {
            // Signed (it passes the header checks), with a declared body that never comes.
            let req = client
                .signed("ListKeys", Bytes::from_static(b"{}"))
                .unwrap();
            head_bytes(&req, &[("content-length", "1000")])
        };
        let trickle = if i % 2 == 0 { b'a' } else { b' ' };
        slow.spawn(slow_socket(addr.clone(), first, trickle, bound));
    }

    // While they are open, the connection opened before keeps being served (a request every
    // 200 ms, well within its idle timeout).
    for _ in 0..10 {
        let a = good.send(list()).await.unwrap();
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(good);

    let mut closed = 0;
    while let Some(r) = slow.join_next().await {
        assert!(
            r.unwrap(),
            "a slow socket was still open after {bound:?}: the timeouts do not apply"
        );
        closed += 1;
    }
    assert_eq!(closed, 2 * limits.max_connections);

    // Afterwards a new connection is served.
    let mut fresh = client.connect().await.unwrap();
    let a = fresh.send(list()).await.unwrap();
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
}

/// At the cap, further connections wait unaccepted instead of being dropped: with one slot, a
/// second client's request is answered once the first connection closes.
#[tokio::test(flavor = "multi_thread")]
async fn a_connection_over_the_cap_waits_and_is_served_when_a_slot_frees() {
    let c = Cluster::start_edited(&[R], 1, |t| {
        t.limits = EndpointLimits {
            max_connections: 1,
            ..EndpointLimits::default()
        }
    });
    c.leader(R).await;
    let client = c.raw(&c.aws_url(R, 1), R);
    let list = || {
        client
            .signed("ListKeys", Bytes::from_static(b"{}"))
            .unwrap()
    };
    let mut first = client.connect().await.unwrap();
    assert_eq!(first.send(list()).await.unwrap().status, StatusCode::OK);

    let mut second = client.connect().await.unwrap();
    let req = list();
    let waiting = tokio::spawn(async move { second.send(req).await });
    // The second connection is not served while the first holds the only slot.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !waiting.is_finished(),
        "a connection over the cap was served"
    );
    assert_eq!(first.send(list()).await.unwrap().status, StatusCode::OK);
    drop(first);
    let a = waiting.await.unwrap().unwrap();
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
}

/// Four times the cores in concurrent RSA_4096 GenerateDataKeyPair calls to the leader, a few
/// rounds: every call succeeds or is throttled, and the Region keeps its leader and term (key
/// generation on the async workers starved the heartbeats and deposed the leader). The
/// election timeout is raised so that a loaded test machine alone does not cause an election;
/// RSA-4096 generation on the workers blocks them for far longer.
#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_rsa_4096_key_pairs_changes_no_leader() {
    let c = Cluster::start_edited(&[R], 3, |t| {
        t.raft.election_timeout_min_ms = 1500;
        t.raft.election_timeout_max_ms = 3000;
    });
    let leader = c.leader(R).await;
    let key = create_key(&c, leader, "flood").await.key_id.unwrap();
    c.settle(R).await;
    let before = c.status(R, leader).await.unwrap();
    assert_eq!(before.leader_id, Some(leader));

    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let concurrency = 4 * cores;
    let (mut succeeded, mut throttled) = (0, 0);
    for _round in 0..3 {
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..concurrency {
            // A client that waits as long as AWS SDKs do (the harness's channel gives up after
            // a few seconds, before a queued call is answered or throttled).
            let channel = c.channel_with_timeout(R, leader, Duration::from_secs(120));
            let mut kms = kmsim_proto::kms::v1::kms_service_client::KmsServiceClient::new(channel);
            let key = key.clone();
            calls.spawn(async move {
                tokio::time::timeout(
                    Duration::from_secs(120),
                    kms.generate_data_key_pair_without_plaintext(
                        pb::GenerateDataKeyPairWithoutPlaintextRequest {
                            key_id: Some(key),
                            key_pair_spec: Some("RSA_4096".into()),
                            ..Default::default()
                        },
                    ),
                )
                .await
                .expect("a call neither answered nor was refused within 120 s")
            });
        }
        while let Some(r) = calls.join_next().await {
            match r.unwrap() {
                Ok(resp) => {
                    assert!(resp.into_inner().public_key.is_some());
                    succeeded += 1;
                }
                Err(s) => {
                    let e = kmsim_proto::status::error_from_status(&s);
                    assert_eq!(e.code(), "ThrottlingException", "{s:?}");
                    throttled += 1;
                }
            }
        }
    }
    assert!(succeeded > 0, "no call succeeded ({throttled} throttled)");
    for id in c.ids(R) {
        let after = c.status(R, id).await.unwrap();
        assert_eq!(
            (after.leader_id, after.term),
            (Some(leader), before.term),
            "node {id}: the leader or term changed during the flood"
        );
    }
}

/// A KMS request over the gRPC message limit (1 MiB) is refused before it is decoded, and the
/// node keeps serving.
#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_grpc_request_is_refused_before_decoding() {
    let c = Cluster::start(&[R], 1);
    c.leader(R).await;
    let r = c
        .kms(R, 1)
        .encrypt(pb::EncryptRequest {
            key_id: Some("alias/none".into()),
            plaintext: Some(vec![7u8; 2 << 20]),
            ..Default::default()
        })
        .await;
    let s = r.unwrap_err();
    assert_eq!(s.code(), tonic::Code::OutOfRange, "{s:?}");
    assert!(s.message().contains("too large"), "{s:?}");
    wait_for(
        Duration::from_secs(10),
        "the node still answers",
        || async {
            c.kms(R, 1)
                .list_keys(pb::ListKeysRequest::default())
                .await
                .ok()
        },
    )
    .await;
}
