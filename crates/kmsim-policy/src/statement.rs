//! Whether one statement applies to a request: principal, action, resource and conditions.

use crate::context::{Caller, PrincipalKind, RequestContext};
use crate::document::{PatternElement, Policy, PrincipalEntry, Statement, Version};
use crate::pattern;

/// How a statement's principal matched the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PrincipalMatch {
    /// Only through the caller's account (`arn:…:root` or the bare ID): in a key policy this
    /// delegates to the account's IAM policies.
    Account,
    /// The caller itself, its role, its service, or everyone (`*`).
    Direct,
}

impl Statement {
    /// Whether the statement applies to the request, and how its principal matched (a
    /// statement without a principal, as in identity policies, matches `Direct`).
    pub(crate) fn applies(&self, policy: &Policy, ctx: &RequestContext) -> Option<PrincipalMatch> {
        let principal = match &self.principal {
            None => PrincipalMatch::Direct,
            Some(p) => {
                let named = match &p.entries {
                    None => Some(PrincipalMatch::Direct),
                    Some(entries) => entries
                        .iter()
                        .filter_map(|e| entry_matches(e, &ctx.caller))
                        .max(),
                };
                if p.negated {
                    if excluded_by_not_principal(p.entries.as_deref(), &ctx.caller) {
                        return None;
                    }
                    PrincipalMatch::Direct
                } else {
                    named?
                }
            }
        };
        let action = self.action.as_ref()?;
        if !element_matches(action, |p| {
            pattern::resolve(p, None).is_some_and(|t| pattern::glob(&t, &ctx.action, true))
        }) {
            return None;
        }
        let variables = policy.version == Version::V2012_10_17;
        let resource = self.resource.as_ref()?;
        if !element_matches(resource, |p| {
            pattern::resolve(p, variables.then_some(ctx))
                .is_some_and(|t| pattern::arn_like(&t, &ctx.resource))
        }) {
            return None;
        }
        self.conditions
            .iter()
            .all(|c| c.holds(ctx, variables))
            .then_some(principal)
    }
}

/// `Action`/`Resource`: some pattern matches; `NotAction`/`NotResource`: none does.
fn element_matches(element: &PatternElement, matches: impl Fn(&str) -> bool) -> bool {
    element.patterns.iter().any(|p| matches(p)) != element.negated
}

fn entry_matches(entry: &PrincipalEntry, caller: &Caller) -> Option<PrincipalMatch> {
    match entry {
        PrincipalEntry::AnyAws => {
            (caller.kind != PrincipalKind::Service).then_some(PrincipalMatch::Direct)
        }
        PrincipalEntry::Account(acct) => {
            (caller.account.as_deref() == Some(acct.as_str())).then_some(PrincipalMatch::Account)
        }
        PrincipalEntry::Arn(arn) => (caller.kind != PrincipalKind::Service
            && (*arn == caller.arn || *arn == caller.principal_arn))
            .then_some(PrincipalMatch::Direct),
        PrincipalEntry::Service(name) => (caller.kind == PrincipalKind::Service
            && *name == caller.arn)
            .then_some(PrincipalMatch::Direct),
        PrincipalEntry::Federated(_) | PrincipalEntry::CanonicalUser(_) => None,
    }
}

/// `NotPrincipal` leaves a caller out only when it names every identity the request carries:
/// the caller's own ARN, its role (for a session) and its account. Naming only a user, without
/// its account, does not exempt the user (IAM evaluates the account too).
fn excluded_by_not_principal(entries: Option<&[PrincipalEntry]>, caller: &Caller) -> bool {
    let Some(entries) = entries else {
        return true; // NotPrincipal "*" excludes everyone
    };
    if caller.kind == PrincipalKind::Service {
        return entries
            .iter()
            .any(|e| matches!(e, PrincipalEntry::Service(s) if *s == caller.arn));
    }
    let names = |arn: &str| {
        entries.iter().any(|e| match e {
            PrincipalEntry::AnyAws => true,
            PrincipalEntry::Arn(a) => a == arn,
            _ => false,
        })
    };
    let account_named = entries.iter().any(|e| match e {
        PrincipalEntry::AnyAws => true,
        PrincipalEntry::Account(a) => caller.account.as_deref() == Some(a.as_str()),
        _ => false,
    });
    match caller.kind {
        PrincipalKind::AccountRoot => account_named,
        PrincipalKind::AssumedRole => {
            account_named && names(&caller.principal_arn) && names(&caller.arn)
        }
        _ => account_named && names(&caller.arn),
    }
}
