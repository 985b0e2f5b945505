//! Hex encoding and decoding that never copies secrets into buffers that are not wiped.

use zeroize::Zeroizing;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Appends the lowercase hex of `bytes` to `out`; `out` must have room so that it never reallocates
/// (a reallocation would leave a stale copy of a secret behind in freed memory).
pub(crate) fn encode_into(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

/// Lowercase hex of `bytes` in a buffer that is wiped on drop.
pub(crate) fn encode_secret(bytes: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(bytes.len() * 2));
    encode_into(bytes, &mut out);
    out
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes exactly `2 * N` hex digits into `N` bytes; on error returns the offending position,
/// never the character itself, because it is part of a secret.
pub(crate) fn decode_exact<const N: usize>(text: &[u8]) -> Result<Zeroizing<[u8; N]>, HexError> {
    if text.len() != 2 * N {
        return Err(HexError::Length(text.len()));
    }
    let mut out = Zeroizing::new([0u8; N]);
    for (i, pair) in text.chunks_exact(2).enumerate() {
        let hi = nibble(pair[0]).ok_or(HexError::Digit(2 * i))?;
        let lo = nibble(pair[1]).ok_or(HexError::Digit(2 * i + 1))?;
        out[i] = (hi << 4) | lo;
    }
    Ok(out)
}

/// Why a hex string did not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HexError {
    /// The number of characters that were found.
    Length(usize),
    /// Position of the first character that is not a hex digit.
    Digit(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_all_byte_values() {
        let bytes: Vec<u8> = (0..=255u8).collect();
        let text = encode_secret(&bytes);
        assert_eq!(&text[..4], "0001");
        assert_eq!(&text[text.len() - 2..], "ff");
        let mut back = Vec::new();
        for chunk in text.as_bytes().chunks(64) {
            back.extend_from_slice(&*decode_exact::<32>(chunk).expect("valid hex"));
        }
        assert_eq!(back, bytes);
    }

    #[test]
    fn accepts_uppercase_and_reports_position_of_bad_digit() {
        let upper = "AB".repeat(32);
        assert_eq!(
            *decode_exact::<32>(upper.as_bytes()).expect("valid hex"),
            [0xab; 32]
        );
        let mut bad = "00".repeat(32).into_bytes();
        bad[17] = b'g';
        assert_eq!(
            decode_exact::<32>(&bad).map(|_| ()),
            Err(HexError::Digit(17))
        );
        assert_eq!(
            decode_exact::<32>(b"00").map(|_| ()),
            Err(HexError::Length(2))
        );
    }
}
