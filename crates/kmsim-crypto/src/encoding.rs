//! Length-prefixed byte encodings shared by every associated-data, KDF-input and signed format.
//!
//! All integers are big-endian. A length that does not fit its prefix (never seen in practice) is
//! written as the all-ones prefix followed by the u64 length, so the encodings stay injective and
//! writing can never fail; [`Reader`] accepts that escape only for lengths that need it, so every
//! value has exactly one encoding.

/// Appends `len` as a u16 BE length prefix (with the u64 escape for `0xFFFF` and above).
pub(crate) fn put_len_u16(out: &mut Vec<u8>, len: usize) {
    match u16::try_from(len) {
        Ok(short) if short != u16::MAX => out.extend_from_slice(&short.to_be_bytes()),
        _ => {
            out.extend_from_slice(&u16::MAX.to_be_bytes());
            // usize is at most 64 bits on every target Rust supports with std.
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// Appends `len` as a u32 BE length prefix (with the u64 escape for `0xFFFF_FFFF` and above).
pub(crate) fn put_len_u32(out: &mut Vec<u8>, len: usize) {
    match u32::try_from(len) {
        Ok(short) if short != u32::MAX => out.extend_from_slice(&short.to_be_bytes()),
        _ => {
            out.extend_from_slice(&u32::MAX.to_be_bytes());
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
}

/// Appends a u16 length prefix and then `bytes`.
pub(crate) fn put_field_u16(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len_u16(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Appends a u32 length prefix and then `bytes`.
pub(crate) fn put_field_u32(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len_u32(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// Bytes one [`put_field_u16`] of `len` bytes takes, for sizing buffers up front.
pub(crate) fn field_u16_len(len: usize) -> usize {
    if len < usize::from(u16::MAX) {
        2 + len
    } else {
        2 + 8 + len
    }
}

/// `prefix` followed by each of `fields` as a [`put_field_u16`], in one exactly sized buffer.
pub(crate) fn prefixed_fields_u16(prefix: &[u8], fields: &[&[u8]]) -> Vec<u8> {
    let len = prefix.len() + fields.iter().map(|f| field_u16_len(f.len())).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(prefix);
    for field in fields {
        put_field_u16(&mut out, field);
    }
    out
}

/// A cursor over untrusted bytes: every read checks bounds and returns `None` instead of
/// panicking, so parsers built on it are safe on any input.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts reading at the first byte of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// The next `n` bytes, if there are that many.
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.rest.len() {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Some(head)
    }

    /// The next byte.
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    /// The next big-endian u64.
    pub(crate) fn u64(&mut self) -> Option<u64> {
        let bytes: [u8; 8] = self.take(8)?.try_into().ok()?;
        Some(u64::from_be_bytes(bytes))
    }

    /// A field written by [`put_field_u16`]; rejects the escape for a length that fits in u16, so
    /// that no value has a second encoding.
    pub(crate) fn field_u16(&mut self) -> Option<&'a [u8]> {
        let short: [u8; 2] = self.take(2)?.try_into().ok()?;
        self.field(u64::from(u16::from_be_bytes(short)), u64::from(u16::MAX))
    }

    /// A field written by [`put_field_u32`]; rejects the escape for a length that fits in u32.
    pub(crate) fn field_u32(&mut self) -> Option<&'a [u8]> {
        let short: [u8; 4] = self.take(4)?.try_into().ok()?;
        self.field(u64::from(u32::from_be_bytes(short)), u64::from(u32::MAX))
    }

    /// The bytes of a field whose short length prefix was `short`, `escape` meaning "a u64
    /// length follows" (accepted only for a length that needs it).
    fn field(&mut self, short: u64, escape: u64) -> Option<&'a [u8]> {
        let len = if short == escape {
            let long = self.u64()?;
            if long < escape {
                return None;
            }
            long
        } else {
            short
        };
        self.take(usize::try_from(len).ok()?)
    }

    /// Whether every byte has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn u16_lengths_use_the_escape_from_0xffff() {
        let mut out = Vec::new();
        put_len_u16(&mut out, 0xFFFF);
        assert_eq!(out, [0xff, 0xff, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        out.clear();
        put_len_u16(&mut out, 0xFFFE);
        assert_eq!(out, [0xff, 0xfe]);
        assert_eq!(field_u16_len(0xFFFE), 2 + 0xFFFE);
        assert_eq!(field_u16_len(0xFFFF), 10 + 0xFFFF);
        assert_eq!(
            prefixed_fields_u16(b"p", &[b"ab", b""]),
            b"p\x00\x02ab\x00\x00"
        );
    }

    #[test]
    fn u32_lengths_use_the_escape_from_0xffff_ffff() {
        let mut out = Vec::new();
        put_len_u32(&mut out, u32::MAX as usize);
        assert_eq!(
            out,
            [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]
        );
        out.clear();
        put_len_u32(&mut out, u32::MAX as usize - 1);
        assert_eq!(out, [0xff, 0xff, 0xff, 0xfe]);
        out.clear();
        put_field_u32(&mut out, b"ab");
        assert_eq!(out, [0, 0, 0, 2, b'a', b'b']);
    }

    #[test]
    fn reader_reads_back_long_fields_and_rejects_a_needless_escape() {
        let long = vec![7u8; 0x1_0000];
        let mut out = Vec::new();
        put_field_u16(&mut out, &long);
        put_field_u16(&mut out, b"x");
        let mut reader = Reader::new(&out);
        assert_eq!(reader.field_u16(), Some(&long[..]));
        assert_eq!(reader.field_u16(), Some(&b"x"[..]));
        assert!(reader.is_empty());

        let needless = [0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, b'x'];
        assert_eq!(Reader::new(&needless).field_u16(), None);
        let huge = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(Reader::new(&huge).field_u16(), None);
    }

    proptest! {
        #[test]
        fn fields_round_trip(fields in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..40), 0..5)
        ) {
            let mut out = Vec::new();
            for field in &fields {
                put_field_u16(&mut out, field);
            }
            prop_assert_eq!(out.len(), fields.iter().map(|f| field_u16_len(f.len())).sum::<usize>());
            let mut reader = Reader::new(&out);
            for field in &fields {
                prop_assert_eq!(reader.field_u16(), Some(&field[..]));
            }
            prop_assert!(reader.is_empty());
        }

        #[test]
        fn reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut reader = Reader::new(&bytes);
            while reader.field_u16().is_some() {}
            let _ = reader.u8();
            let _ = reader.u64();
        }
    }
}
