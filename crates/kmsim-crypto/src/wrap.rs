//! Wrapping secrets under a Region's domain key (key material at rest and in the Raft log).

use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::aead::{open_detached, seal_appending, NONCE_LEN, TAG_LEN};
use crate::encoding::prefixed_fields_u16;
use crate::{CryptoError, DomainKey};

/// First byte of every wrapped secret, so that a future format can be told apart.
const WRAP_FORMAT_V1: u8 = 0x01;
/// Domain separation: a wrapped secret can never be mistaken for a ciphertext blob or vice versa.
const WRAP_AAD_PREFIX: &[u8] = b"kmsim/domain/v1";
/// Format byte + nonce.
const WRAP_HEADER_LEN: usize = 1 + NONCE_LEN;

/// What a wrapped secret is bound to (the associated data of the domain wrap): unwrapping with
/// any other binding fails, so a wrapped secret cannot be replayed as another key or version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WrapAad<'a> {
    /// What the secret is, e.g. `"key-material"` or `"transport-private-key"`.
    pub purpose: &'a str,
    /// The Region whose domain key wraps it.
    pub region: &'a str,
    /// The KMS key (or other owner) the secret belongs to.
    pub key_id: &'a str,
    /// The key material version.
    pub version: u32,
}

impl WrapAad<'_> {
    /// `b"kmsim/domain/v1" || u16 BE len + purpose || u16 BE len + region || u16 BE len + key_id ||
    /// u32 BE version`.
    fn encode(&self) -> Vec<u8> {
        let mut out = prefixed_fields_u16(
            WRAP_AAD_PREFIX,
            &[
                self.purpose.as_bytes(),
                self.region.as_bytes(),
                self.key_id.as_bytes(),
            ],
        );
        out.reserve(4);
        out.extend_from_slice(&self.version.to_be_bytes());
        out
    }
}

/// AES-256-GCM under the domain key, bound to `aad`.
///
/// Output: `[0]=0x01` format version, `[1..13]` random 96-bit nonce, `[13..]` ciphertext || 16-byte
/// tag. The nonce is random because the proposing node wraps and the bytes travel in the log.
///
/// # Panics
/// Only if `secret` is longer than the AES-GCM limit of 64 GiB; wrapped secrets are keys.
pub fn wrap_secret(
    domain: &DomainKey,
    secret: &[u8],
    aad: &WrapAad<'_>,
    rng: &mut (impl RngCore + CryptoRng),
) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(WRAP_HEADER_LEN + secret.len() + TAG_LEN);
    out.push(WRAP_FORMAT_V1);
    out.extend_from_slice(&nonce);
    if seal_appending(domain.bytes(), &nonce, &aad.encode(), secret, &mut out).is_err() {
        panic!("secret of {} bytes exceeds the aes-gcm limit", secret.len());
    }
    out
}

/// Reverses [`wrap_secret`]. A different domain key, a different binding in any field of `aad`,
/// or any change to `wrapped` gives [`CryptoError::UnwrapFailed`].
pub fn unwrap_secret(
    domain: &DomainKey,
    wrapped: &[u8],
    aad: &WrapAad<'_>,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    if wrapped.len() < WRAP_HEADER_LEN + TAG_LEN || wrapped[0] != WRAP_FORMAT_V1 {
        return Err(CryptoError::UnwrapFailed);
    }
    let nonce: &[u8; NONCE_LEN] = wrapped[1..WRAP_HEADER_LEN]
        .try_into()
        .map_err(|_| CryptoError::UnwrapFailed)?;
    open_detached(
        domain.bytes(),
        nonce,
        &aad.encode(),
        &wrapped[WRAP_HEADER_LEN..],
    )
    .map_err(|_| CryptoError::UnwrapFailed)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    const AAD: WrapAad<'static> = WrapAad {
        purpose: "key-material",
        region: "us-east-1",
        key_id: "1234abcd-12ab-34cd-56ef-1234567890ab",
        version: 1,
    };

    fn setup() -> (DomainKey, StdRng) {
        let mut rng = StdRng::seed_from_u64(11);
        (DomainKey::generate(&mut rng), rng)
    }

    #[test]
    fn round_trip_and_layout() {
        let (domain, mut rng) = setup();
        for secret in [&[][..], &[7u8; 32][..], &[1u8; 4096][..]] {
            let wrapped = wrap_secret(&domain, secret, &AAD, &mut rng);
            assert_eq!(wrapped.len(), 1 + 12 + secret.len() + 16);
            assert_eq!(wrapped[0], 0x01);
            if !secret.is_empty() {
                assert!(!wrapped
                    .windows(secret.len().min(16))
                    .any(|w| w == &secret[..w.len()]));
            }
            let back = unwrap_secret(&domain, &wrapped, &AAD).expect("unwraps");
            assert_eq!(&back[..], secret);
        }
    }

    #[test]
    fn nonces_differ_between_wraps() {
        let (domain, mut rng) = setup();
        let a = wrap_secret(&domain, &[5u8; 32], &AAD, &mut rng);
        let b = wrap_secret(&domain, &[5u8; 32], &AAD, &mut rng);
        assert_ne!(a[1..13], b[1..13]);
        assert_ne!(a, b);
    }

    #[test]
    fn known_aad_encoding() {
        let aad = WrapAad {
            purpose: "p",
            region: "r1",
            key_id: "",
            version: 0x0102_0304,
        };
        let mut expected = b"kmsim/domain/v1".to_vec();
        expected.extend_from_slice(&[0, 1, b'p', 0, 2, b'r', b'1', 0, 0, 1, 2, 3, 4]);
        assert_eq!(aad.encode(), expected);
    }

    #[test]
    fn long_fields_use_the_escape() {
        let long = "x".repeat(70_000);
        let (domain, mut rng) = setup();
        let aad = WrapAad {
            purpose: &long,
            ..AAD
        };
        let wrapped = wrap_secret(&domain, b"s", &aad, &mut rng);
        assert!(unwrap_secret(&domain, &wrapped, &aad).is_ok());
        let shorter = WrapAad {
            purpose: &long[1..],
            ..AAD
        };
        assert_eq!(
            unwrap_secret(&domain, &wrapped, &shorter).map(|_| ()),
            Err(CryptoError::UnwrapFailed)
        );
    }

    #[test]
    fn any_other_binding_fails() {
        let (domain, mut rng) = setup();
        let wrapped = wrap_secret(&domain, &[3u8; 32], &AAD, &mut rng);
        let others = [
            WrapAad {
                purpose: "transport-private-key",
                ..AAD
            },
            WrapAad {
                region: "eu-west-1",
                ..AAD
            },
            WrapAad {
                key_id: "1234abcd-12ab-34cd-56ef-1234567890ac",
                ..AAD
            },
            WrapAad { version: 2, ..AAD },
            // Moving bytes between fields must not give the same associated data.
            WrapAad {
                purpose: "key-materialu",
                region: "s-east-1",
                ..AAD
            },
        ];
        for other in others {
            assert_eq!(
                unwrap_secret(&domain, &wrapped, &other).map(|_| ()),
                Err(CryptoError::UnwrapFailed),
                "{other:?}"
            );
        }
        let other_domain = DomainKey::generate(&mut rng);
        assert_eq!(
            unwrap_secret(&other_domain, &wrapped, &AAD).map(|_| ()),
            Err(CryptoError::UnwrapFailed)
        );
    }

    #[test]
    fn every_bit_flip_and_truncation_fails() {
        let (domain, mut rng) = setup();
        let wrapped = wrap_secret(&domain, &[9u8; 32], &AAD, &mut rng);
        for bit in 0..wrapped.len() * 8 {
            let mut tampered = wrapped.clone();
            tampered[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                unwrap_secret(&domain, &tampered, &AAD).map(|_| ()),
                Err(CryptoError::UnwrapFailed),
                "bit {bit}"
            );
        }
        for len in 0..wrapped.len() {
            assert_eq!(
                unwrap_secret(&domain, &wrapped[..len], &AAD).map(|_| ()),
                Err(CryptoError::UnwrapFailed),
                "length {len}"
            );
        }
        let mut extended = wrapped.clone();
        extended.push(0);
        assert!(unwrap_secret(&domain, &extended, &AAD).is_err());
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let domain = DomainKey::from_bytes(&[1u8; 32]).expect("32 bytes");
            prop_assert!(unwrap_secret(&domain, &bytes, &AAD).is_err());
        }
    }
}
