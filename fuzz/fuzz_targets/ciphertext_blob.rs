//! Arbitrary bytes into `CiphertextBlob::parse` and `open`: neither may panic, and since the
//! fuzzer cannot forge a tag, `open` must never succeed.
#![no_main]

use std::collections::BTreeMap;

use kmsim_crypto::{CiphertextBlob, CryptoError, KeyMaterial};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let material = match KeyMaterial::from_bytes(&[0x42; 32]) {
        Ok(material) => material,
        Err(_) => return,
    };
    let mut ctx = BTreeMap::new();
    ctx.insert("purpose".to_string(), "fuzz".to_string());
    match CiphertextBlob::parse(data) {
        Ok(blob) => {
            let _ = (blob.key_id(), blob.material_version());
            assert_eq!(
                blob.open(&material, &ctx).map(|_| ()),
                Err(CryptoError::InvalidCiphertext)
            );
        }
        Err(err) => assert_eq!(err, CryptoError::InvalidCiphertext),
    }
});
