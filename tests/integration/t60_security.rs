//! Security invariants that need a real cluster.

use std::path::Path;

use kmsim_proto::admin::v1::{DebugKeyMaterialRequest, TriggerSnapshotRequest};
use kmsim_proto::kms::v1 as pb;

use crate::harness::{ok, Cluster};
use crate::t10_basics::create_key;

const R: &str = "us-east-1";

pub(crate) fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_plaintext_key_material_is_found_in_any_file_of_any_data_dir() {
    let c = Cluster::start(&[R], 3);
    let leader = c.leader(R).await;
    let mut secrets: Vec<Vec<u8>> = Vec::new();
    for i in 0..5 {
        let key = create_key(&c, (i % 3) + 1, &format!("leak check {i}"))
            .await
            .key_id
            .unwrap();
        let material = ok(c
            .admin(R, 1)
            .debug_key_material(DebugKeyMaterialRequest {
                key_id: key.clone(),
            })
            .await)
        .material;
        assert_eq!(material.len(), 1);
        assert_eq!(material[0].len(), 32);
        secrets.extend(material);
        // Use the key so the material is unwrapped and cached on every node.
        for id in c.ids(R) {
            ok(c.kms(R, id)
                .encrypt(pb::EncryptRequest {
                    key_id: Some(key.clone()),
                    plaintext: Some(vec![1; 64]),
                    ..Default::default()
                })
                .await);
        }
    }
    // Asymmetric and HMAC material too (private keys as DER): signed/MACed on every node so
    // it is unwrapped and cached everywhere.
    for (spec, usage) in [
        ("ECC_NIST_P256", "SIGN_VERIFY"),
        ("RSA_2048", "SIGN_VERIFY"),
        ("HMAC_256", "GENERATE_VERIFY_MAC"),
    ] {
        let key = crate::t25_key_types::create(&c, spec, usage)
            .await
            .key_id
            .unwrap();
        let material = ok(c
            .admin(R, 2)
            .debug_key_material(DebugKeyMaterialRequest {
                key_id: key.clone(),
            })
            .await)
        .material;
        assert_eq!(material.len(), 1);
        assert!(material[0].len() >= 32, "{spec}");
        secrets.extend(material);
        for id in c.ids(R) {
            if usage == "SIGN_VERIFY" {
                let alg = if spec == "RSA_2048" {
                    "RSASSA_PSS_SHA_256"
                } else {
                    "ECDSA_SHA_256"
                };
                ok(c.kms(R, id)
                    .sign(pb::SignRequest {
                        key_id: Some(key.clone()),
                        message: Some(vec![2; 32]),
                        signing_algorithm: Some(alg.into()),
                        ..Default::default()
                    })
                    .await);
            } else {
                ok(c.kms(R, id)
                    .generate_mac(pb::GenerateMacRequest {
                        key_id: Some(key.clone()),
                        message: Some(vec![2; 32]),
                        mac_algorithm: Some("HMAC_SHA_256".into()),
                        ..Default::default()
                    })
                    .await);
            }
        }
    }
    // Snapshots on every node, so snapshot files are on disk too.
    for id in c.ids(R) {
        ok(c.admin(R, id)
            .trigger_snapshot(TriggerSnapshotRequest {})
            .await);
    }
    assert!(leader > 0);
    c.down();

    let mut files = Vec::new();
    files_under(c.root(), &mut files);
    assert!(
        files.len() > 10,
        "expected RocksDB files, logs and keys, found {files:?}"
    );
    let mut scanned = 0usize;
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        scanned += bytes.len();
        let text = String::from_utf8_lossy(&bytes).to_ascii_lowercase();
        for s in &secrets {
            assert!(
                !bytes.windows(s.len()).any(|w| w == s.as_slice()),
                "plaintext material found in {}",
                f.display()
            );
            assert!(
                !text.contains(&hex(s)),
                "hex of plaintext material found in {}",
                f.display()
            );
        }
    }
    assert!(scanned > 0);
}
