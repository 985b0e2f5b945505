//! Why a policy document, a caller ARN or a new key policy is refused.
//!
//! The texts are sentences a caller can be shown as the message of a
//! `MalformedPolicyDocumentException` (AWS's own texts where we know them).

/// A policy document that cannot be used, or a key policy the lockout check refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The text is not JSON.
    #[error("The policy document is not valid JSON.")]
    InvalidJson,
    /// The JSON is not an object.
    #[error("The policy document must be a JSON object.")]
    NotAnObject,
    /// `Version` is neither `2012-10-17` nor `2008-10-17`.
    #[error("The policy document has an unsupported Version: {0}.")]
    UnsupportedVersion(String),
    /// The document has no `Statement`.
    #[error("The policy document must contain a Statement.")]
    MissingStatement,
    /// `Statement` is an empty list.
    #[error("The policy document must contain at least one statement.")]
    EmptyStatement,
    /// A member the policy language does not have (top level when `statement` is `None`).
    #[error("{} contains an unsupported element: {element}.", where_(*.statement))]
    UnsupportedElement {
        /// Index of the statement (0-based), or `None` for the document itself.
        statement: Option<usize>,
        /// The member's name as written.
        element: String,
    },
    /// A member has the wrong JSON type or an empty value.
    #[error("{} has an invalid {element}: expected {expected}.", where_(*.statement))]
    InvalidElement {
        /// Index of the statement (0-based), or `None` for the document itself.
        statement: Option<usize>,
        /// The member's name.
        element: &'static str,
        /// What the language allows there.
        expected: &'static str,
    },
    /// A statement has both an element and its `Not` form.
    #[error("{} has both {first} and {second}.", where_(Some(*.statement)))]
    ConflictingElements {
        /// Index of the statement (0-based).
        statement: usize,
        /// The element.
        first: &'static str,
        /// Its negated form.
        second: &'static str,
    },
    /// `Effect` is missing or neither `Allow` nor `Deny`.
    #[error("{} must have Effect Allow or Deny.", where_(Some(*.statement)))]
    InvalidEffect {
        /// Index of the statement (0-based).
        statement: usize,
    },
    /// A key policy statement without `Principal` or `NotPrincipal`.
    #[error("Policy contains a statement with no principal.")]
    MissingPrincipal {
        /// Index of the statement (0-based).
        statement: usize,
    },
    /// A principal that is not `*`, an account ID, an ARN or a service name.
    #[error("Policy contains a statement with one or more invalid principals.")]
    InvalidPrincipal {
        /// Index of the statement (0-based).
        statement: usize,
        /// The principal as written.
        principal: String,
    },
    /// An identity (IAM) policy statement names a principal.
    #[error("{} of an identity-based policy must not specify a principal.", where_(Some(*.statement)))]
    PrincipalInIdentityPolicy {
        /// Index of the statement (0-based).
        statement: usize,
    },
    /// A condition operator the language does not have.
    #[error("{} uses an unknown condition operator: {operator}.", where_(Some(*.statement)))]
    UnknownConditionOperator {
        /// Index of the statement (0-based).
        statement: usize,
        /// The operator as written.
        operator: String,
    },
    /// `ForAllValues:` with a single-valued key whose absence would make the statement match
    /// every request (`kms:EncryptionContext:<k>`, `aws:RequestTag/<k>`): KMS refuses such a key
    /// policy.
    #[error("OverlyPermissiveCondition: Using the ForAllValues set operator with the single-valued condition key {key} in statement {} is overly permissive.", .statement + 1)]
    OverlyPermissiveCondition {
        /// Index of the statement (0-based).
        statement: usize,
        /// The condition key as written.
        key: String,
    },
    /// A caller ARN this crate cannot read (not root, user, role, assumed-role or service).
    #[error("invalid principal arn: {0}")]
    InvalidCallerArn(String),
    /// The new key policy would not let the caller call PutKeyPolicy afterwards.
    #[error("The new key policy will not allow you to update the key policy in the future.")]
    Lockout,
}

/// "Statement N" (1-based, as people count) or "The policy document".
fn where_(statement: Option<usize>) -> String {
    match statement {
        Some(i) => format!("Statement {}", i + 1),
        None => "The policy document".to_string(),
    }
}
