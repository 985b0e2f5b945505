//! IAM as a replicated, versioned document: the principals (users and roles), their inline
//! identity policies, tags, roles' trust policies and session limits, and users' access keys
//! (secrets sealed by the proposing node, never in plaintext). Version 0 is the topology's
//! `[iam]`, which every node reads from its file; a higher version is held in the Region's
//! Raft state (`Command::SetIam`, record `meta/iam`).
//!
//! IAM is global, as in AWS: only the IAM home Region (topology `[iam] home_region`) writes a
//! new version, each built on the version it replaces (compare-and-set); the home Region's
//! synchronizer sends the whole document to every other Region, which takes it only when it
//! is newer than what it holds. Every Region therefore goes through the same versions in the
//! same order, possibly skipping some, and holds the newest one it has received. What a
//! version holds is checked by the proposer (`kmsim-node`); applying it only compares
//! versions, so apply stays deterministic and cheap.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::KmsError;

/// The whole IAM of the cluster at one version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IamDocument {
    /// IAM users, in creation order.
    pub users: Vec<IamEntity>,
    /// IAM roles, in creation order.
    pub roles: Vec<IamEntity>,
}

/// One user or role.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IamEntity {
    /// Its ARN (`arn:aws:iam::<acct>:user/<path/>name` or `…:role/<path/>name`).
    pub arn: String,
    /// Its inline identity policies: name and JSON document.
    pub policies: Vec<(String, String)>,
    /// Its tags (`aws:PrincipalTag/<k>`).
    pub tags: BTreeMap<String, String>,
    /// A role's trust policy (JSON text).
    pub trust_policy: Option<String>,
    /// A role's longest session, seconds.
    pub max_session_duration: Option<u32>,
    /// A user's access keys (at most two, as in AWS).
    pub access_keys: Vec<AccessKey>,
}

/// One access key of a user. The secret is sealed (AES-256-GCM under the cluster's STS key,
/// the access key ID bound as associated data) before the document is proposed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    /// `AKIA` and 16 characters of base32.
    pub access_key_id: String,
    /// The sealed secret access key.
    pub sealed_secret: Vec<u8>,
    /// When it was created, ms of the home Region's simulated clock.
    pub created_ms: i64,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

/// A document and its version, as a Region holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionedIam {
    /// The version (1 or more; 0 is the topology's and is never stored).
    pub version: u64,
    /// The document.
    pub document: IamDocument,
}

impl VersionedIam {
    /// Applies a `SetIam` to what a Region holds (`held`, `None` for version 0). `base`
    /// `Some(b)`: a write in the home Region, built on version `b`: refused with
    /// `ConflictException` unless `b` is the version held and `version` is `b + 1`. `base`
    /// `None`: a version received from the home Region, taken only when newer (an older or a
    /// repeated one changes nothing). Returns whether `held` changed.
    pub fn set(
        held: &mut Option<VersionedIam>,
        base: Option<u64>,
        version: u64,
        document: &IamDocument,
    ) -> Result<bool, KmsError> {
        let current = held.as_ref().map_or(0, |h| h.version);
        match base {
            Some(b) if b != current || version != b.saturating_add(1) => {
                Err(KmsError::Conflict(format!(
                    "IAM changed meanwhile: the change was built on version {b}, the Region holds version {current}"
                )))
            }
            None if version <= current => Ok(false),
            _ => {
                *held = Some(VersionedIam {
                    version,
                    document: document.clone(),
                });
                Ok(true)
            }
        }
    }
}

/// The access key ID of the run-time shape: `AKIA` followed by 16 characters of base32
/// (`A`–`Z`, `2`–`7`), as AWS's long-term keys. Processes that do not hold IAM (the gateway)
/// relay requests signed with such a key to the serving node, which verifies them.
pub fn is_runtime_access_key_id(id: &str) -> bool {
    id.len() == 20
        && id.starts_with("AKIA")
        && id[4..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn doc(tag: &str) -> IamDocument {
        IamDocument {
            users: vec![IamEntity {
                arn: format!("arn:aws:iam::111122223333:user/{tag}"),
                ..Default::default()
            }],
            roles: Vec::new(),
        }
    }

    #[test]
    fn writes_build_on_the_version_held() {
        let mut held = None;
        assert_eq!(
            VersionedIam::set(&mut held, Some(0), 1, &doc("a")),
            Ok(true)
        );
        let err = VersionedIam::set(&mut held, Some(0), 1, &doc("b")).unwrap_err();
        assert_eq!(err.code(), "ConflictException");
        assert!(err.message().contains("holds version 1"), "{err}");
        assert!(VersionedIam::set(&mut held, Some(1), 3, &doc("b")).is_err());
        assert_eq!(
            VersionedIam::set(&mut held, Some(1), 2, &doc("b")),
            Ok(true)
        );
        assert_eq!(held.map(|h| h.version), Some(2));
    }

    #[test]
    fn runtime_access_key_ids_have_the_aws_shape() {
        assert!(is_runtime_access_key_id("AKIAIOSFODNN7EXAMPL2"));
        assert!(!is_runtime_access_key_id("AKIAIOSFODNN7EXAMPLE1"));
        assert!(!is_runtime_access_key_id("AKIAIOSFODNN7EXAMPL1"));
        assert!(!is_runtime_access_key_id("ASIAIOSFODNN7EXAMPL2"));
        assert!(!is_runtime_access_key_id("AKIDEXAMPLE"));
        assert!(!is_runtime_access_key_id("AKIAé"));
    }

    proptest! {
        /// Versions received from the home Region in any order, each any number of times,
        /// leave every Region with the newest one.
        #[test]
        fn any_delivery_order_ends_at_the_newest_version(
            order in proptest::collection::vec(1u64..8, 0..24)
        ) {
            let mut held = None;
            for v in &order {
                VersionedIam::set(&mut held, None, *v, &doc(&v.to_string())).expect("never refused");
            }
            let newest = order.iter().copied().max();
            prop_assert_eq!(held.as_ref().map(|h| h.version), newest);
            if let Some(n) = newest {
                prop_assert_eq!(&held.expect("held").document, &doc(&n.to_string()));
            }
        }

        /// A document decoded from any bytes is an error or a document, never a panic.
        #[test]
        fn decoding_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = postcard::from_bytes::<VersionedIam>(&bytes);
            let _ = crate::state::decode_command(&bytes);
        }
    }
}
