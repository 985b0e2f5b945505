//! Node and gateway processes started by the launcher, tracked by PID files. Only processes
//! whose PID file the launcher wrote, and whose command line is a `kmsim node` (or `kmsim
//! gateway`) of this cluster, are ever signalled.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cluster::{io, ClusterDir, ClusterError, NodeName};

/// Starts one node as a separate process, in its own process group (so a terminal's Ctrl-C
/// reaches only the launcher, which then stops the nodes in order). Returns its PID.
pub fn start_node(exe: &Path, dir: &ClusterDir, n: &NodeName) -> Result<u32, ClusterError> {
    let mut cmd = Command::new(exe);
    cmd.arg("node")
        .arg("--topology")
        .arg(dir.topology_path())
        .arg("--region")
        .arg(&n.region)
        .arg("--id")
        .arg(n.id.to_string());
    spawn(cmd, &dir.log_path(n), &dir.pid_path(n), &n.to_string())
}

/// Starts the gateway (`kmsim gateway`, the single AWS endpoint) like a node. Returns its PID.
pub fn start_gateway(exe: &Path, dir: &ClusterDir) -> Result<u32, ClusterError> {
    let mut cmd = Command::new(exe);
    cmd.arg("gateway")
        .arg("--topology")
        .arg(dir.topology_path());
    spawn(
        cmd,
        &dir.gateway_log_path(),
        &dir.gateway_pid_path(),
        "gateway",
    )
}

/// Spawns `cmd` detached (own process group, stdout/stderr appended to `log_path`) and writes
/// its PID to `pid_path`.
fn spawn(
    mut cmd: Command,
    log_path: &Path,
    pid_path: &Path,
    what: &str,
) -> Result<u32, ClusterError> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .map_err(io(format!("open {}", log_path.display())))?;
    let log2 = log.try_clone().map_err(io("clone log handle"))?;
    cmd.stdin(Stdio::null()).stdout(log).stderr(log2);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let child = cmd
        .spawn()
        .map_err(io(format!("start {what} ({:?})", cmd.get_program())))?;
    let pid = child.id();
    // The child is not waited for here: it outlives a detached launcher, and `kmsim down`
    // stops it by PID. Dropping `Child` does not kill it.
    std::fs::write(pid_path, format!("{pid}\n")).map_err(io("write pid file"))?;
    Ok(pid)
}

/// The gateway's PID, if its PID file names a live `kmsim gateway` of this cluster.
pub fn gateway_pid(dir: &ClusterDir) -> Option<u32> {
    let pid = read_pid(&dir.gateway_pid_path())?;
    let topo = dir.topology_path().to_string_lossy().into_owned();
    let args = cmdline(pid)?;
    (args.iter().any(|a| a == "gateway") && args.contains(&topo)).then_some(pid)
}

/// Stops the gateway: SIGTERM, then SIGKILL if it does not stop within 10 s. Returns false if
/// it was not running.
pub fn stop_gateway(dir: &ClusterDir) -> Result<bool, ClusterError> {
    let path = dir.gateway_pid_path();
    let Some(pid) = gateway_pid(dir) else {
        let _ = std::fs::remove_file(&path);
        return Ok(false);
    };
    if signal_and_wait(pid, Signal::SIGTERM, Duration::from_secs(10), "gateway").is_err() {
        signal_and_wait(pid, Signal::SIGKILL, Duration::from_secs(5), "gateway")?;
    }
    let _ = std::fs::remove_file(&path);
    Ok(true)
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The command line of a process (empty for a zombie, `None` when it is gone).
fn cmdline(pid: u32) -> Option<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        raw.split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// The PID recorded for a node, if its process is still a `kmsim node` of this cluster.
pub fn running_pid(dir: &ClusterDir, n: &NodeName) -> Option<u32> {
    let pid = read_pid(&dir.pid_path(n))?;
    is_our_node(pid, dir, n).then_some(pid)
}

/// Sends `sig` to a running node of this cluster (found by its PID file and checked on
/// /proc) and returns its PID at once: SIGSTOP and SIGCONT, which pause and resume a process
/// (a signal that ends it goes through [`signal_node`], which waits for the exit).
pub fn signal_running(dir: &ClusterDir, n: &NodeName, sig: Signal) -> Result<u32, String> {
    let pid =
        running_pid(dir, n).ok_or_else(|| format!("{n} is not running (no live PID file)"))?;
    let raw = i32::try_from(pid).map_err(|_| format!("pid {pid} out of range"))?;
    kill(Pid::from_raw(raw), sig).map_err(|e| format!("signal {n} (pid {pid}): {e}"))?;
    Ok(pid)
}

/// True when `pid` runs `kmsim node` for this node of this cluster (checked on /proc).
fn is_our_node(pid: u32, dir: &ClusterDir, n: &NodeName) -> bool {
    // A zombie has an empty command line: it is not running.
    let Some(args) = cmdline(pid) else {
        return false;
    };
    let topo = dir.topology_path().to_string_lossy().into_owned();
    args.iter().any(|a| a == "node")
        && args.contains(&topo)
        && args
            .windows(2)
            .any(|w| w[0] == "--region" && w[1] == n.region)
        && args
            .windows(2)
            .any(|w| w[0] == "--id" && w[1] == n.id.to_string())
}

/// How long `kmsim node kill`, `chaos kill-region` and a restart wait for a SIGKILLed node to
/// exit. A SIGKILLed process is gone within milliseconds unless a thread is stuck in the kernel
/// (a RocksDB background thread in the middle of a large write or fsync): then we wait for it,
/// since until it has exited the process still holds its RocksDB lock.
pub const KILL_WAIT: Duration = Duration::from_secs(30);

/// Sends `sig` to a node's process and waits until it is gone (up to `wait`); removes the PID file.
/// Returns false if the node was not running.
pub fn signal_node(
    dir: &ClusterDir,
    n: &NodeName,
    sig: Signal,
    wait: Duration,
) -> Result<bool, ClusterError> {
    let Some(pid) = running_pid(dir, n) else {
        let _ = std::fs::remove_file(dir.pid_path(n));
        return Ok(false);
    };
    signal_and_wait(pid, sig, wait, &format!("node {n}"))?;
    let _ = std::fs::remove_file(dir.pid_path(n));
    Ok(true)
}

/// SIGKILLs every node of `names` at once, then waits (up to `wait` in all) until each process
/// has exited, every thread of it ([`is_alive`]). Returns, per node, whether it was running.
/// Fails naming the first node (and its pid) still not gone when the wait ends.
pub fn kill_nodes(
    dir: &ClusterDir,
    names: &[NodeName],
    wait: Duration,
) -> Result<Vec<(NodeName, bool)>, ClusterError> {
    let mut out = Vec::new();
    let mut signalled = Vec::new();
    for n in names {
        match running_pid(dir, n) {
            Some(pid) => {
                kill(Pid::from_raw(pid as i32), Signal::SIGKILL).map_err(|e| {
                    ClusterError::Invalid(format!("signal node {n} (pid {pid}): {e}"))
                })?;
                signalled.push((n, pid));
                out.push((n.clone(), true));
            }
            None => out.push((n.clone(), false)),
        }
    }
    let deadline = Instant::now() + wait;
    for (n, pid) in signalled {
        wait_gone(pid, deadline, || {
            format!("node {n} (pid {pid}) has not exited {wait:?} after SIGKILL")
        })?;
        let _ = std::fs::remove_file(dir.pid_path(n));
    }
    for (n, running) in &out {
        if !running {
            let _ = std::fs::remove_file(dir.pid_path(n));
        }
    }
    Ok(out)
}

/// Sends `sig` to `pid` and waits (up to `wait`) until it is gone.
fn signal_and_wait(pid: u32, sig: Signal, wait: Duration, what: &str) -> Result<(), ClusterError> {
    kill(Pid::from_raw(pid as i32), sig)
        .map_err(|e| ClusterError::Invalid(format!("signal {what} (pid {pid}): {e}")))?;
    wait_gone(pid, Instant::now() + wait, || {
        format!("{what} (pid {pid}) has not exited {wait:?} after {sig}")
    })
}

/// Polls until `pid` is gone ([`is_alive`] false), reaping it if it is our child; fails with
/// `timeout_message()` at `deadline`.
fn wait_gone(
    pid: u32,
    deadline: Instant,
    timeout_message: impl Fn() -> String,
) -> Result<(), ClusterError> {
    loop {
        reap(pid);
        if !is_alive(pid) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(ClusterError::Invalid(timeout_message()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Why a node did not come back in [`restart_nodes`].
#[derive(Debug, thiserror::Error)]
pub enum RestartError {
    /// Reading the cluster or starting the process failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The node exited before answering; the end of its log.
    #[error("{node} (pid {pid}) exited before answering; the end of {log}:\n{tail}")]
    Exited {
        /// The node.
        node: NodeName,
        /// Its PID.
        pid: u32,
        /// Its log file.
        log: String,
        /// The log's last lines.
        tail: String,
    },
    /// The node did not answer in time.
    #[error("{node} (pid {pid}) did not answer within {wait:?}; see {log}")]
    Silent {
        /// The node.
        node: NodeName,
        /// Its PID.
        pid: u32,
        /// How long it was given.
        wait: Duration,
        /// Its log file.
        log: String,
    },
}

/// Starts these nodes again with `exe` (SIGKILL first for any still running, waiting until it
/// has exited) and waits until each answers `Status`, at most `answer_wait` each (a node first
/// waits up to its KMSIM_LOCK_WAIT for its RocksDB lock). Fails at once, with the end of its
/// log, for a node that exits first. Returns each node's new PID.
pub async fn restart_nodes(
    exe: &Path,
    dir: &ClusterDir,
    names: &[NodeName],
    answer_wait: Duration,
) -> Result<Vec<(NodeName, u32)>, RestartError> {
    let nodes = dir.nodes()?;
    let mut started = Vec::new();
    for name in names {
        let entry = nodes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.clone())
            .ok_or_else(|| ClusterError::Invalid(format!("{name} is not in the topology")))?;
        if running_pid(dir, name).is_some() {
            let (d, n) = (dir.clone(), name.clone());
            tokio::task::spawn_blocking(move || signal_node(&d, &n, Signal::SIGKILL, KILL_WAIT))
                .await
                .map_err(|e| ClusterError::Invalid(e.to_string()))??;
        }
        let pid = start_node(exe, dir, name)?;
        started.push((name.clone(), entry.advertise_addr(), pid));
    }
    let dialer = dir.operator_dialer()?;
    let mut out = Vec::new();
    for (name, addr, pid) in started {
        let deadline = tokio::time::Instant::now() + answer_wait;
        let log = dir.log_path(&name);
        loop {
            if crate::health::node_status(&dialer, &addr, Duration::from_millis(500))
                .await
                .is_some()
            {
                break;
            }
            if !is_alive(pid) {
                return Err(RestartError::Exited {
                    node: name,
                    pid,
                    log: log.display().to_string(),
                    tail: log_tail(&log, 5),
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(RestartError::Silent {
                    node: name,
                    pid,
                    wait: answer_wait,
                    log: log.display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        out.push((name, pid));
    }
    Ok(out)
}

/// The last `lines` lines of a log file (for an error message).
fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Stops a node: SIGTERM, then SIGKILL if it does not stop within 10 s.
pub fn stop_node(dir: &ClusterDir, n: &NodeName) -> Result<bool, ClusterError> {
    match signal_node(dir, n, Signal::SIGTERM, Duration::from_secs(10)) {
        Ok(stopped) => Ok(stopped),
        Err(_) => signal_node(dir, n, Signal::SIGKILL, KILL_WAIT),
    }
}

/// True while any thread of `pid` is still running. A process is gone only when /proc/PID is,
/// or when every entry of /proc/PID/task is gone or a zombie: after SIGKILL the thread-group
/// leader turns zombie first while other threads (RocksDB's background threads in the middle of
/// I/O) are still exiting, and the process's files, with the fcntl lock on RocksDB's `LOCK`,
/// are closed only when its last thread exits. A zombie (exited, not yet reaped) counts as gone.
pub fn is_alive(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|task| {
        // A thread whose entry vanished meanwhile has exited.
        std::fs::read_to_string(task.path().join("stat"))
            .is_ok_and(|stat| stat_state(&stat).is_some_and(|s| !matches!(s, 'Z' | 'X' | 'x')))
    })
}

/// The state letter of a `/proc/…/stat` line (after the command name, which may itself hold
/// parentheses and spaces).
fn stat_state(stat: &str) -> Option<char> {
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Reaps a child of this process that has exited (no effect on processes we did not start).
fn reap(pid: u32) {
    let _ = nix::sys::wait::waitpid(
        Pid::from_raw(pid as i32),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_letter_follows_the_last_parenthesis() {
        assert_eq!(stat_state("42 (kmsim) S 1 42 42"), Some('S'));
        assert_eq!(stat_state("42 (a) Z (b)) Z 1"), Some('Z'));
        assert_eq!(stat_state("42 (rocksdb:low) D 1"), Some('D'));
        assert_eq!(stat_state("garbage"), None);
    }

    #[test]
    fn this_process_is_alive_and_an_unused_pid_is_not() {
        assert!(is_alive(std::process::id()));
        // Above the kernel's largest pid_max: never a process.
        assert!(!is_alive(u32::MAX / 2));
    }
}
