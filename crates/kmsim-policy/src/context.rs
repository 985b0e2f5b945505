//! The request being authorized: who calls ([`Caller`]), what action on which resource, and the
//! values of the condition keys ([`RequestContext`]).
//!
//! Keys are looked up without regard to case (IAM condition key names are case-insensitive,
//! and so is the `<k>` part of `kms:EncryptionContext:<k>`); values keep their case.

use std::collections::BTreeMap;
use std::net::IpAddr;

use time::OffsetDateTime;

use crate::error::PolicyError;

/// One value of a condition key. Operators convert where AWS does: a `String` `"true"` is a
/// Bool, a `String` `"10.0.0.1"` an IP address, a `Number` a date in epoch seconds.
#[derive(Debug, Clone, PartialEq)]
pub enum ContextValue {
    /// Text (most keys).
    String(String),
    /// `aws:SecureTransport`, `kms:MultiRegion`, `kms:GrantIsForAWSResource`, …
    Bool(bool),
    /// `kms:ScheduleKeyDeletionPendingWindowInDays`, `aws:EpochTime`, …
    Number(f64),
    /// `aws:CurrentTime`, `kms:ValidTo`, …
    Date(OffsetDateTime),
    /// `aws:SourceIp`.
    Ip(IpAddr),
    /// Binary keys, compared base64-encoded by `BinaryEquals`.
    Binary(Vec<u8>),
}

impl ContextValue {
    /// The value as the string operators see it.
    pub fn as_string(&self) -> String {
        match self {
            ContextValue::String(s) => s.clone(),
            ContextValue::Bool(b) => b.to_string(),
            ContextValue::Number(n) => n.to_string(),
            ContextValue::Date(d) => d
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            ContextValue::Ip(ip) => ip.to_string(),
            ContextValue::Binary(bytes) => base64(bytes),
        }
    }
}

impl From<&str> for ContextValue {
    fn from(s: &str) -> Self {
        ContextValue::String(s.to_string())
    }
}

impl From<String> for ContextValue {
    fn from(s: String) -> Self {
        ContextValue::String(s)
    }
}

impl From<bool> for ContextValue {
    fn from(b: bool) -> Self {
        ContextValue::Bool(b)
    }
}

impl From<i64> for ContextValue {
    fn from(n: i64) -> Self {
        ContextValue::Number(n as f64)
    }
}

impl From<f64> for ContextValue {
    fn from(n: f64) -> Self {
        ContextValue::Number(n)
    }
}

impl From<OffsetDateTime> for ContextValue {
    fn from(d: OffsetDateTime) -> Self {
        ContextValue::Date(d)
    }
}

impl From<IpAddr> for ContextValue {
    fn from(ip: IpAddr) -> Self {
        ContextValue::Ip(ip)
    }
}

/// Standard base64 with padding (what `BinaryEquals` values are written in).
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// What kind of identity is calling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account's root user (`arn:aws:iam::<acct>:root`): not subject to identity policies.
    AccountRoot,
    /// An IAM user (`arn:aws:iam::<acct>:user/<path/>name`).
    User,
    /// An IAM role used directly (`arn:aws:iam::<acct>:role/<path/>name`).
    Role,
    /// A role session (`arn:aws:sts::<acct>:assumed-role/<role>/<session>`).
    AssumedRole,
    /// An AWS service principal (`ec2.amazonaws.com`): no account, no identity policies.
    Service,
}

/// The principal making the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller's own ARN (for a session, the `assumed-role` ARN; for a service, its name).
    pub arn: String,
    /// The ARN a resource policy names to mean this caller (for a session, its role's ARN);
    /// the value of `aws:PrincipalArn`.
    pub principal_arn: String,
    /// The caller's account (none for a service principal).
    pub account: Option<String>,
    /// The partition of the caller's ARN (`aws`, `aws-cn`, …).
    pub partition: String,
    /// What kind of identity this is.
    pub kind: PrincipalKind,
    /// `aws:username` (IAM users only).
    pub username: Option<String>,
    /// `aws:userid` (e.g. `AIDA…` for a user, `AROA…:<session>` for a session), when known.
    pub userid: Option<String>,
    /// `aws:PrincipalTag/<k>` values.
    pub tags: BTreeMap<String, String>,
}

impl Caller {
    /// Reads a caller from its ARN: an account root, an IAM user or role, or an STS
    /// assumed-role session (whose role ARN, without a path, becomes `principal_arn`).
    pub fn from_arn(arn: &str) -> Result<Caller, PolicyError> {
        let bad = || PolicyError::InvalidCallerArn(arn.to_string());
        let IamArn {
            partition,
            service,
            account,
            resource: res,
        } = IamArn::parse(arn).ok_or_else(bad)?;
        let base = |kind, principal_arn: String, username| Caller {
            arn: arn.to_string(),
            principal_arn,
            account: Some(account.to_string()),
            partition: partition.to_string(),
            kind,
            username,
            userid: None,
            tags: BTreeMap::new(),
        };
        match (service, res.split_once('/')) {
            ("iam", None) if res == "root" => {
                Ok(base(PrincipalKind::AccountRoot, arn.into(), None))
            }
            ("iam", Some(("user", path_name))) if !path_name.is_empty() => {
                let name = path_name.rsplit('/').next().unwrap_or(path_name);
                Ok(base(
                    PrincipalKind::User,
                    arn.into(),
                    Some(name.to_string()),
                ))
            }
            ("iam", Some(("role", path_name))) if !path_name.is_empty() => {
                Ok(base(PrincipalKind::Role, arn.into(), None))
            }
            ("sts", Some(("assumed-role", role_session))) => match role_session.split_once('/') {
                Some((role, session)) if !role.is_empty() && !session.is_empty() => {
                    let role_arn = format!("arn:{partition}:iam::{account}:role/{role}");
                    Ok(base(PrincipalKind::AssumedRole, role_arn, None))
                }
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }

    /// The root user of an account, in the `aws` partition.
    pub fn account_root(account: &str) -> Result<Caller, PolicyError> {
        Caller::from_arn(&format!("arn:aws:iam::{account}:root"))
    }

    /// An AWS service principal such as `ec2.amazonaws.com`.
    pub fn service(name: &str) -> Caller {
        Caller {
            arn: name.to_string(),
            principal_arn: name.to_string(),
            account: None,
            partition: "aws".to_string(),
            kind: PrincipalKind::Service,
            username: None,
            userid: None,
            tags: BTreeMap::new(),
        }
    }

    /// The same caller with `aws:userid`.
    pub fn with_userid(mut self, userid: &str) -> Caller {
        self.userid = Some(userid.to_string());
        self
    }

    /// The same caller with one more principal tag.
    pub fn with_tag(mut self, key: &str, value: &str) -> Caller {
        self.tags.insert(key.to_string(), value.to_string());
        self
    }

    /// The ARN of the caller's account root (`arn:<partition>:iam::<acct>:root`).
    pub fn account_root_arn(&self) -> Option<String> {
        self.account
            .as_ref()
            .map(|a| format!("arn:{}:iam::{a}:root", self.partition))
    }

    /// The `aws:PrincipalType` value.
    fn principal_type(&self) -> &'static str {
        match self.kind {
            PrincipalKind::AccountRoot => "Account",
            PrincipalKind::User => "User",
            PrincipalKind::Role | PrincipalKind::AssumedRole => "AssumedRole",
            PrincipalKind::Service => "Service",
        }
    }
}

/// An ARN of IAM or STS: `arn:<partition>:<service>::<account>:<resource>`, with a partition, no
/// Region, a 12-digit account and a resource.
pub(crate) struct IamArn<'a> {
    pub(crate) partition: &'a str,
    pub(crate) service: &'a str,
    pub(crate) account: &'a str,
    pub(crate) resource: &'a str,
}

impl<'a> IamArn<'a> {
    pub(crate) fn parse(arn: &'a str) -> Option<IamArn<'a>> {
        let mut parts = arn.splitn(6, ':');
        let mut next = || parts.next();
        let (Some("arn"), Some(partition), Some(service), Some(""), Some(account), Some(resource)) =
            (next(), next(), next(), next(), next(), next())
        else {
            return None;
        };
        let ok = !partition.is_empty()
            && matches!(service, "iam" | "sts")
            && is_account_id(account)
            && !resource.is_empty();
        ok.then_some(IamArn {
            partition,
            service,
            account,
            resource,
        })
    }
}

/// Whether `s` is a 12-digit AWS account ID.
pub(crate) fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// The request to authorize: caller, action, resource and condition keys.
///
/// [`RequestContext::new`] derives the keys that only depend on the caller: `aws:PrincipalArn`,
/// `aws:PrincipalAccount`, `aws:PrincipalType`, `aws:username`, `aws:userid`,
/// `aws:PrincipalTag/<k>`, `aws:PrincipalIsAWSService` and `kms:CallerAccount`. Everything else
/// (`aws:SourceIp`, `aws:CurrentTime`, `kms:ViaService`, …) is set by whoever builds the
/// request, with [`RequestContext::with`] and friends.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestContext {
    /// Who calls.
    pub caller: Caller,
    /// The action, e.g. `kms:Decrypt`.
    pub action: String,
    /// The resource ARN, e.g. the key's ARN.
    pub resource: String,
    /// Condition keys, lower-cased, to their values.
    keys: BTreeMap<String, Vec<ContextValue>>,
    /// The request's encryption context, for grant constraints (`None`: the operation takes none).
    encryption_context: Option<BTreeMap<String, String>>,
    /// For `kms:RetireGrant`, the ID of the grant being retired.
    retiring_grant: Option<String>,
}

impl RequestContext {
    /// A request by `caller` for `action` on `resource`, with the caller's own keys set.
    pub fn new(caller: Caller, action: &str, resource: &str) -> RequestContext {
        let mut ctx = RequestContext {
            action: action.to_string(),
            resource: resource.to_string(),
            keys: BTreeMap::new(),
            encryption_context: None,
            retiring_grant: None,
            caller: caller.clone(),
        };
        ctx.set(
            "aws:PrincipalArn",
            vec![caller.principal_arn.clone().into()],
        );
        ctx.set("aws:PrincipalType", vec![caller.principal_type().into()]);
        ctx.set(
            "aws:PrincipalIsAWSService",
            vec![(caller.kind == PrincipalKind::Service).into()],
        );
        if let Some(account) = &caller.account {
            ctx.set("aws:PrincipalAccount", vec![account.clone().into()]);
            ctx.set("kms:CallerAccount", vec![account.clone().into()]);
        }
        if let Some(name) = &caller.username {
            ctx.set("aws:username", vec![name.clone().into()]);
        }
        if let Some(id) = &caller.userid {
            ctx.set("aws:userid", vec![id.clone().into()]);
        }
        for (k, v) in &caller.tags {
            ctx.set(&format!("aws:PrincipalTag/{k}"), vec![v.clone().into()]);
        }
        ctx
    }

    fn set(&mut self, key: &str, values: Vec<ContextValue>) {
        self.keys.insert(key.to_lowercase(), values);
    }

    /// Sets a single-valued key (replacing what it had).
    pub fn with(mut self, key: &str, value: impl Into<ContextValue>) -> RequestContext {
        self.set(key, vec![value.into()]);
        self
    }

    /// Sets a multi-valued key such as `aws:TagKeys` (an empty list is an empty key, which set
    /// operators treat like an absent one).
    pub fn with_values<V: Into<ContextValue>>(
        mut self,
        key: &str,
        values: impl IntoIterator<Item = V>,
    ) -> RequestContext {
        self.set(key, values.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the request's encryption context: `kms:EncryptionContext:<k>` for each pair,
    /// `kms:EncryptionContextKeys`, and what grant constraints are checked against. Call it
    /// (with an empty list if need be) for every operation that takes an encryption context.
    pub fn with_encryption_context<K: Into<String>, V: Into<String>>(
        mut self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> RequestContext {
        let pairs: BTreeMap<String, String> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.keys
            .retain(|k, _| !k.starts_with("kms:encryptioncontext:"));
        for (k, v) in &pairs {
            let key = format!("kms:EncryptionContext:{k}").to_lowercase();
            self.keys
                .entry(key)
                .or_default()
                .push(ContextValue::String(v.clone()));
        }
        self.set(
            "kms:EncryptionContextKeys",
            pairs
                .keys()
                .map(|k| ContextValue::String(k.clone()))
                .collect(),
        );
        self.encryption_context = Some(pairs);
        self
    }

    /// Names the grant a `kms:RetireGrant` request retires.
    pub fn with_retiring_grant(mut self, grant_id: &str) -> RequestContext {
        self.retiring_grant = Some(grant_id.to_string());
        self
    }

    /// The values of a key (any case); `None` when the request does not have it.
    pub fn values(&self, key: &str) -> Option<&[ContextValue]> {
        self.keys.get(&key.to_lowercase()).map(Vec::as_slice)
    }

    /// The request's encryption context, if its operation takes one.
    pub fn encryption_context(&self) -> Option<&BTreeMap<String, String>> {
        self.encryption_context.as_ref()
    }

    /// The grant a `kms:RetireGrant` request retires.
    pub fn retiring_grant(&self) -> Option<&str> {
        self.retiring_grant.as_deref()
    }

    /// The same request for another action and resource (the lockout check asks about
    /// `kms:PutKeyPolicy` with the caller's keys).
    pub fn for_action(&self, action: &str, resource: &str) -> RequestContext {
        let mut ctx = self.clone();
        ctx.action = action.to_string();
        ctx.resource = resource.to_string();
        ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_are_read_from_their_arns() {
        let root = Caller::from_arn("arn:aws:iam::111122223333:root").unwrap();
        assert_eq!(root.kind, PrincipalKind::AccountRoot);
        let user = Caller::from_arn("arn:aws:iam::111122223333:user/dev/alice").unwrap();
        assert_eq!(user.username.as_deref(), Some("alice"));
        let session =
            Caller::from_arn("arn:aws-cn:sts::111122223333:assumed-role/Admin/bob").unwrap();
        assert_eq!(session.kind, PrincipalKind::AssumedRole);
        assert_eq!(
            session.principal_arn,
            "arn:aws-cn:iam::111122223333:role/Admin"
        );
        for bad in [
            "",
            "arn:aws:iam::1111:root",
            "arn:aws:iam::111122223333:group/x",
            "arn:aws:sts::111122223333:assumed-role/Admin",
            "arn:aws:iam::111122223333:user/",
        ] {
            assert!(Caller::from_arn(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn keys_are_found_in_any_case_and_derived_from_the_caller() {
        let caller = Caller::from_arn("arn:aws:iam::111122223333:user/alice")
            .unwrap()
            .with_tag("Team", "blue");
        let ctx = RequestContext::new(caller, "kms:Decrypt", "arn:aws:kms:us-east-1:1:key/x")
            .with_encryption_context([("Dept", "IT")]);
        assert_eq!(
            ctx.values("AWS:USERNAME"),
            Some(&[ContextValue::from("alice")][..])
        );
        assert!(ctx.values("aws:principaltag/team").is_some());
        assert_eq!(
            ctx.values("kms:encryptioncontext:dept"),
            Some(&[ContextValue::from("IT")][..])
        );
        assert_eq!(
            ctx.values("kms:CallerAccount"),
            Some(&[ContextValue::from("111122223333")][..])
        );
    }

    #[test]
    fn a_new_encryption_context_replaces_the_old_one() {
        let caller = Caller::account_root("111122223333").unwrap();
        let ctx = RequestContext::new(caller, "kms:Decrypt", "k")
            .with_encryption_context([("a", "1")])
            .with_encryption_context([("b", "2")]);
        assert!(ctx.values("kms:EncryptionContext:a").is_none());
        assert_eq!(
            ctx.values("kms:EncryptionContextKeys").map(<[_]>::len),
            Some(1)
        );
    }

    #[test]
    fn base64_pads_like_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
