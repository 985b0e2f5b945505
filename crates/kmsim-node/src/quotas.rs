//! Request quotas: AWS KMS's requests-per-second limits, per account and per Region, as token
//! buckets (`docs/AWS-BEHAVIOUR.md` §11, `../shared/kms-api.md` §8.1).
//!
//! A call is charged to its operation's own quota (CreateKey 5/s, DescribeKey 2000/s, …) and,
//! for a cryptographic operation, to the shared quota of its key type (symmetric 10,000 to
//! 100,000/s by Region, RSA 1,000/s, ECC 1,000/s, ML-DSA 1,000/s), or for GenerateDataKeyPair
//! to the quota of its key pair spec. The key type is read from the request's algorithm or key
//! pair spec, not from the key, so the check reads no state: an asymmetric key can only be
//! used with its algorithm named, and a call that names none is a symmetric one. Beyond a
//! quota the call is answered `ThrottlingException` (`Rate exceeded`, HTTP 400) before any
//! other work, which AWS clients retry with backoff. Cross-account use is charged to the
//! calling account, which the caller's ARN names.
//!
//! Off by default: the topology's `quotas = "aws"` turns AWS's values on,
//! `[quotas.overrides]` sets quotas by name, and `kmsim chaos throttle` (the admin
//! `SetThrottle`) changes them on a running Region.
//!
//! A quota is the Region's, and a Region has several nodes that clients call directly or
//! through the gateway. Each node enforces its share, `rate / N` for the Region's `N` voters
//! (with a burst of one second of its share, at least one call), so calls spread over the
//! nodes see the Region's rate, with no message between nodes on the path of every Encrypt.
//! The trade-off (`docs/ARCHITECTURE.md`): a client whose calls all reach one node sees
//! `rate / N`, and while a node is down the Region admits `(N-1)/N` of its rate.
//!
//! This module is on the path of every call (`KmsApi::consistent`): with quotas off it is
//! one atomic load; with quotas on it takes a read lock (never held across an await), looks
//! the caller's account up without allocating, and takes a token from at most two buckets.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use kmsim_core::state::Throttles;
use kmsim_core::KmsError;
use kmsim_proto::kms::v1 as pb;

use crate::aws::dispatch::OPERATIONS;
use crate::config::{QuotaSettings, RequestQuotaMode};

/// The message of a throttled call (AWS's).
pub const RATE_EXCEEDED: &str = "Rate exceeded";

/// The shared quotas, named as the topology's `[quotas.overrides]` and `kmsim chaos throttle
/// --operation` name them; after the operations in the list of every quota.
pub const SHARED_QUOTAS: &[&str] = &[
    "CryptographicOperationsSymmetric",
    "CryptographicOperationsRsa",
    "CryptographicOperationsEcc",
    "CryptographicOperationsMlDsa",
    "GenerateDataKeyPair/ECC_NIST_P256",
    "GenerateDataKeyPair/ECC_NIST_P384",
    "GenerateDataKeyPair/ECC_NIST_P521",
    "GenerateDataKeyPair/ECC_SECG_P256K1",
    "GenerateDataKeyPair/RSA_2048",
    "GenerateDataKeyPair/RSA_3072",
    "GenerateDataKeyPair/RSA_4096",
    "GenerateDataKeyPair/SM2",
];

/// The index of a quota: an operation's own (by its position in [`OPERATIONS`]) or a shared
/// one (after them). `None` for a name that is neither.
pub fn quota_index(name: &str) -> Option<usize> {
    OPERATIONS.iter().position(|o| *o == name).or_else(|| {
        SHARED_QUOTAS
            .iter()
            .position(|s| *s == name)
            .map(|i| OPERATIONS.len() + i)
    })
}

/// The name of the quota at `index`.
fn quota_name(index: usize) -> &'static str {
    OPERATIONS
        .get(index)
        .or_else(|| SHARED_QUOTAS.get(index - OPERATIONS.len()))
        .copied()
        .unwrap_or("?")
}

/// How many quotas there are.
fn quota_count() -> usize {
    OPERATIONS.len() + SHARED_QUOTAS.len()
}

/// `Ok` for no name or the name of a quota; else the error listing the valid names.
pub fn check_quota_name(quota: Option<&str>) -> Result<(), String> {
    match quota {
        Some(name) if quota_index(name).is_none() => Err(unknown_quota(name)),
        _ => Ok(()),
    }
}

/// The error for a name that is no quota, listing the valid ones.
pub fn unknown_quota(name: &str) -> String {
    format!(
        "'{name}' is no KMS operation or shared quota; valid: {}, {}",
        OPERATIONS.join(", "),
        SHARED_QUOTAS.join(", ")
    )
}

/// AWS's value of a quota in `region`, requests per second (kms-api.md §8.1, the current
/// values); `None` for an operation without a quota of its own (the cryptographic ones are
/// charged to their shared quota).
pub fn aws_rate(name: &str, region: &str) -> Option<f64> {
    let r = match name {
        "CryptographicOperationsSymmetric" => match region {
            "us-east-1" | "us-west-2" | "eu-west-1" => 100_000.0,
            "us-east-2" | "ap-southeast-1" | "ap-southeast-2" | "ap-northeast-1"
            | "eu-central-1" | "eu-west-2" => 20_000.0,
            _ => 10_000.0,
        },
        "CryptographicOperationsRsa" | "CryptographicOperationsEcc" => 1_000.0,
        "CryptographicOperationsMlDsa" => 1_000.0,
        "GenerateDataKeyPair/ECC_NIST_P256"
        | "GenerateDataKeyPair/ECC_NIST_P384"
        | "GenerateDataKeyPair/ECC_NIST_P521"
        | "GenerateDataKeyPair/ECC_SECG_P256K1" => 100.0,
        "GenerateDataKeyPair/RSA_2048" => 20.0,
        "GenerateDataKeyPair/RSA_3072" => 4.0,
        "GenerateDataKeyPair/RSA_4096" => 1.0,
        "GenerateDataKeyPair/SM2" => 25.0,
        "GetParametersForImport" => 1.0,
        "CancelKeyDeletion"
        | "CreateAlias"
        | "CreateKey"
        | "DisableKey"
        | "DisableKeyRotation"
        | "EnableKey"
        | "GetKeyLastUsage"
        | "ReplicateKey"
        | "RotateKeyOnDemand"
        | "UntagResource"
        | "UpdateAlias"
        | "UpdateKeyDescription"
        | "UpdatePrimaryRegion" => 5.0,
        "TagResource" => 10.0,
        "DeleteAlias"
        | "DeleteImportedKeyMaterial"
        | "EnableKeyRotation"
        | "ImportKeyMaterial"
        | "PutKeyPolicy"
        | "ScheduleKeyDeletion" => 15.0,
        "CreateGrant" | "RetireGrant" | "RevokeGrant" => 50.0,
        "ListGrants" | "ListKeyPolicies" | "ListKeyRotations" | "ListRetirableGrants" => 100.0,
        "ListAliases" | "ListKeys" => 500.0,
        "GetKeyPolicy" | "GetKeyRotationStatus" => 1_000.0,
        "DescribeKey" | "GetPublicKey" | "ListResourceTags" => 2_000.0,
        _ => return None,
    };
    Some(r)
}

/// One token bucket: `tokens` available now, refilled at a rate given on every take (so a
/// changed quota applies at once) up to a capacity. Pure: time comes in as nanoseconds on
/// a monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bucket {
    /// Tokens after the last take (a fraction counts towards the next one).
    tokens: f64,
    /// When `tokens` was computed; `None` for a bucket never used (it starts full).
    last_ns: Option<u64>,
}

impl Bucket {
    /// The burst a bucket of `rate` per second allows: one second of it, at least one call
    /// (so a share below 1/s still admits calls); none at rate 0.
    pub fn capacity(rate: f64) -> f64 {
        if rate <= 0.0 {
            0.0
        } else {
            rate.max(1.0)
        }
    }

    /// Takes one token at `now_ns` if there is one. Never admits more than
    /// `capacity(rate) + rate × elapsed` calls since the bucket's first use.
    pub fn take(&mut self, now_ns: u64, rate: f64) -> bool {
        let cap = Bucket::capacity(rate);
        let tokens = match self.last_ns {
            None => cap,
            Some(last) => {
                let elapsed = now_ns.saturating_sub(last) as f64 / 1e9;
                (self.tokens + rate * elapsed).min(cap)
            }
        };
        self.last_ns = Some(now_ns.max(self.last_ns.unwrap_or(0)));
        if tokens >= 1.0 {
            self.tokens = tokens - 1.0;
            true
        } else {
            self.tokens = tokens;
            false
        }
    }

    /// Gives back a token taken for a call that another quota then refused.
    fn give_back(&mut self) {
        self.tokens += 1.0;
    }
}

/// The quotas a call is charged to: its operation's own and at most two shared quotas
/// (ReEncrypt's source and destination key types, when they differ).
type Charges = [Option<usize>; 3];

/// The shared quotas of a cryptographic call, from its request: the key type follows from the
/// algorithm (or key pair spec) the request names. ReEncrypt counts against the quotas of
/// both keys' types (kms-api.md §8.1): its source's, and its destination's when another.
fn shared_quotas(op: &str, req: &dyn Any) -> [Option<usize>; 2] {
    if op == "ReEncrypt" {
        let Some(r) = req.downcast_ref::<pb::ReEncryptRequest>() else {
            return [None, None];
        };
        let source = shared_index(algorithm_class(r.source_encryption_algorithm.as_deref()));
        let destination = shared_index(algorithm_class(
            r.destination_encryption_algorithm.as_deref(),
        ));
        return [source, destination.filter(|d| Some(*d) != source)];
    }
    [shared_quota(op, req), None]
}

/// The shared quota of an algorithm's key type (a call that names none is symmetric).
fn algorithm_class(alg: Option<&str>) -> &'static str {
    match alg {
        Some(a) if a.starts_with("RSA") => "CryptographicOperationsRsa",
        Some(a) if a.starts_with("ECDSA") || a.starts_with("SM2") => "CryptographicOperationsEcc",
        Some(a) if a.starts_with("ML_DSA") => "CryptographicOperationsMlDsa",
        _ => "CryptographicOperationsSymmetric",
    }
}

/// The index of a shared quota.
fn shared_index(name: &str) -> Option<usize> {
    SHARED_QUOTAS
        .iter()
        .position(|s| *s == name)
        .map(|i| OPERATIONS.len() + i)
}

/// The shared quota of a cryptographic call other than ReEncrypt.
fn shared_quota(op: &str, req: &dyn Any) -> Option<usize> {
    let name = match op {
        "Encrypt" => algorithm_class(
            req.downcast_ref::<pb::EncryptRequest>()?
                .encryption_algorithm
                .as_deref(),
        ),
        "Decrypt" => algorithm_class(
            req.downcast_ref::<pb::DecryptRequest>()?
                .encryption_algorithm
                .as_deref(),
        ),
        "Sign" => algorithm_class(
            req.downcast_ref::<pb::SignRequest>()?
                .signing_algorithm
                .as_deref(),
        ),
        "Verify" => algorithm_class(
            req.downcast_ref::<pb::VerifyRequest>()?
                .signing_algorithm
                .as_deref(),
        ),
        "GenerateDataKey"
        | "GenerateDataKeyWithoutPlaintext"
        | "GenerateMac"
        | "VerifyMac"
        | "GenerateRandom" => "CryptographicOperationsSymmetric",
        "DeriveSharedSecret" => "CryptographicOperationsEcc",
        "GenerateDataKeyPair" | "GenerateDataKeyPairWithoutPlaintext" => {
            let spec = match req.downcast_ref::<pb::GenerateDataKeyPairRequest>() {
                Some(r) => r.key_pair_spec.as_deref(),
                None => req
                    .downcast_ref::<pb::GenerateDataKeyPairWithoutPlaintextRequest>()?
                    .key_pair_spec
                    .as_deref(),
            }?;
            // The spec is checked later; one that names no quota is charged to none.
            return SHARED_QUOTAS[4..]
                .iter()
                .position(|s| s.strip_prefix("GenerateDataKeyPair/") == Some(spec))
                .map(|i| OPERATIONS.len() + 4 + i);
        }
        _ => return None,
    };
    shared_index(name)
}

/// The account a call is charged to: the one its caller's ARN names
/// (`arn:aws:iam::<account>:…`, `arn:aws:sts::<account>:…`), else `fallback`.
fn caller_account<'a>(principal_arn: &'a str, fallback: &'a str) -> &'a str {
    principal_arn
        .split(':')
        .nth(4)
        .filter(|a| !a.is_empty())
        .unwrap_or(fallback)
}

/// The rates in force and what they were made from.
struct Limits {
    /// The Region's rate of each quota (requests per second), `None` where none applies.
    rates: Vec<Option<f64>>,
    /// How many nodes share the Region's rates (at least 1).
    share: u32,
    /// Rates set at run time (`kmsim chaos throttle`), as the Region's state holds them.
    throttles: Throttles,
    /// Buckets by account, one per quota.
    accounts: HashMap<String, Arc<[Mutex<Bucket>]>>,
}

/// One node's request quotas.
pub struct Quotas {
    /// This node's Region (AWS's symmetric quota depends on it).
    region: String,
    /// The account of the Region (charged when a caller's ARN names none).
    account: String,
    /// The topology's `[quotas]`.
    settings: QuotaSettings,
    /// Whether any quota applies: the whole check when none does.
    active: AtomicBool,
    /// The monotonic origin of the buckets' clocks.
    origin: Instant,
    limits: RwLock<Limits>,
}

impl Quotas {
    /// The quotas of a node of `region` (owned by `account`), as the topology sets them.
    pub fn new(region: &str, account: &str, settings: &QuotaSettings, share: u32) -> Quotas {
        let q = Quotas {
            region: region.to_string(),
            account: account.to_string(),
            settings: settings.clone(),
            active: AtomicBool::new(false),
            origin: Instant::now(),
            limits: RwLock::new(Limits {
                rates: vec![None; quota_count()],
                share: share.max(1),
                throttles: Throttles::default(),
                accounts: HashMap::new(),
            }),
        };
        q.recompute(&mut q.limits.write().expect("invariant: lock not poisoned"));
        q
    }

    /// Recomputes every quota's rate after a change: the run-time setting, else the
    /// topology's override, else AWS's value when the topology turns it on.
    fn recompute(&self, l: &mut Limits) {
        for (i, rate) in l.rates.iter_mut().enumerate() {
            let name = quota_name(i);
            let every_operation = l.throttles.every_operation.filter(|_| i < OPERATIONS.len());
            *rate = l
                .throttles
                .by_quota
                .get(name)
                .copied()
                .or(every_operation)
                .or_else(|| self.settings.overrides.get(name).copied())
                .or_else(|| match self.settings.requests {
                    RequestQuotaMode::Aws => aws_rate(name, &self.region),
                    RequestQuotaMode::Off => None,
                });
        }
        self.active
            .store(l.rates.iter().any(Option::is_some), Ordering::Release);
    }

    /// Sets how many nodes share the Region's rates (the Region's voters).
    pub fn set_share(&self, nodes: u32) {
        let mut l = self.limits.write().expect("invariant: lock not poisoned");
        l.share = nodes.max(1);
    }

    /// Sets (`Some`) or clears (`None`) a run-time rate for one quota (`Some(name)`) or for
    /// every operation (`None`), on this node only (a node applies the Region's through
    /// [`Quotas::apply_throttles`]). Clearing with no name clears every run-time rate. An
    /// unknown name is refused with the list of valid ones.
    pub fn set_throttle(&self, quota: Option<&str>, rate: Option<f64>) -> Result<(), String> {
        check_quota_name(quota)?;
        let mut throttles = self
            .limits
            .read()
            .expect("invariant: lock not poisoned")
            .throttles
            .clone();
        throttles
            .set(quota, rate)
            .map_err(|e| e.message().to_string())?;
        self.apply_throttles(&throttles);
        Ok(())
    }

    /// Puts the Region's run-time rates in force (as its replicated state holds them, after
    /// every `SetThrottle` applied and when the state is opened). Names this version does not
    /// know are ignored.
    pub fn apply_throttles(&self, throttles: &Throttles) {
        let mut l = self.limits.write().expect("invariant: lock not poisoned");
        if l.throttles != *throttles {
            l.throttles = throttles.clone();
            self.recompute(&mut l);
        }
    }

    /// The Region's rate of every quota in force, by name, and the number of nodes sharing
    /// them.
    pub fn in_force(&self) -> (Vec<(&'static str, f64)>, u32) {
        let l = self.limits.read().expect("invariant: lock not poisoned");
        let rates = l
            .rates
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.map(|r| (quota_name(i), r)))
            .collect();
        (rates, l.share)
    }

    /// Charges one call of `op` (its request is `req`) by the caller `principal_arn`:
    /// `ThrottlingException` when one of its quotas has no token left on this node.
    pub fn admit(&self, op: &str, principal_arn: &str, req: &dyn Any) -> Result<(), KmsError> {
        if !self.active.load(Ordering::Acquire) {
            return Ok(());
        }
        let [shared, second] = shared_quotas(op, req);
        let charges: Charges = [OPERATIONS.iter().position(|o| *o == op), shared, second];
        let account = caller_account(principal_arn, &self.account);
        self.charge(account, &charges, 1)
    }

    /// Charges `count` calls of `op` to the Region's own account: the calls another Region
    /// makes here on a caller's behalf (ReplicateKey is two CreateKey calls in the replica's
    /// Region, one of them its dry run).
    pub fn admit_on_behalf(&self, op: &str, count: u32) -> Result<(), KmsError> {
        if !self.active.load(Ordering::Acquire) {
            return Ok(());
        }
        let charges: Charges = [OPERATIONS.iter().position(|o| *o == op), None, None];
        self.charge(&self.account, &charges, count)
    }

    fn charge(&self, account: &str, charges: &Charges, count: u32) -> Result<(), KmsError> {
        let now_ns = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let l = self.limits.read().expect("invariant: lock not poisoned");
        let buckets = match l.accounts.get(account) {
            Some(b) => b.clone(),
            None => {
                drop(l);
                self.add_account(account);
                return self.charge(account, charges, count);
            }
        };
        let share = f64::from(l.share);
        // Tokens taken so far, per charged quota (no allocation on this path).
        let mut taken = [0u32; 3];
        for (slot, i) in charges.iter().enumerate() {
            let Some(i) = *i else { continue };
            let Some(rate) = l.rates[i] else { continue };
            let mut bucket = buckets[i].lock().expect("invariant: lock not poisoned");
            for _ in 0..count {
                if bucket.take(now_ns, rate / share) {
                    taken[slot] += 1;
                    continue;
                }
                drop(bucket);
                // Refused: what the call took from its quotas goes back.
                for (slot, n) in taken.iter().enumerate() {
                    let Some(i) = charges[slot].filter(|_| *n > 0) else {
                        continue;
                    };
                    let mut b = buckets[i].lock().expect("invariant: lock not poisoned");
                    for _ in 0..*n {
                        b.give_back();
                    }
                }
                return Err(KmsError::Throttling(RATE_EXCEEDED.into()));
            }
        }
        Ok(())
    }

    /// Makes the buckets of an account on its first call.
    fn add_account(&self, account: &str) {
        let mut l = self.limits.write().expect("invariant: lock not poisoned");
        l.accounts
            .entry(account.to_string())
            .or_insert_with(|| (0..quota_count()).map(|_| Mutex::default()).collect());
    }
}

/// Keeps `quotas`' share equal to the Region's voters, as Raft's metrics report them, until
/// `stop` turns true (or Raft stops).
pub async fn follow_voters(
    raft: kmsim_store::Raft,
    quotas: Arc<Quotas>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut channel = raft.metrics();
    loop {
        let voters = channel
            .borrow_and_update()
            .membership_config
            .membership()
            .voter_ids()
            .count();
        quotas.set_share(u32::try_from(voters).unwrap_or(u32::MAX));
        tokio::select! {
            changed = channel.changed() => if changed.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn settings(mode: RequestQuotaMode, overrides: &[(&str, f64)]) -> QuotaSettings {
        QuotaSettings {
            requests: mode,
            overrides: overrides.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ..QuotaSettings::default()
        }
    }

    const ROOT: &str = "arn:aws:iam::111122223333:root";

    fn encrypt(alg: Option<&str>) -> pb::EncryptRequest {
        pb::EncryptRequest {
            encryption_algorithm: alg.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn every_aws_quota_names_an_operation_or_a_shared_quota() {
        for name in OPERATIONS.iter().chain(SHARED_QUOTAS) {
            assert_eq!(quota_name(quota_index(name).unwrap()), *name);
        }
        // Every operation that is not cryptographic has a quota of its own in AWS.
        for op in OPERATIONS {
            let crypto = shared_quota(op, &()).is_some()
                || matches!(
                    *op,
                    "Encrypt"
                        | "Decrypt"
                        | "ReEncrypt"
                        | "Sign"
                        | "Verify"
                        | "GenerateDataKeyPair"
                        | "GenerateDataKeyPairWithoutPlaintext"
                );
            assert!(
                crypto || aws_rate(op, "us-east-1").is_some(),
                "{op} has no AWS quota"
            );
        }
        assert_eq!(
            aws_rate("CryptographicOperationsSymmetric", "us-east-1"),
            Some(100_000.0)
        );
        assert_eq!(
            aws_rate("CryptographicOperationsSymmetric", "eu-central-1"),
            Some(20_000.0)
        );
        assert_eq!(
            aws_rate("CryptographicOperationsSymmetric", "sa-east-1"),
            Some(10_000.0)
        );
        assert!(unknown_quota("Nope").contains("Encrypt, "));
    }

    #[test]
    fn quotas_are_off_by_default_and_aws_values_apply_when_on() {
        let off = Quotas::new("us-east-1", "111122223333", &QuotaSettings::default(), 3);
        for _ in 0..100 {
            off.admit("CreateKey", ROOT, &()).unwrap();
        }
        assert!(off.in_force().0.is_empty());
        // AWS's CreateKey quota: 5/s for the Region, so 5/3 per node of three, a burst of
        // at least one call: the first call passes, the next ones are throttled.
        let aws = Quotas::new(
            "us-east-1",
            "111122223333",
            &settings(RequestQuotaMode::Aws, &[]),
            3,
        );
        let admitted = (0..10)
            .filter(|_| aws.admit("CreateKey", ROOT, &()).is_ok())
            .count();
        assert_eq!(admitted, 1);
        let e = aws.admit("CreateKey", ROOT, &()).unwrap_err();
        assert_eq!(e.code(), "ThrottlingException");
        assert_eq!(e.message(), "Rate exceeded");
        // Another account has buckets of its own.
        aws.admit("CreateKey", "arn:aws:iam::444455556666:user/u", &())
            .unwrap();
        // DescribeKey has its own quota (2000/s): not affected.
        aws.admit("DescribeKey", ROOT, &()).unwrap();
    }

    #[test]
    fn an_operation_override_leaves_other_operations_and_a_shared_quota_limits_them_all() {
        let q = Quotas::new(
            "us-east-1",
            "111122223333",
            &settings(RequestQuotaMode::Off, &[("Encrypt", 2.0)]),
            1,
        );
        let sym = encrypt(None);
        assert!(q.admit("Encrypt", ROOT, &sym).is_ok());
        assert!(q.admit("Encrypt", ROOT, &sym).is_ok());
        assert!(q.admit("Encrypt", ROOT, &sym).is_err());
        for _ in 0..50 {
            q.admit("Decrypt", ROOT, &pb::DecryptRequest::default())
                .unwrap();
        }
        // The shared symmetric quota covers Decrypt and GenerateDataKey as well.
        let q = Quotas::new(
            "us-east-1",
            "111122223333",
            &settings(
                RequestQuotaMode::Off,
                &[("CryptographicOperationsSymmetric", 2.0)],
            ),
            1,
        );
        q.admit("Decrypt", ROOT, &pb::DecryptRequest::default())
            .unwrap();
        q.admit("GenerateDataKey", ROOT, &()).unwrap();
        assert!(q.admit("Encrypt", ROOT, &sym).is_err());
        // An RSA encryption is charged to the RSA quota, not the symmetric one.
        q.admit("Encrypt", ROOT, &encrypt(Some("RSAES_OAEP_SHA_256")))
            .unwrap();
    }

    #[test]
    fn a_refused_call_gives_back_what_it_took_from_its_other_quota() {
        let q = Quotas::new(
            "us-east-1",
            "111122223333",
            &settings(
                RequestQuotaMode::Off,
                &[("Encrypt", 1.0), ("CryptographicOperationsSymmetric", 3.0)],
            ),
            1,
        );
        let sym = encrypt(None);
        q.admit("Encrypt", ROOT, &sym).unwrap();
        // Encrypt's own bucket is empty: refused, and the symmetric token goes back.
        assert!(q.admit("Encrypt", ROOT, &sym).is_err());
        assert!(q.admit("Encrypt", ROOT, &sym).is_err());
        for _ in 0..2 {
            q.admit("Decrypt", ROOT, &pb::DecryptRequest::default())
                .unwrap();
        }
        assert!(q
            .admit("Decrypt", ROOT, &pb::DecryptRequest::default())
            .is_err());
    }

    #[test]
    fn re_encrypt_is_charged_to_both_keys_types_once_each() {
        // Rates so low that no token comes back during the test: a burst of one call each.
        let quotas = |rsa: f64| {
            Quotas::new(
                "us-east-1",
                "111122223333",
                &settings(
                    RequestQuotaMode::Off,
                    &[
                        ("CryptographicOperationsSymmetric", 0.001),
                        ("CryptographicOperationsRsa", rsa),
                    ],
                ),
                1,
            )
        };
        let re = |from: Option<&str>, to: Option<&str>| pb::ReEncryptRequest {
            source_encryption_algorithm: from.map(str::to_string),
            destination_encryption_algorithm: to.map(str::to_string),
            ..Default::default()
        };
        let rsa = Some("RSAES_OAEP_SHA_256");
        // Symmetric to symmetric: one symmetric token (two would be refused).
        let q = quotas(0.001);
        q.admit("ReEncrypt", ROOT, &re(None, None)).unwrap();
        assert!(q.admit("Encrypt", ROOT, &encrypt(None)).is_err());
        q.admit("Encrypt", ROOT, &encrypt(rsa)).unwrap();
        // Symmetric to RSA: a token of each.
        let q = quotas(0.001);
        q.admit("ReEncrypt", ROOT, &re(None, rsa)).unwrap();
        assert!(q.admit("Encrypt", ROOT, &encrypt(None)).is_err());
        let e = q.admit("Encrypt", ROOT, &encrypt(rsa)).unwrap_err();
        assert_eq!(e.code(), "ThrottlingException");
        // RSA to symmetric likewise; the destination's quota alone refuses, and the source's
        // token goes back.
        let q = quotas(0.001);
        q.admit("ReEncrypt", ROOT, &re(rsa, None)).unwrap();
        assert!(q.admit("Encrypt", ROOT, &encrypt(rsa)).is_err());
        let q = quotas(0.0);
        assert!(q.admit("ReEncrypt", ROOT, &re(None, rsa)).is_err());
        q.admit("Encrypt", ROOT, &encrypt(None)).unwrap();
    }

    #[test]
    fn data_key_pairs_are_charged_by_spec() {
        let q = Quotas::new(
            "us-east-1",
            "111122223333",
            &settings(RequestQuotaMode::Aws, &[]),
            1,
        );
        let pair = |spec: &str| pb::GenerateDataKeyPairRequest {
            key_pair_spec: Some(spec.to_string()),
            ..Default::default()
        };
        // RSA_4096: 1/s.
        q.admit("GenerateDataKeyPair", ROOT, &pair("RSA_4096"))
            .unwrap();
        assert!(q
            .admit("GenerateDataKeyPair", ROOT, &pair("RSA_4096"))
            .is_err());
        // The same spec's quota covers the variant without plaintext.
        let without = pb::GenerateDataKeyPairWithoutPlaintextRequest {
            key_pair_spec: Some("RSA_4096".into()),
            ..Default::default()
        };
        assert!(q
            .admit("GenerateDataKeyPairWithoutPlaintext", ROOT, &without)
            .is_err());
        q.admit("GenerateDataKeyPair", ROOT, &pair("ECC_NIST_P256"))
            .unwrap();
    }

    #[test]
    fn run_time_throttles_turn_quotas_on_and_clear() {
        let q = Quotas::new("eu-west-1", "111122223333", &QuotaSettings::default(), 1);
        assert!(q.set_throttle(Some("Nope"), Some(1.0)).is_err());
        assert!(q.set_throttle(Some("Encrypt"), Some(-1.0)).is_err());
        q.set_throttle(Some("Encrypt"), Some(0.0)).unwrap();
        assert!(q.admit("Encrypt", ROOT, &encrypt(None)).is_err());
        q.admit("Decrypt", ROOT, &pb::DecryptRequest::default())
            .unwrap();
        q.set_throttle(Some("Encrypt"), None).unwrap();
        q.admit("Encrypt", ROOT, &encrypt(None)).unwrap();
        // Every operation at once, then all cleared.
        q.set_throttle(None, Some(0.0)).unwrap();
        assert!(q.admit("ListKeys", ROOT, &()).is_err());
        assert_eq!(q.in_force().0.len(), OPERATIONS.len());
        q.set_throttle(None, None).unwrap();
        q.admit("ListKeys", ROOT, &()).unwrap();
        assert!(q.in_force().0.is_empty());
        // Calls made on a caller's behalf by another Region.
        q.set_throttle(Some("CreateKey"), Some(1.0)).unwrap();
        assert!(q.admit_on_behalf("CreateKey", 2).is_err());
        q.admit_on_behalf("CreateKey", 1).unwrap();
    }

    #[test]
    fn the_callers_account_comes_from_its_arn() {
        assert_eq!(
            caller_account("arn:aws:iam::444455556666:root", "x"),
            "444455556666"
        );
        assert_eq!(
            caller_account("arn:aws:sts::444455556666:assumed-role/r/s", "x"),
            "444455556666"
        );
        assert_eq!(caller_account("node/us-east-1/2", "x"), "x");
    }

    proptest! {
        /// Over any schedule of calls, a bucket admits at most its burst plus its rate times
        /// the time elapsed since its first call; and a call finding a full second's
        /// refill waiting is admitted.
        #[test]
        fn a_bucket_never_admits_more_than_burst_plus_rate_times_elapsed(
            rate in 0.0f64..500.0,
            gaps in proptest::collection::vec(0u64..50_000_000, 1..400),
        ) {
            let mut b = Bucket::default();
            let (mut now, mut admitted) = (0u64, 0u64);
            for gap in gaps {
                now += gap;
                if b.take(now, rate) {
                    admitted += 1;
                }
                let bound = Bucket::capacity(rate) + rate * now as f64 / 1e9;
                prop_assert!(admitted as f64 <= bound + 1e-9, "{admitted} > {bound}");
            }
            if rate > 0.0 {
                prop_assert!(b.take(now + 2_000_000_000 + (1e9 / rate) as u64, rate));
            }
        }
    }
}
