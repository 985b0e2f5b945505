//! Imported key material (Origin EXTERNAL), wrapped with openssl exactly as a user would:
//! parameters, import, use, expiry on the simulated clock, deletion, re-import and rotation.

use kmsim_proto::kms::v1 as pb;

use crate::harness::{kms_err, ok, Cluster};
use crate::openssl::Openssl;

const R: &str = "us-east-1";
const DAY_MS: i64 = 86_400_000;

/// Creates an EXTERNAL key of `spec`/`usage` and waits until every node has it.
async fn external(c: &Cluster, spec: &str, usage: Option<&str>) -> pb::KeyMetadata {
    let md = ok(c
        .kms(R, 2)
        .create_key(pb::CreateKeyRequest {
            origin: Some("EXTERNAL".into()),
            key_spec: Some(spec.into()),
            key_usage: usage.map(str::to_string),
            ..Default::default()
        })
        .await)
    .key_metadata
    .unwrap();
    for n in c.ids(R) {
        c.wait_sees(R, n, md.key_id.as_deref().unwrap()).await;
    }
    md
}

async fn parameters(
    c: &Cluster,
    node: u64,
    key_id: &str,
    alg: &str,
) -> pb::GetParametersForImportResponse {
    ok(c.kms(R, node)
        .get_parameters_for_import(pb::GetParametersForImportRequest {
            key_id: Some(key_id.into()),
            wrapping_algorithm: Some(alg.into()),
            wrapping_key_spec: Some("RSA_2048".into()),
        })
        .await)
}

/// Wraps `material` for `params` with openssl: RSAES-OAEP-SHA-256 of the material itself.
fn wrap_oaep(o: &Openssl, params: &pb::GetParametersForImportResponse, material: &[u8]) -> Vec<u8> {
    o.oaep_sha256(params.public_key.as_ref().unwrap(), material)
}

/// Wraps with RSA_AES_KEY_WRAP_SHA_256: OAEP of an ephemeral AES key, then RFC 5649 key wrap.
fn wrap_aes_kw(
    o: &Openssl,
    params: &pb::GetParametersForImportResponse,
    material: &[u8],
) -> Vec<u8> {
    o.write("material.bin", material);
    o.ok(&["rand", "-out", "aes.bin", "32"]);
    let aes_hex: String = o
        .read("aes.bin")
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let aes_wrapped = o.oaep_sha256(params.public_key.as_ref().unwrap(), &o.read("aes.bin"));
    o.ok(&[
        "enc",
        "-id-aes256-wrap-pad",
        "-K",
        &aes_hex,
        "-iv",
        "A65959A6",
        "-in",
        "material.bin",
        "-out",
        "material.wrapped",
    ]);
    [aes_wrapped, o.read("material.wrapped")].concat()
}

fn import(
    key_id: &str,
    params: &pb::GetParametersForImportResponse,
    wrapped: Vec<u8>,
) -> pb::ImportKeyMaterialRequest {
    pb::ImportKeyMaterialRequest {
        key_id: Some(key_id.into()),
        import_token: params.import_token.clone(),
        encrypted_key_material: Some(wrapped),
        expiration_model: Some("KEY_MATERIAL_DOES_NOT_EXPIRE".into()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn symmetric_material_wrapped_by_openssl_imports_expires_and_reimports() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let o = Openssl::new();
    let md = external(&c, "SYMMETRIC_DEFAULT", None).await;
    let key_id = md.key_id.unwrap();
    let arn = md.arn.unwrap();
    assert_eq!(md.key_state.as_deref(), Some("PendingImport"));
    assert_eq!(md.origin.as_deref(), Some("EXTERNAL"));
    assert!(md.expiration_model.is_none() && md.current_key_material_id.is_none());
    let e = kms_err(
        c.kms(R, 1)
            .encrypt(pb::EncryptRequest {
                key_id: Some(key_id.clone()),
                plaintext: Some(b"x".to_vec()),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(e.message(), format!("{arn} is pending import."));

    o.ok(&["rand", "-out", "aes-material.bin", "32"]);
    let material = o.read("aes-material.bin");
    let params = parameters(&c, 1, &key_id, "RSAES_OAEP_SHA_256").await;
    assert_eq!(params.key_id.as_deref(), Some(arn.as_str()));
    let wrapped = wrap_oaep(&o, &params, &material);

    // Undecryptable wrapped material, and a token of another key, are refused.
    let e = kms_err(
        c.kms(R, 2)
            .import_key_material(import(&key_id, &params, vec![1; 256]))
            .await,
    );
    assert_eq!(e.code(), "InvalidCiphertextException");
    let other = external(&c, "SYMMETRIC_DEFAULT", None).await;
    let e = kms_err(
        c.kms(R, 2)
            .import_key_material(import(
                other.key_id.as_deref().unwrap(),
                &params,
                wrapped.clone(),
            ))
            .await,
    );
    assert_eq!(e.code(), "InvalidImportTokenException");
    let mut forged = params.clone();
    if let Some(t) = forged.import_token.as_mut() {
        let n = t.len() - 1;
        t[n] ^= 1;
    }
    let e = kms_err(
        c.kms(R, 2)
            .import_key_material(import(&key_id, &forged, wrapped.clone()))
            .await,
    );
    assert_eq!(e.code(), "InvalidImportTokenException");
    let mut expires = import(&key_id, &params, wrapped.clone());
    expires.expiration_model = None;
    let e = kms_err(c.kms(R, 2).import_key_material(expires.clone()).await);
    assert_eq!(
        e.message(),
        "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES"
    );

    // Import through node 2 (parameters came from node 1), expiring in one day.
    let now = c.status(R, 1).await.unwrap().clock_now;
    expires.valid_to = Some(now + 86_400.0);
    let imported = ok(c.kms(R, 2).import_key_material(expires).await);
    let material_id = imported.key_material_id.unwrap();
    assert_eq!(material_id.len(), 64);
    let mut blob = None;
    for n in c.ids(R) {
        let md = c
            .wait_key(R, n, &key_id, "imported", |m| {
                m.key_state.as_deref() == Some("Enabled")
            })
            .await;
        assert_eq!(md.expiration_model.as_deref(), Some("KEY_MATERIAL_EXPIRES"));
        assert!(md.valid_to.is_some());
        assert_eq!(
            md.current_key_material_id.as_deref(),
            Some(material_id.as_str())
        );
        let ct = ok(c
            .kms(R, n)
            .encrypt(pb::EncryptRequest {
                key_id: Some(key_id.clone()),
                plaintext: Some(b"imported".to_vec()),
                ..Default::default()
            })
            .await)
        .ciphertext_blob;
        blob.get_or_insert(ct);
    }

    // Other material for the same key: IncorrectKeyMaterialException.
    o.ok(&["rand", "-out", "other.bin", "32"]);
    let params2 = parameters(&c, 3, &key_id, "RSAES_OAEP_SHA_256").await;
    let wrong = wrap_oaep(&o, &params2, &o.read("other.bin"));
    let e = kms_err(
        c.kms(R, 3)
            .import_key_material(import(&key_id, &params2, wrong))
            .await,
    );
    assert_eq!(e.code(), "IncorrectKeyMaterialException");

    // Two simulated days later the material has expired on every node.
    c.advance_clock(R, 2 * DAY_MS).await;
    for n in c.ids(R) {
        let md = c
            .wait_key(R, n, &key_id, "expired", |m| {
                m.key_state.as_deref() == Some("PendingImport")
            })
            .await;
        assert!(md.expiration_model.is_none());
        assert_eq!(
            md.current_key_material_id.as_deref(),
            Some(material_id.as_str())
        );
    }
    // The old token has expired too; fresh parameters and the same material bring it back.
    let e = kms_err(
        c.kms(R, 1)
            .import_key_material(import(&key_id, &params, wrapped))
            .await,
    );
    assert_eq!(e.code(), "ExpiredImportTokenException");
    let params3 = parameters(&c, 1, &key_id, "RSA_AES_KEY_WRAP_SHA_256").await;
    let again = ok(c
        .kms(R, 1)
        .import_key_material(import(
            &key_id,
            &params3,
            wrap_aes_kw(&o, &params3, &material),
        ))
        .await);
    assert_eq!(again.key_material_id.as_deref(), Some(material_id.as_str()));
    for n in c.ids(R) {
        c.wait_key(R, n, &key_id, "re-imported", |m| {
            m.key_state.as_deref() == Some("Enabled")
        })
        .await;
        let d = ok(c
            .kms(R, n)
            .decrypt(pb::DecryptRequest {
                ciphertext_blob: blob.clone().unwrap(),
                ..Default::default()
            })
            .await);
        assert_eq!(d.plaintext.as_deref(), Some(&b"imported"[..]));
    }

    // DeleteImportedKeyMaterial: PendingImport, the key keeps its CurrentKeyMaterialId.
    let del = ok(c
        .kms(R, 3)
        .delete_imported_key_material(pb::DeleteImportedKeyMaterialRequest {
            key_id: Some(key_id.clone()),
            key_material_id: None,
        })
        .await);
    assert_eq!(del.key_material_id.as_deref(), Some(material_id.as_str()));
    for n in c.ids(R) {
        c.wait_key(R, n, &key_id, "deleted", |m| {
            m.key_state.as_deref() == Some("PendingImport")
        })
        .await;
        let e = kms_err(
            c.kms(R, n)
                .decrypt(pb::DecryptRequest {
                    ciphertext_blob: blob.clone().unwrap(),
                    ..Default::default()
                })
                .await,
        );
        assert_eq!(e.message(), format!("{arn} is pending import."));
    }
    // Parameters of an AWS_KMS key are refused with AWS's message.
    let kms_key = crate::t10_basics::create_key(&c, 1, "generated").await;
    let e = kms_err(
        c.kms(R, 1)
            .get_parameters_for_import(pb::GetParametersForImportRequest {
                key_id: kms_key.key_id.clone(),
                wrapping_algorithm: Some("RSAES_OAEP_SHA_256".into()),
                wrapping_key_spec: Some("RSA_2048".into()),
            })
            .await,
    );
    assert_eq!(
        e.message(),
        format!(
            "{} origin is AWS_KMS which is not valid for this operation.",
            kms_key.arn.unwrap()
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn imported_hmac_and_ecc_material_matches_openssl() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let o = Openssl::new();

    // HMAC: kmsim's MAC over the imported key equals openssl's.
    let md = external(&c, "HMAC_256", Some("GENERATE_VERIFY_MAC")).await;
    let key_id = md.key_id.unwrap();
    o.ok(&["rand", "-out", "hmac.bin", "48"]);
    let hmac_key = o.read("hmac.bin");
    let params = parameters(&c, 1, &key_id, "RSAES_OAEP_SHA_256").await;
    ok(c.kms(R, 1)
        .import_key_material(import(&key_id, &params, wrap_oaep(&o, &params, &hmac_key)))
        .await);
    o.write("msg.bin", b"authenticate this");
    let hex: String = hmac_key.iter().map(|b| format!("{b:02x}")).collect();
    let expected = o.ok(&[
        "dgst",
        "-sha256",
        "-mac",
        "HMAC",
        "-macopt",
        &format!("hexkey:{hex}"),
        "-binary",
        "msg.bin",
    ]);
    for n in c.ids(R) {
        c.wait_key(R, n, &key_id, "imported", |m| {
            m.key_state.as_deref() == Some("Enabled")
        })
        .await;
        let mac = ok(c
            .kms(R, n)
            .generate_mac(pb::GenerateMacRequest {
                key_id: Some(key_id.clone()),
                message: Some(b"authenticate this".to_vec()),
                mac_algorithm: Some("HMAC_SHA_256".into()),
                ..Default::default()
            })
            .await)
        .mac;
        assert_eq!(mac.as_deref(), Some(expected.as_slice()));
    }
    // Material of the wrong length for the spec is refused.
    let params = parameters(&c, 2, &key_id, "RSAES_OAEP_SHA_256").await;
    let e = kms_err(
        c.kms(R, 2)
            .import_key_material(import(&key_id, &params, wrap_oaep(&o, &params, &[1; 16])))
            .await,
    );
    assert_eq!(e.code(), "IncorrectKeyMaterialException");

    // ECC: an openssl P-256 private key, wrapped with RSA_AES_KEY_WRAP_SHA_256; kmsim signs
    // and openssl verifies with the public key it derives itself.
    let md = external(&c, "ECC_NIST_P256", Some("SIGN_VERIFY")).await;
    let key_id = md.key_id.unwrap();
    o.ok(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-outform",
        "DER",
        "-out",
        "ec.der",
    ]);
    let own_public = o.ok(&[
        "pkey", "-inform", "DER", "-in", "ec.der", "-pubout", "-outform", "DER",
    ]);
    let e = kms_err(
        c.kms(R, 1)
            .get_parameters_for_import(pb::GetParametersForImportRequest {
                key_id: Some(key_id.clone()),
                wrapping_algorithm: Some("RSAES_PKCS1_V1_5".into()),
                wrapping_key_spec: Some("RSA_2048".into()),
            })
            .await,
    );
    assert_eq!(e.code(), "ValidationException");
    let params = parameters(&c, 3, &key_id, "RSA_AES_KEY_WRAP_SHA_256").await;
    ok(c.kms(R, 3)
        .import_key_material(import(
            &key_id,
            &params,
            wrap_aes_kw(&o, &params, &o.read("ec.der")),
        ))
        .await);
    c.wait_key(R, 1, &key_id, "imported", |m| {
        m.key_state.as_deref() == Some("Enabled")
    })
    .await;
    let public = ok(c
        .kms(R, 1)
        .get_public_key(pb::GetPublicKeyRequest {
            key_id: Some(key_id.clone()),
            ..Default::default()
        })
        .await)
    .public_key
    .unwrap();
    assert_eq!(public, own_public);
    let sig = ok(c
        .kms(R, 1)
        .sign(pb::SignRequest {
            key_id: Some(key_id.clone()),
            message: Some(b"signed with imported material".to_vec()),
            signing_algorithm: Some("ECDSA_SHA_256".into()),
            ..Default::default()
        })
        .await)
    .signature
    .unwrap();
    assert!(o.verifies(
        &own_public,
        "sha256",
        &[],
        b"signed with imported material",
        &sig
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn new_imported_material_pends_until_rotate_key_on_demand() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let o = Openssl::new();
    let md = external(&c, "SYMMETRIC_DEFAULT", None).await;
    let key_id = md.key_id.unwrap();
    let arn = md.arn.unwrap();
    o.ok(&["rand", "-out", "m1.bin", "32"]);
    o.ok(&["rand", "-out", "m2.bin", "32"]);
    let p = parameters(&c, 1, &key_id, "RSAES_OAEP_SHA_256").await;
    let first = ok(c
        .kms(R, 1)
        .import_key_material(import(&key_id, &p, wrap_oaep(&o, &p, &o.read("m1.bin"))))
        .await)
    .key_material_id
    .unwrap();
    c.wait_key(R, 2, &key_id, "imported", |m| {
        m.key_state.as_deref() == Some("Enabled")
    })
    .await;
    let old = ok(c
        .kms(R, 2)
        .encrypt(pb::EncryptRequest {
            key_id: Some(key_id.clone()),
            plaintext: Some(b"old".to_vec()),
            ..Default::default()
        })
        .await)
    .ciphertext_blob;
    c.settle(R).await;
    let e = kms_err(
        c.kms(R, 1)
            .rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
                key_id: Some(key_id.clone()),
            })
            .await,
    );
    assert_eq!(
        e.message(),
        format!("No available key material pending rotation for the key: {arn}.")
    );
    let p = parameters(&c, 2, &key_id, "RSAES_OAEP_SHA_256").await;
    let mut new = import(&key_id, &p, wrap_oaep(&o, &p, &o.read("m2.bin")));
    new.import_type = Some("NEW_KEY_MATERIAL".into());
    new.key_material_description = Some("second material".into());
    let second = ok(c.kms(R, 2).import_key_material(new).await)
        .key_material_id
        .unwrap();
    assert_ne!(first, second);
    c.settle(R).await;
    let all = ok(c
        .kms(R, 3)
        .list_key_rotations(pb::ListKeyRotationsRequest {
            key_id: Some(key_id.clone()),
            include_key_material: Some("ALL_KEY_MATERIAL".into()),
            ..Default::default()
        })
        .await)
    .rotations;
    let states: Vec<_> = all
        .iter()
        .filter_map(|r| r.key_material_state.clone())
        .collect();
    assert_eq!(states, ["CURRENT", "PENDING_ROTATION"]);
    assert_eq!(all[1].import_state.as_deref(), Some("IMPORTED"));
    assert_eq!(
        all[1].key_material_description.as_deref(),
        Some("second material")
    );
    ok(c.kms(R, 3)
        .rotate_key_on_demand(pb::RotateKeyOnDemandRequest {
            key_id: Some(key_id.clone()),
        })
        .await);
    for n in c.ids(R) {
        c.wait_key(R, n, &key_id, "rotated to the imported material", |m| {
            m.current_key_material_id.as_deref() == Some(second.as_str())
        })
        .await;
        let d = ok(c
            .kms(R, n)
            .decrypt(pb::DecryptRequest {
                ciphertext_blob: old.clone(),
                ..Default::default()
            })
            .await);
        assert_eq!(d.key_material_id.as_deref(), Some(first.as_str()));
    }
}
