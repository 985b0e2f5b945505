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
    signal_and_wait(pid, sig, wait, &n.to_string())?;
    let _ = std::fs::remove_file(dir.pid_path(n));
    Ok(true)
}

/// Sends `sig` to `pid` and waits (up to `wait`) until it is gone.
fn signal_and_wait(pid: u32, sig: Signal, wait: Duration, what: &str) -> Result<(), ClusterError> {
    kill(Pid::from_raw(pid as i32), sig)
        .map_err(|e| ClusterError::Invalid(format!("signal {what} (pid {pid}): {e}")))?;
    let deadline = Instant::now() + wait;
    while is_alive(pid) {
        if Instant::now() > deadline {
            return Err(ClusterError::Invalid(format!(
                "{what} (pid {pid}) did not stop within {wait:?}"
            )));
        }
        reap(pid);
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
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
