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

use crate::aws_client::{ClientError, ExchangeError, OwnConnection};

/// The ciphertexts kept per Region for Decrypt to pick from.
const CIPHERTEXTS_KEPT: usize = 4096;

/// What a setup key is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// `SYMMETRIC_DEFAULT`, `ENCRYPT_DECRYPT`: Encrypt, Decrypt, GenerateDataKey, ReEncrypt.
    Symmetric,
    /// An asymmetric `SIGN_VERIFY` key of the workload's `sign_key_spec`: Sign.
    Sign,
    /// An HMAC `GENERATE_VERIFY_MAC` key of the workload's `mac_key_spec`: GenerateMac.
    Mac,
}

impl KeyKind {
    /// The kinds of setup keys a workload needs: symmetric always (an operation with nothing
    /// to act on becomes an Encrypt), the others when the mix has their operation.
    pub fn needed(w: &Workload) -> Vec<KeyKind> {
        let mut out = vec![KeyKind::Symmetric];
        if w.weight(Operation::Sign) > 0 {
            out.push(KeyKind::Sign);
        }
        if w.weight(Operation::GenerateMac) > 0 {
            out.push(KeyKind::Mac);
        }
        out
    }

    /// The CreateKey call that makes a key of this kind.
    pub fn create(self, multi_region: bool, w: &Workload) -> Planned {
        let (spec, usage) = match self {
            KeyKind::Symmetric => ("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"),
            KeyKind::Sign => (w.sign_key_spec.as_str(), "SIGN_VERIFY"),
            KeyKind::Mac => (w.mac_key_spec.as_str(), "GENERATE_VERIFY_MAC"),
        };
        planned(
            Call::CreateKey {
                multi_region,
                spec: spec.to_string(),
            },
            "CreateKey",
            json!({
                "MultiRegion": multi_region,
                "Description": "kmsim experiment",
                "KeySpec": spec,
                "KeyUsage": usage,
            }),
        )
    }
}

/// A key of the workload as one Region names it.
#[derive(Clone, Debug)]
pub struct KeyRef {
    /// Its ARN in that Region.
    pub arn: String,
    /// Its ID (`mrk-…` for a multi-Region key).
    pub key_id: String,
    /// What it is for.
    pub kind: KeyKind,
}

/// Where the workload believes a multi-Region key's primary is going.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Handover {
    /// Nowhere: `home` is its primary.
    #[default]
    None,
    /// An UpdatePrimaryRegion to this Region is in flight.
    InFlight(String),
    /// An UpdatePrimaryRegion to this Region had no answer: it may have moved, or may still be
    /// moving. The next `update_primary_region` from `home` sends the same request again
    /// (kmsim waits for a hand-over under way; see docs/EXPERIMENTS.md).
    InDoubt(String),
}

/// What the history knows about a key, for the observations after the heal.
#[derive(Clone, Debug)]
pub struct KnownKey {
    /// The Region of its primary as far as the workload knows: where it was created, or
    /// where an acknowledged UpdatePrimaryRegion moved it.
    pub home: String,
    /// Its ARN in the Region it was created in.
    pub arn: String,
    /// Multi-Region.
    pub multi_region: bool,
    /// A primary hand-over under way or in doubt.
    pub handover: Handover,
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
    /// No call of the workload picks a ciphertext (no Decrypt, no ReEncrypt in its mix): the
    /// pool is not kept (the observations have every ciphertext from the runner).
    pub no_pool: bool,
}

impl KeyBook {
    /// Adds a key of the setup: Region `region` uses it for what `kind` says.
    pub fn add_crypto(&mut self, region: &str, arn: &str, kind: KeyKind) {
        self.crypto
            .entry(region.to_string())
            .or_default()
            .push(KeyRef {
                arn: arn.to_string(),
                key_id: key_id_of(arn).to_string(),
                kind,
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
                handover: Handover::None,
            },
        );
    }

    /// One of `region`'s setup keys of `kind`, chosen with `rng`.
    fn key_of_kind(&self, region: &str, kind: KeyKind, rng: &mut ChaCha8Rng) -> Option<KeyRef> {
        let keys: Vec<&KeyRef> = self
            .crypto
            .get(region)
            .into_iter()
            .flatten()
            .filter(|k| k.kind == kind)
            .collect();
        keys.choose(rng).map(|k| (*k).clone())
    }

    /// A ciphertext for `region` to decrypt or re-encrypt: with the workload's `cross_region`
    /// share one made in another Region under a key this Region holds a replica of (when there
    /// is one), else one made here.
    fn pick_ciphertext(
        &self,
        region: &str,
        w: &Workload,
        rng: &mut ChaCha8Rng,
    ) -> Option<Ciphertext> {
        let cross = rng.gen_bool(w.cross_region);
        let source: Option<Ciphertext> = if cross {
            let others: Vec<&Ciphertext> = self
                .ciphertexts
                .iter()
                .filter(|(r, _)| r.as_str() != region)
                .flat_map(|(_, q)| q.iter())
                .filter(|c| c.multi_region && related_here(self, region, &c.key_id))
                .collect();
            others.choose(rng).map(|c| (*c).clone())
        } else {
            None
        };
        match source {
            Some(s) => Some(s),
            None => {
                let q = self.ciphertexts.get(region)?;
                q.get(rng.gen_range(0..q.len().max(1))).cloned()
            }
        }
    }

    /// Every acknowledged ciphertext is also kept by the runner; this is the pool to draw from.
    fn add_ciphertext(&mut self, region: &str, c: Ciphertext) {
        if self.no_pool {
            return;
        }
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
    /// For an UpdatePrimaryRegion: which key, to where, and whether it repeats one that had
    /// no answer.
    promotion: Option<Promotion>,
}

/// An UpdatePrimaryRegion the book follows.
#[derive(Clone, Debug)]
struct Promotion {
    key_id: String,
    to: String,
    retry: bool,
}

/// A call with no managed key behind it.
pub fn planned(call: Call, operation: &'static str, body: Value) -> Planned {
    Planned {
        call,
        operation,
        body,
        managed: None,
        promotion: None,
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
    let crypto_key =
        |book: &KeyBook, rng: &mut ChaCha8Rng| book.key_of_kind(region, KeyKind::Symmetric, rng);
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
            let source = book.pick_ciphertext(region, w, rng)?;
            let key = arn_in(&source.arn, region);
            planned(
                Call::Decrypt {
                    key: key.clone(),
                    of: source.of,
                },
                "Decrypt",
                json!({ "KeyId": key, "CiphertextBlob": source.blob }),
            )
        }
        Operation::ReEncrypt => {
            let source = book.pick_ciphertext(region, w, rng)?;
            let from = arn_in(&source.arn, region);
            // Another of the Region's symmetric keys when it has one ("from one key to
            // another"), else the same key (which AWS allows).
            let others: Vec<&KeyRef> = book
                .crypto
                .get(region)
                .into_iter()
                .flatten()
                .filter(|k| k.kind == KeyKind::Symmetric && k.key_id != source.key_id)
                .collect();
            let to = match others.choose(rng) {
                Some(k) => k.arn.clone(),
                None => from.clone(),
            };
            planned(
                Call::ReEncrypt {
                    key: to.clone(),
                    of: source.of,
                },
                "ReEncrypt",
                json!({
                    "CiphertextBlob": source.blob,
                    "SourceKeyId": from,
                    "DestinationKeyId": to,
                }),
            )
        }
        Operation::Sign | Operation::GenerateMac => {
            let sign = op == Operation::Sign;
            let kind = if sign { KeyKind::Sign } else { KeyKind::Mac };
            let key = book.key_of_kind(region, kind, rng)?;
            let mut message = vec![0u8; w.plaintext_bytes as usize];
            rng.fill_bytes(&mut message);
            let b64 = base64::engine::general_purpose::STANDARD.encode(&message);
            let (key, message) = (key.arn, digest(&message));
            if sign {
                planned(
                    Call::Sign {
                        key: key.clone(),
                        message,
                    },
                    "Sign",
                    json!({
                        "KeyId": key,
                        "Message": b64,
                        "MessageType": "RAW",
                        "SigningAlgorithm": w.signing_algorithm(),
                    }),
                )
            } else {
                planned(
                    Call::GenerateMac {
                        key: key.clone(),
                        message,
                    },
                    "GenerateMac",
                    json!({ "KeyId": key, "Message": b64, "MacAlgorithm": w.mac_algorithm() }),
                )
            }
        }
        Operation::UpdatePrimaryRegion => {
            // A setup key whose primary is here: first one whose earlier hand-over had no
            // answer (the same request again), else one with no hand-over under way, to a
            // Region holding a replica of it.
            let mine = |h: fn(&Handover) -> Option<&String>| -> Vec<(String, String)> {
                book.known
                    .iter()
                    .filter(|(_, k)| k.multi_region && k.home == region)
                    .filter_map(|(id, k)| h(&k.handover).map(|to| (id.clone(), to.clone())))
                    .collect()
            };
            let in_doubt = mine(|h| match h {
                Handover::InDoubt(to) => Some(to),
                _ => None,
            });
            let (key_id, to, retry) = match in_doubt.choose(rng) {
                Some((key_id, to)) => (key_id.clone(), to.clone(), true),
                None => {
                    let fresh: Vec<(String, String)> = book
                        .known
                        .iter()
                        .filter(|(id, k)| {
                            k.multi_region
                                && k.home == region
                                && k.handover == Handover::None
                                && related_here(book, region, id)
                        })
                        .flat_map(|(id, _)| {
                            w.clients
                                .iter()
                                .filter(|t| t.as_str() != region && related_here(book, t, id))
                                .map(|t| (id.clone(), t.clone()))
                                .collect::<Vec<_>>()
                        })
                        .collect();
                    let (key_id, to) = fresh.choose(rng)?.clone();
                    (key_id, to, false)
                }
            };
            let k = book.known.get_mut(&key_id)?;
            // Claimed now, so no other client moves it or rotates it meanwhile.
            k.handover = Handover::InFlight(to.clone());
            let key = arn_in(&k.arn, region);
            Planned {
                call: Call::UpdatePrimaryRegion {
                    key: key.clone(),
                    primary_region: to.clone(),
                },
                operation: "UpdatePrimaryRegion",
                body: json!({ "KeyId": key, "PrimaryRegion": to }),
                managed: None,
                promotion: Some(Promotion { key_id, to, retry }),
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
                promotion: None,
            }
        }
        Operation::RotateKeyOnDemand => {
            // A symmetric key this Region is the primary of (or owns), among those clients
            // encrypt with, so ciphertexts under old and new material are decrypted everywhere
            // afterwards; not one being handed over (it is `Updating`, or its primary is in
            // doubt).
            let own: Vec<&KeyRef> = book
                .crypto
                .get(region)
                .into_iter()
                .flatten()
                .filter(|k| k.kind == KeyKind::Symmetric)
                .filter(|k| {
                    book.known
                        .get(&k.key_id)
                        .is_some_and(|x| x.home == region && x.handover == Handover::None)
                })
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
    })
}

/// Whether Region `region` holds a related key of `key_id` (a replica the workload set up).
fn related_here(book: &KeyBook, region: &str, key_id: &str) -> bool {
    book.crypto
        .get(region)
        .is_some_and(|keys| keys.iter().any(|k| k.key_id == key_id))
}

/// Sends a planned call on the caller's connection and turns the answer into the history's
/// outcome.
pub async fn send(conn: &mut OwnConnection, p: &Planned) -> Outcome {
    let body =
        bytes::Bytes::from(serde_json::to_vec(&p.body).expect("invariant: JSON values serialize"));
    match conn.call(p.operation, body).await {
        Ok(answer) => match answer.error_code() {
            None => Outcome::Ok {
                reply: reply_of_body(&answer.body),
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
        // No connection to the endpoint (counted as before, when the pooled client reported it
        // as a transport error), a lost connection, or no answer in time.
        Err(
            e @ (ExchangeError::Lost(_)
            | ExchangeError::NotSent(ClientError::Timeout(_) | ClientError::Transport(_))),
        ) => Outcome::Unknown {
            reason: e.to_string(),
        },
        Err(e) => Outcome::Failed {
            code: "ClientError".into(),
            message: e.to_string(),
        },
    }
}

/// The fields of an answer the history keeps, read straight from its body (everything else
/// in it skipped unparsed).
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Wire {
    key_metadata: Option<Object<WireMeta>>,
    replica_key_metadata: Option<Object<WireMeta>>,
    key_id: Option<String>,
    ciphertext_blob: Option<String>,
    plaintext: Option<String>,
    key_state: Option<String>,
    signature: Option<String>,
    mac: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WireMeta {
    arn: Option<String>,
    key_state: Option<String>,
}

/// A `T` read only from a JSON object, as [`reply_of`] reads it: serde's derived reading of a
/// struct also takes an array of its fields in order, which no answer is.
struct Object<T>(T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Fields<T> {
            type Value = T;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(Fields(std::marker::PhantomData))
            .map(Object)
    }
}

/// The parts of an answer's body the history keeps: [`reply_of`] without building the whole
/// JSON value, the same for every answer whose fields have the types AWS documents (any other
/// goes through [`reply_of`]).
fn reply_of_body(body: &[u8]) -> Reply {
    let Ok(Object(w)) = serde_json::from_slice::<Object<Wire>>(body) else {
        return reply_of(&serde_json::from_slice(body).unwrap_or(Value::Null));
    };
    let meta = w.key_metadata.or(w.replica_key_metadata);
    let (arn, meta_state) = meta.map_or((None, None), |Object(m)| (m.arn, m.key_state));
    Reply {
        key: arn.or(w.key_id),
        ciphertext: w.ciphertext_blob,
        plaintext: w
            .plaintext
            .and_then(|p| base64::engine::general_purpose::STANDARD.decode(p).ok())
            .map(|p| digest(&p)),
        state: meta_state.or(w.key_state),
        signature: w.signature.or(w.mac),
    }
}

/// The parts of an answer the history keeps.
fn reply_of(v: &Value) -> Reply {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(String::from);
    let meta = v
        .get("KeyMetadata")
        .filter(|m| !m.is_null())
        .or_else(|| v.get("ReplicaKeyMetadata"));
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
        signature: s(v.get("Signature")).or_else(|| s(v.get("Mac"))),
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
    if let Some(p) = &p.promotion {
        follow_promotion(book, p, outcome);
        return;
    }
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
        Call::Encrypt { key, .. } | Call::GenerateDataKey { key } | Call::ReEncrypt { key, .. } => {
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

/// Follows an UpdatePrimaryRegion's outcome in the book: acknowledged, the key's primary is
/// the target; refused, it did not move (but a repeat refused with
/// `UnsupportedOperationException`, "not a multi-region primary key", means the earlier
/// unanswered one moved it: only the workload moves its keys, and it moves one at a time);
/// without an answer, it is in doubt until a repeat is answered.
fn follow_promotion(book: &mut KeyBook, p: &Promotion, outcome: &Outcome) {
    let Some(k) = book.known.get_mut(&p.key_id) else {
        return;
    };
    match outcome {
        Outcome::Ok { .. } => {
            k.home = p.to.clone();
            k.handover = Handover::None;
        }
        Outcome::Failed { code, .. } => {
            if p.retry && code == "UnsupportedOperationException" {
                k.home = p.to.clone();
            }
            k.handover = Handover::None;
        }
        Outcome::Unknown { .. } => k.handover = Handover::InDoubt(p.to.clone()),
    }
}

/// A signature or MAC an acknowledged Sign or GenerateMac returned, with what Verify or
/// VerifyMac needs to check it in another Region.
#[derive(Clone, Debug)]
pub struct Signed {
    /// The op that made it.
    pub of: u64,
    /// The key's ARN in the Region that made it.
    pub arn: String,
    /// `Verify` or `VerifyMac`.
    pub operation: &'static str,
    /// The request body without `KeyId`: the message, the algorithm and the signature.
    pub body: Value,
}

/// What it takes to verify an acknowledged Sign's or GenerateMac's result elsewhere.
pub fn signed(id: u64, p: &Planned, outcome: &Outcome) -> Option<Signed> {
    let Outcome::Ok { reply } = outcome else {
        return None;
    };
    let signature = reply.signature.clone()?;
    let b = &p.body;
    let (key, operation, body) = match &p.call {
        Call::Sign { key, .. } => (
            key,
            "Verify",
            json!({
                "Message": b["Message"],
                "MessageType": b["MessageType"],
                "SigningAlgorithm": b["SigningAlgorithm"],
                "Signature": signature,
            }),
        ),
        Call::GenerateMac { key, .. } => (
            key,
            "VerifyMac",
            json!({ "Message": b["Message"], "MacAlgorithm": b["MacAlgorithm"], "Mac": signature }),
        ),
        _ => return None,
    };
    Some(Signed {
        of: id,
        arn: key.clone(),
        operation,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsim_experiment::schedule;
    use kmsim_experiment::Experiment;

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

    #[test]
    fn an_answer_read_from_its_body_gives_what_the_json_value_gives() {
        let answers = [
            json!({ "CiphertextBlob": "AQID", "KeyId": "arn:k", "EncryptionAlgorithm": "SYMMETRIC_DEFAULT" }),
            json!({ "KeyMetadata": { "Arn": "arn:m", "KeyState": "Enabled", "MultiRegion": true }, "KeyId": "x" }),
            json!({ "ReplicaKeyMetadata": { "Arn": "arn:r" }, "ReplicaPolicy": "{}" }),
            json!({ "Plaintext": "aGVsbG8=", "KeyId": "arn:k" }),
            json!({ "Plaintext": "not base64!" }),
            json!({ "KeyId": "arn:k", "KeyState": "PendingDeletion", "PendingWindowInDays": 7 }),
            json!({ "Signature": "c2ln" }),
            json!({ "Mac": "bWFj" }),
            // Types AWS never answers: read as the JSON value reads them.
            json!({ "KeyMetadata": "odd", "KeyId": 5, "CiphertextBlob": ["x"] }),
            json!({ "KeyMetadata": { "Arn": 1, "KeyState": "Enabled" } }),
            json!([1, 2]),
            // Arrays of a struct's fields in order (serde's derive would take them).
            json!({ "KeyMetadata": [null, ""] }),
            json!([null, null, null, "AQID"]),
            json!({}),
        ];
        for v in answers {
            let body = serde_json::to_vec(&v).expect("json");
            assert_eq!(reply_of_body(&body), reply_of(&v), "{v}");
        }
        assert_eq!(reply_of_body(b"not json"), Reply::default());
    }

    /// A JSON value of any of the types a field could come with.
    fn any_field() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            "[A-Za-z0-9+/=:-]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("Arn".to_string()),
                        Just("KeyState".to_string()),
                        "[A-Z][a-z]{0,5}"
                    ],
                    inner,
                    0..3
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn any_answer_body_reads_as_its_json_value_does(
            fields in proptest::collection::btree_map(
                proptest::prop_oneof![
                    proptest::strategy::Just("KeyMetadata".to_string()),
                    proptest::strategy::Just("ReplicaKeyMetadata".to_string()),
                    proptest::strategy::Just("KeyId".to_string()),
                    proptest::strategy::Just("CiphertextBlob".to_string()),
                    proptest::strategy::Just("Plaintext".to_string()),
                    proptest::strategy::Just("KeyState".to_string()),
                    proptest::strategy::Just("Signature".to_string()),
                    proptest::strategy::Just("Mac".to_string()),
                    "[A-Z][a-z]{0,6}",
                ],
                any_field(),
                0..6,
            ),
            garbage in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            other in any_field(),
        ) {
            let v = Value::Object(fields.into_iter().collect());
            let body = serde_json::to_vec(&v).expect("json");
            proptest::prop_assert_eq!(reply_of_body(&body), reply_of(&v));
            // Nor does a body of any other shape (an array of the fields in order, above all).
            let body = serde_json::to_vec(&other).expect("json");
            proptest::prop_assert_eq!(reply_of_body(&body), reply_of(&other));
            // Bytes that are not JSON at all never panic and read as an empty answer.
            if serde_json::from_slice::<Value>(&garbage).is_err() {
                proptest::prop_assert_eq!(reply_of_body(&garbage), Reply::default());
            }
        }
    }

    const US: &str = "us-east-1";
    const EU: &str = "eu-west-1";

    fn workload(mix: &str) -> Workload {
        Experiment::parse(
            &format!(
                "version = 1\nname = \"t\"\n[cluster]\nregions = [\"us-east-1\", \"eu-west-1\"]\n[workload]\nduration = \"10s\"\nrate = \"10/s\"\nkeys = 1\nmulti_region = 1.0\nmix = {{ {mix} }}\n"
            ),
            false,
        )
        .expect("valid")
        .workload
    }

    fn arn(region: &str, key_id: &str) -> String {
        format!("arn:aws:kms:{region}:111122223333:key/{key_id}")
    }

    /// A book as the setup leaves it: one multi-Region key of each kind made in us-east-1 and
    /// replicated to eu-west-1, and a single-Region symmetric key in us-east-1.
    fn book() -> KeyBook {
        let mut b = KeyBook::default();
        for (id, kind) in [
            ("mrk-s", KeyKind::Symmetric),
            ("mrk-g", KeyKind::Sign),
            ("mrk-m", KeyKind::Mac),
        ] {
            b.add_known(US, &arn(US, id), true);
            b.add_crypto(US, &arn(US, id), kind);
            b.add_crypto(EU, &arn(EU, id), kind);
        }
        b.add_known(US, &arn(US, "single"), false);
        b.add_crypto(US, &arn(US, "single"), KeyKind::Symmetric);
        b
    }

    fn ok() -> Outcome {
        Outcome::Ok {
            reply: Reply::default(),
        }
    }

    fn plan_n(op: Operation, region: &str, w: &Workload, b: &mut KeyBook) -> Vec<Planned> {
        let mut rng = schedule::stream(7, "t");
        (0..20)
            .filter_map(|_| plan(op, region, w, b, &mut rng))
            .collect()
    }

    #[test]
    fn a_hand_over_moves_the_primary_the_book_follows() {
        let w = workload("update_primary_region = 1, rotate_key_on_demand = 1");
        let mut b = book();
        let mut rng = schedule::stream(7, "t");
        // Only the symmetric key rotates, and only where its primary is.
        let rotations = plan_n(Operation::RotateKeyOnDemand, US, &w, &mut b);
        assert!(!rotations.is_empty());
        assert!(rotations
            .iter()
            .all(|p| matches!(&p.call, Call::RotateKeyOnDemand { key } if key.ends_with("mrk-s") || key.ends_with("single"))));
        assert!(plan_n(Operation::RotateKeyOnDemand, EU, &w, &mut b).is_empty());

        let p = plan(Operation::UpdatePrimaryRegion, US, &w, &mut b, &mut rng).expect("a key");
        let Call::UpdatePrimaryRegion {
            key,
            primary_region,
        } = &p.call
        else {
            panic!("{p:?}")
        };
        assert_eq!(primary_region, EU);
        assert!(key.starts_with("arn:aws:kms:us-east-1:"), "{key}");
        assert_eq!(p.body["PrimaryRegion"], EU);
        let moved = key_id_of(key).to_string();
        // While it is in flight nobody moves it again.
        let others = plan_n(Operation::UpdatePrimaryRegion, US, &w, &mut b);
        assert!(others.iter().all(
            |o| !matches!(&o.call, Call::UpdatePrimaryRegion { key, .. } if key.ends_with(&moved))
        ));
        for o in &others {
            apply(&mut b, US, 0, o, &ok(), true);
        }

        apply(&mut b, US, 1, &p, &ok(), true);
        assert_eq!(b.known[&moved].home, EU);
        assert_eq!(b.known[&moved].handover, Handover::None);
        // Later calls follow the new primary: it moves back from eu-west-1 only.
        let back = plan_n(Operation::UpdatePrimaryRegion, EU, &w, &mut b);
        assert!(back.iter().any(|o| matches!(&o.call, Call::UpdatePrimaryRegion { key, primary_region } if key.starts_with("arn:aws:kms:eu-west-1:") && key.ends_with(&moved) && primary_region == US)));
        assert!(plan_n(Operation::UpdatePrimaryRegion, US, &w, &mut b).is_empty());
    }

    #[test]
    fn an_unanswered_hand_over_stays_in_doubt_until_a_repeat_is_answered() {
        let w = workload("update_primary_region = 1");
        let mut b = book();
        let mut rng = schedule::stream(3, "t");
        let p = plan(Operation::UpdatePrimaryRegion, US, &w, &mut b, &mut rng).expect("a key");
        let moved = key_id_of(p.call_key()).to_string();
        let unknown = Outcome::Unknown {
            reason: "KMSInternalException: could not be reached yet".into(),
        };
        apply(&mut b, US, 1, &p, &unknown, true);
        assert_eq!(b.known[&moved].home, US, "not known to have moved");
        assert_eq!(b.known[&moved].handover, Handover::InDoubt(EU.into()));
        // Not rotated while in doubt.
        let rotations = plan_n(Operation::RotateKeyOnDemand, US, &w, &mut b);
        assert!(rotations.iter().all(|r| !r.call_key().ends_with(&moved)));
        // The next hand-over from us-east-1 repeats it.
        let again = plan(Operation::UpdatePrimaryRegion, US, &w, &mut b, &mut rng).expect("a key");
        assert_eq!(again.call, p.call);
        // Refused as "not a multi-region primary key": the first one moved it.
        let refused = Outcome::Failed {
            code: "UnsupportedOperationException".into(),
            message: format!("{} is not a multi-region primary key.", p.call_key()),
        };
        apply(&mut b, US, 2, &again, &refused, true);
        assert_eq!(b.known[&moved].home, EU);
        assert_eq!(b.known[&moved].handover, Handover::None);
        // A first attempt refused leaves the primary where it was.
        let p = plan(Operation::UpdatePrimaryRegion, US, &w, &mut b, &mut rng).expect("a key");
        let other = key_id_of(p.call_key()).to_string();
        assert_ne!(other, moved);
        apply(&mut b, US, 3, &p, &refused, true);
        assert_eq!(b.known[&other].home, US);
    }

    #[test]
    fn signatures_macs_and_re_encryptions_use_their_keys() {
        let w = workload("sign = 1, generate_mac = 1, re_encrypt = 1");
        let mut b = book();
        let mut rng = schedule::stream(5, "t");
        let s = plan(Operation::Sign, EU, &w, &mut b, &mut rng).expect("a signing key");
        assert_eq!(s.body["KeyId"], arn(EU, "mrk-g"));
        assert_eq!(s.body["SigningAlgorithm"], "ECDSA_SHA_256");
        assert_eq!(s.body["MessageType"], "RAW");
        let reply = Outcome::Ok {
            reply: Reply {
                signature: Some("c2ln".into()),
                ..Reply::default()
            },
        };
        let v = signed(9, &s, &reply).expect("kept for the observations");
        assert_eq!((v.of, v.operation), (9, "Verify"));
        assert_eq!(v.body["Signature"], "c2ln");
        assert_eq!(v.body["Message"], s.body["Message"]);
        assert!(signed(9, &s, &unknown_outcome()).is_none());

        let m = plan(Operation::GenerateMac, US, &w, &mut b, &mut rng).expect("an HMAC key");
        assert_eq!(m.body["KeyId"], arn(US, "mrk-m"));
        assert_eq!(m.body["MacAlgorithm"], "HMAC_SHA_256");
        let v = signed(10, &m, &reply).expect("kept");
        assert_eq!((v.operation, &v.body["Mac"]), ("VerifyMac", &"c2ln".into()));

        // Nothing to re-encrypt yet; then an Encrypt's ciphertext, to another key.
        assert!(plan(Operation::ReEncrypt, US, &w, &mut b, &mut rng).is_none());
        let e = plan(Operation::Encrypt, US, &w, &mut b, &mut rng).expect("a key");
        let made = Outcome::Ok {
            reply: Reply {
                ciphertext: Some("AQID".into()),
                ..Reply::default()
            },
        };
        apply(&mut b, US, 11, &e, &made, true);
        let r = plan(Operation::ReEncrypt, US, &w, &mut b, &mut rng).expect("a ciphertext");
        let Call::ReEncrypt { key, of } = &r.call else {
            panic!("{r:?}")
        };
        assert_eq!(*of, 11);
        assert_ne!(key_id_of(key), key_id_of(e.call_key()), "another key");
        assert_eq!(r.body["CiphertextBlob"], "AQID");
        assert_eq!(r.body["DestinationKeyId"], key.as_str());
        // Its ciphertext joins the pool like any other.
        apply(&mut b, US, 12, &r, &made, true);
        assert!(b.ciphertexts[US].iter().any(|c| c.of == 12));
    }

    fn unknown_outcome() -> Outcome {
        Outcome::Unknown {
            reason: "timed out".into(),
        }
    }

    #[test]
    fn setup_keys_are_made_of_each_kind_the_mix_needs() {
        let w = workload("encrypt = 1");
        assert_eq!(KeyKind::needed(&w), [KeyKind::Symmetric]);
        let w = workload("sign = 1, generate_mac = 2");
        assert_eq!(
            KeyKind::needed(&w),
            [KeyKind::Symmetric, KeyKind::Sign, KeyKind::Mac]
        );
        let c = KeyKind::Mac.create(true, &w);
        assert_eq!(c.body["KeySpec"], "HMAC_256");
        assert_eq!(c.body["KeyUsage"], "GENERATE_VERIFY_MAC");
        assert_eq!(c.body["MultiRegion"], true);
        let c = KeyKind::Sign.create(false, &w);
        assert_eq!(
            c.call,
            Call::CreateKey {
                multi_region: false,
                spec: "ECC_NIST_P256".into()
            }
        );
    }

    impl Planned {
        /// The key the call names.
        fn call_key(&self) -> &str {
            match &self.call {
                Call::UpdatePrimaryRegion { key, .. }
                | Call::RotateKeyOnDemand { key }
                | Call::Encrypt { key, .. } => key,
                other => panic!("{other:?}"),
            }
        }
    }
}
