//! The randomness seam: node code draws every random value (key material, IVs, key IDs)
//! through [`Entropy`] instead of calling the OS generator directly.

use rand::rngs::OsRng;
use rand::RngCore;

/// The node's source of randomness (the OS CSPRNG).
#[derive(Debug, Clone, Default)]
pub struct Entropy;

impl Entropy {
    /// A cryptographically secure generator.
    pub fn rng(&self) -> OsRng {
        OsRng
    }

    /// `N` random bytes.
    pub fn bytes<const N: usize>(&self) -> [u8; N] {
        let mut b = [0u8; N];
        OsRng.fill_bytes(&mut b);
        b
    }
}
