//! [`SnapshotChunks`]: the checks an `InstallSnapshot` chunk passes before openraft writes it.
//!
//! openraft 0.9 receives a snapshot into its `SnapshotData` (here a
//! [`SnapshotFile`](crate::SnapshotFile), which stores the bytes chunk by chunk as they come) by
//! seeking to each chunk's `offset` and writing its bytes; the request declares no total size.
//! The file refuses a write that leaves a gap or passes [`MAX_SNAPSHOT_BYTES`], but a refusal
//! there is a storage error, which stops the Raft member: a peer's bad chunk must be refused
//! before openraft writes it. The leader's sender streams chunks in order from offset 0 and
//! resends a chunk at the same offset after a failure, so a receiver can require exactly that:
//! a new snapshot starts at 0, every chunk starts at or before the end of what was received,
//! and the whole stays within [`MAX_SNAPSHOT_BYTES`]. Disk then grows only by bytes actually
//! sent, up to the bound; memory holds a chunk.

/// The largest snapshot a node receives: 1 GiB. A bound on what a peer can make a node store
/// (received bytes go to disk a chunk at a time, not to memory).
pub const MAX_SNAPSHOT_BYTES: u64 = 1 << 30;

/// Why a chunk was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// Offset plus length overflows or exceeds [`MAX_SNAPSHOT_BYTES`].
    #[error("snapshot chunk at offset {offset} of {len} bytes ends beyond the limit of {MAX_SNAPSHOT_BYTES} bytes")]
    TooLarge {
        /// The chunk's offset.
        offset: u64,
        /// Its length.
        len: u64,
    },
    /// The chunk leaves a gap after what was received.
    #[error("snapshot chunk at offset {offset} leaves a gap: only {received} bytes of snapshot {snapshot_id} were received")]
    Gap {
        /// The snapshot.
        snapshot_id: String,
        /// The chunk's offset.
        offset: u64,
        /// The bytes received so far.
        received: u64,
    },
}

/// The receiving side's view of the snapshot being streamed in, mirroring openraft's: a chunk
/// at offset 0 of another snapshot starts a new stream; the chunk with `done` ends it.
#[derive(Debug, Default)]
pub struct SnapshotChunks {
    /// The snapshot being received and how many bytes of it arrived (its end so far).
    current: Option<(String, u64)>,
}

impl SnapshotChunks {
    /// Checks a chunk without recording it. A chunk of another snapshot at an offset other
    /// than 0 passes: openraft refuses it without writing (`SnapshotMismatch`).
    pub fn check(&self, snapshot_id: &str, offset: u64, len: usize) -> Result<(), ChunkError> {
        let len = len as u64;
        match offset.checked_add(len) {
            Some(end) if end <= MAX_SNAPSHOT_BYTES => {}
            _ => return Err(ChunkError::TooLarge { offset, len }),
        }
        match &self.current {
            Some((id, received)) if id == snapshot_id && offset > *received => {
                Err(ChunkError::Gap {
                    snapshot_id: snapshot_id.to_string(),
                    offset,
                    received: *received,
                })
            }
            _ => Ok(()),
        }
    }

    /// Records a chunk openraft accepted (after [`check`](Self::check) passed).
    pub fn accepted(&mut self, snapshot_id: &str, offset: u64, len: usize, done: bool) {
        let end = offset.saturating_add(len as u64);
        match &mut self.current {
            Some((id, received)) if id == snapshot_id => *received = (*received).max(end),
            _ if offset == 0 => self.current = Some((snapshot_id.to_string(), end)),
            _ => {}
        }
        if done {
            self.current = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn in_order_chunks_and_resends_pass() {
        let mut s = SnapshotChunks::default();
        for (offset, len, done) in [
            (0, 10, false),
            (10, 10, false),
            (10, 10, false),
            (20, 5, true),
        ] {
            s.check("a", offset, len).unwrap();
            s.accepted("a", offset, len, done);
        }
        // A new snapshot starts at 0.
        s.check("b", 0, 3).unwrap();
    }

    #[test]
    fn a_chunk_far_beyond_what_arrived_is_refused() {
        let mut s = SnapshotChunks::default();
        s.check("a", 0, 10).unwrap();
        s.accepted("a", 0, 10, false);
        assert!(matches!(
            s.check("a", 1 << 50, 1),
            Err(ChunkError::TooLarge { .. })
        ));
        assert!(matches!(s.check("a", 11, 1), Err(ChunkError::Gap { .. })));
        assert!(matches!(
            s.check("a", u64::MAX, 1),
            Err(ChunkError::TooLarge { .. })
        ));
        assert!(matches!(
            s.check("a", MAX_SNAPSHOT_BYTES, 0),
            Err(ChunkError::Gap { .. })
        ));
    }

    #[test]
    fn the_total_is_bounded() {
        let s = SnapshotChunks::default();
        assert!(s.check("a", 0, MAX_SNAPSHOT_BYTES as usize).is_ok());
        assert!(s.check("a", 0, MAX_SNAPSHOT_BYTES as usize + 1).is_err());
    }

    proptest! {
        /// Whatever chunks arrive, what passes never reaches past the bytes received plus the
        /// chunk itself, nor past the bound: the receiving buffer stays bounded.
        #[test]
        fn accepted_chunks_never_leave_a_gap(chunks in proptest::collection::vec(
            (0u8..3, any::<u64>(), 0usize..64, any::<bool>()), 0..64)) {
            let mut s = SnapshotChunks::default();
            let mut written: Option<(u8, u64)> = None;
            for (id, offset, len, done) in chunks {
                let name = id.to_string();
                let offset = offset % 256;
                if s.check(&name, offset, len).is_err() {
                    continue;
                }
                // openraft starts a stream only at offset 0.
                match written {
                    Some((w, end)) if w == id => {
                        prop_assert!(offset <= end);
                        written = Some((w, end.max(offset + len as u64)));
                    }
                    _ if offset == 0 => written = Some((id, len as u64)),
                    _ => continue,
                }
                s.accepted(&name, offset, len, done);
                if done {
                    written = None;
                }
            }
        }
    }
}
