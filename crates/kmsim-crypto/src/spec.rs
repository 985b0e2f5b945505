//! Key specs and algorithms of the asymmetric, HMAC and import operations.
//!
//! These enums are this crate's own, independent of `kmsim-core`'s wire enums (the crate depends on
//! no other kmsim crate); `wire_name()` gives the AWS spelling so that the two can be mapped and
//! error messages can quote it.

use std::fmt;
use std::ops::RangeInclusive;

use crate::hash::HashAlg;
use crate::CryptoError;

/// Implements `wire_name`, `from_wire_name`, `ALL` and `Display` from one table, so that the
/// names and the list of values cannot drift apart.
macro_rules! wire_names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every value, in the order AWS documents them.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The AWS API spelling, e.g. for error messages and for mapping to wire enums.
            pub fn wire_name(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }

            /// The value whose [`wire_name`](Self::wire_name) is `name`, if any.
            pub fn from_wire_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|value| value.wire_name() == name)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.wire_name())
            }
        }
    };
}

/// Key spec of an asymmetric KMS key (`KeySpec` without the symmetric, HMAC, SM2, ML-DSA and
/// Ed25519 values, which kmsim does not offer as KMS keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsymmetricSpec {
    /// RSA with a 2048-bit modulus.
    Rsa2048,
    /// RSA with a 3072-bit modulus.
    Rsa3072,
    /// RSA with a 4096-bit modulus.
    Rsa4096,
    /// NIST P-256 (secp256r1).
    EccNistP256,
    /// NIST P-384 (secp384r1).
    EccNistP384,
    /// NIST P-521 (secp521r1).
    EccNistP521,
    /// secp256k1 (signing only).
    EccSecgP256k1,
}

wire_names!(AsymmetricSpec {
    Rsa2048 => "RSA_2048",
    Rsa3072 => "RSA_3072",
    Rsa4096 => "RSA_4096",
    EccNistP256 => "ECC_NIST_P256",
    EccNistP384 => "ECC_NIST_P384",
    EccNistP521 => "ECC_NIST_P521",
    EccSecgP256k1 => "ECC_SECG_P256K1",
});

impl AsymmetricSpec {
    /// Modulus size of an RSA spec, `None` for ECC.
    pub fn rsa_bits(self) -> Option<usize> {
        match self {
            Self::Rsa2048 => Some(2048),
            Self::Rsa3072 => Some(3072),
            Self::Rsa4096 => Some(4096),
            _ => None,
        }
    }

    /// [`CryptoError::AlgorithmNotForKey`] unless AWS allows `alg` with this spec.
    pub fn check_signing_algorithm(self, alg: SigningAlgorithm) -> Result<(), CryptoError> {
        if self.signing_algorithms().contains(&alg) {
            Ok(())
        } else {
            Err(CryptoError::AlgorithmNotForKey {
                algorithm: alg.wire_name(),
                spec: self.wire_name(),
            })
        }
    }

    /// The signing algorithms AWS allows with this spec (what GetPublicKey reports for a
    /// SIGN_VERIFY key): all six RSA algorithms for RSA, one ECDSA algorithm per curve.
    pub fn signing_algorithms(self) -> &'static [SigningAlgorithm] {
        use SigningAlgorithm as S;
        match self {
            Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => &[
                S::RsassaPssSha256,
                S::RsassaPssSha384,
                S::RsassaPssSha512,
                S::RsassaPkcs1V15Sha256,
                S::RsassaPkcs1V15Sha384,
                S::RsassaPkcs1V15Sha512,
            ],
            Self::EccNistP256 | Self::EccSecgP256k1 => &[S::EcdsaSha256],
            Self::EccNistP384 => &[S::EcdsaSha384],
            Self::EccNistP521 => &[S::EcdsaSha512],
        }
    }

    /// Whether DeriveSharedSecret (ECDH) is possible: the NIST curves only, as in AWS.
    pub fn supports_key_agreement(self) -> bool {
        matches!(
            self,
            Self::EccNistP256 | Self::EccNistP384 | Self::EccNistP521
        )
    }
}

/// Key spec of an HMAC KMS key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HmacSpec {
    /// HMAC with SHA-224.
    Hmac224,
    /// HMAC with SHA-256.
    Hmac256,
    /// HMAC with SHA-384.
    Hmac384,
    /// HMAC with SHA-512.
    Hmac512,
}

wire_names!(HmacSpec {
    Hmac224 => "HMAC_224",
    Hmac256 => "HMAC_256",
    Hmac384 => "HMAC_384",
    Hmac512 => "HMAC_512",
});

impl HmacSpec {
    /// Length in bytes of a key KMS generates: the hash output length.
    pub fn key_len(self) -> usize {
        match self {
            Self::Hmac224 => 28,
            Self::Hmac256 => 32,
            Self::Hmac384 => 48,
            Self::Hmac512 => 64,
        }
    }

    /// Lengths AWS accepts for imported material: from the hash output length up to the hash's
    /// block size (64 bytes for SHA-224/256, 128 for SHA-384/512).
    pub fn import_len_range(self) -> RangeInclusive<usize> {
        match self {
            Self::Hmac224 => 28..=64,
            Self::Hmac256 => 32..=64,
            Self::Hmac384 => 48..=128,
            Self::Hmac512 => 64..=128,
        }
    }

    /// The one MAC algorithm a key of this spec supports.
    pub fn algorithm(self) -> MacAlgorithm {
        match self {
            Self::Hmac224 => MacAlgorithm::HmacSha224,
            Self::Hmac256 => MacAlgorithm::HmacSha256,
            Self::Hmac384 => MacAlgorithm::HmacSha384,
            Self::Hmac512 => MacAlgorithm::HmacSha512,
        }
    }
}

/// Key pair spec of GenerateDataKeyPair (without SM2, which exists only in China Regions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataKeyPairSpec {
    /// RSA with a 2048-bit modulus.
    Rsa2048,
    /// RSA with a 3072-bit modulus.
    Rsa3072,
    /// RSA with a 4096-bit modulus.
    Rsa4096,
    /// NIST P-256.
    EccNistP256,
    /// NIST P-384.
    EccNistP384,
    /// NIST P-521.
    EccNistP521,
    /// secp256k1.
    EccSecgP256k1,
    /// Ed25519.
    EccNistEdwards25519,
}

wire_names!(DataKeyPairSpec {
    Rsa2048 => "RSA_2048",
    Rsa3072 => "RSA_3072",
    Rsa4096 => "RSA_4096",
    EccNistP256 => "ECC_NIST_P256",
    EccNistP384 => "ECC_NIST_P384",
    EccNistP521 => "ECC_NIST_P521",
    EccSecgP256k1 => "ECC_SECG_P256K1",
    EccNistEdwards25519 => "ECC_NIST_EDWARDS25519",
});

impl DataKeyPairSpec {
    /// The KMS key spec with the same key type; `None` for Ed25519, which is no KMS key spec here.
    pub fn asymmetric_spec(self) -> Option<AsymmetricSpec> {
        match self {
            Self::Rsa2048 => Some(AsymmetricSpec::Rsa2048),
            Self::Rsa3072 => Some(AsymmetricSpec::Rsa3072),
            Self::Rsa4096 => Some(AsymmetricSpec::Rsa4096),
            Self::EccNistP256 => Some(AsymmetricSpec::EccNistP256),
            Self::EccNistP384 => Some(AsymmetricSpec::EccNistP384),
            Self::EccNistP521 => Some(AsymmetricSpec::EccNistP521),
            Self::EccSecgP256k1 => Some(AsymmetricSpec::EccSecgP256k1),
            Self::EccNistEdwards25519 => None,
        }
    }
}

/// Signing algorithm of Sign and Verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    /// RSASSA-PSS, SHA-256, MGF1 with SHA-256, salt length 32.
    RsassaPssSha256,
    /// RSASSA-PSS, SHA-384, MGF1 with SHA-384, salt length 48.
    RsassaPssSha384,
    /// RSASSA-PSS, SHA-512, MGF1 with SHA-512, salt length 64.
    RsassaPssSha512,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RsassaPkcs1V15Sha256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RsassaPkcs1V15Sha384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RsassaPkcs1V15Sha512,
    /// ECDSA with SHA-256 (P-256, secp256k1).
    EcdsaSha256,
    /// ECDSA with SHA-384 (P-384).
    EcdsaSha384,
    /// ECDSA with SHA-512 (P-521).
    EcdsaSha512,
}

wire_names!(SigningAlgorithm {
    RsassaPssSha256 => "RSASSA_PSS_SHA_256",
    RsassaPssSha384 => "RSASSA_PSS_SHA_384",
    RsassaPssSha512 => "RSASSA_PSS_SHA_512",
    RsassaPkcs1V15Sha256 => "RSASSA_PKCS1_V1_5_SHA_256",
    RsassaPkcs1V15Sha384 => "RSASSA_PKCS1_V1_5_SHA_384",
    RsassaPkcs1V15Sha512 => "RSASSA_PKCS1_V1_5_SHA_512",
    EcdsaSha256 => "ECDSA_SHA_256",
    EcdsaSha384 => "ECDSA_SHA_384",
    EcdsaSha512 => "ECDSA_SHA_512",
});

impl SigningAlgorithm {
    /// Length a `MessageType=DIGEST` message must have: the output length of the algorithm's hash.
    pub fn digest_len(self) -> usize {
        self.hash().output_len()
    }

    pub(crate) fn hash(self) -> HashAlg {
        match self {
            Self::RsassaPssSha256 | Self::RsassaPkcs1V15Sha256 | Self::EcdsaSha256 => {
                HashAlg::Sha256
            }
            Self::RsassaPssSha384 | Self::RsassaPkcs1V15Sha384 | Self::EcdsaSha384 => {
                HashAlg::Sha384
            }
            Self::RsassaPssSha512 | Self::RsassaPkcs1V15Sha512 | Self::EcdsaSha512 => {
                HashAlg::Sha512
            }
        }
    }
}

/// RSA encryption algorithm of Encrypt and Decrypt: OAEP with MGF1 of the same hash, empty label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RsaEncryptionAlgorithm {
    /// RSAES-OAEP with SHA-1.
    OaepSha1,
    /// RSAES-OAEP with SHA-256.
    OaepSha256,
}

wire_names!(RsaEncryptionAlgorithm {
    OaepSha1 => "RSAES_OAEP_SHA_1",
    OaepSha256 => "RSAES_OAEP_SHA_256",
});

impl RsaEncryptionAlgorithm {
    /// Largest plaintext for a modulus of `bits` bits: key bytes − 2·hash bytes − 2 (RFC 8017
    /// §7.1.1), e.g. 214 / 190 bytes for RSA_2048; 0 for a modulus too small for OAEP at all.
    pub fn max_plaintext_len(self, bits: usize) -> usize {
        bits.div_ceil(8)
            .saturating_sub(2 * self.hash().output_len() + 2)
    }

    pub(crate) fn hash(self) -> HashAlg {
        match self {
            Self::OaepSha1 => HashAlg::Sha1,
            Self::OaepSha256 => HashAlg::Sha256,
        }
    }
}

/// MAC algorithm of GenerateMac and VerifyMac.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MacAlgorithm {
    /// HMAC with SHA-224.
    HmacSha224,
    /// HMAC with SHA-256.
    HmacSha256,
    /// HMAC with SHA-384.
    HmacSha384,
    /// HMAC with SHA-512.
    HmacSha512,
}

wire_names!(MacAlgorithm {
    HmacSha224 => "HMAC_SHA_224",
    HmacSha256 => "HMAC_SHA_256",
    HmacSha384 => "HMAC_SHA_384",
    HmacSha512 => "HMAC_SHA_512",
});

impl MacAlgorithm {
    /// Length in bytes of the MAC: the hash output length (KMS never truncates).
    pub fn mac_len(self) -> usize {
        self.hash().output_len()
    }

    pub(crate) fn hash(self) -> HashAlg {
        match self {
            Self::HmacSha224 => HashAlg::Sha224,
            Self::HmacSha256 => HashAlg::Sha256,
            Self::HmacSha384 => HashAlg::Sha384,
            Self::HmacSha512 => HashAlg::Sha512,
        }
    }
}

/// Wrapping algorithm of GetParametersForImport / ImportKeyMaterial (`AlgorithmSpec` without the
/// retired RSAES_PKCS1_V1_5 and without SM2PKE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImportWrappingAlgorithm {
    /// The material itself, RSAES-OAEP (SHA-1, MGF1 SHA-1) encrypted.
    RsaesOaepSha1,
    /// The material itself, RSAES-OAEP (SHA-256, MGF1 SHA-256) encrypted.
    RsaesOaepSha256,
    /// OAEP(SHA-1) of an ephemeral AES-256 key, then RFC 5649 key wrap of the material.
    RsaAesKeyWrapSha1,
    /// OAEP(SHA-256) of an ephemeral AES-256 key, then RFC 5649 key wrap of the material.
    RsaAesKeyWrapSha256,
}

wire_names!(ImportWrappingAlgorithm {
    RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
    RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
    RsaAesKeyWrapSha1 => "RSA_AES_KEY_WRAP_SHA_1",
    RsaAesKeyWrapSha256 => "RSA_AES_KEY_WRAP_SHA_256",
});

/// The message of Sign and Verify, as `MessageType` says.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// `RAW`: the message itself, hashed with the algorithm's hash.
    Raw(&'a [u8]),
    /// `DIGEST`: an already computed digest, used as the prehash; its length must be the
    /// algorithm's [`digest_len`](SigningAlgorithm::digest_len).
    Digest(&'a [u8]),
}

impl Message<'_> {
    /// The prehash to sign or verify: the message hashed with `alg`'s hash, or the given digest
    /// if its length is right.
    pub(crate) fn prehash(self, alg: SigningAlgorithm) -> Result<Vec<u8>, CryptoError> {
        match self {
            Self::Raw(message) => Ok(alg.hash().digest(message)),
            Self::Digest(digest) if digest.len() == alg.digest_len() => Ok(digest.to_vec()),
            Self::Digest(digest) => Err(CryptoError::InvalidDigestLength {
                algorithm: alg.wire_name(),
                expected: alg.digest_len(),
                actual: digest.len(),
            }),
        }
    }
}

impl fmt::Debug for Message<'_> {
    // Lengths only: a message to sign can be anything the caller considers private.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Raw(m) => write!(f, "Raw({} bytes)", m.len()),
            Self::Digest(d) => write!(f, "Digest({} bytes)", d.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_round_trip_and_are_unique() {
        fn check<T: Copy + PartialEq + fmt::Debug + fmt::Display>(
            all: &[T],
            name: fn(T) -> &'static str,
            parse: fn(&str) -> Option<T>,
        ) {
            for (i, &value) in all.iter().enumerate() {
                assert_eq!(parse(name(value)), Some(value));
                assert_eq!(value.to_string(), name(value));
                assert!(all[i + 1..].iter().all(|&other| name(other) != name(value)));
            }
            assert_eq!(parse("rsa_2048"), None);
        }
        check(
            AsymmetricSpec::ALL,
            AsymmetricSpec::wire_name,
            AsymmetricSpec::from_wire_name,
        );
        check(HmacSpec::ALL, HmacSpec::wire_name, HmacSpec::from_wire_name);
        check(
            DataKeyPairSpec::ALL,
            DataKeyPairSpec::wire_name,
            DataKeyPairSpec::from_wire_name,
        );
        check(
            SigningAlgorithm::ALL,
            SigningAlgorithm::wire_name,
            SigningAlgorithm::from_wire_name,
        );
        check(
            RsaEncryptionAlgorithm::ALL,
            RsaEncryptionAlgorithm::wire_name,
            RsaEncryptionAlgorithm::from_wire_name,
        );
        check(
            MacAlgorithm::ALL,
            MacAlgorithm::wire_name,
            MacAlgorithm::from_wire_name,
        );
        check(
            ImportWrappingAlgorithm::ALL,
            ImportWrappingAlgorithm::wire_name,
            ImportWrappingAlgorithm::from_wire_name,
        );
        assert_eq!(AsymmetricSpec::ALL.len(), 7);
        assert_eq!(DataKeyPairSpec::ALL.len(), 8);
        assert_eq!(SigningAlgorithm::ALL.len(), 9);
    }

    #[test]
    fn oaep_limits_match_the_aws_documentation() {
        use RsaEncryptionAlgorithm::{OaepSha1, OaepSha256};
        let table = [(2048, 214, 190), (3072, 342, 318), (4096, 470, 446)];
        for (bits, sha1, sha256) in table {
            assert_eq!(OaepSha1.max_plaintext_len(bits), sha1);
            assert_eq!(OaepSha256.max_plaintext_len(bits), sha256);
        }
        assert_eq!(OaepSha256.max_plaintext_len(512), 0);
    }

    #[test]
    fn digest_and_mac_lengths() {
        use SigningAlgorithm as S;
        let lengths: Vec<usize> = S::ALL.iter().map(|a| a.digest_len()).collect();
        assert_eq!(lengths, [32, 48, 64, 32, 48, 64, 32, 48, 64]);
        for alg in S::ALL {
            assert_eq!(alg.hash().digest(b"x").len(), alg.digest_len());
        }
        for spec in HmacSpec::ALL {
            assert_eq!(spec.algorithm().mac_len(), spec.key_len());
            assert_eq!(*spec.import_len_range().start(), spec.key_len());
            assert_eq!(spec.algorithm().hash().digest(b"").len(), spec.key_len());
        }
        assert_eq!(HashAlg::Sha1.digest(b"").len(), 20);
    }

    #[test]
    fn algorithms_per_spec_follow_aws() {
        use AsymmetricSpec as A;
        use SigningAlgorithm as S;
        assert_eq!(A::EccNistP256.signing_algorithms(), [S::EcdsaSha256]);
        assert_eq!(A::EccSecgP256k1.signing_algorithms(), [S::EcdsaSha256]);
        assert_eq!(A::EccNistP384.signing_algorithms(), [S::EcdsaSha384]);
        assert_eq!(A::EccNistP521.signing_algorithms(), [S::EcdsaSha512]);
        assert_eq!(A::Rsa3072.signing_algorithms().len(), 6);
        let agreement: Vec<A> = A::ALL
            .iter()
            .copied()
            .filter(|s| s.supports_key_agreement())
            .collect();
        assert_eq!(agreement, [A::EccNistP256, A::EccNistP384, A::EccNistP521]);
        let bits: Vec<Option<usize>> = A::ALL.iter().map(|s| s.rsa_bits()).collect();
        assert_eq!(
            bits,
            [Some(2048), Some(3072), Some(4096), None, None, None, None]
        );
        for spec in DataKeyPairSpec::ALL {
            match spec.asymmetric_spec() {
                Some(asym) => assert_eq!(asym.wire_name(), spec.wire_name()),
                None => assert_eq!(*spec, DataKeyPairSpec::EccNistEdwards25519),
            }
        }
    }

    #[test]
    fn message_debug_shows_lengths_only() {
        let debug = format!("{:?}", Message::Raw(b"secret plan"));
        assert_eq!(debug, "Raw(11 bytes)");
        assert_eq!(
            format!("{:?}", Message::Digest(&[0; 32])),
            "Digest(32 bytes)"
        );
    }
}
