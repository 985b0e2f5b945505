//! Secret bytes of any length: private keys, HMAC keys, imported material, shared secrets.

use std::fmt;

use zeroize::Zeroizing;

/// Secret bytes of any length (PKCS#8 private keys, HMAC keys, unwrapped import material, ECDH
/// shared secrets). Wiped on drop, redacted `Debug`, and deliberately without `PartialEq`: a
/// comparison of secrets belongs in constant-time code, not in a derived `==`.
#[derive(Clone)]
pub struct SecretBytes(Zeroizing<Vec<u8>>);

impl SecretBytes {
    /// Takes ownership of `bytes` without copying them, so no unwiped copy is left behind.
    pub fn from_vec(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Copies `bytes` into a wiped-on-drop buffer; the caller remains responsible for its own copy.
    pub fn from_slice(bytes: &[u8]) -> Self {
        Self(Zeroizing::new(bytes.to_vec()))
    }

    /// The raw bytes, for wrapping or for handing to the caller; never log them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes (not secret: the formats reveal it anyway).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Zeroizing<Vec<u8>>> for SecretBytes {
    /// Adopts an already wiped-on-drop buffer, e.g. from [`crate::random_bytes`] or
    /// [`crate::unwrap_secret`].
    fn from(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_bytes_and_redacts_them() {
        let secret = SecretBytes::from_slice(b"hunter2-hunter2");
        assert_eq!(secret.expose(), b"hunter2-hunter2");
        assert_eq!(secret.len(), 15);
        assert!(!secret.is_empty());
        assert_eq!(secret.clone().expose(), secret.expose());
        let debug = format!("{secret:?} {secret:#?}");
        assert!(debug.contains("SecretBytes(<redacted>)"));
        assert!(!debug.contains("hunter"));
        assert!(!debug.contains("104"), "no byte values either: {debug}");

        let empty = SecretBytes::from_vec(Vec::new());
        assert!(empty.is_empty());
        let adopted = SecretBytes::from(Zeroizing::new(vec![1, 2, 3]));
        assert_eq!(adopted.expose(), [1, 2, 3]);
    }
}
