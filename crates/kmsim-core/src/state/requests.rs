//! The Region's memory of recent forwarded writes: request ID → the result the write had, so
//! that a forward retried after an unknown outcome (a timeout) is applied once and answers the
//! first result. Replicated like every other record (hence in snapshots), bounded to the
//! [`MAX_REMEMBERED_REQUESTS`] most recent IDs; a retry comes within seconds, far fewer writes
//! than that.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::forwarded::RequestId;
use super::records::Records;
use super::{seq_record_key, Command, CommandResult, KmsState, RecordChange};
use crate::error::KmsError;

/// How many forwarded writes the Region remembers.
pub const MAX_REMEMBERED_REQUESTS: usize = 4096;

pub(super) const REQUEST_PREFIX: &[u8] = b"request/";

/// One remembered write, stored under `request/<seq>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct Remembered {
    /// Its position (oldest first), so eviction is deterministic on every node.
    pub seq: u64,
    /// The forwarding node's ID for it.
    pub request_id: RequestId,
    /// What applying it returned.
    pub result: CommandResult,
}

/// The bounded table.
#[derive(Debug, Clone, Default)]
pub(super) struct Requests {
    by_seq: BTreeMap<u64, Remembered>,
    by_id: HashMap<RequestId, u64>,
}

impl Requests {
    /// Adds a loaded record.
    pub fn load(&mut self, rec: Remembered) {
        self.by_id.insert(rec.request_id, rec.seq);
        self.by_seq.insert(rec.seq, rec);
    }

    /// The result of an already applied request.
    pub fn get(&self, id: &RequestId) -> Option<&CommandResult> {
        self.by_id
            .get(id)
            .and_then(|seq| self.by_seq.get(seq))
            .map(|r| &r.result)
    }

    /// How many are remembered.
    pub fn len(&self) -> usize {
        self.by_seq.len()
    }

    /// Remembers `id` → `result`, forgetting the oldest beyond the bound.
    pub fn remember(
        &mut self,
        id: RequestId,
        result: CommandResult,
        records: &mut Records,
        changes: &mut Vec<RecordChange>,
    ) {
        let seq = self.by_seq.keys().next_back().map_or(0, |s| s + 1);
        let rec = Remembered {
            seq,
            request_id: id,
            result,
        };
        records.put_encoded(seq_record_key(REQUEST_PREFIX, seq), &rec, changes);
        self.load(rec);
        while self.by_seq.len() > MAX_REMEMBERED_REQUESTS {
            let Some((old, rec)) = self.by_seq.pop_first() else {
                break;
            };
            self.by_id.remove(&rec.request_id);
            records.delete(seq_record_key(REQUEST_PREFIX, old), changes);
        }
    }

    /// Forgets everything (before opening).
    pub fn clear(&mut self) {
        self.by_seq.clear();
        self.by_id.clear();
    }
}

impl KmsState {
    /// Applies a forwarded write once: a request ID seen before answers its first result and
    /// changes nothing.
    pub(super) fn deduplicated(
        &mut self,
        request_id: &RequestId,
        cmd: &Command,
        changes: &mut Vec<RecordChange>,
    ) -> CommandResult {
        if let Some(first) = self.requests.get(request_id) {
            return first.clone();
        }
        let result = if matches!(cmd, Command::Deduplicated { .. }) {
            Err(KmsError::Internal(
                "a deduplicated command cannot wrap another".into(),
            ))
        } else {
            self.apply_inner(cmd, changes)
        };
        self.requests
            .remember(*request_id, result.clone(), &mut self.records, changes);
        result
    }

    /// How many forwarded writes the Region remembers now.
    pub fn remembered_requests(&self) -> usize {
        self.requests.len()
    }
}
