//! The experiment file (`docs/EXPERIMENTS.md`): TOML, `version = 1`, unknown keys refused.
//! [`Experiment::parse`] reads and validates it into typed parts; nothing in it names a
//! runtime, so one file runs on processes, on containers, and later on a simulated runtime.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::units::{Rate, Span};

/// Why an experiment file was refused: where, and what to write instead.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    /// Not TOML, or a key or value the format does not have (with its line).
    #[error("{0}")]
    Syntax(String),
    /// Well-formed, but not a runnable experiment.
    #[error("{field}: {message}")]
    Invalid {
        /// Where, as a path (`fault[2].target`).
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// The file's version this build reads.
pub const VERSION: u32 = 1;

/// Longest workload phase accepted (a run is bounded in time).
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// The operations a workload mixes, by their AWS names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Operation {
    /// Encrypt a small plaintext under one of the workload's keys.
    Encrypt,
    /// Decrypt a ciphertext an earlier Encrypt returned (possibly made in another Region).
    Decrypt,
    /// GenerateDataKey (AES_256) under one of the keys.
    GenerateDataKey,
    /// Sign with one of the workload's signing keys (`sign_key_spec`, ECC_NIST_P256 by default).
    Sign,
    /// GenerateMac with one of the workload's HMAC keys (`mac_key_spec`, HMAC_256 by default).
    GenerateMac,
    /// ReEncrypt a ciphertext (as Decrypt picks one) to another key of the client's Region.
    ReEncrypt,
    /// Create a key (multi-Region with the workload's share).
    CreateKey,
    /// Replicate one of the workload's multi-Region keys into a Region without a replica.
    ReplicateKey,
    /// Rotate a key's material on demand (RotateKeyOnDemand).
    RotateKeyOnDemand,
    /// Create an alias for a key.
    CreateAlias,
    /// Make a replica of a multi-Region key its primary.
    UpdatePrimaryRegion,
    /// Schedule a key created by the workload for deletion (7 days).
    ScheduleKeyDeletion,
    /// DescribeKey (a read of the key's metadata).
    DescribeKey,
}

impl Operation {
    /// Every operation, in a fixed order.
    pub const ALL: [Operation; 13] = [
        Operation::Encrypt,
        Operation::Decrypt,
        Operation::GenerateDataKey,
        Operation::Sign,
        Operation::GenerateMac,
        Operation::ReEncrypt,
        Operation::CreateKey,
        Operation::ReplicateKey,
        Operation::RotateKeyOnDemand,
        Operation::CreateAlias,
        Operation::UpdatePrimaryRegion,
        Operation::ScheduleKeyDeletion,
        Operation::DescribeKey,
    ];

    /// The AWS operation name (`Encrypt`, `GenerateDataKey`).
    pub fn name(self) -> &'static str {
        match self {
            Operation::Encrypt => "Encrypt",
            Operation::Decrypt => "Decrypt",
            Operation::GenerateDataKey => "GenerateDataKey",
            Operation::Sign => "Sign",
            Operation::GenerateMac => "GenerateMac",
            Operation::ReEncrypt => "ReEncrypt",
            Operation::CreateKey => "CreateKey",
            Operation::ReplicateKey => "ReplicateKey",
            Operation::RotateKeyOnDemand => "RotateKeyOnDemand",
            Operation::CreateAlias => "CreateAlias",
            Operation::UpdatePrimaryRegion => "UpdatePrimaryRegion",
            Operation::ScheduleKeyDeletion => "ScheduleKeyDeletion",
            Operation::DescribeKey => "DescribeKey",
        }
    }

    /// The key of the `[workload.mix]` table (`generate_data_key`).
    pub fn mix_key(self) -> &'static str {
        match self {
            Operation::Encrypt => "encrypt",
            Operation::Decrypt => "decrypt",
            Operation::GenerateDataKey => "generate_data_key",
            Operation::Sign => "sign",
            Operation::GenerateMac => "generate_mac",
            Operation::ReEncrypt => "re_encrypt",
            Operation::CreateKey => "create_key",
            Operation::ReplicateKey => "replicate_key",
            Operation::RotateKeyOnDemand => "rotate_key_on_demand",
            Operation::CreateAlias => "create_alias",
            Operation::UpdatePrimaryRegion => "update_primary_region",
            Operation::ScheduleKeyDeletion => "schedule_key_deletion",
            Operation::DescribeKey => "describe_key",
        }
    }

    /// Whether the operation changes the Region's state (a management write the checkers
    /// expect to find afterwards when it was acknowledged).
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Operation::CreateKey
                | Operation::ReplicateKey
                | Operation::RotateKeyOnDemand
                | Operation::CreateAlias
                | Operation::UpdatePrimaryRegion
                | Operation::ScheduleKeyDeletion
        )
    }
}

// ----- the file as written -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    name: String,
    #[serde(default)]
    description: String,
    cluster: ClusterFile,
    #[serde(default)]
    links: LinksFile,
    workload: WorkloadFile,
    #[serde(default, rename = "fault")]
    faults: Vec<FaultFile>,
    #[serde(default, rename = "probe")]
    probes: Vec<ProbeFile>,
    #[serde(default)]
    checks: ChecksFile,
    #[serde(default)]
    quick: Option<QuickFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterFile {
    regions: Vec<String>,
    #[serde(default = "three")]
    nodes: u32,
    #[serde(default)]
    raft: Option<RaftFile>,
}

fn three() -> u32 {
    3
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RaftFile {
    heartbeat: Span,
    election_timeout_min: Span,
    election_timeout_max: Span,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LinksFile {
    #[serde(default)]
    preset: Option<String>,
    #[serde(default, rename = "link")]
    links: Vec<LinkFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LinkFile {
    from: String,
    to: String,
    #[serde(default)]
    delay: Span,
    #[serde(default)]
    jitter: Span,
    #[serde(default)]
    loss: f64,
    /// Both directions (the default) or only `from` → `to`.
    #[serde(default = "yes")]
    both_ways: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadFile {
    duration: Span,
    #[serde(default = "default_settle")]
    settle: Span,
    #[serde(default)]
    rate: Option<Rate>,
    #[serde(default)]
    concurrency: Option<u32>,
    #[serde(default)]
    clients: Option<Vec<String>>,
    #[serde(default = "four")]
    keys: u32,
    #[serde(default = "half")]
    multi_region: f64,
    #[serde(default = "half")]
    cross_region: f64,
    #[serde(default = "default_plaintext")]
    plaintext_bytes: u32,
    #[serde(default = "default_sign_key_spec")]
    sign_key_spec: String,
    #[serde(default = "default_mac_key_spec")]
    mac_key_spec: String,
    mix: BTreeMap<String, u32>,
    #[serde(default)]
    retries: u32,
}

fn default_sign_key_spec() -> String {
    "ECC_NIST_P256".into()
}

fn default_mac_key_spec() -> String {
    "HMAC_256".into()
}

fn default_settle() -> Span {
    Span(Duration::from_secs(10))
}

fn four() -> u32 {
    4
}

fn half() -> f64 {
    0.5
}

fn default_plaintext() -> u32 {
    64
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultFile {
    action: String,
    at: Span,
    #[serde(default, rename = "for")]
    lasts: Option<Span>,
    #[serde(default)]
    every: Option<Span>,
    #[serde(default)]
    node: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    pick: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    #[serde(default)]
    both_ways: Option<bool>,
    #[serde(default)]
    delay: Option<Span>,
    #[serde(default)]
    jitter: Option<Span>,
    #[serde(default)]
    loss: Option<f64>,
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    drift: Option<String>,
    #[serde(default)]
    operation: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    percent: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProbeFile {
    name: String,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    operation: Option<Operation>,
    #[serde(default = "default_window")]
    window: Span,
    #[serde(default)]
    max_error_rate: Option<f64>,
    #[serde(default)]
    max_p99: Option<Span>,
    #[serde(default)]
    abort: bool,
}

fn default_window() -> Span {
    Span(Duration::from_secs(5))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChecksFile {
    #[serde(default = "default_convergence")]
    convergence: Span,
    #[serde(default)]
    availability: Vec<AvailabilityFile>,
}

impl Default for ChecksFile {
    fn default() -> Self {
        ChecksFile {
            convergence: default_convergence(),
            availability: Vec::new(),
        }
    }
}

fn default_convergence() -> Span {
    Span(Duration::from_secs(15))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AvailabilityFile {
    region: String,
    #[serde(default)]
    operations: Vec<Operation>,
    min_success: f64,
    #[serde(default = "during_faults")]
    during: String,
}

fn during_faults() -> String {
    "faults".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QuickFile {
    duration: Span,
    #[serde(default)]
    rate: Option<Rate>,
    #[serde(default)]
    concurrency: Option<u32>,
}

// ----- the experiment as run -----

/// A validated experiment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Experiment {
    /// Its name (a file name stem in the library).
    pub name: String,
    /// What it studies, one paragraph.
    pub description: String,
    /// The cluster it runs on.
    pub cluster: ClusterSpec,
    /// The profile of each inter-Region link for the whole run (directed pairs).
    pub links: Vec<LinkSpec>,
    /// What the clients do.
    pub workload: Workload,
    /// The faults, in file order.
    pub faults: Vec<FaultSpec>,
    /// Steady-state probes evaluated while the workload runs.
    pub probes: Vec<Probe>,
    /// What the checkers are told.
    pub checks: Checks,
    /// Whether `--quick` shortened it.
    pub quick: bool,
}

/// The cluster an experiment runs on.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClusterSpec {
    /// Its Regions (2 to 8, distinct, AWS-shaped names such as `us-east-1`).
    pub regions: Vec<String>,
    /// Nodes per Region (1 to 7).
    pub nodes: u32,
    /// Raft timings, when not the default.
    pub raft: Option<RaftTimings>,
}

/// Raft timings of every node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RaftTimings {
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Shortest election timeout.
    pub election_timeout_min: Duration,
    /// Longest election timeout.
    pub election_timeout_max: Duration,
}

/// The profile of every message sent from one Region to another.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkSpec {
    /// Sending Region.
    pub from: String,
    /// Receiving Region.
    pub to: String,
    /// Added to every message.
    pub delay: Duration,
    /// Extra delay drawn from [0, jitter] per message.
    pub jitter: Duration,
    /// Probability that a message is lost.
    pub loss: f64,
}

/// How calls arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Arrival {
    /// Open loop: this many calls per second in all, each Region's clients an equal share,
    /// latency measured from when a call was due.
    Rate(u64),
    /// Closed loop: this many calls in flight in each client Region.
    Concurrency(u32),
}

/// What the clients do.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Workload {
    /// How long the workload (and the fault schedule) runs.
    pub duration: Duration,
    /// After the faults are healed: how long to wait for the cluster to settle before checking.
    pub settle: Duration,
    /// How calls arrive.
    pub arrival: Arrival,
    /// The Regions whose endpoints clients call (every Region by default).
    pub clients: Vec<String>,
    /// Keys created in the setup phase, per client Region and per kind the mix needs
    /// (symmetric always; signing keys for `sign`, HMAC keys for `generate_mac`).
    pub keys: u32,
    /// Share of those keys that are multi-Region (replicated into every client Region).
    pub multi_region: f64,
    /// Share of Decrypts given a ciphertext made in another Region (with a related key).
    pub cross_region: f64,
    /// Plaintext size of Encrypt calls, and message size of Sign and GenerateMac calls.
    pub plaintext_bytes: u32,
    /// The key spec of the keys `sign` uses (`ECC_NIST_P256` by default), one of
    /// [`SIGNING_KEY_SPECS`].
    pub sign_key_spec: String,
    /// The key spec of the keys `generate_mac` uses (`HMAC_256` by default), one of
    /// [`MAC_KEY_SPECS`].
    pub mac_key_spec: String,
    /// Relative weights of the operations (only those above 0).
    pub mix: Vec<(Operation, u32)>,
    /// How many times a client sends a throttled call again (0: never, the default).
    pub retries: u32,
}

/// The key specs a workload's signing keys may have, each with the signing algorithm its
/// Sign calls use (ECDSA with the curve's hash; RSASSA-PSS with SHA-256 for RSA).
pub const SIGNING_KEY_SPECS: [(&str, &str); 7] = [
    ("ECC_NIST_P256", "ECDSA_SHA_256"),
    ("ECC_NIST_P384", "ECDSA_SHA_384"),
    ("ECC_NIST_P521", "ECDSA_SHA_512"),
    ("ECC_SECG_P256K1", "ECDSA_SHA_256"),
    ("RSA_2048", "RSASSA_PSS_SHA_256"),
    ("RSA_3072", "RSASSA_PSS_SHA_256"),
    ("RSA_4096", "RSASSA_PSS_SHA_256"),
];

/// The key specs a workload's HMAC keys may have, each with its MAC algorithm.
pub const MAC_KEY_SPECS: [(&str, &str); 4] = [
    ("HMAC_224", "HMAC_SHA_224"),
    ("HMAC_256", "HMAC_SHA_256"),
    ("HMAC_384", "HMAC_SHA_384"),
    ("HMAC_512", "HMAC_SHA_512"),
];

/// How many of `keys` keys are multi-Region with the share `multi_region`.
fn multi_region_keys(keys: u32, multi_region: f64) -> u32 {
    (f64::from(keys) * multi_region).round() as u32
}

impl Workload {
    /// How many of each Region's setup keys (of each kind) are multi-Region: the first ones.
    pub fn multi_region_keys(&self) -> u32 {
        multi_region_keys(self.keys, self.multi_region)
    }

    /// The weight of `op` in the mix (0 when absent).
    pub fn weight(&self, op: Operation) -> u32 {
        self.mix
            .iter()
            .find(|(o, _)| *o == op)
            .map_or(0, |(_, w)| *w)
    }

    /// The signing algorithm of the `sign` keys.
    pub fn signing_algorithm(&self) -> &'static str {
        algorithm_of(&SIGNING_KEY_SPECS, &self.sign_key_spec)
    }

    /// The MAC algorithm of the `generate_mac` keys.
    pub fn mac_algorithm(&self) -> &'static str {
        algorithm_of(&MAC_KEY_SPECS, &self.mac_key_spec)
    }
}

fn algorithm_of(table: &[(&str, &'static str)], spec: &str) -> &'static str {
    table
        .iter()
        .find(|(s, _)| *s == spec)
        .map_or("", |(_, a)| *a)
}

/// Which node a node fault hits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum NodeTarget {
    /// This node.
    Node {
        /// Its Region.
        region: String,
        /// Its ID.
        id: u32,
    },
    /// The Region's leader when the fault starts.
    Leader(String),
    /// One of the Region's followers when the fault starts, chosen with the seed.
    Follower(String),
    /// Any node of the Region (any Region when `None`), chosen with the seed.
    Any(Option<String>),
}

/// One side of a link fault: a Region or a node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum Side {
    /// Every node of a Region.
    Region(String),
    /// One node.
    Node {
        /// Its Region.
        region: String,
        /// Its ID.
        id: u32,
    },
}

/// What a fault does. Each undoes itself when its `for` ends (or at the heal).
///
/// `T` names the node a node fault hits: as the file says ([`NodeTarget`], the default), or
/// with the schedule's seeded choice made ([`crate::schedule::Target`]; a
/// [`crate::schedule::Act`] is that form, made by [`FaultAction::map_target`]).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub enum FaultAction<T = NodeTarget> {
    /// SIGKILL (`docker kill`); restarted when it ends.
    Kill(T),
    /// SIGSTOP (`docker pause`), a gray failure; resumed when it ends.
    Pause(T),
    /// SIGKILL of every node of a Region; restarted when it ends.
    KillRegion(String),
    /// Every link between two sides cut (one direction: only `a` → `b`); healed when it ends.
    Partition {
        /// One side.
        a: Side,
        /// The other.
        b: Side,
        /// Both directions.
        both_ways: bool,
    },
    /// A link profile between two sides; set back to the experiment's `[links]` when it ends.
    Link {
        /// Sending side.
        from: Side,
        /// Receiving side.
        to: Side,
        /// Both directions.
        both_ways: bool,
        /// Added delay.
        delay: Duration,
        /// Jitter.
        jitter: Duration,
        /// Loss probability.
        loss: f64,
    },
    /// The Region's replicated clock moved forward for good (AdvanceClock); it never goes
    /// back, so the fault has no `for`.
    ClockJump {
        /// The Region.
        region: String,
        /// How far.
        by: Duration,
    },
    /// Every node of the Region skewed (node-local, not replicated); taken back when it ends.
    ClockSkew {
        /// The Region.
        region: String,
        /// The skew when it starts, in ms (negative: behind).
        skew_ms: i64,
        /// How much the skew grows per real second, in ms.
        drift_ms_per_s: i64,
    },
    /// The Region's synchronizer paused (nothing crosses to or from it); resumed when it ends.
    PauseSync(String),
    /// A share of the Region's calls (of one operation, or all) answered with an error before
    /// they run; removed when it ends.
    InjectError {
        /// The Region.
        region: String,
        /// Only this operation (every one when `None`).
        operation: Option<Operation>,
        /// The error.
        error: InjectedError,
        /// The share of the calls, in percent.
        percent: f64,
    },
    /// A share of the Region's calls (of one operation, or all) delayed before they run;
    /// removed when it ends.
    InjectLatency {
        /// The Region.
        region: String,
        /// Only this operation (every one when `None`).
        operation: Option<Operation>,
        /// The added delay.
        delay: Duration,
        /// The share of the calls, in percent.
        percent: f64,
    },
}

impl<T> FaultAction<T> {
    /// The same action with its node target (if it has one) mapped by `f`.
    pub fn map_target<U>(&self, f: impl FnOnce(&T) -> U) -> FaultAction<U> {
        match self {
            FaultAction::Kill(t) => FaultAction::Kill(f(t)),
            FaultAction::Pause(t) => FaultAction::Pause(f(t)),
            FaultAction::KillRegion(r) => FaultAction::KillRegion(r.clone()),
            FaultAction::Partition { a, b, both_ways } => FaultAction::Partition {
                a: a.clone(),
                b: b.clone(),
                both_ways: *both_ways,
            },
            FaultAction::Link {
                from,
                to,
                both_ways,
                delay,
                jitter,
                loss,
            } => FaultAction::Link {
                from: from.clone(),
                to: to.clone(),
                both_ways: *both_ways,
                delay: *delay,
                jitter: *jitter,
                loss: *loss,
            },
            FaultAction::ClockJump { region, by } => FaultAction::ClockJump {
                region: region.clone(),
                by: *by,
            },
            FaultAction::ClockSkew {
                region,
                skew_ms,
                drift_ms_per_s,
            } => FaultAction::ClockSkew {
                region: region.clone(),
                skew_ms: *skew_ms,
                drift_ms_per_s: *drift_ms_per_s,
            },
            FaultAction::PauseSync(r) => FaultAction::PauseSync(r.clone()),
            FaultAction::InjectError {
                region,
                operation,
                error,
                percent,
            } => FaultAction::InjectError {
                region: region.clone(),
                operation: *operation,
                error: *error,
                percent: *percent,
            },
            FaultAction::InjectLatency {
                region,
                operation,
                delay,
                percent,
            } => FaultAction::InjectLatency {
                region: region.clone(),
                operation: *operation,
                delay: *delay,
                percent: *percent,
            },
        }
    }

    /// Whether the action is done once it starts (a clock jump): it has nothing to undo, and
    /// its fault window is the moment it was applied.
    pub fn is_instant(&self) -> bool {
        matches!(self, FaultAction::ClockJump { .. })
    }

    /// How far the action moves `region`'s clock ahead at most over `lasting` (0 when it does
    /// not touch that Region's clock): a jump by its amount, a skew by its largest value.
    pub fn clock_advance_ms(&self, region: &str, lasting: Duration) -> i64 {
        match self {
            FaultAction::ClockJump { region: r, by } if r == region => by.as_millis() as i64,
            FaultAction::ClockSkew {
                region: r,
                skew_ms,
                drift_ms_per_s,
            } if r == region => {
                let drift = (*drift_ms_per_s).max(0) as f64 * lasting.as_secs_f64();
                (*skew_ms as f64 + drift).max(0.0) as i64
            }
            _ => 0,
        }
    }
}

/// The error an `inject-error` fault answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum InjectedError {
    /// `ThrottlingException` ("Rate exceeded"), which AWS clients retry with backoff.
    Throttling,
    /// `KMSInternalException`, a server fault, also retried.
    Internal,
}

impl InjectedError {
    /// The AWS error code.
    pub fn code(self) -> &'static str {
        match self {
            InjectedError::Throttling => "ThrottlingException",
            InjectedError::Internal => "KMSInternalException",
        }
    }
}

/// One line of the fault schedule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FaultSpec {
    /// What it does.
    pub action: FaultAction,
    /// When it starts, from the workload's start.
    pub at: Duration,
    /// How long it lasts (`None`: until the heal after the workload).
    pub lasts: Option<Duration>,
    /// Repeats every this long from `at` while the workload runs.
    pub every: Option<Duration>,
}

/// A steady-state probe, evaluated every second over its window while the workload runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Probe {
    /// Its name, in the report.
    pub name: String,
    /// Only calls made in this Region (every Region when `None`).
    pub region: Option<String>,
    /// Only this operation (every operation when `None`).
    pub operation: Option<Operation>,
    /// The window it looks back over.
    pub window: Duration,
    /// Breached when more than this share of the window's calls failed.
    pub max_error_rate: Option<f64>,
    /// Breached when the window's p99 latency is above this.
    pub max_p99: Option<Duration>,
    /// A breach stops the run (and the run fails), like an FIS stop condition.
    pub abort: bool,
}

/// What the checkers are told.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Checks {
    /// Shared properties must agree in every Region within this long after the heal.
    pub convergence: Duration,
    /// Availability each Region must keep.
    pub availability: Vec<AvailabilityRule>,
}

/// When an availability rule applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum During {
    /// While any fault is active.
    Faults,
    /// The whole workload.
    Always,
}

/// A Region must succeed at least this share of its calls of these operations.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AvailabilityRule {
    /// The Region whose clients are counted.
    pub region: String,
    /// The operations counted (all when empty).
    pub operations: Vec<Operation>,
    /// Smallest share of successful calls (0 to 1).
    pub min_success: f64,
    /// When it applies.
    pub during: During,
}

impl Experiment {
    /// Reads an experiment file; with `quick`, its `[quick]` variant (every time of the fault
    /// schedule scaled by the same factor as the duration).
    pub fn parse(text: &str, quick: bool) -> Result<Experiment, SpecError> {
        let f: File = toml::from_str(text).map_err(|e| SpecError::Syntax(e.to_string()))?;
        if f.version != VERSION {
            return Err(invalid(
                "version",
                format!(
                    "this kmsim reads version {VERSION} files, not {}",
                    f.version
                ),
            ));
        }
        if f.name.is_empty()
            || !f
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(
                "name",
                "use letters, digits, '-' and '_' (it names the output directory)",
            ));
        }
        let cluster = cluster(f.cluster)?;
        let links = links(f.links, &cluster)?;
        let mut workload = workload(f.workload, &cluster)?;
        let mut faults = f
            .faults
            .into_iter()
            .enumerate()
            .map(|(i, x)| fault(i, x, &cluster, workload.duration))
            .collect::<Result<Vec<_>, _>>()?;
        let probes = f
            .probes
            .into_iter()
            .enumerate()
            .map(|(i, p)| probe(i, p, &cluster))
            .collect::<Result<Vec<_>, _>>()?;
        let checks = checks(f.checks, &cluster)?;
        if quick {
            let q = f.quick.ok_or_else(|| {
                invalid(
                    "quick",
                    "--quick needs a [quick] table with a shorter duration",
                )
            })?;
            if q.duration.0.is_zero() || q.duration.0 > workload.duration {
                return Err(invalid(
                    "quick.duration",
                    "must be above 0 and at most workload.duration",
                ));
            }
            let factor = q.duration.0.as_secs_f64() / workload.duration.as_secs_f64();
            let scale = |d: Duration| Duration::from_secs_f64(d.as_secs_f64() * factor);
            for x in &mut faults {
                x.at = scale(x.at);
                x.lasts = x.lasts.map(scale);
                x.every = x.every.map(scale);
            }
            workload.duration = q.duration.0;
            match (q.rate, q.concurrency, &mut workload.arrival) {
                (Some(r), None, Arrival::Rate(x)) => *x = r.0,
                (None, Some(c), Arrival::Concurrency(x)) => *x = c,
                (None, None, _) => {}
                _ => {
                    return Err(invalid(
                        "quick",
                        "may set the same one of rate and concurrency as [workload]",
                    ))
                }
            }
        }
        Ok(Experiment {
            name: f.name,
            description: f.description,
            cluster,
            links,
            workload,
            faults,
            probes,
            checks,
            quick,
        })
    }
}

/// Whether `s` looks like an AWS Region name (`us-east-1`, `ap-southeast-2`).
fn is_region_name(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1]
            .parse::<u32>()
            .is_ok_and(|n| (1..=99).contains(&n))
}

fn cluster(c: ClusterFile) -> Result<ClusterSpec, SpecError> {
    if !(1..=8).contains(&c.regions.len()) {
        return Err(invalid("cluster.regions", "name 1 to 8 Regions"));
    }
    for (i, r) in c.regions.iter().enumerate() {
        if !is_region_name(r) {
            return Err(invalid(
                format!("cluster.regions[{i}]"),
                format!("'{r}' is not a Region name such as us-east-1"),
            ));
        }
        if c.regions[..i].contains(r) {
            return Err(invalid(
                format!("cluster.regions[{i}]"),
                format!("'{r}' is named twice"),
            ));
        }
    }
    if !(1..=7).contains(&c.nodes) {
        return Err(invalid("cluster.nodes", "1 to 7 nodes per Region"));
    }
    let raft = match c.raft {
        None => None,
        Some(r) => {
            if r.heartbeat.0.is_zero() || r.election_timeout_min.0 <= r.heartbeat.0 {
                return Err(invalid(
                    "cluster.raft",
                    "the election timeout must be longer than the heartbeat, which is above 0",
                ));
            }
            if r.election_timeout_max.0 <= r.election_timeout_min.0 {
                return Err(invalid(
                    "cluster.raft.election_timeout_max",
                    "must be above election_timeout_min",
                ));
            }
            Some(RaftTimings {
                heartbeat: r.heartbeat.0,
                election_timeout_min: r.election_timeout_min.0,
                election_timeout_max: r.election_timeout_max.0,
            })
        }
    };
    Ok(ClusterSpec {
        regions: c.regions,
        nodes: c.nodes,
        raft,
    })
}

fn region_of(field: &str, r: &str, c: &ClusterSpec) -> Result<String, SpecError> {
    if c.regions.iter().any(|x| x == r) {
        Ok(r.to_string())
    } else {
        Err(invalid(
            field,
            format!(
                "'{r}' is not a Region of the cluster ({})",
                c.regions.join(", ")
            ),
        ))
    }
}

fn side(field: &str, s: &str, c: &ClusterSpec) -> Result<Side, SpecError> {
    match s.split_once('/') {
        None => Ok(Side::Region(region_of(field, s, c)?)),
        Some((r, id)) => {
            let region = region_of(field, r, c)?;
            let id = node_id(field, id, c)?;
            Ok(Side::Node { region, id })
        }
    }
}

fn node_id(field: &str, id: &str, c: &ClusterSpec) -> Result<u32, SpecError> {
    match id.parse::<u32>() {
        Ok(n) if (1..=c.nodes).contains(&n) => Ok(n),
        _ => Err(invalid(
            field,
            format!("node '{id}': the nodes of a Region are 1 to {}", c.nodes),
        )),
    }
}

fn loss_of(field: &str, loss: f64) -> Result<f64, SpecError> {
    if (0.0..=1.0).contains(&loss) {
        Ok(loss)
    } else {
        Err(invalid(field, "a loss is a probability, 0 to 1"))
    }
}

fn links(l: LinksFile, c: &ClusterSpec) -> Result<Vec<LinkSpec>, SpecError> {
    let mut out: BTreeMap<(String, String), LinkSpec> = BTreeMap::new();
    if let Some(p) = &l.preset {
        for link in crate::links::preset(p, &c.regions).map_err(|m| invalid("links.preset", m))? {
            out.insert((link.from.clone(), link.to.clone()), link);
        }
    }
    for (i, x) in l.links.into_iter().enumerate() {
        let f = format!("links.link[{i}]");
        let from = region_of(&format!("{f}.from"), &x.from, c)?;
        let to = region_of(&format!("{f}.to"), &x.to, c)?;
        if from == to {
            return Err(invalid(f, "a link joins two different Regions"));
        }
        let loss = loss_of(&format!("{f}.loss"), x.loss)?;
        let mut pairs = vec![(from.clone(), to.clone())];
        if x.both_ways {
            pairs.push((to, from));
        }
        for (a, b) in pairs {
            out.insert(
                (a.clone(), b.clone()),
                LinkSpec {
                    from: a,
                    to: b,
                    delay: x.delay.0,
                    jitter: x.jitter.0,
                    loss,
                },
            );
        }
    }
    Ok(out.into_values().collect())
}

fn workload(w: WorkloadFile, c: &ClusterSpec) -> Result<Workload, SpecError> {
    if w.duration.0.is_zero() || w.duration.0 > MAX_DURATION {
        return Err(invalid("workload.duration", "above 0 and at most 1h"));
    }
    if w.settle.0 > Duration::from_secs(600) {
        return Err(invalid("workload.settle", "at most 10m"));
    }
    let arrival =
        match (w.rate, w.concurrency) {
            (Some(r), None) if r.0 <= 100_000 => Arrival::Rate(r.0),
            (None, Some(n)) if (1..=1024).contains(&n) => Arrival::Concurrency(n),
            (Some(_), None) => return Err(invalid("workload.rate", "at most 100000/s")),
            (None, Some(_)) => return Err(invalid("workload.concurrency", "1 to 1024")),
            _ => return Err(invalid(
                "workload",
                "set exactly one of rate (open loop, e.g. \"200/s\") and concurrency (closed loop)",
            )),
        };
    let clients = match w.clients {
        None => c.regions.clone(),
        Some(list) if list.is_empty() => {
            return Err(invalid("workload.clients", "name at least one Region"))
        }
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, r)| region_of(&format!("workload.clients[{i}]"), r, c))
            .collect::<Result<_, _>>()?,
    };
    if !(1..=1000).contains(&w.keys) {
        return Err(invalid("workload.keys", "1 to 1000 keys per client Region"));
    }
    for (field, v) in [
        ("workload.multi_region", w.multi_region),
        ("workload.cross_region", w.cross_region),
    ] {
        if !(0.0..=1.0).contains(&v) {
            return Err(invalid(field, "a share, 0 to 1"));
        }
    }
    if !(1..=4096).contains(&w.plaintext_bytes) {
        return Err(invalid(
            "workload.plaintext_bytes",
            "1 to 4096 (Encrypt's limit)",
        ));
    }
    let mut mix = Vec::new();
    for (k, weight) in &w.mix {
        let op = Operation::ALL
            .into_iter()
            .find(|o| o.mix_key() == k)
            .ok_or_else(|| {
                invalid(
                    format!("workload.mix.{k}"),
                    format!(
                        "not an operation; use {}",
                        Operation::ALL.map(|o| o.mix_key()).join(", ")
                    ),
                )
            })?;
        if *weight > 0 {
            mix.push((op, *weight));
        }
    }
    if mix.is_empty() {
        return Err(invalid(
            "workload.mix",
            "give at least one operation a weight above 0",
        ));
    }
    for (field, spec, table) in [
        (
            "workload.sign_key_spec",
            &w.sign_key_spec,
            &SIGNING_KEY_SPECS[..],
        ),
        ("workload.mac_key_spec", &w.mac_key_spec, &MAC_KEY_SPECS[..]),
    ] {
        if !table.iter().any(|(s, _)| s == spec) {
            return Err(invalid(
                field,
                format!(
                    "'{spec}': use {}",
                    table.iter().map(|(s, _)| *s).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
    }
    // A hand-over needs a multi-Region key with a replica: the setup replicates its
    // multi-Region keys into the other client Regions.
    let mrks = multi_region_keys(w.keys, w.multi_region);
    if mix
        .iter()
        .any(|(o, _)| *o == Operation::UpdatePrimaryRegion)
        && (clients.len() < 2 || mrks == 0)
    {
        return Err(invalid(
            "workload.mix.update_primary_region",
            "needs multi-Region keys with a replica: at least two client Regions and a multi_region share that makes at least one key",
        ));
    }
    Ok(Workload {
        duration: w.duration.0,
        settle: w.settle.0,
        arrival,
        clients,
        keys: w.keys,
        multi_region: w.multi_region,
        cross_region: w.cross_region,
        plaintext_bytes: w.plaintext_bytes,
        sign_key_spec: w.sign_key_spec,
        mac_key_spec: w.mac_key_spec,
        mix,
        retries: if w.retries <= 10 {
            w.retries
        } else {
            return Err(invalid("workload.retries", "at most 10"));
        },
    })
}

fn node_target(f: &str, x: &FaultFile, c: &ClusterSpec) -> Result<NodeTarget, SpecError> {
    match (&x.node, &x.region, x.pick.as_deref()) {
        (Some(n), None, None) => match side(&format!("{f}.node"), n, c)? {
            Side::Node { region, id } => Ok(NodeTarget::Node { region, id }),
            Side::Region(_) => Err(invalid(
                format!("{f}.node"),
                "name a node as REGION/ID; for a Region use region = and pick =",
            )),
        },
        (None, region, pick) => {
            let region = match region {
                Some(r) => Some(region_of(&format!("{f}.region"), r, c)?),
                None => None,
            };
            match (pick.unwrap_or("any"), region) {
                ("leader", Some(r)) => Ok(NodeTarget::Leader(r)),
                ("follower", Some(r)) => Ok(NodeTarget::Follower(r)),
                ("leader" | "follower", None) => Err(invalid(
                    format!("{f}.region"),
                    "pick = leader or follower needs the Region",
                )),
                ("any", r) => Ok(NodeTarget::Any(r)),
                (other, _) => Err(invalid(
                    format!("{f}.pick"),
                    format!("'{other}': use leader, follower or any"),
                )),
            }
        }
        (Some(_), _, _) => Err(invalid(
            f,
            "give either node = REGION/ID, or region = (and pick =), not both",
        )),
    }
}

/// Refuses the keys of a fault line that its action does not read.
fn only(f: &str, x: &FaultFile, allowed: &[&str]) -> Result<(), SpecError> {
    let present = [
        ("node", x.node.is_some()),
        ("region", x.region.is_some()),
        ("pick", x.pick.is_some()),
        ("from", x.from.is_some()),
        ("to", x.to.is_some()),
        ("both_ways", x.both_ways.is_some()),
        ("delay", x.delay.is_some()),
        ("jitter", x.jitter.is_some()),
        ("loss", x.loss.is_some()),
        ("by", x.by.is_some()),
        ("drift", x.drift.is_some()),
        ("operation", x.operation.is_some()),
        ("error", x.error.is_some()),
        ("percent", x.percent.is_some()),
    ];
    for (key, set) in present {
        if set && !allowed.contains(&key) {
            return Err(invalid(
                format!("{f}.{key}"),
                format!(
                    "action '{}' does not take {key} (it takes {})",
                    x.action,
                    allowed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// The `region` a Region-wide fault needs.
fn required_region(f: &str, x: &FaultFile, c: &ClusterSpec) -> Result<String, SpecError> {
    let r = x
        .region
        .as_deref()
        .ok_or_else(|| invalid(format!("{f}.region"), "missing"))?;
    region_of(&format!("{f}.region"), r, c)
}

/// The `operation` an injected fault is limited to: one of the workload's, by its AWS name.
fn injected_operation(f: &str, x: &FaultFile) -> Result<Option<Operation>, SpecError> {
    match x.operation.as_deref() {
        None => Ok(None),
        Some(name) => Operation::ALL
            .into_iter()
            .find(|o| o.name() == name)
            .map(Some)
            .ok_or_else(|| {
                invalid(
                    format!("{f}.operation"),
                    format!(
                        "'{name}' is not a workload operation; use one of {}",
                        Operation::ALL.map(|o| o.name()).join(", ")
                    ),
                )
            }),
    }
}

/// The `percent` of an injected fault: above 0, at most 100.
fn percent_of(f: &str, p: Option<f64>) -> Result<f64, SpecError> {
    match p {
        Some(p) if p > 0.0 && p <= 100.0 => Ok(p),
        Some(_) => Err(invalid(format!("{f}.percent"), "above 0, at most 100")),
        None => Err(invalid(
            format!("{f}.percent"),
            "missing (e.g. percent = 20)",
        )),
    }
}

fn fault(
    i: usize,
    x: FaultFile,
    c: &ClusterSpec,
    duration: Duration,
) -> Result<FaultSpec, SpecError> {
    let f = format!("fault[{i}]");
    let ends = |key: &str| -> Result<String, SpecError> {
        match key {
            "from" => x.from.clone(),
            _ => x.to.clone(),
        }
        .ok_or_else(|| invalid(format!("{f}.{key}"), "missing"))
    };
    let action = match x.action.as_str() {
        "kill" | "pause" => {
            only(&f, &x, &["node", "region", "pick"])?;
            let t = node_target(&f, &x, c)?;
            if x.action == "kill" {
                FaultAction::Kill(t)
            } else {
                FaultAction::Pause(t)
            }
        }
        "kill-region" => {
            only(&f, &x, &["region"])?;
            let r = x
                .region
                .as_deref()
                .ok_or_else(|| invalid(format!("{f}.region"), "missing"))?;
            FaultAction::KillRegion(region_of(&format!("{f}.region"), r, c)?)
        }
        "partition" => {
            only(&f, &x, &["from", "to", "both_ways"])?;
            FaultAction::Partition {
                a: side(&format!("{f}.from"), &ends("from")?, c)?,
                b: side(&format!("{f}.to"), &ends("to")?, c)?,
                both_ways: x.both_ways.unwrap_or(true),
            }
        }
        "link" => {
            only(
                &f,
                &x,
                &["from", "to", "both_ways", "delay", "jitter", "loss"],
            )?;
            FaultAction::Link {
                from: side(&format!("{f}.from"), &ends("from")?, c)?,
                to: side(&format!("{f}.to"), &ends("to")?, c)?,
                both_ways: x.both_ways.unwrap_or(true),
                delay: x.delay.unwrap_or_default().0,
                jitter: x.jitter.unwrap_or_default().0,
                loss: loss_of(&format!("{f}.loss"), x.loss.unwrap_or(0.0))?,
            }
        }
        "clock-jump" => {
            only(&f, &x, &["region", "by"])?;
            if x.lasts.is_some() || x.every.is_some() {
                return Err(invalid(
                    format!("{f}.for"),
                    "a clock jump is never undone (a Region's clock never goes back), so it \
                     takes no `for` or `every`; for a while, use clock-skew",
                ));
            }
            let by =
                x.by.as_deref()
                    .ok_or_else(|| invalid(format!("{f}.by"), "missing (e.g. by = \"8d\")"))?;
            let by = crate::units::parse_duration(by).map_err(|m| invalid(format!("{f}.by"), m))?;
            if by < Duration::from_millis(1) || by > Duration::from_secs(10 * 366 * 86_400) {
                return Err(invalid(format!("{f}.by"), "from 1ms to ten years"));
            }
            FaultAction::ClockJump {
                region: required_region(&f, &x, c)?,
                by,
            }
        }
        "clock-skew" => {
            only(&f, &x, &["region", "by", "drift"])?;
            let skew_ms = match &x.by {
                Some(b) => {
                    crate::units::parse_signed_ms(b).map_err(|m| invalid(format!("{f}.by"), m))?
                }
                None => 0,
            };
            let drift_ms_per_s = match &x.drift {
                Some(d) => {
                    let v = crate::units::parse_drift(d)
                        .map_err(|m| invalid(format!("{f}.drift"), m))?;
                    if v.abs() > 86_400_000 {
                        return Err(invalid(format!("{f}.drift"), "at most a day per second"));
                    }
                    v
                }
                None => 0,
            };
            if skew_ms == 0 && drift_ms_per_s == 0 {
                return Err(invalid(
                    format!("{f}.by"),
                    "give a skew (by = \"2h\", \"-30m\") and/or a drift (drift = \"1h/s\")",
                ));
            }
            FaultAction::ClockSkew {
                region: required_region(&f, &x, c)?,
                skew_ms,
                drift_ms_per_s,
            }
        }
        "pause-sync" => {
            only(&f, &x, &["region"])?;
            FaultAction::PauseSync(required_region(&f, &x, c)?)
        }
        "inject-error" => {
            only(&f, &x, &["region", "operation", "error", "percent"])?;
            let error = match x.error.as_deref() {
                Some("ThrottlingException") => InjectedError::Throttling,
                Some("KMSInternalException") => InjectedError::Internal,
                Some(other) => {
                    return Err(invalid(
                        format!("{f}.error"),
                        format!("'{other}': use ThrottlingException or KMSInternalException"),
                    ))
                }
                None => return Err(invalid(format!("{f}.error"), "missing")),
            };
            FaultAction::InjectError {
                region: required_region(&f, &x, c)?,
                operation: injected_operation(&f, &x)?,
                error,
                percent: percent_of(&f, x.percent)?,
            }
        }
        "inject-latency" => {
            only(&f, &x, &["region", "operation", "delay", "percent"])?;
            let delay = x
                .delay
                .ok_or_else(|| invalid(format!("{f}.delay"), "missing (e.g. delay = \"200ms\")"))?
                .0;
            if delay < Duration::from_millis(1) || delay > Duration::from_secs(60) {
                return Err(invalid(format!("{f}.delay"), "from 1ms to 60s"));
            }
            FaultAction::InjectLatency {
                region: required_region(&f, &x, c)?,
                operation: injected_operation(&f, &x)?,
                delay,
                percent: percent_of(&f, x.percent.or(Some(100.0)))?,
            }
        }
        other => {
            return Err(invalid(
                format!("{f}.action"),
                format!(
                    "'{other}': use kill, pause, kill-region, partition, link, clock-jump, \
                     clock-skew, pause-sync, inject-error or inject-latency"
                ),
            ))
        }
    };
    if let FaultAction::Partition { a, b, .. } | FaultAction::Link { from: a, to: b, .. } = &action
    {
        if a == b {
            return Err(invalid(f, "from and to are the same side"));
        }
    }
    if x.at.0 >= duration {
        return Err(invalid(
            format!("{f}.at"),
            format!(
                "starts after the workload ends ({})",
                crate::units::format_duration(duration)
            ),
        ));
    }
    if x.lasts.is_some_and(|d| d.0.is_zero()) {
        return Err(invalid(format!("{f}.for"), "must be above 0"));
    }
    if let Some(every) = x.every {
        match x.lasts {
            Some(l) if l.0 < every.0 => {}
            _ => {
                return Err(invalid(
                    format!("{f}.every"),
                    "a repeated fault needs a `for` shorter than its `every`",
                ))
            }
        }
    }
    Ok(FaultSpec {
        action,
        at: x.at.0,
        lasts: x.lasts.map(|d| d.0),
        every: x.every.map(|d| d.0),
    })
}

fn probe(i: usize, p: ProbeFile, c: &ClusterSpec) -> Result<Probe, SpecError> {
    let f = format!("probe[{i}]");
    let region = match &p.region {
        Some(r) => Some(region_of(&format!("{f}.region"), r, c)?),
        None => None,
    };
    if p.max_error_rate.is_none() && p.max_p99.is_none() {
        return Err(invalid(f, "give max_error_rate, max_p99 or both"));
    }
    if let Some(e) = p.max_error_rate {
        if !(0.0..=1.0).contains(&e) {
            return Err(invalid(format!("{f}.max_error_rate"), "a share, 0 to 1"));
        }
    }
    if p.window.0 < Duration::from_secs(1) {
        return Err(invalid(format!("{f}.window"), "at least 1s"));
    }
    Ok(Probe {
        name: p.name,
        region,
        operation: p.operation,
        window: p.window.0,
        max_error_rate: p.max_error_rate,
        max_p99: p.max_p99.map(|d| d.0),
        abort: p.abort,
    })
}

fn checks(k: ChecksFile, c: &ClusterSpec) -> Result<Checks, SpecError> {
    let mut availability = Vec::new();
    for (i, a) in k.availability.into_iter().enumerate() {
        let f = format!("checks.availability[{i}]");
        if !(0.0..=1.0).contains(&a.min_success) {
            return Err(invalid(format!("{f}.min_success"), "a share, 0 to 1"));
        }
        let during = match a.during.as_str() {
            "faults" => During::Faults,
            "always" => During::Always,
            other => {
                return Err(invalid(
                    format!("{f}.during"),
                    format!("'{other}': use faults or always"),
                ))
            }
        };
        availability.push(AvailabilityRule {
            region: region_of(&format!("{f}.region"), &a.region, c)?,
            operations: a.operations,
            min_success: a.min_success,
            during,
        });
    }
    Ok(Checks {
        convergence: k.convergence.0,
        availability,
    })
}

#[cfg(test)]
mod tests;
