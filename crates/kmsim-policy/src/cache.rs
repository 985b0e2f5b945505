//! Reusing decisions: what a decision depends on, and a bounded cache of decisions.
//!
//! [`evaluate()`](fn@crate::evaluate) reads, besides the policies and grants, only the
//! request's caller (its ARN, role ARN, kind, account and partition), action and resource, the
//! condition keys its policies name (in a `Condition` or in a `${…}` variable), and, when the
//! key has grants, the encryption context and the grant a RetireGrant retires. So two requests
//! that agree on those, judged against the same policies and grants, get the same decision.
//! [`ContextKeys`] is that set of condition keys for one set of policies (computed once per
//! set); [`RequestContext::fingerprint`] writes what a request shows of it; [`DecisionCache`]
//! keeps decisions by (the caller's name for the policies and grants, fingerprint).
//!
//! A decision that reads the clock (`aws:CurrentTime`, `aws:EpochTime`) is never kept: the
//! same request may get another answer a second later.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use lru::LruCache;

use crate::context::{ContextValue, RequestContext};
use crate::document::Policy;
use crate::evaluate::{evaluate, Decision, KeyAccess};
use crate::pattern;

/// Condition keys whose value is the time of the request.
const CLOCK_KEYS: &[&str] = &["aws:currenttime", "aws:epochtime"];

/// The condition keys a set of policies reads, lower-cased (as [`RequestContext`] holds them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContextKeys {
    keys: Vec<String>,
    reads_clock: bool,
}

impl ContextKeys {
    /// The keys `policies` read: every condition's key, and every key a `${…}` variable of a
    /// `Resource`/`NotResource` pattern or of a condition value names. (`Action` patterns have
    /// no variables.) Variables of 2008-10-17 policies are plain text, but counting them too
    /// only makes fingerprints longer, never wrong.
    pub fn of<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> ContextKeys {
        let mut keys = BTreeSet::new();
        for policy in policies {
            for st in &policy.statements {
                let resources = st.resource.iter().flat_map(|r| r.patterns.iter());
                for v in resources {
                    keys.extend(pattern::variable_keys(v).into_iter().map(str::to_lowercase));
                }
                for c in &st.conditions {
                    keys.insert(c.key.to_lowercase());
                    for v in &c.values {
                        keys.extend(pattern::variable_keys(v).into_iter().map(str::to_lowercase));
                    }
                }
            }
        }
        let reads_clock = CLOCK_KEYS.iter().any(|k| keys.contains(*k));
        ContextKeys {
            keys: keys.into_iter().collect(),
            reads_clock,
        }
    }

    /// The keys, lower-cased, sorted.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Whether `key` (any case) is one of them.
    pub fn contains(&self, key: &str) -> bool {
        self.keys
            .binary_search_by(|k| k.as_str().cmp(key.to_lowercase().as_str()))
            .is_ok()
    }

    /// Whether a decision may read the clock, so must not be kept.
    pub fn reads_clock(&self) -> bool {
        self.reads_clock
    }
}

/// Writes `s` so that no two sequences of fields give the same text: its length, then it.
fn field(out: &mut String, s: &str) {
    let _ = write!(out, "{}:{s}", s.len());
}

impl RequestContext {
    /// Appends to `out` everything [`evaluate()`](fn@crate::evaluate) can read of this
    /// request when its policies read `keys`: the caller's identity, the action, the resource,
    /// the value of each key (or its absence), and with `grants` (the key has some) the
    /// encryption context and the grant being retired. Two requests with the same fingerprint
    /// get the same decision from the same policies and grants.
    pub fn fingerprint(&self, keys: &ContextKeys, grants: bool, out: &mut String) {
        let c = &self.caller;
        for s in [
            &c.arn,
            &c.principal_arn,
            &c.partition,
            &self.action,
            &self.resource,
        ] {
            field(out, s);
        }
        let _ = write!(out, "{:?}", c.kind);
        field(out, c.account.as_deref().unwrap_or("-"));
        for k in &keys.keys {
            match self.values(k) {
                None => out.push('-'),
                Some(values) => {
                    let _ = write!(out, "+{}", values.len());
                    for v in values {
                        out.push(match v {
                            ContextValue::String(_) => 's',
                            ContextValue::Bool(_) => 'b',
                            ContextValue::Number(_) => 'n',
                            ContextValue::Date(_) => 'd',
                            ContextValue::Ip(_) => 'i',
                            ContextValue::Binary(_) => 'x',
                        });
                        field(out, &v.as_string());
                    }
                }
            }
        }
        if grants {
            match self.encryption_context() {
                None => out.push('-'),
                Some(ec) => {
                    let _ = write!(out, "+{}", ec.len());
                    for (k, v) in ec {
                        field(out, k);
                        field(out, v);
                    }
                }
            }
            field(out, self.retiring_grant().unwrap_or("-"));
        }
    }
}

/// How a [`DecisionCache`] has answered so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Decisions found in the cache.
    pub hits: u64,
    /// Decisions evaluated and then kept.
    pub misses: u64,
    /// Decisions evaluated and not kept (they read the clock).
    pub uncacheable: u64,
    /// Decisions held now.
    pub entries: u64,
}

/// A bounded cache of decisions (least recently used dropped first).
///
/// The caller names the policies and grants a decision was made with (`scope`): that name
/// must change whenever any of them changes, e.g. by carrying the key's and the IAM's
/// versions. The cache adds the request's [`fingerprint`](RequestContext::fingerprint).
pub struct DecisionCache {
    entries: Mutex<LruCache<String, Decision>>,
    hits: AtomicU64,
    misses: AtomicU64,
    uncacheable: AtomicU64,
}

impl DecisionCache {
    /// A cache of at most `capacity` decisions (at least one).
    pub fn new(capacity: usize) -> DecisionCache {
        DecisionCache {
            entries: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            uncacheable: AtomicU64::new(0),
        }
    }

    /// The decision for `ctx` on `access`, whose policies read `keys` and which the caller
    /// names `scope`: the kept one, else evaluated (and kept unless it reads the clock).
    pub fn decide(
        &self,
        scope: &str,
        keys: &ContextKeys,
        access: &KeyAccess<'_>,
        ctx: &RequestContext,
    ) -> Decision {
        if keys.reads_clock() {
            self.uncacheable.fetch_add(1, Ordering::Relaxed);
            return evaluate(access, ctx);
        }
        let mut id = String::with_capacity(scope.len() + 256);
        field(&mut id, scope);
        ctx.fingerprint(keys, !access.grants.is_empty(), &mut id);
        if let Some(d) = self.lock().get(&id) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return d.clone();
        }
        let decision = evaluate(access, ctx);
        self.misses.fetch_add(1, Ordering::Relaxed);
        self.lock().put(id, decision.clone());
        decision
    }

    /// Drops every decision.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The counts so far.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            uncacheable: self.uncacheable.load(Ordering::Relaxed),
            entries: self.lock().len() as u64,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Decision>> {
        // A panic while holding the lock cannot leave the map half-changed in a way that
        // matters: every entry is a whole decision.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::fmt::Debug for DecisionCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionCache")
            .field("stats", &self.stats())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Caller;

    fn policy(text: &str) -> Policy {
        Policy::parse(text).expect("valid policy")
    }

    /// A request of the root user of 111122223333 for `kms:Encrypt` on `resource`.
    fn request(resource: &str) -> RequestContext {
        let caller = Caller::account_root("111122223333").expect("valid");
        RequestContext::new(caller, "kms:Encrypt", resource)
    }

    /// The key policy alone.
    fn access(p: &Policy) -> KeyAccess<'_> {
        KeyAccess {
            key_policy: p,
            identity_policies: &[],
            grants: &[],
        }
    }

    #[test]
    fn keys_are_read_from_conditions_and_variables() {
        let p = policy(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*",
            "Action":"kms:*","Resource":"arn:aws:kms:*:*:key/${aws:PrincipalTag/Key}",
            "Condition":{"StringEquals":{"kms:EncryptionContext:Tenant":"${aws:username}"},
            "IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#,
        );
        let keys = ContextKeys::of([&p]);
        assert_eq!(
            keys.keys(),
            [
                "aws:principaltag/key",
                "aws:sourceip",
                "aws:username",
                "kms:encryptioncontext:tenant"
            ]
        );
        assert!(keys.contains("AWS:SourceIp"));
        assert!(!keys.reads_clock());
        let timed = policy(
            r#"{"Statement":{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*",
            "Condition":{"DateGreaterThan":{"AWS:CurrentTime":"2030-01-01"}}}}"#,
        );
        assert!(ContextKeys::of([&p, &timed]).reads_clock());
    }

    #[test]
    fn fingerprints_differ_exactly_where_a_read_key_differs() {
        let p = policy(
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*",
            "Condition":{"StringEquals":{"kms:EncryptionContext:a":"1"}}}}"#,
        );
        let keys = ContextKeys::of([&p]);
        let print = |ec: &[(&str, &str)], ip: &str| {
            let ctx = request("k")
                .with_encryption_context(ec.iter().copied())
                .with("aws:SourceIp", ip);
            let mut out = String::new();
            ctx.fingerprint(&keys, false, &mut out);
            out
        };
        assert_eq!(
            print(&[("a", "1")], "10.0.0.1"),
            print(&[("a", "1")], "10.0.0.2")
        );
        assert_ne!(
            print(&[("a", "1")], "10.0.0.1"),
            print(&[("a", "2")], "10.0.0.1")
        );
        assert_ne!(print(&[], "10.0.0.1"), print(&[("a", "")], "10.0.0.1"));
    }

    #[test]
    fn decisions_that_read_the_clock_are_not_kept() {
        let p = policy(
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*",
            "Condition":{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}}"#,
        );
        let keys = ContextKeys::of([&p]);
        let cache = DecisionCache::new(16);
        let at = |date: &str| {
            request("k").with(
                "aws:CurrentTime",
                crate::condition::parse_date(date).expect("valid date"),
            )
        };
        assert!(cache
            .decide("s", &keys, &access(&p), &at("2029-01-01"))
            .is_allowed());
        assert!(!cache
            .decide("s", &keys, &access(&p), &at("2031-01-01"))
            .is_allowed());
        let stats = cache.stats();
        assert_eq!(
            (stats.hits, stats.misses, stats.uncacheable, stats.entries),
            (0, 0, 2, 0)
        );
    }

    #[test]
    fn a_kept_decision_is_found_and_the_cache_is_bounded() {
        let p = policy(
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}}"#,
        );
        let keys = ContextKeys::of([&p]);
        let cache = DecisionCache::new(2);
        for resource in ["a", "b", "a", "c", "a"] {
            assert!(cache
                .decide("s", &keys, &access(&p), &request(resource))
                .is_allowed());
        }
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (2, 3, 2));
    }
}
