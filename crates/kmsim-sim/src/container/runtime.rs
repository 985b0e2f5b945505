//! A compose project run as a cluster (`kmsim up --runtime docker`, `kmsim down`): started
//! with docker-compose, waited for until every node is ready, removed by its label.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kmsim_node::config::Topology;

use super::compose::COMPOSE_FILE;
use super::docker::Docker;
use super::image::IMAGE_BINARY;
use super::ContainerError;
use crate::cluster::container_name;

/// Whether `dir` holds a compose project (its cluster runs in containers).
pub fn is_compose_project(dir: &Path) -> bool {
    dir.join(COMPOSE_FILE).is_file()
}

/// The cluster name a container topology was written for: its first node advertises
/// `<cluster>-<region>-<id>:<port>`.
pub fn cluster_name(topology: &Topology) -> Option<String> {
    let r = topology.regions.first()?;
    let n = r.nodes.first()?;
    let advertised = n.advertise.as_deref()?;
    let host = advertised.rsplit_once(':').map_or(advertised, |(h, _)| h);
    host.strip_suffix(&format!("-{}-{}", r.name, n.id))
        .map(String::from)
}

/// Starts the project in `dir` as `cluster` (`docker-compose -p <cluster> up -d`).
pub fn start(docker: &Docker, dir: &Path, cluster: &str) -> Result<(), ContainerError> {
    let file = dir.join(COMPOSE_FILE).to_string_lossy().into_owned();
    docker.compose(&["-p", cluster, "-f", &file, "up", "-d"])?;
    Ok(())
}

/// Waits until every node of `topology` answers 200 on `/readyz` (asked inside its container:
/// nodes publish no port) and the gateway on the host's `127.0.0.1:<aws_port>`. Returns how
/// long it took, or fails after `timeout` naming the nodes not ready.
pub async fn wait_ready(
    topology: &Topology,
    cluster: &str,
    aws_port: u16,
    timeout: Duration,
) -> Result<Duration, ContainerError> {
    let started = Instant::now();
    let mut waiting: Vec<(String, u16)> = topology
        .regions
        .iter()
        .flat_map(|r| {
            r.nodes.iter().map(|n| {
                (
                    container_name(cluster, &r.name, n.id),
                    n.aws_listen.map(|a| a.port()).unwrap_or_default(),
                )
            })
        })
        .collect();
    let gateway = format!("http://127.0.0.1:{aws_port}/readyz");
    let mut gateway_ready = false;
    loop {
        let mut still = Vec::new();
        for (name, port) in waiting {
            let (n, p) = (name.clone(), port);
            let ready = tokio::task::spawn_blocking(move || ready_inside(&n, p))
                .await
                .unwrap_or(false);
            if !ready {
                still.push((name, port));
            }
        }
        waiting = still;
        if !gateway_ready {
            gateway_ready = crate::health::http_get(&gateway, None, Duration::from_secs(2))
                .await
                .is_ok_and(|(s, _)| s == 200);
        }
        if waiting.is_empty() && gateway_ready {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            let mut names: Vec<String> = waiting.into_iter().map(|(n, _)| n).collect();
            if !gateway_ready {
                names.push(format!("{cluster}-gateway"));
            }
            return Err(ContainerError::Invalid(format!(
                "not ready within {timeout:?}: {} (see `docker logs <name>`)",
                names.join(", ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Whether the node in `container` answers 200 on its `/readyz` (`kmsim health` run inside).
pub fn ready_inside(container: &str, aws_port: u16) -> bool {
    let url = format!("http://127.0.0.1:{aws_port}/readyz");
    Command::new("docker")
        .args(["exec", container, IMAGE_BINARY, "health", "--url", &url])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::compose::{write_project, ComposeSpec};

    #[test]
    fn the_cluster_name_is_read_back_from_the_topology() {
        let tmp = tempfile::tempdir().unwrap();
        let spec = ComposeSpec {
            cluster: "kmsim-a-1".into(),
            ..ComposeSpec::default_for_version()
        };
        let p = write_project(tmp.path(), &[("eu-west-1".into(), 1)], &spec).unwrap();
        assert_eq!(cluster_name(&p.topology).as_deref(), Some("kmsim-a-1"));
        assert!(is_compose_project(tmp.path()));
    }
}
