//! The `Condition` element: operators, and how one condition is decided against a request.
//!
//! The rules, as IAM documents them:
//! - several values for one key in one condition: any of them may match (OR); several keys or
//!   several operators: all must hold (AND);
//! - a key the request lacks: a positive operator is false, a negated one (`StringNotEquals`,
//!   `NotIpAddress`, …) true; with `…IfExists` true; `ForAllValues:` true, `ForAnyValue:` false;
//! - negated operators negate the positive match of each request value against all the policy
//!   values: with no set prefix, no request value may match any policy value; with
//!   `ForAnyValue:` some request value must match none; with `ForAllValues:` every one;
//! - `Null`: `true` holds when the key is absent (or empty), `false` when it is present;
//! - a policy value that cannot be read for its operator (a number that is not a number, a
//!   CIDR that is not a CIDR) or whose policy variable cannot be filled matches nothing.

use std::net::IpAddr;

use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{Date, OffsetDateTime};

use crate::context::{base64, ContextValue, RequestContext};
use crate::pattern::{self, Tok};

/// `ForAnyValue:` or `ForAllValues:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetQualifier {
    /// `ForAnyValue:`: some request value must satisfy the operator.
    ForAnyValue,
    /// `ForAllValues:`: every request value must (true when there are none).
    ForAllValues,
}

/// How an ordered comparison compares (numbers and dates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    /// `…Equals`
    Equals,
    /// `…LessThan`
    LessThan,
    /// `…LessThanEquals`
    LessThanEquals,
    /// `…GreaterThan`
    GreaterThan,
    /// `…GreaterThanEquals`
    GreaterThanEquals,
}

impl Ordering {
    fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::{Equal, Greater, Less};
        match self {
            Ordering::Equals => ord == Equal,
            Ordering::LessThan => ord == Less,
            Ordering::LessThanEquals => ord != Greater,
            Ordering::GreaterThan => ord == Greater,
            Ordering::GreaterThanEquals => ord != Less,
        }
    }
}

/// The positive comparison an operator makes (its negated form is [`Operator::negated`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `StringEquals` / `StringNotEquals`: exact, case-sensitive.
    StringEquals,
    /// `StringEqualsIgnoreCase` / `StringNotEqualsIgnoreCase`.
    StringEqualsIgnoreCase,
    /// `StringLike` / `StringNotLike`: `*` and `?` wildcards, case-sensitive.
    StringLike,
    /// `ArnEquals`/`ArnLike` and their negations: segment by segment, with wildcards.
    ArnLike,
    /// `Numeric…`.
    Numeric(Ordering),
    /// `Date…` (ISO 8601 or epoch seconds).
    Date(Ordering),
    /// `Bool`.
    Bool,
    /// `IpAddress` / `NotIpAddress`: CIDR (v4 or v6) or single address.
    IpAddress,
    /// `BinaryEquals`: the base64 text of the value.
    BinaryEquals,
    /// `Null`: whether the key is absent.
    Null,
}

/// A condition operator, e.g. `ForAnyValue:StringNotLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operator {
    /// The set prefix, if any.
    pub set: Option<SetQualifier>,
    /// What is compared.
    pub comparison: Comparison,
    /// A `Not…` operator.
    pub negated: bool,
    /// The `…IfExists` suffix.
    pub if_exists: bool,
}

impl Operator {
    /// Reads an operator name (case-insensitive); `None` when the language has no such operator.
    pub fn parse(name: &str) -> Option<Operator> {
        let lower = name.to_ascii_lowercase();
        let (set, rest) = if let Some(rest) = lower.strip_prefix("foranyvalue:") {
            (Some(SetQualifier::ForAnyValue), rest)
        } else if let Some(rest) = lower.strip_prefix("forallvalues:") {
            (Some(SetQualifier::ForAllValues), rest)
        } else {
            (None, lower.as_str())
        };
        let (base, if_exists) = match rest.strip_suffix("ifexists") {
            Some(base) if base != "null" => (base, true),
            _ => (rest, false),
        };
        use Comparison as C;
        use Ordering as O;
        let (comparison, negated) = match base {
            "stringequals" => (C::StringEquals, false),
            "stringnotequals" => (C::StringEquals, true),
            "stringequalsignorecase" => (C::StringEqualsIgnoreCase, false),
            "stringnotequalsignorecase" => (C::StringEqualsIgnoreCase, true),
            "stringlike" => (C::StringLike, false),
            "stringnotlike" => (C::StringLike, true),
            "arnequals" | "arnlike" => (C::ArnLike, false),
            "arnnotequals" | "arnnotlike" => (C::ArnLike, true),
            "numericequals" => (C::Numeric(O::Equals), false),
            "numericnotequals" => (C::Numeric(O::Equals), true),
            "numericlessthan" => (C::Numeric(O::LessThan), false),
            "numericlessthanequals" => (C::Numeric(O::LessThanEquals), false),
            "numericgreaterthan" => (C::Numeric(O::GreaterThan), false),
            "numericgreaterthanequals" => (C::Numeric(O::GreaterThanEquals), false),
            "dateequals" => (C::Date(O::Equals), false),
            "datenotequals" => (C::Date(O::Equals), true),
            "datelessthan" => (C::Date(O::LessThan), false),
            "datelessthanequals" => (C::Date(O::LessThanEquals), false),
            "dategreaterthan" => (C::Date(O::GreaterThan), false),
            "dategreaterthanequals" => (C::Date(O::GreaterThanEquals), false),
            "bool" => (C::Bool, false),
            "binaryequals" => (C::BinaryEquals, false),
            "ipaddress" => (C::IpAddress, false),
            "notipaddress" => (C::IpAddress, true),
            "null" => (C::Null, false),
            _ => return None,
        };
        Some(Operator {
            set,
            comparison,
            negated,
            if_exists,
        })
    }
}

/// One condition: an operator, a key and the policy's values for it.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The operator.
    pub operator: Operator,
    /// The operator as written (for explanations).
    pub operator_name: String,
    /// The condition key as written (matched without case).
    pub key: String,
    /// The policy's values (numbers and booleans kept as their JSON text).
    pub values: Vec<String>,
}

impl Condition {
    /// Whether this condition holds for the request. `variables` is false for policies of
    /// version 2008-10-17, where `${…}` is plain text.
    pub fn holds(&self, ctx: &RequestContext, variables: bool) -> bool {
        let op = self.operator;
        let present = ctx.values(&self.key).filter(|v| !v.is_empty());
        if op.comparison == Comparison::Null {
            return self
                .values
                .iter()
                .any(|v| match v.to_ascii_lowercase().as_str() {
                    "true" => present.is_none(),
                    "false" => present.is_some(),
                    _ => false,
                });
        }
        let Some(request_values) = present else {
            return match op.set {
                Some(SetQualifier::ForAllValues) => true,
                _ if op.if_exists => true,
                Some(SetQualifier::ForAnyValue) => false,
                None => op.negated,
            };
        };
        let vars = variables.then_some(ctx);
        // Policy values read once, as tokens (strings) or typed values.
        let policy: Vec<PolicyValue> = self
            .values
            .iter()
            .filter_map(|v| PolicyValue::read(op.comparison, v, vars))
            .collect();
        let matches = |rv: &ContextValue| policy.iter().any(|pv| pv.matches(op.comparison, rv));
        match (op.set, op.negated) {
            (Some(SetQualifier::ForAllValues), false) => request_values.iter().all(matches),
            (Some(SetQualifier::ForAllValues), true) => request_values.iter().all(|v| !matches(v)),
            (Some(SetQualifier::ForAnyValue), false) | (None, false) => {
                request_values.iter().any(matches)
            }
            (Some(SetQualifier::ForAnyValue), true) => request_values.iter().any(|v| !matches(v)),
            (None, true) => !request_values.iter().any(matches),
        }
    }
}

/// A policy value read for its operator.
enum PolicyValue {
    Tokens(Vec<Tok>),
    Number(f64),
    Date(OffsetDateTime),
    Bool(bool),
    Net(IpAddr, u8),
    Text(String),
}

impl PolicyValue {
    fn read(comparison: Comparison, raw: &str, vars: Option<&RequestContext>) -> Option<Self> {
        match comparison {
            Comparison::StringEquals
            | Comparison::StringEqualsIgnoreCase
            | Comparison::StringLike
            | Comparison::ArnLike => pattern::resolve(raw, vars).map(PolicyValue::Tokens),
            Comparison::Numeric(_) => raw.trim().parse().ok().map(PolicyValue::Number),
            Comparison::Date(_) => parse_date(raw).map(PolicyValue::Date),
            Comparison::Bool => {
                let text = pattern::literal(&pattern::resolve(raw, vars)?);
                parse_bool(&text).map(PolicyValue::Bool)
            }
            Comparison::IpAddress => parse_cidr(raw).map(|(ip, len)| PolicyValue::Net(ip, len)),
            Comparison::BinaryEquals => Some(PolicyValue::Text(raw.to_string())),
            Comparison::Null => None,
        }
    }

    fn matches(&self, comparison: Comparison, rv: &ContextValue) -> bool {
        match (comparison, self) {
            (Comparison::StringEquals, PolicyValue::Tokens(t)) => {
                pattern::literal(t) == rv.as_string()
            }
            (Comparison::StringEqualsIgnoreCase, PolicyValue::Tokens(t)) => {
                pattern::literal(t).to_lowercase() == rv.as_string().to_lowercase()
            }
            (Comparison::StringLike, PolicyValue::Tokens(t)) => {
                pattern::glob(t, &rv.as_string(), false)
            }
            (Comparison::ArnLike, PolicyValue::Tokens(t)) => pattern::arn_like(t, &rv.as_string()),
            (Comparison::Numeric(ord), PolicyValue::Number(p)) => context_number(rv)
                .and_then(|n| n.partial_cmp(p))
                .is_some_and(|o| ord.holds(o)),
            (Comparison::Date(ord), PolicyValue::Date(p)) => {
                context_date(rv).is_some_and(|d| ord.holds(d.cmp(p)))
            }
            (Comparison::Bool, PolicyValue::Bool(p)) => context_bool(rv) == Some(*p),
            (Comparison::IpAddress, PolicyValue::Net(net, len)) => {
                context_ip(rv).is_some_and(|ip| in_network(ip, *net, *len))
            }
            (Comparison::BinaryEquals, PolicyValue::Text(p)) => match rv {
                ContextValue::Binary(bytes) => base64(bytes) == *p,
                other => other.as_string() == *p,
            },
            _ => false,
        }
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// An ISO 8601 / RFC 3339 date-time, a bare `YYYY-MM-DD` (midnight UTC), or epoch seconds.
pub(crate) fn parse_date(raw: &str) -> Option<OffsetDateTime> {
    let s = raw.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return OffsetDateTime::from_unix_timestamp(secs).ok();
    }
    if let Ok(d) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(d);
    }
    if let Ok(d) = OffsetDateTime::parse(s, &Iso8601::DEFAULT) {
        return Some(d);
    }
    Date::parse(s, &Iso8601::DEFAULT)
        .ok()
        .map(|d| d.midnight().assume_utc())
}

/// `a.b.c.d/n`, `x::y/n`, or a single address (a /32 or /128 network).
pub(crate) fn parse_cidr(raw: &str) -> Option<(IpAddr, u8)> {
    let s = raw.trim();
    let (addr, len) = match s.split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(len) => len.parse::<u8>().ok().filter(|l| *l <= max)?,
        None => max,
    };
    Some((ip, len))
}

fn in_network(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    let (ip, net, bits) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = bits - u32::from(len);
    shift >= bits || (ip >> shift) == (net >> shift)
}

fn context_number(v: &ContextValue) -> Option<f64> {
    match v {
        ContextValue::Number(n) => Some(*n),
        ContextValue::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn context_date(v: &ContextValue) -> Option<OffsetDateTime> {
    match v {
        ContextValue::Date(d) => Some(*d),
        ContextValue::Number(n) if n.is_finite() => {
            OffsetDateTime::from_unix_timestamp(n.trunc() as i64).ok()
        }
        ContextValue::String(s) => parse_date(s),
        _ => None,
    }
}

fn context_bool(v: &ContextValue) -> Option<bool> {
    match v {
        ContextValue::Bool(b) => Some(*b),
        ContextValue::String(s) => parse_bool(s),
        _ => None,
    }
}

fn context_ip(v: &ContextValue) -> Option<IpAddr> {
    match v {
        ContextValue::Ip(ip) => Some(*ip),
        ContextValue::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Caller;

    fn ctx() -> RequestContext {
        let caller = Caller::from_arn("arn:aws:iam::111122223333:user/alice").expect("valid");
        RequestContext::new(
            caller,
            "kms:Decrypt",
            "arn:aws:kms:us-east-1:111122223333:key/k",
        )
    }

    fn cond(op: &str, key: &str, values: &[&str]) -> Condition {
        Condition {
            operator: Operator::parse(op).expect("known operator"),
            operator_name: op.to_string(),
            key: key.to_string(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    #[test]
    fn operators_parse_with_prefixes_and_suffixes() {
        let op = Operator::parse("ForAnyValue:StringNotLikeIfExists").unwrap();
        assert_eq!(op.set, Some(SetQualifier::ForAnyValue));
        assert!(op.negated && op.if_exists);
        assert_eq!(op.comparison, Comparison::StringLike);
        assert!(Operator::parse("NullIfExists").is_none());
        assert!(Operator::parse("StringSortOf").is_none());
        assert!(Operator::parse("ForSomeValues:StringLike").is_none());
    }

    #[test]
    fn absent_keys_follow_the_operator() {
        let c = ctx();
        assert!(!cond("StringEquals", "aws:SourceVpc", &["v"]).holds(&c, true));
        assert!(cond("StringNotEquals", "aws:SourceVpc", &["v"]).holds(&c, true));
        assert!(cond("StringEqualsIfExists", "aws:SourceVpc", &["v"]).holds(&c, true));
        assert!(cond("ForAllValues:StringEquals", "aws:TagKeys", &["v"]).holds(&c, true));
        assert!(!cond("ForAnyValue:StringEquals", "aws:TagKeys", &["v"]).holds(&c, true));
        assert!(cond("Null", "aws:TagKeys", &["true"]).holds(&c, true));
        assert!(!cond("Null", "aws:TagKeys", &["false"]).holds(&c, true));
    }

    #[test]
    fn typed_operators_compare_typed_values() {
        let c = ctx()
            .with("aws:SourceIp", "2001:db8::7".parse::<IpAddr>().unwrap())
            .with("n", 7i64)
            .with(
                "t",
                OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
            )
            .with("b", true)
            .with("bin", ContextValue::Binary(b"foo".to_vec()));
        assert!(cond("IpAddress", "aws:SourceIp", &["2001:db8::/32"]).holds(&c, true));
        assert!(!cond("IpAddress", "aws:SourceIp", &["10.0.0.0/8"]).holds(&c, true));
        assert!(cond("NotIpAddress", "aws:SourceIp", &["10.0.0.0/8"]).holds(&c, true));
        assert!(cond("NumericLessThan", "n", &["8"]).holds(&c, true));
        assert!(!cond("NumericGreaterThan", "n", &["7"]).holds(&c, true));
        assert!(cond("NumericNotEquals", "n", &["8", "9"]).holds(&c, true));
        assert!(cond("DateGreaterThan", "t", &["2023-01-01T00:00:00Z"]).holds(&c, true));
        assert!(cond("DateLessThan", "t", &["1800000000"]).holds(&c, true));
        assert!(cond("DateGreaterThanEquals", "t", &["2023-11-14"]).holds(&c, true));
        assert!(cond("Bool", "b", &["TRUE"]).holds(&c, true));
        assert!(cond("BinaryEquals", "bin", &["Zm9v"]).holds(&c, true));
        assert!(!cond("NumericEquals", "n", &["seven"]).holds(&c, true));
    }

    #[test]
    fn cidr_edges() {
        assert_eq!(
            parse_cidr("0.0.0.0/0"),
            Some(("0.0.0.0".parse().unwrap(), 0))
        );
        assert!(parse_cidr("10.0.0.0/33").is_none());
        assert!(parse_cidr("10.0.0/8").is_none());
        assert!(in_network(
            "1.2.3.4".parse().unwrap(),
            "0.0.0.0".parse().unwrap(),
            0
        ));
        assert!(in_network(
            "10.1.2.3".parse().unwrap(),
            "10.1.2.3".parse().unwrap(),
            32
        ));
        assert!(!in_network(
            "10.1.2.4".parse().unwrap(),
            "10.1.2.3".parse().unwrap(),
            32
        ));
    }
}
