//! Building and opening [`SyncEnvelope`]s: the message in clear but authenticated, the secret
//! part (key material) sealed to the receiving node's session key and signed by the sending
//! Region, both bound to key, source, destination and stamp; and the answer, authenticated
//! under the key only that request derives (kmsim_crypto `transport`).

use kmsim_core::sync;
use kmsim_crypto::{seal_request, AnswerKey, TransportAad};
use kmsim_proto::sync::v1::SyncEnvelope;
use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::{Zeroize, Zeroizing};

use super::session::{SessionKeys, SessionRefusal};
use super::SyncIdentity;
use crate::entropy::Entropy;

/// Key material versions in transit (only ever inside a seal), in plaintext while in memory:
/// wiped when dropped, and never printed (`Debug` shows the versions and lengths only).
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Bundle(pub Vec<(u32, Vec<u8>)>);

impl std::fmt::Debug for Bundle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        for (version, material) in &self.0 {
            list.entry(&format_args!(
                "({version}, <{} bytes redacted>)",
                material.len()
            ));
        }
        list.finish()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        for (_, material) in &mut self.0 {
            material.zeroize();
        }
    }
}

/// Packs a stamp into the envelope's `u64`.
pub fn pack(stamp: (u64, u64)) -> u64 {
    (stamp.0 << 32) | (stamp.1 & 0xffff_ffff)
}

/// The fields of an envelope every seal binds.
fn aad(env: &SyncEnvelope) -> TransportAad<'_> {
    TransportAad {
        key_id: &env.key_id,
        source: &env.source,
        destination: &env.destination,
        version: env.stamp,
        context: &env.message,
    }
}

/// Seals a request (and its secret part) from this Region to the node of `destination` whose
/// session public key is `session_public` (checked by the caller: signed by `destination` for
/// its challenge). Returns the envelope and the key its answer must carry.
#[allow(clippy::too_many_arguments)]
pub fn seal<T: Serialize>(
    id: &SyncIdentity,
    destination: &str,
    session_public: &[u8],
    key_id: &str,
    stamp: u64,
    message: &T,
    secret: &Bundle,
    rng: &Entropy,
) -> Result<(SyncEnvelope, AnswerKey), String> {
    let mut env = SyncEnvelope {
        source: id.region.clone(),
        destination: destination.to_string(),
        certificate: id.certificate.clone(),
        message: sync::encode(message),
        sealed: Vec::new(),
        stamp,
        key_id: key_id.to_string(),
    };
    let secret = Zeroizing::new(sync::encode(secret));
    let (sealed, answer_key) = seal_request(
        &id.transport,
        session_public,
        &aad(&env),
        &secret,
        &mut rng.rng(),
    )
    .map_err(|e| format!("transport seal failed: {e}"))?;
    env.sealed = sealed;
    Ok((env, answer_key))
}

/// What an opened request holds.
pub struct Opened<T> {
    /// The message.
    pub message: T,
    /// Its secret part.
    pub secret: Bundle,
    /// The key to authenticate the answer with.
    pub answer_key: AnswerKey,
}

/// Why a request was refused (each is logged by the receiver; nothing of it is used).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Sealed to a session key this node no longer (or never) held: the sender fetches the
    /// current one and seals again. Answered `FAILED_PRECONDITION`.
    UnknownSessionKey,
    /// Not authentic, not for this Region, or a replay. Answered `PERMISSION_DENIED`.
    Denied(String),
}

impl Refusal {
    /// The gRPC status the sender sees.
    pub fn status(&self) -> tonic::Status {
        match self {
            Refusal::UnknownSessionKey => tonic::Status::failed_precondition(UNKNOWN_SESSION_KEY),
            Refusal::Denied(why) => tonic::Status::permission_denied(why.clone()),
        }
    }
}

/// The message of a refusal for a session key this node does not hold.
pub const UNKNOWN_SESSION_KEY: &str =
    "unknown session key: rotated out or made before a restart; fetch the current one";

/// Opens a request addressed to this Region: the sender's certificate must be signed by its
/// partition's trust anchor, the seal must open with one of this node's session keys, the
/// sender's signature must verify under the certified key with every field as received, and
/// the request must not have been opened before. Anything else is refused.
pub fn open<T: DeserializeOwned>(
    id: &SyncIdentity,
    sessions: &SessionKeys,
    env: &SyncEnvelope,
) -> Result<Opened<T>, Refusal> {
    let denied = |why: String| Refusal::Denied(why);
    if env.destination != id.region {
        return Err(denied(format!(
            "addressed to {}, this is {}",
            env.destination, id.region
        )));
    }
    if env.source == id.region {
        return Err(denied("a Region does not synchronize with itself".into()));
    }
    let cert = id
        .check_certificate(&env.source, &env.certificate)
        .map_err(denied)?;
    if id.partitions.get(&env.source) != Some(&id.partition) {
        return Err(denied(format!(
            "{} is in another partition than {}; keys never cross partitions",
            env.source, id.region
        )));
    }
    let opened = match sessions.open(&cert.public_key_der, &aad(env), &env.sealed) {
        Ok(opened) => opened,
        Err(SessionRefusal::Unknown) => return Err(Refusal::UnknownSessionKey),
        Err(SessionRefusal::Replayed) => {
            return Err(denied(
                "replayed request: this request was already taken".into(),
            ))
        }
        Err(SessionRefusal::Failed) => return Err(denied(
            "the seal does not open: tampered, addressed elsewhere, or not signed by the certified sender".into(),
        )),
    };
    let secret: Bundle =
        sync::decode(opened.secret.expose()).ok_or(denied("malformed secret part".into()))?;
    let message: T = sync::decode(&env.message).ok_or(denied("malformed message".into()))?;
    Ok(Opened {
        message,
        secret,
        answer_key: opened.answer_key,
    })
}

/// The answer to `request`: `reply` in clear, authenticated under the request's answer key.
pub fn answer<T: Serialize>(
    request: &SyncEnvelope,
    reply: &T,
    answer_key: &AnswerKey,
) -> SyncEnvelope {
    let mut env = SyncEnvelope {
        source: request.destination.clone(),
        destination: request.source.clone(),
        certificate: Vec::new(),
        message: sync::encode(reply),
        sealed: Vec::new(),
        stamp: request.stamp,
        key_id: request.key_id.clone(),
    };
    env.sealed = answer_key.seal_answer(&aad(&env));
    env
}

/// Opens the answer to `request`: it must come from the Region asked, about the same key and
/// stamp, to this Region, and carry the MAC under this request's answer key — so a recorded
/// answer to any other request (even with the same key, stamp and message) is refused.
pub fn open_answer<T: DeserializeOwned>(
    request: &SyncEnvelope,
    answer_key: &AnswerKey,
    env: &SyncEnvelope,
) -> Result<T, String> {
    if env.source != request.destination
        || env.destination != request.source
        || env.key_id != request.key_id
        || env.stamp != request.stamp
    {
        return Err(format!(
            "{} answered for {} stamp {}, not for {} stamp {}",
            env.source, env.key_id, env.stamp, request.key_id, request.stamp
        ));
    }
    answer_key
        .open_answer(&aad(env), &env.sealed)
        .map_err(|_| {
            "the answer is not authentic for this request (forged or replayed)".to_string()
        })?;
    sync::decode(&env.message).ok_or_else(|| "malformed answer".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_prints_versions_and_lengths_never_the_material() {
        let material: Vec<u8> = (0u8..32)
            .map(|i| i.wrapping_mul(37).wrapping_add(11))
            .collect();
        let bundle = Bundle(vec![
            (1, material.clone()),
            (2, b"plain-secret-material".to_vec()),
        ]);
        for text in [format!("{bundle:?}"), format!("{bundle:#?}")] {
            assert!(text.contains("32 bytes redacted"), "{text}");
            for secret in [
                material.clone(),
                hex::encode(&material).into_bytes(),
                format!("{material:?}").into_bytes(),
                // Any run of 4 of the decimal bytes, as a derived `Debug` would list them.
                format!("{:?}", &material[4..8])
                    .trim_matches(['[', ']'])
                    .as_bytes()
                    .to_vec(),
                b"plain-secret-material".to_vec(),
            ] {
                assert!(
                    !text
                        .as_bytes()
                        .windows(secret.len())
                        .any(|w| w == &secret[..]),
                    "{text} leaks material"
                );
            }
        }
    }
}
