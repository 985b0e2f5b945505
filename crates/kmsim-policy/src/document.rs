//! The policy document: its typed model and how JSON text becomes one.
//!
//! [`Policy::parse`] reads any policy (key policy or IAM identity policy) and refuses what the
//! language cannot mean; [`Policy::validate_key_policy`] and
//! [`Policy::validate_identity_policy`] add the rules of each kind. Parsing never panics.

use serde_json::{Map, Value};

use crate::condition::{Condition, Operator, SetQualifier};
use crate::context::{is_account_id, IamArn};
use crate::error::PolicyError;

/// The policy language version; only 2012-10-17 has policy variables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// `2008-10-17`, also what a document without `Version` is read as.
    V2008_10_17,
    /// `2012-10-17`.
    V2012_10_17,
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The statement grants.
    Allow,
    /// The statement forbids, whatever else grants.
    Deny,
}

/// One principal named in `Principal`/`NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalEntry {
    /// `"AWS": "*"`: every AWS principal.
    AnyAws,
    /// `"AWS": "<12 digits>"` or `"AWS": "arn:<p>:iam::<acct>:root"`: the account, which in a
    /// key policy delegates to the account's IAM policies.
    Account(String),
    /// `"AWS": "<arn>"`: a user, a role, or a role session.
    Arn(String),
    /// `"Service": "<name>"`.
    Service(String),
    /// `"Federated": "<provider>"` (kept, never matched by the callers this crate knows).
    Federated(String),
    /// `"CanonicalUser": "<id>"` (kept, never matched).
    CanonicalUser(String),
}

/// `Principal` or `NotPrincipal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalElement {
    /// `NotPrincipal`.
    pub negated: bool,
    /// `None` for `"*"` (everyone, anonymous included); otherwise the entries named.
    pub entries: Option<Vec<PrincipalEntry>>,
}

/// `Action`/`NotAction` or `Resource`/`NotResource`: patterns with `*` and `?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternElement {
    /// The `Not…` form.
    pub negated: bool,
    /// The patterns as written.
    pub patterns: Vec<String>,
}

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// `Sid` (may contain spaces in key policies).
    pub sid: Option<String>,
    /// `Effect`.
    pub effect: Effect,
    /// `Principal`/`NotPrincipal`; `None` in identity policies.
    pub principal: Option<PrincipalElement>,
    /// `Action`/`NotAction`; a statement without one has no effect.
    pub action: Option<PatternElement>,
    /// `Resource`/`NotResource`; a statement without one has no effect.
    pub resource: Option<PatternElement>,
    /// `Condition`, flattened: every (operator, key) pair, all of which must hold.
    pub conditions: Vec<Condition>,
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// `Version`.
    pub version: Version,
    /// `Id`.
    pub id: Option<String>,
    /// `Statement`, at least one.
    pub statements: Vec<Statement>,
}

impl Policy {
    /// Parses a policy document from its JSON text.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let value: Value = serde_json::from_str(text).map_err(|_| PolicyError::InvalidJson)?;
        Policy::from_json(&value)
    }

    /// Parses a policy document from JSON already read.
    pub fn from_json(value: &Value) -> Result<Policy, PolicyError> {
        let obj = value.as_object().ok_or(PolicyError::NotAnObject)?;
        for name in obj.keys() {
            if !matches!(name.as_str(), "Version" | "Id" | "Statement") {
                return Err(PolicyError::UnsupportedElement {
                    statement: None,
                    element: name.clone(),
                });
            }
        }
        let version = match obj.get("Version") {
            None => Version::V2008_10_17,
            Some(Value::String(v)) if v == "2012-10-17" => Version::V2012_10_17,
            Some(Value::String(v)) if v == "2008-10-17" => Version::V2008_10_17,
            Some(other) => {
                return Err(PolicyError::UnsupportedVersion(
                    other
                        .as_str()
                        .map_or_else(|| other.to_string(), str::to_string),
                ))
            }
        };
        let id = optional_string(obj, "Id", None)?;
        let statements = match obj.get("Statement") {
            Some(Value::Array(list)) if list.is_empty() => return Err(PolicyError::EmptyStatement),
            Some(Value::Array(list)) => list
                .iter()
                .enumerate()
                .map(|(i, st)| parse_statement(i, st))
                .collect::<Result<Vec<_>, _>>()?,
            Some(single @ Value::Object(_)) => vec![parse_statement(0, single)?],
            Some(_) => {
                return Err(PolicyError::InvalidElement {
                    statement: None,
                    element: "Statement",
                    expected: "an object or a list of objects",
                })
            }
            None => return Err(PolicyError::MissingStatement),
        };
        Ok(Policy {
            version,
            id,
            statements,
        })
    }

    /// The rules a key policy must also follow: every statement names a principal, and no
    /// `ForAllValues:` condition uses a single-valued key whose absence would let every
    /// request through (`kms:EncryptionContext:<k>`, `aws:RequestTag/<k>`), which KMS refuses
    /// with an `OverlyPermissiveCondition:` message.
    pub fn validate_key_policy(&self) -> Result<(), PolicyError> {
        for (i, st) in self.statements.iter().enumerate() {
            if st.principal.is_none() {
                return Err(PolicyError::MissingPrincipal { statement: i });
            }
            for c in &st.conditions {
                let key = c.key.to_ascii_lowercase();
                let single_valued =
                    key.starts_with("kms:encryptioncontext:") || key.starts_with("aws:requesttag/");
                if c.operator.set == Some(SetQualifier::ForAllValues) && single_valued {
                    return Err(PolicyError::OverlyPermissiveCondition {
                        statement: i,
                        key: c.key.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The rule an IAM identity policy must also follow: no statement names a principal.
    pub fn validate_identity_policy(&self) -> Result<(), PolicyError> {
        match self.statements.iter().position(|st| st.principal.is_some()) {
            Some(i) => Err(PolicyError::PrincipalInIdentityPolicy { statement: i }),
            None => Ok(()),
        }
    }
}

fn optional_string(
    obj: &Map<String, Value>,
    name: &'static str,
    statement: Option<usize>,
) -> Result<Option<String>, PolicyError> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(PolicyError::InvalidElement {
            statement,
            element: name,
            expected: "a string",
        }),
    }
}

/// One element or its `Not` form, refusing both at once.
fn one_of<'a>(
    obj: &'a Map<String, Value>,
    i: usize,
    name: &'static str,
    not_name: &'static str,
) -> Result<Option<(bool, &'a Value)>, PolicyError> {
    match (obj.get(name), obj.get(not_name)) {
        (Some(_), Some(_)) => Err(PolicyError::ConflictingElements {
            statement: i,
            first: name,
            second: not_name,
        }),
        (Some(v), None) => Ok(Some((false, v))),
        (None, Some(v)) => Ok(Some((true, v))),
        (None, None) => Ok(None),
    }
}

/// A string or a non-empty list of strings.
fn strings(value: &Value, i: usize, element: &'static str) -> Result<Vec<String>, PolicyError> {
    let invalid = || PolicyError::InvalidElement {
        statement: Some(i),
        element,
        expected: "a string or a non-empty list of strings",
    };
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(list) if !list.is_empty() => list
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(invalid))
            .collect(),
        _ => Err(invalid()),
    }
}

fn parse_statement(i: usize, value: &Value) -> Result<Statement, PolicyError> {
    let obj = value.as_object().ok_or(PolicyError::InvalidElement {
        statement: Some(i),
        element: "Statement",
        expected: "an object",
    })?;
    for name in obj.keys() {
        let known = matches!(
            name.as_str(),
            "Sid"
                | "Effect"
                | "Principal"
                | "NotPrincipal"
                | "Action"
                | "NotAction"
                | "Resource"
                | "NotResource"
                | "Condition"
        );
        if !known {
            return Err(PolicyError::UnsupportedElement {
                statement: Some(i),
                element: name.clone(),
            });
        }
    }
    let sid = optional_string(obj, "Sid", Some(i))?;
    let effect = match obj.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err(PolicyError::InvalidEffect { statement: i }),
    };
    let principal = one_of(obj, i, "Principal", "NotPrincipal")?
        .map(|(negated, v)| parse_principal(i, negated, v))
        .transpose()?;
    let action = one_of(obj, i, "Action", "NotAction")?
        .map(|(negated, v)| {
            strings(v, i, if negated { "NotAction" } else { "Action" })
                .map(|patterns| PatternElement { negated, patterns })
        })
        .transpose()?;
    let resource = one_of(obj, i, "Resource", "NotResource")?
        .map(|(negated, v)| {
            strings(v, i, if negated { "NotResource" } else { "Resource" })
                .map(|patterns| PatternElement { negated, patterns })
        })
        .transpose()?;
    let conditions = match obj.get("Condition") {
        None => Vec::new(),
        Some(v) => parse_conditions(i, v)?,
    };
    Ok(Statement {
        sid,
        effect,
        principal,
        action,
        resource,
        conditions,
    })
}

fn parse_principal(
    i: usize,
    negated: bool,
    value: &Value,
) -> Result<PrincipalElement, PolicyError> {
    let invalid = |p: &str| PolicyError::InvalidPrincipal {
        statement: i,
        principal: p.to_string(),
    };
    let map = match value {
        Value::String(s) if s == "*" => {
            return Ok(PrincipalElement {
                negated,
                entries: None,
            })
        }
        Value::Object(map) if !map.is_empty() => map,
        other => return Err(invalid(&other.to_string())),
    };
    let mut entries = Vec::new();
    for (kind, names) in map {
        let element = if negated { "NotPrincipal" } else { "Principal" };
        for name in strings(names, i, element)? {
            let entry = match kind.as_str() {
                "AWS" => aws_principal(&name).ok_or_else(|| invalid(&name))?,
                "Service" if !name.is_empty() => PrincipalEntry::Service(name),
                "Federated" if !name.is_empty() => PrincipalEntry::Federated(name),
                "CanonicalUser" if !name.is_empty() => PrincipalEntry::CanonicalUser(name),
                _ => return Err(invalid(&format!("{kind}: {name}"))),
            };
            entries.push(entry);
        }
    }
    Ok(PrincipalElement {
        negated,
        entries: Some(entries),
    })
}

/// `*`, an account ID, an account root ARN, or another IAM/STS ARN.
fn aws_principal(name: &str) -> Option<PrincipalEntry> {
    if name == "*" {
        return Some(PrincipalEntry::AnyAws);
    }
    if is_account_id(name) {
        return Some(PrincipalEntry::Account(name.to_string()));
    }
    let arn = IamArn::parse(name)?;
    Some(if arn.service == "iam" && arn.resource == "root" {
        PrincipalEntry::Account(arn.account.to_string())
    } else {
        PrincipalEntry::Arn(name.to_string())
    })
}

fn parse_conditions(i: usize, value: &Value) -> Result<Vec<Condition>, PolicyError> {
    let invalid = |expected| PolicyError::InvalidElement {
        statement: Some(i),
        element: "Condition",
        expected,
    };
    let ops = value
        .as_object()
        .ok_or_else(|| invalid("an object of operators"))?;
    let mut out = Vec::new();
    for (op_name, keys) in ops {
        let operator =
            Operator::parse(op_name).ok_or_else(|| PolicyError::UnknownConditionOperator {
                statement: i,
                operator: op_name.clone(),
            })?;
        let keys = keys
            .as_object()
            .ok_or_else(|| invalid("an object of condition keys under each operator"))?;
        for (key, values) in keys {
            let values = match values {
                Value::Array(list) => list
                    .iter()
                    .map(scalar)
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| invalid("strings, numbers or booleans as values"))?,
                other => vec![scalar(other)
                    .ok_or_else(|| invalid("strings, numbers or booleans as values"))?],
            };
            out.push(Condition {
                operator,
                operator_name: op_name.clone(),
                key: key.clone(),
                values,
            });
        }
    }
    Ok(out)
}

/// A condition value as text (AWS compares numbers and booleans by their text too).
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DEFAULT: &str = r#"{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {
      "AWS" : "arn:aws:iam::111122223333:root"
    },
    "Action" : "kms:*",
    "Resource" : "*"
  } ]
}"#;

    #[test]
    fn the_default_key_policy_parses() {
        let p = Policy::parse(DEFAULT).unwrap();
        assert_eq!(p.version, Version::V2012_10_17);
        assert_eq!(p.id.as_deref(), Some("key-default-1"));
        let st = &p.statements[0];
        assert_eq!(st.sid.as_deref(), Some("Enable IAM User Permissions"));
        assert_eq!(
            st.principal.as_ref().unwrap().entries,
            Some(vec![PrincipalEntry::Account("111122223333".into())])
        );
        p.validate_key_policy().unwrap();
        assert!(p.validate_identity_policy().is_err());
    }

    #[test]
    fn every_principal_form_is_read() {
        let p = Policy::parse(
            r#"{"Statement":{"Effect":"Deny","NotPrincipal":{"AWS":["*","111122223333",
            "arn:aws:iam::111122223333:role/r","arn:aws:sts::111122223333:assumed-role/r/s"],
            "Service":"logs.amazonaws.com"},"NotAction":"kms:Decrypt","NotResource":["a","b"],
            "Condition":{"Bool":{"aws:SecureTransport":false},"NumericLessThan":{"n":[1,2.5]}}}}"#,
        )
        .unwrap();
        assert_eq!(p.version, Version::V2008_10_17);
        let st = &p.statements[0];
        let pr = st.principal.as_ref().unwrap();
        assert!(pr.negated);
        assert_eq!(pr.entries.as_ref().unwrap().len(), 5);
        assert!(st.action.as_ref().unwrap().negated);
        assert_eq!(st.resource.as_ref().unwrap().patterns, vec!["a", "b"]);
        assert_eq!(st.conditions.len(), 2);
        assert!(st
            .conditions
            .iter()
            .any(|c| c.values == vec!["1".to_string(), "2.5".to_string()]));
    }

    #[test]
    fn malformed_documents_get_typed_errors() {
        let cases: &[(&str, PolicyError)] = &[
            ("{", PolicyError::InvalidJson),
            ("[]", PolicyError::NotAnObject),
            (
                r#"{"Version":"2020-01-01","Statement":[]}"#,
                PolicyError::UnsupportedVersion("2020-01-01".into()),
            ),
            (r#"{"Version":"2012-10-17"}"#, PolicyError::MissingStatement),
            (r#"{"Statement":[]}"#, PolicyError::EmptyStatement),
            (
                r#"{"Statement":[{"Effect":"Permit"}]}"#,
                PolicyError::InvalidEffect { statement: 0 },
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"a","NotAction":"b"}]}"#,
                PolicyError::ConflictingElements {
                    statement: 0,
                    first: "Action",
                    second: "NotAction",
                },
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"alice"}}]}"#,
                PolicyError::InvalidPrincipal {
                    statement: 0,
                    principal: "alice".into(),
                },
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Condition":{"StringSimilar":{"k":"v"}}}]}"#,
                PolicyError::UnknownConditionOperator {
                    statement: 0,
                    operator: "StringSimilar".into(),
                },
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Actions":"kms:*"}]}"#,
                PolicyError::UnsupportedElement {
                    statement: Some(0),
                    element: "Actions".into(),
                },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(&Policy::parse(text).unwrap_err(), want, "{text}");
        }
        assert_eq!(
            PolicyError::InvalidEffect { statement: 2 }.to_string(),
            "Statement 3 must have Effect Allow or Deny."
        );
    }

    #[test]
    fn for_all_values_with_encryption_context_is_overly_permissive() {
        let p = Policy::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",
            "Action":"kms:Decrypt","Resource":"*",
            "Condition":{"ForAllValues:StringEquals":{"kms:EncryptionContext:Dept":"IT"}}}]}"#,
        )
        .unwrap();
        let err = p.validate_key_policy().unwrap_err();
        assert!(
            err.to_string().starts_with("OverlyPermissiveCondition:"),
            "{err}"
        );
        let ok = Policy::parse(
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*",
            "Condition":{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":"Dept"}}}]}"#,
        )
        .unwrap();
        ok.validate_key_policy().unwrap();
    }

    /// Any JSON value, biased towards the policy's own member names.
    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            "[ -~]{0,12}".prop_map(Value::String),
            Just(Value::String("*".into())),
            Just(Value::String("2012-10-17".into())),
            Just(Value::String("Allow".into())),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            let name = prop_oneof![
                Just("Version".to_string()),
                Just("Statement".to_string()),
                Just("Effect".to_string()),
                Just("Principal".to_string()),
                Just("NotPrincipal".to_string()),
                Just("AWS".to_string()),
                Just("Action".to_string()),
                Just("Resource".to_string()),
                Just("Condition".to_string()),
                Just("StringLike".to_string()),
                Just("ForAllValues:NumericLessThanIfExists".to_string()),
                "[A-Za-z:]{1,12}",
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                proptest::collection::btree_map(name, inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any JSON gets a policy or a typed error, never a panic; what parses, validates
        /// without panicking too.
        #[test]
        fn parsing_arbitrary_json_never_panics(v in arb_json()) {
            if let Ok(p) = Policy::from_json(&v) {
                let _ = p.validate_key_policy();
                let _ = p.validate_identity_policy();
            }
        }

        /// Any text, likewise.
        #[test]
        fn parsing_arbitrary_text_never_panics(s in "\\PC{0,64}") {
            let _ = Policy::parse(&s);
        }
    }
}
