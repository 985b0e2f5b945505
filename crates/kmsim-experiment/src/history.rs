//! The history of a run (`history.jsonl`): one [`Record`] per line, written as things happen.
//!
//! Every client call is an [`Op`]: when it was due (open loop) or started, when it ended, where
//! it went, what it asked and what came back. A call that timed out or lost its connection is
//! `Unknown`: it may or may not have taken effect, and the checkers treat it so (Jepsen's
//! `:info`). The runner also records the fault schedule as it is applied ([`FaultEvent`]), the
//! phases, and, after the heal, its observations of every Region ([`Observation`]): what each
//! Region says about each key, and whether each acknowledged ciphertext decrypts there. The
//! checkers read nothing else.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};

use crate::spec::Operation;

/// Microseconds since the run's clock started (the setup phase's start).
pub type Micros = u64;

/// A phase of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Keys are created and replicated, before any fault.
    Setup,
    /// The workload runs and the fault schedule is applied.
    Workload,
    /// Every fault is undone and the cluster settles.
    Heal,
    /// The runner observes every Region for the checkers.
    Observe,
}

/// One line of `history.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// A phase started.
    Phase {
        /// Which.
        phase: Phase,
        /// When.
        at: Micros,
    },
    /// A client call.
    Op(Op),
    /// A fault started or ended.
    Fault(FaultEvent),
    /// What a Region said after the heal.
    Observation(Observation),
    /// A steady-state probe breached its threshold.
    Breach {
        /// The probe's name.
        probe: String,
        /// When.
        at: Micros,
        /// What was seen (`error rate 0.31 > 0.05`).
        seen: String,
        /// Whether the run was stopped for it.
        aborted: bool,
    },
}

/// A hash of a plaintext: the first 16 bytes of its SHA-256, in hex (plaintexts are not kept).
pub type Digest = String;

/// One client call.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Op {
    /// Its number in the run (unique, in the order calls were made).
    pub id: u64,
    /// The client that made it (a client makes one call at a time).
    pub client: u32,
    /// The phase it was made in.
    pub phase: Phase,
    /// The Region whose endpoint was called.
    pub region: String,
    /// The node called (`us-east-1/2`), when the call went to one node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Open loop: when the call was due (latency is counted from here). Closed loop: `start`.
    pub due: Micros,
    /// When the request was sent.
    pub start: Micros,
    /// When the answer (or the failure) came.
    pub end: Micros,
    /// What was asked.
    pub call: Call,
    /// What came back.
    pub outcome: Outcome,
}

impl Op {
    /// The operation's name.
    pub fn operation(&self) -> Operation {
        self.call.operation()
    }

    /// Latency from when the call was due to its end, in microseconds.
    pub fn latency(&self) -> Micros {
        self.end.saturating_sub(self.due)
    }

    /// Whether the call was acknowledged.
    pub fn ok(&self) -> bool {
        matches!(self.outcome, Outcome::Ok { .. })
    }
}

/// What a call asked. Keys are named by their ARN (a multi-Region key's ARN names the Region
/// it was called in).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op")]
pub enum Call {
    /// Encrypt a plaintext.
    Encrypt {
        /// The key.
        key: String,
        /// The plaintext's digest.
        plaintext: Digest,
    },
    /// Decrypt the ciphertext op `of` returned.
    Decrypt {
        /// The key named in the request (optional in AWS).
        key: String,
        /// The Encrypt (or GenerateDataKey) whose ciphertext this is.
        of: u64,
    },
    /// GenerateDataKey (AES_256).
    GenerateDataKey {
        /// The key.
        key: String,
    },
    /// Sign a message (`MessageType` RAW).
    Sign {
        /// The key.
        key: String,
        /// The message's digest.
        #[serde(default)]
        message: Digest,
    },
    /// GenerateMac.
    GenerateMac {
        /// The key.
        key: String,
        /// The message's digest.
        #[serde(default)]
        message: Digest,
    },
    /// ReEncrypt the ciphertext op `of` returned to another key.
    ReEncrypt {
        /// The destination key.
        key: String,
        /// The Encrypt (or GenerateDataKey, or ReEncrypt) whose ciphertext this is.
        of: u64,
    },
    /// CreateKey.
    CreateKey {
        /// Multi-Region or not.
        multi_region: bool,
        /// The key spec (`SYMMETRIC_DEFAULT`, `ECC_NIST_P256`, `HMAC_256`).
        spec: String,
    },
    /// ReplicateKey into `replica_region`.
    ReplicateKey {
        /// The primary key.
        key: String,
        /// Where.
        replica_region: String,
    },
    /// RotateKeyOnDemand.
    RotateKeyOnDemand {
        /// The key.
        key: String,
    },
    /// CreateAlias.
    CreateAlias {
        /// The alias (`alias/…`).
        alias: String,
        /// The key.
        key: String,
    },
    /// UpdatePrimaryRegion.
    UpdatePrimaryRegion {
        /// The primary key (called in its Region).
        key: String,
        /// The Region of the replica to promote.
        primary_region: String,
    },
    /// ScheduleKeyDeletion.
    ScheduleKeyDeletion {
        /// The key.
        key: String,
        /// The waiting period in days.
        days: u32,
    },
    /// DescribeKey.
    DescribeKey {
        /// The key.
        key: String,
    },
}

impl Call {
    /// The operation.
    pub fn operation(&self) -> Operation {
        match self {
            Call::Encrypt { .. } => Operation::Encrypt,
            Call::Decrypt { .. } => Operation::Decrypt,
            Call::GenerateDataKey { .. } => Operation::GenerateDataKey,
            Call::Sign { .. } => Operation::Sign,
            Call::GenerateMac { .. } => Operation::GenerateMac,
            Call::ReEncrypt { .. } => Operation::ReEncrypt,
            Call::CreateKey { .. } => Operation::CreateKey,
            Call::ReplicateKey { .. } => Operation::ReplicateKey,
            Call::RotateKeyOnDemand { .. } => Operation::RotateKeyOnDemand,
            Call::CreateAlias { .. } => Operation::CreateAlias,
            Call::UpdatePrimaryRegion { .. } => Operation::UpdatePrimaryRegion,
            Call::ScheduleKeyDeletion { .. } => Operation::ScheduleKeyDeletion,
            Call::DescribeKey { .. } => Operation::DescribeKey,
        }
    }
}

/// What came back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// Acknowledged.
    Ok {
        /// What the answer says that the checkers need.
        #[serde(default, skip_serializing_if = "Reply::is_empty")]
        reply: Reply,
    },
    /// Refused with an AWS error: it did not take effect.
    Failed {
        /// The AWS error code (`KMSInternalException`).
        code: String,
        /// Its message.
        message: String,
    },
    /// No answer (timeout, connection lost): it may or may not have taken effect.
    Unknown {
        /// Why.
        reason: String,
    },
}

/// The parts of an answer the checkers read.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The key's ARN (CreateKey, Encrypt, ReplicateKey's replica).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The ciphertext, base64 (Encrypt, GenerateDataKey, ReEncrypt).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext: Option<String>,
    /// The plaintext's digest (Decrypt; GenerateDataKey's data key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plaintext: Option<Digest>,
    /// The key's state (DescribeKey).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The signature (Sign) or MAC (GenerateMac), base64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
}

impl Reply {
    /// Nothing in it.
    pub fn is_empty(&self) -> bool {
        *self == Reply::default()
    }
}

/// A fault started or ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FaultEvent {
    /// The occurrence (index into the schedule's occurrences).
    pub occurrence: usize,
    /// `start` or `end`.
    pub edge: Edge,
    /// When the runner began applying it.
    pub at: Micros,
    /// What it did, resolved (`SIGKILL us-east-1/2 (leader)`).
    pub what: String,
    /// Whether it took effect; when not, why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The edge of a fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Edge {
    /// It started.
    Start,
    /// It ended.
    End,
}

/// What the runner saw in a Region after the heal. Every acknowledged result that another
/// Region holding a related key must be able to use is tried there: a ciphertext is
/// decrypted (`Decrypt`), a signature or a MAC verified (`Verify`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Observation {
    /// A key as one Region describes it (DescribeKey and its aliases), first seen `at`
    /// matching the state every Region converged to, or last seen when it never did.
    Key {
        /// The Region asked.
        region: String,
        /// The key's ID (`mrk-…` for a multi-Region key, the same in every Region).
        key_id: String,
        /// When this answer was read.
        at: Micros,
        /// `None` when the Region says it does not exist (NotFoundException).
        view: Option<KeyView>,
    },
    /// Whether a ciphertext op `of` produced decrypts in `region` to its plaintext.
    Decrypt {
        /// The Region asked.
        region: String,
        /// The Encrypt whose ciphertext was decrypted.
        of: u64,
        /// The plaintext's digest, when it decrypted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        plaintext: Option<Digest>,
        /// The AWS error code, when it did not.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// Whether the signature (or MAC) op `of` produced verifies in `region` (Verify,
    /// VerifyMac) for the message it was made for.
    Verify {
        /// The Region asked.
        region: String,
        /// The Sign or GenerateMac whose result was verified.
        of: u64,
        /// The AWS error code (`KMSInvalidSignatureException`, `KMSInvalidMacException`, …)
        /// or `no answer: …`, when it did not verify; `None` when it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
}

/// A key's shared and per-Region properties, as DescribeKey and ListAliases show them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyView {
    /// `Enabled`, `Disabled`, `PendingDeletion`, `Creating`, `Updating`, …
    pub state: String,
    /// `PRIMARY` or `REPLICA` for a multi-Region key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_region_type: Option<String>,
    /// The primary's Region, as this Region sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_region: Option<String>,
    /// The replicas' Regions, sorted.
    #[serde(default)]
    pub replica_regions: Vec<String>,
    /// The key's aliases in this Region, sorted.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Rotations recorded (ListKeyRotations), when read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotations: Option<u32>,
}

/// Appends records to a `history.jsonl`.
pub struct HistoryWriter<W: Write> {
    out: W,
}

impl<W: Write> HistoryWriter<W> {
    /// A writer onto `out` (wrap a file in a `BufWriter`).
    pub fn new(out: W) -> HistoryWriter<W> {
        HistoryWriter { out }
    }

    /// Writes one record as one line.
    pub fn write(&mut self, r: &Record) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, r)?;
        self.out.write_all(b"\n")
    }

    /// Flushes and returns the output.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads a whole `history.jsonl`; an error names the line.
pub fn read(input: impl BufRead) -> Result<Vec<Record>, String> {
    let mut out = Vec::new();
    for (i, line) in input.lines().enumerate() {
        let line = line.map_err(|e| format!("line {}: {e}", i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|e| format!("line {}: {e}", i + 1))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_jsonl() {
        let records = vec![
            Record::Phase {
                phase: Phase::Workload,
                at: 5,
            },
            Record::Op(Op {
                id: 1,
                client: 0,
                phase: Phase::Workload,
                region: "us-east-1".into(),
                node: Some("us-east-1/2".into()),
                due: 10,
                start: 12,
                end: 900,
                call: Call::Encrypt {
                    key: "arn:aws:kms:us-east-1:111122223333:key/mrk-1".into(),
                    plaintext: "00ff".into(),
                },
                outcome: Outcome::Ok {
                    reply: Reply {
                        ciphertext: Some("AQID".into()),
                        ..Reply::default()
                    },
                },
            }),
            Record::Op(Op {
                id: 2,
                client: 1,
                phase: Phase::Workload,
                region: "eu-west-1".into(),
                node: None,
                due: 20,
                start: 20,
                end: 10_020,
                call: Call::CreateKey {
                    multi_region: true,
                    spec: "SYMMETRIC_DEFAULT".into(),
                },
                outcome: Outcome::Unknown {
                    reason: "timed out".into(),
                },
            }),
            Record::Observation(Observation::Key {
                region: "eu-west-1".into(),
                key_id: "mrk-1".into(),
                at: 99,
                view: Some(KeyView {
                    state: "Enabled".into(),
                    multi_region_type: Some("REPLICA".into()),
                    primary_region: Some("us-east-1".into()),
                    ..KeyView::default()
                }),
            }),
        ];
        let mut w = HistoryWriter::new(Vec::new());
        for r in &records {
            w.write(r).expect("to memory");
        }
        let bytes = w.finish().expect("to memory");
        assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), records.len());
        assert_eq!(read(&bytes[..]).expect("valid"), records);
        let err = read(&b"{\"type\":\"phase\"}\n"[..]).expect_err("incomplete");
        assert!(err.starts_with("line 1:"), "{err}");
    }
}
