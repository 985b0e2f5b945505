//! The one error type of this crate.

/// Why a cryptographic operation failed.
///
/// Failures of authenticated decryption carry no detail on purpose: telling a caller *which* check
/// failed (format byte, length, tag, context) would hand an attacker an oracle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// A ciphertext blob is malformed, truncated or tampered with, or was opened with the wrong key,
    /// key version or encryption context; also any failure of RSA-OAEP decryption and of import
    /// unwrapping (bad length, OAEP failure, key-wrap integrity failure), all alike.
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
    /// Bytes that are no private key of a supported form (PKCS#8, or the SEC1 / PKCS#1 forms that
    /// `openssl genpkey -outform DER` writes). No detail: the bytes are meant to be secret.
    #[error("invalid private key")]
    InvalidPrivateKey,
    /// Bytes that are no DER SubjectPublicKeyInfo of a supported key type, or a point not on its
    /// curve.
    #[error("invalid public key")]
    InvalidPublicKey,
    /// A well-formed key of another spec than the one asked for: a P-256 key for ECC_NIST_P384, an
    /// RSA-3072 key for RSA_2048, an Ed25519 key for any spec. Callers map it to
    /// IncorrectKeyMaterialException or the import errors; a peer key on another curve gives it too.
    #[error("key spec mismatch: expected {expected}, found {found}")]
    KeySpecMismatch {
        /// Wire name of the spec that was asked for.
        expected: &'static str,
        /// What the key is: a spec wire name, `RSA_<bits>`, or the algorithm or curve OID.
        found: String,
    },
    /// An algorithm the key's spec does not allow: ECDSA on RSA, ECDSA_SHA_384 on P-256, RSA on
    /// ECC, OAEP on ECC, ECDH on RSA or secp256k1.
    #[error("algorithm {algorithm} is not valid for key spec {spec}")]
    AlgorithmNotForKey {
        /// Wire name of the algorithm (`ECDH` for key agreement).
        algorithm: &'static str,
        /// Wire name of the key's spec.
        spec: &'static str,
    },
    /// A `DIGEST` message whose length is not the digest length of the algorithm's hash (AWS:
    /// ValidationException `Digest is invalid length for algorithm <ALG>.`).
    #[error("digest is invalid length for algorithm {algorithm}: expected {expected} bytes, got {actual}")]
    InvalidDigestLength {
        /// Wire name of the signing algorithm.
        algorithm: &'static str,
        /// The digest length of its hash.
        expected: usize,
        /// The length that was given.
        actual: usize,
    },
    /// An RSA-OAEP plaintext longer than the key and algorithm allow.
    #[error("plaintext too large for {algorithm}: at most {max} bytes, got {actual}")]
    RsaPlaintextTooLarge {
        /// Wire name of the encryption algorithm.
        algorithm: &'static str,
        /// The limit for this key size and hash.
        max: usize,
        /// The length that was given.
        actual: usize,
    },
    /// An RSA modulus size other than 2048, 3072 or 4096 bits (import wrapping keys).
    #[error("unsupported rsa key size: {bits} bits")]
    UnsupportedKeySize {
        /// The size that was asked for or found.
        bits: usize,
    },
    /// A primitive failed where valid inputs should never make it fail (key generation, signing);
    /// it names the operation and nothing else.
    #[error("{operation} failed")]
    PrimitiveFailed {
        /// What was being done, e.g. `rsa key generation`.
        operation: &'static str,
    },
    /// A transport-sealed secret that does not open: wrong sender or recipient key, any changed
    /// associated-data field or any changed byte. No detail, as for [`CryptoError::InvalidCiphertext`].
    #[error("transport open failed")]
    TransportOpenFailed,
    /// A transport certificate that is malformed, certifies no P-384 key, or whose signature does
    /// not verify under the trust anchor.
    #[error("invalid transport certificate: {reason}")]
    InvalidCertificate {
        /// Which check failed (certificates are public, so this may say).
        reason: &'static str,
    },
}
