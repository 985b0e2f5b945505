//! Request checks the AWS SDKs leave to the server (max lengths, ranges, enums, required
//! members), with AWS's messages.

use std::collections::HashMap;

use kmsim_core::error::validation;
use kmsim_core::KmsError;

/// A required member that is absent.
pub fn required<T>(v: Option<T>, member: &str) -> Result<T, KmsError> {
    v.ok_or_else(|| {
        KmsError::Validation(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// A string member's length (in characters) within `min..=max`.
pub fn str_len(v: &str, member: &str, min: usize, max: usize) -> Result<(), KmsError> {
    let n = v.chars().count();
    if n < min {
        return Err(validation::too_short(Some(v), member, min));
    }
    if n > max {
        return Err(validation::too_long(Some(v), member, max));
    }
    Ok(())
}

/// A sensitive blob member's length within `min..=max` (the value is never echoed).
pub fn secret_len(v: &[u8], member: &str, min: usize, max: usize) -> Result<(), KmsError> {
    if v.len() < min {
        return Err(validation::too_short(None, member, min));
    }
    if v.len() > max {
        return Err(validation::too_long(None, member, max));
    }
    Ok(())
}

/// An integer member within `min..=max`.
pub fn range(v: i64, member: &str, min: i64, max: i64) -> Result<(), KmsError> {
    if v < min {
        return Err(validation::below(v, member, min));
    }
    if v > max {
        return Err(validation::above(v, member, max));
    }
    Ok(())
}

/// A `Limit` member: `default` when absent, else within `1..=max`.
pub fn limit(v: Option<i32>, default: usize, max: i64) -> Result<usize, KmsError> {
    match v {
        None => Ok(default),
        Some(n) => {
            range(i64::from(n), "limit", 1, max)?;
            Ok(n as usize)
        }
    }
}

/// `GrantTokens`: at most 10 tokens of 1..8192 characters (accepted, not yet enforced).
pub fn grant_tokens(tokens: &[String]) -> Result<(), KmsError> {
    if tokens.len() > 10 {
        return Err(KmsError::Validation(format!(
            "1 validation error detected: Value '[{}]' at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10",
            tokens.join(", ")
        )));
    }
    for t in tokens {
        str_len(t, "grantTokens", 1, 8192)?;
    }
    Ok(())
}

/// The encryption context as an ordered map (the blob binds it canonically).
pub fn encryption_context(
    ctx: HashMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    ctx.into_iter().collect()
}
