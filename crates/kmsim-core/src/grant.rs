//! Grants: per-Regional-key permissions with optional encryption-context constraints
//! (`docs/AWS-BEHAVIOUR.md` §8). Stored here, listed and retired through the API; enforcement of what
//! a grant allows belongs to authorization.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{validation, KmsError};
use crate::ids::KeyId;
use crate::key::GrantOperation;

/// The most grants one key may have (AWS resource quota).
pub const MAX_GRANTS_PER_KEY: usize = 50_000;
/// The most pairs one encryption-context constraint may hold.
pub const MAX_CONSTRAINT_PAIRS: usize = 8;

/// `GrantConstraints`: at most one of the two maps is meaningful at a time in AWS, but both
/// are stored as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantConstraints {
    /// `EncryptionContextSubset`: the request's context must contain these pairs.
    pub subset: BTreeMap<String, String>,
    /// `EncryptionContextEquals`: the request's context must be exactly these pairs.
    pub equals: BTreeMap<String, String>,
}

impl GrantConstraints {
    /// True when a request with encryption context `ctx` satisfies the constraints.
    pub fn allows(&self, ctx: &BTreeMap<String, String>) -> bool {
        let subset_ok = self.subset.iter().all(|(k, v)| ctx.get(k) == Some(v));
        let equals_ok = self.equals.is_empty() || &self.equals == ctx;
        subset_ok && equals_ok
    }

    /// True when neither map has pairs.
    pub fn is_empty(&self) -> bool {
        self.subset.is_empty() && self.equals.is_empty()
    }
}

/// One grant on one Regional key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRecord {
    /// `GrantId`: 64 lowercase hex characters.
    pub grant_id: String,
    /// The key the grant is on.
    pub key_id: KeyId,
    /// `Name`, the idempotency handle of CreateGrant.
    pub name: Option<String>,
    /// `CreationDate` in ms.
    pub creation_ms: i64,
    /// `GranteePrincipal`
    pub grantee: String,
    /// `RetiringPrincipal`
    pub retiring: Option<String>,
    /// `IssuingAccount`: the ARN of the account that created the grant.
    pub issuing_account: String,
    /// `Operations`, in the order given, without duplicates.
    pub operations: Vec<GrantOperation>,
    /// `Constraints`
    pub constraints: Option<GrantConstraints>,
}

impl GrantRecord {
    /// True when `other` is the same request as this grant's (CreateGrant with the same
    /// `Name` and the same parameters returns the existing grant).
    pub fn same_request(&self, other: &GrantRecord) -> bool {
        let ops = |g: &GrantRecord| {
            let mut v: Vec<&str> = g.operations.iter().map(|o| o.as_str()).collect();
            v.sort_unstable();
            v
        };
        self.key_id == other.key_id
            && self.name == other.name
            && self.grantee == other.grantee
            && self.retiring == other.retiring
            && ops(self) == ops(other)
            && self.constraints.clone().unwrap_or_default()
                == other.constraints.clone().unwrap_or_default()
    }
}

/// True for a string of the `GrantId` form kmsim issues (64 lowercase hex characters).
pub fn is_grant_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Checks a `PrincipalIdType` member (1..256, `^[\w+=,.@:/-]+$`).
pub fn validate_principal(p: &str, member: &str) -> Result<(), KmsError> {
    if p.is_empty() {
        return Err(validation::too_short(Some(p), member, 1));
    }
    if p.chars().count() > 256 {
        return Err(validation::too_long(Some(p), member, 256));
    }
    let ok = p
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_' || "+=,.@:/-".contains(c));
    if !ok {
        return Err(validation::pattern(p, member, r"^[\w+=,.@:/-]+$"));
    }
    Ok(())
}

/// Checks a grant `Name` (1..256, `^[a-zA-Z0-9:/_-]+$`).
pub fn validate_grant_name(n: &str) -> Result<(), KmsError> {
    if n.is_empty() {
        return Err(validation::too_short(Some(n), "name", 1));
    }
    if n.len() > 256 {
        return Err(validation::too_long(Some(n), "name", 256));
    }
    if !n
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b":/_-".contains(&b))
    {
        return Err(validation::pattern(n, "name", "^[a-zA-Z0-9:/_-]+$"));
    }
    Ok(())
}

/// Checks the constraint maps: at most 8 pairs each, keys and values of at most 384
/// characters (AWS `EncryptionContextKey`/`Value` limits in constraints).
pub fn validate_constraints(c: &GrantConstraints) -> Result<(), KmsError> {
    for (member, map) in [
        ("constraints.encryptionContextSubset", &c.subset),
        ("constraints.encryptionContextEquals", &c.equals),
    ] {
        if map.len() > MAX_CONSTRAINT_PAIRS {
            return Err(KmsError::Validation(format!(
                "1 validation error detected: Value at '{member}' failed to satisfy constraint: Member must have length less than or equal to {MAX_CONSTRAINT_PAIRS}"
            )));
        }
        for (k, v) in map {
            if k.chars().count() > 384 || v.chars().count() > 384 {
                return Err(KmsError::Validation(format!(
                    "1 validation error detected: Value at '{member}' failed to satisfy constraint: Map keys and values must have length less than or equal to 384"
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn constraints_follow_subset_and_equals_semantics() {
        let subset = GrantConstraints {
            subset: ctx(&[("a", "1")]),
            ..Default::default()
        };
        assert!(subset.allows(&ctx(&[("a", "1")])));
        assert!(subset.allows(&ctx(&[("a", "1"), ("b", "2")])));
        assert!(!subset.allows(&ctx(&[("a", "2")])));
        assert!(!subset.allows(&ctx(&[])));
        let equals = GrantConstraints {
            equals: ctx(&[("a", "1")]),
            ..Default::default()
        };
        assert!(equals.allows(&ctx(&[("a", "1")])));
        assert!(!equals.allows(&ctx(&[("a", "1"), ("b", "2")])));
        assert!(GrantConstraints::default().allows(&ctx(&[("x", "y")])));
    }

    #[test]
    fn principals_and_names_are_checked() {
        assert!(validate_principal(
            "arn:aws:iam::111122223333:role/app+x=y,z.w@q",
            "granteePrincipal"
        )
        .is_ok());
        assert_eq!(
            validate_principal("has space", "granteePrincipal")
                .unwrap_err()
                .code(),
            "ValidationException"
        );
        assert!(validate_grant_name("name:1/_-").is_ok());
        assert!(validate_grant_name("bad name").is_err());
        assert!(is_grant_id(&"ab".repeat(32)));
        assert!(!is_grant_id("AB"));
    }
}
