//! The AES-256 key material of one KMS key version.

use std::fmt;

use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::CryptoError;

/// Length in bytes of every symmetric key in kmsim (AES-256).
pub const KEY_LEN: usize = 32;

/// AES-256 key material of one KMS key version. Zeroized on drop, redacted `Debug`.
#[derive(Clone)]
pub struct KeyMaterial(Zeroizing<[u8; KEY_LEN]>);

impl KeyMaterial {
    /// Draws fresh material from `rng`; the proposing node does this, never the state machine.
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(&mut *bytes);
        Self(bytes)
    }

    /// Takes material back from raw bytes (e.g. after unwrapping it); exactly [`KEY_LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        read_key(bytes).map(Self)
    }

    /// The raw bytes, for wrapping and for building a cipher; never log them.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyMaterial(<redacted>)")
    }
}

/// Copies exactly [`KEY_LEN`] bytes straight into a wiped-on-drop buffer.
pub(crate) fn read_key(bytes: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>, CryptoError> {
    if bytes.len() != KEY_LEN {
        return Err(CryptoError::InvalidKeyLength {
            expected: KEY_LEN,
            actual: bytes.len(),
        });
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(bytes);
    Ok(key)
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;
    use crate::hex::encode_secret;

    #[test]
    fn generate_is_driven_by_the_rng() {
        let a = KeyMaterial::generate(&mut StdRng::seed_from_u64(7));
        let b = KeyMaterial::generate(&mut StdRng::seed_from_u64(7));
        let c = KeyMaterial::generate(&mut StdRng::seed_from_u64(8));
        assert_eq!(a.expose(), b.expose());
        assert_ne!(a.expose(), c.expose());
    }

    #[test]
    fn from_bytes_requires_exactly_32_bytes() {
        for len in [0, 1, 31, 33, 64] {
            let err = KeyMaterial::from_bytes(&vec![1u8; len]).map(|_| ());
            assert_eq!(
                err,
                Err(CryptoError::InvalidKeyLength {
                    expected: 32,
                    actual: len
                })
            );
        }
        let material = KeyMaterial::from_bytes(&[9u8; 32]).expect("32 bytes");
        assert_eq!(material.expose(), &[9u8; 32]);
        assert_eq!(material.clone().expose(), &[9u8; 32]);
    }

    #[test]
    fn debug_is_redacted() {
        let material = KeyMaterial::generate(&mut StdRng::seed_from_u64(1));
        let debug = format!("{material:?} {material:#?}");
        assert!(debug.contains("KeyMaterial(<redacted>)"));
        let hex = encode_secret(material.expose());
        assert!(!debug.contains(hex.as_str()));
        assert!(!debug.contains(&hex[..8]));
    }
}
