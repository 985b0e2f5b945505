//! HMAC keys and GenerateMac / VerifyMac (raw RFC 2104 HMAC, never truncated).
//!
//! `hmac` 0.12 keeps its keyed inner and outer hash states in ordinary memory that is not wiped
//! when the instance is dropped; the key bytes themselves stay in the caller's [`SecretBytes`].

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::{CryptoRng, RngCore};
use sha2::{Sha224, Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;

use crate::{random_bytes, HmacSpec, MacAlgorithm, SecretBytes};

/// Fresh key material for an HMAC key of `spec`: [`HmacSpec::key_len`] bytes from `rng`.
pub fn generate_hmac_key(spec: HmacSpec, rng: &mut (impl RngCore + CryptoRng)) -> SecretBytes {
    SecretBytes::from(random_bytes(spec.key_len(), rng))
}

/// HMAC of `msg` under `key` with `alg`'s hash (RFC 2104; any key length, as HMAC defines it). The
/// caller checks that `alg` is [`HmacSpec::algorithm`] of the key.
pub fn hmac(alg: MacAlgorithm, key: &[u8], msg: &[u8]) -> Vec<u8> {
    match alg {
        MacAlgorithm::HmacSha224 => compute::<Hmac<Sha224>>(key, msg),
        MacAlgorithm::HmacSha256 => compute::<Hmac<Sha256>>(key, msg),
        MacAlgorithm::HmacSha384 => compute::<Hmac<Sha384>>(key, msg),
        MacAlgorithm::HmacSha512 => compute::<Hmac<Sha512>>(key, msg),
    }
}

/// Whether `mac` is the HMAC of `msg` under `key` with `alg`, compared in constant time. A MAC
/// of another length (e.g. truncated) is never valid; its length is no secret.
pub fn hmac_verify(alg: MacAlgorithm, key: &[u8], msg: &[u8], mac: &[u8]) -> bool {
    let expected = hmac(alg, key, msg);
    expected.len() == mac.len() && bool::from(expected.ct_eq(mac))
}

fn compute<M: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let mut mac =
        <M as KeyInit>::new_from_slice(key).expect("invariant: hmac accepts keys of any length");
    mac.update(msg);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    use super::*;

    fn unhex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// RFC 4231 §4 test cases 1, 2, 3, 4, 6 and 7 (case 5 is a truncated MAC, which KMS never
    /// returns): (key, data, HMAC-SHA-224, -256, -384, -512). The values are the RFC's, and were
    /// reproduced with Python's `hmac` while writing this.
    const RFC_4231: &[(&str, &str, [&str; 4])] = &[
        (
            "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b",
            "4869205468657265",
            [
                "896fb1128abbdf196832107cd49df33f47b4b1169912ba4f53684b22",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
                "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6",
                "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854",
            ],
        ),
        (
            "4a656665",
            "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
            [
                "a30e01098bc6dbbf45690f3a7e9e6d0f8bbea2a39e6148008fd05e44",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
                "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649",
                "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737",
            ],
        ),
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd",
            [
                "7fb3cb3588c6c1f6ffa9694d7d6ad2649365b0c1f65d69d1ec8333ea",
                "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
                "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27",
                "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb",
            ],
        ),
        (
            "0102030405060708090a0b0c0d0e0f10111213141516171819",
            "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
            [
                "6c11506874013cac6a2abc1bb382627cec6a90d86efc012de7afec5a",
                "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b",
                "3e8a69b7783c25851933ab6290af6ca77a9981480850009cc5577c6e1f573b4e6801dd23c4a7d679ccf8a386c674cffb",
                "b0ba465637458c6990e5a8c5f61d4af7e576d97ff94b872de76f8050361ee3dba91ca5c11aa25eb4d679275cc5788063a5f19741120c4f2de2adebeb10a298dd",
            ],
        ),
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048617368204b6579204669727374",
            [
                "95e9a0db962095adaebe9b2d6f0dbce2d499f112f2d2b7273fa6870e",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
                "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952",
                "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598",
            ],
        ),
        (
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "5468697320697320612074657374207573696e672061206c6172676572207468616e20626c6f636b2d73697a65206b657920616e642061206c6172676572207468616e20626c6f636b2d73697a6520646174612e20546865206b6579206e6565647320746f20626520686173686564206265666f7265206265696e6720757365642062792074686520484d414320616c676f726974686d2e",
            [
                "3a854166ac5d9f023f54d517d0b39dbd946770db9c2b95c9f6f565d1",
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
                "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e",
                "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58",
            ],
        ),
    ];

    #[test]
    fn rfc_4231_vectors_for_all_four_sizes() {
        for (key, data, macs) in RFC_4231 {
            let (key, data) = (unhex(key), unhex(data));
            for (alg, expected) in MacAlgorithm::ALL.iter().zip(macs) {
                let expected = unhex(expected);
                assert_eq!(hmac(*alg, &key, &data), expected, "{alg}");
                assert_eq!(expected.len(), alg.mac_len());
                assert!(hmac_verify(*alg, &key, &data, &expected));
            }
        }
    }

    #[test]
    fn verify_rejects_other_macs_keys_messages_and_lengths() {
        let key = [7u8; 32];
        let mac = hmac(MacAlgorithm::HmacSha256, &key, b"message");
        assert!(hmac_verify(
            MacAlgorithm::HmacSha256,
            &key,
            b"message",
            &mac
        ));
        assert!(!hmac_verify(
            MacAlgorithm::HmacSha256,
            &key,
            b"messagf",
            &mac
        ));
        assert!(!hmac_verify(
            MacAlgorithm::HmacSha256,
            &[8u8; 32],
            b"message",
            &mac
        ));
        assert!(!hmac_verify(
            MacAlgorithm::HmacSha256,
            &key,
            b"message",
            &mac[..16]
        ));
        assert!(!hmac_verify(
            MacAlgorithm::HmacSha256,
            &key,
            b"message",
            &[]
        ));
        let mut longer = mac.clone();
        longer.push(0);
        assert!(!hmac_verify(
            MacAlgorithm::HmacSha256,
            &key,
            b"message",
            &longer
        ));
        for i in 0..mac.len() {
            let mut flipped = mac.clone();
            flipped[i] ^= 0x80;
            assert!(!hmac_verify(
                MacAlgorithm::HmacSha256,
                &key,
                b"message",
                &flipped
            ));
        }
        // The same key under another algorithm is another MAC.
        assert!(!hmac_verify(
            MacAlgorithm::HmacSha512,
            &key,
            b"message",
            &mac
        ));
    }

    #[test]
    fn generated_keys_have_the_spec_length_and_follow_the_rng() {
        for spec in HmacSpec::ALL {
            let a = generate_hmac_key(*spec, &mut StdRng::seed_from_u64(5));
            let b = generate_hmac_key(*spec, &mut StdRng::seed_from_u64(5));
            assert_eq!(a.len(), spec.key_len());
            assert_eq!(a.expose(), b.expose());
            assert!(spec.import_len_range().contains(&a.len()));
            let mac = hmac(spec.algorithm(), a.expose(), b"m");
            assert_eq!(mac.len(), spec.algorithm().mac_len());
        }
    }
}
