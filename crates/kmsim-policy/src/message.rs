//! AWS's `AccessDeniedException` messages, in the form IAM documents ("Troubleshoot access
//! denied error messages", IAM User Guide): `User: <caller> is not authorized to perform:
//! <action> on resource: <resource>` followed by `because no <type> policy allows the <action>
//! action` (implicit deny) or `with an explicit deny in a <type> policy` (explicit deny), where
//! `<type>` is `resource-based` (the key policy) or `identity-based` (IAM). No trailing period.

/// `… because no <kind> policy allows the <action> action`.
fn implicit(kind: &str, caller: &str, action: &str, resource: &str) -> String {
    format!("User: {caller} is not authorized to perform: {action} on resource: {resource} because no {kind} policy allows the {action} action")
}

/// `… with an explicit deny in a(n) <kind> policy`.
fn explicit(kind: &str, caller: &str, action: &str, resource: &str) -> String {
    let article = if kind.starts_with('i') { "an" } else { "a" };
    format!("User: {caller} is not authorized to perform: {action} on resource: {resource} with an explicit deny in {article} {kind} policy")
}

/// No key policy statement allows the caller, not even through its account.
pub fn no_resource_policy_allows(caller: &str, action: &str, resource: &str) -> String {
    implicit("resource-based", caller, action, resource)
}

/// The key policy delegates to IAM but no identity policy of the caller allows.
pub fn no_identity_policy_allows(caller: &str, action: &str, resource: &str) -> String {
    implicit("identity-based", caller, action, resource)
}

/// A `Deny` statement of the key policy applies.
pub fn explicit_deny_in_resource_policy(caller: &str, action: &str, resource: &str) -> String {
    explicit("resource-based", caller, action, resource)
}

/// A `Deny` statement of one of the caller's IAM policies applies.
pub fn explicit_deny_in_identity_policy(caller: &str, action: &str, resource: &str) -> String {
    explicit("identity-based", caller, action, resource)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_aws_shape() {
        let (c, a, r) = (
            "arn:aws:iam::111122223333:user/alice",
            "kms:Decrypt",
            "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        );
        assert_eq!(
            no_resource_policy_allows(c, a, r),
            "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab because no resource-based policy allows the kms:Decrypt action"
        );
        assert!(no_identity_policy_allows(c, a, r)
            .ends_with(" because no identity-based policy allows the kms:Decrypt action"));
        assert!(explicit_deny_in_resource_policy(c, a, r)
            .ends_with("key/1234abcd-12ab-34cd-56ef-1234567890ab with an explicit deny in a resource-based policy"));
        assert!(explicit_deny_in_identity_policy(c, a, r)
            .ends_with(" with an explicit deny in an identity-based policy"));
    }
}
