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

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn policy(text: &str) -> Policy {
        Policy::parse(text).expect("test policies parse")
    }

    fn caller(arn: &str) -> Caller {
        Caller::from_arn(arn).expect("test callers are valid")
    }

    fn iam_all() -> Vec<IdentityPolicy> {
        vec![IdentityPolicy {
            name: "all".into(),
            policy: policy(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#,
            ),
        }]
    }

    const DEFAULT: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Enable IAM User Permissions",
        "Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}]}"#;

    #[test]
    fn the_default_policy_keeps_the_caller_in_control_through_iam() {
        let p = policy(DEFAULT);
        let alice = caller("arn:aws:iam::111122223333:user/alice");
        assert_eq!(check_lockout(&p, &alice, &iam_all(), KEY), Ok(()));
        assert_eq!(
            check_lockout(&p, &alice, &[], KEY),
            Err(PolicyError::Lockout)
        );
        let root = caller("arn:aws:iam::111122223333:root");
        assert_eq!(check_lockout(&p, &root, &[], KEY), Ok(()));
    }

    #[test]
    fn a_policy_for_someone_else_locks_the_caller_out() {
        let p = policy(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
            "Principal":{"AWS":"arn:aws:iam::111122223333:role/KMSAdminRole"},
            "Action":["kms:Put*","kms:Describe*"],"Resource":"*"}]}"#,
        );
        let admin = caller("arn:aws:sts::111122223333:assumed-role/KMSAdminRole/s");
        assert_eq!(check_lockout(&p, &admin, &[], KEY), Ok(()));
        let alice = caller("arn:aws:iam::111122223333:user/alice");
        let err = check_lockout(&p, &alice, &iam_all(), KEY).unwrap_err();
        assert_eq!(
            err.to_string(),
            "The new key policy will not allow you to update the key policy in the future."
        );
    }

    #[test]
    fn a_deny_of_put_key_policy_locks_out_even_the_root_user() {
        let p = policy(
            r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:*","Resource":"*"},
            {"Effect":"Deny","Principal":"*","Action":"kms:PutKeyPolicy","Resource":"*"}]}"#,
        );
        let root = caller("arn:aws:iam::111122223333:root");
        assert_eq!(
            check_lockout(&p, &root, &[], KEY),
            Err(PolicyError::Lockout)
        );
    }

    #[test]
    fn conditions_are_judged_with_the_requests_keys() {
        let p = policy(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
            "Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:*","Resource":"*",
            "Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
        );
        let alice = caller("arn:aws:iam::111122223333:user/alice");
        assert_eq!(
            check_lockout(&p, &alice, &[], KEY),
            Err(PolicyError::Lockout)
        );
        let inside = RequestContext::new(alice.clone(), "kms:CreateKey", "*")
            .with("aws:SourceIp", "10.1.2.3");
        assert_eq!(check_lockout_in(&p, &inside, &[], KEY), Ok(()));
        let outside =
            RequestContext::new(alice, "kms:CreateKey", "*").with("aws:SourceIp", "192.0.2.1");
        assert_eq!(
            check_lockout_in(&p, &outside, &[], KEY),
            Err(PolicyError::Lockout)
        );
    }
}
