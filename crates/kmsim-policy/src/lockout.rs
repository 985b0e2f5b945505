//! The policy lockout safety check of CreateKey, PutKeyPolicy and ReplicateKey: unless the
//! request sets `BypassPolicyLockoutSafetyCheck`, AWS refuses a key policy under which the
//! calling principal could not call `PutKeyPolicy` on the key afterwards.

use crate::context::{Caller, RequestContext};
use crate::document::Policy;
use crate::error::PolicyError;
use crate::evaluate::{evaluate, IdentityPolicy, KeyAccess};

/// Checks that `policy`, once the key's, still lets `caller` (with its identity policies) call
/// `kms:PutKeyPolicy` on `key_arn`. Grants are not considered: they cannot give PutKeyPolicy.
pub fn check_lockout(
    policy: &Policy,
    caller: &Caller,
    identity_policies: &[IdentityPolicy],
    key_arn: &str,
) -> Result<(), PolicyError> {
    let ctx = RequestContext::new(caller.clone(), "kms:PutKeyPolicy", key_arn);
    check_lockout_in(policy, &ctx, identity_policies, key_arn)
}

/// [`check_lockout`] with the condition keys of the request being made (`aws:SourceIp`,
/// `aws:CurrentTime`, …), so that a policy conditioned on them is judged as the caller would be.
pub fn check_lockout_in(
    policy: &Policy,
    request: &RequestContext,
    identity_policies: &[IdentityPolicy],
    key_arn: &str,
) -> Result<(), PolicyError> {
    let ctx = request.for_action("kms:PutKeyPolicy", key_arn);
    let access = KeyAccess {
        key_policy: policy,
        identity_policies,
        grants: &[],
    };
    if evaluate(&access, &ctx).is_allowed() {
        Ok(())
    } else {
        Err(PolicyError::Lockout)
    }
}
