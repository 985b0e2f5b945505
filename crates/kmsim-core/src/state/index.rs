//! Secondary records kept beside the key and alias records, so that periodic work reads only
//! the keys it concerns instead of every key of the Region:
//!
//! | record                                 | present while |
//! |----------------------------------------|---------------|
//! | `idx/due/<ms, 20 digits>/<key ID>`     | the key has something to do at that time: its deletion date (`PendingDeletion`), its next automatic rotation (when the rules let it rotate here), the `ValidTo` of imported material |
//! | `idx/sync/<key ID>`                    | the synchronizer may have work for the key: a multi-Region key whose primary is here, or a key handing its primary over |
//! | `idx/alias-of/<key ID>/<alias name>`   | the alias points at the key |
//!
//! Every entry is a function of one key or alias record ([`key_entries`], [`alias_entry`]); the
//! state rewrites a record's entries whenever it writes the record, so the indexes never
//! drift from the records. They only narrow the search: the readers re-check each key they
//! find with the same rule as before.

use std::collections::BTreeSet;

use super::material::automatic_rotation_due;
use super::records::{prefix_end, Records};
use super::AliasRecord;
use crate::ids::{KeyId, Region};
use crate::key::{KeyRecord, KeyState};

const DUE_PREFIX: &[u8] = b"idx/due/";
const SYNC_PREFIX: &[u8] = b"idx/sync/";
const ALIAS_OF_PREFIX: &[u8] = b"idx/alias-of/";

/// `idx/due/<ms>/` for a time: zero-padded so entries sort by time (times before 1970 sort
/// first, as 0).
fn due_time_prefix(ms: i64) -> Vec<u8> {
    let ms = u64::try_from(ms).unwrap_or(0);
    [DUE_PREFIX, format!("{ms:020}/").as_bytes()].concat()
}

/// The index entries of a key record in the Region `here`.
pub(super) fn key_entries(k: &KeyRecord, here: &Region) -> BTreeSet<Vec<u8>> {
    let id = k.key_id.as_str().as_bytes();
    let mut entries = BTreeSet::new();
    let mut due = |ms: i64| {
        entries.insert([due_time_prefix(ms).as_slice(), id].concat());
    };
    if k.regional.state == KeyState::PendingDeletion {
        if let Some(ms) = k.regional.deletion_ms {
            due(ms);
        }
    }
    if rotates_here(k, here) && automatic_rotation_due(k, i64::MAX) {
        if let Some(ms) = k.shared.rotation.next_rotation_ms {
            due(ms);
        }
    }
    for (version, m) in &k.regional.materials {
        let valid_to = m.import.as_ref().and_then(|i| i.valid_to_ms);
        if let (Some(ms), Some(_)) = (valid_to, k.shared.material(*version)) {
            due(ms);
        }
    }
    let primary_here = k.shared.mrk.as_ref().is_some_and(|m| m.primary == *here);
    // A replica still `Creating` is the synchronizer's too: if its primary never committed
    // the ReplicateKey that made it, the synchronizer takes it back.
    let creating_replica =
        !primary_here && k.shared.mrk.is_some() && k.regional.state == KeyState::Creating;
    if primary_here || k.regional.sync.handover.is_some() || creating_replica {
        entries.insert([SYNC_PREFIX, id].concat());
    }
    entries
}

/// Whether automatic rotation of `k` happens in Region `here`: only the primary rotates a
/// multi-Region key; replicas get the material from it.
pub(super) fn rotates_here(k: &KeyRecord, here: &Region) -> bool {
    k.shared.mrk.as_ref().is_none_or(|m| m.primary == *here)
}

/// The index entry of an alias.
pub(super) fn alias_entry(a: &AliasRecord) -> Vec<u8> {
    [
        ALIAS_OF_PREFIX,
        a.target.as_str().as_bytes(),
        b"/",
        a.name.as_str().as_bytes(),
    ]
    .concat()
}

/// The IDs of keys with an entry due at or before `now_ms`, each once, in ID order.
pub(super) fn due_until(records: &Records, now_ms: i64) -> BTreeSet<KeyId> {
    let mut ids = BTreeSet::new();
    let end = match now_ms.checked_add(1) {
        Some(next) => due_time_prefix(next),
        None => prefix_end(DUE_PREFIX),
    };
    records.for_each(DUE_PREFIX, &end, |k, _| {
        // `<ms>/` is 21 bytes after the prefix.
        let id = k.get(DUE_PREFIX.len() + 21..).unwrap_or_default();
        ids.extend(parse_key_id(id));
        true
    });
    ids
}

/// The IDs of the keys with a sync entry, in ID order.
pub(super) fn sync_keys(records: &Records) -> Vec<KeyId> {
    let mut ids = Vec::new();
    records.for_each(SYNC_PREFIX, &prefix_end(SYNC_PREFIX), |k, _| {
        ids.extend(parse_key_id(&k[SYNC_PREFIX.len()..]));
        true
    });
    ids
}

/// The names of the aliases of key `id`, as bytes, in name order.
pub(super) fn aliases_of(records: &Records, id: &KeyId) -> Vec<Vec<u8>> {
    let prefix = [ALIAS_OF_PREFIX, id.as_str().as_bytes(), b"/"].concat();
    let mut names = Vec::new();
    records.for_each(&prefix, &prefix_end(&prefix), |k, _| {
        names.push(k[prefix.len()..].to_vec());
        true
    });
    names
}

fn parse_key_id(bytes: &[u8]) -> Option<KeyId> {
    std::str::from_utf8(bytes).ok().and_then(KeyId::parse)
}
