//! From `kmsim-core`'s AWS wire enums to `kmsim-crypto`'s own enums (the two crates do not
//! depend on each other); the mapping goes by AWS wire name.

use kmsim_core::key::{
    DataKeyPairSpec, EncryptionAlgorithm, KeySpec, MacAlgorithm, SigningAlgorithm,
    WrappingAlgorithm,
};
use kmsim_crypto as crypto;

/// The HMAC spec of an `HMAC_*` key spec.
pub fn hmac_spec(spec: KeySpec) -> Option<crypto::HmacSpec> {
    crypto::HmacSpec::from_wire_name(spec.as_str())
}

/// The crypto signing algorithm.
pub fn signing(a: SigningAlgorithm) -> Option<crypto::SigningAlgorithm> {
    crypto::SigningAlgorithm::from_wire_name(a.as_str())
}

/// The crypto MAC algorithm.
pub fn mac(a: MacAlgorithm) -> crypto::MacAlgorithm {
    crypto::MacAlgorithm::from_wire_name(a.as_str())
        .expect("invariant: both crates list the four HMAC algorithms")
}

/// The RSA-OAEP variant of an encryption algorithm (`None` for SYMMETRIC_DEFAULT, SM2PKE).
pub fn rsa_encryption(a: EncryptionAlgorithm) -> Option<crypto::RsaEncryptionAlgorithm> {
    crypto::RsaEncryptionAlgorithm::from_wire_name(a.as_str())
}

/// The crypto data key pair spec (`None` for SM2).
pub fn data_key_pair(s: DataKeyPairSpec) -> Option<crypto::DataKeyPairSpec> {
    crypto::DataKeyPairSpec::from_wire_name(s.as_str())
}

/// The crypto import wrapping algorithm (`None` for RSAES_PKCS1_V1_5 and SM2PKE).
pub fn import_wrapping(a: WrappingAlgorithm) -> Option<crypto::ImportWrappingAlgorithm> {
    crypto::ImportWrappingAlgorithm::from_wire_name(a.as_str())
}
