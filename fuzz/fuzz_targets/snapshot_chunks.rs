//! A sequence of `InstallSnapshot` chunks (snapshot id, offset, length, done) through the
//! receiver's checks (`SnapshotChunks`) into a buffer written the way openraft 0.9 writes a
//! received snapshot (seek to the offset, write the bytes): no chunk that passes may make the
//! buffer grow beyond the bytes actually sent, and nothing panics.
#![no_main]

use std::io::{Cursor, Seek, SeekFrom, Write};

use kmsim_store::SnapshotChunks;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut guard = SnapshotChunks::default();
    // openraft's stream: the snapshot id and its buffer; a new one starts only at offset 0.
    let mut stream: Option<(u8, Cursor<Vec<u8>>)> = None;
    let mut sent = 0u64;
    // Each chunk: 1 byte id, 8 bytes offset, 1 byte length, 1 byte done.
    for c in data.chunks_exact(11) {
        let id = c[0] % 4;
        let offset = u64::from_le_bytes(c[1..9].try_into().expect("8 bytes"));
        let len = usize::from(c[9]);
        let done = c[10] & 1 == 1;
        let name = id.to_string();
        if guard.check(&name, offset, len).is_err() {
            continue;
        }
        let same = matches!(&stream, Some((s, _)) if *s == id);
        if !same {
            if offset != 0 {
                continue; // openraft: SnapshotMismatch, nothing written
            }
            stream = Some((id, Cursor::new(Vec::new())));
        }
        let (_, buf) = stream.as_mut().expect("a stream is open");
        buf.seek(SeekFrom::Start(offset)).expect("seek in memory");
        buf.write_all(&vec![0xa5; len]).expect("write in memory");
        sent += len as u64;
        assert!(
            buf.get_ref().len() as u64 <= sent,
            "the buffer grew beyond the bytes sent"
        );
        guard.accepted(&name, offset, len, done);
        if done {
            stream = None;
            sent = 0;
        }
    }
});
