//! Canonical encoding of an encryption context, the part of the associated data a caller chooses.

use std::collections::BTreeMap;

use crate::encoding::{put_field_u32, put_len_u32};

/// Canonical, injective encoding of an encryption context (bound as associated data; insertion
/// order is irrelevant because a `BTreeMap` iterates in byte-wise sorted key order).
///
/// Format: u32 BE pair count, then for each pair in byte-wise sorted key order: u32 BE length +
/// key bytes, u32 BE length + value bytes. A count or length of `0xFFFF_FFFF` or more (never seen
/// in practice: KMS caps a context at 8 KiB) is written as `0xFFFF_FFFF` followed by the u64 BE
/// value, which keeps the encoding injective without a failure path.
pub fn canonical_encryption_context(ctx: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(ctx));
    encode_into(ctx, &mut out);
    out
}

/// Exact length of [`canonical_encryption_context`] for the common case (every length below the
/// escape), so that callers can size one buffer for all associated data.
pub(crate) fn encoded_len(ctx: &BTreeMap<String, String>) -> usize {
    ctx.iter()
        .fold(4, |acc, (k, v)| acc + 8 + k.len() + v.len())
}

/// Appends the canonical encoding of `ctx` to `out`.
pub(crate) fn encode_into(ctx: &BTreeMap<String, String>, out: &mut Vec<u8>) {
    put_len_u32(out, ctx.len());
    for (key, value) in ctx {
        put_field_u32(out, key.as_bytes());
        put_field_u32(out, value.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_context_is_a_zero_count() {
        assert_eq!(
            canonical_encryption_context(&BTreeMap::new()),
            vec![0, 0, 0, 0]
        );
    }

    #[test]
    fn known_encoding() {
        let encoded = canonical_encryption_context(&ctx(&[("b", "22"), ("a", "1")]));
        let expected: &[u8] = &[
            0, 0, 0, 2, // pairs
            0, 0, 0, 1, b'a', 0, 0, 0, 1, b'1', // a=1
            0, 0, 0, 1, b'b', 0, 0, 0, 2, b'2', b'2', // b=22
        ];
        assert_eq!(encoded, expected);
        assert_eq!(encoded.len(), encoded_len(&ctx(&[("b", "22"), ("a", "1")])));
    }

    #[test]
    fn sorted_byte_wise_not_by_locale() {
        let encoded = canonical_encryption_context(&ctx(&[("a", ""), ("B", ""), ("é", "")]));
        assert_eq!(encoded[8], b'B');
        assert_eq!(encoded[17], b'a');
        assert_eq!(&encoded[26..28], "é".as_bytes());
    }

    #[test]
    fn boundaries_between_keys_and_values_matter() {
        let pairs = [
            ctx(&[("ab", "c")]),
            ctx(&[("a", "bc")]),
            ctx(&[("abc", "")]),
            ctx(&[("", "abc")]),
            ctx(&[("a", "b"), ("c", "")]),
            ctx(&[]),
        ];
        let encodings: Vec<Vec<u8>> = pairs.iter().map(canonical_encryption_context).collect();
        for (i, a) in encodings.iter().enumerate() {
            for b in &encodings[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    fn small_map() -> impl Strategy<Value = BTreeMap<String, String>> {
        // A tiny alphabet makes near-collisions (shared prefixes, shifted boundaries) likely.
        proptest::collection::btree_map("[ab=é]{0,4}", "[ab=é]{0,4}", 0..4)
    }

    /// Test-only inverse: a decoder that reads back every encoding proves the encoding injective.
    fn decode(mut bytes: &[u8]) -> Option<BTreeMap<String, String>> {
        fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            let (head, tail) = (bytes.get(..n)?, bytes.get(n..)?);
            *bytes = tail;
            Some(head)
        }
        fn len(bytes: &mut &[u8]) -> Option<usize> {
            let short = u32::from_be_bytes(take(bytes, 4)?.try_into().ok()?);
            Some(short as usize)
        }
        fn string(bytes: &mut &[u8]) -> Option<String> {
            let n = len(bytes)?;
            String::from_utf8(take(bytes, n)?.to_vec()).ok()
        }
        let count = len(&mut bytes)?;
        let mut map = BTreeMap::new();
        let mut previous: Option<String> = None;
        for _ in 0..count {
            let key = string(&mut bytes)?;
            let value = string(&mut bytes)?;
            // Canonical means strictly increasing keys: any other order would be a second encoding.
            if previous.as_ref().is_some_and(|p| p >= &key) {
                return None;
            }
            previous = Some(key.clone());
            map.insert(key, value);
        }
        bytes.is_empty().then_some(map)
    }

    proptest! {
        #[test]
        fn decodes_back_to_the_same_map(
            map in proptest::collection::btree_map(".{0,6}", ".{0,6}", 0..6)
        ) {
            let encoded = canonical_encryption_context(&map);
            prop_assert_eq!(encoded.len(), encoded_len(&map));
            prop_assert_eq!(decode(&encoded), Some(map));
        }

        #[test]
        fn injective_on_generated_maps(a in small_map(), b in small_map()) {
            prop_assert_eq!(
                a == b,
                canonical_encryption_context(&a) == canonical_encryption_context(&b)
            );
        }

        #[test]
        fn independent_of_insertion_order(
            pairs in proptest::collection::vec(("[a-z]{0,3}", "[a-z]{0,3}"), 0..8),
            seed in any::<u64>(),
        ) {
            // Dedup by key first so that "last insert wins" does not depend on the order.
            let unique: BTreeMap<String, String> = pairs.into_iter().collect();
            let mut shuffled: Vec<(String, String)> = unique.clone().into_iter().collect();
            let len = shuffled.len();
            if len > 1 {
                let mut state = seed;
                for i in (1..len).rev() {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    shuffled.swap(i, (state >> 33) as usize % (i + 1));
                }
            }
            let mut rebuilt = BTreeMap::new();
            for (k, v) in shuffled.into_iter().rev() {
                rebuilt.insert(k, v);
            }
            prop_assert_eq!(
                canonical_encryption_context(&unique),
                canonical_encryption_context(&rebuilt)
            );
        }
    }
}
