//! Random values drawn from a caller-supplied generator (never a global one), so that a
//! simulation with a seeded generator replays exactly.

use rand::{CryptoRng, RngCore};
use zeroize::Zeroizing;

use crate::hex::encode_into;

/// `n` random bytes, for GenerateRandom and GenerateDataKey; the caller bounds `n`.
pub fn random_bytes(n: usize, rng: &mut (impl RngCore + CryptoRng)) -> Zeroizing<Vec<u8>> {
    let mut bytes = Zeroizing::new(vec![0u8; n]);
    rng.fill_bytes(&mut bytes);
    bytes
}

/// 64 lowercase hex characters (a KeyMaterialId as AWS prints it) drawn from `rng`.
pub fn random_hex64(rng: &mut (impl RngCore + CryptoRng)) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    let mut out = String::with_capacity(64);
    encode_into(&bytes, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn random_bytes_has_the_length_and_follows_the_seed() {
        let mut rng = StdRng::seed_from_u64(1);
        assert!(random_bytes(0, &mut rng).is_empty());
        assert_eq!(random_bytes(1024, &mut rng).len(), 1024);
        let a = random_bytes(32, &mut StdRng::seed_from_u64(9));
        let b = random_bytes(32, &mut StdRng::seed_from_u64(9));
        assert_eq!(a, b);
        assert_ne!(*a, vec![0u8; 32]);
    }

    #[test]
    fn random_hex64_is_64_lowercase_hex() {
        let mut rng = StdRng::seed_from_u64(2);
        let a = random_hex64(&mut rng);
        let b = random_hex64(&mut rng);
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')));
        assert_ne!(a, b);
    }
}
