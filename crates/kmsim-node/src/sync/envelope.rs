//! Building and opening [`SyncEnvelope`]s: the message in clear but authenticated, the secret
//! part (key material) sealed, both bound to key, source, destination and stamp.

use kmsim_core::sync;
use kmsim_crypto::{open_transport, seal_transport, SecretBytes, TransportAad};
use kmsim_proto::sync::v1::SyncEnvelope;
use serde::de::DeserializeOwned;
use serde::Serialize;
use zeroize::{Zeroize, Zeroizing};

use super::SyncIdentity;
use crate::entropy::Entropy;

/// Key material versions in transit (only ever inside a seal), in plaintext while in memory:
/// wiped when dropped, and never printed (`Debug` shows the versions and lengths only).
#[derive(Default, Serialize, serde::Deserialize)]
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

/// Seals a message (and its secret part) from this Region to `destination`, whose transport
/// public key is `recipient_public`.
#[allow(clippy::too_many_arguments)]
pub fn seal<T: Serialize>(
    id: &SyncIdentity,
    destination: &str,
    recipient_public: &[u8],
    key_id: &str,
    stamp: u64,
    message: &T,
    secret: &Bundle,
    rng: &Entropy,
) -> Result<SyncEnvelope, String> {
    let message = sync::encode(message);
    let secret = Zeroizing::new(sync::encode(secret));
    let aad = TransportAad {
        key_id,
        source: &id.region,
        destination,
        version: stamp,
        context: &message,
    };
    let sealed = seal_transport(
        &id.transport,
        recipient_public,
        &aad,
        &secret,
        &mut rng.rng(),
    )
    .map_err(|e| format!("transport seal failed: {e}"))?;
    Ok(SyncEnvelope {
        source: id.region.clone(),
        destination: destination.to_string(),
        certificate: id.certificate.clone(),
        message,
        sealed,
        stamp,
        key_id: key_id.to_string(),
    })
}

/// What an opened envelope holds.
pub struct Opened<T> {
    /// The message.
    pub message: T,
    /// Its secret part.
    pub secret: Bundle,
    /// The sender's transport public key (to seal the answer to).
    pub sender_public: Vec<u8>,
}

/// Opens an envelope addressed to this Region: the sender's certificate must be signed by its
/// partition's trust anchor, and the seal must open with the certified key and every field as
/// received. Anything else is refused, and nothing of the message is used.
pub fn open<T: DeserializeOwned>(
    id: &SyncIdentity,
    env: &SyncEnvelope,
) -> Result<Opened<T>, String> {
    if env.destination != id.region {
        return Err(format!(
            "addressed to {}, this is {}",
            env.destination, id.region
        ));
    }
    if env.source == id.region {
        return Err("a Region does not synchronize with itself".into());
    }
    let cert = id.check_certificate(&env.source, &env.certificate)?;
    if id.partitions.get(&env.source) != Some(&id.partition) {
        return Err(format!(
            "{} is in another partition than {}; keys never cross partitions",
            env.source, id.region
        ));
    }
    let aad = TransportAad {
        key_id: &env.key_id,
        source: &env.source,
        destination: &env.destination,
        version: env.stamp,
        context: &env.message,
    };
    let secret: SecretBytes = open_transport(&id.transport, &cert.public_key_der, &aad, &env.sealed)
        .map_err(|_| "the seal does not open: tampered, replayed to another Region, or not from the certified sender".to_string())?;
    let secret: Bundle = sync::decode(secret.expose()).ok_or("malformed secret part")?;
    let message: T = sync::decode(&env.message).ok_or("malformed message")?;
    Ok(Opened {
        message,
        secret,
        sender_public: cert.public_key_der,
    })
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
