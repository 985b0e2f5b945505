//! AES-256-GCM with a detached tag, in place, as every sealed format of this crate uses it: the
//! plaintext is copied once into the output buffer and encrypted there, and a buffer holding
//! plaintext is wiped on failure, so no unwiped plaintext copy is left behind.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use zeroize::{Zeroize, Zeroizing};

/// AES-GCM nonce length (96 bits, drawn at random by every format).
pub(crate) const NONCE_LEN: usize = 12;
/// AES-GCM tag length.
pub(crate) const TAG_LEN: usize = 16;

/// Appends the encryption of `plaintext` and then the tag to `out` (which holds the header).
/// Fails only beyond the AES-GCM limit of 64 GiB; `out` is then wiped, as it held plaintext.
pub(crate) fn seal_appending(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), aes_gcm::Error> {
    let start = out.len();
    out.reserve(plaintext.len() + TAG_LEN);
    out.extend_from_slice(plaintext);
    let cipher = Aes256Gcm::new(key.into());
    match cipher.encrypt_in_place_detached(Nonce::from_slice(nonce), aad, &mut out[start..]) {
        Ok(tag) => {
            out.extend_from_slice(&tag);
            Ok(())
        }
        Err(error) => {
            out.zeroize();
            Err(error)
        }
    }
}

/// Decrypts `sealed` (ciphertext ‖ tag) into a wiped-on-drop buffer. Any failure, including
/// input shorter than a tag, is the same opaque error.
pub(crate) fn open_detached(
    key: &[u8; 32],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, aes_gcm::Error> {
    let ciphertext_len = sealed.len().checked_sub(TAG_LEN).ok_or(aes_gcm::Error)?;
    let (ciphertext, tag) = sealed.split_at(ciphertext_len);
    let mut plaintext = Zeroizing::new(ciphertext.to_vec());
    Aes256Gcm::new(key.into()).decrypt_in_place_detached(
        Nonce::from_slice(nonce),
        aad,
        &mut plaintext,
        Tag::from_slice(tag),
    )?;
    Ok(plaintext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_after_the_header_and_opens() {
        let key = [3u8; 32];
        let nonce = [4u8; NONCE_LEN];
        let mut out = b"header".to_vec();
        seal_appending(&key, &nonce, b"aad", b"plaintext", &mut out).expect("seals");
        assert_eq!(out.len(), 6 + 9 + TAG_LEN);
        assert_eq!(&out[..6], b"header");
        let opened = open_detached(&key, &nonce, b"aad", &out[6..]).expect("opens");
        assert_eq!(&opened[..], b"plaintext");
        assert!(open_detached(&key, &nonce, b"aae", &out[6..]).is_err());
        assert!(open_detached(&key, &nonce, b"aad", &out[6..20]).is_err());
        assert!(open_detached(&key, &nonce, b"aad", &[]).is_err());
    }
}
