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
/// definition of the format, which the store writes and reads piece by piece ([`BlobEncoder`],
/// [`open_snapshot_blob`]) and the tests check against this whole form.
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
/// [`SnapshotBlob`], exactly as sent to followers) is stored in chunks under `c/` + `slot`:
/// chunk 0 holds its first bytes (any number of them: a build writes the header there, last),
/// every later chunk the same fixed number (1 MiB), the last one fewer (see
/// `snapshot_file`).
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
fn snapshot_blob_header(
    last_applied: &Option<LogId>,
    last_membership: &StoredMembership,
    count: usize,
) -> Result<Vec<u8>, StoreError> {
    encode("snapshot header", &(last_applied, last_membership, count))
}

/// Encodes a [`SnapshotBlob`] while its records are read, cut into stored chunks: the records
/// as they come, in pieces of `chunk_bytes` ([`take_full`](Self::take_full)), then, once the
/// count is known, the header that goes before them ([`finish`](Self::finish)). Header, full
/// pieces and the rest, concatenated, are exactly `encode(&SnapshotBlob { .. })`; what is held
/// in memory is at most one piece and one record.
pub(crate) struct BlobEncoder {
    /// Length of a full piece.
    chunk_bytes: usize,
    /// Encoded records not yet taken.
    pending: Vec<u8>,
    /// Records encoded so far.
    count: usize,
}

impl BlobEncoder {
    /// An encoder cutting the records into pieces of `chunk_bytes` (at least 1).
    pub(crate) fn new(chunk_bytes: usize) -> Self {
        Self {
            chunk_bytes: chunk_bytes.max(1),
            pending: Vec::new(),
            count: 0,
        }
    }

    /// Encodes the next record (records go in ascending key order).
    pub(crate) fn record(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.pending = postcard::to_extend(&(key, value), std::mem::take(&mut self.pending))
            .map_err(|source| StoreError::Encode {
                what: "snapshot record",
                source,
            })?;
        self.count += 1;
        Ok(())
    }

    /// The next full piece of encoded records, if `chunk_bytes` of them are waiting.
    pub(crate) fn take_full(&mut self) -> Option<Vec<u8>> {
        if self.pending.len() < self.chunk_bytes {
            return None;
        }
        let rest = self.pending.split_off(self.chunk_bytes);
        Some(std::mem::replace(&mut self.pending, rest))
    }

    /// The header (the bytes before every record) and the records not taken yet (fewer than
    /// `chunk_bytes`, possibly none), and the number of records.
    pub(crate) fn finish(
        self,
        last_applied: &Option<LogId>,
        last_membership: &StoredMembership,
    ) -> Result<(Vec<u8>, Vec<u8>, u64), StoreError> {
        let header = snapshot_blob_header(last_applied, last_membership, self.count)?;
        Ok((header, self.pending, self.count as u64))
    }
}

/// Reads an encoded [`SnapshotBlob`] from its pieces in order, as `next_piece` yields them
/// (`None` after the last): the header at [`open_snapshot_blob`], then one record per
/// [`next_record`](Self::next_record). A value that spans pieces is completed from the next
/// one; what is held is the piece being read plus the part of a value that began in the one
/// before, never the blob.
pub(crate) struct BlobDecoder<F> {
    /// Yields the next piece of the blob.
    next_piece: F,
    /// Bytes read from pieces and not yet decoded start at `at`.
    buf: Vec<u8>,
    at: usize,
    /// Records still to read.
    left: usize,
}

/// A piece of a blob, or its end.
pub(crate) type Piece = Result<Option<Vec<u8>>, StoreError>;

/// An application record: key and value.
pub(crate) type Record = (Vec<u8>, Vec<u8>);

impl<F: FnMut() -> Piece> BlobDecoder<F> {
    /// How many records are left to read (all of them before the first).
    pub(crate) fn remaining(&self) -> usize {
        self.left
    }

    /// The next record, or `None` after the last one; bytes after the last record are
    /// corruption.
    pub(crate) fn next_record(&mut self) -> Result<Option<Record>, StoreError> {
        if self.left == 0 {
            while self.at == self.buf.len() {
                match (self.next_piece)()? {
                    Some(piece) => {
                        self.buf = piece;
                        self.at = 0;
                    }
                    None => return Ok(None),
                }
            }
            return Err(StoreError::corrupt(
                "snapshot blob: bytes after its last record",
            ));
        }
        let record = self.take("a record", |bytes| {
            postcard::take_from_bytes::<(&[u8], &[u8])>(bytes)
                .map(|((key, value), rest)| ((key.to_vec(), value.to_vec()), rest))
        })?;
        self.left -= 1;
        Ok(Some(record))
    }

    /// Decodes the next value with `decode`, adding pieces while the bytes at hand end inside it.
    fn take<T>(
        &mut self,
        what: &str,
        decode: impl for<'a> Fn(&'a [u8]) -> postcard::Result<(T, &'a [u8])>,
    ) -> Result<T, StoreError> {
        loop {
            let bytes = &self.buf[self.at..];
            match decode(bytes) {
                Ok((value, rest)) => {
                    self.at += bytes.len() - rest.len();
                    return Ok(value);
                }
                Err(postcard::Error::DeserializeUnexpectedEnd) => {
                    let Some(piece) = (self.next_piece)()? else {
                        return Err(StoreError::corrupt(format!(
                            "snapshot blob: {what} is cut off at the end"
                        )));
                    };
                    self.buf.drain(..self.at);
                    self.at = 0;
                    self.buf.extend_from_slice(&piece);
                }
                Err(e) => {
                    return Err(StoreError::corrupt(format!(
                        "snapshot blob: {what} cannot be read: {e}"
                    )))
                }
            }
        }
    }
}

/// Reads the header of an encoded [`SnapshotBlob`] of `len` bytes whose pieces `next_piece`
/// yields in order, and returns it with a decoder of its records, which are decoded as they
/// are taken: a snapshot is installed without its records, or its blob, in memory.
pub(crate) fn open_snapshot_blob<F: FnMut() -> Piece>(
    next_piece: F,
    len: u64,
) -> Result<(Option<LogId>, StoredMembership, BlobDecoder<F>), StoreError> {
    let mut decoder = BlobDecoder {
        next_piece,
        buf: Vec::new(),
        at: 0,
        left: 0,
    };
    let (last_applied, last_membership, count) = decoder.take("the header", |bytes| {
        postcard::take_from_bytes::<(Option<LogId>, StoredMembership, usize)>(bytes)
    })?;
    // Each record takes at least two bytes: a count beyond that is corrupt, not a reason to
    // iterate for long. (The decoder has read the header and what followed it in its pieces.)
    let header = decoder.at as u64;
    let after_header = len.saturating_sub(header);
    if count as u64 > after_header / 2 {
        return Err(StoreError::corrupt(format!(
            "snapshot blob: {count} records cannot fit in {after_header} bytes"
        )));
    }
    decoder.left = count;
    Ok((last_applied, last_membership, decoder))
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
        fn a_blob_encoded_in_pieces_is_the_blob_encoded_whole(
            index in any::<u64>(),
            applied in any::<bool>(),
            voters in proptest::collection::btree_set(0u64..9, 1..4),
            records in proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 0..40),
                proptest::collection::vec(any::<u8>(), 0..300),
                0..40,
            ),
            chunk_bytes in 1usize..400,
            read_bytes in 1usize..400,
        ) {
            let last_applied = applied.then(|| log_id(3, 1, index));
            let last_membership = StoredMembership::new(last_applied, membership(&voters, &BTreeSet::new()));
            let mut encoder = BlobEncoder::new(chunk_bytes);
            let mut full = Vec::new();
            for (key, value) in &records {
                encoder.record(key, value).expect("record");
                while let Some(piece) = encoder.take_full() {
                    prop_assert_eq!(piece.len(), chunk_bytes);
                    full.push(piece);
                }
            }
            let (header, rest, count) = encoder.finish(&last_applied, &last_membership).expect("finish");
            prop_assert!(rest.len() < chunk_bytes);
            prop_assert_eq!(count, records.len() as u64);
            let streamed: Vec<u8> = [header].into_iter().chain(full).chain([rest]).flatten().collect();
            let whole = SnapshotBlob {
                last_applied,
                last_membership,
                records: records.into_iter().collect(),
            };
            prop_assert_eq!(&streamed, &encode("snapshot blob", &whole).expect("encode"));
            prop_assert_eq!(decode::<SnapshotBlob>("snapshot blob", &streamed).expect("decode"), whole.clone());

            // Read back from pieces of another length: values span pieces.
            let (applied_read, membership_read, read) =
                open_snapshot_blob(pieces(&streamed, read_bytes), streamed.len() as u64).expect("open");
            prop_assert_eq!(applied_read, whole.last_applied);
            prop_assert_eq!(&membership_read, &whole.last_membership);
            prop_assert_eq!(read.remaining(), whole.records.len());
            prop_assert_eq!(&all_records(read).expect("records"), &whole.records);
        }
    }

    /// Yields `bytes` in pieces of `size` bytes (the last shorter).
    fn pieces(bytes: &[u8], size: usize) -> impl FnMut() -> Piece + '_ {
        let mut chunks = bytes.chunks(size.max(1));
        move || Ok(chunks.next().map(<[u8]>::to_vec))
    }

    fn all_records<F: FnMut() -> Piece>(
        mut read: BlobDecoder<F>,
    ) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        while let Some(record) = read.next_record()? {
            out.push(record);
        }
        Ok(out)
    }

    proptest! {
        #[test]
        fn reading_a_blob_in_pieces_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            size in 1usize..64,
        ) {
            if let Ok((_, _, records)) = open_snapshot_blob(pieces(&bytes, size), bytes.len() as u64) {
                let _ = all_records(records);
            }
        }
    }

    #[test]
    fn bytes_after_the_last_record_or_a_record_cut_off_are_corruption() {
        let blob = SnapshotBlob {
            last_applied: Some(log_id(1, 1, 1)),
            last_membership: StoredMembership::default(),
            records: vec![(b"k".to_vec(), b"value".to_vec())],
        };
        let bytes = encode("blob", &blob).expect("encode");
        let mut longer = bytes.clone();
        longer.push(0);
        let (_, _, records) =
            open_snapshot_blob(pieces(&longer, 3), longer.len() as u64).expect("open");
        let err = all_records(records).expect_err("trailing byte");
        assert!(err.to_string().contains("after its last record"), "{err}");
        let cut = &bytes[..bytes.len() - 1];
        let (_, _, records) = open_snapshot_blob(pieces(cut, 3), cut.len() as u64).expect("open");
        let err = all_records(records).expect_err("cut off");
        assert!(err.to_string().contains("cut off"), "{err}");
    }

    #[test]
    fn trailing_bytes_are_corruption() {
        let mut bytes = encode("log id", &Some(log_id(1, 2, 3))).expect("encode");
        bytes.push(0);
        let err = decode::<Option<LogId>>("log id", &bytes).expect_err("must fail");
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    }
}
