//! A cluster in Docker containers: the image built from this test binary's kmsim, a
//! 2-Region × 3-node compose project written by `kmsim deploy compose` on networks it creates,
//! every node ready, multi-Region keys through the gateway with the AWS SDK for Rust, faults
//! through the network and the runtime (`kmsim chaos cut`/`reconnect` of the replica's Region
//! and of the primary's, `kill-region`/`restart-region`, `pause`/`resume`), `kmsim scenario
//! failover` killing and pausing a leader's container, an experiment on the docker runtime,
//! and a teardown that removes exactly the cluster's labelled containers, networks and volumes.
//! Skipped, with a message, where no Docker engine answers.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::KeyState;

use kmsim_experiment::history;
use kmsim_sim::cluster::{container_name, ClusterDir, CONTAINER_AWS_PORT};
use kmsim_sim::container::docker::Docker;
use kmsim_sim::container::runtime::{cluster_name, ready_inside};
use kmsim_sim::health::http_get;

use crate::harness::{kmsim, kmsim_exe, sdk_client, wait_for};

const US: &str = "us-east-1";
const EU: &str = "eu-west-1";

/// Removes every object of the cluster when the test ends, also on failure.
struct Teardown {
    docker: Docker,
    cluster: String,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Err(e) = self.docker.remove_cluster(&self.cluster, true) {
            eprintln!("teardown of {}: {e}", self.cluster);
        }
    }
}

/// A port free on 127.0.0.1 right now (the gateway publishes it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The Docker engine, or `None` (and a message) where none answers.
fn docker_or_skip() -> Option<Docker> {
    match Docker::connect() {
        Ok(d) => Some(d),
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_two_region_compose_cluster_serves_multi_region_keys_and_leaves_nothing_behind() {
    let Some(docker) = docker_or_skip() else {
        return;
    };
    let exe = kmsim_exe().to_string_lossy().into_owned();
    let built = kmsim(&["image", "build", "--binary", &exe]);
    assert!(built.contains("image id: sha256:"), "{built}");

    let cluster = format!("kmsim-t58-{}", std::process::id());
    let teardown = Teardown {
        docker: docker.clone(),
        cluster: cluster.clone(),
    };
    let tmp = tempfile::Builder::new()
        .prefix("kmsim-compose-")
        .tempdir()
        .unwrap();
    let out = tmp.path().to_string_lossy().into_owned();
    let port = free_port();
    kmsim(&[
        "deploy",
        "compose",
        "--out",
        &out,
        "--regions",
        &format!("{US},{EU}"),
        "--nodes",
        "3",
        "--name",
        &cluster,
        "--aws-port",
        &port.to_string(),
    ]);
    let file = Path::new(&out).join("docker-compose.yml");
    let started = Instant::now();
    docker
        .compose(&["-p", &cluster, "-f", &file.to_string_lossy(), "up", "-d"])
        .unwrap();
    let nodes: Vec<String> = [US, EU]
        .iter()
        .flat_map(|r| (1..=3).map(|id| container_name(&cluster, r, id)))
        .collect();
    wait_ready(&nodes, port, Duration::from_secs(30)).await;
    let gateway = format!("http://127.0.0.1:{port}");
    eprintln!(
        "2 Regions x 3 containers ready {:.1} s after `docker-compose up`",
        started.elapsed().as_secs_f64()
    );

    // Through the gateway: a multi-Region key in US, replicated to EU, used in both.
    let creds = || aws_sdk_kms::config::Credentials::new("test", "test", None, None, "t58");
    let us = sdk_client(&gateway, US, creds());
    let eu = sdk_client(&gateway, EU, creds());
    let created = us
        .create_key()
        .multi_region(true)
        .description("in containers")
        .send()
        .await
        .unwrap();
    let key = created.key_metadata().unwrap().key_id().to_string();
    us.replicate_key()
        .key_id(&key)
        .replica_region(EU)
        .send()
        .await
        .unwrap();
    wait_for(Duration::from_secs(60), "the replica Enabled", || async {
        let out = eu.describe_key().key_id(&key).send().await.ok()?;
        (out.key_metadata()?.key_state()? == &KeyState::Enabled).then_some(())
    })
    .await;
    for (from, to, region) in [(&us, &eu, US), (&eu, &us, EU)] {
        let text = format!("sealed in {region}");
        let sealed = from
            .encrypt()
            .key_id(&key)
            .plaintext(Blob::new(text.as_bytes().to_vec()))
            .send()
            .await
            .unwrap();
        let opened = to
            .decrypt()
            .ciphertext_blob(sealed.ciphertext_blob().unwrap().clone())
            .send()
            .await
            .unwrap();
        assert_eq!(opened.plaintext().unwrap().as_ref(), text.as_bytes());
    }

    // Faults at the network level: EU cut off from the inter-Region network is out of the
    // gateway's reach (its names no longer resolve there) while US serves; reconnected, EU
    // serves again with its data.
    let cut = kmsim(&["chaos", "cut", EU, "--data-dir", &out]);
    assert_eq!(cut.matches("disconnected ").count(), 3, "{cut}");
    let refused = eu.describe_key().key_id(&key).send().await.unwrap_err();
    assert_eq!(
        refused.into_service_error().meta().code(),
        Some("DependencyTimeoutException")
    );
    us.describe_key().key_id(&key).send().await.unwrap();
    let back = kmsim(&["chaos", "reconnect", EU, "--data-dir", &out]);
    assert_eq!(back.matches("connected ").count(), 3, "{back}");
    wait_for(Duration::from_secs(60), "EU reachable again", || async {
        eu.describe_key().key_id(&key).send().await.ok().map(|_| ())
    })
    .await;
    // The primary's Region cut off: the replica Region keeps decrypting what the primary
    // sealed and keeps encrypting, while the primary is out of reach. Reconnected, a rotation
    // at the primary reaches the replica: the set converges.
    let sealed_in_us = us
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"before the cut".to_vec()))
        .send()
        .await
        .unwrap();
    let cut = kmsim(&["chaos", "cut", US, "--data-dir", &out]);
    assert_eq!(cut.matches("disconnected ").count(), 3, "{cut}");
    let opened = eu
        .decrypt()
        .ciphertext_blob(sealed_in_us.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), b"before the cut");
    let sealed_in_eu = eu
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"during the cut".to_vec()))
        .send()
        .await
        .unwrap();
    assert!(sealed_in_eu.ciphertext_blob().is_some());
    let refused = us.describe_key().key_id(&key).send().await.unwrap_err();
    assert_eq!(
        refused.into_service_error().meta().code(),
        Some("DependencyTimeoutException")
    );
    kmsim(&["chaos", "reconnect", US, "--data-dir", &out]);
    wait_for(Duration::from_secs(60), "US reachable again", || async {
        us.describe_key().key_id(&key).send().await.ok().map(|_| ())
    })
    .await;
    let opened = us
        .decrypt()
        .ciphertext_blob(sealed_in_eu.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), b"during the cut");
    us.rotate_key_on_demand().key_id(&key).send().await.unwrap();
    wait_for(Duration::from_secs(60), "the rotation in EU", || async {
        let rotations = eu.list_key_rotations().key_id(&key).send().await.ok()?;
        (rotations.rotations().len() == 1).then_some(())
    })
    .await;
    // At the runtime level: a Region's containers killed, then started on their volumes.
    let killed = kmsim(&["chaos", "kill-region", EU, "--data-dir", &out]);
    assert_eq!(killed.matches("killed ").count(), 3, "{killed}");
    let state = docker
        .run(&[
            "inspect",
            "-f",
            "{{.State.Running}}",
            &container_name(&cluster, EU, 1),
        ])
        .unwrap();
    assert_eq!(state, "false");
    let restarted = kmsim(&["chaos", "restart-region", EU, "--data-dir", &out]);
    assert_eq!(restarted.matches(" ready (").count(), 3, "{restarted}");
    let described = eu.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(
        described.key_metadata().unwrap().key_state(),
        Some(&KeyState::Enabled)
    );
    // A paused container is frozen (a gray failure) until resumed.
    let node = container_name(&cluster, US, 2);
    kmsim(&["chaos", "pause", &format!("{US}/2"), "--data-dir", &out]);
    let paused = docker
        .run(&["inspect", "-f", "{{.State.Paused}}", &node])
        .unwrap();
    assert_eq!(paused, "true");
    kmsim(&["chaos", "resume", &format!("{US}/2"), "--data-dir", &out]);
    let paused = docker
        .run(&["inspect", "-f", "{{.State.Paused}}", &node])
        .unwrap();
    assert_eq!(paused, "false");
    // The client commands run unchanged on this data directory, relayed into the cluster's
    // networks (the nodes publish no port): status sees every node and one leader per Region,
    // kms describes the key in its replica Region, the application-level link faults are set
    // and cleared, and bench loads the Region.
    wait_for(
        Duration::from_secs(60),
        "one leader per Region in `kmsim status`",
        || async {
            let status = kmsim(&["status", "--json", "--data-dir", &out]);
            let rows: Vec<serde_json::Value> =
                serde_json::from_str(&status).unwrap_or_else(|e| panic!("{e}: {status}"));
            let nodes: Vec<&serde_json::Value> =
                rows.iter().filter(|r| r["kind"] == "node").collect();
            assert_eq!(nodes.len(), 6, "{status}");
            let leaders = |region: &str| {
                nodes
                    .iter()
                    .filter(|r| r["region"] == region && r["role"] == "leader")
                    .count()
            };
            (leaders(US) == 1 && leaders(EU) == 1).then_some(())
        },
    )
    .await;
    let described = kmsim(&[
        "kms",
        "describe-key",
        "--key-id",
        &key,
        "--region",
        EU,
        "--data-dir",
        &out,
    ]);
    let described: serde_json::Value = serde_json::from_str(&described).unwrap();
    assert_eq!(described["KeyMetadata"]["KeyId"], key.as_str());
    // 3 × 3 node pairs, each way.
    let parted = kmsim(&["chaos", "partition", US, EU, "--data-dir", &out]);
    assert!(parted.contains("18 link(s) set"), "{parted}");
    let shown = kmsim(&["chaos", "show", "--data-dir", &out]);
    assert_eq!(shown.matches("PARTITIONED").count(), 18, "{shown}");
    kmsim(&["chaos", "heal", "--data-dir", &out]);
    let shown = kmsim(&["chaos", "show", "--data-dir", &out]);
    assert!(!shown.contains("PARTITIONED"), "{shown}");
    let bench = kmsim(&[
        "bench",
        "--data-dir",
        &out,
        "--region",
        US,
        "--workload",
        "encrypt",
        "--concurrency",
        "4",
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--max-ops",
        "2000",
        "--json",
    ]);
    let runs: serde_json::Value = serde_json::from_str(&bench).unwrap();
    assert!(runs[0]["ops"].as_u64().unwrap_or(0) > 0, "{bench}");
    // `scenario failover` on containers, from the host: the leader's container killed (then
    // started again on its volume) and, in a second run, paused (then unpaused). Each time
    // another node leads, writes through the gateway are acknowledged again, and the old
    // leader rejoins as a follower.
    for mode in ["kill", "freeze"] {
        let json = kmsim(&[
            "scenario",
            "failover",
            "--mode",
            mode,
            "--rounds",
            "1",
            "--region",
            US,
            "--concurrency",
            "2",
            "--before",
            "500ms",
            "--after",
            "500ms",
            "--freeze-for",
            "2s",
            "--json",
            "--data-dir",
            &out,
        ]);
        let report: serde_json::Value = serde_json::from_str(&json).unwrap();
        let round = &report["rounds"][0];
        assert_eq!(round["recovered"], true, "{mode}: {report}");
        assert_ne!(round["new_leader"], round["old_leader"], "{mode}: {report}");
        assert_eq!(round["old_leader_role"], "follower", "{mode}: {report}");
        assert!(round["acked"].as_u64().unwrap() > 0, "{mode}: {report}");
    }

    // Every object of the cluster carries its label, and removing by label leaves nothing.
    let objects = docker.cluster_objects(&cluster).unwrap();
    assert_eq!(objects.containers.len(), 7, "{objects:?}");
    assert_eq!(objects.networks.len(), 3, "{objects:?}");
    assert_eq!(objects.volumes.len(), 6, "{objects:?}");
    let removed = docker.remove_cluster(&cluster, true).unwrap();
    assert_eq!(removed, objects);
    let left = docker.cluster_objects(&cluster).unwrap();
    assert!(left.is_empty(), "left behind: {left:?}");
    drop(teardown);
}

#[tokio::test(flavor = "multi_thread")]
async fn up_with_the_docker_runtime_serves_and_down_removes_exactly_its_labelled_objects() {
    let Some(docker) = docker_or_skip() else {
        return;
    };
    let cluster = format!("kmsim-t58u-{}", std::process::id());
    let _teardown = Teardown {
        docker: docker.clone(),
        cluster: cluster.clone(),
    };
    let tmp = tempfile::Builder::new()
        .prefix("kmsim-docker-up-")
        .tempdir()
        .unwrap();
    let data = tmp.path().join("cluster").to_string_lossy().into_owned();
    let out = kmsim(&[
        "up",
        "--runtime",
        "docker",
        "--regions",
        US,
        "--nodes",
        "3",
        "--name",
        &cluster,
        "--aws-port",
        "0",
        "--data-dir",
        &data,
        "--detach",
        "--timeout",
        "120",
    ]);
    assert!(out.contains("ready in"), "{out}");
    let url = out
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("no endpoint in: {out}"))
        .to_string();
    let creds = aws_sdk_kms::config::Credentials::new("test", "test", None, None, "t58");
    let sdk = sdk_client(&url, US, creds);
    let key = sdk.create_key().send().await.unwrap();
    let key = key.key_metadata().unwrap().key_id().to_string();
    let sealed = sdk
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"in a container".to_vec()))
        .send()
        .await
        .unwrap();
    assert!(sealed.ciphertext_blob().is_some());
    // A second `up` of the same cluster is refused while its containers exist.
    let again = Command::new(kmsim_exe())
        .args([
            "up",
            "--runtime",
            "docker",
            "--name",
            &cluster,
            "--aws-port",
            "0",
        ])
        .args(["--data-dir", &data, "--detach"])
        .output()
        .unwrap();
    assert!(!again.status.success());

    let objects = docker.cluster_objects(&cluster).unwrap();
    assert_eq!(
        (
            objects.containers.len(),
            objects.networks.len(),
            objects.volumes.len()
        ),
        (4, 2, 3),
        "{objects:?}"
    );
    let down = kmsim(&["down", "--data-dir", &data]);
    assert!(
        down.contains("removed 4 containers, 2 networks, 0 volumes"),
        "{down}"
    );
    let left = docker.cluster_objects(&cluster).unwrap();
    assert!(
        left.containers.is_empty() && left.networks.is_empty(),
        "{left:?}"
    );
    assert_eq!(left.volumes, objects.volumes, "the nodes' data is kept");
    let down = kmsim(&["down", "--data-dir", &data, "--volumes"]);
    assert!(down.contains("3 volumes"), "{down}");
    assert!(docker.cluster_objects(&cluster).unwrap().is_empty());
}

/// Waits until every container of `nodes` answers `/readyz` 200 inside (at most 120 s each),
/// then the gateway published on `127.0.0.1:port` (at most `gateway_timeout`).
pub async fn wait_ready(nodes: &[String], port: u16, gateway_timeout: Duration) {
    for node in nodes {
        wait_for(
            Duration::from_secs(120),
            &format!("{node} ready"),
            || async {
                let node = node.clone();
                tokio::task::spawn_blocking(move || ready_inside(&node, CONTAINER_AWS_PORT))
                    .await
                    .unwrap()
                    .then_some(())
            },
        )
        .await;
    }
    let gateway = format!("http://127.0.0.1:{port}");
    wait_for(gateway_timeout, "the gateway ready", || async {
        let r = http_get(&format!("{gateway}/readyz"), None, Duration::from_secs(2)).await;
        (r.ok()?.0 == 200).then_some(())
    })
    .await;
}

#[test]
fn an_experiment_runs_unchanged_on_the_docker_runtime() {
    if docker_or_skip().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let run = Command::new(kmsim_exe())
        .args(["experiment", "run", "gray-leader", "--quick", "--seed", "5"])
        .args(["--runtime", "docker", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(run.status.success(), "{text}");
    assert!(
        text.contains("--runtime docker"),
        "the replay command: {text}"
    );
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["passed"], true, "{results}");
    assert_eq!(results["runtime"], "docker", "{results}");
    // The leader's container was paused (docker pause) and unpaused, without error.
    let f = std::fs::File::open(out.join("history.jsonl")).unwrap();
    let records = history::read(std::io::BufReader::new(f)).unwrap();
    let faults: Vec<&history::FaultEvent> = records
        .iter()
        .filter_map(|r| match r {
            history::Record::Fault(f) => Some(f),
            _ => None,
        })
        .collect();
    assert_eq!(faults.len(), 2, "{faults:?}");
    assert!(faults.iter().all(|f| f.error.is_none()), "{faults:?}");
    // Nothing of the run's cluster is left behind.
    let topology = ClusterDir::new(out.join("cluster")).topology().unwrap();
    let cluster = cluster_name(&topology).unwrap();
    let docker = Docker::connect().unwrap();
    assert!(docker.cluster_objects(&cluster).unwrap().is_empty());
}
