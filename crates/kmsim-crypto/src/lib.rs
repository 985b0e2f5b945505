//! kmsim-crypto: every cryptographic primitive and byte format of kmsim, and nothing else.
//!
//! It owns:
//! - [`KeyMaterial`] — the AES-256 material of one KMS key version (`key_material`);
//! - [`DomainKey`] and its hex key-file format (`domain_key`), and the wrapping of secrets under
//!   it with [`wrap_secret`] / [`unwrap_secret`] bound to a [`WrapAad`] (`wrap`);
//! - the canonical encoding of an encryption context (`encryption_context`);
//! - the symmetric [`CiphertextBlob`] that Encrypt returns and Decrypt takes (`ciphertext_blob`);
//! - random values for GenerateRandom, data keys and key-material ids (`random`).
//!
//! It does no I/O, reads no clock and never touches a global random generator: every function that
//! needs randomness takes the caller's `rng`, so the node that proposes a Raft command decides all
//! random bytes and a seeded simulation replays exactly. Secret bytes live in `zeroize::Zeroizing`
//! buffers and their `Debug` output is redacted. It depends on no other kmsim crate, so key ids
//! arrive here as `&str` and the callers' newtypes stay in `kmsim-core`.

mod aead;
mod ciphertext_blob;
mod domain_key;
mod encoding;
mod encryption_context;
mod error;
mod hex;
mod key_material;
mod random;
mod wrap;

pub use ciphertext_blob::{CiphertextBlob, BLOB_OVERHEAD_MAX};
pub use domain_key::DomainKey;
pub use encryption_context::canonical_encryption_context;
pub use error::CryptoError;
pub use key_material::{KeyMaterial, KEY_LEN};
pub use random::{random_bytes, random_hex64};
pub use wrap::{unwrap_secret, wrap_secret, WrapAad};
