//! The data model of one Regional KMS key. Properties shared by every key of a multi-Region set
//! ([`SharedProps`]) are kept apart from the properties of one Regional key ([`RegionalProps`]),
//! because only the former are ever synchronized between Regions.

use serde::{Deserialize, Serialize};

use crate::error::{validation, KmsError};
use crate::ids::KeyId;

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident, $member:literal { $($(#[$vdoc:meta])* $variant:ident => $wire:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $($(#[$vdoc])* $variant,)* }

        impl $name {
            /// Every value, in the order of the AWS model.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];
            /// Every wire name, in the order of the AWS model.
            pub const WIRE: &'static [&'static str] = &[$($wire,)*];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire,)* }
            }

            /// Parses the wire name; anything else is the AWS enum `ValidationException`.
            pub fn parse(s: &str) -> Result<$name, KmsError> {
                match s {
                    $($wire => Ok($name::$variant),)*
                    _ => Err(validation::not_in_enum(s, $member, Self::WIRE)),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

wire_enum!(
    /// `KeySpec` (the model's enum; which ones can be created is decided by [`KeySpec::is_supported`]).
    KeySpec, "keySpec" {
        Rsa2048 => "RSA_2048",
        Rsa3072 => "RSA_3072",
        Rsa4096 => "RSA_4096",
        EccNistP256 => "ECC_NIST_P256",
        EccNistP384 => "ECC_NIST_P384",
        EccNistP521 => "ECC_NIST_P521",
        EccSecgP256k1 => "ECC_SECG_P256K1",
        SymmetricDefault => "SYMMETRIC_DEFAULT",
        Hmac224 => "HMAC_224",
        Hmac256 => "HMAC_256",
        Hmac384 => "HMAC_384",
        Hmac512 => "HMAC_512",
        Sm2 => "SM2",
        MlDsa44 => "ML_DSA_44",
        MlDsa65 => "ML_DSA_65",
        MlDsa87 => "ML_DSA_87",
        EccNistEdwards25519 => "ECC_NIST_EDWARDS25519",
    }
);

impl KeySpec {
    /// The key specs this build of kmsim can create.
    pub fn is_supported(self) -> bool {
        matches!(self, KeySpec::SymmetricDefault)
    }

    /// Key usages AWS allows for this spec.
    pub fn allowed_usages(self) -> &'static [KeyUsage] {
        use KeyUsage::*;
        match self {
            KeySpec::SymmetricDefault => &[EncryptDecrypt],
            KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => {
                &[GenerateVerifyMac]
            }
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => &[EncryptDecrypt, SignVerify],
            KeySpec::EccNistP256 | KeySpec::EccNistP384 | KeySpec::EccNistP521 => {
                &[SignVerify, KeyAgreement]
            }
            KeySpec::EccSecgP256k1
            | KeySpec::EccNistEdwards25519
            | KeySpec::MlDsa44
            | KeySpec::MlDsa65
            | KeySpec::MlDsa87 => &[SignVerify],
            KeySpec::Sm2 => &[EncryptDecrypt, SignVerify, KeyAgreement],
        }
    }
}

wire_enum!(
    /// `KeyUsage`.
    KeyUsage, "keyUsage" {
        SignVerify => "SIGN_VERIFY",
        EncryptDecrypt => "ENCRYPT_DECRYPT",
        GenerateVerifyMac => "GENERATE_VERIFY_MAC",
        KeyAgreement => "KEY_AGREEMENT",
    }
);

wire_enum!(
    /// `Origin`.
    Origin, "origin" {
        AwsKms => "AWS_KMS",
        External => "EXTERNAL",
        AwsCloudhsm => "AWS_CLOUDHSM",
        ExternalKeyStore => "EXTERNAL_KEY_STORE",
    }
);

wire_enum!(
    /// `KeyState`.
    KeyState, "keyState" {
        Creating => "Creating",
        Enabled => "Enabled",
        Disabled => "Disabled",
        PendingDeletion => "PendingDeletion",
        PendingImport => "PendingImport",
        PendingReplicaDeletion => "PendingReplicaDeletion",
        Unavailable => "Unavailable",
        Updating => "Updating",
    }
);

wire_enum!(
    /// `EncryptionAlgorithmSpec`.
    EncryptionAlgorithm, "encryptionAlgorithm" {
        SymmetricDefault => "SYMMETRIC_DEFAULT",
        RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
        RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
        Sm2Pke => "SM2PKE",
    }
);

wire_enum!(
    /// `DataKeySpec`.
    DataKeySpec, "keySpec" {
        Aes256 => "AES_256",
        Aes128 => "AES_128",
    }
);

impl DataKeySpec {
    /// Length of the generated data key in bytes.
    pub fn byte_len(self) -> usize {
        match self {
            DataKeySpec::Aes256 => 32,
            DataKeySpec::Aes128 => 16,
        }
    }
}

/// One tag of a key (insertion order is kept, as AWS returns it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    /// `TagKey`
    pub key: String,
    /// `TagValue`
    pub value: String,
}

/// One version of a key's material, as stored: wrapped under the Region's domain key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialVersion {
    /// Version number bound into every ciphertext (0 is the first material).
    pub version: u32,
    /// `KeyMaterialId`: 64 lowercase hex characters.
    pub key_material_id: String,
    /// The material wrapped with `kmsim_crypto::wrap_secret` (purpose `key-material`).
    pub wrapped: Vec<u8>,
    /// When this version was created, in milliseconds since the epoch (simulated clock).
    pub created_ms: i64,
}

/// Properties shared by every key of a multi-Region key set (for a single-Region key, simply
/// the key's own cryptographic configuration). Only the primary changes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedProps {
    /// `KeySpec`
    pub key_spec: KeySpec,
    /// `KeyUsage`
    pub key_usage: KeyUsage,
    /// `Origin`
    pub origin: Origin,
    /// `MultiRegion`
    pub multi_region: bool,
    /// Every material version, oldest first.
    pub materials: Vec<MaterialVersion>,
    /// The version new ciphertexts are made with (index into `materials`).
    pub current_version: u32,
}

impl SharedProps {
    /// The material version with this number.
    pub fn material(&self, version: u32) -> Option<&MaterialVersion> {
        self.materials.iter().find(|m| m.version == version)
    }

    /// The material new ciphertexts are made with.
    pub fn current_material(&self) -> Option<&MaterialVersion> {
        self.material(self.current_version)
    }
}

/// Properties of one Regional key; never synchronized between Regions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionalProps {
    /// `CreationDate`, ms since the epoch.
    pub creation_ms: i64,
    /// `Description`
    pub description: String,
    /// `KeyState`
    pub state: KeyState,
    /// `DeletionDate`, ms since the epoch, while `PendingDeletion`.
    pub deletion_ms: Option<i64>,
    /// `PendingDeletionWindowInDays` given to ScheduleKeyDeletion.
    pub pending_window_days: Option<u32>,
    /// The key policy (named `default`), as the caller gave it.
    pub policy: String,
    /// Tags in insertion order.
    pub tags: Vec<Tag>,
}

/// One Regional KMS key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The key ID (the same in every Region for a multi-Region key).
    pub key_id: KeyId,
    /// Properties shared across a multi-Region set.
    pub shared: SharedProps,
    /// Properties of this Regional key.
    pub regional: RegionalProps,
}

impl KeyRecord {
    /// `Enabled` is true exactly when the key state is `Enabled`.
    pub fn enabled(&self) -> bool {
        self.regional.state == KeyState::Enabled
    }
}
