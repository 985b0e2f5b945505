//! [`check_views`]: the view part of the [`KvEngine`] contract, for any engine.

use crate::engine::KvEngine;
use crate::engine::KvRead;
use crate::engine::WriteOp;
use crate::error::StoreError;

fn put(key: &[u8], value: &[u8]) -> WriteOp {
    WriteOp::Put {
        key: key.to_vec(),
        value: value.to_vec(),
    }
}

/// Checks on an empty `engine` that a view reads the engine as it was when taken: puts,
/// overwrites, deletes and range deletes written afterwards are invisible through it (for
/// `get` and `scan`), visible through the engine and a new view, and that a view can be
/// taken and read while another is held.
pub fn check_views<E: KvEngine>(engine: &E) -> Result<(), StoreError> {
    engine.write(
        vec![put(b"a", b"1"), put(b"b", b"2"), put(b"c", b"3")],
        false,
    )?;
    let before = engine.view()?;
    engine.write(
        vec![
            put(b"a", b"changed"),
            WriteOp::Delete { key: b"b".to_vec() },
            put(b"d", b"4"),
            WriteOp::DeleteRange {
                from: b"c".to_vec(),
                to: b"d".to_vec(),
            },
        ],
        true,
    )?;
    let after = engine.view()?;

    let pairs = |r: &dyn KvRead| r.scan(b"a", b"z", 10);
    let old = vec![
        (b"a".to_vec(), b"1".to_vec()),
        (b"b".to_vec(), b"2".to_vec()),
        (b"c".to_vec(), b"3".to_vec()),
    ];
    let new = vec![
        (b"a".to_vec(), b"changed".to_vec()),
        (b"d".to_vec(), b"4".to_vec()),
    ];
    assert_eq!(pairs(before.as_ref())?, old, "the older view");
    assert_eq!(before.get(b"a")?, Some(b"1".to_vec()));
    assert_eq!(before.get(b"b")?, Some(b"2".to_vec()));
    assert_eq!(before.get(b"d")?, None);
    assert_eq!(before.scan(b"b", b"c", 10)?.len(), 1, "views honour bounds");
    assert_eq!(before.scan(b"a", b"z", 2)?.len(), 2, "views honour limits");
    assert_eq!(pairs(after.as_ref())?, new, "the newer view");
    assert_eq!(engine.scan(b"a", b"z", 10)?, new, "the engine itself");
    assert_eq!(after.get(b"b")?, None);
    Ok(())
}
