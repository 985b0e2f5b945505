//! The test harness: a cluster of real node processes in a temporary data directory, started
//! and stopped with the `kmsim` binary under test, plus clients and condition waits.

#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use std::collections::HashMap;
use std::sync::Mutex;

use tonic::transport::Channel;

use kmsim_core::KmsError;
use kmsim_node::config::Topology;
use kmsim_node::tls::Dialer;
use kmsim_proto::admin::v1::admin_service_client::AdminServiceClient;
use kmsim_proto::admin::v1::{StatusRequest, StatusResponse};
use kmsim_proto::kms::v1::kms_service_client::KmsServiceClient;
use kmsim_proto::raft::v1::raft_service_client::RaftServiceClient;
use kmsim_proto::status::error_from_status;
use kmsim_sim::aws_client::{AwsJsonClient, Signer};
use kmsim_sim::cluster::{ClusterDir, NodeName};

/// The binary under test.
pub fn kmsim_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kmsim"))
}

/// A lazily connecting channel to `addr` dialed with `dialer`.
pub fn channel(dialer: &Dialer, addr: &str) -> Channel {
    dialer
        .endpoint(addr)
        .expect("endpoint")
        .timeout(Duration::from_secs(15))
        .connect_lazy()
}

/// Runs `kmsim <args>` and returns stdout; panics with its output if it fails.
pub fn kmsim(args: &[&str]) -> String {
    kmsim_env(args, &[])
}

/// [`kmsim`] with extra environment variables (which the nodes it starts inherit).
pub fn kmsim_env(args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(kmsim_exe())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run kmsim");
    assert!(
        out.status.success(),
        "kmsim {args:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `kmsim <args>`, which must fail, and returns its stderr; panics if it succeeds.
pub fn kmsim_fails(args: &[&str]) -> String {
    let out = Command::new(kmsim_exe())
        .args(args)
        .output()
        .expect("run kmsim");
    assert!(
        !out.status.success(),
        "kmsim {args:?} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A running local cluster owned by one test. Dropping it stops every node it started.
pub struct Cluster {
    /// Keeps the directory alive (and removes it at the end).
    _tmp: tempfile::TempDir,
    /// The cluster's files.
    pub dir: ClusterDir,
    /// How the tests dial nodes: the operator certificate of the cluster.
    pub dialer: Dialer,
    /// One channel per node address, reused (one TLS handshake per node, not per call).
    channels: Mutex<HashMap<String, Channel>>,
}

impl Cluster {
    /// Starts `nodes` nodes in each of `regions`, with test hooks, on free ports (gRPC, every
    /// node's AWS endpoint and the gateway).
    pub fn start(regions: &[&str], nodes: usize) -> Cluster {
        Cluster::start_with_env(regions, nodes, &[])
    }

    /// [`Cluster::start`] with extra environment variables for every process (e.g. `KMSIM_LOG`).
    pub fn start_with_env(regions: &[&str], nodes: usize, env: &[(&str, &str)]) -> Cluster {
        let tmp = tempfile::Builder::new()
            .prefix("kmsim-test-")
            .tempdir()
            .expect("tempdir");
        let data = tmp.path().join("cluster");
        let data_s = data.to_string_lossy().into_owned();
        let regions_s = regions.join(",");
        let nodes_s = nodes.to_string();
        kmsim_env(
            &[
                "up",
                "--data-dir",
                &data_s,
                "--regions",
                &regions_s,
                "--nodes",
                &nodes_s,
                "--base-port",
                "0",
                "--aws-port",
                "0",
                "--detach",
                "--test-hooks",
                "--timeout",
                "60",
            ],
            env,
        );
        Cluster::open(tmp, ClusterDir::new(data))
    }

    fn open(tmp: tempfile::TempDir, dir: ClusterDir) -> Cluster {
        let dialer = dir.operator_dialer().expect("operator certificate");
        Cluster {
            _tmp: tmp,
            dir,
            dialer,
            channels: Mutex::new(HashMap::new()),
        }
    }

    /// Like [`Cluster::start`], but the topology the launcher would write is first changed by
    /// `edit` (e.g. to add credentials), then `kmsim up` starts the cluster found there.
    pub fn start_edited(
        regions: &[&str],
        nodes: usize,
        edit: impl FnOnce(&mut Topology),
    ) -> Cluster {
        let tmp = tempfile::Builder::new()
            .prefix("kmsim-test-")
            .tempdir()
            .expect("tempdir");
        let data = tmp.path().join("cluster");
        let dir = ClusterDir::new(&data);
        let spec: Vec<(String, usize)> = regions.iter().map(|r| (r.to_string(), nodes)).collect();
        dir.create(&spec, 0, 0, true, false)
            .expect("create the cluster");
        // The file as written (relative paths), not the loaded form (resolved paths).
        dir.edit_topology(edit).expect("edit the topology");
        let data_s = data.to_string_lossy().into_owned();
        kmsim(&["up", "--data-dir", &data_s, "--detach", "--timeout", "60"]);
        Cluster::open(tmp, dir)
    }

    /// The gateway's URL (the single AWS endpoint).
    pub fn gateway_url(&self) -> String {
        let t = self.dir.topology().expect("topology");
        format!(
            "http://{}",
            t.endpoint.expect("an [endpoint] section").listen
        )
    }

    /// The URL of one node's own AWS endpoint.
    pub fn aws_url(&self, region: &str, id: u64) -> String {
        let t = self.dir.topology().expect("topology");
        let addr = t
            .region(region)
            .and_then(|r| r.node(id))
            .and_then(|n| n.aws_advertise_addr())
            .expect("node with an AWS endpoint");
        format!("http://{addr}")
    }

    /// An AWS SDK for Rust client of `url`, for `region`, signing as `test`/`test`.
    pub fn sdk(&self, url: &str, region: &str) -> aws_sdk_kms::Client {
        sdk_client(
            url,
            region,
            aws_sdk_kms::config::Credentials::new("test", "test", None, None, "harness"),
        )
    }

    /// A raw AWS JSON client of `url` signing as `test`/`test` for `region`.
    pub fn raw(&self, url: &str, region: &str) -> AwsJsonClient {
        AwsJsonClient::new(url, Signer::new("test", "test", region)).expect("client")
    }

    /// `--data-dir` value for CLI calls.
    pub fn data_dir(&self) -> String {
        self.dir.root().to_string_lossy().into_owned()
    }

    /// The gRPC address of a node.
    pub fn addr(&self, region: &str, id: u64) -> String {
        self.dir
            .nodes()
            .expect("topology")
            .into_iter()
            .find(|(n, _)| n.region == region && n.id == id)
            .map(|(_, e)| e.advertise_addr())
            .expect("node in topology")
    }

    /// Every node id of a Region.
    pub fn ids(&self, region: &str) -> Vec<u64> {
        self.dir
            .nodes()
            .expect("topology")
            .into_iter()
            .filter(|(n, _)| n.region == region)
            .map(|(n, _)| n.id)
            .collect()
    }

    /// The operator's channel to one node (kept and reused).
    pub fn channel(&self, region: &str, id: u64) -> Channel {
        let addr = self.addr(region, id);
        let mut channels = self.channels.lock().expect("lock");
        channels
            .entry(addr.clone())
            .or_insert_with(|| channel(&self.dialer, &addr))
            .clone()
    }

    /// A new operator channel to one node whose calls may take up to `timeout` (the cached ones
    /// give up after 15 s).
    pub fn channel_with_timeout(&self, region: &str, id: u64, timeout: Duration) -> Channel {
        self.dialer
            .endpoint(&self.addr(region, id))
            .expect("endpoint")
            .timeout(timeout)
            .connect_lazy()
    }

    /// A channel to node `to_id` of `to_region` dialed with the certificate of node `as_id` of
    /// `as_region` (as a node, or an attacker holding its key, would).
    pub fn channel_as_node(
        &self,
        as_region: &str,
        as_id: u64,
        to_region: &str,
        to_id: u64,
    ) -> Channel {
        let topo = self.dir.topology().expect("topology");
        let dialer =
            Dialer::for_node(topo.tls.as_ref(), as_region, as_id).expect("node certificate");
        channel(&dialer, &self.addr(to_region, to_id))
    }

    /// A KMS client for one node.
    pub fn kms(&self, region: &str, id: u64) -> KmsServiceClient<Channel> {
        KmsServiceClient::new(self.channel(region, id))
    }

    /// A client of one node's Raft service (`kmsim.raft.v1`), as a peer of the same Region
    /// dials it: the hostile-peer tests use it. Messages of any size may be sent, so that the
    /// node's own bound is what refuses an oversized one.
    pub fn raft(&self, region: &str, id: u64) -> RaftServiceClient<Channel> {
        // With a peer's certificate: the Raft service admits only nodes of its own Region.
        let peer = self
            .ids(region)
            .into_iter()
            .find(|&p| p != id)
            .unwrap_or(id);
        self.raft_as(region, peer, id)
    }

    /// A client of node `id`'s Raft service dialing with node `as_id`'s certificate (a Raft
    /// RPC must speak for the node whose certificate sends it).
    pub fn raft_as(&self, region: &str, as_id: u64, id: u64) -> RaftServiceClient<Channel> {
        RaftServiceClient::new(self.channel_as_node(region, as_id, region, id))
            .max_decoding_message_size(64 << 20)
    }

    /// An admin client for one node.
    pub fn admin(&self, region: &str, id: u64) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel(region, id))
    }

    /// The status of one node, if it answers.
    pub async fn status(&self, region: &str, id: u64) -> Option<StatusResponse> {
        let mut admin = self.admin(region, id);
        match tokio::time::timeout(Duration::from_secs(2), admin.status(StatusRequest {})).await {
            Ok(Ok(r)) => Some(r.into_inner()),
            _ => None,
        }
    }

    /// Waits until some node of the Region reports itself leader; returns its id.
    pub async fn leader(&self, region: &str) -> u64 {
        self.leader_among(region, &self.ids(region)).await
    }

    /// Waits until one of `ids` reports itself leader (e.g. the majority side of a partition,
    /// or the survivors of a crash); returns its id.
    pub async fn leader_among(&self, region: &str, ids: &[u64]) -> u64 {
        wait_for(Duration::from_secs(30), "a leader", || async {
            for id in ids {
                if let Some(s) = self.status(region, *id).await {
                    if s.role == "leader" {
                        return Some(s.node_id);
                    }
                }
            }
            None
        })
        .await
    }

    /// Waits until node `id` of `region` can describe `key_id` from its own applied state.
    pub async fn wait_sees(&self, region: &str, id: u64, key_id: &str) {
        wait_for(Duration::from_secs(30), "node sees the key", || {
            let mut client = self.kms(region, id);
            let key_id = key_id.to_string();
            async move {
                let req = kmsim_proto::kms::v1::DescribeKeyRequest {
                    key_id: Some(key_id),
                    ..Default::default()
                };
                client.describe_key(req).await.ok()
            }
        })
        .await;
    }

    /// Waits until every node of the Region has applied everything any of them had applied
    /// when called: after a write through one node, reads on every node see it. (Followers
    /// answer from their applied state, so without this a read may be one round behind.)
    pub async fn settle(&self, region: &str) {
        let ids = self.ids(region);
        let mut target = 0;
        for id in &ids {
            if let Some(s) = self.status(region, *id).await {
                target = target.max(s.last_applied_index.unwrap_or(0));
            }
        }
        for id in ids {
            wait_for(
                Duration::from_secs(30),
                "every node applies the write",
                || async {
                    self.status(region, id)
                        .await
                        .filter(|s| s.last_applied_index.unwrap_or(0) >= target)
                },
            )
            .await;
        }
    }

    /// Moves the Region's simulated clock forward by `millis` (through its leader, the only
    /// node that takes AdvanceClock) and waits until every node runs on the new time.
    pub async fn advance_clock(&self, region: &str, millis: i64) {
        let ids = self.ids(region);
        let before = self
            .status(region, ids[0])
            .await
            .expect("node answers")
            .clock_offset_ms;
        // Leadership may move between finding the leader and asking it: ask again then.
        wait_for(
            Duration::from_secs(30),
            "AdvanceClock at the leader",
            || async {
                let leader = self.leader(region).await;
                self.admin(region, leader)
                    .advance_clock(kmsim_proto::admin::v1::AdvanceClockRequest { millis })
                    .await
                    .ok()
            },
        )
        .await;
        for id in ids {
            wait_for(
                Duration::from_secs(15),
                "clock shift on every node",
                || async {
                    self.status(region, id)
                        .await
                        .filter(|s| s.clock_offset_ms >= before + millis)
                },
            )
            .await;
        }
    }

    /// DescribeKey on node `id` (the key must exist).
    pub async fn describe(
        &self,
        region: &str,
        id: u64,
        key_id: &str,
    ) -> kmsim_proto::kms::v1::KeyMetadata {
        ok(self
            .kms(region, id)
            .describe_key(kmsim_proto::kms::v1::DescribeKeyRequest {
                key_id: Some(key_id.to_string()),
                ..Default::default()
            })
            .await)
        .key_metadata
        .expect("metadata")
    }

    /// Waits until node `id` describes `key_id` with a metadata for which `pred` holds.
    pub async fn wait_key(
        &self,
        region: &str,
        id: u64,
        key_id: &str,
        what: &str,
        pred: impl Fn(&kmsim_proto::kms::v1::KeyMetadata) -> bool,
    ) -> kmsim_proto::kms::v1::KeyMetadata {
        wait_for(Duration::from_secs(30), what, || async {
            let mut client = self.kms(region, id);
            let md = client
                .describe_key(kmsim_proto::kms::v1::DescribeKeyRequest {
                    key_id: Some(key_id.to_string()),
                    ..Default::default()
                })
                .await
                .ok()?
                .into_inner()
                .key_metadata?;
            pred(&md).then_some(md)
        })
        .await
    }

    /// SIGKILLs one node through `kmsim node kill`.
    pub fn kill(&self, region: &str, id: u64) {
        kmsim(&[
            "node",
            "kill",
            &format!("{region}/{id}"),
            "--data-dir",
            &self.data_dir(),
        ]);
    }

    /// Restarts one node through `kmsim node restart` (waits until it answers).
    pub fn restart(&self, region: &str, id: u64) {
        kmsim(&[
            "node",
            "restart",
            &format!("{region}/{id}"),
            "--data-dir",
            &self.data_dir(),
        ]);
    }

    /// A node's data directory.
    pub fn node_data_dir(&self, region: &str, id: u64) -> PathBuf {
        self.dir
            .topology()
            .expect("topology")
            .region(region)
            .and_then(|r| r.node(id))
            .map(|n| n.data_dir.clone())
            .expect("node")
    }

    /// Stops every node (also done on drop).
    pub fn down(&self) {
        kmsim(&["down", "--data-dir", &self.data_dir()]);
    }

    /// The node's name.
    pub fn name(region: &str, id: u64) -> NodeName {
        NodeName {
            region: region.to_string(),
            id,
        }
    }

    /// The root of the cluster's files.
    pub fn root(&self) -> &Path {
        self.dir.root()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(kmsim_exe())
            .args(["down", "--data-dir", &self.data_dir()])
            .output();
    }
}

/// An AWS SDK for Rust KMS client: plain HTTP to `url`, the given Region and credentials, no
/// retries (a test sees the first answer).
pub fn sdk_client(
    url: &str,
    region: &str,
    credentials: aws_sdk_kms::config::Credentials,
) -> aws_sdk_kms::Client {
    let conf = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new(region.to_string()))
        .endpoint_url(url)
        .credentials_provider(credentials)
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_kms::Client::from_conf(conf)
}

/// Polls `probe` until it yields `Some`, failing the test after `timeout`.
pub async fn wait_for<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The AWS error of a failed call.
pub fn kms_err<T: std::fmt::Debug>(r: Result<tonic::Response<T>, tonic::Status>) -> KmsError {
    match r {
        Ok(v) => panic!("expected an error, got {v:?}"),
        Err(s) => error_from_status(&s),
    }
}

/// The response of a call that must succeed.
pub fn ok<T>(r: Result<tonic::Response<T>, tonic::Status>) -> T {
    match r {
        Ok(v) => v.into_inner(),
        Err(s) => panic!("call failed: {:?}", error_from_status(&s)),
    }
}
