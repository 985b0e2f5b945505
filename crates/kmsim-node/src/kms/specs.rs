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

#[cfg(test)]
mod tests {
    //! `kmsim-core` decides what the API accepts (specs, usages, algorithms), `kmsim-crypto`
    //! what it can compute: both describe the same AWS tables and must agree entry by entry.
    use kmsim_core::key::{KeySpec, KeyUsage};
    use kmsim_crypto as crypto;

    fn names<T: ToString>(values: &[T]) -> Vec<String> {
        values.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_asymmetric_key_spec_has_the_same_algorithms_in_both_tables() {
        for spec in KeySpec::ALL.iter().copied().filter(|s| s.is_supported()) {
            let asym = crypto::AsymmetricSpec::from_wire_name(spec.as_str());
            assert_eq!(spec.is_asymmetric(), asym.is_some(), "{spec}");
            let Some(asym) = asym else { continue };
            let core_signing = names(spec.signing_algorithms(KeyUsage::SignVerify));
            let crypto_signing: Vec<String> =
                if spec.allowed_usages().contains(&KeyUsage::SignVerify) {
                    names(asym.signing_algorithms())
                } else {
                    Vec::new()
                };
            assert_eq!(core_signing, crypto_signing, "signing algorithms of {spec}");
            let agrees = !spec
                .key_agreement_algorithms(KeyUsage::KeyAgreement)
                .is_empty();
            assert_eq!(
                agrees,
                asym.supports_key_agreement(),
                "key agreement of {spec}"
            );
        }
        // And no asymmetric spec of the crypto table is unknown to the API.
        for asym in crypto::AsymmetricSpec::ALL {
            assert!(KeySpec::parse(asym.wire_name()).is_ok(), "{asym}");
        }
    }

    #[test]
    fn every_hmac_key_spec_has_its_one_algorithm_in_both_tables() {
        for spec in KeySpec::ALL.iter().copied().filter(|s| s.is_supported()) {
            let hmac = super::hmac_spec(spec);
            let core = spec.mac_algorithms(KeyUsage::GenerateVerifyMac);
            match hmac {
                Some(h) => assert_eq!(names(core), vec![h.algorithm().to_string()], "{spec}"),
                None => assert!(
                    core.is_empty(),
                    "{spec} has MAC algorithms but no HMAC spec"
                ),
            }
        }
    }
}
