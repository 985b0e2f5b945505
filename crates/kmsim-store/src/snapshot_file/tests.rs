//! Unit tests of [`SnapshotFile`] over `MemKvEngine`: the chunk arithmetic, reads at any
//! offset, writes with resends, and the leases of slots.

use std::io::Cursor;
use std::io::SeekFrom;
use std::sync::Arc;

use proptest::prelude::*;
use tokio::io::AsyncReadExt;
use tokio::io::AsyncSeekExt;
use tokio::io::AsyncWriteExt;

use super::*;
use crate::mem_engine::MemKvEngine;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn table(engine: &MemKvEngine, chunk_bytes: usize) -> Arc<SlotTable> {
    SlotTable::new(Arc::new(engine.clone()), chunk_bytes)
}

/// Stores `data` in a leased slot as a build does (chunk 0 of `first` bytes, then chunks of
/// the table's size) and returns a reader of it.
fn stored(table: &Arc<SlotTable>, data: &[u8], first: usize) -> SnapshotFile {
    let lease = table.lease_for_writing().expect("lease");
    let first = first.min(data.len());
    let mut ops = vec![chunk_op(lease.slot(), 0, data[..first].to_vec())];
    for (chunk, index) in data[first..].chunks(table.chunk_bytes()).zip(1u32..) {
        ops.push(chunk_op(lease.slot(), index, chunk.to_vec()));
    }
    lease.engine().write(ops, false).expect("write");
    SnapshotFile::reader(lease.into_reader().expect("reader"), data.len() as u64)
}

/// The chunks stored in `slot`, concatenated.
fn slot_bytes(engine: &MemKvEngine, slot: u8) -> Vec<u8> {
    let (from, to) = keys::chunk_range(slot);
    engine
        .scan(&from, &to, usize::MAX)
        .expect("scan")
        .into_iter()
        .flat_map(|(_, chunk)| chunk)
        .collect()
}

/// Up to `n` bytes from the position on (fewer at the end).
async fn read_up_to<R: AsyncRead + Unpin>(file: &mut R, n: usize) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    file.take(n as u64).read_to_end(&mut out).await?;
    Ok(out)
}

#[derive(Debug, Clone)]
enum Op {
    Seek(SeekFrom),
    Read(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u64..700).prop_map(|n| Op::Seek(SeekFrom::Start(n))),
        (-700i64..50).prop_map(|n| Op::Seek(SeekFrom::End(n))),
        (-300i64..300).prop_map(|n| Op::Seek(SeekFrom::Current(n))),
        (0usize..300).prop_map(Op::Read),
    ]
}

proptest! {
    #[test]
    fn locate_and_chunk_len_agree_with_laying_the_bytes_out(
        len in 0u64..2000,
        first in 0u64..300,
        chunk in 1u64..300,
    ) {
        let first = first.min(len);
        // Lay every byte out chunk by chunk and check both functions against it.
        let mut lengths = vec![first];
        let mut left = len - first;
        while left > 0 {
            lengths.push(left.min(chunk));
            left -= left.min(chunk);
        }
        let mut offset = 0;
        for (index, held) in lengths.iter().enumerate() {
            prop_assert_eq!(chunk_len(index as u64, first, chunk, len), *held);
            for within in 0..*held {
                prop_assert_eq!(locate(offset + within, first, chunk), (index as u64, within));
            }
            offset += held;
        }
        prop_assert_eq!(chunk_len(lengths.len() as u64, first, chunk, len), 0);
        prop_assert_eq!(chunk_len(u64::MAX, first, chunk, len), 0);
    }

    /// Seeks and reads of a stored snapshot answer what they answer on the whole data in
    /// memory (a `Cursor`), whatever the chunk sizes.
    #[test]
    fn reads_at_any_offset_match_the_whole_data(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        first in 0usize..100,
        chunk in 1usize..100,
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        runtime().block_on(async {
            let engine = MemKvEngine::new();
            let table = table(&engine, chunk);
            let mut file = stored(&table, &data, first);
            let mut model = Cursor::new(data.clone());
            prop_assert_eq!(file.seek(SeekFrom::End(0)).await.ok(), Some(data.len() as u64));
            model.set_position(data.len() as u64);
            for op in ops {
                match op {
                    Op::Seek(to) => {
                        let got = file.seek(to).await.ok();
                        let want = AsyncSeekExt::seek(&mut model, to).await.ok();
                        prop_assert_eq!(got, want);
                    }
                    Op::Read(n) => {
                        let got = read_up_to(&mut file, n).await.expect("read");
                        let want = read_up_to(&mut model, n).await.expect("read");
                        prop_assert_eq!(got, want);
                    }
                }
            }
            Ok(())
        })?;
    }

    /// Bytes written in pieces, some sent again at the same offset (a resend), with flushes
    /// anywhere, are stored as the data, in chunks of the table's size.
    #[test]
    fn written_pieces_with_resends_store_the_data(
        data in proptest::collection::vec(any::<u8>(), 0..600),
        chunk in 1usize..100,
        cuts in proptest::collection::vec((1usize..120, any::<bool>(), any::<bool>()), 1..60),
    ) {
        runtime().block_on(async {
            let engine = MemKvEngine::new();
            let table = table(&engine, chunk);
            let mut file = SnapshotFile::writer(table.lease_for_writing().expect("lease"));
            let slot = file.lease.slot();
            let mut offset = 0;
            for (size, resend, flush) in cuts.iter().cycle() {
                if offset >= data.len() {
                    break;
                }
                let piece = &data[offset..(offset + size).min(data.len())];
                file.seek(SeekFrom::Start(offset as u64)).await.expect("seek");
                file.write_all(piece).await.expect("write");
                if *resend {
                    file.seek(SeekFrom::Start(offset as u64)).await.expect("seek");
                    file.write_all(piece).await.expect("resend");
                }
                if *flush {
                    file.flush().await.expect("flush");
                }
                offset += piece.len();
            }
            file.shutdown().await.expect("shutdown");
            prop_assert_eq!(file.len(), data.len() as u64);
            let (lease, len) = file.into_received().expect("received");
            prop_assert_eq!(len, data.len() as u64);
            prop_assert_eq!(slot_bytes(&engine, slot), data.clone());
            let (from, to) = keys::chunk_range(slot);
            let chunks = engine.scan(&from, &to, usize::MAX).expect("scan");
            prop_assert!(chunks.iter().all(|(_, c)| c.len() <= chunk));
            prop_assert_eq!(chunks.len(), data.len().div_ceil(chunk));
            drop(lease);
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn a_write_beyond_what_was_received_is_refused_and_changes_nothing() {
    let engine = MemKvEngine::new();
    let table = table(&engine, 4);
    let mut file = SnapshotFile::writer(table.lease_for_writing().expect("lease"));
    file.write_all(b"abcdef").await.expect("write");
    file.seek(SeekFrom::Start(7)).await.expect("seek");
    let err = file.write_all(b"x").await.expect_err("a gap");
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("gap"), "{err}");
    // A resend of what arrived, then the rest, in order.
    file.seek(SeekFrom::Start(2)).await.expect("seek");
    file.write_all(b"cdefgh").await.expect("resend and more");
    file.shutdown().await.expect("shutdown");
    let slot = file.lease.slot();
    let (_lease, len) = file.into_received().expect("received");
    assert_eq!(len, 8);
    assert_eq!(slot_bytes(&engine, slot), b"abcdefgh");
}

#[tokio::test]
async fn a_stored_snapshot_cannot_be_written_nor_a_received_one_read() {
    let engine = MemKvEngine::new();
    let table = table(&engine, 4);
    let mut reader = stored(&table, b"0123456789", 3);
    assert!(reader.write_all(b"x").await.is_err());
    let mut writer = SnapshotFile::writer(table.lease_for_writing().expect("lease"));
    writer.write_all(b"abc").await.expect("write");
    assert!(read_up_to(&mut writer, 3).await.is_err());
    // Not shut down: not received whole.
    assert!(writer.into_received().is_err());
}

#[tokio::test]
async fn a_missing_or_misshapen_chunk_is_an_error_not_a_panic() {
    let engine = MemKvEngine::new();
    let table = table(&engine, 4);
    let mut file = stored(&table, b"0123456789abcdef", 2);
    let slot = file.lease.slot();
    // Chunk 2 (bytes 6..10) gone.
    engine
        .write(
            vec![WriteOp::Delete {
                key: keys::chunk_key(slot, 2),
            }],
            false,
        )
        .expect("delete");
    let err = read_up_to(&mut file, 16).await.expect_err("missing chunk");
    assert!(err.to_string().contains("missing"), "{err}");
    // Chunk 1 of another copy one byte short.
    let mut file = stored(&table, b"0123456789abcdef", 2);
    let slot = file.lease.slot();
    engine
        .write(vec![chunk_op(slot, 1, b"234".to_vec())], false)
        .expect("write");
    let err = read_up_to(&mut file, 16).await.expect_err("short chunk");
    assert!(err.to_string().contains("do not fit"), "{err}");
}

#[test]
fn slots_in_use_are_neither_leased_again_nor_cleared_until_their_last_lease_ends() {
    let engine = MemKvEngine::new();
    let table = table(&engine, 4);
    let reading = stored(&table, b"0123456789", 4);
    let read_slot = reading.lease.slot();
    let writing = table.lease_for_writing().expect("lease");
    assert_ne!(writing.slot(), read_slot);
    engine
        .write(vec![chunk_op(writing.slot(), 0, b"w".to_vec())], false)
        .expect("write");
    let another = table.lease_for_writing().expect("lease");
    assert!(another.slot() != read_slot && another.slot() != writing.slot());

    // A slot nobody uses any more, and that is not current, is cleared.
    let written = writing.slot();
    drop(writing);
    assert!(slot_bytes(&engine, written).is_empty());
    assert_eq!(slot_bytes(&engine, read_slot), b"0123456789");
    drop(reading);
    assert!(slot_bytes(&engine, read_slot).is_empty());
}
