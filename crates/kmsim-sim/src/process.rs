//! Node processes started by the launcher, tracked by PID files. Only processes whose PID file
//! the launcher wrote, and whose command line is a `kmsim node` of this cluster, are ever
//! signalled.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cluster::{io, ClusterDir, ClusterError, NodeName};

/// Starts one node as a separate process, in its own process group (so a terminal's Ctrl-C
/// reaches only the launcher, which then stops the nodes in order). Returns its PID.
pub fn start_node(exe: &Path, dir: &ClusterDir, n: &NodeName) -> Result<u32, ClusterError> {
    let log_path = dir.log_path(n);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(io(format!("open {}", log_path.display())))?;
    let log2 = log.try_clone().map_err(io("clone log handle"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("node")
        .arg("--topology")
        .arg(dir.topology_path())
        .arg("--region")
        .arg(&n.region)
        .arg("--id")
        .arg(n.id.to_string())
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let child = cmd
        .spawn()
        .map_err(io(format!("start {} ({})", n, exe.display())))?;
    let pid = child.id();
    // The child is not waited for here: it outlives a detached launcher, and `kmsim down`
    // stops it by PID. Dropping `Child` does not kill it.
    std::fs::write(dir.pid_path(n), format!("{pid}\n")).map_err(io("write pid file"))?;
    Ok(pid)
}

/// The PID recorded for a node, if its process is still a `kmsim node` of this cluster.
pub fn running_pid(dir: &ClusterDir, n: &NodeName) -> Option<u32> {
    let text = std::fs::read_to_string(dir.pid_path(n)).ok()?;
    let pid: u32 = text.trim().parse().ok()?;
    is_our_node(pid, dir, n).then_some(pid)
}

/// True when `pid` runs `kmsim node` for this node of this cluster (checked on /proc).
fn is_our_node(pid: u32, dir: &ClusterDir, n: &NodeName) -> bool {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    // A zombie has an empty command line: it is not running.
    let args: Vec<String> = raw
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
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
    kill(Pid::from_raw(pid as i32), sig)
        .map_err(|e| ClusterError::Invalid(format!("signal {n} (pid {pid}): {e}")))?;
    let deadline = Instant::now() + wait;
    while is_alive(pid) {
        if Instant::now() > deadline {
            return Err(ClusterError::Invalid(format!(
                "{n} (pid {pid}) did not stop within {wait:?}"
            )));
        }
        reap(pid);
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(dir.pid_path(n));
    Ok(true)
}

/// Stops a node: SIGTERM, then SIGKILL if it does not stop within 10 s.
pub fn stop_node(dir: &ClusterDir, n: &NodeName) -> Result<bool, ClusterError> {
    match signal_node(dir, n, Signal::SIGTERM, Duration::from_secs(10)) {
        Ok(stopped) => Ok(stopped),
        Err(_) => signal_node(dir, n, Signal::SIGKILL, Duration::from_secs(5)),
    }
}

/// True while `pid` runs; a zombie (exited, not yet reaped) counts as gone.
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Reaps a child of this process that has exited (no effect on processes we did not start).
fn reap(pid: u32) {
    let _ = nix::sys::wait::waitpid(
        Pid::from_raw(pid as i32),
        Some(nix::sys::wait::WaitPidFlag::WNOHANG),
    );
}
