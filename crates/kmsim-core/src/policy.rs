//! Key policy documents: the default policy and the checks a policy must pass to be stored.
//! Evaluation of policies is not done here (see docs/ARCHITECTURE.md).

use serde_json::Value;

use crate::error::{validation, KmsError};
use crate::ids::Scope;

/// The largest policy document AWS accepts, in bytes (resource quota; not adjustable).
pub const MAX_POLICY_BYTES: usize = 32_768;

/// The policy AWS attaches when CreateKey/ReplicateKey get none: the owning account gets
/// `kms:*`, which delegates to IAM. Printed in AWS's own layout.
pub fn default_key_policy(scope: &Scope) -> String {
    format!(
        "{{\n  \"Version\" : \"2012-10-17\",\n  \"Id\" : \"key-default-1\",\n  \"Statement\" : [ {{\n    \"Sid\" : \"Enable IAM User Permissions\",\n    \"Effect\" : \"Allow\",\n    \"Principal\" : {{\n      \"AWS\" : \"{}\"\n    }},\n    \"Action\" : \"kms:*\",\n    \"Resource\" : \"*\"\n  }} ]\n}}",
        scope.account_root_arn()
    )
}

/// Checks a policy document before it is stored: the model's length and character rules, the
/// 32 KiB quota, valid JSON, and the document structure KMS requires.
pub fn validate_policy(policy: &str) -> Result<(), KmsError> {
    if policy.is_empty() {
        return Err(validation::too_short(None, "policy", 1));
    }
    if policy.chars().count() > 131_072 {
        return Err(validation::too_long(None, "policy", 131_072));
    }
    let allowed = |c: char| matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}');
    if !policy.chars().all(allowed) {
        return Err(KmsError::Validation(
            "1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\u0009\\u000A\\u000D\\u0020-\\u00FF]+".into(),
        ));
    }
    if policy.len() > MAX_POLICY_BYTES {
        return Err(KmsError::LimitExceeded(format!(
            "The key policy exceeds the maximum size of {MAX_POLICY_BYTES} bytes."
        )));
    }
    let malformed = |why: &str| KmsError::MalformedPolicyDocument(why.to_string());
    let doc: Value = serde_json::from_str(policy)
        .map_err(|_| malformed("The policy document is not valid JSON."))?;
    let obj = doc
        .as_object()
        .ok_or_else(|| malformed("The policy document must be a JSON object."))?;
    if let Some(v) = obj.get("Version") {
        if !matches!(v.as_str(), Some("2012-10-17") | Some("2008-10-17")) {
            return Err(malformed("The policy document has an unsupported Version."));
        }
    }
    let statements: Vec<&Value> = match obj.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect(),
        Some(single @ Value::Object(_)) => vec![single],
        _ => return Err(malformed("The policy document must contain a Statement.")),
    };
    if statements.is_empty() {
        return Err(malformed(
            "The policy document must contain at least one statement.",
        ));
    }
    for st in statements {
        let st = st
            .as_object()
            .ok_or_else(|| malformed("Each policy statement must be a JSON object."))?;
        match st.get("Effect").and_then(Value::as_str) {
            Some("Allow") | Some("Deny") => {}
            _ => {
                return Err(malformed(
                    "Each policy statement must have Effect Allow or Deny.",
                ))
            }
        }
        if !st.contains_key("Principal") && !st.contains_key("NotPrincipal") {
            return Err(malformed("Policy contains a statement with no principal."));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccountId, Partition, Region};
    use proptest::prelude::*;

    fn scope() -> Scope {
        Scope {
            partition: Partition::parse("aws").unwrap(),
            region: Region::parse("us-east-1").unwrap(),
            account: AccountId::parse("111122223333").unwrap(),
        }
    }

    #[test]
    fn default_policy_is_valid_and_names_the_account() {
        let p = default_key_policy(&scope());
        validate_policy(&p).unwrap();
        let v: Value = serde_json::from_str(&p).unwrap();
        assert_eq!(
            v["Statement"][0]["Principal"]["AWS"],
            "arn:aws:iam::111122223333:root"
        );
        assert_eq!(v["Statement"][0]["Sid"], "Enable IAM User Permissions");
    }

    #[test]
    fn bad_policies_get_aws_errors() {
        assert_eq!(
            validate_policy("{not json").unwrap_err().code(),
            "MalformedPolicyDocumentException"
        );
        assert_eq!(
            validate_policy("{\"Version\":\"2012-10-17\"}")
                .unwrap_err()
                .code(),
            "MalformedPolicyDocumentException"
        );
        let no_principal = r#"{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#;
        assert_eq!(
            validate_policy(no_principal).unwrap_err().code(),
            "MalformedPolicyDocumentException"
        );
        let big = format!(
            r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Sid":"{}"}}]}}"#,
            "a".repeat(40_000)
        );
        assert_eq!(
            validate_policy(&big).unwrap_err().code(),
            "LimitExceededException"
        );
        assert_eq!(
            validate_policy("{\"x\":\"\u{4e2d}\"}").unwrap_err().code(),
            "ValidationException"
        );
    }

    /// Any JSON value, up to a small depth.
    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[ -~]{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map(
                    prop_oneof![
                        Just("Statement".to_string()),
                        Just("Effect".to_string()),
                        Just("Principal".to_string()),
                        Just("Version".to_string()),
                        "[A-Za-z]{1,8}"
                    ],
                    inner,
                    0..6
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A statement KMS accepts: an effect, a principal in one of its forms, and optional
    /// members.
    fn arb_statement() -> impl Strategy<Value = Value> {
        (
            prop_oneof![Just("Allow"), Just("Deny")],
            prop_oneof![
                Just(serde_json::json!("*")),
                Just(serde_json::json!({"AWS": "arn:aws:iam::111122223333:root"})),
                Just(
                    serde_json::json!({"AWS": ["arn:aws:iam::111122223333:role/a", "111122223333"]})
                ),
                Just(serde_json::json!({"Service": "kms.amazonaws.com"})),
            ],
            any::<bool>(),
            proptest::option::of("[A-Za-z0-9 ]{1,20}"),
            proptest::collection::vec("kms:[A-Z][a-zA-Z]{2,20}", 1..4),
        )
            .prop_map(|(effect, principal, not, sid, actions)| {
                let mut st = serde_json::Map::new();
                st.insert("Effect".into(), effect.into());
                st.insert(
                    if not { "NotPrincipal" } else { "Principal" }.into(),
                    principal,
                );
                st.insert("Action".into(), actions.into());
                st.insert("Resource".into(), "*".into());
                if let Some(sid) = sid {
                    st.insert("Sid".into(), sid.into());
                }
                Value::Object(st)
            })
    }

    proptest! {
        /// Bytes from a request: anything gets a stored policy or one of the AWS errors a
        /// policy can get, never a panic.
        #[test]
        fn any_text_is_accepted_or_refused_with_a_policy_error(s in "(?s).{0,200}") {
            if let Err(e) = validate_policy(&s) {
                prop_assert!(matches!(
                    e.code(),
                    "ValidationException" | "LimitExceededException" | "MalformedPolicyDocumentException"
                ), "{}", e.code());
            }
        }

        /// Any JSON document: accepted exactly when it is an object whose statements (one
        /// or a list of at least one) all have an effect and a principal.
        #[test]
        fn any_json_document_is_judged_by_its_statements(doc in arb_json()) {
            let text = doc.to_string();
            let statements: Option<Vec<&Value>> = match doc.get("Statement") {
                Some(Value::Array(l)) if !l.is_empty() => Some(l.iter().collect()),
                Some(o @ Value::Object(_)) => Some(vec![o]),
                _ => None,
            };
            let version_ok = doc
                .get("Version")
                .is_none_or(|v| matches!(v.as_str(), Some("2012-10-17") | Some("2008-10-17")));
            let expected = doc.is_object()
                && version_ok
                && statements.is_some_and(|sts| sts.iter().all(|st| {
                    matches!(st.get("Effect").and_then(Value::as_str), Some("Allow") | Some("Deny"))
                        && (st.get("Principal").is_some() || st.get("NotPrincipal").is_some())
                }));
            let got = validate_policy(&text);
            prop_assert_eq!(got.is_ok(), expected, "{} -> {:?}", text, got.err().map(|e| e.code()));
        }

        /// Well-formed policies are stored; the same policy with one statement's principal
        /// removed is a MalformedPolicyDocumentException.
        #[test]
        fn well_formed_policies_pass_and_a_missing_principal_fails(
            statements in proptest::collection::vec(arb_statement(), 1..5),
            versioned in any::<bool>(),
            drop_at in any::<usize>(),
        ) {
            let mut doc = serde_json::json!({"Statement": statements});
            if versioned {
                doc["Version"] = "2012-10-17".into();
            }
            prop_assert!(validate_policy(&doc.to_string()).is_ok());
            let list = doc["Statement"].as_array_mut().unwrap();
            let n = list.len();
            let st = list[drop_at % n].as_object_mut().unwrap();
            st.remove("Principal");
            st.remove("NotPrincipal");
            prop_assert_eq!(
                validate_policy(&doc.to_string()).unwrap_err().code(),
                "MalformedPolicyDocumentException"
            );
        }
    }
}
