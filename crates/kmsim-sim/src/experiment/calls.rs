//! The workload's calls: what each operation asks, against which of the workload's keys, and
//! what of the answer goes into the history. [`KeyBook`] holds the keys and ciphertexts the
//! clients share.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use base64::Engine as _;
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use kmsim_experiment::history::{Call, Digest, Outcome, Reply};
use kmsim_experiment::spec::{Operation, Workload};

use crate::aws_client::{AwsJsonClient, ClientError};

/// The ciphertexts kept per Region for Decrypt to pick from.
const CIPHERTEXTS_KEPT: usize = 4096;

/// A key of the workload as one Region names it.
#[derive(Clone, Debug)]
pub struct KeyRef {
    /// Its ARN in that Region.
    pub arn: String,
    /// Its ID (`mrk-…` for a multi-Region key).
    pub key_id: String,
}

/// What the history knows about a key, for the observations after the heal.
#[derive(Clone, Debug)]
pub struct KnownKey {
    /// The Region it was created in.
    pub home: String,
    /// Its ARN there.
    pub arn: String,
    /// Multi-Region.
    pub multi_region: bool,
}

/// A ciphertext an acknowledged Encrypt or GenerateDataKey returned.
#[derive(Clone, Debug)]
pub struct Ciphertext {
    /// The op that made it.
    pub of: u64,
    /// The key's ID.
    pub key_id: String,
    /// The key's ARN in the Region that made it.
    pub arn: String,
    /// Whether the key is multi-Region.
    pub multi_region: bool,
    /// The blob, base64.
    pub blob: String,
}

/// A key the workload created and manages (replicates, aliases, deletes).
#[derive(Clone, Debug)]
struct Managed {
    key_id: String,
    arn: String,
    multi_region: bool,
    replicas: BTreeSet<String>,
}

/// The keys and ciphertexts the clients share.
#[derive(Default)]
pub struct KeyBook {
    /// Keys each Region encrypts with: the setup's keys (and their replicas).
    crypto: BTreeMap<String, Vec<KeyRef>>,
    /// Keys created by the workload's CreateKey, by Region, not scheduled for deletion.
    managed: BTreeMap<String, Vec<Managed>>,
    /// Recent ciphertexts by the Region that made them.
    ciphertexts: BTreeMap<String, VecDeque<Ciphertext>>,
    /// Every key the history knows, by ID.
    pub known: BTreeMap<String, KnownKey>,
    /// Aliases made so far (for unique names).
    aliases: u64,
}

impl KeyBook {
    /// Adds a key of the setup: Region `region` encrypts with it.
    pub fn add_crypto(&mut self, region: &str, arn: &str) {
        self.crypto
            .entry(region.to_string())
            .or_default()
            .push(KeyRef {
                arn: arn.to_string(),
                key_id: key_id_of(arn).to_string(),
            });
    }

    /// Records a key the history knows.
    pub fn add_known(&mut self, home: &str, arn: &str, multi_region: bool) {
        self.known.insert(
            key_id_of(arn).to_string(),
            KnownKey {
                home: home.to_string(),
                arn: arn.to_string(),
                multi_region,
            },
        );
    }

    /// Every acknowledged ciphertext is also kept by the runner; this is the pool to draw from.
    fn add_ciphertext(&mut self, region: &str, c: Ciphertext) {
        let q = self.ciphertexts.entry(region.to_string()).or_default();
        if q.len() == CIPHERTEXTS_KEPT {
            q.pop_front();
        }
        q.push_back(c);
    }
}

/// The key ID at the end of an ARN (`…:key/<id>`), or the input when it is no ARN.
pub fn key_id_of(arn: &str) -> &str {
    arn.rsplit_once("key/").map_or(arn, |(_, id)| id)
}

/// The ARN of the same key ID in another Region (for a multi-Region key's related keys).
pub fn arn_in(arn: &str, region: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() == 6 {
        format!(
            "{}:{}:{}:{region}:{}:{}",
            parts[0], parts[1], parts[2], parts[4], parts[5]
        )
    } else {
        arn.to_string()
    }
}

/// The digest the history keeps of a plaintext.
pub fn digest(plaintext: &[u8]) -> Digest {
    hex::encode(&Sha256::digest(plaintext)[..16])
}

/// Picks an operation by the mix's weights.
pub fn pick(mix: &[(Operation, u32)], rng: &mut ChaCha8Rng) -> Operation {
    let total: u32 = mix.iter().map(|(_, w)| *w).sum();
    let mut x = rng.gen_range(0..total.max(1));
    for (op, w) in mix {
        if x < *w {
            return *op;
        }
        x -= *w;
    }
    mix.first().map_or(Operation::Encrypt, |(o, _)| *o)
}

/// The operations the runner's workload can make today.
pub const SUPPORTED: [Operation; 9] = [
    Operation::Encrypt,
    Operation::Decrypt,
    Operation::GenerateDataKey,
    Operation::CreateKey,
    Operation::ReplicateKey,
    Operation::RotateKeyOnDemand,
    Operation::CreateAlias,
    Operation::ScheduleKeyDeletion,
    Operation::DescribeKey,
];

/// What one call will ask, chosen under the book's lock.
#[derive(Clone, Debug)]
pub struct Planned {
    /// The history's description.
    pub call: Call,
    /// The AWS operation name.
    pub operation: &'static str,
    /// The request body.
    pub body: Value,
    /// For a managed key's change: its ID.
    managed: Option<String>,
}

/// A call with no managed key behind it.
pub fn planned(call: Call, operation: &'static str, body: Value) -> Planned {
    Planned {
        call,
        operation,
        body,
        managed: None,
    }
}

/// Plans a call of `op` from `region`; `None` when the operation has nothing to act on yet
/// (no ciphertext to decrypt, no key to replicate).
pub fn plan(
    op: Operation,
    region: &str,
    w: &Workload,
    book: &mut KeyBook,
    rng: &mut ChaCha8Rng,
) -> Option<Planned> {
    let crypto_key = |book: &KeyBook, rng: &mut ChaCha8Rng| {
        book.crypto
            .get(region)
            .and_then(|keys| keys.choose(rng))
            .cloned()
    };
    Some(match op {
        Operation::Encrypt => {
            let key = crypto_key(book, rng)?;
            let mut plaintext = vec![0u8; w.plaintext_bytes as usize];
            rng.fill_bytes(&mut plaintext);
            let b64 = base64::engine::general_purpose::STANDARD.encode(&plaintext);
            planned(
                Call::Encrypt {
                    key: key.arn.clone(),
                    plaintext: digest(&plaintext),
                },
                "Encrypt",
                json!({ "KeyId": key.arn, "Plaintext": b64 }),
            )
        }
        Operation::GenerateDataKey => {
            let key = crypto_key(book, rng)?;
            planned(
                Call::GenerateDataKey {
                    key: key.arn.clone(),
                },
                "GenerateDataKey",
                json!({ "KeyId": key.arn, "KeySpec": "AES_256" }),
            )
        }
        Operation::Decrypt => {
            let cross = rng.gen_bool(w.cross_region);
            let source: Option<Ciphertext> = if cross {
                let others: Vec<&Ciphertext> = book
                    .ciphertexts
                    .iter()
                    .filter(|(r, _)| r.as_str() != region)
                    .flat_map(|(_, q)| q.iter())
                    .filter(|c| c.multi_region && related_here(book, region, &c.key_id))
                    .collect();
                others.choose(rng).map(|c| (*c).clone())
            } else {
                None
            };
            let source = match source {
                Some(s) => s,
                None => {
                    let q = book.ciphertexts.get(region)?;
                    q.get(rng.gen_range(0..q.len().max(1)))?.clone()
                }
            };
            let key = arn_in(&source.arn, region);
            Planned {
                call: Call::Decrypt {
                    key: key.clone(),
                    of: source.of,
                },
                operation: "Decrypt",
                body: json!({ "KeyId": key, "CiphertextBlob": source.blob }),
                managed: None,
            }
        }
        Operation::CreateKey => {
            let multi_region = rng.gen_bool(w.multi_region);
            planned(
                Call::CreateKey {
                    multi_region,
                    spec: "SYMMETRIC_DEFAULT".into(),
                },
                "CreateKey",
                json!({ "MultiRegion": multi_region, "Description": "kmsim experiment" }),
            )
        }
        Operation::ReplicateKey => {
            let candidates: Vec<(String, String)> = book
                .managed
                .get(region)
                .into_iter()
                .flatten()
                .filter(|m| m.multi_region)
                .flat_map(|m| {
                    w.clients
                        .iter()
                        .filter(|r| r.as_str() != region && !m.replicas.contains(*r))
                        .map(|r| (m.key_id.clone(), r.clone()))
                        .collect::<Vec<_>>()
                })
                .collect();
            let (key_id, target) = candidates.choose(rng)?.clone();
            let m = book
                .managed
                .get_mut(region)?
                .iter_mut()
                .find(|m| m.key_id == key_id)?;
            // Claimed now, so no other client replicates it there too.
            m.replicas.insert(target.clone());
            Planned {
                call: Call::ReplicateKey {
                    key: m.arn.clone(),
                    replica_region: target.clone(),
                },
                operation: "ReplicateKey",
                body: json!({ "KeyId": m.arn, "ReplicaRegion": target }),
                managed: Some(key_id),
            }
        }
        Operation::RotateKeyOnDemand => {
            // A key this Region is the primary of (or owns), among those clients encrypt with,
            // so ciphertexts under old and new material are decrypted everywhere afterwards.
            let own: Vec<&KeyRef> = book
                .crypto
                .get(region)
                .into_iter()
                .flatten()
                .filter(|k| book.known.get(&k.key_id).is_some_and(|x| x.home == region))
                .collect();
            let key = own.choose(rng)?.arn.clone();
            planned(
                Call::RotateKeyOnDemand { key: key.clone() },
                "RotateKeyOnDemand",
                json!({ "KeyId": key }),
            )
        }
        Operation::CreateAlias => {
            let key = crypto_key(book, rng)?;
            book.aliases += 1;
            let alias = format!("alias/experiment-{}-{}", region, book.aliases);
            planned(
                Call::CreateAlias {
                    alias: alias.clone(),
                    key: key.arn.clone(),
                },
                "CreateAlias",
                json!({ "AliasName": alias, "TargetKeyId": key.key_id }),
            )
        }
        Operation::ScheduleKeyDeletion => {
            let list = book.managed.get_mut(region)?;
            if list.is_empty() {
                return None;
            }
            let m = list.swap_remove(rng.gen_range(0..list.len()));
            planned(
                Call::ScheduleKeyDeletion {
                    key: m.arn.clone(),
                    days: 7,
                },
                "ScheduleKeyDeletion",
                json!({ "KeyId": m.arn, "PendingWindowInDays": 7 }),
            )
        }
        Operation::DescribeKey => {
            let key = crypto_key(book, rng)?;
            planned(
                Call::DescribeKey {
                    key: key.arn.clone(),
                },
                "DescribeKey",
                json!({ "KeyId": key.arn }),
            )
        }
        Operation::Sign
        | Operation::GenerateMac
        | Operation::ReEncrypt
        | Operation::UpdatePrimaryRegion => return None,
    })
}

/// Whether Region `region` holds a related key of `key_id` (a replica the workload set up).
fn related_here(book: &KeyBook, region: &str, key_id: &str) -> bool {
    book.crypto
        .get(region)
        .is_some_and(|keys| keys.iter().any(|k| k.key_id == key_id))
}

/// Sends a planned call and turns the answer into the history's outcome.
pub async fn send(client: &AwsJsonClient, p: &Planned) -> Outcome {
    match client.call(p.operation, &p.body).await {
        Ok(answer) => match answer.error_code() {
            None => Outcome::Ok {
                reply: reply_of(&answer.json()),
            },
            // A server-side error (`KMSInternalException`, `DependencyTimeoutException`: HTTP
            // 5xx) does not say the request had no effect: a write may have committed after
            // the server gave up waiting for it. Like a timeout, its outcome is unknown.
            Some(code) if answer.status.is_server_error() => Outcome::Unknown {
                reason: format!("{code}: {}", answer.error_message()),
            },
            Some(code) => Outcome::Failed {
                code,
                message: answer.error_message(),
            },
        },
        Err(e @ (ClientError::Timeout(_) | ClientError::Transport(_))) => Outcome::Unknown {
            reason: e.to_string(),
        },
        Err(e) => Outcome::Failed {
            code: "ClientError".into(),
            message: e.to_string(),
        },
    }
}

/// The parts of an answer the history keeps.
fn reply_of(v: &Value) -> Reply {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(String::from);
    let meta = v.get("KeyMetadata").or_else(|| v.get("ReplicaKeyMetadata"));
    Reply {
        key: s(meta.and_then(|m| m.get("Arn"))).or_else(|| s(v.get("KeyId"))),
        ciphertext: s(v.get("CiphertextBlob")),
        plaintext: v
            .get("Plaintext")
            .and_then(Value::as_str)
            .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok())
            .map(|p| digest(&p)),
        // ScheduleKeyDeletion answers its KeyState beside the KeyId, not in a KeyMetadata.
        state: s(meta.and_then(|m| m.get("KeyState"))).or_else(|| s(v.get("KeyState"))),
    }
}

/// Updates the book with an acknowledged call's effect. Keys created by the workload become
/// keys it manages (replicates, deletes); the setup's keys (`managed` false) stay out of that,
/// so the keys clients encrypt with are never scheduled for deletion under them.
pub fn apply(
    book: &mut KeyBook,
    region: &str,
    id: u64,
    p: &Planned,
    outcome: &Outcome,
    managed: bool,
) {
    let ok = match outcome {
        Outcome::Ok { reply } => reply,
        Outcome::Failed { code, .. } => {
            if let (Call::ReplicateKey { replica_region, .. }, Some(key_id)) = (&p.call, &p.managed)
            {
                if code == "AlreadyExistsException" {
                    // The Region holds the key already: it stays claimed.
                    return;
                }
                // Refused: the Region may be tried again.
                if let Some(m) = book
                    .managed
                    .get_mut(region)
                    .and_then(|l| l.iter_mut().find(|m| &m.key_id == key_id))
                {
                    m.replicas.remove(replica_region);
                }
            }
            return;
        }
        Outcome::Unknown { .. } => return,
    };
    match &p.call {
        Call::Encrypt { key, .. } | Call::GenerateDataKey { key } => {
            if let Some(blob) = &ok.ciphertext {
                let key_id = key_id_of(key).to_string();
                let multi_region = key_id.starts_with("mrk-");
                book.add_ciphertext(
                    region,
                    Ciphertext {
                        of: id,
                        key_id,
                        arn: key.clone(),
                        multi_region,
                        blob: blob.clone(),
                    },
                );
            }
        }
        Call::CreateKey { multi_region, .. } => {
            if let Some(arn) = &ok.key {
                book.add_known(region, arn, *multi_region);
                if !managed {
                    return;
                }
                book.managed
                    .entry(region.to_string())
                    .or_default()
                    .push(Managed {
                        key_id: key_id_of(arn).to_string(),
                        arn: arn.clone(),
                        multi_region: *multi_region,
                        replicas: BTreeSet::new(),
                    });
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_key_deletion_answer_gives_its_key_state() {
        let r = reply_of(&json!({
            "KeyId": "arn:aws:kms:us-east-1:111122223333:key/mrk-1",
            "KeyState": "PendingReplicaDeletion",
            "PendingWindowInDays": 7
        }));
        assert_eq!(r.state.as_deref(), Some("PendingReplicaDeletion"));
        let r = reply_of(&json!({ "KeyMetadata": { "Arn": "a", "KeyState": "Enabled" } }));
        assert_eq!(r.state.as_deref(), Some("Enabled"));
    }
}
