//! Process control that waits: `kill-region` and `node kill` return only once every thread of
//! each killed node has exited (so its RocksDB lock is free), and a restarted node waits,
//! bounded by `--lock-wait` / KMSIM_LOCK_WAIT, for a lock another process still holds.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg};
use nix::libc;

use kmsim_node::lock_file::lock_holder;
use kmsim_proto::kms::v1 as pb;
use kmsim_sim::process::is_alive;

use crate::harness::{kmsim, kmsim_exe, ok, wait_for, Cluster};

const R: &str = "us-east-1";

/// The RocksDB lock file of a node.
fn lock_path(c: &Cluster, id: u64) -> PathBuf {
    c.node_data_dir(R, id).join("LOCK")
}

/// Write-locks `path` with a classic POSIX (fcntl) lock held by this test process, as a
/// predecessor node still exiting would. Released when the returned file is closed.
fn hold_lock(path: &Path) -> File {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open the node's LOCK file");
    let lock = libc::flock {
        l_type: libc::F_WRLCK as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    fcntl(file.as_raw_fd(), FcntlArg::F_SETLK(&lock)).expect("the lock of a killed node is free");
    file
}

/// `kmsim node restart us-east-1/<id>` started in the background, nodes' lock wait `lock_wait`.
fn spawn_restart(c: &Cluster, id: u64, lock_wait: &str) -> std::process::Child {
    Command::new(kmsim_exe())
        .args([
            "node",
            "restart",
            &format!("{R}/{id}"),
            "--data-dir",
            &c.data_dir(),
        ])
        .env("KMSIM_LOCK_WAIT", lock_wait)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run kmsim node restart")
}

/// The pid every node of the Region reports.
async fn pids(c: &Cluster) -> Vec<u32> {
    let mut out = Vec::new();
    for id in c.ids(R) {
        out.push(c.status(R, id).await.expect("node answers").pid);
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_region_then_restart_region_at_once_starts_every_node_every_round() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let dd = c.data_dir();
    for round in 0..3 {
        // Writes in flight while the Region dies: RocksDB's threads are busy when SIGKILL lands.
        let writer = {
            let clients: Vec<_> = c.ids(R).into_iter().map(|id| c.kms(R, id)).collect();
            tokio::spawn(async move {
                for i in 0..20_000 {
                    let mut k = clients[i % clients.len()].clone();
                    if k.create_key(pb::CreateKeyRequest::default()).await.is_err() {
                        // A dead node refuses at once: do not spin.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            })
        };
        let made = ok(c
            .kms(R, 1)
            .create_key(pb::CreateKeyRequest::default())
            .await)
        .key_metadata
        .unwrap()
        .key_id
        .unwrap();
        let before = pids(&c).await;
        let out = kmsim(&["chaos", "kill-region", R, "--data-dir", &dd]);
        assert_eq!(out.matches("killed ").count(), 3, "round {round}: {out}");
        // Returned only once every process has exited, every thread of it: no lock is held.
        for (id, pid) in c.ids(R).into_iter().zip(&before) {
            assert!(
                !is_alive(*pid),
                "round {round}: node {id} (pid {pid}) still runs"
            );
            assert_eq!(
                lock_holder(&lock_path(&c, id)).unwrap(),
                None,
                "round {round}: node {id}'s RocksDB lock is still held"
            );
        }
        writer.abort();
        let out = kmsim(&["chaos", "restart-region", R, "--data-dir", &dd]);
        assert_eq!(out.matches("restarted ").count(), 3, "round {round}: {out}");
        c.leader(R).await;
        for id in c.ids(R) {
            c.wait_sees(R, id, &made).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn node_kill_returns_once_the_process_is_gone_and_its_lock_free() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let pid = c.status(R, 2).await.expect("node answers").pid;
    c.kill(R, 2);
    assert!(!is_alive(pid), "node 2 (pid {pid}) still runs");
    assert_eq!(lock_holder(&lock_path(&c, 2)).unwrap(), None);
    c.restart(R, 2);
    assert_ne!(c.status(R, 2).await.expect("node answers").pid, pid);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_node_waits_for_a_lock_held_by_another_process_and_starts_once_released() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let key = ok(c
        .kms(R, 1)
        .create_key(pb::CreateKeyRequest::default())
        .await)
    .key_metadata
    .unwrap()
    .key_id
    .unwrap();
    c.kill(R, 3);
    let held = hold_lock(&lock_path(&c, 3));
    let restart = spawn_restart(&c, 3, "120s");
    let log = c.dir.log_path(&Cluster::name(R, 3));
    let holder = format!("process {}", std::process::id());
    wait_for(
        Duration::from_secs(30),
        "the node to report that it waits for its lock",
        || async {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            (text.contains("lock held by another process, waiting") && text.contains(&holder))
                .then_some(())
        },
    )
    .await;
    // Waiting, not failed: it has not opened its store, so it does not answer yet.
    assert!(
        c.status(R, 3).await.is_none(),
        "node 3 answers while its lock is held"
    );
    drop(held);
    let out = restart.wait_with_output().expect("kmsim node restart");
    assert!(
        out.status.success(),
        "restart failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("restarted us-east-1/3"));
    c.wait_sees(R, 3, &key).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_lock_is_never_released_fails_after_lock_wait_naming_the_lock_and_holder() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    c.kill(R, 3);
    let lock = lock_path(&c, 3);
    let held = hold_lock(&lock);
    let out = spawn_restart(&c, 3, "1s")
        .wait_with_output()
        .expect("kmsim node restart");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "restart succeeded with the lock held"
    );
    assert!(stderr.contains("exited before answering"), "{stderr}");
    assert!(stderr.contains(&lock.display().to_string()), "{stderr}");
    assert!(
        stderr.contains(&format!("still locked by process {}", std::process::id())),
        "{stderr}"
    );
    // Once the lock is free the node starts as usual.
    drop(held);
    c.restart(R, 3);
    c.status(R, 3).await.expect("node answers");
}
