//! Asymmetric and HMAC keys, key agreement and data key pairs, through every node of a
//! 3-node Region — checked against openssl as the independent implementation.

use kmsim_proto::kms::v1 as pb;

use crate::harness::{kms_err, ok, Cluster};
use crate::openssl::Openssl;

const R: &str = "us-east-1";

/// Creates a key of `spec` and `usage` through node 1 and waits until every node has it.
pub async fn create(c: &Cluster, spec: &str, usage: &str) -> pb::KeyMetadata {
    let md = ok(c
        .kms(R, 1)
        .create_key(pb::CreateKeyRequest {
            key_spec: Some(spec.into()),
            key_usage: Some(usage.into()),
            ..Default::default()
        })
        .await)
    .key_metadata
    .expect("metadata");
    let id = md.key_id.clone().expect("key id");
    for n in c.ids(R) {
        c.wait_sees(R, n, &id).await;
    }
    md
}

#[tokio::test(flavor = "multi_thread")]
async fn signatures_of_every_asymmetric_spec_verify_with_openssl() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let o = Openssl::new();
    let message = b"the message kmsim signs".to_vec();
    // (spec, algorithm, openssl digest, sigopts)
    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("ECC_NIST_P256", "ECDSA_SHA_256", "sha256", &[]),
        ("ECC_NIST_P384", "ECDSA_SHA_384", "sha384", &[]),
        ("ECC_NIST_P521", "ECDSA_SHA_512", "sha512", &[]),
        ("ECC_SECG_P256K1", "ECDSA_SHA_256", "sha256", &[]),
        ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256", "sha256", &[]),
        ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_512", "sha512", &[]),
        (
            "RSA_2048",
            "RSASSA_PSS_SHA_384",
            "sha384",
            &["rsa_padding_mode:pss", "rsa_pss_saltlen:48"],
        ),
        (
            "RSA_3072",
            "RSASSA_PSS_SHA_256",
            "sha256",
            &["rsa_padding_mode:pss", "rsa_pss_saltlen:32"],
        ),
    ];
    for (i, (spec, alg, digest, sigopts)) in cases.iter().enumerate() {
        let md = create(&c, spec, "SIGN_VERIFY").await;
        let key_id = md.key_id.clone().unwrap();
        let arn = md.arn.clone().unwrap();
        assert_eq!(md.key_spec.as_deref(), Some(*spec));
        assert!(md.signing_algorithms.iter().any(|a| a == alg), "{md:?}");
        assert!(md.encryption_algorithms.is_empty());
        assert!(
            md.current_key_material_id.is_none(),
            "only symmetric keys report it"
        );
        // Sign on one node, fetch the public key and verify on the others.
        let signer = (i as u64 % 3) + 1;
        let sig = ok(c
            .kms(R, signer)
            .sign(pb::SignRequest {
                key_id: Some(key_id.clone()),
                message: Some(message.clone()),
                signing_algorithm: Some(alg.to_string()),
                ..Default::default()
            })
            .await);
        assert_eq!(sig.key_id.as_deref(), Some(arn.as_str()));
        let signature = sig.signature.unwrap();
        let public = ok(c
            .kms(R, signer % 3 + 1)
            .get_public_key(pb::GetPublicKeyRequest {
                key_id: Some(key_id.clone()),
                ..Default::default()
            })
            .await);
        assert_eq!(public.key_usage.as_deref(), Some("SIGN_VERIFY"));
        assert_eq!(public.signing_algorithms, md.signing_algorithms);
        let der = public.public_key.unwrap();
        assert!(
            o.verifies(&der, digest, sigopts, &message, &signature),
            "openssl rejects the {spec} {alg} signature"
        );
        assert!(!o.verifies(&der, digest, sigopts, b"another message", &signature));
        for n in c.ids(R) {
            let v = ok(c
                .kms(R, n)
                .verify(pb::VerifyRequest {
                    key_id: Some(key_id.clone()),
                    message: Some(message.clone()),
                    signature: Some(signature.clone()),
                    signing_algorithm: Some(alg.to_string()),
                    ..Default::default()
                })
                .await);
            assert_eq!(v.signature_valid, Some(true));
        }
        // A signature made by openssl with another key never verifies: an exception, not false.
        let mut bad = signature.clone();
        let last = bad.len() - 2;
        bad[last] ^= 0x55;
        let e = kms_err(
            c.kms(R, 2)
                .verify(pb::VerifyRequest {
                    key_id: Some(key_id.clone()),
                    message: Some(message.clone()),
                    signature: Some(bad),
                    signing_algorithm: Some(alg.to_string()),
                    ..Default::default()
                })
                .await,
        );
        assert_eq!(e.code(), "KMSInvalidSignatureException");
        assert_eq!(e.message(), "");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn digest_messages_wrong_algorithms_and_usages_get_the_aws_errors() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let o = Openssl::new();
    let md = create(&c, "ECC_NIST_P384", "SIGN_VERIFY").await;
    let key_id = md.key_id.unwrap();
    let arn = md.arn.unwrap();
    let message = b"digest me".to_vec();
    o.write("m.bin", &message);
    let digest = o.ok(&["dgst", "-sha384", "-binary", "m.bin"]);
    assert_eq!(digest.len(), 48);
    let sign = |message_type: &str, msg: Vec<u8>, alg: &str| pb::SignRequest {
        key_id: Some(key_id.clone()),
        message: Some(msg),
        message_type: Some(message_type.into()),
        signing_algorithm: Some(alg.into()),
        ..Default::default()
    };
    // A signature over the DIGEST equals one over the RAW message: both verify either way.
    let over_digest = ok(c
        .kms(R, 3)
        .sign(sign("DIGEST", digest.clone(), "ECDSA_SHA_384"))
        .await)
    .signature
    .unwrap();
    let public = ok(c
        .kms(R, 1)
        .get_public_key(pb::GetPublicKeyRequest {
            key_id: Some(key_id.clone()),
            ..Default::default()
        })
        .await)
    .public_key
    .unwrap();
    assert!(o.verifies(&public, "sha384", &[], &message, &over_digest));
    ok(c.kms(R, 2)
        .verify(pb::VerifyRequest {
            key_id: Some(key_id.clone()),
            message: Some(message.clone()),
            message_type: Some("RAW".into()),
            signature: Some(over_digest),
            signing_algorithm: Some("ECDSA_SHA_384".into()),
            ..Default::default()
        })
        .await);

    let e = kms_err(
        c.kms(R, 1)
            .sign(sign("DIGEST", vec![0; 32], "ECDSA_SHA_384"))
            .await,
    );
    assert_eq!(e.code(), "ValidationException");
    assert_eq!(
        e.message(),
        "Digest is invalid length for algorithm ECDSA_SHA_384."
    );
    let e = kms_err(
        c.kms(R, 1)
            .sign(sign("RAW", message.clone(), "ECDSA_SHA_256"))
            .await,
    );
    assert_eq!(e.code(), "InvalidKeyUsageException");
    assert_eq!(
        e.message(),
        "Algorithm ECDSA_SHA_256 is incompatible with key spec ECC_NIST_P384."
    );
    let e = kms_err(
        c.kms(R, 1)
            .sign(sign("RAW", message.clone(), "BOGUS"))
            .await,
    );
    assert_eq!(e.code(), "ValidationException");
    assert!(e.message().contains("at 'signingAlgorithm'"), "{e}");
    let e = kms_err(
        c.kms(R, 2)
            .encrypt(pb::EncryptRequest {
                key_id: Some(key_id.clone()),
                plaintext: Some(b"x".to_vec()),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(e.code(), "InvalidKeyUsageException");
    assert_eq!(
        e.message(),
        format!("{arn} key usage is SIGN_VERIFY which is not valid for Encrypt.")
    );

    // CreateKey combinations AWS refuses, with its recorded messages.
    let create_err = |spec: &str, usage: Option<&str>| pb::CreateKeyRequest {
        key_spec: Some(spec.into()),
        key_usage: usage.map(str::to_string),
        ..Default::default()
    };
    let e = kms_err(c.kms(R, 1).create_key(create_err("HMAC_256", None)).await);
    assert_eq!(
        e.message(),
        "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."
    );
    let e = kms_err(
        c.kms(R, 1)
            .create_key(create_err("RSA_2048", Some("KEY_AGREEMENT")))
            .await,
    );
    assert_eq!(e.code(), "ValidationException");
    assert_eq!(
        e.message(),
        "KeyUsage KEY_AGREEMENT is not compatible with KeySpec RSA_2048"
    );
    let e = kms_err(
        c.kms(R, 1)
            .create_key(create_err("ECC_SECG_P256K1", Some("KEY_AGREEMENT")))
            .await,
    );
    assert_eq!(e.code(), "ValidationException");

    // GetPublicKey of a symmetric key; DryRun of Sign.
    let sym = crate::t10_basics::create_key(&c, 1, "symmetric").await;
    let e = kms_err(
        c.kms(R, 3)
            .get_public_key(pb::GetPublicKeyRequest {
                key_id: sym.key_id.clone(),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(e.code(), "UnsupportedOperationException");
    let mut dry = sign("RAW", message.clone(), "ECDSA_SHA_384");
    dry.dry_run = Some(true);
    let e = kms_err(c.kms(R, 2).sign(dry).await);
    assert_eq!(e.code(), "DryRunOperationException");
}

#[tokio::test(flavor = "multi_thread")]
async fn rsa_ciphertexts_made_by_openssl_decrypt_in_kmsim() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let o = Openssl::new();
    let md = create(&c, "RSA_2048", "ENCRYPT_DECRYPT").await;
    let key_id = md.key_id.unwrap();
    assert_eq!(
        md.encryption_algorithms,
        vec![
            "RSAES_OAEP_SHA_1".to_string(),
            "RSAES_OAEP_SHA_256".to_string()
        ]
    );
    let public = ok(c
        .kms(R, 2)
        .get_public_key(pb::GetPublicKeyRequest {
            key_id: Some(key_id.clone()),
            ..Default::default()
        })
        .await)
    .public_key
    .unwrap();
    o.write("pub.der", &public);
    o.write("plain.bin", b"sealed by openssl");
    for (alg, md_name) in [
        ("RSAES_OAEP_SHA_256", "sha256"),
        ("RSAES_OAEP_SHA_1", "sha1"),
    ] {
        let oaep_md = format!("rsa_oaep_md:{md_name}");
        let mgf_md = format!("rsa_mgf1_md:{md_name}");
        o.ok(&[
            "pkeyutl",
            "-encrypt",
            "-pubin",
            "-keyform",
            "DER",
            "-inkey",
            "pub.der",
            "-pkeyopt",
            "rsa_padding_mode:oaep",
            "-pkeyopt",
            &oaep_md,
            "-pkeyopt",
            &mgf_md,
            "-in",
            "plain.bin",
            "-out",
            "ct.bin",
        ]);
        for n in c.ids(R) {
            let d = ok(c
                .kms(R, n)
                .decrypt(pb::DecryptRequest {
                    ciphertext_blob: Some(o.read("ct.bin")),
                    key_id: Some(key_id.clone()),
                    encryption_algorithm: Some(alg.into()),
                    ..Default::default()
                })
                .await);
            assert_eq!(d.plaintext.as_deref(), Some(&b"sealed by openssl"[..]));
            assert_eq!(d.encryption_algorithm.as_deref(), Some(alg));
            assert!(d.key_material_id.is_none());
        }
    }
    // kmsim's own RSA ciphertext round-trips; the size limit is AWS's, with its message.
    let ct = ok(c
        .kms(R, 3)
        .encrypt(pb::EncryptRequest {
            key_id: Some(key_id.clone()),
            plaintext: Some(vec![7; 190]),
            encryption_algorithm: Some("RSAES_OAEP_SHA_256".into()),
            ..Default::default()
        })
        .await)
    .ciphertext_blob
    .unwrap();
    assert_eq!(ct.len(), 256, "a raw RSA-2048 OAEP ciphertext");
    let d = ok(c
        .kms(R, 1)
        .decrypt(pb::DecryptRequest {
            ciphertext_blob: Some(ct.clone()),
            key_id: Some(key_id.clone()),
            encryption_algorithm: Some("RSAES_OAEP_SHA_256".into()),
            ..Default::default()
        })
        .await);
    assert_eq!(d.plaintext, Some(vec![7; 190]));
    let e = kms_err(
        c.kms(R, 1)
            .encrypt(pb::EncryptRequest {
                key_id: Some(key_id.clone()),
                plaintext: Some(vec![7; 191]),
                encryption_algorithm: Some("RSAES_OAEP_SHA_256".into()),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(
        e.message(),
        "Algorithm RSAES_OAEP_SHA_256 and key spec RSA_2048 cannot encrypt data larger than 190 bytes."
    );
    // Decrypting with the other OAEP hash fails like any bad ciphertext.
    let e = kms_err(
        c.kms(R, 2)
            .decrypt(pb::DecryptRequest {
                ciphertext_blob: Some(ct),
                key_id: Some(key_id.clone()),
                encryption_algorithm: Some("RSAES_OAEP_SHA_1".into()),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(e.code(), "InvalidCiphertextException");
    let e = kms_err(
        c.kms(R, 2)
            .encrypt(pb::EncryptRequest {
                key_id: Some(key_id.clone()),
                plaintext: Some(vec![1]),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(e.code(), "InvalidKeyUsageException");
    assert_eq!(
        e.message(),
        "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048."
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn hmac_keys_and_ecdh_shared_secrets() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let o = Openssl::new();
    for (spec, alg, len) in [
        ("HMAC_224", "HMAC_SHA_224", 28),
        ("HMAC_256", "HMAC_SHA_256", 32),
        ("HMAC_384", "HMAC_SHA_384", 48),
        ("HMAC_512", "HMAC_SHA_512", 64),
    ] {
        let md = create(&c, spec, "GENERATE_VERIFY_MAC").await;
        assert_eq!(md.mac_algorithms, vec![alg.to_string()]);
        let key_id = md.key_id.unwrap();
        let mac = ok(c
            .kms(R, 2)
            .generate_mac(pb::GenerateMacRequest {
                key_id: Some(key_id.clone()),
                message: Some(b"mac me".to_vec()),
                mac_algorithm: Some(alg.into()),
                ..Default::default()
            })
            .await)
        .mac
        .unwrap();
        assert_eq!(mac.len(), len);
        for n in c.ids(R) {
            let v = ok(c
                .kms(R, n)
                .verify_mac(pb::VerifyMacRequest {
                    key_id: Some(key_id.clone()),
                    message: Some(b"mac me".to_vec()),
                    mac_algorithm: Some(alg.into()),
                    mac: Some(mac.clone()),
                    ..Default::default()
                })
                .await);
            assert_eq!(v.mac_valid, Some(true));
        }
        let e = kms_err(
            c.kms(R, 3)
                .verify_mac(pb::VerifyMacRequest {
                    key_id: Some(key_id.clone()),
                    message: Some(b"mac me!".to_vec()),
                    mac_algorithm: Some(alg.into()),
                    mac: Some(mac.clone()),
                    ..Default::default()
                })
                .await,
        );
        assert_eq!(e.code(), "KMSInvalidMacException");
        assert_eq!(e.message(), "");
    }
    let hmac = create(&c, "HMAC_224", "GENERATE_VERIFY_MAC").await;
    let e = kms_err(
        c.kms(R, 1)
            .generate_mac(pb::GenerateMacRequest {
                key_id: hmac.key_id.clone(),
                message: Some(b"m".to_vec()),
                mac_algorithm: Some("HMAC_SHA_256".into()),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(
        e.message(),
        "Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_224."
    );
    let sym = crate::t10_basics::create_key(&c, 1, "symmetric").await;
    let e = kms_err(
        c.kms(R, 1)
            .generate_mac(pb::GenerateMacRequest {
                key_id: sym.key_id.clone(),
                message: Some(b"m".to_vec()),
                mac_algorithm: Some("HMAC_SHA_256".into()),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(
        e.message(),
        format!(
            "{} key usage is ENCRYPT_DECRYPT which is not valid for GenerateMac.",
            sym.arn.unwrap()
        )
    );

    // ECDH: kmsim's secret equals openssl's, for every NIST curve.
    for (spec, curve) in [
        ("ECC_NIST_P256", "P-256"),
        ("ECC_NIST_P384", "P-384"),
        ("ECC_NIST_P521", "P-521"),
    ] {
        let md = create(&c, spec, "KEY_AGREEMENT").await;
        assert_eq!(md.key_agreement_algorithms, vec!["ECDH".to_string()]);
        let key_id = md.key_id.unwrap();
        let kms_public = ok(c
            .kms(R, 3)
            .get_public_key(pb::GetPublicKeyRequest {
                key_id: Some(key_id.clone()),
                ..Default::default()
            })
            .await)
        .public_key
        .unwrap();
        o.write("kms_pub.der", &kms_public);
        let curve_opt = format!("ec_paramgen_curve:{curve}");
        o.ok(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            &curve_opt,
            "-outform",
            "DER",
            "-out",
            "peer.der",
        ]);
        let peer_public = o.ok(&[
            "pkey", "-inform", "DER", "-in", "peer.der", "-pubout", "-outform", "DER",
        ]);
        let theirs = o.ok(&[
            "pkeyutl",
            "-derive",
            "-keyform",
            "DER",
            "-inkey",
            "peer.der",
            "-peerform",
            "DER",
            "-peerkey",
            "kms_pub.der",
        ]);
        let ours = ok(c
            .kms(R, 2)
            .derive_shared_secret(pb::DeriveSharedSecretRequest {
                key_id: Some(key_id.clone()),
                key_agreement_algorithm: Some("ECDH".into()),
                public_key: Some(peer_public),
                ..Default::default()
            })
            .await);
        assert_eq!(
            ours.shared_secret.as_deref(),
            Some(theirs.as_slice()),
            "{spec}"
        );
        assert_eq!(ours.key_origin.as_deref(), Some("AWS_KMS"));
        let e = kms_err(
            c.kms(R, 2)
                .derive_shared_secret(pb::DeriveSharedSecretRequest {
                    key_id: Some(key_id.clone()),
                    key_agreement_algorithm: Some("ECDH".into()),
                    public_key: Some(b"not a key".to_vec()),
                    ..Default::default()
                })
                .await,
        );
        assert_eq!(e.code(), "ValidationException");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn data_key_pairs_of_every_spec_are_real_key_pairs() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let o = Openssl::new();
    let key = crate::t10_basics::create_key(&c, 1, "wraps pairs").await;
    let key_id = key.key_id.unwrap();
    let ctx: std::collections::HashMap<String, String> =
        [("purpose".to_string(), "pairs".to_string())].into();
    for spec in [
        "ECC_NIST_P256",
        "ECC_NIST_P384",
        "ECC_NIST_P521",
        "ECC_SECG_P256K1",
        "ECC_NIST_EDWARDS25519",
        "RSA_2048",
    ] {
        let pair = ok(c
            .kms(R, 2)
            .generate_data_key_pair(pb::GenerateDataKeyPairRequest {
                key_id: Some(key_id.clone()),
                key_pair_spec: Some(spec.into()),
                encryption_context: ctx.clone(),
                ..Default::default()
            })
            .await);
        assert_eq!(pair.key_pair_spec.as_deref(), Some(spec));
        assert!(pair.key_material_id.is_some());
        let private = pair.private_key_plaintext.unwrap();
        // openssl reads the PKCS#8 private key and derives the very public key returned.
        o.write("priv.der", &private);
        let derived = o.ok(&[
            "pkey", "-inform", "DER", "-in", "priv.der", "-pubout", "-outform", "DER",
        ]);
        assert_eq!(Some(derived), pair.public_key, "{spec}");
        // The encrypted private key is a normal ciphertext of the symmetric key.
        let d = ok(c
            .kms(R, 3)
            .decrypt(pb::DecryptRequest {
                ciphertext_blob: pair.private_key_ciphertext_blob,
                encryption_context: ctx.clone(),
                ..Default::default()
            })
            .await);
        assert_eq!(d.plaintext, Some(private));
    }
    let without = ok(c
        .kms(R, 1)
        .generate_data_key_pair_without_plaintext(pb::GenerateDataKeyPairWithoutPlaintextRequest {
            key_id: Some(key_id.clone()),
            key_pair_spec: Some("ECC_NIST_P256".into()),
            ..Default::default()
        })
        .await);
    let private = ok(c
        .kms(R, 2)
        .decrypt(pb::DecryptRequest {
            ciphertext_blob: without.private_key_ciphertext_blob,
            ..Default::default()
        })
        .await)
    .plaintext
    .unwrap();
    o.write("priv.der", &private);
    let derived = o.ok(&[
        "pkey", "-inform", "DER", "-in", "priv.der", "-pubout", "-outform", "DER",
    ]);
    assert_eq!(Some(derived), without.public_key);
    let e = kms_err(
        c.kms(R, 1)
            .generate_data_key_pair(pb::GenerateDataKeyPairRequest {
                key_id: Some(key_id.clone()),
                key_pair_spec: Some("SM2".into()),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(e.code(), "UnsupportedOperationException");
    let signing = create(&c, "ECC_NIST_P256", "SIGN_VERIFY").await;
    let e = kms_err(
        c.kms(R, 1)
            .generate_data_key_pair(pb::GenerateDataKeyPairRequest {
                key_id: signing.key_id.clone(),
                key_pair_spec: Some("ECC_NIST_P256".into()),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(e.code(), "InvalidKeyUsageException");
    let e = kms_err(
        c.kms(R, 1)
            .generate_data_key_pair(pb::GenerateDataKeyPairRequest {
                key_id: Some(key_id.clone()),
                key_pair_spec: Some("RSA_2048".into()),
                dry_run: Some(true),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(e.code(), "DryRunOperationException");
}
