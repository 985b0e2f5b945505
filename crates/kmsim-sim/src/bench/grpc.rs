//! The gRPC side of the load generator: `kmsim.kms.v1` calls spread round-robin over the nodes
//! of one kmsim Region.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kmsim_node::tls::Dialer;
use rand::RngCore;
use tonic::transport::Channel;

use kmsim_core::KmsError;
use kmsim_node::backoff::Backoff;
use kmsim_proto::error_from_status;
use kmsim_proto::kms::v1::kms_service_client::KmsServiceClient;
use kmsim_proto::kms::v1::{
    CreateKeyRequest, DecryptRequest, DescribeKeyRequest, EncryptRequest, GenerateDataKeyRequest,
    GenerateMacRequest, SignRequest,
};

use super::{
    check_loopback, check_run, run_clients, skipped, BenchClient, BenchError, BenchResult, Fixture,
    RunConfig, Workload, BENCH_KEY_DESCRIPTION, CALL_TIMEOUT, MAX_PAYLOAD_BYTES, MESSAGE_BYTES,
    SETUP_TIMEOUT,
};

/// Tasks that share one gRPC channel: one HTTP/2 connection is served by one core on each side,
/// so heavy concurrency needs several.
const TASKS_PER_CHANNEL: usize = 16;

/// Deadline for opening one connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Opens one channel to `addr`, failing fast if the node does not answer.
async fn connect(dialer: &Dialer, addr: &str) -> Result<Channel, BenchError> {
    check_loopback(addr)?;
    let endpoint = dialer
        .endpoint(addr)
        .map_err(|source| BenchError::Connect {
            peer: addr.to_string(),
            source,
        })?;
    endpoint
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .tcp_nodelay(true)
        .connect()
        .await
        .map_err(|source| BenchError::Connect {
            peer: addr.to_string(),
            source,
        })
}

/// Creates the benchmark keys through the first endpoint (a symmetric key, described
/// [`BENCH_KEY_DESCRIPTION`], an `ECC_NIST_P384` signing key and an `HMAC_256` key), waits until
/// every endpoint has applied them, and encrypts one `payload_bytes` plaintext for the Decrypt
/// workload.
pub async fn setup(
    dialer: &Dialer,
    endpoints: &[String],
    payload_bytes: usize,
    key_policy: Option<&str>,
) -> Result<Fixture, BenchError> {
    if !(1..=MAX_PAYLOAD_BYTES).contains(&payload_bytes) {
        return Err(BenchError::Invalid(format!(
            "payload of {payload_bytes} bytes is outside 1..={MAX_PAYLOAD_BYTES} (the Encrypt limit)"
        )));
    }
    let first = endpoints
        .first()
        .ok_or_else(|| BenchError::Invalid("no endpoints to benchmark".into()))?;
    let mut clients = Vec::new();
    for addr in endpoints {
        clients.push((
            addr.clone(),
            KmsServiceClient::new(connect(dialer, addr).await?),
        ));
    }
    let deadline = Instant::now() + SETUP_TIMEOUT;
    let key = |spec: Option<&str>, usage: Option<&str>| CreateKeyRequest {
        description: Some(BENCH_KEY_DESCRIPTION.to_string()),
        key_spec: spec.map(String::from),
        key_usage: usage.map(String::from),
        ..Default::default()
    };
    let symmetric = CreateKeyRequest {
        policy: key_policy.map(String::from),
        ..key(None, None)
    };
    let key_arn = create_visible(&mut clients, symmetric, deadline).await?;
    let sign_key = create_visible(
        &mut clients,
        key(Some("ECC_NIST_P384"), Some("SIGN_VERIFY")),
        deadline,
    )
    .await?;
    let mac_key = create_visible(
        &mut clients,
        key(Some("HMAC_256"), Some("GENERATE_VERIFY_MAC")),
        deadline,
    )
    .await?;

    let mut plaintext = vec![0u8; payload_bytes];
    rand::thread_rng().fill_bytes(&mut plaintext);
    let ciphertext = clients[0]
        .1
        .encrypt(EncryptRequest {
            key_id: Some(key_arn.clone()),
            plaintext: Some(plaintext.clone()),
            ..Default::default()
        })
        .await
        .map_err(setup_err("Encrypt", first))?
        .into_inner()
        .ciphertext_blob
        .ok_or_else(|| BenchError::Setup {
            step: "Encrypt",
            peer: first.clone(),
            source: KmsError::Internal("the response has no ciphertext".into()),
        })?;
    Ok(Fixture {
        key_arn,
        plaintext,
        ciphertext,
        sign_key: Ok(sign_key),
        mac_key: Ok(mac_key),
    })
}

/// Maps a setup call's failure on `peer` to the benchmark error.
fn setup_err(step: &'static str, peer: &str) -> impl FnOnce(tonic::Status) -> BenchError {
    let peer = peer.to_string();
    move |s| BenchError::Setup {
        step,
        peer,
        source: error_from_status(&s),
    }
}

/// Creates a key through the first client and waits until every client's node has applied it;
/// returns its ARN. A Region that just elected its leader may still refuse writes for a moment,
/// so retryable answers are retried with backoff up to `deadline`.
async fn create_visible(
    clients: &mut [(String, KmsServiceClient<Channel>)],
    req: CreateKeyRequest,
    deadline: Instant,
) -> Result<String, BenchError> {
    let (first, creator) = &mut clients[0];
    let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));
    let arn = loop {
        match creator.create_key(req.clone()).await {
            Ok(r) => {
                let arn = r.into_inner().key_metadata.and_then(|m| m.arn);
                break arn.ok_or_else(|| BenchError::Setup {
                    step: "CreateKey",
                    peer: first.clone(),
                    source: KmsError::Internal("the response has no key ARN".into()),
                })?;
            }
            Err(s) if error_from_status(&s).is_retryable() && Instant::now() < deadline => {
                tokio::time::sleep(backoff.delay()).await;
            }
            Err(s) => return Err(setup_err("CreateKey", first)(s)),
        }
    };
    // Followers serve crypto from their applied state: wait until each one knows the key, so
    // the first measured calls do not fail with NotFoundException.
    for (addr, client) in clients.iter_mut() {
        let mut backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(500));
        loop {
            let req = DescribeKeyRequest {
                key_id: Some(arn.clone()),
                ..Default::default()
            };
            match client.describe_key(req).await {
                Ok(_) => break,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(backoff.delay()).await;
                }
                Err(s) => return Err(setup_err("DescribeKey", addr)(s)),
            }
        }
    }
    Ok(arn)
}

/// The channels of one run: task `i` calls node `i % nodes` over that node's channel
/// `(i / nodes) / TASKS_PER_CHANNEL`.
async fn open_channels(
    dialer: &Dialer,
    endpoints: &[String],
    concurrency: usize,
) -> Result<Vec<Vec<Channel>>, BenchError> {
    let per_node_tasks = concurrency.div_ceil(endpoints.len());
    let per_node_channels = per_node_tasks.div_ceil(TASKS_PER_CHANNEL).max(1);
    let mut all = Vec::with_capacity(endpoints.len());
    for addr in endpoints {
        let mut node = Vec::with_capacity(per_node_channels);
        for _ in 0..per_node_channels {
            node.push(connect(dialer, addr).await?);
        }
        all.push(node);
    }
    Ok(all)
}

/// One task's gRPC client.
struct GrpcClient {
    client: KmsServiceClient<Channel>,
    fixture: Arc<Fixture>,
    /// The message Sign and GenerateMac authenticate.
    message: Arc<Vec<u8>>,
}

impl BenchClient for GrpcClient {
    async fn call(&mut self, workload: Workload) -> Result<(), String> {
        let client = &mut self.client;
        let fixture = &self.fixture;
        let status = match workload {
            Workload::Encrypt => client
                .encrypt(EncryptRequest {
                    key_id: Some(fixture.key_arn.clone()),
                    plaintext: Some(fixture.plaintext.clone()),
                    ..Default::default()
                })
                .await
                .err(),
            Workload::Decrypt => client
                .decrypt(DecryptRequest {
                    ciphertext_blob: Some(fixture.ciphertext.clone()),
                    ..Default::default()
                })
                .await
                .err(),
            Workload::GenerateDataKey => client
                .generate_data_key(GenerateDataKeyRequest {
                    key_id: Some(fixture.key_arn.clone()),
                    key_spec: Some("AES_256".to_string()),
                    ..Default::default()
                })
                .await
                .err(),
            Workload::Sign => client
                .sign(SignRequest {
                    key_id: fixture.sign_key.clone().ok(),
                    message: Some(self.message.to_vec()),
                    message_type: Some("RAW".to_string()),
                    signing_algorithm: Some("ECDSA_SHA_384".to_string()),
                    ..Default::default()
                })
                .await
                .err(),
            Workload::GenerateMac => client
                .generate_mac(GenerateMacRequest {
                    key_id: fixture.mac_key.clone().ok(),
                    message: Some(self.message.to_vec()),
                    mac_algorithm: Some("HMAC_SHA_256".to_string()),
                    ..Default::default()
                })
                .await
                .err(),
            Workload::CreateKey => client
                .create_key(CreateKeyRequest {
                    description: Some(BENCH_KEY_DESCRIPTION.to_string()),
                    ..Default::default()
                })
                .await
                .err(),
            Workload::DescribeKey | Workload::DescribeMissingKey => client
                .describe_key(DescribeKeyRequest {
                    key_id: Some(match workload {
                        Workload::DescribeKey => fixture.key_arn.clone(),
                        _ => super::MISSING_KEY_ID.to_string(),
                    }),
                    ..Default::default()
                })
                .await
                .err(),
        };
        match status {
            None => Ok(()),
            Some(s) => Err(error_from_status(&s).code().to_string()),
        }
    }
}

/// Runs one (workload, concurrency) against `endpoints` (the nodes of one Region) and returns
/// its figures. Connections are opened before the clock starts; the run lasts
/// `warmup + duration` at most and issues at most `max_ops` calls.
pub async fn run_workload(
    dialer: &Dialer,
    endpoints: &[String],
    fixture: &Fixture,
    cfg: &RunConfig,
) -> Result<BenchResult, BenchError> {
    check_run(endpoints.len(), cfg)?;
    if let Some(why) = fixture.skip_reason(cfg.workload) {
        return Ok(skipped(cfg, endpoints.len(), why.to_string()));
    }
    let channels = open_channels(dialer, endpoints, cfg.concurrency).await?;
    let fixture = Arc::new(fixture.clone());
    let mut message = vec![0u8; MESSAGE_BYTES];
    rand::thread_rng().fill_bytes(&mut message);
    let message = Arc::new(message);
    let mut clients = Vec::with_capacity(cfg.concurrency);
    for i in 0..cfg.concurrency {
        let node = i % endpoints.len();
        let node_channels = &channels[node];
        let channel =
            node_channels[(i / endpoints.len()) / TASKS_PER_CHANNEL % node_channels.len()].clone();
        clients.push(GrpcClient {
            client: KmsServiceClient::new(channel),
            fixture: fixture.clone(),
            message: message.clone(),
        });
    }
    run_clients(clients, cfg, endpoints.len()).await
}
