//! The key layout inside the engine (see the crate docs for the table).
//!
//! Every prefix is one ASCII letter and `/`; the exclusive end of a prefix range is the same
//! letter followed by `0`, the byte after `/`.

/// Prefix of log entries: `l/` + u64 big-endian index, so keys sort by index.
pub const LOG_PREFIX: &[u8] = b"l/";
/// Exclusive end of the log range.
pub const LOG_END: &[u8] = b"l0";

/// The last saved vote.
pub const VOTE: &[u8] = b"m/vote";
/// The last saved committed log id.
pub const COMMITTED: &[u8] = b"m/committed";
/// The log id of the last purged entry.
pub const LAST_PURGED: &[u8] = b"m/last_purged";

/// The last applied log id of the state machine.
pub const APPLIED: &[u8] = b"s/applied";
/// The last applied membership of the state machine.
pub const MEMBERSHIP: &[u8] = b"s/membership";
/// The current snapshot's metadata, where its data is stored and how long it is.
pub const SNAPSHOT_HEAD: &[u8] = b"s/snapshot-head";
/// How many application records the current snapshot holds (u64).
pub const SNAPSHOT_RECORDS: &[u8] = b"s/snapshot-records";
/// While a snapshot is being installed: its head (the snapshot whose stored chunks the
/// application records are being replaced with). Present at start-up, the install is finished
/// from those chunks before anything else.
pub const INSTALLING: &[u8] = b"s/installing";
/// The current snapshot as versions before 0.12 stored it (metadata and data in one value);
/// read once at start-up to move it to the chunked layout, then deleted.
pub const LEGACY_SNAPSHOT: &[u8] = b"s/snapshot";

/// Prefix of stored snapshot data: `c/` + slot byte + u32 BE chunk index.
pub const CHUNK_PREFIX: &[u8] = b"c/";
/// Exclusive end of the snapshot data range.
pub const CHUNK_END: &[u8] = b"c0";

/// Prefix of application records: `a/` + the application's own key.
pub const APP_PREFIX: &[u8] = b"a/";
/// Exclusive end of the application range.
pub const APP_END: &[u8] = b"a0";

/// The engine key of log entry `index`.
pub fn log_key(index: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(LOG_PREFIX.len() + 8);
    key.extend_from_slice(LOG_PREFIX);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The exclusive end key for "every log entry with index <= `index`".
pub fn log_key_after(index: u64) -> Vec<u8> {
    match index.checked_add(1) {
        Some(next) => log_key(next),
        None => LOG_END.to_vec(),
    }
}

/// The engine key of chunk `index` of the snapshot data stored in `slot`.
pub fn chunk_key(slot: u8, index: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(CHUNK_PREFIX.len() + 5);
    key.extend_from_slice(CHUNK_PREFIX);
    key.push(slot);
    key.extend_from_slice(&index.to_be_bytes());
    key
}

/// The key range `[from, to)` holding every chunk of `slot`.
pub fn chunk_range(slot: u8) -> (Vec<u8>, Vec<u8>) {
    let mut from = CHUNK_PREFIX.to_vec();
    from.push(slot);
    let to = match slot.checked_add(1) {
        Some(next) => {
            let mut to = CHUNK_PREFIX.to_vec();
            to.push(next);
            to
        }
        None => CHUNK_END.to_vec(),
    };
    (from, to)
}

/// The engine key of application record `app_key`.
pub fn app_key(app_key: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(APP_PREFIX.len() + app_key.len());
    key.extend_from_slice(APP_PREFIX);
    key.extend_from_slice(app_key);
    key
}

/// The application's key of an engine key in the `a/` range.
pub fn strip_app_prefix(key: &[u8]) -> Option<&[u8]> {
    key.strip_prefix(APP_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_by_index_and_stay_inside_the_range() {
        let indexes = [0u64, 1, 255, 256, 1 << 40, u64::MAX - 1, u64::MAX];
        for pair in indexes.windows(2) {
            assert!(log_key(pair[0]) < log_key(pair[1]));
        }
        for i in indexes {
            assert!(LOG_PREFIX <= log_key(i).as_slice() && log_key(i).as_slice() < LOG_END);
            assert!(log_key(i) < log_key_after(i));
        }
        assert_eq!(log_key_after(u64::MAX), LOG_END);
    }

    #[test]
    fn chunk_keys_sort_by_slot_then_index_and_stay_inside_their_slot() {
        for slot in [0u8, 1, 255] {
            let (from, to) = chunk_range(slot);
            assert!(CHUNK_PREFIX <= from.as_slice() && to.as_slice() <= CHUNK_END);
            for index in [0u32, 1, 256, u32::MAX] {
                let key = chunk_key(slot, index);
                assert!(from <= key && key < to, "slot {slot} chunk {index}");
            }
            assert!(chunk_key(slot, 1) < chunk_key(slot, 256));
        }
        assert!(chunk_key(0, u32::MAX) < chunk_key(1, 0));
    }

    #[test]
    fn app_keys_stay_inside_the_range() {
        for k in [&b""[..], b"\x00", b"\xff\xff\xff", b"key/1"] {
            let full = app_key(k);
            assert!(APP_PREFIX <= full.as_slice() && full.as_slice() < APP_END);
            assert_eq!(strip_app_prefix(&full), Some(k));
        }
    }
}
