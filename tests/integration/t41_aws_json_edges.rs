//! The AWS JSON front with a raw HTTP client and a signer under the test's control: every SigV4
//! failure, temporary credentials, malformed envelopes and bodies, server-side validation,
//! keep-alive (also after refusals, on one connection written byte for byte), and request dates
//! after the simulated clock moved. Every refused request is a CreateKey, and the Region must
//! hold no key afterwards: nothing changed.

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderValue, Request, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use aws_sdk_kms::error::ProvideErrorMetadata;
use kmsim_proto::admin::v1::AdvanceClockRequest;
use kmsim_sim::aws_client::{Answer, AwsJsonClient, Signer};

use crate::harness::{sdk_client, wait_for, Cluster};

const R: &str = "us-east-1";
const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// Checks an error answer: status 400 (unless given), code, message, and the headers every
/// response carries.
fn assert_error(a: &Answer, code: &str, message: Option<&str>) {
    assert_eq!(a.error_code().as_deref(), Some(code), "{:?}", a.body);
    if let Some(m) = message {
        assert_eq!(a.error_message(), m);
    }
    assert_headers(a);
}

fn assert_headers(a: &Answer) {
    assert_eq!(a.headers["content-type"], "application/x-amz-json-1.1");
    let id = a.headers["x-amzn-requestid"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
}

/// Signs `req` as `signer` at `time` and sends it.
async fn send_signed(
    client: &AwsJsonClient,
    signer: &Signer,
    mut req: Request<Full<Bytes>>,
    body: &[u8],
    time: SystemTime,
) -> Answer {
    signer.sign(&mut req, body, time).unwrap();
    client.send(req).await.unwrap()
}

/// The number of keys in the Region (through `client`).
async fn key_count(client: &AwsJsonClient) -> usize {
    let a = client.call("ListKeys", &json!({})).await.unwrap();
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    a.json()["Keys"].as_array().map(|k| k.len()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sigv4_failure_gets_the_aws_error_and_changes_nothing() {
    let c = Cluster::start(&[R], 3);
    c.leader(R).await;
    let body = Bytes::from_static(br#"{"Description":"must not exist"}"#);
    for url in [c.gateway_url(), c.aws_url(R, 1)] {
        let client = c.raw(&url, R);
        let now = SystemTime::now();
        let good = Signer::new("test", "test", R);

        let a = client
            .send(client.unsigned("CreateKey", body.clone()))
            .await
            .unwrap();
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert_error(
            &a,
            "MissingAuthenticationTokenException",
            Some("Missing Authentication Token"),
        );

        let mut req = client.unsigned("CreateKey", body.clone());
        req.headers_mut().insert(
            "authorization",
            HeaderValue::from_static("AWS4-HMAC-SHA256 Signature=00"),
        );
        req.headers_mut()
            .insert("x-amz-date", HeaderValue::from_static("20261201T100000Z"));
        let a = client.send(req).await.unwrap();
        assert_error(&a, "IncompleteSignatureException", None);
        assert!(
            a.error_message()
                .starts_with("Authorization header requires 'Credential' parameter."),
            "{}",
            a.error_message()
        );

        let a = send_signed(
            &client,
            &Signer::new("nobody", "test", R),
            client.unsigned("CreateKey", body.clone()),
            &body,
            now,
        )
        .await;
        assert_error(
            &a,
            "UnrecognizedClientException",
            Some("The security token included in the request is invalid."),
        );

        let a = send_signed(
            &client,
            &Signer::new("test", "wrong", R),
            client.unsigned("CreateKey", body.clone()),
            &body,
            now,
        )
        .await;
        assert_error(&a, "InvalidSignatureException", Some(MISMATCH));

        // The body changed after signing.
        let mut req = client.unsigned("CreateKey", body.clone());
        good.sign(&mut req, &body, now).unwrap();
        let (parts, _) = req.into_parts();
        let changed = Request::from_parts(
            parts,
            Full::new(Bytes::from_static(br#"{"Description":"must not existX"}"#)),
        );
        let a = client.send(changed).await.unwrap();
        assert_error(&a, "InvalidSignatureException", Some(MISMATCH));

        // Outside the 15-minute window, either way.
        let hour = Duration::from_secs(3600);
        let a = send_signed(
            &client,
            &good,
            client.unsigned("CreateKey", body.clone()),
            &body,
            now - hour,
        )
        .await;
        assert_error(&a, "InvalidSignatureException", None);
        assert!(
            a.error_message().starts_with("Signature expired: "),
            "{}",
            a.error_message()
        );
        assert!(
            a.error_message().ends_with(" - 15 min.)"),
            "{}",
            a.error_message()
        );
        let a = send_signed(
            &client,
            &good,
            client.unsigned("CreateKey", body.clone()),
            &body,
            now + hour,
        )
        .await;
        assert!(
            a.error_message().starts_with("Signature not yet current: "),
            "{}",
            a.error_message()
        );

        // Scoped to a Region the topology does not have, or to another service.
        let a = send_signed(
            &client,
            &Signer::new("test", "test", "ap-south-2"),
            client.unsigned("CreateKey", body.clone()),
            &body,
            now,
        )
        .await;
        assert_error(
            &a,
            "InvalidSignatureException",
            Some("Credential should be scoped to a valid region. "),
        );
        let mut req = client.unsigned("CreateKey", body.clone());
        good.sign(&mut req, &body, now).unwrap();
        let auth = req.headers()["authorization"]
            .to_str()
            .unwrap()
            .replace("/kms/aws4_request", "/s3/aws4_request");
        req.headers_mut()
            .insert("authorization", HeaderValue::from_str(&auth).unwrap());
        let a = client.send(req).await.unwrap();
        assert_error(
            &a,
            "InvalidSignatureException",
            Some("Credential should be scoped to correct service: 'kms'. "),
        );

        // A correctly signed request still works on the same endpoint, with the same headers.
        let a = client.call("ListKeys", &json!({})).await.unwrap();
        assert_eq!(a.status, StatusCode::OK);
        assert_headers(&a);
        assert_eq!(
            key_count(&client).await,
            0,
            "a refused request created a key"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn temporary_credentials_need_their_signed_session_token() {
    let c = Cluster::start_edited(&[R], 1, |t| {
        t.credentials.push(kmsim_node::config::CredentialEntry {
            access_key_id: "ASIAKMSIMTEMP".into(),
            secret_access_key: kmsim_node::config::Secret::new("temp-secret"),
            principal_arn: "arn:aws:sts::111122223333:assumed-role/tester/session".into(),
            session_token: Some(kmsim_node::config::Secret::new("FwoGZXIvYXdzEXAMPLETOKEN")),
        });
    });
    c.leader(R).await;
    let creds = |token: Option<&str>| {
        aws_sdk_kms::config::Credentials::new(
            "ASIAKMSIMTEMP",
            "temp-secret",
            token.map(String::from),
            None,
            "test",
        )
    };
    let ok = sdk_client(&c.gateway_url(), R, creds(Some("FwoGZXIvYXdzEXAMPLETOKEN")));
    let out = ok.create_key().description("temp").send().await.unwrap();
    assert!(out.key_metadata().is_some());
    for token in [None, Some("another-token")] {
        let bad = sdk_client(&c.gateway_url(), R, creds(token));
        let e = bad.list_keys().send().await.unwrap_err();
        assert_eq!(e.code(), Some("UnrecognizedClientException"), "{token:?}");
        assert_eq!(
            e.message(),
            Some("The security token included in the request is invalid.")
        );
    }
    // The long-term key of the launcher still works without a token.
    let long = c.sdk(&c.aws_url(R, 1), R);
    assert_eq!(long.list_keys().send().await.unwrap().keys().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_requests_get_clear_errors_and_change_nothing() {
    let c = Cluster::start(&[R], 1);
    c.leader(R).await;
    let url = c.aws_url(R, 1);
    let client = c.raw(&url, R);
    let good = Signer::new("test", "test", R);
    let now = SystemTime::now();
    let signed = |req: Request<Full<Bytes>>, body: &[u8]| {
        let mut req = req;
        good.sign(&mut req, body, now).unwrap();
        req
    };
    let create =
        |body: &'static [u8]| (client.unsigned("CreateKey", Bytes::from_static(body)), body);

    // Wrong content type (signed as sent).
    let (mut req, body) = create(b"{}");
    req.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/plain"));
    let a = client.send(signed(req, body)).await.unwrap();
    assert_eq!(a.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_error(&a, "SerializationException", None);
    assert!(a.error_message().contains("application/x-amz-json-1.1"));

    // Missing and unknown targets.
    let (mut req, body) = create(b"{}");
    req.headers_mut().remove("x-amz-target");
    let a = client.send(signed(req, body)).await.unwrap();
    assert_error(&a, "UnknownOperationException", None);
    let req = client.unsigned("FlyToTheMoon", Bytes::from_static(b"{}"));
    let a = client.send(signed(req, b"{}")).await.unwrap();
    assert_error(&a, "UnknownOperationException", None);
    assert!(a.error_message().contains("FlyToTheMoon"));

    // Bodies that are not the input shape.
    for bad in [
        &b"{"[..],
        b"[]",
        b"{\"Description\": 5}",
        b"{\"Tags\": {\"TagKey\": \"a\"}}",
        b"not json",
    ] {
        let req = client.unsigned("CreateKey", Bytes::copy_from_slice(bad));
        let a = client.send(signed(req, bad)).await.unwrap();
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert_error(&a, "SerializationException", None);
    }
    let bad = br#"{"CiphertextBlob": "not base64!"}"#;
    let req = client.unsigned("Decrypt", Bytes::from_static(bad));
    let a = client.send(signed(req, bad)).await.unwrap();
    assert_error(&a, "SerializationException", None);
    assert!(
        a.error_message().contains("base64"),
        "{}",
        a.error_message()
    );

    // Not POST /.
    for (method, path, status) in [
        ("GET", "/", StatusCode::METHOD_NOT_ALLOWED),
        ("PUT", "/", StatusCode::METHOD_NOT_ALLOWED),
        ("POST", "/keys", StatusCode::NOT_FOUND),
        ("POST", "/?Action=CreateKey", StatusCode::NOT_FOUND),
    ] {
        let (mut req, _) = create(b"{}");
        *req.method_mut() = method.parse().unwrap();
        *req.uri_mut() = format!("{url}{path}").parse().unwrap();
        let a = client.send(req).await.unwrap();
        assert_eq!(a.status, status, "{method} {path}");
        assert_error(&a, "UnknownOperationException", None);
    }

    // A body over the 1 MiB bound is refused from its Content-Length, unread, and the answer
    // says the connection closes, so the pooled client does not reuse it for the next call.
    let big = Bytes::from(vec![b' '; (1 << 20) + 1]);
    let req = client.unsigned("CreateKey", big.clone());
    match client.send(signed(req, &big)).await {
        Ok(a) => {
            assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
            assert_error(&a, "SerializationException", None);
            assert_eq!(a.headers["connection"], "close");
        }
        // The server may answer and close before the client finished writing.
        Err(e) => assert!(format!("{e}").to_lowercase().contains("transport"), "{e}"),
    }

    assert_eq!(
        key_count(&client).await,
        0,
        "a refused request created a key"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_side_validation_uses_the_aws_template() {
    let c = Cluster::start(&[R], 1);
    c.leader(R).await;
    let client = c.raw(&c.gateway_url(), R);
    let cases = [
        ("GenerateRandom", json!({"NumberOfBytes": 0}), "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"),
        ("GenerateRandom", json!({"NumberOfBytes": 1025}), "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"),
        ("CreateKey", json!({"KeySpec": "BOGUS"}), "1 validation error detected: Value 'BOGUS' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: ["),
        ("CreateKey", json!({"Description": "d".repeat(8193)}), "1 validation error detected: Value '"),
        ("ListKeys", json!({"Limit": 1001}), "1 validation error detected: Value '1001' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 1000"),
        ("ListKeys", json!({"Limit": 0}), "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"),
        ("Encrypt", json!({"KeyId": "alias/x", "Plaintext": ""}), "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1"),
    ];
    for (op, body, prefix) in cases {
        let a = client.call(op, &body).await.unwrap();
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{op} {body}");
        assert_error(&a, "ValidationException", None);
        assert!(
            a.error_message().starts_with(prefix),
            "{op}: {}",
            a.error_message()
        );
    }
    let key = client.call("CreateKey", &json!({})).await.unwrap().json()["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let a = client
        .call(
            "ScheduleKeyDeletion",
            &json!({"KeyId": key, "PendingWindowInDays": 400}),
        )
        .await
        .unwrap();
    assert_error(&a, "ValidationException", None);
    let d = client
        .call("DescribeKey", &json!({"KeyId": key}))
        .await
        .unwrap();
    assert_eq!(d.json()["KeyMetadata"]["KeyState"], "Enabled");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_keep_alive_connection_serves_many_requests() {
    let c = Cluster::start(&[R], 1);
    c.leader(R).await;
    for url in [c.aws_url(R, 1), c.gateway_url()] {
        let client = c.raw(&url, R);
        let addr = client.authority().to_string();
        let stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        let driver = tokio::spawn(conn);
        let mut ids = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let req = client
                .signed(
                    "GenerateRandom",
                    Bytes::from_static(br#"{"NumberOfBytes":8}"#),
                )
                .unwrap();
            sender.ready().await.expect("the connection stays open");
            let resp = sender.send_request(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            ids.insert(
                resp.headers()["x-amzn-requestid"]
                    .to_str()
                    .unwrap()
                    .to_string(),
            );
            let body = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["Plaintext"].as_str().unwrap().len(), 12);
        }
        assert_eq!(ids.len(), 200, "every response has its own request id");
        drop(sender);
        driver.await.unwrap().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn after_advance_clock_both_host_and_simulated_dates_verify() {
    let c = Cluster::start(&[R], 1);
    c.leader(R).await;
    const TWO_DAYS: u64 = 2 * 86_400;
    let mut admin = c.admin(R, 1);
    admin
        .advance_clock(AdvanceClockRequest {
            millis: (TWO_DAYS * 1000) as i64,
        })
        .await
        .unwrap();
    wait_for(Duration::from_secs(10), "the offset is applied", || async {
        c.status(R, 1)
            .await
            .filter(|s| s.clock_offset_ms >= (TWO_DAYS * 1000) as i64)
    })
    .await;
    let client = c.raw(&c.aws_url(R, 1), R);
    let good = Signer::new("test", "test", R);
    let body = Bytes::from_static(b"{}");
    let now = SystemTime::now();
    for (at, ok) in [
        (now, true),
        (now + Duration::from_secs(TWO_DAYS), true),
        (now + Duration::from_secs(TWO_DAYS / 2), false),
    ] {
        let a = send_signed(
            &client,
            &good,
            client.unsigned("ListKeys", body.clone()),
            &body,
            at,
        )
        .await;
        assert_eq!(a.status.is_success(), ok, "{:?}", a.body);
        if !ok {
            assert_error(&a, "InvalidSignatureException", None);
        }
    }
}

/// The 1 MiB request body bound of the front.
const MAX_BODY: usize = 1 << 20;

/// How long the raw client waits for any answer before the test fails.
const RAW_TIMEOUT: Duration = Duration::from_secs(30);

/// One HTTP/1.1 connection written and read byte for byte: the test, not a client library,
/// decides what is sent on it and sees exactly what the server answers and when it closes.
struct RawConn {
    stream: TcpStream,
    /// Bytes read but not yet consumed.
    buf: Vec<u8>,
}

/// One answer read from a [`RawConn`].
#[derive(Debug)]
struct RawAnswer {
    status: u16,
    /// Header names in lower case.
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawAnswer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// True when the server announced that it closes the connection after this answer.
    fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    fn code(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap();
        v["__type"].as_str().unwrap().to_string()
    }
}

impl RawConn {
    async fn connect(addr: &str) -> RawConn {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        RawConn {
            stream,
            buf: Vec::new(),
        }
    }

    async fn write(&mut self, bytes: &[u8]) {
        if let Err(e) = self.stream.write_all(bytes).await {
            panic!("cannot send on the connection ({e}): the server closed it unannounced");
        }
    }

    /// Reads more bytes; false at the end of the stream (or a reset).
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(RAW_TIMEOUT, self.stream.read(&mut chunk))
            .await
            .expect("the server neither answered nor closed the connection")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// Reads one answer (an interim `100 Continue` too); `None` when the server closed the
    /// connection first.
    async fn read_answer(&mut self) -> Option<RawAnswer> {
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            if !self.fill().await {
                assert!(self.buf.is_empty(), "cut-off answer: {:?}", self.buf);
                return None;
            }
        };
        let head = String::from_utf8(self.buf[..head_end].to_vec()).unwrap();
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect();
        let mut answer = RawAnswer {
            status,
            headers,
            body: Vec::new(),
        };
        let len: usize = answer
            .header("content-length")
            .map(|v| v.parse().unwrap())
            .unwrap_or(0);
        while self.buf.len() < len {
            assert!(self.fill().await, "cut-off body");
        }
        answer.body = self.buf.drain(..len).collect();
        Some(answer)
    }

    /// Sends a request (with its `Content-Length`) and reads its answer. Panics if the server
    /// closes the connection instead of answering: it never announced that it would.
    async fn exchange(&mut self, req: Request<Full<Bytes>>, body: &[u8]) -> RawAnswer {
        let mut bytes = head_bytes(&req, &[("content-length", &body.len().to_string())]);
        bytes.extend_from_slice(body);
        self.write(&bytes).await;
        self.read_answer()
            .await
            .expect("the server closed a connection it had not announced it would close")
    }

    /// Sends a request as curl and the AWS SDK for Java do with `Expect: 100-continue`: the
    /// head first, the body only once the server asks for it with `100 Continue`. A final answer
    /// that comes first and does not announce `Connection: close` means the server still reads
    /// the body (RFC 9110, 10.1.1), so the body is sent then too.
    async fn exchange_expecting_continue(
        &mut self,
        req: Request<Full<Bytes>>,
        body: &[u8],
    ) -> RawAnswer {
        let len = body.len().to_string();
        let head = head_bytes(
            &req,
            &[("content-length", &len), ("expect", "100-continue")],
        );
        self.write(&head).await;
        let first = self.read_answer().await.expect("an answer to the head");
        if first.status == 100 {
            self.write(body).await;
            return self
                .read_answer()
                .await
                .expect("the server closed a connection it had not announced it would close");
        }
        if !first.closes() {
            self.write(body).await;
        }
        first
    }

    /// Waits until the server has closed its side of the connection.
    async fn closed_by_server(&mut self) {
        while self.fill().await {}
        assert!(
            self.buf.is_empty(),
            "bytes after the last answer: {:?}",
            self.buf
        );
    }
}

/// The request line and headers of `req` (its URI's path and query), plus `extra`.
pub(crate) fn head_bytes(req: &Request<Full<Bytes>>, extra: &[(&str, &str)]) -> Vec<u8> {
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut head = format!("{} {target} HTTP/1.1\r\n", req.method()).into_bytes();
    for (name, value) in req.headers() {
        head.extend_from_slice(format!("{name}: ").as_bytes());
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    for (name, value) in extra {
        head.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// A client that reuses its connection after a refusal must get the next answer on it: the
/// server reads every refused body within the bound to its end and keeps the connection, and
/// only when it leaves a body unread (over the bound) it closes the connection, announcing it
/// with `Connection: close` in that answer. Before, a refusal sent before the body had arrived
/// closed the connection unannounced, and a keep-alive client's next request failed
/// (`IncompleteMessage`).
#[tokio::test(flavor = "multi_thread")]
async fn one_connection_gets_every_answer_or_an_announced_close() {
    let c = Cluster::start(&[R], 1);
    c.leader(R).await;
    for url in [c.aws_url(R, 1), c.gateway_url()] {
        let client = c.raw(&url, R);
        let good = Signer::new("test", "test", R);
        let now = SystemTime::now();
        let signed = |mut req: Request<Full<Bytes>>, body: &[u8]| {
            good.sign(&mut req, body, now).unwrap();
            req
        };
        let list = || {
            client
                .signed("ListKeys", Bytes::from_static(b"{}"))
                .unwrap()
        };
        let mut conn = RawConn::connect(client.authority()).await;

        let a = conn.exchange(list(), b"{}").await;
        assert_eq!(a.status, 200, "{url}");

        // Refusals of requests sent whole: every answer comes on the same connection.
        let body: &[u8] = br#"{"Description":"must not exist"}"#;
        let mut refused = Vec::new();
        let mut req = client.unsigned("CreateKey", Bytes::from_static(body));
        req.headers_mut()
            .insert("content-type", HeaderValue::from_static("text/plain"));
        refused.push((signed(req, body), body, 415, "SerializationException"));
        let req = client.unsigned("FlyToTheMoon", Bytes::from_static(body));
        refused.push((signed(req, body), body, 400, "UnknownOperationException"));
        let bad: &[u8] = b"not json";
        let req = client.unsigned("CreateKey", Bytes::from_static(bad));
        refused.push((signed(req, bad), bad, 400, "SerializationException"));
        let mut req = client.unsigned("CreateKey", Bytes::from_static(body));
        Signer::new("test", "wrong", R)
            .sign(&mut req, body, now)
            .unwrap();
        refused.push((req, body, 400, "InvalidSignatureException"));
        let req = client.unsigned("CreateKey", Bytes::from_static(body));
        refused.push((req, body, 400, "MissingAuthenticationTokenException"));
        for (method, path, status) in [("GET", "/", 405), ("POST", "/keys", 404)] {
            let mut req = client.unsigned("CreateKey", Bytes::from_static(body));
            *req.method_mut() = method.parse().unwrap();
            *req.uri_mut() = format!("{url}{path}").parse().unwrap();
            refused.push((req, body, status, "UnknownOperationException"));
        }
        for (req, body, status, code) in refused {
            let what = format!("{url} {} {}", req.method(), req.uri());
            let a = conn.exchange(req, body).await;
            assert_eq!((a.status, a.code().as_str()), (status, code), "{what}");
            assert!(!a.closes(), "{what}: {a:?}");
        }

        // Refusals decided from the head alone, with the body still to come (`Expect:
        // 100-continue`): the server reads the body before it answers, and the connection
        // serves the next request.
        for (method, path, status) in [("GET", "/", 405), ("POST", "/?Action=CreateKey", 404)] {
            let mut req = client.unsigned("CreateKey", Bytes::from_static(body));
            *req.method_mut() = method.parse().unwrap();
            *req.uri_mut() = format!("{url}{path}").parse().unwrap();
            let a = conn.exchange_expecting_continue(req, body).await;
            assert_eq!(a.status, status, "{url} {method} {path}");
            assert_eq!(a.code(), "UnknownOperationException");
            assert!(!a.closes(), "{url} {method} {path}: {a:?}");
        }
        let a = conn.exchange(list(), b"{}").await;
        assert_eq!(a.status, 200, "{url}: {a:?}");
        assert_eq!(a.header("connection"), None);

        // A declared length over the bound: refused unread, so the answer announces the close,
        // and the server closes.
        let req = client.unsigned("CreateKey", Bytes::new());
        let too_long = (MAX_BODY + 1).to_string();
        let head = head_bytes(
            &req,
            &[("content-length", &too_long), ("expect", "100-continue")],
        );
        conn.write(&head).await;
        let a = conn.read_answer().await.expect("an answer");
        assert_eq!(
            (a.status, a.code().as_str()),
            (413, "SerializationException")
        );
        assert!(a.closes(), "{url}: 413 without Connection: close: {a:?}");
        conn.closed_by_server().await;

        // A streamed (chunked) body that passes the bound: refused once it does, the rest
        // unread, announced the same way. (Signed: an unauthenticated request's body is read
        // only up to 64 KiB, and refused as unauthenticated.)
        let mut conn = RawConn::connect(client.authority()).await;
        let req = signed(client.unsigned("CreateKey", Bytes::new()), b"");
        let mut bytes = head_bytes(&req, &[("transfer-encoding", "chunked")]);
        bytes.extend_from_slice(format!("{:x}\r\n", MAX_BODY + 1).as_bytes());
        bytes.resize(bytes.len() + MAX_BODY + 1, b' ');
        conn.write(&bytes).await;
        let a = conn.read_answer().await.expect("an answer");
        assert_eq!(
            (a.status, a.code().as_str()),
            (413, "SerializationException")
        );
        assert!(a.closes(), "{url}: 413 without Connection: close: {a:?}");
        conn.closed_by_server().await;

        // An unauthenticated request with a large declared body: refused from its head alone
        // (the body never comes, and the answer does not wait for it), with the close
        // announced, since the body is left unread.
        let mut conn = RawConn::connect(client.authority()).await;
        let req = client.unsigned("CreateKey", Bytes::new());
        let large = (MAX_BODY / 2).to_string();
        conn.write(&head_bytes(&req, &[("content-length", &large)]))
            .await;
        let a = conn.read_answer().await.expect("an answer");
        assert_eq!(
            (a.status, a.code().as_str()),
            (400, "MissingAuthenticationTokenException")
        );
        assert!(a.closes(), "{url}: {a:?}");
        conn.closed_by_server().await;

        // A new connection works, and nothing was created.
        let mut conn = RawConn::connect(client.authority()).await;
        let a = conn.exchange(list(), b"{}").await;
        assert_eq!(a.status, 200, "{url}");
        let keys: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(keys["Keys"], json!([]), "a refused request created a key");
    }
}

/// The operation is signed: a DescribeKey resent with `X-Amz-Target` changed to DisableKey is
/// refused (its signature covers the target), a request whose signature leaves out the target
/// it carries is refused before its body is read, and the key stays enabled.
#[tokio::test(flavor = "multi_thread")]
async fn a_signed_describe_key_resent_as_disable_key_changes_nothing() {
    let c = Cluster::start(&[R], 1);
    c.leader(R).await;
    for url in [c.gateway_url(), c.aws_url(R, 1)] {
        let client = c.raw(&url, R);
        let a = client.call("CreateKey", &json!({})).await.unwrap();
        let key = a.json()["KeyMetadata"]["KeyId"]
            .as_str()
            .unwrap()
            .to_string();
        let body = Bytes::from(serde_json::to_vec(&json!({ "KeyId": key })).unwrap());
        let describe = client.signed("DescribeKey", body.clone()).unwrap();
        let (mut parts, _) = describe.into_parts();
        parts.headers.insert(
            "x-amz-target",
            HeaderValue::from_static("TrentService.DisableKey"),
        );
        let a = client
            .send(Request::from_parts(parts, Full::new(body.clone())))
            .await
            .unwrap();
        assert_error(&a, "InvalidSignatureException", Some(MISMATCH));

        // Signed without the target, which is added afterwards.
        let mut req = client.unsigned("DisableKey", body.clone());
        req.headers_mut().remove("x-amz-target");
        Signer::new("test", "test", R)
            .sign(&mut req, &body, SystemTime::now())
            .unwrap();
        req.headers_mut().insert(
            "x-amz-target",
            HeaderValue::from_static("TrentService.DisableKey"),
        );
        let a = client.send(req).await.unwrap();
        assert_error(
            &a,
            "IncompleteSignatureException",
            Some("'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization."),
        );

        let a = client
            .call("DescribeKey", &json!({ "KeyId": key }))
            .await
            .unwrap();
        assert_eq!(a.json()["KeyMetadata"]["Enabled"], json!(true), "{url}");
        assert_eq!(a.json()["KeyMetadata"]["KeyState"], json!("Enabled"));
    }
}
