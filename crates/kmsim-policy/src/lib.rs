//! AWS policy evaluation for KMS keys, as a pure library: the policy language (key policies and
//! IAM identity policies), condition operators, the request context they are judged against,
//! grants, the decision AWS makes for a request on a key with its explanation and its
//! `AccessDeniedException` text, and the policy lockout safety check.
//!
//! Modules:
//! - [`document`]: the typed model ([`Policy`], [`Statement`], principals, patterns) and
//!   [`Policy::parse`]; [`Policy::validate_key_policy`] (principal required,
//!   `OverlyPermissiveCondition:`) and [`Policy::validate_identity_policy`].
//! - [`condition`]: the operators (`String…`, `Arn…`, `Numeric…`, `Date…`, `Bool`, `Null`,
//!   `IpAddress`/`NotIpAddress`, `BinaryEquals`, `…IfExists`, `ForAnyValue:`/`ForAllValues:`).
//! - [`context`]: [`Caller`] (read from its ARN) and [`RequestContext`] (action, resource,
//!   condition keys; the caller's own `aws:Principal*` keys are derived).
//! - [`evaluate`](mod@evaluate): [`evaluate()`](fn@evaluate) over a [`KeyAccess`] (key policy, identity policies, grants)
//!   giving a [`Decision`] that names the deciding statement or grant.
//! - [`message`]: the four `AccessDeniedException` forms.
//! - [`lockout`]: [`check_lockout`] for CreateKey/PutKeyPolicy/ReplicateKey.
//! - [`cache`]: what a decision depends on ([`ContextKeys`], [`RequestContext::fingerprint`])
//!   and a bounded [`DecisionCache`].
//!
//! ```
//! use kmsim_policy::{evaluate, Caller, KeyAccess, Policy, RequestContext};
//!
//! let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
//! let policy = Policy::parse(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
//!     "Principal":{"AWS":"arn:aws:iam::111122223333:role/App"},"Action":"kms:Decrypt",
//!     "Resource":"*"}]}"#)?;
//! let caller = Caller::from_arn("arn:aws:sts::111122223333:assumed-role/App/worker")?;
//! let ctx = RequestContext::new(caller, "kms:Decrypt", key);
//! let access = KeyAccess { key_policy: &policy, identity_policies: &[], grants: &[] };
//! assert!(evaluate(&access, &ctx).is_allowed());
//! # Ok::<(), kmsim_policy::PolicyError>(())
//! ```
//!
//! The crate computes no condition keys from KMS requests (the caller of the crate does) and
//! must not depend on any other kmsim crate: `kmsim-core` is to depend on it.

pub mod cache;
pub mod condition;
pub mod context;
pub mod document;
pub mod error;
pub mod evaluate;
pub mod lockout;
pub mod message;
mod pattern;
mod statement;

pub use cache::{CacheStats, ContextKeys, DecisionCache};
pub use condition::{Condition, Operator};
pub use context::{Caller, ContextValue, PrincipalKind, RequestContext};
pub use document::{Effect, Policy, Statement, Version};
pub use error::PolicyError;
pub use evaluate::{
    evaluate, Allowed, Decision, Denied, Grant, GrantConstraints, IdentityPolicy, KeyAccess,
    PolicyType, StatementRef, KEY_POLICY_NAME,
};
pub use lockout::{check_lockout, check_lockout_in};
