//! The AWS SDK for Rust through the gateway, for the operations of the key types, rotation,
//! imported material, grants and multi-Region keys: each is called and its effect checked,
//! and together with `t40`'s list every operation the endpoint serves is exercised.

use std::time::Duration;

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    AlgorithmSpec, DataKeyPairSpec, EncryptionAlgorithmSpec, ExpirationModelType, GrantOperation,
    KeyAgreementAlgorithmSpec, KeySpec, KeyState, KeyUsageType, MacAlgorithmSpec, MessageType,
    MultiRegionKeyType, OriginType, SigningAlgorithmSpec, WrappingKeySpec,
};
use aws_sdk_kms::Client;

use crate::harness::{wait_for, Cluster};
use crate::openssl::Openssl;

const R: &str = "us-east-1";
const EU: &str = "eu-west-1";
const ROLE: &str = "arn:aws:iam::111122223333:role/app";

/// Creates a key of `spec` and `usage`; returns its ARN.
async fn key_of(sdk: &Client, spec: KeySpec, usage: KeyUsageType) -> String {
    let out = sdk
        .create_key()
        .key_spec(spec)
        .key_usage(usage)
        .send()
        .await
        .unwrap();
    out.key_metadata().unwrap().arn().unwrap().to_string()
}

/// Sign, Verify, GetPublicKey, GenerateMac, VerifyMac, DeriveSharedSecret, RSA Encrypt and
/// Decrypt, GenerateDataKeyPair(WithoutPlaintext).
async fn key_types(sdk: &Client, o: &Openssl) -> Vec<&'static str> {
    let message = Blob::new(b"signed by kmsim".to_vec());
    let signer = key_of(sdk, KeySpec::EccNistP384, KeyUsageType::SignVerify).await;
    let sig = sdk
        .sign()
        .key_id(&signer)
        .message(message.clone())
        .message_type(MessageType::Raw)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha384)
        .send()
        .await
        .unwrap();
    let signature = sig.signature().unwrap().clone();
    let ok = sdk
        .verify()
        .key_id(&signer)
        .message(message.clone())
        .signature(signature.clone())
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha384)
        .send()
        .await
        .unwrap();
    assert!(ok.signature_valid());
    let e = sdk
        .verify()
        .key_id(&signer)
        .message(Blob::new(b"another message".to_vec()))
        .signature(signature.clone())
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha384)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("KMSInvalidSignatureException"));
    let public = sdk.get_public_key().key_id(&signer).send().await.unwrap();
    assert_eq!(public.key_spec(), Some(&KeySpec::EccNistP384));
    assert_eq!(
        public.signing_algorithms(),
        [SigningAlgorithmSpec::EcdsaSha384]
    );
    // An independent implementation verifies the signature with the public key.
    assert!(o.verifies(
        public.public_key().unwrap().as_ref(),
        "sha384",
        &[],
        message.as_ref(),
        signature.as_ref()
    ));

    let mac_key = key_of(sdk, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    let mac = sdk
        .generate_mac()
        .key_id(&mac_key)
        .message(message.clone())
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap();
    let tag = mac.mac().unwrap().clone();
    assert_eq!(tag.as_ref().len(), 32);
    let valid = sdk
        .verify_mac()
        .key_id(&mac_key)
        .message(message.clone())
        .mac(tag.clone())
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap();
    assert!(valid.mac_valid());
    let mut bad = tag.as_ref().to_vec();
    bad[0] ^= 1;
    let e = sdk
        .verify_mac()
        .key_id(&mac_key)
        .message(message.clone())
        .mac(Blob::new(bad))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("KMSInvalidMacException"));

    // ECDH: both sides of two KMS key-agreement keys derive the same secret.
    let a = key_of(sdk, KeySpec::EccNistP256, KeyUsageType::KeyAgreement).await;
    let b = key_of(sdk, KeySpec::EccNistP256, KeyUsageType::KeyAgreement).await;
    let public_of = |k: String| async move {
        let out = sdk.get_public_key().key_id(k).send().await.unwrap();
        out.public_key().unwrap().clone()
    };
    let (pa, pb) = (public_of(a.clone()).await, public_of(b.clone()).await);
    let derive = |k: String, peer: Blob| async move {
        let out = sdk
            .derive_shared_secret()
            .key_id(k)
            .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
            .public_key(peer)
            .send()
            .await
            .unwrap();
        out.shared_secret().unwrap().as_ref().to_vec()
    };
    let ab = derive(a, pb).await;
    assert_eq!(ab.len(), 32);
    assert_eq!(ab, derive(b, pa).await);

    // RSA: a ciphertext made by openssl with the public key decrypts in kmsim.
    let rsa = key_of(sdk, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let rsa_public = public_of(rsa.clone()).await;
    let blob = o.oaep_sha256(rsa_public.as_ref(), b"to an RSA KMS key");
    let dec = sdk
        .decrypt()
        .key_id(&rsa)
        .ciphertext_blob(Blob::new(blob))
        .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .send()
        .await
        .unwrap();
    assert_eq!(dec.plaintext().unwrap().as_ref(), b"to an RSA KMS key");
    let enc = sdk
        .encrypt()
        .key_id(&rsa)
        .plaintext(Blob::new(b"round trip".to_vec()))
        .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha1)
        .send()
        .await
        .unwrap();
    assert_eq!(
        enc.encryption_algorithm(),
        Some(&EncryptionAlgorithmSpec::RsaesOaepSha1)
    );

    // Data key pairs: the private key comes back in clear and as a normal blob.
    let symmetric = sdk.create_key().send().await.unwrap();
    let sym = symmetric.key_metadata().unwrap().key_id().to_string();
    let pair = sdk
        .generate_data_key_pair()
        .key_id(&sym)
        .key_pair_spec(DataKeyPairSpec::EccNistP256)
        .send()
        .await
        .unwrap();
    let opened = sdk
        .decrypt()
        .ciphertext_blob(pair.private_key_ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        opened.plaintext().unwrap().as_ref(),
        pair.private_key_plaintext().unwrap().as_ref()
    );
    assert!(!pair.public_key().unwrap().as_ref().is_empty());
    let pair = sdk
        .generate_data_key_pair_without_plaintext()
        .key_id(&sym)
        .key_pair_spec(DataKeyPairSpec::Rsa2048)
        .send()
        .await
        .unwrap();
    assert!(pair.private_key_ciphertext_blob().is_some());
    vec![
        "Sign",
        "Verify",
        "GetPublicKey",
        "GenerateMac",
        "VerifyMac",
        "DeriveSharedSecret",
        "GenerateDataKeyPair",
        "GenerateDataKeyPairWithoutPlaintext",
    ]
}

/// Enable/Disable/GetKeyRotationStatus, RotateKeyOnDemand, ListKeyRotations.
async fn rotation(sdk: &Client) -> Vec<&'static str> {
    let out = sdk.create_key().send().await.unwrap();
    let key = out.key_metadata().unwrap().key_id().to_string();
    let first = out
        .key_metadata()
        .unwrap()
        .current_key_material_id()
        .unwrap()
        .to_string();
    let old = sdk
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"old".to_vec()))
        .send()
        .await
        .unwrap();
    sdk.enable_key_rotation()
        .key_id(&key)
        .rotation_period_in_days(90)
        .send()
        .await
        .unwrap();
    let status = sdk
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert!(status.key_rotation_enabled());
    assert_eq!(status.rotation_period_in_days(), Some(90));
    assert!(status.next_rotation_date().is_some());
    sdk.rotate_key_on_demand()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let rotations = sdk.list_key_rotations().key_id(&key).send().await.unwrap();
    assert_eq!(rotations.rotations().len(), 1, "{rotations:?}");
    let md = sdk.describe_key().key_id(&key).send().await.unwrap();
    let now = md
        .key_metadata()
        .unwrap()
        .current_key_material_id()
        .unwrap();
    assert_ne!(now, first);
    assert_eq!(rotations.rotations()[0].key_material_id(), Some(now));
    // The old material still decrypts.
    let back = sdk
        .decrypt()
        .ciphertext_blob(old.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"old");
    sdk.disable_key_rotation()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let status = sdk
        .get_key_rotation_status()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert!(!status.key_rotation_enabled());
    vec![
        "EnableKeyRotation",
        "GetKeyRotationStatus",
        "RotateKeyOnDemand",
        "ListKeyRotations",
        "DisableKeyRotation",
    ]
}

/// GetParametersForImport, ImportKeyMaterial (wrapped by openssl), DeleteImportedKeyMaterial.
async fn import(sdk: &Client, o: &Openssl) -> Vec<&'static str> {
    let out = sdk
        .create_key()
        .origin(OriginType::External)
        .send()
        .await
        .unwrap();
    let key = out.key_metadata().unwrap().key_id().to_string();
    assert_eq!(
        out.key_metadata().unwrap().key_state(),
        Some(&KeyState::PendingImport)
    );
    let params = sdk
        .get_parameters_for_import()
        .key_id(&key)
        .wrapping_algorithm(AlgorithmSpec::RsaesOaepSha256)
        .wrapping_key_spec(WrappingKeySpec::Rsa2048)
        .send()
        .await
        .unwrap();
    let material: Vec<u8> = (0..32).map(|i| i * 7 + 1).collect();
    let wrapped = o.oaep_sha256(params.public_key().unwrap().as_ref(), &material);
    sdk.import_key_material()
        .key_id(&key)
        .import_token(params.import_token().unwrap().clone())
        .encrypted_key_material(Blob::new(wrapped))
        .expiration_model(ExpirationModelType::KeyMaterialDoesNotExpire)
        .send()
        .await
        .unwrap();
    let enc = sdk
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"imported".to_vec()))
        .send()
        .await
        .unwrap();
    assert!(enc.ciphertext_blob().is_some());
    sdk.delete_imported_key_material()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let md = sdk.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(
        md.key_metadata().unwrap().key_state(),
        Some(&KeyState::PendingImport)
    );
    vec![
        "GetParametersForImport",
        "ImportKeyMaterial",
        "DeleteImportedKeyMaterial",
    ]
}

/// CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant.
async fn grants(sdk: &Client) -> Vec<&'static str> {
    let out = sdk.create_key().send().await.unwrap();
    let key = out.key_metadata().unwrap().key_id().to_string();
    let grant = |name: &'static str| {
        sdk.create_grant()
            .key_id(&key)
            .grantee_principal(ROLE)
            .retiring_principal(ROLE)
            .operations(GrantOperation::Encrypt)
            .operations(GrantOperation::Decrypt)
            .name(name)
            .send()
    };
    let g1 = grant("first").await.unwrap();
    let g2 = grant("second").await.unwrap();
    let listed = sdk.list_grants().key_id(&key).send().await.unwrap();
    let mut ids: Vec<&str> = listed
        .grants()
        .iter()
        .filter_map(|g| g.grant_id())
        .collect();
    ids.sort();
    let mut want = vec![g1.grant_id().unwrap(), g2.grant_id().unwrap()];
    want.sort();
    assert_eq!(ids, want);
    let retirable = sdk
        .list_retirable_grants()
        .retiring_principal(ROLE)
        .send()
        .await
        .unwrap();
    assert!(retirable
        .grants()
        .iter()
        .any(|g| g.grant_id() == g1.grant_id()));
    sdk.retire_grant()
        .grant_token(g1.grant_token().unwrap())
        .send()
        .await
        .unwrap();
    sdk.revoke_grant()
        .key_id(&key)
        .grant_id(g2.grant_id().unwrap())
        .send()
        .await
        .unwrap();
    let listed = sdk.list_grants().key_id(&key).send().await.unwrap();
    assert!(listed.grants().is_empty(), "{listed:?}");
    vec![
        "CreateGrant",
        "ListGrants",
        "ListRetirableGrants",
        "RetireGrant",
        "RevokeGrant",
    ]
}

/// ReplicateKey into EU, cross-Region decryption, UpdatePrimaryRegion to EU.
async fn multi_region(sdk: &Client, eu: &Client) -> Vec<&'static str> {
    let out = sdk.create_key().multi_region(true).send().await.unwrap();
    let md = out.key_metadata().unwrap();
    let key = md.key_id().to_string();
    assert!(key.starts_with("mrk-"));
    let rep = sdk
        .replicate_key()
        .key_id(&key)
        .replica_region(EU)
        .description("replica")
        .send()
        .await
        .unwrap();
    let replica = rep.replica_key_metadata().unwrap();
    assert_eq!(replica.key_state(), Some(&KeyState::Creating));
    let replica_arn = replica.arn().unwrap().to_string();
    assert_eq!(replica_arn, md.arn().unwrap().replace(R, EU));
    let state = |c: &Client, k: String| {
        let c = c.clone();
        async move {
            let out = c.describe_key().key_id(k).send().await.ok()?;
            let md = out.key_metadata()?;
            let kind = md.multi_region_configuration()?.multi_region_key_type()?;
            Some((md.key_state()?.clone(), kind.clone()))
        }
    };
    wait_for(Duration::from_secs(30), "the replica is Enabled", || {
        let s = state(eu, key.clone());
        async move { s.await.filter(|(s, _)| *s == KeyState::Enabled) }
    })
    .await;
    let blob = sdk
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new(b"across Regions".to_vec()))
        .send()
        .await
        .unwrap();
    let back = eu
        .decrypt()
        .key_id(&replica_arn)
        .ciphertext_blob(blob.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"across Regions");
    assert_eq!(back.key_id(), Some(replica_arn.as_str()));

    sdk.update_primary_region()
        .key_id(&key)
        .primary_region(EU)
        .send()
        .await
        .unwrap();
    wait_for(Duration::from_secs(30), "the hand-over completes", || {
        let (a, b) = (state(sdk, key.clone()), state(eu, key.clone()));
        async move {
            let (a, b) = (a.await?, b.await?);
            (a == (KeyState::Enabled, MultiRegionKeyType::Replica)
                && b == (KeyState::Enabled, MultiRegionKeyType::Primary))
                .then_some(())
        }
    })
    .await;
    vec!["ReplicateKey", "UpdatePrimaryRegion"]
}

#[tokio::test(flavor = "multi_thread")]
async fn the_rust_sdk_calls_the_key_type_rotation_import_grant_and_multi_region_operations() {
    let c = Cluster::start(&[R, EU], 1);
    c.leader(R).await;
    c.leader(EU).await;
    let sdk = c.sdk(&c.gateway_url(), R);
    let eu = c.sdk(&c.gateway_url(), EU);
    let o = Openssl::new();
    let mut called = crate::t40_aws_sdk::every_operation(&sdk, R).await;
    called.extend(key_types(&sdk, &o).await);
    called.extend(rotation(&sdk).await);
    called.extend(import(&sdk, &o).await);
    called.extend(grants(&sdk).await);
    called.extend(multi_region(&sdk, &eu).await);
    let missing: Vec<&str> = kmsim_node::aws::dispatch::OPERATIONS
        .iter()
        .copied()
        .filter(|op| !called.contains(op))
        .collect();
    assert!(
        missing.is_empty(),
        "operations the Rust SDK tests do not call: {missing:?}"
    );
}
