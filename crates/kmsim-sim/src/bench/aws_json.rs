//! The AWS JSON side of the load generator: the standard KMS calls, signed with SigV4, over
//! HTTP/1.1 (one connection per task, kept alive as long as the endpoint allows and reopened
//! when it closes it), to one or more endpoint URLs (tasks round-robin over them). It uses
//! nothing kmsim-specific, so the same runs can load any AWS-compatible KMS endpoint.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use bytes::Bytes;
use rand::RngCore;
use serde_json::{json, Value};

use kmsim_core::KmsError;
use kmsim_node::backoff::Backoff;

use super::{
    check_run, run_clients, skipped, BenchClient, BenchError, BenchResult, Fixture, RunConfig,
    Workload, BENCH_KEY_DESCRIPTION, CALL_TIMEOUT, MAX_PAYLOAD_BYTES, MESSAGE_BYTES, SETUP_TIMEOUT,
};
use crate::aws_client::{AwsJsonClient, ExchangeError, OwnConnection};

/// Successive successful reads of a new key each endpoint must answer before the runs start
/// (an endpoint may spread calls over several nodes, which apply the key independently).
const VISIBLE_STREAK: usize = 6;

/// Calls `operation` until it succeeds, retrying answers a client retries (5xx, throttling) and
/// transport failures with capped backoff up to the setup deadline.
async fn setup_call(
    client: &AwsJsonClient,
    step: &'static str,
    operation: &str,
    body: &Value,
    deadline: Instant,
) -> Result<Value, BenchError> {
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
    loop {
        let failure = match client.call(operation, body).await {
            Ok(a) if a.status.is_success() => return Ok(a.json()),
            Ok(a) => {
                let e = KmsError::from_wire(&a.error_code().unwrap_or_default(), a.error_message());
                if !(a.status.is_server_error() || e.is_retryable()) {
                    return Err(BenchError::Setup {
                        step,
                        peer: client.authority().to_string(),
                        source: e,
                    });
                }
                e
            }
            Err(e) => KmsError::DependencyTimeout(e.to_string()),
        };
        if Instant::now() > deadline {
            return Err(BenchError::Setup {
                step,
                peer: client.authority().to_string(),
                source: failure,
            });
        }
        tokio::time::sleep(backoff.delay()).await;
    }
}

/// Waits until every endpoint answers DescribeKey for `key_arn` [`VISIBLE_STREAK`] times in a row.
async fn wait_visible(
    clients: &[AwsJsonClient],
    key_arn: &str,
    deadline: Instant,
) -> Result<(), BenchError> {
    for client in clients {
        let mut streak = 0;
        while streak < VISIBLE_STREAK {
            let ok = matches!(
                client.call("DescribeKey", &json!({"KeyId": key_arn})).await,
                Ok(a) if a.status.is_success()
            );
            streak = if ok { streak + 1 } else { 0 };
            if !ok {
                if Instant::now() > deadline {
                    return Err(BenchError::Setup {
                        step: "DescribeKey",
                        peer: client.authority().to_string(),
                        source: KmsError::NotFound(format!("{key_arn} never became visible")),
                    });
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    Ok(())
}

fn arn_of(created: &Value) -> Option<String> {
    created["KeyMetadata"]["Arn"].as_str().map(String::from)
}

/// Creates the benchmark keys through the first endpoint: a symmetric key (description
/// [`BENCH_KEY_DESCRIPTION`]) and, for Sign, an `ECC_NIST_P384` `SIGN_VERIFY` key; waits until
/// every endpoint serves them; encrypts one `payload_bytes` plaintext for Decrypt. An endpoint
/// that refuses the signing key (e.g. `UnsupportedOperationException`) leaves Sign runs skipped
/// with its answer as the reason; the other workloads are unaffected.
pub async fn setup(
    clients: &[AwsJsonClient],
    payload_bytes: usize,
    key_policy: Option<&str>,
) -> Result<Fixture, BenchError> {
    if !(1..=MAX_PAYLOAD_BYTES).contains(&payload_bytes) {
        return Err(BenchError::Invalid(format!(
            "payload of {payload_bytes} bytes is outside 1..={MAX_PAYLOAD_BYTES} (the Encrypt limit)"
        )));
    }
    let first = clients
        .first()
        .ok_or_else(|| BenchError::Invalid("no endpoints to benchmark".into()))?;
    let deadline = Instant::now() + SETUP_TIMEOUT;
    let mut create = json!({"Description": BENCH_KEY_DESCRIPTION});
    if let Some(policy) = key_policy {
        create["Policy"] = json!(policy);
    }
    let created = setup_call(first, "CreateKey", "CreateKey", &create, deadline).await?;
    let key_arn = arn_of(&created).ok_or_else(|| BenchError::Setup {
        step: "CreateKey",
        peer: first.authority().to_string(),
        source: KmsError::Internal("the response has no KeyMetadata.Arn".into()),
    })?;
    wait_visible(clients, &key_arn, deadline).await?;

    let mut plaintext = vec![0u8; payload_bytes];
    rand::thread_rng().fill_bytes(&mut plaintext);
    let encrypted = setup_call(
        first,
        "Encrypt",
        "Encrypt",
        &json!({"KeyId": key_arn, "Plaintext": B64.encode(&plaintext)}),
        deadline,
    )
    .await?;
    let ciphertext = encrypted["CiphertextBlob"]
        .as_str()
        .and_then(|b| B64.decode(b).ok())
        .ok_or_else(|| BenchError::Setup {
            step: "Encrypt",
            peer: first.authority().to_string(),
            source: KmsError::Internal("the response has no CiphertextBlob".into()),
        })?;

    let sign_key = extra_key(clients, "ECC_NIST_P384", "SIGN_VERIFY", deadline).await?;
    let mac_key = extra_key(clients, "HMAC_256", "GENERATE_VERIFY_MAC", deadline).await?;
    Ok(Fixture {
        key_arn,
        plaintext,
        ciphertext,
        sign_key,
        mac_key,
    })
}

/// Creates an asymmetric or HMAC key of `spec` and `usage` through the first endpoint and waits
/// until every endpoint serves it: `Ok(Err(why))` when the endpoint refuses to create it (the
/// runs that need it are then skipped with that answer).
async fn extra_key(
    clients: &[AwsJsonClient],
    spec: &str,
    usage: &str,
    deadline: Instant,
) -> Result<Result<String, String>, BenchError> {
    let step = if usage == "SIGN_VERIFY" {
        "CreateKey (ECC_NIST_P384, SIGN_VERIFY)"
    } else {
        "CreateKey (HMAC_256, GENERATE_VERIFY_MAC)"
    };
    let body = json!({"Description": BENCH_KEY_DESCRIPTION, "KeySpec": spec, "KeyUsage": usage});
    match setup_call(&clients[0], step, "CreateKey", &body, deadline).await {
        Ok(v) => match arn_of(&v) {
            Some(arn) => {
                wait_visible(clients, &arn, deadline).await?;
                Ok(Ok(arn))
            }
            None => Ok(Err(format!(
                "CreateKey KeySpec={spec} answered no KeyMetadata.Arn"
            ))),
        },
        Err(BenchError::Setup { source, .. }) => Ok(Err(format!(
            "CreateKey KeySpec={spec} KeyUsage={usage} answered {}: {}",
            source.code(),
            source.message()
        ))),
        Err(e) => Err(e),
    }
}

/// The request bodies of one run, built once and shared by every task.
struct Bodies {
    encrypt: Bytes,
    decrypt: Bytes,
    generate_data_key: Bytes,
    sign: Bytes,
    generate_mac: Bytes,
    create_key: Bytes,
    describe_key: Bytes,
    describe_missing_key: Bytes,
}

impl Bodies {
    fn new(f: &Fixture) -> Bodies {
        let bytes = |v: Value| Bytes::from(v.to_string());
        let mut message = vec![0u8; MESSAGE_BYTES];
        rand::thread_rng().fill_bytes(&mut message);
        Bodies {
            encrypt: bytes(json!({"KeyId": f.key_arn, "Plaintext": B64.encode(&f.plaintext)})),
            decrypt: bytes(json!({"CiphertextBlob": B64.encode(&f.ciphertext)})),
            generate_data_key: bytes(json!({"KeyId": f.key_arn, "KeySpec": "AES_256"})),
            sign: bytes(json!({
                "KeyId": f.sign_key.as_deref().unwrap_or_default(),
                "Message": B64.encode(&message),
                "MessageType": "RAW",
                "SigningAlgorithm": "ECDSA_SHA_384",
            })),
            generate_mac: bytes(json!({
                "KeyId": f.mac_key.as_deref().unwrap_or_default(),
                "Message": B64.encode(&message),
                "MacAlgorithm": "HMAC_SHA_256",
            })),
            create_key: bytes(json!({"Description": BENCH_KEY_DESCRIPTION})),
            describe_key: bytes(json!({"KeyId": f.key_arn})),
            describe_missing_key: bytes(json!({"KeyId": super::MISSING_KEY_ID})),
        }
    }
}

/// One task's client: its own connection (kept alive, reopened when the endpoint closes it;
/// see [`OwnConnection`]), the signer, the run's bodies.
struct AwsClient {
    conn: OwnConnection,
    bodies: Arc<Bodies>,
}

impl BenchClient for AwsClient {
    async fn call(&mut self, workload: Workload) -> Result<(), String> {
        let b = &self.bodies;
        let (operation, body) = match workload {
            Workload::Encrypt => ("Encrypt", &b.encrypt),
            Workload::Decrypt => ("Decrypt", &b.decrypt),
            Workload::GenerateDataKey => ("GenerateDataKey", &b.generate_data_key),
            Workload::Sign => ("Sign", &b.sign),
            Workload::GenerateMac => ("GenerateMac", &b.generate_mac),
            Workload::CreateKey => ("CreateKey", &b.create_key),
            Workload::DescribeKey => ("DescribeKey", &b.describe_key),
            Workload::DescribeMissingKey => ("DescribeKey", &b.describe_missing_key),
        };
        let req = self
            .conn
            .client()
            .signed(operation, body.clone())
            .map_err(|_| "SigningError".to_string())?;
        let answer = match tokio::time::timeout(CALL_TIMEOUT, self.conn.exchange(req)).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(ExchangeError::NotSent(_))) => return Err("ConnectError".to_string()),
            Ok(Err(ExchangeError::Lost(_))) => return Err("TransportError".to_string()),
            Err(_) => {
                // The abandoned request left the connection unusable.
                self.conn.drop_connection();
                return Err("Timeout".to_string());
            }
        };
        match answer.error_code() {
            None => Ok(()),
            Some(code) => Err(code),
        }
    }

    fn reconnections(&self) -> u64 {
        self.conn.opened().saturating_sub(1)
    }
}

/// Runs one (workload, concurrency) against `clients` (one per endpoint URL; task `i` uses
/// endpoint `i % n`) and returns its figures.
pub async fn run_workload(
    clients: &[AwsJsonClient],
    fixture: &Fixture,
    cfg: &RunConfig,
) -> Result<BenchResult, BenchError> {
    check_run(clients.len(), cfg)?;
    if let Some(why) = fixture.skip_reason(cfg.workload) {
        return Ok(skipped(cfg, clients.len(), why.to_string()));
    }
    let bodies = Arc::new(Bodies::new(fixture));
    let tasks = (0..cfg.concurrency)
        .map(|i| AwsClient {
            conn: OwnConnection::new(clients[i % clients.len()].clone()),
            bodies: bodies.clone(),
        })
        .collect();
    run_clients(tasks, cfg, clients.len()).await
}
