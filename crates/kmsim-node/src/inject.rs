//! API fault injection (`kmsim chaos inject`, admin `SetApiFault`): a share of the calls of an
//! operation (or of every operation) answered `ThrottlingException` or `KMSInternalException`,
//! or delayed, *before* the operation runs, so an injected error commits nothing. The check is
//! one call at the entry every operation of both faces passes ([`crate::kms::KmsApi::consistent`]).
//! Rules are this node's, in memory (a restart clears them); a Region's rules are set on each
//! of its nodes. Draws come from a generator seeded per node, so a run can be repeated.

use std::sync::{Mutex, RwLock};
use std::time::Duration;

use kmsim_core::KmsError;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// What AWS KMS answers a throttled call (as its clients log it: `ThrottlingException: Rate
/// exceeded`).
pub const THROTTLED_MESSAGE: &str = "Rate exceeded";

/// `KMSInternalException`'s description in the AWS KMS API Reference.
pub const INTERNAL_MESSAGE: &str =
    "The request was rejected because an internal exception occurred. The request can be retried.";

/// What an injected rule does to the calls it hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// `ThrottlingException` (400), which AWS clients retry with backoff.
    Throttling,
    /// `KMSInternalException` (500), a server fault, also retried.
    Internal,
    /// The call runs after this delay.
    Delay(Duration),
}

impl Effect {
    /// Whether two effects are of the same kind (a rule replaces another of its kind).
    fn same_kind(&self, other: &Effect) -> bool {
        matches!(
            (self, other),
            (Effect::Delay(_), Effect::Delay(_))
                | (
                    Effect::Throttling | Effect::Internal,
                    Effect::Throttling | Effect::Internal
                )
        )
    }
}

/// One injection rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The operation (AWS name) it hits; every operation when `None`.
    pub operation: Option<String>,
    /// What it does.
    pub effect: Effect,
    /// The share of matching calls it hits, in percent (0 to 100).
    pub percent: f64,
}

/// This node's injection rules.
pub struct ApiFaults {
    rules: RwLock<Vec<Rule>>,
    rng: Mutex<StdRng>,
}

impl ApiFaults {
    /// No rules; draws seeded with `seed`.
    pub fn new(seed: u64) -> ApiFaults {
        ApiFaults {
            rules: RwLock::new(Vec::new()),
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
        }
    }

    /// Adds a rule, replacing the one of the same operation and kind (an error rule replaces
    /// an error rule, a delay a delay); a rule of 0 % removes it.
    pub fn set(&self, rule: Rule) -> Result<(), String> {
        if !(0.0..=100.0).contains(&rule.percent) {
            return Err(format!(
                "percent must be between 0 and 100, got {}",
                rule.percent
            ));
        }
        let mut rules = self.rules.write().expect("invariant: lock not poisoned");
        rules.retain(|r| !(r.operation == rule.operation && r.effect.same_kind(&rule.effect)));
        if rule.percent > 0.0 {
            rules.push(rule);
        }
        Ok(())
    }

    /// Removes every rule.
    pub fn clear(&self) {
        self.rules
            .write()
            .expect("invariant: lock not poisoned")
            .clear();
    }

    /// Every rule, in the order they were set.
    pub fn list(&self) -> Vec<Rule> {
        self.rules
            .read()
            .expect("invariant: lock not poisoned")
            .clone()
    }

    /// Applies the rules to one call of `op` about to run: waits out a delay that hits it, or
    /// answers the error of the first error rule that hits it. Without rules, one read lock.
    pub async fn before(&self, op: &str) -> Result<(), KmsError> {
        let (delay, error) = {
            let rules = self.rules.read().expect("invariant: lock not poisoned");
            if rules.is_empty() {
                return Ok(());
            }
            let mut rng = self.rng.lock().expect("invariant: lock not poisoned");
            let mut delay = Duration::ZERO;
            let mut error = None;
            for r in rules
                .iter()
                .filter(|r| r.operation.as_deref().is_none_or(|o| o == op))
            {
                if !rng.gen_bool((r.percent / 100.0).clamp(0.0, 1.0)) {
                    continue;
                }
                match r.effect {
                    Effect::Delay(d) => delay += d,
                    Effect::Throttling if error.is_none() => {
                        error = Some(KmsError::Throttling(THROTTLED_MESSAGE.into()))
                    }
                    Effect::Internal if error.is_none() => {
                        error = Some(KmsError::Internal(INTERNAL_MESSAGE.into()))
                    }
                    _ => {}
                }
            }
            (delay, error)
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match error {
            Some(e) => {
                tracing::debug!(op, code = e.code(), "injected API error");
                Err(e)
            }
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(op: Option<&str>, effect: Effect, percent: f64) -> Rule {
        Rule {
            operation: op.map(str::to_string),
            effect,
            percent,
        }
    }

    #[tokio::test]
    async fn a_share_of_the_calls_of_the_operation_is_refused_and_the_draws_follow_the_seed() {
        let draws = |seed| async move {
            let f = ApiFaults::new(seed);
            f.set(rule(Some("Encrypt"), Effect::Throttling, 30.0))
                .unwrap();
            let mut v = Vec::new();
            for _ in 0..1000 {
                v.push(f.before("Encrypt").await.is_err());
                assert_eq!(f.before("Decrypt").await, Ok(()), "another operation");
            }
            v
        };
        let a = draws(3).await;
        assert_eq!(a, draws(3).await);
        let hit = a.iter().filter(|x| **x).count();
        assert!((230..=370).contains(&hit), "about 30 % of 1000: {hit}");
    }

    #[tokio::test]
    async fn errors_carry_the_aws_codes_and_a_rule_replaces_its_kind() {
        let f = ApiFaults::new(1);
        f.set(rule(None, Effect::Internal, 100.0)).unwrap();
        let e = f.before("CreateKey").await.unwrap_err();
        assert_eq!(e.code(), "KMSInternalException");
        f.set(rule(None, Effect::Throttling, 100.0)).unwrap();
        assert_eq!(f.list().len(), 1, "the error rule was replaced");
        let e = f.before("CreateKey").await.unwrap_err();
        assert_eq!(
            e,
            KmsError::Throttling("Rate exceeded".into()),
            "{}",
            e.code()
        );
        f.set(rule(None, Effect::Delay(Duration::from_millis(30)), 100.0))
            .unwrap();
        assert_eq!(f.list().len(), 2, "a delay is another kind");
        f.set(rule(None, Effect::Throttling, 0.0)).unwrap();
        let start = tokio::time::Instant::now();
        assert_eq!(f.before("Encrypt").await, Ok(()));
        assert!(start.elapsed() >= Duration::from_millis(30));
        assert!(f.set(rule(None, Effect::Throttling, 101.0)).is_err());
        f.clear();
        assert!(f.list().is_empty());
    }
}
