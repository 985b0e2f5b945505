//! The key-state × operation table (`docs/AWS-BEHAVIOUR.md` §6): the one place that decides whether an
//! operation may run on a key in a given state, and with which AWS error it fails.

use crate::error::KmsError;
use crate::key::{KeyState, Origin};

/// Declares [`Operation`], its AWS names and [`Operation::ALL`] from one list, so that a
/// variant cannot lack a name or be left out of the list tests iterate over. A variant is named
/// after its AWS operation unless `= "Name"` says otherwise.
macro_rules! key_operations {
    ($( $(#[$doc:meta])* $variant:ident $(= $name:literal)?, )*) => {
        /// Every key-bound KMS operation, grouped by the rows of the AWS key-state table.
        /// `kmsim-node` checks in a test that every operation it serves is one of these or is
        /// listed there as not bound to a key (CreateKey, ListKeys, …).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum Operation {
            $( $(#[$doc])* $variant, )*
        }

        impl Operation {
            /// Every operation, in declaration order.
            pub const ALL: &'static [Operation] = &[$( Operation::$variant, )*];

            /// The AWS operation name (used in `InvalidKeyUsageException` messages).
            pub fn name(self) -> &'static str {
                match self {
                    $( Operation::$variant => key_operations!(@name $variant $($name)?), )*
                }
            }
        }
    };
    (@name $variant:ident) => { stringify!($variant) };
    (@name $variant:ident $name:literal) => { $name };
}

key_operations! {
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
    UpdateAliasTarget = "UpdateAlias",
    UpdatePrimaryRegion,
    RotateKeyOnDemand,
    ListKeyRotations,
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

        O::RotateKeyOnDemand => match state {
            // Imported material rotates on demand too (after a NEW_KEY_MATERIAL import).
            S::Enabled => Cell::Ok,
            S::Disabled => Cell::Disabled,
            S::PendingDeletion | S::PendingReplicaDeletion => Cell::PendingDeletion,
            S::PendingImport => Cell::PendingImport,
            S::Creating => Cell::Creating,
            // A primary hand-over fences every shared-property change, rotation included.
            S::Updating => Cell::Updating,
            S::Unavailable => Cell::Unavailable,
        },

        O::EnableKeyRotation | O::DisableKeyRotation => match state {
            S::PendingImport => Cell::ExternalOrigin,
            S::Creating => Cell::Creating,
            S::Unavailable => Cell::NotImported,
            _ if external => Cell::ExternalOrigin,
            S::Disabled => Cell::Disabled,
            S::PendingDeletion | S::PendingReplicaDeletion => Cell::PendingDeletion,
            S::Enabled | S::Updating => Cell::Ok,
        },

        // Lists the key's materials in every state (imported keys included).
        O::ListKeyRotations => Cell::Ok,

        O::GetKeyRotationStatus => match state {
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
        for &op in Operation::ALL {
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

    /// §6 of docs/AWS-BEHAVIOUR.md, cell by cell. Columns: Enabled, Disabled, PendingDeletion,
    /// PendingReplicaDeletion, PendingImport, Creating, Updating. Cells: `ok`; `1` Disabled;
    /// `3` pending deletion; `4` not pending deletion; `5` pending import; `6` origin EXTERNAL;
    /// `9` origin not valid (no imported material); `14` creating; `15` updating.
    const TABLE: &[(Operation, Origin, [&str; 7])] = {
        use Operation::*;
        const K: Origin = Origin::AwsKms;
        const X: Origin = Origin::External;
        &[
            (CancelKeyDeletion, K, ["4", "4", "ok", "ok", "4", "4", "4"]),
            (CreateAlias, K, ["ok", "ok", "3", "3", "ok", "ok", "ok"]),
            (CreateGrant, K, ["ok", "1", "3", "3", "5", "14", "ok"]),
            (Encrypt, K, ["ok", "1", "3", "3", "5", "14", "ok"]),
            (Decrypt, K, ["ok", "1", "3", "3", "5", "14", "ok"]),
            (ReEncrypt, K, ["ok", "1", "3", "3", "5", "14", "ok"]),
            (GenerateDataKey, K, ["ok", "1", "3", "3", "5", "14", "ok"]),
            (
                GenerateDataKeyWithoutPlaintext,
                K,
                ["ok", "1", "3", "3", "5", "14", "ok"],
            ),
            (
                GenerateDataKeyPair,
                K,
                ["ok", "1", "3", "3", "5", "14", "ok"],
            ),
            (
                GenerateDataKeyPairWithoutPlaintext,
                K,
                ["ok", "1", "3", "3", "5", "14", "ok"],
            ),
            (Sign, K, ["ok", "1", "3", "3", "5", "14", "ok"]),
            (Verify, K, ["ok", "1", "3", "3", "5", "14", "ok"]),
            (GenerateMac, K, ["ok", "1", "3", "3", "5", "14", "ok"]),
            (VerifyMac, K, ["ok", "1", "3", "3", "5", "14", "ok"]),
            (GetPublicKey, K, ["ok", "1", "3", "3", "5", "14", "ok"]),
            (
                DeriveSharedSecret,
                K,
                ["ok", "1", "3", "3", "5", "14", "ok"],
            ),
            (DeleteAlias, K, ["ok"; 7]),
            (DescribeKey, K, ["ok"; 7]),
            (GetKeyPolicy, K, ["ok"; 7]),
            (ListAliases, K, ["ok"; 7]),
            (ListGrants, K, ["ok"; 7]),
            (ListKeyPolicies, K, ["ok"; 7]),
            (ListResourceTags, K, ["ok"; 7]),
            (PutKeyPolicy, K, ["ok"; 7]),
            (RetireGrant, K, ["ok"; 7]),
            (RevokeGrant, K, ["ok"; 7]),
            (
                DeleteImportedKeyMaterial,
                K,
                ["9", "9", "9", "9", "9", "14", "15"],
            ),
            (
                DeleteImportedKeyMaterial,
                X,
                ["ok", "ok", "ok", "ok", "ok", "14", "15"],
            ),
            (EnableKey, K, ["ok", "ok", "3", "3", "5", "14", "15"]),
            (DisableKey, K, ["ok", "ok", "3", "3", "5", "14", "15"]),
            (EnableKeyRotation, K, ["ok", "1", "3", "3", "6", "14", "ok"]),
            (
                DisableKeyRotation,
                K,
                ["ok", "1", "3", "3", "6", "14", "ok"],
            ),
            (EnableKeyRotation, X, ["6", "6", "6", "6", "6", "14", "6"]),
            (
                GetKeyRotationStatus,
                K,
                ["ok", "ok", "ok", "ok", "6", "ok", "ok"],
            ),
            (RotateKeyOnDemand, K, ["ok", "1", "3", "3", "5", "14", "15"]),
            (RotateKeyOnDemand, X, ["ok", "1", "3", "3", "5", "14", "15"]),
            (ListKeyRotations, K, ["ok"; 7]),
            (ListKeyRotations, X, ["ok"; 7]),
            (
                GetKeyRotationStatus,
                X,
                ["ok", "ok", "ok", "ok", "6", "ok", "ok"],
            ),
            (
                GetParametersForImport,
                K,
                ["9", "9", "9", "9", "9", "14", "15"],
            ),
            (
                GetParametersForImport,
                X,
                ["ok", "ok", "3", "3", "ok", "14", "15"],
            ),
            (ImportKeyMaterial, K, ["9", "9", "9", "9", "9", "14", "9"]),
            (
                ImportKeyMaterial,
                X,
                ["ok", "ok", "3", "3", "ok", "14", "ok"],
            ),
            (ReplicateKey, K, ["ok", "1", "3", "3", "5", "14", "15"]),
            (
                ScheduleKeyDeletion,
                K,
                ["ok", "ok", "3", "3", "ok", "ok", "15"],
            ),
            (TagResource, K, ["ok", "ok", "3", "3", "ok", "ok", "ok"]),
            (UntagResource, K, ["ok", "ok", "3", "3", "ok", "ok", "ok"]),
            (
                UpdateKeyDescription,
                K,
                ["ok", "ok", "3", "3", "ok", "ok", "ok"],
            ),
            (
                UpdateAliasTarget,
                K,
                ["ok", "ok", "3", "3", "ok", "ok", "ok"],
            ),
            (
                UpdatePrimaryRegion,
                K,
                ["ok", "1", "3", "3", "5", "14", "ok"],
            ),
        ]
    };

    const STATES: [KeyState; 7] = [
        KeyState::Enabled,
        KeyState::Disabled,
        KeyState::PendingDeletion,
        KeyState::PendingReplicaDeletion,
        KeyState::PendingImport,
        KeyState::Creating,
        KeyState::Updating,
    ];

    fn expected(cell: &str, origin: Origin) -> Result<(), KmsError> {
        let a = ARN;
        match cell {
            "ok" => Ok(()),
            "1" => Err(KmsError::Disabled(format!("{a} is disabled."))),
            "3" => Err(KmsError::InvalidState(format!("{a} is pending deletion."))),
            "4" => Err(KmsError::InvalidState(format!(
                "{a} is not pending deletion."
            ))),
            "5" => Err(KmsError::InvalidState(format!("{a} is pending import."))),
            "6" => Err(KmsError::UnsupportedOperation(format!(
                "{a} origin is EXTERNAL which is not valid for this operation."
            ))),
            "9" => Err(KmsError::UnsupportedOperation(format!(
                "{a} origin is {} which is not valid for this operation.",
                origin.as_str()
            ))),
            "14" => Err(KmsError::InvalidState(format!("{a} is creating."))),
            "15" => Err(KmsError::InvalidState(format!("{a} is updating."))),
            other => panic!("unknown cell {other}"),
        }
    }

    #[test]
    fn every_cell_of_the_key_state_table() {
        let mut cells = 0;
        for (op, origin, row) in TABLE {
            for (state, cell) in STATES.iter().zip(row.iter()) {
                assert_eq!(
                    check(*op, *state, *origin, ARN),
                    expected(cell, *origin),
                    "{op:?} ({origin:?}) in {state:?}"
                );
                cells += 1;
            }
        }
        assert_eq!(cells, TABLE.len() * 7);
    }

    #[test]
    fn the_table_has_a_row_for_every_operation() {
        for op in Operation::ALL {
            assert!(
                TABLE.iter().any(|(o, _, _)| o == op),
                "{op:?} has no row in TABLE"
            );
        }
    }

    #[test]
    fn operation_names_are_unique() {
        let mut names: Vec<&str> = Operation::ALL.iter().map(|o| o.name()).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "two operations share an AWS name");
    }
}
