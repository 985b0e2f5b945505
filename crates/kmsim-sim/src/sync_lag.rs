//! The measurement behind `kmsim scenario sync-lag`: how long the synchronizer takes between
//! Regions, over many multi-Region keys, with the link delay of the caller's choosing.
//!
//! For each of `keys` keys: CreateKey (MultiRegion) in the primary Region, ReplicateKey to every
//! replica Region, timed three ways: the ReplicateKey call itself (it reaches the replica
//! Region during the request, so it includes one round trip between the Regions), the time
//! until the replica Region's node shows the replica (`Creating` or already `Enabled`), and the
//! time until it shows it `Enabled` (the synchronizer has delivered the material).
//! Then, key after key (every replica of every key exists by then: the steady state),
//! RotateKeyOnDemand on the primary and (a) the time until every replica Region holds the
//! new material (it can decrypt what the new material encrypts; ListKeyRotations shows it),
//! (b) the time until the new material is current everywhere (the primary waits for (a) before
//! it switches, then tells every replica). Times are taken by polling one node per Region every
//! `poll`; they include that granularity. Bounded: `keys` ≤ 1000, every wait ≤ 60 s.
//!
//! The injected delay is set with the admin API on every node of the primary Region for every
//! node of each replica Region (the direction the synchronizer sends), and cleared afterwards.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use kmsim_node::tls::Dialer;
use serde::Serialize;
use tonic::transport::Channel;

use kmsim_proto::admin::v1::admin_service_client::AdminServiceClient;
use kmsim_proto::admin::v1::{ClearLinkFaultsRequest, LinkProfile, SetLinkFaultsRequest};
use kmsim_proto::kms::v1 as pb;
use kmsim_proto::kms::v1::kms_service_client::KmsServiceClient;

use crate::bench::{new_histogram, percentiles_ms};
use crate::cluster::ClusterDir;

/// The most keys one run creates (every one stays in the cluster).
pub const MAX_KEYS: usize = 1000;
/// The longest any single wait lasts.
const WAIT: Duration = Duration::from_secs(60);

/// What to measure.
#[derive(Debug, Clone)]
pub struct SyncLagConfig {
    /// Keys to create, replicate and rotate.
    pub keys: usize,
    /// The primary Region.
    pub primary: String,
    /// The replica Regions.
    pub replicas: Vec<String>,
    /// Delay injected on the links from the primary Region to each replica Region.
    pub delay: Duration,
    /// Polling interval of the waits.
    pub poll: Duration,
}

/// One latency distribution, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Distribution {
    /// Samples.
    pub n: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// The figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct SyncLagReport {
    /// The injected one-way delay, ms.
    pub delay_ms: f64,
    /// The ReplicateKey call (one sample per replica).
    pub replicate_key_call: Distribution,
    /// ReplicateKey's start until its Region's node shows the replica in any state.
    pub replicate_to_visible: Distribution,
    /// ReplicateKey's start until the replica is Enabled in its Region.
    pub replicate_to_enabled: Distribution,
    /// RotateKeyOnDemand until every replica Region holds the new material (one per key).
    pub rotation_material_everywhere: Distribution,
    /// RotateKeyOnDemand until the new material is current in every Region (one per key).
    pub rotation_current_everywhere: Distribution,
}

fn dist(h: &Histogram<u64>) -> Distribution {
    let (p50, p99, _, max) = percentiles_ms(h);
    Distribution {
        n: h.len(),
        p50_ms: p50,
        p99_ms: p99,
        max_ms: max,
    }
}

fn client(dialer: &Dialer, addr: &str) -> Result<Channel, String> {
    dialer
        .endpoint(addr)
        .map_err(|e| e.to_string())
        .map(|e| e.timeout(Duration::from_secs(10)).connect_lazy())
}

/// Polls `probe` every `poll` until it is true; the time waited.
async fn until<F, Fut>(poll: Duration, start: Instant, mut probe: F) -> Result<Duration, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    loop {
        if probe().await {
            return Ok(start.elapsed());
        }
        if start.elapsed() > WAIT {
            return Err("timed out after 60 s".into());
        }
        tokio::time::sleep(poll).await;
    }
}

/// Runs the measurement against the cluster in `dir`.
pub async fn run(dir: &ClusterDir, cfg: &SyncLagConfig) -> Result<SyncLagReport, String> {
    if cfg.keys == 0 || cfg.keys > MAX_KEYS {
        return Err(format!("--keys must be 1 to {MAX_KEYS}"));
    }
    let nodes = dir.nodes().map_err(|e| e.to_string())?;
    let dialer = dir.operator_dialer().map_err(|e| e.to_string())?;
    let addr_of = |region: &str| -> Result<Vec<(u64, String)>, String> {
        let v: Vec<(u64, String)> = nodes
            .iter()
            .filter(|(n, _)| n.region == region)
            .map(|(n, e)| (n.id, e.advertise_addr()))
            .collect();
        if v.is_empty() {
            Err(format!("Region {region} is not in the cluster"))
        } else {
            Ok(v)
        }
    };
    let primary_nodes = addr_of(&cfg.primary)?;
    let mut kms_primary = KmsServiceClient::new(client(&dialer, &primary_nodes[0].1)?);
    let mut replicas = Vec::new();
    for r in &cfg.replicas {
        let n = addr_of(r)?;
        replicas.push((
            r.clone(),
            n.clone(),
            KmsServiceClient::new(client(&dialer, &n[0].1)?),
        ));
    }
    // The injected delay, primary -> each replica, on every sender.
    let targets: Vec<(String, Vec<(u64, String)>)> = replicas
        .iter()
        .map(|(r, n, _)| (r.clone(), n.clone()))
        .collect();
    let set_faults = |delay: Duration| {
        let primary_nodes = primary_nodes.clone();
        let targets = targets.clone();
        let dialer = dialer.clone();
        async move {
            for (_, addr) in &primary_nodes {
                let mut admin = AdminServiceClient::new(client(&dialer, addr)?);
                if delay.is_zero() {
                    admin
                        .clear_link_faults(ClearLinkFaultsRequest {})
                        .await
                        .map_err(|e| e.to_string())?;
                    continue;
                }
                for (region, peers) in &targets {
                    for (id, _) in peers {
                        admin
                            .set_link_faults(SetLinkFaultsRequest {
                                peer: format!("{region}/{id}"),
                                profile: Some(LinkProfile {
                                    delay_ms: delay.as_millis() as u64,
                                    ..Default::default()
                                }),
                            })
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                }
            }
            Ok::<(), String>(())
        }
    };
    set_faults(cfg.delay).await?;
    let result = measure(cfg, &mut kms_primary, &mut replicas).await;
    set_faults(Duration::ZERO).await?;
    result
}

type Replica = (String, Vec<(u64, String)>, KmsServiceClient<Channel>);

async fn measure(
    cfg: &SyncLagConfig,
    primary: &mut KmsServiceClient<Channel>,
    replicas: &mut [Replica],
) -> Result<SyncLagReport, String> {
    let mut call = new_histogram();
    let mut visible = new_histogram();
    let mut enabled = new_histogram();
    let mut held = new_histogram();
    let mut current = new_histogram();
    let us = |d: Duration| (d.as_micros() as u64).max(1);
    let err = |e: tonic::Status| kmsim_proto::error_from_status(&e).to_string();
    let mut keys = Vec::with_capacity(cfg.keys);
    for _ in 0..cfg.keys {
        let md = primary
            .create_key(pb::CreateKeyRequest {
                multi_region: Some(true),
                description: Some("kmsim scenario sync-lag".into()),
                ..Default::default()
            })
            .await
            .map_err(err)?
            .into_inner()
            .key_metadata
            .ok_or("no metadata")?;
        let key = md.key_id.ok_or("no key id")?;
        let first_material = md.current_key_material_id.unwrap_or_default();
        for (region, _, client) in replicas.iter_mut() {
            let start = Instant::now();
            primary
                .replicate_key(pb::ReplicateKeyRequest {
                    key_id: Some(key.clone()),
                    replica_region: Some(region.clone()),
                    ..Default::default()
                })
                .await
                .map_err(err)?;
            call.record(us(start.elapsed()))
                .map_err(|e| e.to_string())?;
            let state = |client: &KmsServiceClient<Channel>| {
                let mut c = client.clone();
                let key = key.clone();
                async move {
                    c.describe_key(pb::DescribeKeyRequest {
                        key_id: Some(key),
                        ..Default::default()
                    })
                    .await
                    .ok()
                    .and_then(|r| r.into_inner().key_metadata)
                    .and_then(|m| m.key_state)
                }
            };
            let seen = until(cfg.poll, start, || async { state(client).await.is_some() }).await?;
            visible.record(us(seen)).map_err(|e| e.to_string())?;
            let took = until(cfg.poll, start, || async {
                state(client).await.as_deref() == Some("Enabled")
            })
            .await?;
            enabled.record(us(took)).map_err(|e| e.to_string())?;
        }
        keys.push((key, first_material));
    }
    // Rotations are measured on keys whose replicas all exist (the steady state), each one
    // after the last, so a rotation never waits behind the replica-list updates of its own
    // key's ReplicateKey calls.
    for (key, first_material) in keys {
        let start = Instant::now();
        primary
            .rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
                key_id: Some(key.clone()),
            })
            .await
            .map_err(err)?;
        let mut held_all = Duration::ZERO;
        for (_, _, client) in replicas.iter_mut() {
            let took = until(cfg.poll, start, || {
                let mut c = client.clone();
                let key = key.clone();
                async move {
                    c.list_key_rotations(pb::ListKeyRotationsRequest {
                        key_id: Some(key),
                        include_key_material: Some("ALL_KEY_MATERIAL".into()),
                        ..Default::default()
                    })
                    .await
                    .is_ok_and(|r| r.into_inner().rotations.len() >= 2)
                }
            })
            .await?;
            held_all = held_all.max(took);
        }
        held.record(us(held_all)).map_err(|e| e.to_string())?;
        let mut current_all = Duration::ZERO;
        for (_, _, client) in replicas.iter_mut() {
            let took = until(cfg.poll, start, || {
                let mut c = client.clone();
                let key = key.clone();
                let first = first_material.clone();
                async move {
                    c.describe_key(pb::DescribeKeyRequest {
                        key_id: Some(key),
                        ..Default::default()
                    })
                    .await
                    .ok()
                    .and_then(|r| r.into_inner().key_metadata)
                    .and_then(|m| m.current_key_material_id)
                    .is_some_and(|id| id != first)
                }
            })
            .await?;
            current_all = current_all.max(took);
        }
        current.record(us(current_all)).map_err(|e| e.to_string())?;
    }
    Ok(SyncLagReport {
        delay_ms: cfg.delay.as_secs_f64() * 1000.0,
        replicate_key_call: dist(&call),
        replicate_to_visible: dist(&visible),
        replicate_to_enabled: dist(&enabled),
        rotation_material_everywhere: dist(&held),
        rotation_current_everywhere: dist(&current),
    })
}
