//! The launcher in the foreground: Ctrl-C stops exactly the nodes it started; a cluster made
//! without `--test-hooks` refuses the plaintext-material hook.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use kmsim_proto::admin::v1::admin_service_client::AdminServiceClient;
use kmsim_proto::admin::v1::DebugKeyMaterialRequest;
use kmsim_sim::cluster::{ClusterDir, NodeName};
use kmsim_sim::process::is_alive;

use crate::harness::kmsim_exe;

#[test]
fn up_in_the_foreground_stops_every_node_on_ctrl_c() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("fg");
    let mut child = Command::new(kmsim_exe())
        .args(["up", "--base-port", "0", "--nodes", "3", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if line.contains("press Ctrl-C") {
            break;
        }
    }
    assert!(
        seen.iter().any(|l| l.contains("leader")),
        "no leader in the table: {seen:?}"
    );
    let dir = ClusterDir::new(&data);
    let pids: Vec<u32> = (1..=3)
        .map(|id| {
            let name = NodeName {
                region: "us-east-1".into(),
                id,
            };
            std::fs::read_to_string(dir.pid_path(&name))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(pids.iter().all(|p| is_alive(*p)));

    // Without --test-hooks the plaintext-material hook is refused.
    let addr = dir.nodes().unwrap()[0].1.advertise_addr();
    let refused = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let mut admin = AdminServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        admin
            .debug_key_material(DebugKeyMaterialRequest { key_id: "x".into() })
            .await
            .unwrap_err()
    });
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);

    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "launcher did not exit after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "launcher exited with {status}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert_eq!(
        rest.iter()
            .filter(|l| l.starts_with("stopped us-east-1/"))
            .count(),
        3,
        "{rest:?}"
    );
    for p in pids {
        assert!(!is_alive(p), "node {p} still running");
    }
    for id in 1..=3 {
        assert!(!dir
            .pid_path(&NodeName {
                region: "us-east-1".into(),
                id
            })
            .exists());
    }
}
