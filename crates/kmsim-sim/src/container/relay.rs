//! The client commands (`status`, `top`, `kms`, `bench`, `audit`, `scenario`, and the
//! application-level `chaos` faults) against a cluster in containers. Its nodes publish no port
//! (only the gateway's AWS endpoint is on the host) and their names resolve only on the
//! cluster's networks, so the command runs where the nodes are: in a throwaway container of
//! the cluster's own image, attached to every network of the cluster (each Region's and the
//! inter-Region one, so a Region cut off from the others is still reached), with the data
//! directory mounted at its own absolute path and the caller's working directory, so the same
//! arguments mean the same files. Its output, standard input (for `top`, with a terminal when
//! the caller has one) and exit code are the command's.
//!
//! The container is named `<cluster>-cli-<pid>`, carries the cluster's label (so `kmsim down`
//! removes one left behind by a relay that was itself killed) and is removed when the command
//! ends, before this returns.

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::Path;
use std::process::Command;

use kmsim_node::config::Topology;

use super::docker::Docker;
use super::runtime::{cluster_name, is_compose_project};
use super::{ContainerError, CLUSTER_LABEL};

/// Set in the relay container: the command runs there, and must not relay again.
pub const IN_CLUSTER_ENV: &str = "KMSIM_IN_CLUSTER";

/// Environment variables passed on to the relayed command (the logging filter and format, and
/// the bench's credentials).
const PASSED_ENV: &[&str] = &[
    "KMSIM_LOG",
    "KMSIM_LOG_FORMAT",
    "KMSIM_BENCH_ACCESS_KEY_ID",
    "KMSIM_BENCH_SECRET_ACCESS_KEY",
    "KMSIM_BENCH_SESSION_TOKEN",
];

/// Whether this process is a relayed command, inside a cluster's networks: the topology's
/// addresses are then the cluster's own containers, on networks kmsim created (`kmsim bench`
/// loads them, where elsewhere it loads loopback addresses only).
pub fn in_cluster() -> bool {
    std::env::var_os(IN_CLUSTER_ENV).is_some()
}

/// Whether a command on `data_dir` must run in the cluster's networks: the directory holds a
/// cluster in containers and this process is not already the relayed command.
pub fn needed(data_dir: &Path) -> bool {
    is_compose_project(data_dir) && !in_cluster()
}

/// The networks of a cluster in containers: the inter-Region network, then each Region's.
pub fn networks(cluster: &str, topology: &Topology) -> Vec<String> {
    std::iter::once(format!("{cluster}-inter"))
        .chain(
            topology
                .regions
                .iter()
                .map(|r| format!("{cluster}-{}", r.name)),
        )
        .collect()
}

/// Runs `kmsim ARGS` (`args` without the program name) in a relay container of the cluster in
/// `data_dir`; returns the command's exit code.
pub fn run(
    docker: &Docker,
    data_dir: &Path,
    topology: &Topology,
    args: &[OsString],
) -> Result<i32, ContainerError> {
    let cluster = cluster_name(topology).ok_or_else(|| {
        ContainerError::Invalid(format!(
            "the topology in {} names no containers",
            data_dir.display()
        ))
    })?;
    let gateway = format!("{cluster}-gateway");
    let image = docker
        .run(&["inspect", "--format", "{{.Config.Image}}", &gateway])
        .map_err(|_| {
            ContainerError::Invalid(format!(
                "the cluster {cluster} is not running (no container {gateway}): start it with \
                 `kmsim up --runtime docker`"
            ))
        })?;
    let dir = std::fs::canonicalize(data_dir)
        .map_err(|e| ContainerError::Invalid(format!("{}: {e}", data_dir.display())))?;
    let cwd = std::env::current_dir()
        .map_err(|e| ContainerError::Invalid(format!("the working directory: {e}")))?;
    let name = format!("{cluster}-cli-{}", std::process::id());
    let nets = networks(&cluster, topology);
    let terminal = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let mount = format!("{0}:{0}", dir.display());
    let label = format!("{CLUSTER_LABEL}={cluster}");
    let workdir = cwd.display().to_string();
    let mut create: Vec<OsString> = [
        "create",
        "--interactive",
        "--name",
        &name,
        "--label",
        &label,
        "--network",
        &nets[0],
        "--volume",
        &mount,
        "--workdir",
        &workdir,
        "--env",
        &format!("{IN_CLUSTER_ENV}=1"),
    ]
    .iter()
    .map(OsString::from)
    .collect();
    if terminal {
        create.push("--tty".into());
    }
    for var in PASSED_ENV {
        if std::env::var_os(var).is_some() {
            // `--env NAME` copies the value from docker's own environment, never on its
            // command line (the bench's secret key must not show in `ps`).
            create.extend(["--env".into(), OsString::from(var)]);
        }
    }
    create.push(image.into());
    create.extend(args.iter().cloned());
    let status = Command::new("docker")
        .args(&create)
        .stdout(std::process::Stdio::null())
        .status()
        .map_err(|e| ContainerError::Unavailable(format!("cannot run `docker`: {e}")))?;
    if !status.success() {
        return Err(ContainerError::Invalid(format!(
            "could not create the relay container {name} (docker create exited with {status})"
        )));
    }
    let attached = nets[1..]
        .iter()
        .try_for_each(|n| docker.run(&["network", "connect", n, &name]).map(drop));
    if let Err(e) = attached {
        let _ = docker.run(&["rm", "--force", &name]);
        return Err(e);
    }
    let status = Command::new("docker")
        .args(["start", "--attach", "--interactive", &name])
        .status();
    // Removed here rather than by `--rm`, which the daemon does after `start` returned: the
    // container is gone when the command is.
    let _ = docker.run(&["rm", "--force", &name]);
    let status =
        status.map_err(|e| ContainerError::Unavailable(format!("cannot run `docker`: {e}")))?;
    Ok(status.code().unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_relay_joins_every_network_the_compose_project_declares() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = super::super::compose::ComposeSpec::default_for_version();
        let regions = [("us-east-1".to_string(), 2), ("eu-west-1".to_string(), 1)];
        let p = super::super::compose::write_project(tmp.path(), &regions, &spec).unwrap();
        let text = std::fs::read_to_string(&p.compose_file).unwrap();
        let cluster = cluster_name(&p.topology).unwrap();
        assert_eq!(cluster, spec.cluster);
        let nets = networks(&cluster, &p.topology);
        assert_eq!(nets, ["kmsim-inter", "kmsim-us-east-1", "kmsim-eu-west-1"]);
        for n in &nets {
            assert!(
                text.contains(&format!("    name: {n}\n")),
                "{n} in:\n{text}"
            );
        }
        let declared = text
            .split("\nvolumes:")
            .next()
            .unwrap()
            .split("\nnetworks:\n")
            .nth(1)
            .unwrap()
            .lines()
            .filter(|l| l.trim_start().starts_with("name: "))
            .count();
        assert_eq!(
            declared,
            nets.len(),
            "every network of the project, no other"
        );
        assert!(needed(tmp.path()) || in_cluster());
    }
}
