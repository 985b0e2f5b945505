//! The observation phase after the heal: what every Region says about every key the history
//! knows, and whether every acknowledged ciphertext decrypts, and every acknowledged signature
//! and MAC verifies, where a related key is.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use kmsim_proto::admin::v1::KeyView as KeyViewPb;
use tokio::sync::Semaphore;

use kmsim_experiment::check;
use kmsim_experiment::history::{KeyView, Observation, Record};
use kmsim_experiment::spec::Experiment;

use super::calls::{self, KeyBook};
use super::runner::Recorder;
use super::runtime::Runtime;
use crate::aws_client::AwsJsonClient;

/// Concurrency of the observation phase's decrypts and verifications.
const OBSERVE_CONCURRENCY: usize = 32;

/// A key as the admin API's `ReadKeyViews` shows it, as the history records it.
fn history_view(v: KeyViewPb) -> KeyView {
    KeyView {
        state: v.key_state,
        multi_region_type: v.multi_region_key_type,
        primary_region: v.primary_region,
        replica_regions: v.replica_regions,
        aliases: v.aliases,
        rotations: v.rotations,
    }
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

/// Reads every key of `keys` (key ID to its Regions) in each of its Regions: one
/// [`Runtime::key_views`] of all its keys a Region, every Region at once; returns each key's
/// readings, dated when its Region's answer came in (a Region whose read failed is left out).
async fn read_round<R: Runtime + 'static>(
    rt: &Arc<R>,
    keys: &BTreeMap<String, Vec<String>>,
    clock: Instant,
) -> BTreeMap<String, Vec<Reading>> {
    let mut asked: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key_id, regions) in keys {
        for r in regions {
            asked.entry(r.clone()).or_default().push(key_id.clone());
        }
    }
    let mut reads = tokio::task::JoinSet::new();
    for (region, ids) in asked {
        let rt = rt.clone();
        reads.spawn(async move {
            let views = rt.key_views(&region, &ids).await;
            let at = clock.elapsed().as_micros() as u64;
            (region, ids, at, views)
        });
    }
    let mut out: BTreeMap<String, Vec<Reading>> = BTreeMap::new();
    while let Some(joined) = reads.join_next().await {
        let Ok((region, ids, at, Ok(views))) = joined else {
            continue;
        };
        let mut held: BTreeMap<String, KeyViewPb> =
            views.into_iter().map(|v| (v.key_id.clone(), v)).collect();
        for key_id in ids {
            let view = held.remove(&key_id).map(history_view);
            out.entry(key_id)
                .or_default()
                .push((region.clone(), at, view));
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
/// The keys' shared properties come first, before anything else is read, and all at once: a
/// round asks each Region, through the runtime's admin API, for every key it should hold in
/// one batched read ([`Runtime::key_views`]: what DescribeKey, ListKeyRotations and
/// ListAliases would show, after the Region's read index), every Region at the same time; then
/// again every 200 ms for the keys whose Regions do not agree yet, until they do or
/// `checks.convergence` after `healed` has passed. A key's observations are its last round's,
/// each dated when its Region's answer came in, so the date the `convergence` checker judges
/// is at most one round (a few milliseconds for hundreds of keys) after the Regions agreed,
/// whatever the number of keys.
pub(super) async fn observe<R: Runtime + 'static>(
    e: &Experiment,
    rt: &Arc<R>,
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
    let mut pending: BTreeMap<String, Vec<String>> = known
        .iter()
        .map(|(id, k)| (id.clone(), regions_of(k)))
        .collect();
    let mut last: BTreeMap<String, Vec<Reading>> = BTreeMap::new();
    loop {
        let round = read_round(rt, &pending, rec.clock).await;
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
    let mut holders: BTreeMap<String, Vec<String>> = BTreeMap::new();
    // In the order of keys, then Regions.
    let observed = last.into_iter().flat_map(|(key_id, readings)| {
        readings
            .into_iter()
            .map(move |(region, at, view)| (key_id.clone(), region, at, view))
    });
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
