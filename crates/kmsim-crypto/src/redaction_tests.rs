//! Every type that holds secret bytes prints none of them: each is filled with material whose
//! bytes are known, formatted with `{:?}` and `{:#?}`, and the output searched for any 8-byte run
//! of the secret, raw, in hex (either case) or as the decimal list a derived `Debug` prints.

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::*;

/// Fails when `text` holds any 8-byte window of `secret` in any of the forms above.
pub(crate) fn assert_hides(what: &str, text: &str, secret: &[u8]) {
    assert!(secret.len() >= 8, "{what}: secret too short to search for");
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    for w in secret.windows(8) {
        let decimal = format!("{w:?}").replace(' ', "");
        let decimal = decimal.trim_matches(['[', ']']);
        let lower = crate::hex::encode_secret(w).to_string();
        let forms = [lower.to_uppercase(), lower, decimal.to_string()];
        for form in &forms {
            assert!(
                !compact.contains(form.as_str()),
                "{what} leaks {form}: {text}"
            );
        }
        assert!(
            !text.as_bytes().windows(8).any(|t| t == w),
            "{what} leaks raw bytes: {text}"
        );
    }
}

fn both(value: &impl std::fmt::Debug) -> String {
    format!("{value:?}\n{value:#?}")
}

#[test]
fn secret_holding_types_print_no_secret_bytes() {
    let mut rng = StdRng::seed_from_u64(8);

    let raw: Vec<u8> = (0u8..32)
        .map(|i| i.wrapping_mul(29).wrapping_add(7))
        .collect();
    let material = KeyMaterial::from_bytes(&raw).expect("32 bytes");
    assert_hides("KeyMaterial", &both(&material), &raw);
    assert_hides("SecretBytes", &both(&SecretBytes::from_slice(&raw)), &raw);
    let domain = DomainKey::from_bytes(&raw).expect("32 bytes");
    assert_hides("DomainKey", &both(&domain), &raw);

    let transport = TransportKeyPair::generate(&mut rng);
    let der = transport.to_pkcs8_der();
    assert_hides("TransportKeyPair", &both(&transport), der.expose());

    let anchor = TrustAnchor::generate(&mut rng);
    let der = anchor.to_pkcs8_der();
    assert_hides("TrustAnchor", &both(&anchor), der.expose());

    let (private, der) =
        PrivateKey::generate_parsed(AsymmetricSpec::EccNistP256, &mut rng).expect("generate");
    assert_hides("PrivateKey", &both(&private), der.expose());

    let wrapping = ImportWrappingKey::generate(2048, &mut rng).expect("generate");
    let der = wrapping.to_pkcs8_der();
    assert_hides("ImportWrappingKey", &both(&wrapping), der.expose());

    let (pair_private, _public) =
        generate_data_key_pair(DataKeyPairSpec::EccNistP256, &mut rng).expect("generate");
    assert_hides("data key pair", &both(&pair_private), pair_private.expose());
}
