//! The one error type of this crate.

/// Why a cryptographic operation failed.
///
/// Failures of authenticated decryption carry no detail on purpose: telling a caller *which* check
/// failed (format byte, length, tag, context) would hand an attacker an oracle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A ciphertext blob is malformed, truncated or tampered with, or was opened with the wrong key,
    /// key version or encryption context.
    #[error("invalid ciphertext")]
    InvalidCiphertext,
    /// A secret wrapped under a domain key could not be unwrapped (wrong domain key, wrong binding,
    /// or corrupted bytes).
    #[error("unwrap failed")]
    UnwrapFailed,
    /// Raw key bytes of the wrong length.
    #[error("invalid key length: expected {expected} bytes, got {actual}")]
    InvalidKeyLength {
        /// The only accepted length.
        expected: usize,
        /// The length that was given.
        actual: usize,
    },
    /// A domain key file that is not 64 hex characters; the message never quotes the file.
    #[error("invalid key file: {0}")]
    InvalidKeyFile(String),
    /// A key id that cannot be written into a ciphertext blob (1 to 64 characters of `[a-z0-9-]`).
    #[error("invalid key id for a ciphertext blob: {reason}")]
    InvalidKeyId {
        /// Which rule the key id broke.
        reason: &'static str,
    },
    /// A plaintext beyond the AES-GCM limit of 64 GiB.
    #[error("plaintext too large: {actual} bytes")]
    PlaintextTooLarge {
        /// The length that was given.
        actual: usize,
    },
}
