//! The observation phase after the heal: what every Region says about every key the history
//! knows, and whether every acknowledged ciphertext decrypts, and every acknowledged signature
//! and MAC verifies, where a related key is.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::sync::Semaphore;

use kmsim_experiment::history::{KeyView, Observation, Record};
use kmsim_experiment::spec::Experiment;

use super::calls::{self, KeyBook};
use super::runner::Recorder;
use crate::aws_client::AwsJsonClient;

/// Concurrency of the observation phase's reads and decrypts.
const OBSERVE_CONCURRENCY: usize = 32;

/// Reads a key in a Region: DescribeKey, its aliases, its rotations.
async fn read_key(client: &AwsJsonClient, arn: &str) -> Result<Option<KeyView>, String> {
    let a = client
        .call("DescribeKey", &serde_json::json!({ "KeyId": arn }))
        .await
        .map_err(|e| e.to_string())?;
    match a.error_code().as_deref() {
        None => {}
        Some("NotFoundException") => return Ok(None),
        Some(code) => return Err(format!("{code}: {}", a.error_message())),
    }
    let v = a.json();
    let m = &v["KeyMetadata"];
    let mrc = &m["MultiRegionConfiguration"];
    let mut replica_regions: Vec<String> = mrc["ReplicaKeys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["Region"].as_str().map(String::from))
        .collect();
    replica_regions.sort();
    let mut view = KeyView {
        state: m["KeyState"].as_str().unwrap_or_default().to_string(),
        multi_region_type: mrc["MultiRegionKeyType"].as_str().map(String::from),
        primary_region: mrc["PrimaryKey"]["Region"].as_str().map(String::from),
        replica_regions,
        aliases: Vec::new(),
        rotations: None,
    };
    if let Ok(a) = client
        .call("ListAliases", &serde_json::json!({ "KeyId": arn }))
        .await
    {
        if a.error_code().is_none() {
            let mut aliases: Vec<String> = a.json()["Aliases"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|x| x["AliasName"].as_str().map(String::from))
                .collect();
            aliases.sort();
            view.aliases = aliases;
        }
    }
    if let Ok(a) = client
        .call("ListKeyRotations", &serde_json::json!({ "KeyId": arn }))
        .await
    {
        if a.error_code().is_none() {
            view.rotations = a.json()["Rotations"].as_array().map(|r| r.len() as u32);
        }
    }
    Ok(Some(view))
}

/// Reads a key in `regions` until they agree on its shared properties and none is still
/// `Creating` or `Updating`, or `deadline` passes; returns the last readings (Region, when, what).
async fn read_until_agreed(
    clients: &BTreeMap<String, AwsJsonClient>,
    arn: &str,
    regions: &[String],
    clock: Instant,
    deadline: Instant,
) -> Vec<(String, u64, Option<KeyView>)> {
    let mut last: Vec<(String, u64, Option<KeyView>)> = Vec::new();
    loop {
        last.clear();
        for r in regions {
            let arn = calls::arn_in(arn, r);
            if let Ok(view) = read_key(&clients[r], &arn).await {
                last.push((r.clone(), clock.elapsed().as_micros() as u64, view));
            }
        }
        let views: Vec<&KeyView> = last.iter().filter_map(|(_, _, v)| v.as_ref()).collect();
        let agreed = last.len() == regions.len()
            && views.windows(2).all(|w| {
                (&w[0].primary_region, &w[0].replica_regions, w[0].rotations)
                    == (&w[1].primary_region, &w[1].replica_regions, w[1].rotations)
            })
            && views
                .iter()
                .all(|v| v.state != "Creating" && v.state != "Updating");
        if agreed || Instant::now() > deadline {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The observations: every key the history knows in every Region (read again until the
/// Regions agree or the convergence bound passes), then every acknowledged ciphertext,
/// signature and MAC in every Region that holds a related key.
pub(super) async fn observe(
    e: &Experiment,
    clients: &Arc<BTreeMap<String, AwsJsonClient>>,
    book: &Mutex<KeyBook>,
    rec: &Recorder,
) {
    let known = book
        .lock()
        .expect("invariant: never poisoned")
        .known
        .clone();
    let deadline = Instant::now() + e.checks.convergence;
    // Keys are read concurrently, so that the time a key's Regions are seen to agree is about
    // the key, not about how many keys were read before it.
    let sem = Arc::new(Semaphore::new(OBSERVE_CONCURRENCY));
    let mut reads = tokio::task::JoinSet::new();
    for (key_id, k) in known {
        let Ok(permit) = sem.clone().acquire_owned().await else {
            break;
        };
        let regions: Vec<String> = if k.multi_region {
            e.cluster.regions.clone()
        } else {
            vec![k.home.clone()]
        };
        let clients = clients.clone();
        let clock = rec.clock;
        reads.spawn(async move {
            let last = read_until_agreed(&clients, &k.arn, &regions, clock, deadline).await;
            drop(permit);
            (key_id, last)
        });
    }
    let mut holders: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while let Some(joined) = reads.join_next().await {
        let Ok((key_id, last)) = joined else { continue };
        for (region, at, view) in last {
            if view.as_ref().is_some_and(|v| {
                v.state != "PendingDeletion" && v.state != "PendingReplicaDeletion"
            }) {
                holders
                    .entry(key_id.clone())
                    .or_default()
                    .push(region.clone());
            }
            rec.record(Record::Observation(Observation::Key {
                region,
                key_id: key_id.clone(),
                at,
                view,
            }));
        }
    }
    // Every acknowledged Encrypt's ciphertext, in every Region holding the key.
    let path_records = rec.acked_encrypts();
    let sem = Arc::new(Semaphore::new(OBSERVE_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for (of, arn, blob) in path_records {
        let key_id = calls::key_id_of(&arn).to_string();
        for region in holders.get(&key_id).cloned().unwrap_or_default() {
            let Ok(permit) = sem.clone().acquire_owned().await else {
                break;
            };
            let client = clients[&region].clone();
            let arn = calls::arn_in(&arn, &region);
            let blob = blob.clone();
            let sink = rec.sink.clone();
            tasks.spawn(async move {
                let body = serde_json::json!({ "KeyId": arn, "CiphertextBlob": blob });
                let (plaintext, error) = match client.call("Decrypt", &body).await {
                    Ok(a) => match a.error_code() {
                        None => (
                            a.json()["Plaintext"]
                                .as_str()
                                .and_then(|p| {
                                    base64::engine::general_purpose::STANDARD.decode(p).ok()
                                })
                                .map(|p| calls::digest(&p)),
                            None,
                        ),
                        Some(code) => (None, Some(code)),
                    },
                    Err(err) => (None, Some(format!("no answer: {err}"))),
                };
                sink.push(Record::Observation(Observation::Decrypt {
                    region,
                    of,
                    plaintext,
                    error,
                }));
                drop(permit);
            });
        }
    }
    // Every acknowledged signature and MAC, likewise: Verify or VerifyMac with the message.
    let signed = rec
        .signed
        .lock()
        .expect("invariant: never poisoned")
        .clone();
    for s in signed {
        let key_id = calls::key_id_of(&s.arn).to_string();
        for region in holders.get(&key_id).cloned().unwrap_or_default() {
            let Ok(permit) = sem.clone().acquire_owned().await else {
                break;
            };
            let client = clients[&region].clone();
            let mut body = s.body.clone();
            body["KeyId"] = calls::arn_in(&s.arn, &region).into();
            let (operation, of, sink) = (s.operation, s.of, rec.sink.clone());
            tasks.spawn(async move {
                let error = match client.call(operation, &body).await {
                    Ok(a) => match a.error_code() {
                        None if a.json()["SignatureValid"] == true
                            || a.json()["MacValid"] == true =>
                        {
                            None
                        }
                        None => Some(format!("{operation} answered without a valid flag")),
                        Some(code) => Some(code),
                    },
                    Err(err) => Some(format!("no answer: {err}")),
                };
                sink.push(Record::Observation(Observation::Verify {
                    region,
                    of,
                    error,
                }));
                drop(permit);
            });
        }
    }
    while tasks.join_next().await.is_some() {}
}

impl Recorder {
    /// Every acknowledged Encrypt, GenerateDataKey and ReEncrypt so far: (op id, key ARN,
    /// ciphertext). Kept apart from the book's bounded pool so the observation covers all of
    /// them.
    pub(super) fn acked_encrypts(&self) -> Vec<(u64, String, String)> {
        self.encrypts
            .lock()
            .expect("invariant: never poisoned")
            .clone()
    }
}
