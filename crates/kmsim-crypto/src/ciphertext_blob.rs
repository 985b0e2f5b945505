//! The symmetric ciphertext blob that Encrypt returns and Decrypt takes.

use std::collections::BTreeMap;
use std::fmt;

use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::aead::{open_detached, seal_appending, NONCE_LEN, TAG_LEN};
use crate::encryption_context::{encode_into, encoded_len};
use crate::{CryptoError, KeyMaterial};

/// First byte of every blob, so that a future format can be told apart.
const BLOB_FORMAT_V1: u8 = 0x01;
/// Domain separation from the domain wrap, which uses the same kind of cipher.
const BLOB_AAD_PREFIX: &[u8] = b"kmsim/blob/v1";
const KEY_ID_MAX_LEN: usize = 64;
/// Format byte + key id length byte + material version + nonce; the key id comes on top.
const FIXED_HEADER_LEN: usize = 1 + 1 + 4 + NONCE_LEN;
/// AES-GCM cannot encrypt more than 2^36 - 32 bytes under one nonce.
const PLAINTEXT_MAX: u64 = (1 << 36) - 32;

/// Largest header + tag overhead of a blob (with a 64-character key id), for size checks:
/// a blob is at most `plaintext.len() + BLOB_OVERHEAD_MAX` bytes.
pub const BLOB_OVERHEAD_MAX: usize = FIXED_HEADER_LEN + KEY_ID_MAX_LEN + TAG_LEN;

/// A parsed symmetric ciphertext blob, format version 1:
///
/// `[0]=0x01`, `[1]=L` key-id length (1..=64), `[2..2+L]` key id (ASCII `[a-z0-9-]`), then u32 BE
/// key-material version, then 12-byte nonce, then AES-256-GCM ciphertext || tag (>= 16 bytes).
/// The associated data is `b"kmsim/blob/v1" || header bytes ([0] through the nonce) ||
/// canonical_encryption_context(ctx)`, so the key id, version and context are all authenticated.
///
/// The key id is readable without any key so that Decrypt can find which key to use; it is the key
/// id and not the ARN, so that any related multi-Region key opens the blob.
#[derive(Clone, PartialEq, Eq)]
pub struct CiphertextBlob {
    /// The whole blob as received; the header, nonce and sealed part are ranges of it, so parsing
    /// copies the input once.
    bytes: Vec<u8>,
    key_id: String,
    material_version: u32,
    /// Length of the header, i.e. offset of the sealed part.
    header_len: usize,
}

impl CiphertextBlob {
    /// Encrypts `plaintext` under `material`, bound to the key id, the material version and `ctx`,
    /// and returns the blob bytes. Fails if `key_id` breaks the header rule (1..=64 characters of
    /// `[a-z0-9-]`) or the plaintext is beyond the AES-GCM limit.
    pub fn seal(
        material: &KeyMaterial,
        key_id: &str,
        material_version: u32,
        plaintext: &[u8],
        ctx: &BTreeMap<String, String>,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<Vec<u8>, CryptoError> {
        check_key_id(key_id.as_bytes())?;
        if plaintext.len() as u64 > PLAINTEXT_MAX {
            return Err(CryptoError::PlaintextTooLarge {
                actual: plaintext.len(),
            });
        }
        let header_len = FIXED_HEADER_LEN + key_id.len();
        let mut out = Vec::with_capacity(header_len + plaintext.len() + TAG_LEN);
        out.push(BLOB_FORMAT_V1);
        // check_key_id bounds the length to 64, so it fits in the length byte.
        out.push(key_id.len() as u8);
        out.extend_from_slice(key_id.as_bytes());
        out.extend_from_slice(&material_version.to_be_bytes());
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        out.extend_from_slice(&nonce);
        let aad = associated_data(&out, ctx);
        // Unreachable after the length check; `seal_appending` wipes the buffer anyway.
        seal_appending(material.expose(), &nonce, &aad, plaintext, &mut out).map_err(|_| {
            CryptoError::PlaintextTooLarge {
                actual: plaintext.len(),
            }
        })?;
        Ok(out)
    }

    /// Parses the header only (no key needed). Any malformed or truncated input gives
    /// [`CryptoError::InvalidCiphertext`], never a panic.
    pub fn parse(bytes: &[u8]) -> Result<Self, CryptoError> {
        let invalid = CryptoError::InvalidCiphertext;
        let (&format, rest) = bytes.split_first().ok_or(invalid.clone())?;
        let (&id_len, rest) = rest.split_first().ok_or(invalid.clone())?;
        if format != BLOB_FORMAT_V1 {
            return Err(invalid);
        }
        let id_len = usize::from(id_len);
        let header_len = FIXED_HEADER_LEN + id_len;
        if bytes.len() < header_len + TAG_LEN {
            return Err(invalid);
        }
        let (id, rest) = rest.split_at(id_len);
        check_key_id(id).map_err(|_| invalid.clone())?;
        let version: [u8; 4] = rest
            .get(..4)
            .and_then(|v| v.try_into().ok())
            .ok_or(invalid.clone())?;
        let key_id = String::from_utf8(id.to_vec()).map_err(|_| invalid)?;
        Ok(Self {
            bytes: bytes.to_vec(),
            key_id,
            material_version: u32::from_be_bytes(version),
            header_len,
        })
    }

    /// The key id from the header (unauthenticated until [`CiphertextBlob::open`] succeeds).
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key material version from the header (unauthenticated until `open` succeeds).
    pub fn material_version(&self) -> u32 {
        self.material_version
    }

    /// The blob bytes as parsed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Decrypts with `material` and `ctx`. A wrong key, wrong version, wrong context or any
    /// tampering gives [`CryptoError::InvalidCiphertext`].
    pub fn open(
        &self,
        material: &KeyMaterial,
        ctx: &BTreeMap<String, String>,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        // `parse` guarantees header_len + TAG_LEN <= len, so these ranges are in bounds; `get`
        // keeps that an error instead of a panic should the invariant ever break.
        let header = self
            .bytes
            .get(..self.header_len)
            .ok_or(CryptoError::InvalidCiphertext)?;
        let body = self
            .bytes
            .get(self.header_len..)
            .ok_or(CryptoError::InvalidCiphertext)?;
        let nonce: &[u8; NONCE_LEN] = header[header.len() - NONCE_LEN..]
            .try_into()
            .map_err(|_| CryptoError::InvalidCiphertext)?;
        let aad = associated_data(header, ctx);
        open_detached(material.expose(), nonce, &aad, body)
            .map_err(|_| CryptoError::InvalidCiphertext)
    }
}

impl fmt::Debug for CiphertextBlob {
    // Not the bytes: a blob can be 4 KiB and would flood a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CiphertextBlob")
            .field("key_id", &self.key_id)
            .field("material_version", &self.material_version)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// `b"kmsim/blob/v1" || header || canonical_encryption_context(ctx)` in one allocation.
fn associated_data(header: &[u8], ctx: &BTreeMap<String, String>) -> Vec<u8> {
    let mut aad = Vec::with_capacity(BLOB_AAD_PREFIX.len() + header.len() + encoded_len(ctx));
    aad.extend_from_slice(BLOB_AAD_PREFIX);
    aad.extend_from_slice(header);
    encode_into(ctx, &mut aad);
    aad
}

fn check_key_id(id: &[u8]) -> Result<(), CryptoError> {
    if id.is_empty() {
        return Err(CryptoError::InvalidKeyId { reason: "empty" });
    }
    if id.len() > KEY_ID_MAX_LEN {
        return Err(CryptoError::InvalidKeyId {
            reason: "longer than 64 characters",
        });
    }
    if !id
        .iter()
        .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
    {
        return Err(CryptoError::InvalidKeyId {
            reason: "characters outside [a-z0-9-]",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn setup() -> (KeyMaterial, StdRng) {
        let mut rng = StdRng::seed_from_u64(21);
        (KeyMaterial::generate(&mut rng), rng)
    }

    /// Parse then open, as Decrypt does.
    fn decrypt(
        bytes: &[u8],
        material: &KeyMaterial,
        ctx: &BTreeMap<String, String>,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        CiphertextBlob::parse(bytes)?.open(material, ctx)
    }

    #[test]
    fn round_trip_with_layout() {
        let (material, mut rng) = setup();
        let context = ctx(&[("purpose", "test"), ("tenant", "a")]);
        for plaintext in [&[][..], b"hello", &[0xa5u8; 4096][..]] {
            let bytes = CiphertextBlob::seal(&material, KEY_ID, 3, plaintext, &context, &mut rng)
                .expect("seals");
            assert_eq!(
                bytes.len(),
                2 + KEY_ID.len() + 4 + 12 + plaintext.len() + 16
            );
            assert!(bytes.len() <= plaintext.len() + BLOB_OVERHEAD_MAX);
            assert_eq!(bytes[0], 0x01);
            assert_eq!(usize::from(bytes[1]), KEY_ID.len());
            assert_eq!(&bytes[2..2 + KEY_ID.len()], KEY_ID.as_bytes());
            assert_eq!(&bytes[2 + KEY_ID.len()..6 + KEY_ID.len()], &[0, 0, 0, 3]);

            let blob = CiphertextBlob::parse(&bytes).expect("parses");
            assert_eq!(blob.key_id(), KEY_ID);
            assert_eq!(blob.material_version(), 3);
            assert_eq!(blob.as_bytes(), &bytes[..]);
            assert_eq!(
                &blob.open(&material, &context).expect("opens")[..],
                plaintext
            );
        }
    }

    #[test]
    fn round_trip_with_many_contexts() {
        let (material, mut rng) = setup();
        let long_value = "v".repeat(1000);
        let contexts = [
            ctx(&[]),
            ctx(&[("", "")]),
            ctx(&[("k", "")]),
            ctx(&[("", "v")]),
            ctx(&[
                ("aws:s3:arn", "arn:aws:s3:::bucket/key"),
                ("Department", "é ü ✓"),
            ]),
            ctx(&[
                ("a", "1"),
                ("b", "2"),
                ("c", "3"),
                ("d", "4"),
                ("e", &long_value),
            ]),
        ];
        for context in &contexts {
            let bytes =
                CiphertextBlob::seal(&material, "k", 1, b"data", context, &mut rng).expect("seals");
            assert_eq!(
                &decrypt(&bytes, &material, context).expect("opens")[..],
                b"data"
            );
            for other in contexts.iter().filter(|other| *other != context) {
                assert_eq!(
                    decrypt(&bytes, &material, other).map(|_| ()),
                    Err(CryptoError::InvalidCiphertext)
                );
            }
        }
    }

    #[test]
    fn key_id_limits() {
        let (material, mut rng) = setup();
        let empty = BTreeMap::new();
        let longest = "a".repeat(64);
        for id in [
            "a",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            "0-9",
            longest.as_str(),
        ] {
            let bytes =
                CiphertextBlob::seal(&material, id, 0, b"x", &empty, &mut rng).expect("valid id");
            assert_eq!(CiphertextBlob::parse(&bytes).expect("parses").key_id(), id);
        }
        let too_long = "a".repeat(65);
        for id in [
            "",
            too_long.as_str(),
            "ABC",
            "a_b",
            "a b",
            "alias/x",
            "é",
            "arn:aws:kms",
        ] {
            assert!(
                matches!(
                    CiphertextBlob::seal(&material, id, 0, b"x", &empty, &mut rng),
                    Err(CryptoError::InvalidKeyId { .. })
                ),
                "{id:?}"
            );
        }
    }

    #[test]
    fn wrong_context_key_or_version_fails() {
        let (material, mut rng) = setup();
        let context = ctx(&[("a", "1"), ("b", "2")]);
        let bytes = CiphertextBlob::seal(&material, KEY_ID, 5, b"secret", &context, &mut rng)
            .expect("seals");
        let wrong_contexts = [
            ctx(&[("a", "1")]),                         // missing pair
            ctx(&[("a", "1"), ("b", "2"), ("c", "3")]), // extra pair
            ctx(&[("a", "1"), ("b", "3")]),             // different value
            ctx(&[("a", "1"), ("B", "2")]),             // different key
            ctx(&[("a", "12"), ("b", "")]),             // bytes moved across a boundary
            ctx(&[]),
        ];
        for wrong in &wrong_contexts {
            assert_eq!(
                decrypt(&bytes, &material, wrong).map(|_| ()),
                Err(CryptoError::InvalidCiphertext),
                "{wrong:?}"
            );
        }
        let other = KeyMaterial::generate(&mut rng);
        assert_eq!(
            decrypt(&bytes, &other, &context).map(|_| ()),
            Err(CryptoError::InvalidCiphertext)
        );

        // Rewriting the version in the header (what a replay against another version would need).
        let mut other_version = bytes.clone();
        other_version[2 + KEY_ID.len() + 3] = 6;
        let blob = CiphertextBlob::parse(&other_version).expect("still well-formed");
        assert_eq!(blob.material_version(), 6);
        assert_eq!(
            blob.open(&material, &context).map(|_| ()),
            Err(CryptoError::InvalidCiphertext)
        );

        // Rewriting the key id to another valid one.
        let mut other_id = bytes.clone();
        other_id[2] = b'9';
        let blob = CiphertextBlob::parse(&other_id).expect("still well-formed");
        assert_eq!(
            blob.open(&material, &context).map(|_| ()),
            Err(CryptoError::InvalidCiphertext)
        );
    }

    #[test]
    fn every_bit_flip_fails() {
        let (material, mut rng) = setup();
        let context = ctx(&[("a", "1")]);
        let bytes = CiphertextBlob::seal(&material, KEY_ID, 1, &[7u8; 48], &context, &mut rng)
            .expect("seals");
        for bit in 0..bytes.len() * 8 {
            let mut tampered = bytes.clone();
            tampered[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                decrypt(&tampered, &material, &context).map(|_| ()),
                Err(CryptoError::InvalidCiphertext),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn every_truncation_and_extension_fails() {
        let (material, mut rng) = setup();
        let context = ctx(&[("a", "1")]);
        for plaintext in [&[][..], &[1u8; 40][..]] {
            let bytes = CiphertextBlob::seal(&material, KEY_ID, 1, plaintext, &context, &mut rng)
                .expect("seals");
            for len in 0..bytes.len() {
                assert_eq!(
                    decrypt(&bytes[..len], &material, &context).map(|_| ()),
                    Err(CryptoError::InvalidCiphertext),
                    "length {len}"
                );
            }
            let mut extended = bytes.clone();
            extended.push(0);
            assert_eq!(
                decrypt(&extended, &material, &context).map(|_| ()),
                Err(CryptoError::InvalidCiphertext)
            );
        }
    }

    #[test]
    fn blob_is_not_a_wrapped_secret_and_vice_versa() {
        // Same key bytes used as both a domain key and key material: the prefixes keep the two
        // formats apart, so neither can be passed off as the other.
        let mut rng = StdRng::seed_from_u64(5);
        let material = KeyMaterial::from_bytes(&[4u8; 32]).expect("32 bytes");
        let domain = crate::DomainKey::from_bytes(&[4u8; 32]).expect("32 bytes");
        let aad = crate::WrapAad {
            purpose: "p",
            region: "r",
            key_id: "k",
            version: 1,
        };
        let wrapped = crate::wrap_secret(&domain, b"secret", &aad, &mut rng);
        assert!(decrypt(&wrapped, &material, &BTreeMap::new()).is_err());
        let blob = CiphertextBlob::seal(&material, "k", 1, b"secret", &BTreeMap::new(), &mut rng)
            .expect("seals");
        assert!(crate::unwrap_secret(&domain, &blob, &aad).is_err());
    }

    #[test]
    fn debug_shows_header_not_bytes() {
        let (material, mut rng) = setup();
        let bytes =
            CiphertextBlob::seal(&material, "abc", 2, &[0u8; 100], &BTreeMap::new(), &mut rng)
                .expect("seals");
        let debug = format!("{:?}", CiphertextBlob::parse(&bytes).expect("parses"));
        assert_eq!(
            debug,
            r#"CiphertextBlob { key_id: "abc", material_version: 2, len: 137 }"#
        );
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let material = KeyMaterial::from_bytes(&[2u8; 32]).expect("32 bytes");
            if let Ok(blob) = CiphertextBlob::parse(&bytes) {
                prop_assert!(blob.open(&material, &BTreeMap::new()).is_err());
            }
        }

        #[test]
        fn well_formed_headers_with_arbitrary_bodies_never_panic(
            id in "[a-z0-9-]{1,64}",
            version in any::<u32>(),
            body in proptest::collection::vec(any::<u8>(), 0..100),
        ) {
            let mut bytes = vec![1u8, id.len() as u8];
            bytes.extend_from_slice(id.as_bytes());
            bytes.extend_from_slice(&version.to_be_bytes());
            bytes.extend_from_slice(&body);
            let material = KeyMaterial::from_bytes(&[2u8; 32]).expect("32 bytes");
            match CiphertextBlob::parse(&bytes) {
                Ok(blob) => {
                    prop_assert!(body.len() >= 12 + 16);
                    prop_assert_eq!(blob.key_id(), id.as_str());
                    prop_assert_eq!(blob.material_version(), version);
                    prop_assert_eq!(blob.open(&material, &BTreeMap::new()), Err(CryptoError::InvalidCiphertext));
                }
                Err(err) => {
                    prop_assert!(body.len() < 12 + 16);
                    prop_assert_eq!(err, CryptoError::InvalidCiphertext);
                }
            }
        }

        #[test]
        fn round_trip_arbitrary(
            plaintext in proptest::collection::vec(any::<u8>(), 0..300),
            context in proptest::collection::btree_map(".{0,8}", ".{0,8}", 0..5),
            id in "[a-z0-9-]{1,64}",
            version in any::<u32>(),
            seed in any::<u64>(),
        ) {
            let mut rng = StdRng::seed_from_u64(seed);
            let material = KeyMaterial::generate(&mut rng);
            let bytes = CiphertextBlob::seal(&material, &id, version, &plaintext, &context, &mut rng)
                .expect("valid id");
            let blob = CiphertextBlob::parse(&bytes).expect("parses");
            prop_assert_eq!(blob.key_id(), id.as_str());
            prop_assert_eq!(blob.material_version(), version);
            prop_assert_eq!(&blob.open(&material, &context).expect("opens")[..], &plaintext[..]);
        }
    }
}
