//! `KmsError`: every variant is an AWS KMS exception, with the exact wire code.

use serde::{Deserialize, Serialize};

macro_rules! kms_errors {
    ($( $(#[$doc:meta])* $variant:ident => $code:literal, $status:literal, $fault:literal; )*) => {
        /// An expected API error. Each variant is one AWS KMS exception and carries the message
        /// the caller sees. Fatal problems (storage corruption, a stopped Raft) are not `KmsError`s.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
        pub enum KmsError {
            $( $(#[$doc])* #[error("{code}: {0}", code = $code)] $variant(String), )*
        }

        impl KmsError {
            /// The AWS error code, as sent in `__type` on the wire.
            pub fn code(&self) -> &'static str {
                match self { $( KmsError::$variant(_) => $code, )* }
            }

            /// The HTTP status AWS uses on the wire (400 for every client error, 5xx for faults).
            pub fn http_status(&self) -> u16 {
                match self { $( KmsError::$variant(_) => $status, )* }
            }

            /// True for server faults (`fault: true` in the AWS model); clients retry these.
            pub fn is_server_fault(&self) -> bool {
                match self { $( KmsError::$variant(_) => $fault, )* }
            }

            /// One error of every variant, each carrying `message` (for tests of mappings that
            /// must cover every AWS code).
            pub fn every_variant(message: &str) -> Vec<KmsError> {
                vec![$( KmsError::$variant(message.to_string()), )*]
            }

            /// Rebuilds an error from its wire code and message; unknown codes become internal errors.
            pub fn from_wire(code: &str, message: String) -> KmsError {
                match code {
                    $( $code => KmsError::$variant(message), )*
                    other => KmsError::Internal(format!("{other}: {message}")),
                }
            }
        }
    };
}

kms_errors! {
    /// The key, alias or grant does not exist, or an identifier is malformed.
    NotFound => "NotFoundException", 400, false;
    /// The key is disabled.
    Disabled => "DisabledException", 400, false;
    /// The key's state does not allow the operation.
    InvalidState => "KMSInvalidStateException", 400, false;
    /// The resource (alias, related key) already exists.
    AlreadyExists => "AlreadyExistsException", 400, false;
    /// The operation is not valid for this key.
    UnsupportedOperation => "UnsupportedOperationException", 400, false;
    /// The ciphertext is malformed, tampered, or its encryption context does not match.
    InvalidCiphertext => "InvalidCiphertextException", 400, false;
    /// The key in the request is not the key that can perform the operation.
    IncorrectKey => "IncorrectKeyException", 400, false;
    /// The key usage does not allow the operation.
    InvalidKeyUsage => "InvalidKeyUsageException", 400, false;
    /// A request member violates a constraint.
    Validation => "ValidationException", 400, false;
    /// A malformed ARN.
    InvalidArn => "InvalidArnException", 400, false;
    /// A malformed alias name.
    InvalidAliasName => "InvalidAliasNameException", 400, false;
    /// A pagination marker this service did not issue.
    InvalidMarker => "InvalidMarkerException", 400, false;
    /// A key policy that is not a valid policy document.
    MalformedPolicyDocument => "MalformedPolicyDocumentException", 400, false;
    /// A resource or request quota was exceeded.
    LimitExceeded => "LimitExceededException", 400, false;
    /// A tag violates the tagging rules.
    Tag => "TagException", 400, false;
    /// `DryRun` was set and the request would have succeeded.
    DryRunOperation => "DryRunOperationException", 400, false;
    /// The caller is not allowed, or the ciphertext's key is not in this Region.
    AccessDenied => "AccessDeniedException", 400, false;
    /// A conflicting operation is in progress.
    Conflict => "ConflictException", 400, false;
    /// The grant ID is not valid.
    InvalidGrantId => "InvalidGrantIdException", 400, false;
    /// The grant token is not valid.
    InvalidGrantToken => "InvalidGrantTokenException", 400, false;
    /// The request rate is too high.
    Throttling => "ThrottlingException", 400, false;
    /// The operation named in the request does not exist.
    UnknownOperation => "UnknownOperationException", 400, false;
    /// Verify: the signature does not verify (sent with an empty message).
    KmsInvalidSignature => "KMSInvalidSignatureException", 400, false;
    /// VerifyMac: the MAC does not verify (sent with an empty message).
    KmsInvalidMac => "KMSInvalidMacException", 400, false;
    /// ImportKeyMaterial: not the material this key had (or its multi-Region primary has).
    IncorrectKeyMaterial => "IncorrectKeyMaterialException", 400, false;
    /// ImportKeyMaterial: the import token has expired.
    ExpiredImportToken => "ExpiredImportTokenException", 400, false;
    /// ImportKeyMaterial: the import token is not valid for this key.
    InvalidImportToken => "InvalidImportTokenException", 400, false;
    /// AWS JSON: the request body is not valid JSON for the operation's input shape.
    Serialization => "SerializationException", 400, false;
    /// SigV4: the request carries no authentication.
    MissingAuthenticationToken => "MissingAuthenticationTokenException", 400, false;
    /// SigV4: the Authorization header is malformed or lacks a part.
    IncompleteSignature => "IncompleteSignatureException", 400, false;
    /// SigV4: the signature does not match, has expired, or is scoped wrongly.
    InvalidSignature => "InvalidSignatureException", 400, false;
    /// SigV4: the access key (or session token) is not known.
    UnrecognizedClient => "UnrecognizedClientException", 400, false;
    /// SigV4: the session token of temporary credentials (STS AssumeRole) has expired.
    ExpiredToken => "ExpiredTokenException", 400, false;
    /// The service failed internally (the Region has no leader, a store failed).
    Internal => "KMSInternalException", 500, true;
    /// A dependency (here: the Region's Raft leader) did not answer in time.
    DependencyTimeout => "DependencyTimeoutException", 503, true;
    /// The key is temporarily unavailable.
    KeyUnavailable => "KeyUnavailableException", 500, true;
}

impl KmsError {
    /// The message part alone, as sent in `message` on the wire.
    pub fn message(&self) -> &str {
        macro_rules! msg { ($($v:ident),*) => { match self { $(KmsError::$v(m) => m,)* } } }
        msg!(
            NotFound,
            Disabled,
            InvalidState,
            AlreadyExists,
            UnsupportedOperation,
            InvalidCiphertext,
            IncorrectKey,
            InvalidKeyUsage,
            Validation,
            InvalidArn,
            InvalidAliasName,
            InvalidMarker,
            MalformedPolicyDocument,
            LimitExceeded,
            Tag,
            DryRunOperation,
            AccessDenied,
            Conflict,
            InvalidGrantId,
            InvalidGrantToken,
            Throttling,
            UnknownOperation,
            KmsInvalidSignature,
            KmsInvalidMac,
            IncorrectKeyMaterial,
            ExpiredImportToken,
            InvalidImportToken,
            Serialization,
            MissingAuthenticationToken,
            IncompleteSignature,
            InvalidSignature,
            UnrecognizedClient,
            ExpiredToken,
            Internal,
            DependencyTimeout,
            KeyUnavailable
        )
    }

    /// True when the caller may retry the same request unchanged.
    pub fn is_retryable(&self) -> bool {
        self.is_server_fault() || matches!(self, KmsError::Throttling(_))
    }

    /// `DryRunOperationException` with the message AWS sends.
    pub fn dry_run() -> KmsError {
        KmsError::DryRunOperation(
            "The request would have succeeded, but the DryRun option is set.".to_string(),
        )
    }
}

/// Messages of AWS's framework validation (`ValidationException`), in its exact template.
pub mod validation {
    use super::KmsError;

    fn one(value: Option<&str>, member: &str, constraint: &str) -> KmsError {
        let value = match value {
            Some(v) => format!("Value '{v}' at"),
            // Sensitive members are not echoed back.
            None => "Value at".to_string(),
        };
        KmsError::Validation(format!(
            "1 validation error detected: {value} '{member}' failed to satisfy constraint: {constraint}"
        ))
    }

    /// A string or blob longer than its maximum. `value` is `None` for sensitive members.
    pub fn too_long(value: Option<&str>, member: &str, max: usize) -> KmsError {
        one(
            value,
            member,
            &format!("Member must have length less than or equal to {max}"),
        )
    }

    /// A string or blob shorter than its minimum.
    pub fn too_short(value: Option<&str>, member: &str, min: usize) -> KmsError {
        one(
            value,
            member,
            &format!("Member must have length greater than or equal to {min}"),
        )
    }

    /// A number above its maximum.
    pub fn above(value: i64, member: &str, max: i64) -> KmsError {
        one(
            Some(&value.to_string()),
            member,
            &format!("Member must have value less than or equal to {max}"),
        )
    }

    /// A number below its minimum.
    pub fn below(value: i64, member: &str, min: i64) -> KmsError {
        one(
            Some(&value.to_string()),
            member,
            &format!("Member must have value greater than or equal to {min}"),
        )
    }

    /// A value outside its enum.
    pub fn not_in_enum(value: &str, member: &str, allowed: &[&str]) -> KmsError {
        one(
            Some(value),
            member,
            &format!(
                "Member must satisfy enum value set: [{}]",
                allowed.join(", ")
            ),
        )
    }

    /// A string that does not match its pattern.
    pub fn pattern(value: &str, member: &str, pattern: &str) -> KmsError {
        one(
            Some(value),
            member,
            &format!("Member must satisfy regular expression pattern: {pattern}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_round_trip_keeps_code_and_message() {
        let e = KmsError::InvalidState(
            "arn:aws:kms:us-east-1:111122223333:key/x is pending deletion.".into(),
        );
        assert_eq!(e.code(), "KMSInvalidStateException");
        let back = KmsError::from_wire(e.code(), e.message().to_string());
        assert_eq!(back, e);
    }

    #[test]
    fn unknown_wire_code_is_internal() {
        assert!(matches!(
            KmsError::from_wire("Nope", "m".into()),
            KmsError::Internal(_)
        ));
    }

    #[test]
    fn validation_template_matches_aws() {
        assert_eq!(
            validation::above(1025, "numberOfBytes", 1024).message(),
            "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
        );
        assert_eq!(
            validation::too_long(None, "plaintext", 4096).message(),
            "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"
        );
    }

    #[test]
    fn faults_are_5xx_and_retryable() {
        assert!(KmsError::Internal(String::new()).is_retryable());
        assert_eq!(
            KmsError::DependencyTimeout(String::new()).http_status(),
            503
        );
        assert!(!KmsError::NotFound(String::new()).is_retryable());
    }
}
