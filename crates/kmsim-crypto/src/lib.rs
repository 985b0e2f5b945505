//! kmsim-crypto: every cryptographic primitive and byte format of kmsim, and nothing else.
//!
//! It owns:
//! - [`KeyMaterial`] — the AES-256 material of one KMS key version (`key_material`), and
//!   [`SecretBytes`] for secrets of any other length (`secret`);
//! - [`DomainKey`] and its hex key-file format (`domain_key`), and the wrapping of secrets under
//!   it with [`wrap_secret`] / [`unwrap_secret`] bound to a [`WrapAad`] (`wrap`);
//! - the canonical encoding of an encryption context (`encryption_context`);
//! - the symmetric [`CiphertextBlob`] that Encrypt returns and Decrypt takes (`ciphertext_blob`);
//! - random values for GenerateRandom, data keys and key-material ids (`random`);
//! - the key specs and algorithms of the asymmetric, HMAC and import operations, with their AWS
//!   wire names (`spec`);
//! - asymmetric keys: [`PrivateKey`] (generation, PKCS#8, Sign, RSA Decrypt, ECDH; `asymmetric`)
//!   and [`PublicKey`] (SPKI, Verify, RSA Encrypt; `public_key`), recognised from DER by
//!   `key_der`; GenerateDataKeyPair with [`generate_data_key_pair`] (`data_key_pair`);
//! - HMAC keys and GenerateMac / VerifyMac: [`generate_hmac_key`], [`hmac()`], [`hmac_verify`]
//!   (`mac`);
//! - importing key material: [`ImportWrappingKey`] and the [`material_commitment`] that names
//!   imported material across Regions (`import`);
//! - Region-to-Region transport: [`seal_request`] / [`open_request`] from a Region's static
//!   [`TransportKeyPair`] (which signs) to a node's short-lived [`SessionKeyPair`] (vouched for by
//!   a signed [`SessionKeyClaim`]), bound to a [`TransportAad`], with answers authenticated by the
//!   request's [`AnswerKey`] (`transport`, `session_key`); and the partition [`TrustAnchor`] with
//!   its [`TransportCertificate`]s (`trust_anchor`).
//!
//! It does no I/O, reads no clock and never touches a global random generator: every function that
//! needs randomness takes the caller's `rng`, so the node that proposes a Raft command decides all
//! random bytes and a seeded simulation replays exactly. Secret bytes live in `zeroize::Zeroizing`
//! buffers (or in the RustCrypto types, which wipe themselves) and their `Debug` output is
//! redacted. It depends on no other kmsim crate, so key ids arrive here as `&str`, specs are this
//! crate's own enums, and the callers' newtypes and wire enums stay in `kmsim-core`. All
//! RustCrypto crates are of one generation (`rand_core` 0.6); `rsa` 0.9 carries RUSTSEC-2023-0071,
//! accepted for a simulator (see the README).

mod aead;
mod asymmetric;
mod ciphertext_blob;
mod data_key_pair;
mod domain_key;
mod encoding;
mod encryption_context;
mod error;
mod hash;
mod hex;
mod import;
mod key_der;
mod key_material;
mod mac;
mod public_key;
mod random;
#[cfg(test)]
mod redaction_tests;
mod rsa_padding;
mod secret;
mod session_key;
mod spec;
#[cfg(test)]
mod test_vectors;
mod transport;
mod trust_anchor;
mod wrap;

pub use asymmetric::PrivateKey;
pub use ciphertext_blob::{CiphertextBlob, BLOB_OVERHEAD_MAX};
pub use data_key_pair::generate_data_key_pair;
pub use domain_key::DomainKey;
pub use encryption_context::canonical_encryption_context;
pub use error::CryptoError;
pub use import::{material_commitment, ImportWrappingKey};
pub use key_material::{KeyMaterial, KEY_LEN};
pub use mac::{generate_hmac_key, hmac, hmac_verify};
pub use public_key::PublicKey;
pub use random::{random_bytes, random_hex64};
pub use secret::SecretBytes;
pub use session_key::{SessionKeyClaim, SessionKeyPair, SESSION_KEY_ID_LEN};
pub use spec::{
    AsymmetricSpec, DataKeyPairSpec, HmacSpec, ImportWrappingAlgorithm, MacAlgorithm, Message,
    RsaEncryptionAlgorithm, SigningAlgorithm,
};
pub use transport::{
    open_request, request_session_id, seal_request, AnswerKey, OpenedRequest, TransportAad,
    TransportKeyPair, CHALLENGE_LEN,
};
pub use trust_anchor::{TransportCertificate, TrustAnchor};
pub use wrap::{unwrap_secret, wrap_secret, WrapAad};
