//! The Docker CLI, run through `std::process::Command`: no daemon API client, so the same
//! commands an operator would type are what kmsim runs (and prints on failure).

use std::path::Path;
use std::process::Command;

use super::{ContainerError, CLUSTER_LABEL};

/// The Docker CLI, checked to reach its daemon.
#[derive(Debug, Clone)]
pub struct Docker {
    /// The daemon's version (e.g. `20.10.24`).
    pub server_version: String,
}

impl Docker {
    /// Finds `docker` on `PATH` and checks that its daemon answers.
    pub fn connect() -> Result<Docker, ContainerError> {
        let out = Command::new("docker")
            .args(["version", "--format", "{{.Server.Version}}"])
            .output()
            .map_err(|e| ContainerError::Unavailable(format!("cannot run `docker`: {e}")))?;
        if !out.status.success() {
            return Err(ContainerError::Unavailable(
                String::from_utf8_lossy(&out.stderr).trim().to_string(),
            ));
        }
        Ok(Docker {
            server_version: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        })
    }

    /// Runs `docker ARGS` and returns its standard output, trimmed.
    pub fn run(&self, args: &[&str]) -> Result<String, ContainerError> {
        run(Command::new("docker").args(args), "docker", args)
    }

    /// Runs `docker ARGS` in `dir` with `env` set.
    pub fn run_in(
        &self,
        dir: &Path,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> Result<String, ContainerError> {
        let mut cmd = Command::new("docker");
        cmd.current_dir(dir).args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        run(&mut cmd, "docker", args)
    }

    /// Runs `docker-compose ARGS` (compose 1.29, file format v3).
    pub fn compose(&self, args: &[&str]) -> Result<String, ContainerError> {
        let mut cmd = Command::new("docker-compose");
        cmd.args(args);
        run(&mut cmd, "docker-compose", args)
    }

    /// The ids of the containers, networks and volumes that carry the label of `cluster`.
    pub fn cluster_objects(&self, cluster: &str) -> Result<ClusterObjects, ContainerError> {
        let filter = format!("label={CLUSTER_LABEL}={cluster}");
        let list = |args: &[&str]| -> Result<Vec<String>, ContainerError> {
            Ok(self
                .run(args)?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect())
        };
        Ok(ClusterObjects {
            containers: list(&["ps", "-a", "-q", "--filter", &filter])?,
            networks: list(&["network", "ls", "-q", "--filter", &filter])?,
            volumes: list(&["volume", "ls", "-q", "--filter", &filter])?,
        })
    }

    /// Removes the containers and networks of `cluster` (found by its label, nothing else),
    /// and its volumes with `volumes`. Returns what was removed.
    pub fn remove_cluster(
        &self,
        cluster: &str,
        volumes: bool,
    ) -> Result<ClusterObjects, ContainerError> {
        let mut found = self.cluster_objects(cluster)?;
        if !found.containers.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(found.containers.iter().map(String::as_str));
            self.run(&args)?;
        }
        if !found.networks.is_empty() {
            // Every container of the cluster is gone, but Docker can keep a removed
            // container's endpoint on a network for a moment (more often after `network
            // disconnect`/`connect`, as `kmsim chaos cut` does), and `network rm` then refuses
            // ("has active endpoints"). The networks are the cluster's own: what is still
            // attached to them is such a stale endpoint, and is forced off.
            for network in &found.networks {
                let attached = self.run(&[
                    "network",
                    "inspect",
                    "-f",
                    "{{range .Containers}}{{.Name}} {{end}}",
                    network,
                ])?;
                for endpoint in attached.split_whitespace() {
                    // One Docker released meanwhile is fine: `network rm` says if any is left.
                    let _ = self.run(&["network", "disconnect", "-f", network, endpoint]);
                }
            }
            let mut args = vec!["network", "rm"];
            args.extend(found.networks.iter().map(String::as_str));
            self.run(&args)?;
        }
        if volumes && !found.volumes.is_empty() {
            let mut args = vec!["volume", "rm"];
            args.extend(found.volumes.iter().map(String::as_str));
            self.run(&args)?;
        } else {
            found.volumes.clear();
        }
        Ok(found)
    }
}

/// The objects of one cluster, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterObjects {
    /// Container ids.
    pub containers: Vec<String>,
    /// Network ids.
    pub networks: Vec<String>,
    /// Volume names.
    pub volumes: Vec<String>,
}

impl ClusterObjects {
    /// Nothing at all.
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty() && self.volumes.is_empty()
    }
}

fn run(cmd: &mut Command, program: &str, args: &[&str]) -> Result<String, ContainerError> {
    let line = format!("{program} {}", args.join(" "));
    let out = cmd.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            ContainerError::Unavailable(format!("`{program}` is not installed"))
        }
        _ => ContainerError::Command {
            command: line.clone(),
            stderr: e.to_string(),
        },
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
        return Err(ContainerError::Command {
            command: line,
            stderr: if stderr.is_empty() { stdout } else { stderr },
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}
