//! Secrets stay secret: the files the launcher writes that hold secrets are owner-only, and a
//! cluster logging at `trace` writes no plaintext, data key or key material it handled into any
//! log or any file of its data directory.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::json;

use kmsim_proto::admin::v1::DebugKeyMaterialRequest;
use kmsim_proto::kms::v1 as pb;
use kmsim_sim::cluster::ClusterDir;

use crate::harness::{ok, Cluster};
use crate::openssl::Openssl;
use crate::t10_basics::create_key;
use crate::t60_security::files_under;

const R: &str = "us-east-1";
const R2: &str = "eu-west-1";

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// The layout `kmsim up` creates (two Regions: domain keys, transport keys, a trust anchor): the
/// topology (it holds the secret access key) and every file under `keys/` are 0600, `keys/`
/// itself 0700, whatever the umask.
#[cfg(unix)]
#[test]
fn files_holding_secrets_are_readable_by_their_owner_only() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ClusterDir::new(tmp.path().join("cluster"));
    let spec = vec![(R.to_string(), 1), (R2.to_string(), 1)];
    dir.create(&spec, 0, 0, true, false).unwrap();
    let topology = dir.topology_path();
    assert!(std::fs::read_to_string(&topology)
        .unwrap()
        .contains("secret_access_key"));
    assert_eq!(mode(&topology), 0o600, "{}", topology.display());
    let keys = tmp.path().join("cluster").join("keys");
    assert_eq!(mode(&keys), 0o700);
    let mut files = Vec::new();
    files_under(&keys, &mut files);
    assert!(
        files.len() >= 5,
        "domain, transport and anchor keys: {files:?}"
    );
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
}

/// The forms a secret could take in a log or a file.
fn forms(secret: &[u8]) -> Vec<Vec<u8>> {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        secret.to_vec(),
        hex.clone().into_bytes(),
        hex.to_uppercase().into_bytes(),
        STANDARD.encode(secret).into_bytes(),
        STANDARD
            .encode(secret)
            .trim_end_matches('=')
            .as_bytes()
            .to_vec(),
        format!("{secret:?}").replace(' ', "").into_bytes(),
    ]
}

/// A cluster at `KMSIM_LOG=trace` encrypts a known plaintext (gRPC and AWS JSON, through the
/// gateway and a node), hands out a data key, imports known material and generates material;
/// afterwards no log and no file of the data directory holds any of them in any form.
#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_logging_at_trace_writes_no_plaintext_or_material_anywhere() {
    let c = Cluster::start_with_env(&[R], 3, &[("KMSIM_LOG", "trace")]);
    let leader = c.leader(R).await;
    let mut secrets: Vec<(&str, Vec<u8>)> = Vec::new();

    let plaintext = b"kmsim trace scan: the plaintext nobody may log 0xC0FFEE".to_vec();
    let key = create_key(&c, leader, "trace scan").await.key_id.unwrap();
    let material = ok(c
        .admin(R, leader)
        .debug_key_material(DebugKeyMaterialRequest {
            key_id: key.clone(),
        })
        .await)
    .material;
    secrets.extend(material.into_iter().map(|m| ("generated material", m)));

    // gRPC on every node: Encrypt, Decrypt, GenerateDataKey.
    for id in c.ids(R) {
        let blob = ok(c
            .kms(R, id)
            .encrypt(pb::EncryptRequest {
                key_id: Some(key.clone()),
                plaintext: Some(plaintext.clone()),
                ..Default::default()
            })
            .await)
        .ciphertext_blob
        .unwrap();
        let back = ok(c
            .kms(R, id)
            .decrypt(pb::DecryptRequest {
                ciphertext_blob: Some(blob),
                ..Default::default()
            })
            .await)
        .plaintext
        .unwrap();
        assert_eq!(back, plaintext);
        let data_key = ok(c
            .kms(R, id)
            .generate_data_key(pb::GenerateDataKeyRequest {
                key_id: Some(key.clone()),
                key_spec: Some("AES_256".into()),
                ..Default::default()
            })
            .await)
        .plaintext
        .unwrap();
        secrets.push(("data key (gRPC)", data_key));
    }
    secrets.push(("plaintext", plaintext.clone()));

    // AWS JSON, through the gateway and directly: Encrypt, Decrypt, GenerateDataKey.
    for url in [c.gateway_url(), c.aws_url(R, 2)] {
        let client = c.raw(&url, R);
        let a = client
            .call(
                "Encrypt",
                &json!({"KeyId": key, "Plaintext": STANDARD.encode(&plaintext)}),
            )
            .await
            .unwrap();
        assert!(a.status.is_success(), "{:?}", a.body);
        let blob = a.json()["CiphertextBlob"].as_str().unwrap().to_string();
        let a = client
            .call("Decrypt", &json!({"CiphertextBlob": blob}))
            .await
            .unwrap();
        assert_eq!(
            a.json()["Plaintext"].as_str(),
            Some(STANDARD.encode(&plaintext).as_str())
        );
        let a = client
            .call(
                "GenerateDataKey",
                &json!({"KeyId": key, "KeySpec": "AES_256"}),
            )
            .await
            .unwrap();
        let data_key = STANDARD
            .decode(a.json()["Plaintext"].as_str().unwrap())
            .unwrap();
        secrets.push(("data key (AWS JSON)", data_key));
    }

    // Imported material whose bytes the test chose.
    let imported: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(73) ^ 0x5a).collect();
    let external = ok(c
        .kms(R, leader)
        .create_key(pb::CreateKeyRequest {
            origin: Some("EXTERNAL".into()),
            ..Default::default()
        })
        .await)
    .key_metadata
    .unwrap()
    .key_id
    .unwrap();
    let params = ok(c
        .kms(R, leader)
        .get_parameters_for_import(pb::GetParametersForImportRequest {
            key_id: Some(external.clone()),
            wrapping_algorithm: Some("RSAES_OAEP_SHA_256".into()),
            wrapping_key_spec: Some("RSA_2048".into()),
        })
        .await);
    let o = Openssl::new();
    let wrapped = o.oaep_sha256(params.public_key.as_ref().unwrap(), &imported);
    ok(c.kms(R, leader)
        .import_key_material(pb::ImportKeyMaterialRequest {
            key_id: Some(external.clone()),
            import_token: params.import_token.clone(),
            encrypted_key_material: Some(wrapped),
            expiration_model: Some("KEY_MATERIAL_DOES_NOT_EXPIRE".into()),
            ..Default::default()
        })
        .await);
    for id in c.ids(R) {
        c.wait_sees(R, id, &external).await;
    }
    let blob = ok(c
        .kms(R, leader)
        .encrypt(pb::EncryptRequest {
            key_id: Some(external.clone()),
            plaintext: Some(plaintext.clone()),
            ..Default::default()
        })
        .await)
    .ciphertext_blob
    .unwrap();
    assert!(!blob.is_empty());
    secrets.push(("imported material", imported));

    c.down();
    let mut files = Vec::new();
    files_under(c.root(), &mut files);
    let logs: Vec<&PathBuf> = files
        .iter()
        .filter(|f| f.extension().is_some_and(|e| e == "log"))
        .collect();
    assert!(
        logs.len() >= 4,
        "three node logs and the gateway's: {logs:?}"
    );
    let traced = logs.iter().any(|f| {
        std::fs::read_to_string(f)
            .unwrap_or_default()
            .contains("TRACE")
    });
    assert!(traced, "KMSIM_LOG=trace did not reach the processes");
    let mut scanned = 0usize;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        scanned += bytes.len();
        for (what, secret) in &secrets {
            for form in forms(secret) {
                assert!(
                    !bytes.windows(form.len()).any(|w| w == form.as_slice()),
                    "{what} found in {} as {:?}",
                    f.display(),
                    String::from_utf8_lossy(&form)
                );
            }
        }
    }
    assert!(scanned > 0);
}
