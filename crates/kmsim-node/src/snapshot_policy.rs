//! When a node compacts its Raft log into a snapshot: by how far the log has grown relative to
//! the state, not after a fixed number of entries.
//!
//! A snapshot copies the whole state, so a fixed interval makes the cost of each write grow
//! with the number of keys (at 35,000 keys, a 27 MB snapshot every 1,000 entries). Here the
//! next snapshot is due once the entries since the last one reach `snapshot_log_percent` of
//! the records in it, and never fewer than `snapshot_after_logs`: the work per applied entry
//! stays bounded whatever the size of the Region. openraft's own policy is off
//! (`SnapshotPolicy::Never`); this task asks for a build with `Raft::trigger().snapshot()`, as
//! the admin `TriggerSnapshot` call does.

use kmsim_store::Raft;
use kmsim_store::SnapshotSize;
use tokio::sync::watch;

use crate::config::RaftTiming;

/// The rule: how many log entries after the last snapshot the next one is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotRule {
    /// The fewest entries between two snapshots.
    pub after_logs: u64,
    /// Entries between two snapshots, as a percentage of the records in the last one.
    pub log_percent: u64,
}

impl SnapshotRule {
    /// The rule a topology's Raft settings give.
    pub fn of(timing: &RaftTiming) -> SnapshotRule {
        SnapshotRule {
            after_logs: timing.snapshot_after_logs,
            log_percent: timing.snapshot_log_percent,
        }
    }

    /// Entries after the last snapshot at which the next is due, when it held `records`.
    pub fn due_after(&self, records: u64) -> u64 {
        let by_size = records.saturating_mul(self.log_percent) / 100;
        self.after_logs.max(by_size).max(1)
    }

    /// Whether to ask for a snapshot now: `applied` is the last applied index, `snapshot` the
    /// last snapshot's index, `asked_at` the applied index of the last request (a request is
    /// not repeated until as many entries again have been applied: a build may be running, or
    /// openraft may have refused it).
    pub fn due(
        &self,
        applied: u64,
        snapshot: Option<u64>,
        asked_at: Option<u64>,
        records: u64,
    ) -> bool {
        let since = snapshot.max(asked_at).unwrap_or(0);
        applied.saturating_sub(since) >= self.due_after(records)
    }
}

/// Watches this node's Raft metrics and asks for a snapshot when the rule says it is due;
/// ends on `shutdown`.
pub async fn run(
    raft: Raft,
    size: SnapshotSize,
    rule: SnapshotRule,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut metrics = raft.metrics();
    let mut asked_at = None;
    loop {
        let (applied, snapshot) = {
            let m = metrics.borrow_and_update();
            (
                m.last_applied.map(|id| id.index),
                m.snapshot.map(|id| id.index),
            )
        };
        if let Some(applied) = applied {
            let records = size.records();
            if rule.due(applied, snapshot, asked_at, records) {
                tracing::debug!(applied, ?snapshot, records, "snapshot due");
                asked_at = Some(applied);
                if let Err(e) = raft.trigger().snapshot().await {
                    tracing::warn!(error = %e, "cannot ask for a snapshot");
                    return;
                }
            }
        }
        tokio::select! {
            changed = metrics.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: SnapshotRule = SnapshotRule {
        after_logs: 1000,
        log_percent: 50,
    };

    #[test]
    fn a_small_state_snapshots_every_after_logs_entries() {
        assert_eq!(RULE.due_after(0), 1000);
        assert_eq!(RULE.due_after(1999), 1000);
        assert!(!RULE.due(999, None, None, 10));
        assert!(RULE.due(1000, None, None, 10));
        assert!(!RULE.due(1999, Some(1000), None, 10));
        assert!(RULE.due(2000, Some(1000), None, 10));
    }

    #[test]
    fn a_large_state_snapshots_after_a_share_of_its_size() {
        assert_eq!(RULE.due_after(1_000_000), 500_000);
        assert!(!RULE.due(10_000 + 499_999, Some(10_000), None, 1_000_000));
        assert!(RULE.due(10_000 + 500_000, Some(10_000), None, 1_000_000));
    }

    #[test]
    fn a_request_is_not_repeated_until_as_many_entries_again() {
        assert!(!RULE.due(1500, Some(0), Some(1000), 10));
        assert!(RULE.due(2000, Some(0), Some(1000), 10));
        // Once the snapshot is there, it counts from the snapshot again.
        assert!(!RULE.due(2500, Some(2000), Some(1000), 10));
    }

    #[test]
    fn a_zero_rule_still_waits_for_one_entry() {
        let rule = SnapshotRule {
            after_logs: 0,
            log_percent: 0,
        };
        assert!(!rule.due(5, Some(5), None, 100));
        assert!(rule.due(6, Some(5), None, 100));
    }
}
