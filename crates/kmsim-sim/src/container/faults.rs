//! Faults at the runtime and network level for a cluster in containers (`kmsim up --runtime
//! docker`), next to the application-level fault layer of the nodes (`kmsim chaos link`):
//!
//! - **kill** (`docker kill`, SIGKILL of the node's process) and **start** (`docker start`; the
//!   node's named volume keeps its data): peers see refused connections at once;
//! - **pause** (`docker pause`: the cgroup frozen, a gray failure) and **resume**
//!   (`docker unpause`): the process stops with its connections open, so peers see calls that
//!   are accepted and never answered (timeouts), not refusals;
//! - **cut** and **reconnect** (`docker network disconnect` / `connect`): a Region cut off
//!   leaves the inter-Region network (`<cluster>-inter`), so its nodes still reach each other on
//!   their Region's network and nothing else reaches them (the gateway is on the inter-Region
//!   network only); a node cut off leaves both of its networks. Packets to a cut container have
//!   no route: connections fail or time out as across a real cut link.
//!
//! Only the cluster's own containers and networks are touched: their names are made from the
//! cluster's name, which the topology carries.

use std::path::Path;
use std::time::{Duration, Instant};

use kmsim_node::config::Topology;

use super::docker::Docker;
use super::runtime::{cluster_name, is_compose_project, ready_inside};
use super::ContainerError;
use crate::cluster::{container_name, NodeName, CONTAINER_AWS_PORT};

/// What a runtime-level fault does to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerAction {
    /// `docker kill`: SIGKILL.
    Kill,
    /// `docker start`: runs it again on its volume.
    Start,
    /// `docker pause`: frozen with its connections open.
    Pause,
    /// `docker unpause`.
    Resume,
}

impl ContainerAction {
    fn verb(self) -> &'static str {
        match self {
            ContainerAction::Kill => "kill",
            ContainerAction::Start => "start",
            ContainerAction::Pause => "pause",
            ContainerAction::Resume => "unpause",
        }
    }
}

/// The part of a cluster a network cut isolates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CutTarget {
    /// Every node of a Region, from the other Regions and the gateway.
    Region(String),
    /// One node, from everything.
    Node(NodeName),
}

/// A cluster whose nodes run in containers.
#[derive(Debug, Clone)]
pub struct ContainerCluster {
    docker: Docker,
    /// The cluster's name: the first part of every container and network name.
    pub name: String,
    topology: Topology,
}

impl ContainerCluster {
    /// The cluster in `dir`, or `None` when `dir` holds no compose project (its nodes are
    /// processes).
    pub fn open(
        dir: &Path,
        topology: &Topology,
    ) -> Result<Option<ContainerCluster>, ContainerError> {
        if !is_compose_project(dir) {
            return Ok(None);
        }
        let name = cluster_name(topology).ok_or_else(|| {
            ContainerError::Invalid(format!(
                "{} holds a compose project whose topology names no container",
                dir.display()
            ))
        })?;
        Ok(Some(ContainerCluster {
            docker: Docker::connect()?,
            name,
            topology: topology.clone(),
        }))
    }

    /// The container of `node`.
    pub fn container(&self, node: &NodeName) -> String {
        container_name(&self.name, &node.region, node.id)
    }

    /// The inter-Region network.
    fn inter(&self) -> String {
        format!("{}-inter", self.name)
    }

    /// The network of `region`.
    fn region_network(&self, region: &str) -> String {
        format!("{}-{region}", self.name)
    }

    /// Applies `action` to the container of `node`.
    pub fn act(&self, action: ContainerAction, node: &NodeName) -> Result<(), ContainerError> {
        self.docker
            .run(&[action.verb(), &self.container(node)])
            .map(|_| ())
    }

    /// The address (`ip:port`) at which the host reaches `node`'s gRPC listener: its
    /// container's address on the inter-Region network, which is not internal, so the host
    /// has a route to it (a Region's own network is internal). Read anew on each call: a
    /// container started again may be given another address. Fails while the node is cut off
    /// from that network or its container is not running.
    pub fn grpc_address(&self, node: &NodeName) -> Result<String, ContainerError> {
        let port = self
            .topology
            .region(&node.region)
            .and_then(|r| r.node(node.id))
            .map(|n| n.listen.port())
            .ok_or_else(|| ContainerError::Invalid(format!("the cluster has no node {node}")))?;
        let container = self.container(node);
        let format = format!(
            "{{{{with index .NetworkSettings.Networks \"{}\"}}}}{{{{.IPAddress}}}}{{{{end}}}}",
            self.inter()
        );
        let ip = self.docker.run(&["inspect", "-f", &format, &container])?;
        if ip.is_empty() {
            return Err(ContainerError::Invalid(format!(
                "{container} has no address on {} (cut off, or not running)",
                self.inter()
            )));
        }
        Ok(format!("{ip}:{port}"))
    }

    /// The gateway's AWS endpoint as published on the host (`<scheme>://127.0.0.1:<port>`).
    pub fn gateway_url(&self) -> Result<String, ContainerError> {
        let gateway = format!("{}-gateway", self.name);
        let port = self
            .topology
            .endpoint
            .as_ref()
            .map(|e| e.listen.port())
            .ok_or_else(|| ContainerError::Invalid("the topology has no gateway".into()))?;
        let published = self
            .docker
            .run(&["port", &gateway, &format!("{port}/tcp")])?;
        let addr = published
            .lines()
            .find(|l| l.starts_with("127.0.0.1:"))
            .ok_or_else(|| {
                ContainerError::Invalid(format!(
                    "{gateway} publishes no port on 127.0.0.1 ({published:?})"
                ))
            })?;
        Ok(format!("{}://{addr}", self.topology.aws_scheme()))
    }

    /// Kills the containers of `nodes` (`docker kill`) and waits, at most `timeout`, until none
    /// of them runs: on return their processes are gone.
    pub fn kill_and_wait(
        &self,
        nodes: &[NodeName],
        timeout: Duration,
    ) -> Result<(), ContainerError> {
        self.act_and_wait(
            ContainerAction::Kill,
            nodes,
            timeout,
            "stopped running",
            |c| {
                Ok(self
                    .docker
                    .run(&["inspect", "-f", "{{.State.Running}}", c])?
                    == "false")
            },
        )
    }

    /// Starts the containers of `nodes` again (`docker start`, on their volumes) and waits, at
    /// most `timeout` in all, until each answers 200 on `/readyz`.
    pub fn start_and_wait(
        &self,
        nodes: &[NodeName],
        timeout: Duration,
    ) -> Result<(), ContainerError> {
        self.act_and_wait(ContainerAction::Start, nodes, timeout, "ready", |c| {
            Ok(ready_inside(c, CONTAINER_AWS_PORT))
        })
    }

    /// Applies `action` to the container of each of `nodes`, then waits, at most `timeout` in
    /// all, until `done` holds for each container (`state` says what was waited for).
    fn act_and_wait(
        &self,
        action: ContainerAction,
        nodes: &[NodeName],
        timeout: Duration,
        state: &str,
        done: impl Fn(&str) -> Result<bool, ContainerError>,
    ) -> Result<(), ContainerError> {
        for n in nodes {
            self.act(action, n)?;
        }
        let deadline = Instant::now() + timeout;
        for n in nodes {
            let container = self.container(n);
            while !done(&container)? {
                if Instant::now() > deadline {
                    return Err(ContainerError::Invalid(format!(
                        "{n} ({container}) not {state} within {timeout:?} of `docker {}` (see `docker logs {container}`)",
                        action.verb()
                    )));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// The (network, container) pairs a cut of `target` removes and a reconnect restores.
    pub fn cut_links(&self, target: &CutTarget) -> Result<Vec<(String, String)>, ContainerError> {
        match target {
            CutTarget::Region(region) => {
                let r = self.topology.region(region).ok_or_else(|| {
                    ContainerError::Invalid(format!("the cluster has no Region {region}"))
                })?;
                Ok(r.nodes
                    .iter()
                    .map(|n| (self.inter(), container_name(&self.name, region, n.id)))
                    .collect())
            }
            CutTarget::Node(node) => {
                let known = self
                    .topology
                    .region(&node.region)
                    .is_some_and(|r| r.node(node.id).is_some());
                if !known {
                    return Err(ContainerError::Invalid(format!(
                        "the cluster has no node {node}"
                    )));
                }
                let c = self.container(node);
                Ok(vec![
                    (self.region_network(&node.region), c.clone()),
                    (self.inter(), c),
                ])
            }
        }
    }

    /// Disconnects `target` from its networks; returns the links cut (one already cut is
    /// left as it is).
    pub fn cut(&self, target: &CutTarget) -> Result<Vec<(String, String)>, ContainerError> {
        self.change_links(target, "disconnect", "is not connected")
    }

    /// Connects `target` to its networks again; returns the links restored (one not cut is
    /// left as it is). The containers keep their names, which are their DNS names.
    pub fn reconnect(&self, target: &CutTarget) -> Result<Vec<(String, String)>, ContainerError> {
        self.change_links(target, "connect", "already exists")
    }

    /// `docker network <verb> NETWORK CONTAINER` for each link of `target`; a link the docker
    /// CLI says is already so (its error contains `unchanged`) is skipped.
    fn change_links(
        &self,
        target: &CutTarget,
        verb: &str,
        unchanged: &str,
    ) -> Result<Vec<(String, String)>, ContainerError> {
        let mut done = Vec::new();
        for (network, container) in self.cut_links(target)? {
            match self.docker.run(&["network", verb, &network, &container]) {
                Ok(_) => done.push((network, container)),
                Err(e) if e.to_string().contains(unchanged) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::compose::{write_project, ComposeSpec};

    fn cluster() -> (tempfile::TempDir, ContainerCluster) {
        let tmp = tempfile::tempdir().unwrap();
        let spec = ComposeSpec {
            cluster: "kmsim-f".into(),
            ..ComposeSpec::default_for_version()
        };
        let p = write_project(
            tmp.path(),
            &[("us-east-1".into(), 3), ("eu-west-1".into(), 3)],
            &spec,
        )
        .unwrap();
        let c = ContainerCluster {
            // Never run: only the names are computed.
            docker: Docker {
                server_version: String::new(),
            },
            name: cluster_name(&p.topology).unwrap(),
            topology: p.topology,
        };
        (tmp, c)
    }

    #[test]
    fn a_region_is_cut_from_the_inter_region_network_only_and_a_node_from_both() {
        let (_tmp, c) = cluster();
        let region = c.cut_links(&CutTarget::Region("eu-west-1".into())).unwrap();
        assert_eq!(
            region,
            (1..=3)
                .map(|id| (
                    "kmsim-f-inter".to_string(),
                    format!("kmsim-f-eu-west-1-{id}")
                ))
                .collect::<Vec<_>>()
        );
        let node = c
            .cut_links(&CutTarget::Node(NodeName::parse("us-east-1/2").unwrap()))
            .unwrap();
        assert_eq!(
            node,
            vec![
                (
                    "kmsim-f-us-east-1".to_string(),
                    "kmsim-f-us-east-1-2".to_string()
                ),
                (
                    "kmsim-f-inter".to_string(),
                    "kmsim-f-us-east-1-2".to_string()
                ),
            ]
        );
    }

    #[test]
    fn targets_outside_the_cluster_are_refused() {
        let (_tmp, c) = cluster();
        assert!(c
            .cut_links(&CutTarget::Region("ap-south-1".into()))
            .is_err());
        assert!(c
            .cut_links(&CutTarget::Node(NodeName::parse("us-east-1/9").unwrap()))
            .is_err());
    }
}
