//! The edits of the IAM document that run-time changes make (`kmsim iam …`): [`IamChange`],
//! applied to a copy of the document by [`apply_change`], which checks each with IAM's
//! errors ([`IamCode`]); and the making of access keys ([`new_access_key`]). Committing the
//! result is `crate::iam_admin`'s part.
//!
//! The topology's `[[credentials]]` are not in the document: `delete-access-key` does not
//! apply to them.

use std::collections::BTreeMap;

use base64::Engine as _;
use kmsim_core::iam::{AccessKey, IamDocument, IamEntity};
use kmsim_core::KmsError;
use kmsim_policy::{Caller, Policy, PrincipalKind};

use crate::config::Secret;
use crate::iam::parse_trust_policy;

/// The most access keys a user may have (AWS's quota).
pub const MAX_ACCESS_KEYS: usize = 2;

/// The most bytes of one principal's inline policies together (AWS: 2,048 for a user, 10,240
/// for a role, after whitespace; kmsim allows a role's for both, whitespace counted).
pub const MAX_POLICY_BYTES: usize = 10_240;

/// IAM's error codes (the `Code` of IAM's Query API errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IamCode {
    /// The principal, policy or access key does not exist.
    NoSuchEntity,
    /// The principal or access key already exists.
    EntityAlreadyExists,
    /// A policy document is not valid.
    MalformedPolicyDocument,
    /// The principal still has something that must be removed first.
    DeleteConflict,
    /// A quota would be exceeded (2 access keys per user).
    LimitExceeded,
    /// An input is not valid.
    ValidationError,
}

impl std::fmt::Display for IamCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl IamCode {
    /// The code as IAM spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            IamCode::NoSuchEntity => "NoSuchEntity",
            IamCode::EntityAlreadyExists => "EntityAlreadyExists",
            IamCode::MalformedPolicyDocument => "MalformedPolicyDocument",
            IamCode::DeleteConflict => "DeleteConflict",
            IamCode::LimitExceeded => "LimitExceeded",
            IamCode::ValidationError => "ValidationError",
        }
    }

    fn grpc(self) -> tonic::Code {
        match self {
            IamCode::NoSuchEntity => tonic::Code::NotFound,
            IamCode::EntityAlreadyExists => tonic::Code::AlreadyExists,
            IamCode::MalformedPolicyDocument | IamCode::ValidationError => {
                tonic::Code::InvalidArgument
            }
            IamCode::DeleteConflict => tonic::Code::FailedPrecondition,
            IamCode::LimitExceeded => tonic::Code::ResourceExhausted,
        }
    }
}

/// Why a change was refused: an IAM error, or the Region's (no leader, not the home Region…).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamChangeError {
    /// Refused by IAM's rules.
    #[error("{code}: {message}")]
    Iam {
        /// The IAM code.
        code: IamCode,
        /// What is wrong.
        message: String,
    },
    /// The Region could not make the change.
    #[error("{0}")]
    Region(KmsError),
}

impl IamChangeError {
    pub(crate) fn iam(code: IamCode, message: impl Into<String>) -> IamChangeError {
        IamChangeError::Iam {
            code,
            message: message.into(),
        }
    }

    /// The admin API's status: the IAM code travels in the error-code metadata, as KMS codes do.
    pub fn status(&self) -> tonic::Status {
        match self {
            IamChangeError::Iam { code, message } => {
                let mut metadata = tonic::metadata::MetadataMap::new();
                metadata.insert(
                    kmsim_proto::status::ERROR_CODE_HEADER,
                    tonic::metadata::MetadataValue::from_static(code.as_str()),
                );
                tonic::Status::with_metadata(code.grpc(), message.clone(), metadata)
            }
            IamChangeError::Region(e) => kmsim_proto::status::status_from_error(e),
        }
    }
}

/// One change to the IAM document.
#[derive(Debug, Clone, PartialEq)]
pub enum IamChange {
    /// A new user, with tags.
    CreateUser {
        /// Its ARN.
        arn: String,
        /// Its tags.
        tags: BTreeMap<String, String>,
    },
    /// Deletes a user that has no policies and no access keys left.
    DeleteUser {
        /// Its ARN.
        arn: String,
    },
    /// A new role.
    CreateRole {
        /// Its ARN.
        arn: String,
        /// Who may assume it (JSON).
        trust_policy: String,
        /// Its longest session, seconds (3600 to 43200; `None`: 3600).
        max_session_duration: Option<u32>,
        /// Its tags.
        tags: BTreeMap<String, String>,
    },
    /// Deletes a role that has no policies left.
    DeleteRole {
        /// Its ARN.
        arn: String,
    },
    /// Adds or replaces an inline identity policy of a user or role.
    PutPolicy {
        /// The principal's ARN.
        arn: String,
        /// The policy's name.
        name: String,
        /// The policy (JSON).
        document: String,
    },
    /// Deletes an inline policy.
    DeletePolicy {
        /// The principal's ARN.
        arn: String,
        /// The policy's name.
        name: String,
    },
    /// Adds or replaces tags of a user or role.
    Tag {
        /// The principal's ARN.
        arn: String,
        /// The tags.
        tags: BTreeMap<String, String>,
    },
    /// Removes tags (unknown keys are ignored, as in IAM).
    Untag {
        /// The principal's ARN.
        arn: String,
        /// The tag keys.
        keys: Vec<String>,
    },
    /// A new access key of a user: its ID and secret are made by the node.
    CreateAccessKey {
        /// The user's ARN.
        arn: String,
    },
    /// Deletes an access key of a user.
    DeleteAccessKey {
        /// The user's ARN.
        arn: String,
        /// The access key ID.
        access_key_id: String,
    },
}

/// A new access key, sealed for the document, with its secret for the one answer that shows it.
pub struct NewAccessKey {
    /// The key as the document holds it.
    pub sealed: AccessKey,
    /// The secret access key (40 characters).
    pub secret: Secret,
}

/// Makes a new access key: `AKIA` and 16 base32 characters, a 40-character secret, sealed
/// under `seal` (the cluster's STS key).
pub fn new_access_key(
    seal: &crate::aws::session_token::SessionKey,
    now_ms: i64,
    rng: &mut (impl rand::RngCore + rand::CryptoRng),
) -> NewAccessKey {
    const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut id_bytes = [0u8; 16];
    rng.fill_bytes(&mut id_bytes);
    let id: String = std::iter::once("AKIA".to_string())
        .chain(
            id_bytes
                .iter()
                .map(|b| char::from(BASE32[usize::from(b % 32)]).to_string()),
        )
        .collect();
    let mut secret_bytes = zeroize::Zeroizing::new([0u8; 30]);
    rng.fill_bytes(&mut secret_bytes[..]);
    let secret = Secret::new(base64::engine::general_purpose::STANDARD.encode(*secret_bytes));
    NewAccessKey {
        sealed: AccessKey {
            sealed_secret: seal.seal_access_key(&id, &secret, rng),
            access_key_id: id,
            created_ms: now_ms,
        },
        secret,
    }
}

fn principal_kind(arn: &str) -> Result<PrincipalKind, IamChangeError> {
    match Caller::from_arn(arn) {
        Ok(c) if matches!(c.kind, PrincipalKind::User | PrincipalKind::Role) => Ok(c.kind),
        _ => Err(IamChangeError::iam(
            IamCode::ValidationError,
            format!("'{arn}' is not an IAM user or role ARN (arn:aws:iam::<account>:user/<name> or …:role/<name>)"),
        )),
    }
}

fn entities(doc: &mut IamDocument, kind: PrincipalKind) -> &mut Vec<IamEntity> {
    if kind == PrincipalKind::User {
        &mut doc.users
    } else {
        &mut doc.roles
    }
}

fn kind_name(kind: PrincipalKind) -> &'static str {
    if kind == PrincipalKind::User {
        "user"
    } else {
        "role"
    }
}

fn title(kind: PrincipalKind) -> &'static str {
    if kind == PrincipalKind::User {
        "User"
    } else {
        "Role"
    }
}

fn find<'a>(doc: &'a mut IamDocument, arn: &str) -> Result<&'a mut IamEntity, IamChangeError> {
    let kind = principal_kind(arn)?;
    let what = kind_name(kind);
    entities(doc, kind)
        .iter_mut()
        .find(|e| e.arn == arn)
        .ok_or_else(|| {
            IamChangeError::iam(
                IamCode::NoSuchEntity,
                format!("The {what} with name {} cannot be found.", name_of(arn)),
            )
        })
}

fn name_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

fn check_tags(tags: &BTreeMap<String, String>) -> Result<(), IamChangeError> {
    for (k, v) in tags {
        if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
            return Err(IamChangeError::iam(
                IamCode::ValidationError,
                format!("tag '{k}': keys must be 1 to 128 characters, values at most 256"),
            ));
        }
    }
    Ok(())
}

fn check_identity_policy(document: &str) -> Result<(), IamChangeError> {
    if document.len() > MAX_POLICY_BYTES {
        return Err(IamChangeError::iam(
            IamCode::LimitExceeded,
            format!("Maximum policy size of {MAX_POLICY_BYTES} bytes exceeded."),
        ));
    }
    Policy::parse(document)
        .and_then(|d| d.validate_identity_policy())
        .map_err(|e| IamChangeError::iam(IamCode::MalformedPolicyDocument, e.to_string()))
}

/// Applies `change` to `doc` (`access_key`: the key a `CreateAccessKey` adds).
pub fn apply_change(
    doc: &mut IamDocument,
    change: &IamChange,
    access_key: Option<&AccessKey>,
) -> Result<(), IamChangeError> {
    match change {
        IamChange::CreateUser { arn, tags } => {
            create(doc, arn, PrincipalKind::User, tags, |_| Ok(()))?;
        }
        IamChange::CreateRole {
            arn,
            trust_policy,
            max_session_duration,
            tags,
        } => {
            if max_session_duration.is_some_and(|d| !(3600..=43200).contains(&d)) {
                return Err(IamChangeError::iam(
                    IamCode::ValidationError,
                    "max-session-duration must be 3600 to 43200 seconds",
                ));
            }
            parse_trust_policy(trust_policy).map_err(|e| {
                IamChangeError::iam(IamCode::MalformedPolicyDocument, e.to_string())
            })?;
            create(doc, arn, PrincipalKind::Role, tags, |e| {
                e.trust_policy = Some(trust_policy.clone());
                e.max_session_duration = *max_session_duration;
                Ok(())
            })?;
        }
        IamChange::DeleteUser { arn } | IamChange::DeleteRole { arn } => {
            let kind = principal_kind(arn)?;
            let wanted = if matches!(change, IamChange::DeleteUser { .. }) {
                PrincipalKind::User
            } else {
                PrincipalKind::Role
            };
            if kind != wanted {
                return Err(IamChangeError::iam(
                    IamCode::ValidationError,
                    format!("'{arn}' is not an IAM {} ARN", kind_name(wanted)),
                ));
            }
            let e = find(doc, arn)?;
            if !e.policies.is_empty() || !e.access_keys.is_empty() {
                return Err(IamChangeError::iam(
                    IamCode::DeleteConflict,
                    format!(
                        "Cannot delete entity, must delete policies ({}) and access keys ({}) first.",
                        e.policies.len(),
                        e.access_keys.len()
                    ),
                ));
            }
            entities(doc, kind).retain(|e| e.arn != *arn);
        }
        IamChange::PutPolicy {
            arn,
            name,
            document,
        } => {
            check_policy_name(name)?;
            check_identity_policy(document)?;
            let e = find(doc, arn)?;
            match e.policies.iter_mut().find(|(n, _)| n == name) {
                Some((_, d)) => d.clone_from(document),
                None => e.policies.push((name.clone(), document.clone())),
            }
            let total: usize = e.policies.iter().map(|(_, d)| d.len()).sum();
            if total > MAX_POLICY_BYTES {
                return Err(IamChangeError::iam(
                    IamCode::LimitExceeded,
                    format!("Maximum policy size of {MAX_POLICY_BYTES} bytes exceeded for {arn}."),
                ));
            }
        }
        IamChange::DeletePolicy { arn, name } => {
            let e = find(doc, arn)?;
            let before = e.policies.len();
            e.policies.retain(|(n, _)| n != name);
            if e.policies.len() == before {
                return Err(IamChangeError::iam(
                    IamCode::NoSuchEntity,
                    format!("The policy with name {name} cannot be found."),
                ));
            }
        }
        IamChange::Tag { arn, tags } => {
            check_tags(tags)?;
            let e = find(doc, arn)?;
            e.tags
                .extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
            if e.tags.len() > 50 {
                return Err(IamChangeError::iam(
                    IamCode::LimitExceeded,
                    "A principal may have at most 50 tags.",
                ));
            }
        }
        IamChange::Untag { arn, keys } => {
            let e = find(doc, arn)?;
            e.tags.retain(|k, _| !keys.contains(k));
        }
        IamChange::CreateAccessKey { arn } => {
            user_only(arn)?;
            let e = find(doc, arn)?;
            if e.access_keys.len() >= MAX_ACCESS_KEYS {
                return Err(IamChangeError::iam(
                    IamCode::LimitExceeded,
                    format!("Cannot exceed quota for AccessKeysPerUser: {MAX_ACCESS_KEYS}"),
                ));
            }
            let key = access_key.ok_or_else(|| {
                IamChangeError::Region(KmsError::Internal("no access key was made".into()))
            })?;
            e.access_keys.push(key.clone());
        }
        IamChange::DeleteAccessKey { arn, access_key_id } => {
            user_only(arn)?;
            let e = find(doc, arn)?;
            let before = e.access_keys.len();
            e.access_keys.retain(|k| k.access_key_id != *access_key_id);
            if e.access_keys.len() == before {
                return Err(IamChangeError::iam(
                    IamCode::NoSuchEntity,
                    format!("The Access Key with id {access_key_id} cannot be found."),
                ));
            }
        }
    }
    Ok(())
}

fn user_only(arn: &str) -> Result<(), IamChangeError> {
    if principal_kind(arn)? != PrincipalKind::User {
        return Err(IamChangeError::iam(
            IamCode::ValidationError,
            format!("only users have access keys, not {arn}"),
        ));
    }
    Ok(())
}

fn check_policy_name(name: &str) -> Result<(), IamChangeError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(IamChangeError::iam(
            IamCode::ValidationError,
            format!("policy name '{name}' must be 1 to 128 of the characters [A-Za-z0-9+=,.@_-]"),
        ))
    }
}

fn create(
    doc: &mut IamDocument,
    arn: &str,
    kind: PrincipalKind,
    tags: &BTreeMap<String, String>,
    fill: impl FnOnce(&mut IamEntity) -> Result<(), IamChangeError>,
) -> Result<(), IamChangeError> {
    let found = principal_kind(arn)?;
    if found != kind {
        return Err(IamChangeError::iam(
            IamCode::ValidationError,
            format!("'{arn}' is not an IAM {} ARN", kind_name(kind)),
        ));
    }
    check_tags(tags)?;
    // Roles are known by account and name (a session ARN has no path), users by ARN.
    let name = name_of(arn);
    let account = Caller::from_arn(arn).ok().and_then(|c| c.account);
    let taken = entities(doc, kind).iter().any(|e| {
        e.arn == arn
            || (kind == PrincipalKind::Role
                && name_of(&e.arn) == name
                && Caller::from_arn(&e.arn).ok().and_then(|c| c.account) == account)
    });
    if taken {
        return Err(IamChangeError::iam(
            IamCode::EntityAlreadyExists,
            format!("{} with name {name} already exists.", title(kind)),
        ));
    }
    let mut e = IamEntity {
        arn: arn.to_string(),
        tags: tags.clone(),
        ..Default::default()
    };
    fill(&mut e)?;
    entities(doc, kind).push(e);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsim_core::state::Command;
    use kmsim_crypto::DomainKey;

    const USER: &str = "arn:aws:iam::111122223333:user/alice";
    const ROLE: &str = "arn:aws:iam::111122223333:role/ops/Reader";
    const ALLOW: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}"#;

    fn code(r: Result<(), IamChangeError>) -> &'static str {
        match r {
            Err(IamChangeError::Iam { code, .. }) => code.as_str(),
            other => panic!("expected an IAM error, got {other:?}"),
        }
    }

    fn key() -> crate::aws::session_token::SessionKey {
        crate::aws::session_token::SessionKey::new(DomainKey::from_bytes(&[7; 32]).expect("32"))
    }

    #[test]
    fn changes_are_refused_with_iams_codes() {
        let mut doc = IamDocument::default();
        let create = IamChange::CreateUser {
            arn: USER.into(),
            tags: BTreeMap::new(),
        };
        apply_change(&mut doc, &create, None).expect("created");
        assert_eq!(
            code(apply_change(&mut doc, &create, None)),
            "EntityAlreadyExists"
        );
        let bad_arn = IamChange::CreateUser {
            arn: "arn:aws:iam::111122223333:root".into(),
            tags: BTreeMap::new(),
        };
        assert_eq!(
            code(apply_change(&mut doc, &bad_arn, None)),
            "ValidationError"
        );
        let put = |document: &str| IamChange::PutPolicy {
            arn: USER.into(),
            name: "use".into(),
            document: document.into(),
        };
        assert_eq!(
            code(apply_change(&mut doc, &put("{nope"), None)),
            "MalformedPolicyDocument"
        );
        apply_change(&mut doc, &put(ALLOW), None).expect("policy");
        let delete = IamChange::DeleteUser { arn: USER.into() };
        assert_eq!(
            code(apply_change(&mut doc, &delete, None)),
            "DeleteConflict"
        );
        let seal = key();
        for _ in 0..MAX_ACCESS_KEYS {
            let k = new_access_key(&seal, 0, &mut rand::thread_rng());
            apply_change(
                &mut doc,
                &IamChange::CreateAccessKey { arn: USER.into() },
                Some(&k.sealed),
            )
            .expect("key");
        }
        let third = new_access_key(&seal, 0, &mut rand::thread_rng());
        assert_eq!(
            code(apply_change(
                &mut doc,
                &IamChange::CreateAccessKey { arn: USER.into() },
                Some(&third.sealed)
            )),
            "LimitExceeded"
        );
        let gone = IamChange::DeleteAccessKey {
            arn: USER.into(),
            access_key_id: third.sealed.access_key_id.clone(),
        };
        assert_eq!(code(apply_change(&mut doc, &gone, None)), "NoSuchEntity");
        let role = IamChange::CreateRole {
            arn: ROLE.into(),
            trust_policy: r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#.into(),
            max_session_duration: Some(100),
            tags: BTreeMap::new(),
        };
        assert_eq!(code(apply_change(&mut doc, &role, None)), "ValidationError");
        assert_eq!(
            code(apply_change(
                &mut doc,
                &IamChange::DeleteRole { arn: ROLE.into() },
                None
            )),
            "NoSuchEntity"
        );
    }

    #[test]
    fn access_keys_have_the_aws_shape_and_their_secret_is_sealed() {
        let seal = key();
        let k = new_access_key(&seal, 5, &mut rand::thread_rng());
        assert!(kmsim_core::iam::is_runtime_access_key_id(
            &k.sealed.access_key_id
        ));
        assert_eq!(k.secret.expose().len(), 40);
        let opened = seal
            .open_access_key(&k.sealed.access_key_id, &k.sealed.sealed_secret)
            .expect("opens");
        assert_eq!(opened.expose(), k.secret.expose());
        // Bound to its key ID.
        assert!(seal
            .open_access_key("AKIAAAAAAAAAAAAAAAAA", &k.sealed.sealed_secret)
            .is_none());
        // The Raft command that carries it holds no plaintext secret.
        let mut doc = IamDocument::default();
        apply_change(
            &mut doc,
            &IamChange::CreateUser {
                arn: USER.into(),
                tags: BTreeMap::new(),
            },
            None,
        )
        .expect("user");
        apply_change(
            &mut doc,
            &IamChange::CreateAccessKey { arn: USER.into() },
            Some(&k.sealed),
        )
        .expect("key");
        let encoded = kmsim_core::state::encode_command(&Command::SetIam {
            base: Some(0),
            version: 1,
            document: Box::new(doc),
        });
        let secret = k.secret.expose().as_bytes();
        assert!(!encoded.windows(secret.len()).any(|w| w == secret));
        assert!(encoded
            .windows(k.sealed.access_key_id.len())
            .any(|w| w == k.sealed.access_key_id.as_bytes()));
        assert!(!format!("{:?}", k.sealed).contains(k.secret.expose()));
    }
}
