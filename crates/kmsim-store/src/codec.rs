//! The value encoding of everything this crate stores, in one place so it can be switched.
//!
//! Values are postcard. Every openraft type stored here (`Entry`, `LogId`, `Vote`,
//! `StoredMembership`, `SnapshotMeta`) derives plain serde without `skip`/`flatten`/`untagged`,
//! so it round-trips through a non-self-describing format; the property tests below check it.

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde::Serialize;

use crate::error::StoreError;
use crate::types::LogId;
use crate::types::SnapshotMeta;
use crate::types::StoredMembership;

/// Encodes `value`; `what` names it in errors.
pub(crate) fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(value).map_err(|source| StoreError::Encode { what, source })
}

/// Decodes a whole value; trailing bytes count as corruption.
pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    bytes: &[u8],
) -> Result<T, StoreError> {
    let (value, rest) =
        postcard::take_from_bytes(bytes).map_err(|source| StoreError::Decode { what, source })?;
    if !rest.is_empty() {
        return Err(StoreError::corrupt(format!(
            "{what}: {} trailing bytes",
            rest.len()
        )));
    }
    Ok(value)
}

/// The snapshot data blob (what `Snapshot::snapshot` carries and followers install): the
/// definition of the format, which the store writes and reads piecewise
/// ([`snapshot_blob_header`], [`append_snapshot_record`], [`open_snapshot_blob`]) and the tests
/// check against this whole form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    not(test),
    expect(
        dead_code,
        reason = "the format's definition; built whole only by the tests"
    )
)]
pub(crate) struct SnapshotBlob {
    /// Last applied log id included in the records.
    pub(crate) last_applied: Option<LogId>,
    /// Membership in effect at `last_applied`.
    pub(crate) last_membership: StoredMembership,
    /// Every application record, ascending by application key.
    pub(crate) records: Vec<(Vec<u8>, Vec<u8>)>,
}

/// The value under `s/snapshot` before 0.12: the current snapshot in one value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredSnapshot {
    /// Its metadata.
    pub(crate) meta: SnapshotMeta,
    /// The encoded [`SnapshotBlob`], exactly as sent to followers.
    pub(crate) data: Vec<u8>,
}

/// The value under `s/snapshot-head`: the current snapshot's metadata; its data (the encoded
/// [`SnapshotBlob`], exactly as sent to followers) is stored in chunks under `c/` + `slot`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SnapshotHead {
    /// Its metadata.
    pub(crate) meta: SnapshotMeta,
    /// Which of the two chunk slots holds the data (a new snapshot is written into the other
    /// one, so the current one stays whole until the head names the new one).
    pub(crate) slot: u8,
    /// Length of the data in bytes.
    pub(crate) len: u64,
}

/// The header of an encoded [`SnapshotBlob`] whose `count` records follow, each encoded as
/// postcard encodes a `(Vec<u8>, Vec<u8>)`: a postcard struct is its fields in order and a
/// sequence is its length then its elements, so header and records concatenated are exactly
/// `encode(&SnapshotBlob { .. })`. This lets a snapshot be encoded while its records are
/// read, without first collecting them.
pub(crate) fn snapshot_blob_header(
    last_applied: &Option<LogId>,
    last_membership: &StoredMembership,
    count: usize,
) -> Result<Vec<u8>, StoreError> {
    encode("snapshot header", &(last_applied, last_membership, count))
}

/// Appends one record of a [`SnapshotBlob`] to `out` (see [`snapshot_blob_header`]).
pub(crate) fn append_snapshot_record(
    out: Vec<u8>,
    key: &[u8],
    value: &[u8],
) -> Result<Vec<u8>, StoreError> {
    postcard::to_extend(&(key, value), out).map_err(|source| StoreError::Encode {
        what: "snapshot record",
        source,
    })
}

/// The records of an encoded [`SnapshotBlob`], read one at a time from the encoded bytes
/// (borrowed, not copied): see [`open_snapshot_blob`].
pub(crate) struct BlobRecords<'a> {
    rest: &'a [u8],
    left: usize,
}

impl BlobRecords<'_> {
    /// How many records are left to read (all of them before the first).
    pub(crate) fn remaining(&self) -> usize {
        self.left
    }
}

impl<'a> Iterator for BlobRecords<'a> {
    type Item = Result<(&'a [u8], &'a [u8]), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            if self.rest.is_empty() {
                return None;
            }
            self.rest = &[];
            return Some(Err(StoreError::corrupt(
                "snapshot blob: bytes after its last record",
            )));
        }
        match postcard::take_from_bytes::<(&[u8], &[u8])>(self.rest) {
            Ok((record, rest)) => {
                self.rest = rest;
                self.left -= 1;
                Some(Ok(record))
            }
            Err(e) => {
                self.left = 0;
                self.rest = &[];
                Some(Err(StoreError::corrupt(format!(
                    "snapshot blob: a record cannot be read: {e}"
                ))))
            }
        }
    }
}

/// Reads an encoded [`SnapshotBlob`]'s header and returns it with an iterator over its
/// records, which are decoded as they are taken: a snapshot is installed without a second copy
/// of its records in memory.
pub(crate) fn open_snapshot_blob(
    data: &[u8],
) -> Result<(Option<LogId>, StoredMembership, BlobRecords<'_>), StoreError> {
    let ((last_applied, last_membership, count), rest) =
        postcard::take_from_bytes::<(Option<LogId>, StoredMembership, usize)>(data)
            .map_err(|e| StoreError::corrupt(format!("snapshot blob: header: {e}")))?;
    // Each record takes at least two bytes: a count beyond that is corrupt, not a reason to
    // iterate for long.
    if count > rest.len() / 2 {
        return Err(StoreError::corrupt(format!(
            "snapshot blob: {count} records cannot fit in {} bytes",
            rest.len()
        )));
    }
    Ok((
        last_applied,
        last_membership,
        BlobRecords { rest, left: count },
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::collections::BTreeSet;

    use openraft::BasicNode;
    use openraft::CommittedLeaderId;
    use openraft::EntryPayload;
    use openraft::Membership;
    use proptest::prelude::*;

    use super::*;
    use crate::types::Entry;
    use crate::types::RaftRequest;
    use crate::types::Vote;

    fn log_id(term: u64, node: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, node), index)
    }

    fn membership(voters: &BTreeSet<u64>, learners: &BTreeSet<u64>) -> Membership<u64, BasicNode> {
        let nodes: BTreeMap<u64, BasicNode> = voters
            .iter()
            .chain(learners)
            .map(|id| (*id, BasicNode::new(format!("10.0.0.{id}:7000"))))
            .collect();
        Membership::new(vec![voters.clone()], nodes)
    }

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(v: &T) {
        let bytes = encode("value", v).expect("encode");
        let back: T = decode("value", &bytes).expect("decode");
        assert_eq!(&back, v);
    }

    proptest! {
        #[test]
        fn entries_round_trip(term in any::<u64>(), node in any::<u64>(), index in any::<u64>(),
                              payload in proptest::collection::vec(any::<u8>(), 0..64),
                              voters in proptest::collection::btree_set(0u64..9, 1..4),
                              learners in proptest::collection::btree_set(10u64..19, 0..3),
                              kind in 0u8..3) {
            let id = log_id(term, node, index);
            let payload = match kind {
                0 => EntryPayload::Blank,
                1 => EntryPayload::Normal(RaftRequest { payload }),
                _ => EntryPayload::Membership(membership(&voters, &learners)),
            };
            round_trip(&Entry { log_id: id, payload });
        }

        #[test]
        fn meta_values_round_trip(term in any::<u64>(), node in any::<u64>(), index in any::<u64>(),
                                  committed in any::<bool>(),
                                  voters in proptest::collection::btree_set(0u64..9, 1..4)) {
            let mut vote = Vote::new(term, node);
            if committed {
                vote.commit();
            }
            round_trip(&vote);
            round_trip(&Some(log_id(term, node, index)));
            round_trip(&None::<LogId>);
            let sm = StoredMembership::new(Some(log_id(term, node, index)), membership(&voters, &BTreeSet::new()));
            round_trip(&sm);
            let meta = SnapshotMeta {
                last_log_id: Some(log_id(term, node, index)),
                last_membership: sm.clone(),
                snapshot_id: format!("{term}-{index}-1"),
            };
            let blob = SnapshotBlob {
                last_applied: meta.last_log_id,
                last_membership: sm,
                records: vec![(b"k".to_vec(), b"v".to_vec())],
            };
            round_trip(&StoredSnapshot { meta: meta.clone(), data: encode("snapshot blob", &blob).expect("encode") });
            round_trip(&SnapshotHead { meta, slot: 1, len: index });
            round_trip(&blob);
        }

        #[test]
        fn a_blob_encoded_record_by_record_is_the_blob_encoded_whole(
            index in any::<u64>(),
            applied in any::<bool>(),
            voters in proptest::collection::btree_set(0u64..9, 1..4),
            records in proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 0..40),
                proptest::collection::vec(any::<u8>(), 0..300),
                0..40,
            ),
        ) {
            let last_applied = applied.then(|| log_id(3, 1, index));
            let last_membership = StoredMembership::new(last_applied, membership(&voters, &BTreeSet::new()));
            let mut streamed = snapshot_blob_header(&last_applied, &last_membership, records.len()).expect("header");
            for (key, value) in &records {
                streamed = append_snapshot_record(streamed, key, value).expect("record");
            }
            let whole = SnapshotBlob {
                last_applied,
                last_membership,
                records: records.into_iter().collect(),
            };
            prop_assert_eq!(&streamed, &encode("snapshot blob", &whole).expect("encode"));
            let (applied_read, membership_read, read) = open_snapshot_blob(&streamed).expect("open");
            prop_assert_eq!(applied_read, whole.last_applied);
            prop_assert_eq!(&membership_read, &whole.last_membership);
            let read: Vec<(Vec<u8>, Vec<u8>)> = read
                .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())))
                .collect::<Result<_, _>>()
                .expect("records");
            prop_assert_eq!(&read, &whole.records);
            prop_assert_eq!(decode::<SnapshotBlob>("snapshot blob", &streamed).expect("decode"), whole);
        }
    }

    proptest! {
        #[test]
        fn reading_a_blob_record_by_record_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok((_, _, records)) = open_snapshot_blob(&bytes) {
                for r in records {
                    if r.is_err() {
                        break;
                    }
                }
            }
        }
    }

    #[test]
    fn trailing_bytes_are_corruption() {
        let mut bytes = encode("log id", &Some(log_id(1, 2, 3))).expect("encode");
        bytes.push(0);
        let err = decode::<Option<LogId>>("log id", &bytes).expect_err("must fail");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    }
}
