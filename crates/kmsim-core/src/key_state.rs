//! The key-state × operation table (`kms-api.md` §5.1): the one place that decides whether an
//! operation may run on a key in a given state, and with which AWS error it fails.

use crate::error::KmsError;
use crate::key::{KeyState, Origin};

/// Every key-bound KMS operation, grouped by the rows of the AWS key-state table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Operation {
    CancelKeyDeletion,
    CreateAlias,
    CreateGrant,
    Encrypt,
    Decrypt,
    ReEncrypt,
    GenerateDataKey,
    GenerateDataKeyWithoutPlaintext,
    GenerateDataKeyPair,
    GenerateDataKeyPairWithoutPlaintext,
    Sign,
    Verify,
    GenerateMac,
    VerifyMac,
    GetPublicKey,
    DeriveSharedSecret,
    DeleteAlias,
    DescribeKey,
    GetKeyPolicy,
    ListAliases,
    ListGrants,
    ListKeyPolicies,
    ListResourceTags,
    PutKeyPolicy,
    RetireGrant,
    RevokeGrant,
    DeleteImportedKeyMaterial,
    EnableKey,
    DisableKey,
    EnableKeyRotation,
    DisableKeyRotation,
    GetKeyRotationStatus,
    GetParametersForImport,
    ImportKeyMaterial,
    ReplicateKey,
    ScheduleKeyDeletion,
    TagResource,
    UntagResource,
    UpdateKeyDescription,
    /// UpdateAlias checked against the *new* target key.
    UpdateAliasTarget,
    UpdatePrimaryRegion,
    RotateKeyOnDemand,
    ListKeyRotations,
}

impl Operation {
    /// The AWS operation name (used in `InvalidKeyUsageException` messages).
    pub fn name(self) -> &'static str {
        match self {
            Operation::CancelKeyDeletion => "CancelKeyDeletion",
            Operation::CreateAlias => "CreateAlias",
            Operation::CreateGrant => "CreateGrant",
            Operation::Encrypt => "Encrypt",
            Operation::Decrypt => "Decrypt",
            Operation::ReEncrypt => "ReEncrypt",
            Operation::GenerateDataKey => "GenerateDataKey",
            Operation::GenerateDataKeyWithoutPlaintext => "GenerateDataKeyWithoutPlaintext",
            Operation::GenerateDataKeyPair => "GenerateDataKeyPair",
            Operation::GenerateDataKeyPairWithoutPlaintext => "GenerateDataKeyPairWithoutPlaintext",
            Operation::Sign => "Sign",
            Operation::Verify => "Verify",
            Operation::GenerateMac => "GenerateMac",
            Operation::VerifyMac => "VerifyMac",
            Operation::GetPublicKey => "GetPublicKey",
            Operation::DeriveSharedSecret => "DeriveSharedSecret",
            Operation::DeleteAlias => "DeleteAlias",
            Operation::DescribeKey => "DescribeKey",
            Operation::GetKeyPolicy => "GetKeyPolicy",
            Operation::ListAliases => "ListAliases",
            Operation::ListGrants => "ListGrants",
            Operation::ListKeyPolicies => "ListKeyPolicies",
            Operation::ListResourceTags => "ListResourceTags",
            Operation::PutKeyPolicy => "PutKeyPolicy",
            Operation::RetireGrant => "RetireGrant",
            Operation::RevokeGrant => "RevokeGrant",
            Operation::DeleteImportedKeyMaterial => "DeleteImportedKeyMaterial",
            Operation::EnableKey => "EnableKey",
            Operation::DisableKey => "DisableKey",
            Operation::EnableKeyRotation => "EnableKeyRotation",
            Operation::DisableKeyRotation => "DisableKeyRotation",
            Operation::GetKeyRotationStatus => "GetKeyRotationStatus",
            Operation::GetParametersForImport => "GetParametersForImport",
            Operation::ImportKeyMaterial => "ImportKeyMaterial",
            Operation::ReplicateKey => "ReplicateKey",
            Operation::ScheduleKeyDeletion => "ScheduleKeyDeletion",
            Operation::TagResource => "TagResource",
            Operation::UntagResource => "UntagResource",
            Operation::UpdateKeyDescription => "UpdateKeyDescription",
            Operation::UpdateAliasTarget => "UpdateAlias",
            Operation::UpdatePrimaryRegion => "UpdatePrimaryRegion",
            Operation::RotateKeyOnDemand => "RotateKeyOnDemand",
            Operation::ListKeyRotations => "ListKeyRotations",
        }
    }
}

/// The outcome of one cell of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// The operation may run.
    Ok,
    /// Footnote 1: `DisabledException` `<arn> is disabled.`
    Disabled,
    /// Footnote 3: `KMSInvalidStateException` `<arn> is pending deletion.`
    PendingDeletion,
    /// Footnote 4: `KMSInvalidStateException` `<arn> is not pending deletion.`
    NotPendingDeletion,
    /// Footnote 5: `KMSInvalidStateException` `<arn> is pending import.`
    PendingImport,
    /// Footnote 6: `UnsupportedOperationException` `<arn> origin is EXTERNAL which is not valid for this operation.`
    ExternalOrigin,
    /// Footnotes 7–9: `UnsupportedOperationException` for keys without imported material.
    NotImported,
    /// Footnote 11: `KMSInvalidStateException` `<arn> is unavailable.`
    Unavailable,
    /// Footnote 14: `KMSInvalidStateException` `<arn> is creating.`
    Creating,
    /// Footnote 15: `KMSInvalidStateException` `<arn> is updating.`
    Updating,
}

/// Looks up one cell of the table for a key of `origin` in `state`.
pub fn cell(op: Operation, state: KeyState, origin: Origin) -> Cell {
    use KeyState as S;
    use Operation as O;
    let pending = matches!(state, S::PendingDeletion | S::PendingReplicaDeletion);
    let external = origin == Origin::External;
    match op {
        // Work in every state.
        O::DeleteAlias
        | O::DescribeKey
        | O::GetKeyPolicy
        | O::ListAliases
        | O::ListGrants
        | O::ListKeyPolicies
        | O::ListResourceTags
        | O::PutKeyPolicy
        | O::RetireGrant
        | O::RevokeGrant => Cell::Ok,

        O::CancelKeyDeletion => {
            if pending {
                Cell::Ok
            } else {
                Cell::NotPendingDeletion
            }
        }

        O::CreateAlias | O::TagResource | O::UntagResource | O::UpdateKeyDescription => {
            if pending {
                Cell::PendingDeletion
            } else {
                Cell::Ok
            }
        }

        O::UpdateAliasTarget => {
            if pending {
                Cell::PendingDeletion
            } else {
                Cell::Ok
            }
        }

        O::CreateGrant
        | O::Encrypt
        | O::Decrypt
        | O::ReEncrypt
        | O::GenerateDataKey
        | O::GenerateDataKeyWithoutPlaintext
        | O::GenerateDataKeyPair
        | O::GenerateDataKeyPairWithoutPlaintext
        | O::Sign
        | O::Verify
        | O::GenerateMac
        | O::VerifyMac
        | O::GetPublicKey
        | O::DeriveSharedSecret => match state {
            S::Enabled | S::Updating => Cell::Ok,
            S::Disabled => Cell::Disabled,
            S::PendingDeletion | S::PendingReplicaDeletion => Cell::PendingDeletion,
            S::PendingImport => Cell::PendingImport,
            S::Unavailable if op == O::CreateGrant => Cell::Ok,
            S::Unavailable => Cell::Unavailable,
            S::Creating => Cell::Creating,
        },

        O::DeleteImportedKeyMaterial => match state {
            S::Creating => Cell::Creating,
            S::Updating => Cell::Updating,
            _ if !external => Cell::NotImported,
            _ => Cell::Ok,
        },

        O::EnableKey | O::DisableKey => match state {
            S::Enabled | S::Disabled | S::Unavailable => Cell::Ok,
            S::PendingDeletion | S::PendingReplicaDeletion => Cell::PendingDeletion,
            S::PendingImport => Cell::PendingImport,
            S::Creating => Cell::Creating,
            S::Updating => Cell::Updating,
        },

        O::EnableKeyRotation | O::DisableKeyRotation | O::RotateKeyOnDemand => match state {
            S::PendingImport => Cell::ExternalOrigin,
            S::Creating => Cell::Creating,
            S::Unavailable => Cell::NotImported,
            _ if external => Cell::ExternalOrigin,
            S::Disabled => Cell::Disabled,
            S::PendingDeletion | S::PendingReplicaDeletion => Cell::PendingDeletion,
            S::Enabled | S::Updating => Cell::Ok,
        },

        O::GetKeyRotationStatus | O::ListKeyRotations => match state {
            S::PendingImport => Cell::ExternalOrigin,
            S::Unavailable => Cell::NotImported,
            _ => Cell::Ok,
        },

        O::GetParametersForImport | O::ImportKeyMaterial => match state {
            S::Creating => Cell::Creating,
            S::Updating if op == O::GetParametersForImport => Cell::Updating,
            S::Unavailable => Cell::NotImported,
            _ if !external => Cell::NotImported,
            S::PendingDeletion | S::PendingReplicaDeletion => Cell::PendingDeletion,
            _ => Cell::Ok,
        },

        O::ReplicateKey | O::UpdatePrimaryRegion => match state {
            S::Enabled => Cell::Ok,
            S::Updating if op == O::UpdatePrimaryRegion => Cell::Ok,
            S::Updating => Cell::Updating,
            S::Disabled => Cell::Disabled,
            S::PendingDeletion | S::PendingReplicaDeletion => Cell::PendingDeletion,
            S::PendingImport => Cell::PendingImport,
            S::Creating => Cell::Creating,
            S::Unavailable => Cell::Unavailable,
        },

        O::ScheduleKeyDeletion => match state {
            S::PendingDeletion | S::PendingReplicaDeletion => Cell::PendingDeletion,
            S::Updating => Cell::Updating,
            _ => Cell::Ok,
        },
    }
}

/// Checks the table and turns a failing cell into the AWS error for the key `arn`.
pub fn check(op: Operation, state: KeyState, origin: Origin, arn: &str) -> Result<(), KmsError> {
    match cell(op, state, origin) {
        Cell::Ok => Ok(()),
        Cell::Disabled => Err(KmsError::Disabled(format!("{arn} is disabled."))),
        Cell::PendingDeletion => Err(KmsError::InvalidState(format!(
            "{arn} is pending deletion."
        ))),
        Cell::NotPendingDeletion => Err(KmsError::InvalidState(format!(
            "{arn} is not pending deletion."
        ))),
        Cell::PendingImport => Err(KmsError::InvalidState(format!("{arn} is pending import."))),
        Cell::ExternalOrigin => Err(KmsError::UnsupportedOperation(format!(
            "{arn} origin is EXTERNAL which is not valid for this operation."
        ))),
        Cell::NotImported => Err(KmsError::UnsupportedOperation(format!(
            "{arn} origin is {} which is not valid for this operation.",
            origin.as_str()
        ))),
        Cell::Unavailable => Err(KmsError::InvalidState(format!("{arn} is unavailable."))),
        Cell::Creating => Err(KmsError::InvalidState(format!("{arn} is creating."))),
        Cell::Updating => Err(KmsError::InvalidState(format!("{arn} is updating."))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    #[test]
    fn symmetric_lifecycle_rows() {
        use KeyState::*;
        use Operation::*;
        let o = Origin::AwsKms;
        assert_eq!(check(Encrypt, Enabled, o, ARN), Ok(()));
        assert_eq!(
            check(Encrypt, Disabled, o, ARN),
            Err(KmsError::Disabled(format!("{ARN} is disabled.")))
        );
        assert_eq!(
            check(Decrypt, PendingDeletion, o, ARN),
            Err(KmsError::InvalidState(format!(
                "{ARN} is pending deletion."
            )))
        );
        assert_eq!(
            check(CancelKeyDeletion, Enabled, o, ARN),
            Err(KmsError::InvalidState(format!(
                "{ARN} is not pending deletion."
            )))
        );
        assert_eq!(check(CancelKeyDeletion, PendingDeletion, o, ARN), Ok(()));
        assert_eq!(
            check(ScheduleKeyDeletion, PendingDeletion, o, ARN),
            Err(KmsError::InvalidState(format!(
                "{ARN} is pending deletion."
            )))
        );
        assert_eq!(check(DescribeKey, PendingDeletion, o, ARN), Ok(()));
        assert_eq!(check(PutKeyPolicy, PendingDeletion, o, ARN), Ok(()));
        assert_eq!(
            check(TagResource, PendingDeletion, o, ARN)
                .unwrap_err()
                .code(),
            "KMSInvalidStateException"
        );
        assert_eq!(check(EnableKey, Disabled, o, ARN), Ok(()));
        assert_eq!(
            check(DisableKey, PendingDeletion, o, ARN)
                .unwrap_err()
                .code(),
            "KMSInvalidStateException"
        );
        assert_eq!(
            check(Encrypt, Creating, o, ARN),
            Err(KmsError::InvalidState(format!("{ARN} is creating.")))
        );
        assert_eq!(check(Encrypt, Updating, o, ARN), Ok(()));
        assert_eq!(
            check(EnableKey, Updating, o, ARN),
            Err(KmsError::InvalidState(format!("{ARN} is updating.")))
        );
    }

    #[test]
    fn every_cell_is_decided_without_panicking() {
        let ops = [
            Operation::CancelKeyDeletion,
            Operation::CreateAlias,
            Operation::CreateGrant,
            Operation::Encrypt,
            Operation::DescribeKey,
            Operation::DeleteImportedKeyMaterial,
            Operation::EnableKey,
            Operation::EnableKeyRotation,
            Operation::GetKeyRotationStatus,
            Operation::GetParametersForImport,
            Operation::ImportKeyMaterial,
            Operation::ReplicateKey,
            Operation::ScheduleKeyDeletion,
            Operation::TagResource,
            Operation::UpdateAliasTarget,
            Operation::UpdatePrimaryRegion,
        ];
        for op in ops {
            for state in KeyState::ALL {
                for origin in [Origin::AwsKms, Origin::External] {
                    let r = check(op, *state, origin, ARN);
                    if let Err(e) = r {
                        assert!(e.message().starts_with(ARN), "{op:?} {state:?}: {e}");
                    }
                }
            }
        }
    }
}
