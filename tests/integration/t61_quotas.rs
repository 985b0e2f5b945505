//! Request and resource quotas on a live cluster of two 3-node Regions, with the AWS SDK for
//! Rust (retries disabled, so every answer is seen): a Region's Encrypt rate is enforced
//! across its nodes with `ThrottlingException` (`Rate exceeded`) while Decrypt and the other
//! Region go on; `kmsim chaos throttle` turns a quota on and off at run time; a key quota of 5
//! refuses the sixth CreateKey and a ReplicateKey into the full Region with
//! `LimitExceededException`, and leaves the primary untouched; a run-time rate is a Region
//! setting that a restarted node still enforces.

use std::time::{Duration, Instant};

use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::Client;

use crate::harness::{kmsim, kmsim_fails, wait_for, Cluster};

const A: &str = "us-east-1";
const B: &str = "eu-west-1";

/// The Region-wide Encrypt rate the topology sets.
const ENCRYPT_RATE: f64 = 30.0;

/// One SDK client per node of `region`, on each node's own AWS endpoint: calls spread over
/// the Region's nodes as the gateway spreads many clients.
fn node_clients(c: &Cluster, region: &str) -> Vec<Client> {
    c.ids(region)
        .into_iter()
        .map(|id| c.sdk(&c.aws_url(region, id), region))
        .collect()
}

/// `n` Encrypt calls as fast as they go, round-robin over `clients`: (admitted, throttled,
/// elapsed). Every refusal must be AWS's throttling answer.
async fn encrypt_burst(clients: &[Client], key: &str, n: usize) -> (usize, usize, Duration) {
    let start = Instant::now();
    let (mut admitted, mut throttled) = (0, 0);
    for i in 0..n {
        let r = clients[i % clients.len()]
            .encrypt()
            .key_id(key)
            .plaintext(Blob::new(b"quota".to_vec()))
            .send()
            .await;
        match r {
            Ok(_) => admitted += 1,
            Err(e) => {
                assert_eq!(e.code(), Some("ThrottlingException"), "{e:?}");
                assert_eq!(e.message(), Some("Rate exceeded"), "{e:?}");
                assert_eq!(
                    e.raw_response().map(|r| r.status().as_u16()),
                    Some(400),
                    "{e:?}"
                );
                throttled += 1;
            }
        }
    }
    (admitted, throttled, start.elapsed())
}

/// `kmsim chaos throttle --region <region> <args>` on the cluster in `data`: its output.
fn throttle(data: &str, region: &str, args: &[&str]) -> String {
    kmsim(&throttle_args(data, region, args))
}

/// The same command, which must fail: its error output.
fn throttle_fails(data: &str, region: &str, args: &[&str]) -> String {
    kmsim_fails(&throttle_args(data, region, args))
}

fn throttle_args<'a>(data: &'a str, region: &'a str, args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["chaos", "throttle", "--data-dir", data, "--region", region];
    all.extend_from_slice(args);
    all
}

/// A ciphertext of a few bytes under `key`.
async fn ciphertext(kms: &Client, key: &str) -> Blob {
    kms.encrypt()
        .key_id(key)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone()
}

async fn create_key(kms: &Client) -> Result<String, String> {
    kms.create_key()
        .send()
        .await
        .map(|o| o.key_metadata().unwrap().key_id().to_string())
        .map_err(|e| format!("{}: {}", e.code().unwrap_or("?"), e.message().unwrap_or("")))
}

#[tokio::test(flavor = "multi_thread")]
async fn quotas_are_each_regions_own_and_answered_as_aws_answers() {
    let c = Cluster::start_edited(&[A, B], 3, |t| {
        t.quotas
            .overrides
            .insert("Encrypt".to_string(), ENCRYPT_RATE);
        t.quotas.resources.keys_per_region = 5;
    });
    let data = c.data_dir();
    let a = c.sdk(&c.gateway_url(), A);
    let b = c.sdk(&c.gateway_url(), B);

    // --- Resource quota: 5 keys per Region; each key of a multi-Region set counts in its own.
    let primary = a
        .create_key()
        .multi_region(true)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let mut own = Vec::new();
    for _ in 0..5 {
        own.push(create_key(&b).await.unwrap());
    }
    let sixth = create_key(&b).await.unwrap_err();
    assert_eq!(
        sixth,
        "LimitExceededException: Key quota for this account in this region is 5 but the current usage is 5."
    );
    let refused = a
        .replicate_key()
        .key_id(&primary)
        .replica_region(B)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        Some("LimitExceededException"),
        "{refused:?}"
    );
    assert!(
        refused.message().unwrap().contains("current usage is 5"),
        "{refused:?}"
    );
    // The primary is untouched: no replica listed, still usable; its Region has room.
    let md = a.describe_key().key_id(&primary).send().await.unwrap();
    let mrc = md
        .key_metadata()
        .unwrap()
        .multi_region_configuration()
        .unwrap();
    assert!(mrc.replica_keys().is_empty(), "{mrc:?}");
    let e = b.describe_key().key_id(&primary).send().await.unwrap_err();
    assert_eq!(e.code(), Some("NotFoundException"));
    create_key(&a).await.unwrap();

    // --- Request quota: Encrypt at 30/s for us-east-1, spread over its three nodes.
    let clients = node_clients(&c, A);
    let blob = ciphertext(&clients[0], &primary).await;
    let (admitted, throttled, elapsed) = encrypt_burst(&clients, &primary, 240).await;
    eprintln!("Encrypt at {ENCRYPT_RATE}/s over 3 nodes: {admitted} admitted, {throttled} throttled in {elapsed:?}");
    // Never more than the burst (one second of each node's share) plus the rate since.
    let bound = ENCRYPT_RATE + ENCRYPT_RATE * elapsed.as_secs_f64();
    assert!(
        (admitted as f64) <= bound,
        "{admitted} admitted in {elapsed:?} (bound {bound})"
    );
    assert!(throttled > 0, "nothing throttled in {elapsed:?}");
    // Spread over the nodes, the Region's whole burst is there (not one node's share).
    assert!(admitted >= 20, "only {admitted} admitted in {elapsed:?}");
    // Decrypt has no quota here: unaffected while Encrypt is exhausted.
    encrypt_burst(&clients, &primary, 60).await;
    for i in 0..90 {
        clients[i % 3]
            .decrypt()
            .ciphertext_blob(blob.clone())
            .send()
            .await
            .unwrap();
    }
    // The other Region has its own buckets: a burst there is admitted at once.
    let (admitted_b, _, _) = encrypt_burst(&node_clients(&c, B), &own[0], 15).await;
    assert_eq!(admitted_b, 15);

    // --- Run time: chaos throttle turns Decrypt off in eu-west-1 only, then back on.
    let blob_b = ciphertext(&b, &own[0]).await;
    let decrypt_b = || async {
        b.decrypt()
            .ciphertext_blob(blob_b.clone())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| e.code().unwrap_or("?").to_string())
    };
    decrypt_b().await.unwrap();
    let out = throttle(&data, B, &["--operation", "Decrypt", "--rate", "0"]);
    assert!(out.contains("Decrypt 0/s"), "{out}");
    assert!(out.contains("3 node(s)"), "{out}");
    for _ in 0..6 {
        assert_eq!(decrypt_b().await.unwrap_err(), "ThrottlingException");
    }
    clients[0]
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .unwrap();
    throttle(&data, B, &["--operation", "Decrypt", "--rate", "off"]);
    for _ in 0..6 {
        decrypt_b().await.unwrap();
    }
    // Every operation of a Region at once, then cleared; names are checked against the list.
    throttle(&data, B, &["--rate", "0"]);
    let e = b.list_keys().send().await.unwrap_err();
    assert_eq!(e.code(), Some("ThrottlingException"));
    throttle(&data, B, &["--clear"]);
    b.list_keys().send().await.unwrap();
    let err = throttle_fails(&data, B, &["--operation", "Encrypts", "--rate", "1"]);
    assert!(
        err.contains("'Encrypts' is no KMS operation") && err.contains("Encrypt, Decrypt"),
        "{err}"
    );

    // --- A run-time rate is the Region's (replicated): a node restarted after it was set
    // enforces it on its own endpoint, and learns of its clearing too.
    throttle(&data, B, &["--operation", "Decrypt", "--rate", "0"]);
    c.restart(B, 2);
    let node2 = c.sdk(&c.aws_url(B, 2), B);
    let decrypt_on_2 = || async {
        node2
            .decrypt()
            .ciphertext_blob(blob_b.clone())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| e.code().unwrap_or("?").to_string())
    };
    // Until it answers at all, a restarted node may refuse for other reasons; then only
    // `Rate exceeded`.
    wait_for(
        Duration::from_secs(60),
        "the restarted node to throttle Decrypt",
        || async { (decrypt_on_2().await == Err("ThrottlingException".to_string())).then_some(()) },
    )
    .await;
    for _ in 0..6 {
        assert_eq!(decrypt_on_2().await.unwrap_err(), "ThrottlingException");
    }
    throttle(&data, B, &["--clear"]);
    decrypt_on_2().await.unwrap();
}
