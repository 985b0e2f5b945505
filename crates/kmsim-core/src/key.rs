//! The data model of one Regional KMS key. Properties shared by every key of a multi-Region set
//! ([`SharedProps`]) are kept apart from the properties of one Regional key ([`RegionalProps`]),
//! because only the former are ever synchronized between Regions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{validation, KmsError};
use crate::ids::{KeyId, Region};

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident, $member:literal { $($(#[$vdoc:meta])* $variant:ident => $wire:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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

/// The family of a key spec, which decides its material and its operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFamily {
    /// `SYMMETRIC_DEFAULT`: 256-bit AES-GCM material.
    Symmetric,
    /// `RSA_*`.
    Rsa,
    /// `ECC_*` (NIST curves and secp256k1).
    Ecc,
    /// `HMAC_*`.
    Hmac,
    /// Specs kmsim knows by name but cannot create (SM2, ML-DSA, Ed25519).
    Unsupported,
}

impl KeySpec {
    /// The family of this spec.
    pub fn family(self) -> KeyFamily {
        match self {
            KeySpec::SymmetricDefault => KeyFamily::Symmetric,
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => KeyFamily::Rsa,
            KeySpec::EccNistP256
            | KeySpec::EccNistP384
            | KeySpec::EccNistP521
            | KeySpec::EccSecgP256k1 => KeyFamily::Ecc,
            KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512 => {
                KeyFamily::Hmac
            }
            KeySpec::Sm2
            | KeySpec::MlDsa44
            | KeySpec::MlDsa65
            | KeySpec::MlDsa87
            | KeySpec::EccNistEdwards25519 => KeyFamily::Unsupported,
        }
    }

    /// The key specs this build of kmsim can create.
    pub fn is_supported(self) -> bool {
        self.family() != KeyFamily::Unsupported
    }

    /// The kind of key an alias may be moved between with UpdateAlias: symmetric, asymmetric
    /// (RSA and ECC alike) or HMAC.
    pub fn alias_type(self) -> &'static str {
        match self.family() {
            KeyFamily::Symmetric => "symmetric",
            KeyFamily::Hmac => "hmac",
            KeyFamily::Rsa | KeyFamily::Ecc | KeyFamily::Unsupported => "asymmetric",
        }
    }

    /// True for RSA and ECC specs (they have a public key).
    pub fn is_asymmetric(self) -> bool {
        matches!(self.family(), KeyFamily::Rsa | KeyFamily::Ecc)
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

    /// `EncryptionAlgorithms` of a key of this spec with `usage` (empty unless ENCRYPT_DECRYPT).
    pub fn encryption_algorithms(self, usage: KeyUsage) -> &'static [EncryptionAlgorithm] {
        use EncryptionAlgorithm::*;
        match (usage, self.family()) {
            (KeyUsage::EncryptDecrypt, KeyFamily::Symmetric) => &[SymmetricDefault],
            (KeyUsage::EncryptDecrypt, KeyFamily::Rsa) => &[RsaesOaepSha1, RsaesOaepSha256],
            _ => &[],
        }
    }

    /// `SigningAlgorithms` of a key of this spec with `usage` (empty unless SIGN_VERIFY).
    pub fn signing_algorithms(self, usage: KeyUsage) -> &'static [SigningAlgorithm] {
        use SigningAlgorithm::*;
        if usage != KeyUsage::SignVerify {
            return &[];
        }
        match self {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => &[
                RsassaPssSha256,
                RsassaPssSha384,
                RsassaPssSha512,
                RsassaPkcs1V15Sha256,
                RsassaPkcs1V15Sha384,
                RsassaPkcs1V15Sha512,
            ],
            KeySpec::EccNistP256 | KeySpec::EccSecgP256k1 => &[EcdsaSha256],
            KeySpec::EccNistP384 => &[EcdsaSha384],
            KeySpec::EccNistP521 => &[EcdsaSha512],
            _ => &[],
        }
    }

    /// `KeyAgreementAlgorithms` (empty unless KEY_AGREEMENT, which only the NIST curves allow).
    pub fn key_agreement_algorithms(self, usage: KeyUsage) -> &'static [KeyAgreementAlgorithm] {
        let agrees = usage == KeyUsage::KeyAgreement
            && self.family() == KeyFamily::Ecc
            && self.allowed_usages().contains(&KeyUsage::KeyAgreement);
        if agrees {
            &[KeyAgreementAlgorithm::Ecdh]
        } else {
            &[]
        }
    }

    /// `MacAlgorithms` (empty unless GENERATE_VERIFY_MAC).
    pub fn mac_algorithms(self, usage: KeyUsage) -> &'static [MacAlgorithm] {
        if usage != KeyUsage::GenerateVerifyMac {
            return &[];
        }
        match self {
            KeySpec::Hmac224 => &[MacAlgorithm::HmacSha224],
            KeySpec::Hmac256 => &[MacAlgorithm::HmacSha256],
            KeySpec::Hmac384 => &[MacAlgorithm::HmacSha384],
            KeySpec::Hmac512 => &[MacAlgorithm::HmacSha512],
            _ => &[],
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

wire_enum!(
    /// `SigningAlgorithmSpec`.
    SigningAlgorithm, "signingAlgorithm" {
        RsassaPssSha256 => "RSASSA_PSS_SHA_256",
        RsassaPssSha384 => "RSASSA_PSS_SHA_384",
        RsassaPssSha512 => "RSASSA_PSS_SHA_512",
        RsassaPkcs1V15Sha256 => "RSASSA_PKCS1_V1_5_SHA_256",
        RsassaPkcs1V15Sha384 => "RSASSA_PKCS1_V1_5_SHA_384",
        RsassaPkcs1V15Sha512 => "RSASSA_PKCS1_V1_5_SHA_512",
        EcdsaSha256 => "ECDSA_SHA_256",
        EcdsaSha384 => "ECDSA_SHA_384",
        EcdsaSha512 => "ECDSA_SHA_512",
        Sm2Dsa => "SM2DSA",
        MlDsaShake256 => "ML_DSA_SHAKE_256",
        Ed25519Sha512 => "ED25519_SHA_512",
        Ed25519PhSha512 => "ED25519_PH_SHA_512",
    }
);

wire_enum!(
    /// `MacAlgorithmSpec`.
    MacAlgorithm, "macAlgorithm" {
        HmacSha224 => "HMAC_SHA_224",
        HmacSha256 => "HMAC_SHA_256",
        HmacSha384 => "HMAC_SHA_384",
        HmacSha512 => "HMAC_SHA_512",
    }
);

wire_enum!(
    /// `MessageType` of Sign and Verify.
    MessageType, "messageType" {
        Raw => "RAW",
        Digest => "DIGEST",
        ExternalMu => "EXTERNAL_MU",
    }
);

wire_enum!(
    /// `KeyAgreementAlgorithmSpec`.
    KeyAgreementAlgorithm, "keyAgreementAlgorithm" {
        Ecdh => "ECDH",
    }
);

wire_enum!(
    /// `DataKeyPairSpec`.
    DataKeyPairSpec, "keyPairSpec" {
        Rsa2048 => "RSA_2048",
        Rsa3072 => "RSA_3072",
        Rsa4096 => "RSA_4096",
        EccNistP256 => "ECC_NIST_P256",
        EccNistP384 => "ECC_NIST_P384",
        EccNistP521 => "ECC_NIST_P521",
        EccSecgP256k1 => "ECC_SECG_P256K1",
        Sm2 => "SM2",
        EccNistEdwards25519 => "ECC_NIST_EDWARDS25519",
    }
);

wire_enum!(
    /// `ExpirationModelType` of imported key material.
    ExpirationModel, "expirationModel" {
        KeyMaterialExpires => "KEY_MATERIAL_EXPIRES",
        KeyMaterialDoesNotExpire => "KEY_MATERIAL_DOES_NOT_EXPIRE",
    }
);

wire_enum!(
    /// `ImportType` of ImportKeyMaterial.
    ImportType, "importType" {
        NewKeyMaterial => "NEW_KEY_MATERIAL",
        ExistingKeyMaterial => "EXISTING_KEY_MATERIAL",
    }
);

wire_enum!(
    /// `AlgorithmSpec`: how imported key material is wrapped.
    WrappingAlgorithm, "wrappingAlgorithm" {
        RsaesPkcs1V15 => "RSAES_PKCS1_V1_5",
        RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
        RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
        RsaAesKeyWrapSha1 => "RSA_AES_KEY_WRAP_SHA_1",
        RsaAesKeyWrapSha256 => "RSA_AES_KEY_WRAP_SHA_256",
        Sm2Pke => "SM2PKE",
    }
);

wire_enum!(
    /// `WrappingKeySpec` of GetParametersForImport.
    WrappingKeySpec, "wrappingKeySpec" {
        Rsa2048 => "RSA_2048",
        Rsa3072 => "RSA_3072",
        Rsa4096 => "RSA_4096",
        Sm2 => "SM2",
    }
);

wire_enum!(
    /// `KeyMaterialState` in ListKeyRotations.
    KeyMaterialState, "keyMaterialState" {
        NonCurrent => "NON_CURRENT",
        Current => "CURRENT",
        PendingRotation => "PENDING_ROTATION",
        PendingMultiRegionImportAndRotation => "PENDING_MULTI_REGION_IMPORT_AND_ROTATION",
    }
);

wire_enum!(
    /// `ImportState` in ListKeyRotations.
    ImportState, "importState" {
        Imported => "IMPORTED",
        PendingImport => "PENDING_IMPORT",
    }
);

wire_enum!(
    /// `RotationType`.
    RotationType, "rotationType" {
        Automatic => "AUTOMATIC",
        OnDemand => "ON_DEMAND",
    }
);

wire_enum!(
    /// `IncludeKeyMaterial` of ListKeyRotations.
    IncludeKeyMaterial, "includeKeyMaterial" {
        AllKeyMaterial => "ALL_KEY_MATERIAL",
        RotationsOnly => "ROTATIONS_ONLY",
    }
);

wire_enum!(
    /// `GrantOperation`.
    GrantOperation, "operations" {
        Decrypt => "Decrypt",
        Encrypt => "Encrypt",
        GenerateDataKey => "GenerateDataKey",
        GenerateDataKeyWithoutPlaintext => "GenerateDataKeyWithoutPlaintext",
        ReEncryptFrom => "ReEncryptFrom",
        ReEncryptTo => "ReEncryptTo",
        Sign => "Sign",
        Verify => "Verify",
        GetPublicKey => "GetPublicKey",
        CreateGrant => "CreateGrant",
        RetireGrant => "RetireGrant",
        DescribeKey => "DescribeKey",
        GenerateDataKeyPair => "GenerateDataKeyPair",
        GenerateDataKeyPairWithoutPlaintext => "GenerateDataKeyPairWithoutPlaintext",
        GenerateMac => "GenerateMac",
        VerifyMac => "VerifyMac",
        DeriveSharedSecret => "DeriveSharedSecret",
    }
);

impl GrantOperation {
    /// True when a grant on a key of `spec` with `usage` may allow this operation (AWS rejects
    /// grants for operations the key cannot perform).
    pub fn valid_for(self, spec: KeySpec, usage: KeyUsage) -> bool {
        use GrantOperation::*;
        match self {
            CreateGrant | RetireGrant | DescribeKey => true,
            Encrypt | Decrypt | ReEncryptFrom | ReEncryptTo => usage == KeyUsage::EncryptDecrypt,
            GenerateDataKey
            | GenerateDataKeyWithoutPlaintext
            | GenerateDataKeyPair
            | GenerateDataKeyPairWithoutPlaintext => spec == KeySpec::SymmetricDefault,
            Sign | Verify => usage == KeyUsage::SignVerify,
            GetPublicKey => spec.is_asymmetric(),
            GenerateMac | VerifyMac => usage == KeyUsage::GenerateVerifyMac,
            DeriveSharedSecret => usage == KeyUsage::KeyAgreement,
        }
    }

    /// True for operations that take an encryption context, the only ones a grant constraint
    /// can apply to.
    pub fn takes_encryption_context(self) -> bool {
        use GrantOperation::*;
        matches!(
            self,
            Encrypt
                | Decrypt
                | ReEncryptFrom
                | ReEncryptTo
                | GenerateDataKey
                | GenerateDataKeyWithoutPlaintext
                | GenerateDataKeyPair
                | GenerateDataKeyPairWithoutPlaintext
        )
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

/// How a material version became the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    /// When it became current, in ms (simulated clock).
    pub date_ms: i64,
    /// Automatic or on demand.
    pub kind: RotationType,
}

/// One version of a key's material as every Region of a key set knows it: its identity, not
/// the material (which each Region stores wrapped under its own domain key, see
/// [`RegionalMaterial`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaterialInfo {
    /// Version number bound into every ciphertext (0 is the first material).
    pub version: u32,
    /// `KeyMaterialId`: 64 lowercase hex characters, a commitment to the material
    /// (`kmsim_crypto::material_commitment` over key ID and material), made where the material
    /// was generated or imported, so any Region can check that it is given the same material
    /// (the synchronizer's receiver does, before it stores any). A version's id never changes.
    pub key_material_id: String,
    /// When this version was created, in ms since the epoch (simulated clock).
    pub created_ms: i64,
    /// How it became current; `None` for the key's first material and for a version that is
    /// not current yet.
    pub rotation: Option<Rotation>,
}

/// The automatic-rotation setting (a shared property of a multi-Region key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationConfig {
    /// `KeyRotationEnabled` as set by Enable/DisableKeyRotation.
    pub enabled: bool,
    /// `RotationPeriodInDays` (90..=2560, default 365).
    pub period_days: u32,
    /// When automatic rotation fires next (ms, simulated clock), while enabled.
    pub next_rotation_ms: Option<i64>,
    /// Start of the current automatic period: when rotation was enabled or last rotated
    /// automatically. A new period length counts from here.
    pub base_ms: Option<i64>,
    /// On-demand rotations performed so far (AWS allows [`MAX_ON_DEMAND_ROTATIONS`]).
    pub on_demand_count: u32,
    /// When the on-demand rotation still in progress started (a multi-Region rotation waits
    /// for every replica to hold the new material).
    pub on_demand_started_ms: Option<i64>,
}

/// The default `RotationPeriodInDays`.
pub const DEFAULT_ROTATION_PERIOD_DAYS: u32 = 365;
/// On-demand rotations AWS allows per key (`docs/AWS-BEHAVIOUR.md` §7.4: 25 in the current API Reference).
pub const MAX_ON_DEMAND_ROTATIONS: u32 = 25;

impl Default for RotationConfig {
    fn default() -> Self {
        RotationConfig {
            enabled: false,
            period_days: DEFAULT_ROTATION_PERIOD_DAYS,
            next_rotation_ms: None,
            base_ms: None,
            on_demand_count: 0,
            on_demand_started_ms: None,
        }
    }
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
    /// The multi-Region set this key belongs to (`MultiRegion` is true exactly when set).
    pub mrk: Option<MultiRegion>,
    /// Every material version, oldest first. Versions above `current_version` are pending
    /// rotation (imported material waiting for RotateKeyOnDemand).
    pub materials: Vec<MaterialInfo>,
    /// The version new ciphertexts are made with; `None` before a first import.
    pub current_version: Option<u32>,
    /// DER SubjectPublicKeyInfo of an asymmetric key.
    pub public_key: Option<Vec<u8>>,
    /// Automatic and on-demand rotation (symmetric AWS_KMS keys only).
    pub rotation: RotationConfig,
}

impl SharedProps {
    /// `MultiRegion`.
    pub fn is_multi_region(&self) -> bool {
        self.mrk.is_some()
    }

    /// The material version with this number.
    pub fn material(&self, version: u32) -> Option<&MaterialInfo> {
        self.materials.iter().find(|m| m.version == version)
    }

    /// The material new ciphertexts are made with.
    pub fn current_material(&self) -> Option<&MaterialInfo> {
        self.current_version.and_then(|v| self.material(v))
    }

    /// The material version waiting to become current, if any.
    pub fn pending_material(&self) -> Option<&MaterialInfo> {
        let current = self.current_version?;
        self.materials.iter().find(|m| m.version > current)
    }

    /// The version number the next material gets.
    pub fn next_version(&self) -> u32 {
        self.materials
            .iter()
            .map(|m| m.version + 1)
            .max()
            .unwrap_or(0)
    }

    /// `KeyMaterialState` of one version.
    pub fn material_state(&self, version: u32) -> KeyMaterialState {
        match self.current_version {
            Some(c) if version == c => KeyMaterialState::Current,
            Some(c) if version < c => KeyMaterialState::NonCurrent,
            _ => KeyMaterialState::PendingRotation,
        }
    }
}

/// The multi-Region set of a key: who is primary, which Regions hold replicas, and the
/// (epoch, version) that orders every change of the shared properties. Shared: every related
/// key holds the primary's view as of the last synchronization it applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiRegion {
    /// The Region of the primary key.
    pub primary: Region,
    /// The Regions of the replicas, sorted.
    pub replicas: Vec<Region>,
    /// The primary epoch: bumped by every primary hand-over (UpdatePrimaryRegion), so a
    /// demoted primary's changes can never win over the new primary's.
    pub epoch: u64,
    /// The shared-property version within the epoch: bumped by every change on the primary.
    pub version: u64,
}

impl MultiRegion {
    /// `(epoch, version)`: a replica applies a synchronization only when it is newer.
    pub fn stamp(&self) -> (u64, u64) {
        (self.epoch, self.version)
    }

    /// Every Region of the set.
    pub fn regions(&self) -> impl Iterator<Item = &Region> {
        std::iter::once(&self.primary).chain(self.replicas.iter())
    }
}

/// The Regional properties ReplicateKey gives a new replica (never copied from the primary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaSpec {
    /// `Description`
    pub description: String,
    /// `Policy` (the default policy of the replica's Region when the request had none).
    pub policy: String,
    /// `Tags`
    pub tags: Vec<Tag>,
}

/// A primary hand-over in flight on the old primary (UpdatePrimaryRegion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    /// The Region being promoted.
    pub to: Region,
    /// The epoch the new primary takes.
    pub epoch: u64,
    /// The state to return to when the hand-over ends.
    pub previous_state: KeyState,
}

/// A hand-over taken by a new primary, waiting for the old primary to acknowledge it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promoted {
    /// The old primary's Region.
    pub from: Region,
    /// The epoch this Region took.
    pub epoch: u64,
    /// The state to return to when the old primary has acknowledged.
    pub previous_state: KeyState,
}

/// The synchronizer's Region-local bookkeeping of one multi-Region key. It is replicated
/// inside the Region (so a leader change or a restart loses nothing) and never crosses
/// Regions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncBook {
    /// On the primary: the newest (epoch, version) each replica Region acknowledged.
    pub acked: BTreeMap<Region, (u64, u64)>,
    /// On the primary: replicas ReplicateKey asked for that their Region has not created yet.
    pub creating: BTreeMap<Region, ReplicaSpec>,
    /// On an old primary: the hand-over still to be delivered.
    pub handover: Option<Handover>,
    /// On a new primary: the hand-over it took, until the old primary acknowledges the new
    /// epoch (the key is `Updating` until then, as the old primary is).
    pub promoted: Option<Promoted>,
    /// On a replica: the highest epoch of a promotion it refused; it never accepts a promotion
    /// at or below it, so a delayed copy of a refused promotion cannot make a second primary.
    pub promote_fence: u64,
    /// On the primary of an EXTERNAL key: the KeyMaterialIds each replica Region imported.
    pub replica_imports: BTreeMap<Region, std::collections::BTreeSet<String>>,
}

/// How imported material was imported into one Regional key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedMaterial {
    /// `ExpirationModel`
    pub expiration_model: ExpirationModel,
    /// `ValidTo` in ms, when the material expires.
    pub valid_to_ms: Option<i64>,
    /// `KeyMaterialDescription`
    pub description: Option<String>,
}

/// One material version as this Region stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegionalMaterial {
    /// The material wrapped under this Region's domain key (`kmsim_crypto::wrap_secret`,
    /// purpose `key-material`, bound to the Region, key ID and version).
    pub wrapped: Vec<u8>,
    /// For EXTERNAL keys: the terms of the import into this Regional key.
    pub import: Option<ImportedMaterial>,
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
    /// This Region's copy of each material version it holds, by version. For an EXTERNAL key a
    /// version without an entry is pending import here.
    pub materials: BTreeMap<u32, RegionalMaterial>,
    /// The synchronizer's bookkeeping (multi-Region keys only).
    pub sync: SyncBook,
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

    /// The material this Region holds for `version`, with its shared description.
    pub fn material(&self, version: u32) -> Option<(&MaterialInfo, &RegionalMaterial)> {
        let info = self.shared.material(version)?;
        let regional = self.regional.materials.get(&version)?;
        Some((info, regional))
    }

    /// The current material, when this Region holds it.
    pub fn current_material(&self) -> Option<(&MaterialInfo, &RegionalMaterial)> {
        self.material(self.shared.current_version?)
    }

    /// True when this Region holds the material of every version up to the current one: an
    /// EXTERNAL key is usable (`Enabled`) only then.
    pub fn has_all_current_material(&self) -> bool {
        match self.shared.current_version {
            None => false,
            Some(c) => self
                .shared
                .materials
                .iter()
                .filter(|m| m.version <= c)
                .all(|m| self.regional.materials.contains_key(&m.version)),
        }
    }
}
