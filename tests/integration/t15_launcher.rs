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
        let mut admin = AdminServiceClient::new(crate::harness::channel(
            &dir.operator_dialer().unwrap(),
            &addr,
        ));
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

/// Runs `kmsim down` for a data directory when dropped, so a failing test leaves no nodes.
struct DownOnDrop(std::path::PathBuf);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        let _ = Command::new(kmsim_exe())
            .arg("down")
            .arg("--data-dir")
            .arg(&self.0)
            .output();
    }
}

/// Runs `kmsim <args>` with its standard output a pipe whose reader is already gone, so its
/// first write fails with EPIPE (deterministically, unlike `| head -1`, whose reader may still
/// be there). Returns the exit status and standard error.
fn run_into_closed_pipe(args: &[&std::ffi::OsStr]) -> (std::process::ExitStatus, String) {
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    let out = Command::new(kmsim_exe())
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `kmsim … | head -1`: a reader that goes away ends the output quietly, and the command still
/// does all its work. The expected exit status is success, not death by SIGPIPE: kmsim keeps
/// SIGPIPE ignored (it is also a server and a network client) and drops output nobody reads.
/// Before, `println!` panicked ("failed printing to stdout: Broken pipe", exit 101) and
/// `kmsim up` left its nodes running.
#[test]
fn commands_writing_to_a_closed_pipe_exit_quietly_and_finish_their_work() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("pipe");
    let _down = DownOnDrop(data.clone());
    let stderr_path = tmp.path().join("up.stderr");

    // `kmsim up --detach | head -1`: the first line comes before any node starts, the rest
    // (the node table, the endpoints) after every Region has a leader, by then into a pipe
    // nobody reads.
    let mut up = Command::new(kmsim_exe())
        .args(["up", "--detach", "--nodes", "1", "--base-port", "0"])
        .args(["--aws-port", "0", "--timeout", "60", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&stderr_path).unwrap()))
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(up.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("created cluster in "), "{first:?}");
    // The reader is dropped here: the pipe has no reader any more.
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(s) = up.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "kmsim up did not return");
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        status.success(),
        "kmsim up exited with {status}; stderr: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // Its work is done: the node and the gateway run.
    let dir = ClusterDir::new(&data);
    let node = NodeName {
        region: "us-east-1".into(),
        id: 1,
    };
    let pid = kmsim_sim::process::running_pid(&dir, &node).expect("the node runs");
    assert!(kmsim_sim::process::gateway_pid(&dir).is_some());

    // Commands that only print, and `down`, which must stop every process although nobody
    // reads its report.
    let data_arg = data.as_os_str();
    for args in [
        vec!["status".as_ref(), "--data-dir".as_ref(), data_arg],
        vec![
            "status".as_ref(),
            "--json".as_ref(),
            "--data-dir".as_ref(),
            data_arg,
        ],
        vec![
            "kms".as_ref(),
            "list-keys".as_ref(),
            "--data-dir".as_ref(),
            data_arg,
        ],
        vec!["down".as_ref(), "--data-dir".as_ref(), data_arg],
    ] {
        let (status, stderr) = run_into_closed_pipe(&args);
        assert!(
            status.success(),
            "kmsim {args:?} exited with {status}: {stderr}"
        );
        assert_eq!(stderr, "", "kmsim {args:?}");
    }
    assert!(!is_alive(pid), "kmsim down left the node running");
    assert!(kmsim_sim::process::gateway_pid(&dir).is_none());
}

/// A cluster started with an absolute `--data-dir` (as `scripts/demo.sh` does) is the same
/// cluster when addressed relatively from its parent (`kmsim down` with the default `.kmsim`).
/// Before, `down` did not recognise its nodes by their command line, said "0 node(s) stopped",
/// removed their PID files and left them running.
#[test]
fn down_with_a_relative_data_dir_stops_a_cluster_started_with_an_absolute_one() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join(".kmsim");
    let _down = DownOnDrop(data.clone());
    let up = Command::new(kmsim_exe())
        .args(["up", "--detach", "--nodes", "1", "--base-port", "0"])
        .args(["--aws-port", "0", "--timeout", "60", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    let dir = ClusterDir::new(&data);
    let name = NodeName {
        region: "us-east-1".into(),
        id: 1,
    };
    let pid = kmsim_sim::process::running_pid(&dir, &name).expect("the node runs");
    let down = Command::new(kmsim_exe())
        .current_dir(tmp.path())
        .args(["down", "--data-dir", ".kmsim"])
        .output()
        .unwrap();
    assert!(
        down.status.success(),
        "{}",
        String::from_utf8_lossy(&down.stderr)
    );
    let said = String::from_utf8_lossy(&down.stdout);
    assert!(said.contains("stopped us-east-1/1"), "{said}");
    assert!(!said.contains("0 node(s) stopped"), "{said}");
    assert!(!is_alive(pid), "node {pid} still runs");
}
