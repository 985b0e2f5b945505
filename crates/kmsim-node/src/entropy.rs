//! The randomness seam: node code draws every random value (key material, IVs, key IDs)
//! through [`Entropy`] instead of calling a generator directly.

use rand::rngs::ThreadRng;
use rand::RngCore;

/// The node's source of randomness: rand's thread-local CSPRNG (ChaCha12, seeded from and
/// periodically reseeded by the operating system), so the hot path makes no system call per
/// nonce.
#[derive(Debug, Clone, Default)]
pub struct Entropy;

impl Entropy {
    /// A cryptographically secure generator.
    pub fn rng(&self) -> ThreadRng {
        rand::thread_rng()
    }

    /// `N` random bytes.
    pub fn bytes<const N: usize>(&self) -> [u8; N] {
        let mut b = [0u8; N];
        self.rng().fill_bytes(&mut b);
        b
    }
}
