//! The multi-host path, on one host: the project of `kmsim deploy compose --swarm`
//! (docker-stack.yml) deployed as a Docker Swarm stack (`docker stack deploy`), every node ready
//! on the stack's overlay networks, a key used through the gateway's published port, and a
//! teardown that removes the stack, the cluster's labelled volumes and, only if this test made
//! it, the single-node swarm (`docker swarm leave --force`) and its `docker_gwbridge` network.
//! Skipped, with a message, where no Docker engine answers or the engine is in a swarm this
//! test may not deploy to (a worker, or a swarm that is pending or locked).

use std::time::{Duration, Instant};

use aws_sdk_kms::primitives::Blob;

use kmsim_sim::container::docker::Docker;
use kmsim_sim::container::{CLUSTER_LABEL, REGION_LABEL};

use crate::harness::{kmsim, kmsim_exe, sdk_client, wait_for};
use crate::t59_containers::{free_port, wait_ready};

const US: &str = "us-east-1";

/// The network the swarm makes on its first init and leaves behind when the node leaves.
const GWBRIDGE: &str = "docker_gwbridge";

/// Removes the stack and the cluster's objects when the test ends, also on failure; leaves the
/// swarm only if the test initialized it.
struct Teardown {
    docker: Docker,
    stack: String,
    cluster: String,
    /// The test ran `docker swarm init`.
    left_to_us: bool,
    /// `docker_gwbridge` did not exist before the test.
    gwbridge_is_ours: bool,
}

impl Drop for Teardown {
    fn drop(&mut self) {
        let d = &self.docker;
        if let Err(e) = d.run(&["stack", "rm", &self.stack]) {
            eprintln!("teardown: {e}");
        }
        // `stack rm` returns before the tasks' containers are gone.
        let namespace = format!("label=com.docker.stack.namespace={}", self.stack);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            match d.run(&["ps", "-a", "-q", "--filter", &namespace]) {
                Ok(ids) if ids.is_empty() => break,
                Ok(_) => std::thread::sleep(Duration::from_millis(500)),
                Err(e) => {
                    eprintln!("teardown: {e}");
                    break;
                }
            }
        }
        if let Err(e) = d.remove_cluster(&self.cluster, true) {
            eprintln!("teardown of {}: {e}", self.cluster);
        }
        if self.left_to_us {
            if let Err(e) = d.run(&["swarm", "leave", "--force"]) {
                eprintln!("teardown: {e}");
            }
            if self.gwbridge_is_ours {
                if let Err(e) = d.run(&["network", "rm", GWBRIDGE]) {
                    eprintln!("teardown: {e}");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_compose_project_deployed_as_a_swarm_stack_serves_through_its_gateway() {
    let docker = match Docker::connect() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skipped: {e}");
            return;
        }
    };
    let state = docker
        .run(&[
            "info",
            "--format",
            "{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}",
        ])
        .unwrap();
    let init = match state.as_str() {
        "inactive false" => true,
        "active true" => false,
        other => {
            eprintln!(
                "skipped: this engine's swarm state is `{other}` (not inactive, nor a manager)"
            );
            return;
        }
    };
    let gwbridge_existed = !docker
        .run(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("name=^{GWBRIDGE}$"),
        ])
        .unwrap()
        .is_empty();
    let cluster = format!("kmsim-t59s-{}", std::process::id());
    let stack = format!("t59s{}", std::process::id());
    let teardown = Teardown {
        docker: docker.clone(),
        stack: stack.clone(),
        cluster: cluster.clone(),
        left_to_us: init,
        gwbridge_is_ours: !gwbridge_existed,
    };
    let started = Instant::now();
    if init {
        docker
            .run(&["swarm", "init", "--advertise-addr", "127.0.0.1"])
            .unwrap();
    }
    let exe = kmsim_exe().to_string_lossy().into_owned();
    let built = kmsim(&["image", "build", "--binary", &exe]);
    assert!(built.contains("image id: sha256:"), "{built}");
    let tmp = tempfile::Builder::new()
        .prefix("kmsim-swarm-")
        .tempdir()
        .unwrap();
    let out = tmp.path().to_string_lossy().into_owned();
    let port = free_port();
    kmsim(&[
        "deploy",
        "compose",
        "--swarm",
        "--out",
        &out,
        "--regions",
        US,
        "--nodes",
        "3",
        "--name",
        &cluster,
        "--aws-port",
        &port.to_string(),
    ]);
    // The image exists only on this engine: no registry to resolve it against.
    let file = tmp.path().join("docker-stack.yml");
    docker
        .run(&[
            "stack",
            "deploy",
            "--resolve-image",
            "never",
            "-c",
            &file.to_string_lossy(),
            &stack,
        ])
        .unwrap();

    // Every node ready (asked inside its task's container), then the gateway's port.
    let region = [
        "ps",
        "-q",
        "--filter",
        &format!("label={CLUSTER_LABEL}={cluster}"),
        "--filter",
        &format!("label={REGION_LABEL}={US}"),
    ];
    let nodes: Vec<String> = wait_for(Duration::from_secs(120), "3 node tasks running", || {
        let ids = docker.run(&region).unwrap_or_default();
        let ids: Vec<String> = ids.lines().map(String::from).collect();
        async move { (ids.len() == 3).then_some(ids) }
    })
    .await;
    wait_ready(&nodes, port, Duration::from_secs(60)).await;
    let gateway = format!("http://127.0.0.1:{port}");
    eprintln!(
        "a 3-node swarm stack ready {:.1} s after the start (swarm init: {init})",
        started.elapsed().as_secs_f64()
    );

    // Through the routing mesh to the gateway, and from it over the overlay to the nodes.
    let creds = aws_sdk_kms::config::Credentials::new("test", "test", None, None, "t59s");
    let us = sdk_client(&gateway, US, creds);
    let key = us.create_key().send().await.unwrap();
    let key = key.key_metadata().unwrap().key_id().to_string();
    let sealed = us
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"in a swarm".to_vec()))
        .send()
        .await
        .unwrap();
    let opened = us
        .decrypt()
        .ciphertext_blob(sealed.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), b"in a swarm");
    drop(teardown);
    let left = docker.cluster_objects(&cluster).unwrap();
    assert!(left.is_empty(), "left behind: {left:?}");
    if init {
        let state = docker
            .run(&["info", "--format", "{{.Swarm.LocalNodeState}}"])
            .unwrap();
        assert_eq!(state, "inactive", "the swarm this test made is left");
    }
}
