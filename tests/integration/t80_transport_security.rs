//! Transport security against real node processes: every gRPC listener requires a client
//! certificate from the cluster CA (anything else fails the handshake, before any handler),
//! and each service admits by the certificate's identity: Raft only nodes of its Region, sync
//! only nodes of other Regions, admin only the operator (Status also the Region's nodes), KMS
//! only the operator and the clients the topology maps to a principal, which the audit
//! records.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use kmsim_node::tls::issue::ClusterCa;
use kmsim_node::tls::{Dialer, Identity, KeyedCert, TlsClient};
use kmsim_proto::admin::v1::admin_service_client::AdminServiceClient;
use kmsim_proto::admin::v1::{
    AdvanceClockRequest, ClearLinkFaultsRequest, ListAuditEventsRequest, StatusRequest,
};
use kmsim_proto::kms::v1 as pb;
use kmsim_proto::kms::v1::kms_service_client::KmsServiceClient;
use kmsim_proto::raft::v1::raft_service_client::RaftServiceClient;
use kmsim_proto::raft::v1::{ProposeRequest, RaftPayload};
use kmsim_proto::relay::v1::relay_service_client::RelayServiceClient;
use kmsim_proto::relay::v1::{Header, RelayRequest};
use kmsim_proto::sync::v1::sync_service_client::SyncServiceClient;
use kmsim_proto::sync::v1::SyncEnvelope;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::Code;

use crate::harness::{channel, ok, Cluster};
use crate::t70_multi_region::{A, B};

/// A status that is not a transport failure: the call reached the server and was refused
/// with `code`, and the message names who called and who is admitted.
fn assert_refused<T: std::fmt::Debug>(
    r: Result<tonic::Response<T>, tonic::Status>,
    code: Code,
    caller: &str,
) {
    let s = r.expect_err("the call must be refused");
    assert_eq!(s.code(), code, "{s:?}");
    assert!(
        s.message().contains(caller) && s.message().contains("admits"),
        "the refusal names the caller ({caller}) and who is admitted: {}",
        s.message()
    );
}

/// Every service of one node, called over `ch`: each call must fail without reaching a
/// handler (a transport error: the handshake refused the connection).
async fn every_service_fails_to_connect(ch: Channel, what: &str) {
    let kms = KmsServiceClient::new(ch.clone())
        .list_keys(pb::ListKeysRequest::default())
        .await;
    let admin = AdminServiceClient::new(ch.clone())
        .advance_clock(AdvanceClockRequest { millis: 1_000 })
        .await;
    let status = AdminServiceClient::new(ch.clone())
        .status(StatusRequest {})
        .await;
    let raft = RaftServiceClient::new(ch.clone())
        .vote(RaftPayload {
            data: vec![1, 2, 3],
        })
        .await;
    let propose = RaftServiceClient::new(ch.clone())
        .propose(ProposeRequest {
            command: vec![0],
            hops: 0,
            request_id: vec![0; 16],
        })
        .await;
    let sync = SyncServiceClient::new(ch.clone())
        .deliver(SyncEnvelope::default())
        .await;
    let relay = RelayServiceClient::new(ch)
        .forward(RelayRequest::default())
        .await;
    let codes = [
        kms.map(|_| ()),
        admin.map(|_| ()),
        status.map(|_| ()),
        raft.map(|_| ()),
        propose.map(|_| ()),
        sync.map(|_| ()),
        relay.map(|_| ()),
    ];
    for (service, r) in ["kms", "admin", "status", "raft", "propose", "sync", "relay"]
        .iter()
        .zip(codes)
    {
        let s = r.expect_err(&format!("{what}: {service} must refuse the connection"));
        // A refused handshake never yields a gRPC answer: the channel reports the transport.
        assert!(
            matches!(
                s.code(),
                Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled
            ),
            "{what}: {service}: {s:?}"
        );
        assert!(
            !s.message().contains("admits"),
            "{what}: {service} reached the admission layer: {s:?}"
        );
    }
}

fn endpoint(c: &Cluster, region: &str, id: u64) -> String {
    c.addr(region, id)
}

fn ca_pem(c: &Cluster) -> Vec<u8> {
    let t = c.dir.topology().unwrap();
    std::fs::read(t.tls.unwrap().ca_cert()).unwrap()
}

/// The cluster's CA, loaded from the launcher's files (as the operator issuing a client
/// certificate would).
fn cluster_ca(c: &Cluster) -> ClusterCa {
    let t = c.dir.topology().unwrap().tls.unwrap();
    ClusterCa::load(
        &std::fs::read_to_string(t.ca_cert()).unwrap(),
        &std::fs::read_to_string(t.ca_key()).unwrap(),
    )
    .unwrap()
}

fn keyed(issued: kmsim_node::tls::issue::Issued) -> KeyedCert {
    KeyedCert {
        cert_pem: issued.cert_pem.into_bytes(),
        key_pem: issued.key_pem.into_bytes(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_foreign_and_missing_certificates_are_refused_in_the_handshake() {
    let c = Cluster::start(&[A], 1);
    c.leader(A).await;
    let addr = endpoint(&c, A, 1);
    let before = c.status(A, 1).await.expect("status");

    // Plaintext.
    every_service_fails_to_connect(channel(&Dialer::plain(), &addr), "plaintext").await;

    // A certificate from another CA that names the operator (the client trusts the real CA,
    // so only the server's check of the client certificate can refuse it).
    let foreign = ClusterCa::generate("another CA").unwrap();
    let forged = foreign.issue(&Identity::Operator, &[]).unwrap();
    let dialer = Dialer::tls(&ca_pem(&c), &keyed(forged));
    every_service_fails_to_connect(channel(&dialer, &addr), "foreign CA").await;

    // TLS without a client certificate.
    let no_cert = Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca_pem(&c))))
        .unwrap()
        .timeout(Duration::from_secs(10))
        .connect_lazy();
    every_service_fails_to_connect(no_cert, "no client certificate").await;

    // Nothing any of them sent was applied: the clock advance never ran, the log did not grow.
    let after = c.status(A, 1).await.expect("status");
    assert_eq!(after.term, before.term);
    let mut admin = c.admin(A, 1);
    ok(admin.clear_link_faults(ClearLinkFaultsRequest {}).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_service_admits_only_the_identities_of_its_role() {
    let c = Cluster::start(&[A, B], 2);
    c.leader(A).await;
    c.leader(B).await;
    let node_a1 = "node aws/us-east-1/1";

    // Raft: a node of Region A is refused by Region B's Raft service; the operator too.
    let cross = c.channel_as_node(A, 1, B, 1);
    assert_refused(
        RaftServiceClient::new(cross.clone())
            .vote(RaftPayload { data: vec![] })
            .await,
        Code::PermissionDenied,
        node_a1,
    );
    assert_refused(
        RaftServiceClient::new(cross.clone())
            .propose(ProposeRequest {
                command: vec![0],
                hops: 0,
                request_id: vec![0; 16],
            })
            .await,
        Code::PermissionDenied,
        node_a1,
    );
    assert_refused(
        RaftServiceClient::new(c.channel(A, 1))
            .propose(ProposeRequest {
                command: vec![0],
                hops: 0,
                request_id: vec![0; 16],
            })
            .await,
        Code::PermissionDenied,
        "the operator",
    );

    // Admin: a node certificate is refused, except Status from a node of the same Region.
    let same = c.channel_as_node(A, 2, A, 1);
    assert_refused(
        AdminServiceClient::new(same.clone())
            .advance_clock(AdvanceClockRequest { millis: 1 })
            .await,
        Code::PermissionDenied,
        "node aws/us-east-1/2",
    );
    let st = ok(AdminServiceClient::new(same.clone())
        .status(StatusRequest {})
        .await);
    assert_eq!((st.region.as_str(), st.node_id), (A, 1));
    assert_refused(
        AdminServiceClient::new(cross.clone())
            .status(StatusRequest {})
            .await,
        Code::PermissionDenied,
        node_a1,
    );

    // Sync: refused from a node of the same Region; a node of another Region passes the
    // transport and meets the envelope's own checks.
    assert_refused(
        SyncServiceClient::new(same.clone())
            .deliver(SyncEnvelope::default())
            .await,
        Code::PermissionDenied,
        "node aws/us-east-1/2",
    );
    let through = SyncServiceClient::new(cross.clone())
        .deliver(SyncEnvelope::default())
        .await
        .expect_err("an empty envelope is refused by the synchronizer");
    assert!(
        !through.message().contains("admits"),
        "a node of another Region passes admission: {through:?}"
    );

    // KMS: a node certificate is no principal.
    assert_refused(
        KmsServiceClient::new(same)
            .list_keys(pb::ListKeysRequest::default())
            .await,
        Code::PermissionDenied,
        "node aws/us-east-1/2",
    );
    // Relay: the operator and clients are refused; nodes (of any Region) pass admission, and
    // the request meets the AWS front's own checks.
    assert_refused(
        RelayServiceClient::new(c.channel(A, 1))
            .forward(RelayRequest::default())
            .await,
        Code::PermissionDenied,
        "the operator",
    );
    let relayed = RelayServiceClient::new(cross.clone())
        .forward(RelayRequest::default())
        .await
        .expect_err("an empty request line is refused by the relay");
    assert!(
        !relayed.message().contains("admits"),
        "a node passes the relay's admission: {relayed:?}"
    );
    // The operator is admitted everywhere the design says.
    ok(c.kms(A, 1).list_keys(pb::ListKeysRequest::default()).await);
    ok(c.admin(A, 1)
        .clear_link_faults(ClearLinkFaultsRequest {})
        .await);
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_kms_callers_act_as_the_principal_their_certificate_maps_to() {
    let role = "arn:aws:iam::111122223333:role/app";
    let c = Cluster::start_edited(&[A], 1, |t| {
        t.tls.as_mut().unwrap().clients.push(TlsClient {
            name: "app".into(),
            principal_arn: role.into(),
        });
    });
    c.leader(A).await;
    let ca = cluster_ca(&c);
    let addr = endpoint(&c, A, 1);
    let as_client = |name: &str| {
        let cert = ca
            .issue(&Identity::Client(name.into()), &[])
            .expect("issue");
        KmsServiceClient::new(channel(&Dialer::tls(&ca_pem(&c), &keyed(cert)), &addr))
    };

    // A client the topology maps: its calls act as its role.
    let md = ok(as_client("app")
        .create_key(pb::CreateKeyRequest::default())
        .await)
    .key_metadata
    .expect("metadata");
    let key = md.key_id.expect("key id");
    // The operator acts as the account's root.
    ok(c.kms(A, 1)
        .describe_key(pb::DescribeKeyRequest {
            key_id: Some(key.clone()),
            ..Default::default()
        })
        .await);
    let events = ok(c
        .admin(A, 1)
        .list_audit_events(ListAuditEventsRequest {
            key_id: key.clone(),
            node_calls: true,
            ..Default::default()
        })
        .await)
    .events;
    let created = ok(c
        .admin(A, 1)
        .list_audit_events(ListAuditEventsRequest {
            key_id: key.clone(),
            ..Default::default()
        })
        .await)
    .events;
    let create = created
        .iter()
        .find(|e| e.event_name == "CreateKey")
        .expect("CreateKey audited");
    assert!(create.record.contains(role), "{}", create.record);
    let describe = events
        .iter()
        .find(|e| e.event_name == "DescribeKey")
        .expect("DescribeKey audited");
    assert!(
        describe.record.contains("arn:aws:iam::111122223333:root"),
        "{}",
        describe.record
    );
    assert!(
        describe.record.contains("127.0.0.1"),
        "source recorded: {}",
        describe.record
    );

    // A certificate from the cluster CA whose client name the topology does not map: refused.
    assert_refused(
        as_client("stranger")
            .list_keys(pb::ListKeysRequest::default())
            .await,
        Code::PermissionDenied,
        "client stranger",
    );
}

#[test]
fn the_launcher_writes_every_certificate_and_key_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = kmsim_sim::cluster::ClusterDir::new(tmp.path().join("c"));
    let t = dir
        .create(
            &[(A.to_string(), 2), (B.to_string(), 1)],
            0,
            0,
            false,
            false,
        )
        .unwrap();
    let tls = t.tls.expect("kmsim up writes a [tls] table");
    let mut files: Vec<_> = std::fs::read_dir(&tls.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    // CA cert and key, 3 nodes, the operator and the gateway: a certificate and a key each.
    assert_eq!(files.len(), 2 + 2 * 3 + 2 + 2, "{files:?}");
    for f in &files {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", f.display());
    }
    let (cert, _) = tls.node_files(B, 1);
    let pem = std::fs::read(cert).unwrap();
    assert_eq!(
        Identity::from_certificate_pem(&pem),
        Ok(Identity::Node {
            partition: "aws".into(),
            region: B.into(),
            id: 1
        })
    );
}

/// One signed AWS JSON call over HTTPS to `addr`, trusting only the cluster CA.
async fn https_call(c: &Cluster, addr: &str, region: &str) -> Result<serde_json::Value, String> {
    let config = kmsim_node::tls::https_client_config(&ca_pem(c)).map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    let name = rustls_server_name(host);
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let client = c.raw(&format!("http://{addr}"), region);
    let req = client
        .signed("ListKeys", bytes::Bytes::from_static(b"{}"))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    assert_eq!(resp.status(), 200);
    use http_body_util::BodyExt;
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| e.to_string())
}

fn rustls_server_name(host: &str) -> tokio_rustls::rustls::pki_types::ServerName<'static> {
    tokio_rustls::rustls::pki_types::ServerName::try_from(host.to_string()).expect("server name")
}

#[tokio::test(flavor = "multi_thread")]
async fn aws_tls_serves_the_gateway_and_the_nodes_over_https_with_the_cluster_ca() {
    let c = Cluster::start_edited(&[A, B], 1, |t| t.tls.as_mut().unwrap().aws_https = true);
    c.leader(A).await;
    c.leader(B).await;
    let gateway = c
        .dir
        .topology()
        .unwrap()
        .endpoint
        .unwrap()
        .listen
        .to_string();
    // Through the gateway to each Region (the gateway forwards over HTTPS), and to a node.
    for region in [A, B] {
        let keys = https_call(&c, &gateway, region)
            .await
            .expect("gateway over https");
        assert!(keys.get("Keys").is_some(), "{keys}");
    }
    let node = c.aws_url(B, 1).trim_start_matches("http://").to_string();
    // A node of B answers a request signed for A by forwarding it over HTTPS.
    let keys = https_call(&c, &node, A).await.expect("node over https");
    assert!(keys.get("Keys").is_some(), "{keys}");
    // Plain HTTP to the HTTPS endpoint gets no AWS answer.
    let plain = c
        .raw(&format!("http://{gateway}"), A)
        .call("ListKeys", &serde_json::json!({}))
        .await;
    assert!(
        plain.as_ref().map(|a| a.status != 200).unwrap_or(true),
        "plain HTTP answered: {:?}",
        plain.map(|a| a.status)
    );
}

/// The gateway's certificate lets a process relay AWS requests, not act as anyone: a relayed
/// request is authenticated by the node exactly as a direct one, so without a valid SigV4
/// signature it is refused, and nothing runs.
#[tokio::test(flavor = "multi_thread")]
async fn a_relayed_request_is_authenticated_by_the_node_itself() {
    let c = Cluster::start(&[A], 1);
    c.leader(A).await;
    let topology = c.dir.topology().unwrap();
    let gateway = Dialer::gateway(topology.tls.as_ref()).unwrap();
    let mut relay = RelayServiceClient::new(channel(&gateway, &c.addr(A, 1)));
    let header = |name: &str, value: &str| Header {
        name: name.as_bytes().to_vec().into(),
        value: value.as_bytes().to_vec().into(),
    };
    let request = |authorization: Option<&str>| RelayRequest {
        method: "POST".into(),
        path: "/".into(),
        headers: [
            Some(header("host", "kms.us-east-1.amazonaws.com")),
            Some(header("content-type", "application/x-amz-json-1.1")),
            Some(header("x-amz-target", "TrentService.CreateKey")),
            Some(header("x-amz-date", "20261206T000000Z")),
            authorization.map(|a| header("authorization", a)),
        ]
        .into_iter()
        .flatten()
        .collect(),
        body: b"{}".to_vec().into(),
        source_ip: "192.0.2.7".into(),
    };
    let unsigned = ok(relay.forward(request(None)).await);
    assert_eq!(unsigned.status, 400);
    let body = String::from_utf8_lossy(&unsigned.body);
    assert!(body.contains("MissingAuthenticationToken"), "{body}");
    let access_key = &topology.credentials[0].access_key_id;
    let forged = format!(
        "AWS4-HMAC-SHA256 Credential={access_key}/20261206/us-east-1/kms/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={}",
        "0".repeat(64)
    );
    let refused = ok(relay.forward(request(Some(&forged))).await);
    assert_eq!(refused.status, 400);
    let body = String::from_utf8_lossy(&refused.body);
    assert!(
        body.contains("InvalidSignatureException") || body.contains("signature"),
        "{body}"
    );
    let keys = ok(c.kms(A, 1).list_keys(pb::ListKeysRequest::default()).await);
    assert!(keys.keys.is_empty(), "nothing was created");
    c.down();
}
