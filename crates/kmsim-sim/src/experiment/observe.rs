//! The observation phase after the heal: what every Region says about every key the history
//! knows, and whether every acknowledged ciphertext decrypts, and every acknowledged signature
//! and MAC verifies, where a related key is.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::sync::Semaphore;

use kmsim_experiment::check;
use kmsim_experiment::history::{KeyView, Observation, Record};
use kmsim_experiment::spec::Experiment;

use super::calls::{self, KeyBook};
use super::runner::Recorder;
use crate::aws_client::AwsJsonClient;

/// Concurrency of the observation phase's reads and decrypts.
const OBSERVE_CONCURRENCY: usize = 32;

/// What a Region says about a key's shared properties: DescribeKey and ListKeyRotations, sent
/// at once. `None` when the Region says the key does not exist (NotFoundException).
async fn read_shared(client: &AwsJsonClient, arn: &str) -> Result<Option<KeyView>, String> {
    let body = serde_json::json!({ "KeyId": arn });
    let (described, rotations) = tokio::join!(
        client.call("DescribeKey", &body),
        client.call("ListKeyRotations", &body)
    );
    let a = described.map_err(|e| e.to_string())?;
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
    Ok(Some(KeyView {
        state: m["KeyState"].as_str().unwrap_or_default().to_string(),
        multi_region_type: mrc["MultiRegionKeyType"].as_str().map(String::from),
        primary_region: mrc["PrimaryKey"]["Region"].as_str().map(String::from),
        replica_regions,
        aliases: Vec::new(),
        rotations: rotations
            .ok()
            .filter(|a| a.error_code().is_none())
            .and_then(|a| a.json()["Rotations"].as_array().map(|r| r.len() as u32)),
    }))
}

/// A key's aliases in a Region (empty when they cannot be read).
async fn read_aliases(client: &AwsJsonClient, arn: &str) -> Vec<String> {
    let Ok(a) = client
        .call("ListAliases", &serde_json::json!({ "KeyId": arn }))
        .await
    else {
        return Vec::new();
    };
    if a.error_code().is_some() {
        return Vec::new();
    }
    let mut aliases: Vec<String> = a.json()["Aliases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["AliasName"].as_str().map(String::from))
        .collect();
    aliases.sort();
    aliases
}

/// One Region's answer about a key: the Region, when the answer was in (microseconds on the
/// history's clock), what it said.
type Reading = (String, u64, Option<KeyView>);

/// Whether one round of readings of a key shows its Regions agreeing: every Region answered,
/// and for a multi-Region key the Regions holding it agree as the `convergence` checker
/// requires.
fn agreed(key_id: &str, multi_region: bool, regions: usize, readings: &[Reading]) -> bool {
    if readings.len() != regions {
        return false;
    }
    if !multi_region {
        return true;
    }
    let held: Vec<(&str, &KeyView)> = readings
        .iter()
        .filter_map(|(r, _, v)| v.as_ref().map(|v| (r.as_str(), v)))
        .collect();
    check::disagreement(key_id, &held).is_none()
}

/// Reads the shared properties of every key of `keys` in each of its Regions, all at once
/// (at most [`OBSERVE_CONCURRENCY`] reads in flight); returns each key's readings (a Region
/// whose read failed is left out).
async fn read_round(
    clients: &Arc<BTreeMap<String, AwsJsonClient>>,
    keys: &BTreeMap<String, (String, Vec<String>)>,
    clock: Instant,
) -> BTreeMap<String, Vec<Reading>> {
    let sem = Arc::new(Semaphore::new(OBSERVE_CONCURRENCY));
    let mut reads = tokio::task::JoinSet::new();
    for (key_id, (arn, regions)) in keys {
        for r in regions {
            let Ok(permit) = sem.clone().acquire_owned().await else {
                break;
            };
            let client = clients[r].clone();
            let (key_id, region, arn) = (key_id.clone(), r.clone(), calls::arn_in(arn, r));
            reads.spawn(async move {
                let view = read_shared(&client, &arn).await;
                drop(permit);
                let at = clock.elapsed().as_micros() as u64;
                (key_id, region, at, view)
            });
        }
    }
    let mut out: BTreeMap<String, Vec<Reading>> = BTreeMap::new();
    while let Some(joined) = reads.join_next().await {
        if let Ok((key_id, region, at, Ok(view))) = joined {
            out.entry(key_id).or_default().push((region, at, view));
        }
    }
    for readings in out.values_mut() {
        readings.sort_by(|a, b| a.0.cmp(&b.0));
    }
    out
}

/// The observations: every key the history knows in every Region, then every acknowledged
/// ciphertext, signature and MAC in every Region that holds a related key.
///
/// The keys' shared properties come first, before anything else is read, and all at once:
/// every key in each of its Regions in one round of concurrent reads, then again every 200 ms
/// for the keys whose Regions do not agree yet, until they do or `checks.convergence` after
/// `healed` has passed. A key's observations are its last round's, each dated when its answer
/// came in, so the date the `convergence` checker judges is at most one round after the
/// Regions agreed (a round of every key is one read per key and Region at
/// [`OBSERVE_CONCURRENCY`] at a time), not after the reads of every key before it. Aliases,
/// which are per Region and not converged, are read after.
pub(super) async fn observe(
    e: &Experiment,
    clients: &Arc<BTreeMap<String, AwsJsonClient>>,
    book: &Mutex<KeyBook>,
    rec: &Recorder,
    healed: Instant,
) {
    let known = book
        .lock()
        .expect("invariant: never poisoned")
        .known
        .clone();
    let deadline = healed + e.checks.convergence;
    let regions_of = |k: &calls::KnownKey| -> Vec<String> {
        if k.multi_region {
            e.cluster.regions.clone()
        } else {
            vec![k.home.clone()]
        }
    };
    let mut pending: BTreeMap<String, (String, Vec<String>)> = known
        .iter()
        .map(|(id, k)| (id.clone(), (k.arn.clone(), regions_of(k))))
        .collect();
    let mut last: BTreeMap<String, Vec<Reading>> = BTreeMap::new();
    loop {
        let round = read_round(clients, &pending, rec.clock).await;
        for (key_id, readings) in round {
            let k = &known[&key_id];
            if agreed(&key_id, k.multi_region, regions_of(k).len(), &readings) {
                pending.remove(&key_id);
            }
            last.insert(key_id, readings);
        }
        if pending.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Aliases of every key a Region holds, then the observations.
    let sem = Arc::new(Semaphore::new(OBSERVE_CONCURRENCY));
    let mut reads = tokio::task::JoinSet::new();
    for (key_id, readings) in last {
        let arn = known[&key_id].arn.clone();
        for (region, at, view) in readings {
            let Ok(permit) = sem.clone().acquire_owned().await else {
                break;
            };
            let client = clients[&region].clone();
            let (key_id, arn) = (key_id.clone(), calls::arn_in(&arn, &region));
            reads.spawn(async move {
                let mut view = view;
                if let Some(v) = &mut view {
                    v.aliases = read_aliases(&client, &arn).await;
                }
                drop(permit);
                (key_id, region, at, view)
            });
        }
    }
    let mut holders: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut observed = Vec::new();
    while let Some(joined) = reads.join_next().await {
        if let Ok(o) = joined {
            observed.push(o);
        }
    }
    // In the order of keys and Regions, whatever order the reads ended in.
    observed.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    for (key_id, region, at, view) in observed {
        if view
            .as_ref()
            .is_some_and(|v| v.state != "PendingDeletion" && v.state != "PendingReplicaDeletion")
        {
            holders
                .entry(key_id.clone())
                .or_default()
                .push(region.clone());
        }
        rec.record(Record::Observation(Observation::Key {
            region,
            key_id,
            at,
            view,
        }));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn view(primary: &str, replicas: &[&str]) -> Option<KeyView> {
        Some(KeyView {
            state: "Enabled".into(),
            multi_region_type: None,
            primary_region: Some(primary.into()),
            replica_regions: replicas.iter().map(|r| r.to_string()).collect(),
            aliases: Vec::new(),
            rotations: Some(0),
        })
    }

    #[test]
    fn a_key_is_read_again_until_every_region_answered_and_agrees() {
        let (us, eu) = ("us-east-1", "eu-west-1");
        let both = vec![
            (eu.to_string(), 2, view(us, &[eu])),
            (us.to_string(), 1, view(us, &[eu])),
        ];
        assert!(agreed("mrk-1", true, 2, &both));
        // A Region whose read failed: read again.
        assert!(!agreed("mrk-1", true, 2, &both[..1]));
        // The replica not there yet although the primary lists it.
        let pending = vec![
            (eu.to_string(), 2, None),
            (us.to_string(), 1, view(us, &[eu])),
        ];
        assert!(!agreed("mrk-1", true, 2, &pending));
        // A single-Region key shares nothing: one answer is enough, whatever it says.
        assert!(agreed("1234", false, 1, &[(us.to_string(), 1, None)]));
    }
}
