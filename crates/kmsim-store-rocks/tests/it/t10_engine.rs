//! Basics of the engine: batches, scan bounds and limits, last key of a range.

use kmsim_store::KvEngine;
use kmsim_store::KvPair;
use kmsim_store::KvRead;
use kmsim_store::WriteOp;

use crate::fresh_engine;
use crate::put;

fn keys(pairs: Vec<KvPair>) -> Vec<Vec<u8>> {
    pairs.into_iter().map(|(k, _)| k).collect()
}

#[test]
fn scan_returns_keys_in_from_inclusive_to_exclusive_up_to_the_limit() {
    let (_dir, e) = fresh_engine().expect("engine");
    e.write(
        vec![
            put(b"a/1", b"x"),
            put(b"a/2", b"y"),
            put(b"a/3", b"z"),
            put(b"b/1", b"w"),
            put(b"a", b"p"),
        ],
        false,
    )
    .expect("write");

    assert_eq!(
        keys(e.scan(b"a/", b"a0", 100).expect("scan")),
        vec![b"a/1".to_vec(), b"a/2".to_vec(), b"a/3".to_vec()]
    );
    assert_eq!(
        keys(e.scan(b"a/2", b"a/3", 100).expect("scan")),
        vec![b"a/2".to_vec()]
    );
    assert_eq!(
        keys(e.scan(b"a/", b"a0", 2).expect("scan")),
        vec![b"a/1".to_vec(), b"a/2".to_vec()]
    );
    assert_eq!(e.scan(b"a/", b"a0", 2).expect("scan")[1].1, b"y".to_vec());
    assert!(e.scan(b"a/", b"a0", 0).expect("scan").is_empty());
    assert!(e.scan(b"a0", b"a/", 10).expect("inverted").is_empty());
    assert!(e.scan(b"c", b"d", 10).expect("empty range").is_empty());
}

#[test]
fn last_in_range_finds_the_greatest_key_below_the_end() {
    let (_dir, e) = fresh_engine().expect("engine");
    e.write(
        vec![
            put(b"l/1", b"1"),
            put(b"l/2", b"2"),
            put(b"l0", b"end"),
            put(b"m/x", b"m"),
        ],
        false,
    )
    .expect("write");
    assert_eq!(
        e.last_in_range(b"l/", b"l0").expect("last"),
        Some((b"l/2".to_vec(), b"2".to_vec()))
    );
    assert_eq!(
        e.last_in_range(b"l/", b"l/2").expect("last").map(|p| p.0),
        Some(b"l/1".to_vec())
    );
    assert_eq!(e.last_in_range(b"k", b"l/").expect("last"), None);
    assert_eq!(e.last_in_range(b"z", b"a").expect("inverted"), None);
}

#[test]
fn a_batch_applies_its_ops_in_order() {
    let (_dir, e) = fresh_engine().expect("engine");
    e.write(
        vec![
            put(b"k1", b"1"),
            put(b"k2", b"2"),
            put(b"k3", b"3"),
            WriteOp::DeleteRange {
                from: b"k1".to_vec(),
                to: b"k3".to_vec(),
            },
            put(b"k2", b"again"),
            WriteOp::Delete {
                key: b"k3".to_vec(),
            },
            WriteOp::DeleteRange {
                from: b"z".to_vec(),
                to: b"a".to_vec(),
            },
        ],
        true,
    )
    .expect("write");
    assert_eq!(e.get(b"k1").expect("get"), None);
    assert_eq!(e.get(b"k2").expect("get"), Some(b"again".to_vec()));
    assert_eq!(e.get(b"k3").expect("get"), None);
}

#[test]
fn a_view_keeps_reading_the_database_as_it_was() {
    let (_dir, engine) = fresh_engine().unwrap();
    kmsim_store::testing::check_views(&engine).unwrap();
}

#[test]
fn the_engine_reports_its_live_data_and_pending_compaction_estimates() {
    let (_dir, e) = fresh_engine().expect("engine");
    let empty = e.stats();
    assert!(empty.live_data_bytes.is_some(), "{empty:?}");
    assert!(empty.pending_compaction_bytes.is_some(), "{empty:?}");
    e.write(
        (0..1000u32)
            .map(|i| put(&i.to_be_bytes(), &[7u8; 512]))
            .collect(),
        true,
    )
    .expect("write");
    let after = e.stats();
    assert!(after.live_data_bytes.is_some() && after.pending_compaction_bytes.is_some());
    // The in-memory engine has no such figures.
    assert_eq!(
        kmsim_store::MemKvEngine::new().stats(),
        kmsim_store::EngineStats::default()
    );
}
