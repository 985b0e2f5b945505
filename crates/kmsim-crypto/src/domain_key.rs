//! A Region's domain key and its key file format.

use std::fmt;

use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::hex::{decode_exact, encode_secret, HexError};
use crate::key_material::read_key;
use crate::{CryptoError, KEY_LEN};

/// A Region's domain key: wraps all key material at rest and in the Raft log.
/// Zeroized on drop, redacted `Debug`; deliberately not `Clone`, so that it exists in as few copies
/// as possible (share it behind an `Arc`).
pub struct DomainKey(Zeroizing<[u8; KEY_LEN]>);

impl DomainKey {
    /// Draws a fresh domain key (the launcher does this once per Region).
    pub fn generate(rng: &mut (impl RngCore + CryptoRng)) -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rng.fill_bytes(&mut *bytes);
        Self(bytes)
    }

    /// Exactly [`KEY_LEN`] raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        read_key(bytes).map(Self)
    }

    /// Parses the key file format: 64 hex characters (either case), surrounding whitespace
    /// (such as the trailing newline of an editor) allowed. Errors never quote the file content.
    pub fn from_hex(text: &str) -> Result<Self, CryptoError> {
        match decode_exact::<KEY_LEN>(text.trim().as_bytes()) {
            Ok(bytes) => Ok(Self(bytes)),
            Err(HexError::Length(found)) => Err(CryptoError::InvalidKeyFile(format!(
                "expected {} hex characters, found {found} bytes",
                2 * KEY_LEN
            ))),
            Err(HexError::Digit(position)) => Err(CryptoError::InvalidKeyFile(format!(
                "not a hex digit at position {position}"
            ))),
        }
    }

    /// The key file format: 64 lowercase hex characters, without a newline.
    pub fn to_hex(&self) -> Zeroizing<String> {
        encode_secret(&*self.0)
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for DomainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DomainKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn hex_round_trip_and_whitespace() {
        let key = DomainKey::generate(&mut StdRng::seed_from_u64(3));
        let hex = key.to_hex();
        assert_eq!(hex.len(), 64);
        assert!(hex
            .bytes()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        for text in [
            hex.to_string(),
            format!("{}\n", *hex),
            format!("  \t{}\r\n\n", *hex),
            hex.to_uppercase(),
        ] {
            let back = DomainKey::from_hex(&text).expect("valid key file");
            assert_eq!(back.bytes(), key.bytes());
        }
    }

    #[test]
    fn from_hex_rejects_bad_files_without_quoting_them() {
        let good = "ab".repeat(32);
        let cases = [
            String::new(),
            "\n".to_string(),
            good[..62].to_string(),
            format!("{good}00"),
            format!("{}zz", &good[..62]),
            format!("{} {}", &good[..32], &good[32..]),
            format!("0x{}", &good[..62]),
            format!("{}é", &good[..62]),
        ];
        for text in cases {
            match DomainKey::from_hex(&text) {
                Err(CryptoError::InvalidKeyFile(message)) => {
                    assert!(!message.contains("abab"), "{message}");
                    assert_eq!(message, message.to_lowercase());
                }
                other => panic!("{text:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn from_bytes_requires_exactly_32_bytes() {
        assert!(DomainKey::from_bytes(&[0u8; 32]).is_ok());
        assert_eq!(
            DomainKey::from_bytes(&[0u8; 16]).map(|_| ()),
            Err(CryptoError::InvalidKeyLength {
                expected: 32,
                actual: 16
            })
        );
    }

    #[test]
    fn debug_is_redacted() {
        let key = DomainKey::generate(&mut StdRng::seed_from_u64(4));
        let debug = format!("{key:?} {key:#?}");
        assert!(debug.contains("DomainKey(<redacted>)"));
        assert!(!debug.contains(key.to_hex().as_str()));
        assert!(!debug.contains(&key.to_hex()[..8]));
    }
}
