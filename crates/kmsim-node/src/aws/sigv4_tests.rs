//! Tests of the verifier against requests signed by the `aws-sigv4` crate's own request signer
//! (`aws_sigv4::http_request::sign`), which the AWS SDK for Rust uses.

use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

use super::*;
use crate::aws::session_token::{Session, SessionKey};
use crate::config::{CredentialEntry, Secret};

const NOW: i64 = 1_796_119_200; // 2026-12-01T10:00:00Z

fn store() -> CredentialStore {
    CredentialStore::new(&[
        CredentialEntry {
            access_key_id: "test".into(),
            secret_access_key: Secret::new("test"),
            principal_arn: "arn:aws:iam::111122223333:root".into(),
            session_token: None,
        },
        CredentialEntry {
            access_key_id: "ASIATEMP".into(),
            secret_access_key: Secret::new("temp-secret"),
            principal_arn: "arn:aws:iam::111122223333:role/temp".into(),
            session_token: Some(Secret::new("the-session-token")),
        },
    ])
    .with_sessions(Some(session_key()))
}

fn session_key() -> SessionKey {
    SessionKey::new(kmsim_crypto::DomainKey::from_bytes(&[9; 32]).unwrap())
}

/// A request as a client would send it, before signing.
#[derive(Debug, Clone)]
struct Req {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn base_request(body: &[u8]) -> Req {
    Req {
        headers: vec![
            ("host".into(), "127.0.0.1:4599".into()),
            ("content-type".into(), "application/x-amz-json-1.1".into()),
            ("x-amz-target".into(), "TrentService.ListKeys".into()),
        ],
        body: body.to_vec(),
    }
}

/// Signs `req` with the crate's full signer; returns the headers as the server receives them.
fn signed(
    req: &Req,
    akid: &str,
    secret: &str,
    token: Option<&str>,
    region: &str,
    at: i64,
) -> HeaderMap {
    let identity = Credentials::new(akid, secret, token.map(String::from), None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("kms")
        .time(UNIX_EPOCH + Duration::from_secs(at as u64))
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "POST",
        "http://127.0.0.1:4599/",
        req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(&req.body),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut http_req = http::Request::builder()
        .method("POST")
        .uri("http://127.0.0.1:4599/")
        .body(())
        .unwrap();
    for (k, v) in &req.headers {
        http_req.headers_mut().append(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    instructions.apply_to_request_http1x(&mut http_req);
    http_req.headers().clone()
}

fn check(headers: &HeaderMap, body: &[u8], now: i64) -> Result<Caller, KmsError> {
    let auth = parse_authorization(
        headers.get("authorization").map(|v| v.as_bytes()),
        headers.contains_key("x-amz-date"),
    )?;
    check_scope(&auth, |r| {
        ["us-east-1", "eu-west-1", "ap-southeast-2"].contains(&r)
    })?;
    verify(
        &store(),
        &auth,
        &SignedRequest {
            method: "POST",
            headers,
            body,
        },
        Now {
            simulated: now,
            host: now,
        },
    )
}

fn code(r: Result<Caller, KmsError>) -> &'static str {
    r.err().map(|e| e.code()).unwrap_or("ok")
}

#[test]
fn a_signed_request_verifies_and_names_its_caller() {
    let req = base_request(b"{}");
    let h = signed(&req, "test", "test", None, "us-east-1", NOW);
    let caller = check(&h, b"{}", NOW).unwrap();
    assert_eq!(caller.access_key_id, "test");
    assert_eq!(caller.principal_arn, "arn:aws:iam::111122223333:root");
}

#[test]
fn missing_and_malformed_authorization() {
    let e = parse_authorization(None, true).unwrap_err();
    assert_eq!(e.code(), "MissingAuthenticationTokenException");
    assert_eq!(e.message(), "Missing Authentication Token");

    let e = parse_authorization(Some(b"AWS4-HMAC-SHA256 Signature=ab"), true).unwrap_err();
    assert_eq!(e.code(), "IncompleteSignatureException");
    assert!(e
        .message()
        .starts_with("Authorization header requires 'Credential' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization="));

    let e = parse_authorization(
        Some(b"AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=host, Signature=ab"),
        false,
    )
    .unwrap_err();
    assert!(e.message().contains("'X-Amz-Date'"), "{}", e.message());

    let e = parse_authorization(
        Some(b"AWS4-HMAC-SHA256 Credential=test/20261201/us-east-1, SignedHeaders=host, Signature=ab"),
        true,
    )
    .unwrap_err();
    assert_eq!(e.code(), "IncompleteSignatureException");
    assert!(e
        .message()
        .starts_with("Credential must have exactly 5 slash-delimited elements"));

    let e = parse_authorization(
        Some(b"AWS4-HMAC-SHA512 Credential=a/b/c/d/e, SignedHeaders=host, Signature=ab"),
        true,
    )
    .unwrap_err();
    assert_eq!(e.code(), "IncompleteSignatureException");

    // Non-UTF-8 bytes never panic.
    assert!(parse_authorization(Some(&[0xff, 0xfe, b' ', 0x80]), true).is_err());
}

#[test]
fn scope_errors_use_the_aws_messages() {
    let req = base_request(b"{}");
    let scoped = |region: &str| signed(&req, "test", "test", None, region, NOW);
    let e = check(&scoped("mars-north-1"), b"{}", NOW).unwrap_err();
    assert_eq!(e.code(), "InvalidSignatureException");
    assert_eq!(
        e.message(),
        "Credential should be scoped to a valid region. "
    );

    let auth = parse_authorization(
        Some(b"AWS4-HMAC-SHA256 Credential=test/20261201/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=ab"),
        true,
    )
    .unwrap();
    let e = check_scope(&auth, |_| true).unwrap_err();
    assert_eq!(
        e.message(),
        "Credential should be scoped to correct service: 'kms'. "
    );
}

#[test]
fn unknown_keys_wrong_secrets_and_tokens() {
    let req = base_request(b"{}");
    let e = check(
        &signed(&req, "nobody", "test", None, "us-east-1", NOW),
        b"{}",
        NOW,
    )
    .unwrap_err();
    assert_eq!(e.code(), "UnrecognizedClientException");
    assert_eq!(e.message(), INVALID_TOKEN);

    let e = check(
        &signed(&req, "test", "wrong", None, "us-east-1", NOW),
        b"{}",
        NOW,
    )
    .unwrap_err();
    assert_eq!(e.code(), "InvalidSignatureException");
    assert_eq!(e.message(), SIGNATURE_MISMATCH);

    // Temporary credentials: the configured token, signed, is required.
    let ok = signed(
        &req,
        "ASIATEMP",
        "temp-secret",
        Some("the-session-token"),
        "eu-west-1",
        NOW,
    );
    assert_eq!(
        check(&ok, b"{}", NOW).unwrap().principal_arn,
        "arn:aws:iam::111122223333:role/temp"
    );
    for token in [None, Some("another-token")] {
        let h = signed(&req, "ASIATEMP", "temp-secret", token, "eu-west-1", NOW);
        assert_eq!(code(check(&h, b"{}", NOW)), "UnrecognizedClientException");
    }
    // A token on long-term credentials is refused.
    let h = signed(
        &req,
        "test",
        "test",
        Some("the-session-token"),
        "eu-west-1",
        NOW,
    );
    assert_eq!(code(check(&h, b"{}", NOW)), "UnrecognizedClientException");
}

#[test]
fn a_role_session_signs_with_its_sealed_credentials_until_it_expires() {
    let req = base_request(b"{}");
    let session = Session {
        role_arn: "arn:aws:iam::111122223333:role/app/Reader".into(),
        session_name: "job-7".into(),
        expires_ms: (NOW + 900) * 1000,
        secret_access_key: Secret::new("session-secret"),
    };
    let token = session_key().seal(&session, "ASIASESSION", &mut rand::thread_rng());
    let ok = signed(
        &req,
        "ASIASESSION",
        "session-secret",
        Some(&token),
        "us-east-1",
        NOW,
    );
    assert_eq!(
        check(&ok, b"{}", NOW).unwrap().principal_arn,
        "arn:aws:sts::111122223333:assumed-role/Reader/job-7"
    );
    // At its expiry, on the Region's clock (a request signed then, with the host's time).
    let late = signed(
        &req,
        "ASIASESSION",
        "session-secret",
        Some(&token),
        "us-east-1",
        NOW + 900,
    );
    let e = check(&late, b"{}", NOW + 900).unwrap_err();
    assert_eq!(e.code(), "ExpiredTokenException");
    assert_eq!(
        e.message(),
        "The security token included in the request is expired"
    );
    // The wrong secret, another access key, or an altered token.
    let h = signed(&req, "ASIASESSION", "other", Some(&token), "us-east-1", NOW);
    assert_eq!(code(check(&h, b"{}", NOW)), "InvalidSignatureException");
    let h = signed(
        &req,
        "ASIAOTHER",
        "session-secret",
        Some(&token),
        "us-east-1",
        NOW,
    );
    assert_eq!(code(check(&h, b"{}", NOW)), "UnrecognizedClientException");
    let mut forged = token.clone().into_bytes();
    let last = forged.len() - 1;
    forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
    let forged = String::from_utf8(forged).unwrap();
    let h = signed(
        &req,
        "ASIASESSION",
        "session-secret",
        Some(&forged),
        "us-east-1",
        NOW,
    );
    let e = check(&h, b"{}", NOW).unwrap_err();
    assert_eq!(e.code(), "UnrecognizedClientException");
    assert_eq!(e.message(), INVALID_TOKEN);
    assert!(!e.message().contains("session-secret"));
    // No token at all: an unknown access key.
    let h = signed(
        &req,
        "ASIASESSION",
        "session-secret",
        None,
        "us-east-1",
        NOW,
    );
    assert_eq!(code(check(&h, b"{}", NOW)), "UnrecognizedClientException");
}

#[test]
fn dates_outside_fifteen_minutes_of_either_clock_are_refused() {
    let req = base_request(b"{}");
    let at = |t: i64| signed(&req, "test", "test", None, "us-east-1", t);
    assert_eq!(code(check(&at(NOW - 15 * 60), b"{}", NOW)), "ok");
    assert_eq!(code(check(&at(NOW + 15 * 60), b"{}", NOW)), "ok");
    let e = check(&at(NOW - 3600), b"{}", NOW).unwrap_err();
    assert_eq!(e.code(), "InvalidSignatureException");
    assert_eq!(
        e.message(),
        "Signature expired: 20261201T090000Z is now earlier than 20261201T094500Z (20261201T100000Z - 15 min.)"
    );
    let e = check(&at(NOW + 3600), b"{}", NOW).unwrap_err();
    assert_eq!(
        e.message(),
        "Signature not yet current: 20261201T110000Z is still later than 20261201T101500Z (20261201T100000Z + 15 min.)"
    );

    // After AdvanceClock the host clock still accepts clients that sign with the host's time,
    // and the simulated clock accepts clients that sign with the simulated time.
    let h = at(NOW);
    let auth = parse_authorization(h.get("authorization").map(|v| v.as_bytes()), true).unwrap();
    let req_parts = SignedRequest {
        method: "POST",
        headers: &h,
        body: b"{}",
    };
    let shifted = Now {
        simulated: NOW + 7 * 86_400,
        host: NOW,
    };
    assert!(verify(&store(), &auth, &req_parts, shifted).is_ok());
    let shifted = Now {
        simulated: NOW,
        host: NOW - 7 * 86_400,
    };
    assert!(verify(&store(), &auth, &req_parts, shifted).is_ok());
}

#[test]
fn date_header_must_be_well_formed_and_match_the_scope() {
    let req = base_request(b"{}");
    let mut h = signed(&req, "test", "test", None, "us-east-1", NOW);
    h.insert(
        "x-amz-date",
        HeaderValue::from_static("2026-12-01T10:00:00Z"),
    );
    let e = check(&h, b"{}", NOW).unwrap_err();
    assert_eq!(e.code(), "IncompleteSignatureException");
    assert!(e
        .message()
        .starts_with("Date must be in ISO-8601 'basic format'"));

    let mut h = signed(&req, "test", "test", None, "us-east-1", NOW);
    h.insert("x-amz-date", HeaderValue::from_static("20261202T000100Z"));
    let e = check(&h, b"{}", NOW + 14 * 3600).unwrap_err();
    assert_eq!(e.code(), "InvalidSignatureException");
    assert!(e
        .message()
        .starts_with("Date in Credential scope does not match"));
}

/// Signs `headers` (which must hold `x-amz-date`) by hand over exactly the header names
/// `signed_names`, in that order, as a client that leaves some headers unsigned would, with
/// header values canonicalized as `collapse` says.
fn sign_with(
    headers: &mut HeaderMap,
    signed_names: &[&str],
    (akid, secret): (&str, &str),
    body: &[u8],
    collapse: Collapse,
) {
    let names: Vec<String> = signed_names.iter().map(|n| n.to_string()).collect();
    let line = signed_names.join(";");
    let amz_date = headers["x-amz-date"].to_str().unwrap().to_string();
    let scope = format!("{}/us-east-1/kms/aws4_request", &amz_date[..8]);
    let canonical = canonical_request(
        "POST",
        headers,
        &names,
        &line,
        &hex::encode(Sha256::digest(body)),
        collapse,
    );
    let sts = string_to_sign(&amz_date, &scope, &canonical);
    let secs = parse_amz_date(&amz_date).unwrap();
    let key = aws_sigv4::sign::v4::generate_signing_key(
        secret,
        UNIX_EPOCH + Duration::from_secs(secs as u64),
        "us-east-1",
        "kms",
    );
    let sig = aws_sigv4::sign::v4::calculate_signature(key, sts.as_bytes());
    headers.insert(
        "authorization",
        HeaderValue::from_str(&format!(
            "AWS4-HMAC-SHA256 Credential={akid}/{scope}, SignedHeaders={line}, Signature={sig}"
        ))
        .unwrap(),
    );
}

/// [`sign_with`] as the SigV4 specification canonicalizes (runs of spaces collapsed).
fn sign_only(
    headers: &mut HeaderMap,
    signed_names: &[&str],
    akid: &str,
    secret: &str,
    body: &[u8],
) {
    sign_with(
        headers,
        signed_names,
        (akid, secret),
        body,
        Collapse::Spaces,
    );
}

/// The headers of a request as a client sends them, before signing.
fn unsigned_headers(target: Option<&str>, content_type: bool, token: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("host", HeaderValue::from_static("127.0.0.1:4599"));
    h.insert(
        "x-amz-date",
        HeaderValue::from_str(&format_amz_date(NOW)).unwrap(),
    );
    if content_type {
        h.insert(
            "content-type",
            HeaderValue::from_static("application/x-amz-json-1.1"),
        );
    }
    if let Some(t) = target {
        h.insert("x-amz-target", HeaderValue::from_str(t).unwrap());
    }
    if let Some(t) = token {
        h.insert("x-amz-security-token", HeaderValue::from_str(t).unwrap());
    }
    h
}

#[test]
fn host_must_be_signed() {
    let req = base_request(b"{}");
    let h = signed(&req, "test", "test", None, "us-east-1", NOW);
    let text = h["authorization"]
        .to_str()
        .unwrap()
        .replace("content-type;host;", "content-type;");
    let mut h2 = h.clone();
    h2.insert("authorization", HeaderValue::from_str(&text).unwrap());
    let e = check(&h2, b"{}", NOW).unwrap_err();
    assert_eq!(e.code(), "IncompleteSignatureException");
}

#[test]
fn every_header_that_says_what_to_do_must_be_signed() {
    let all = ["content-type", "host", "x-amz-date", "x-amz-target"];
    let mut h = unsigned_headers(Some("TrentService.ListKeys"), true, None);
    sign_only(&mut h, &all, "test", "test", b"{}");
    assert_eq!(code(check(&h, b"{}", NOW)), "ok");
    for (left_out, display) in [
        ("host", "'Host' or ':authority'"),
        ("x-amz-date", "'X-Amz-Date'"),
        ("x-amz-target", "'X-Amz-Target'"),
        ("content-type", "'Content-Type'"),
    ] {
        let names: Vec<&str> = all.iter().copied().filter(|n| *n != left_out).collect();
        let mut h = unsigned_headers(Some("TrentService.ListKeys"), true, None);
        sign_only(&mut h, &names, "test", "test", b"{}");
        let e = check(&h, b"{}", NOW).unwrap_err();
        assert_eq!(e.code(), "IncompleteSignatureException", "{left_out}");
        assert_eq!(
            e.message(),
            format!("{display} must be a 'SignedHeader' in the AWS Authorization.")
        );
    }
    // A session token sent unsigned is refused the same way, before the token is compared.
    let mut h = unsigned_headers(
        Some("TrentService.ListKeys"),
        true,
        Some("the-session-token"),
    );
    sign_only(&mut h, &all, "ASIATEMP", "temp-secret", b"{}");
    let e = check(&h, b"{}", NOW).unwrap_err();
    assert_eq!(e.code(), "IncompleteSignatureException");
    assert!(e.message().starts_with("'X-Amz-Security-Token'"));
    // Headers the request does not carry need not be signed.
    let mut h = unsigned_headers(None, false, None);
    sign_only(&mut h, &["host", "x-amz-date"], "test", "test", b"{}");
    assert_eq!(code(check(&h, b"{}", NOW)), "ok");
}

#[test]
fn a_signed_describe_key_resent_as_disable_key_is_refused() {
    let mut req = base_request(b"{\"KeyId\":\"alias/x\"}");
    req.headers[2].1 = "TrentService.DescribeKey".into();
    let h = signed(&req, "test", "test", None, "us-east-1", NOW);
    assert!(h["authorization"]
        .to_str()
        .unwrap()
        .contains("x-amz-target"));
    assert_eq!(code(check(&h, &req.body, NOW)), "ok");
    let mut replayed = h.clone();
    replayed.insert(
        "x-amz-target",
        HeaderValue::from_static("TrentService.DisableKey"),
    );
    assert_eq!(
        code(check(&replayed, &req.body, NOW)),
        "InvalidSignatureException"
    );
    // Signed without X-Amz-Target, then the target added: refused whatever it names.
    let mut h = unsigned_headers(None, true, None);
    sign_only(
        &mut h,
        &["content-type", "host", "x-amz-date"],
        "test",
        "test",
        &req.body,
    );
    assert_eq!(code(check(&h, &req.body, NOW)), "ok");
    h.insert(
        "x-amz-target",
        HeaderValue::from_static("TrentService.DisableKey"),
    );
    assert_eq!(
        code(check(&h, &req.body, NOW)),
        "IncompleteSignatureException"
    );
}

#[test]
fn content_sha256_header_must_match_the_body() {
    let req = base_request(b"{\"Limit\":1}");
    let mut h = signed(&req, "test", "test", None, "us-east-1", NOW);
    h.insert(
        "x-amz-content-sha256",
        HeaderValue::from_str(&hex::encode(Sha256::digest(b"{\"Limit\":1}"))).unwrap(),
    );
    // Present and right (and not signed): fine.
    assert_eq!(code(check(&h, b"{\"Limit\":1}", NOW)), "ok");
    h.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static("UNSIGNED-PAYLOAD"),
    );
    let e = check(&h, b"{\"Limit\":1}", NOW).unwrap_err();
    assert_eq!(e.code(), "InvalidSignatureException");
    assert!(e.message().contains("x-amz-content-sha256"));
}

#[test]
fn header_canonicalization_edge_cases() {
    let mut headers = HeaderMap::new();
    headers.append("x-a", HeaderValue::from_static("  one   two  "));
    headers.append("x-a", HeaderValue::from_static("three"));
    headers.append("x-b", HeaderValue::from_static("tab\there"));
    headers.append("host", HeaderValue::from_static("h"));
    let names: Vec<String> = ["host", "x-a", "x-b", "x-missing"]
        .map(String::from)
        .to_vec();
    let c = canonical_request(
        "POST",
        &headers,
        &names,
        "host;x-a;x-b;x-missing",
        "e3b0",
        Collapse::Spaces,
    );
    assert_eq!(
        String::from_utf8(c).unwrap(),
        "POST\n/\n\nhost:h\nx-a:one two,three\nx-b:tab\there\nx-missing:\n\nhost;x-a;x-b;x-missing\ne3b0"
    );
    let c = canonical_request(
        "POST",
        &headers,
        &names[2..3],
        "x-b",
        "e3b0",
        Collapse::AllWhitespace,
    );
    assert!(String::from_utf8(c).unwrap().contains("x-b:tab here\n"));
    // Non-UTF-8 header bytes are hashed as they are.
    let mut h = HeaderMap::new();
    h.append(
        "x-c",
        HeaderValue::from_bytes(&[0xe9, b' ', b' ', 0xff]).unwrap(),
    );
    let c = canonical_request(
        "POST",
        &h,
        &["x-c".to_string()],
        "x-c",
        "",
        Collapse::Spaces,
    );
    assert!(c.windows(4).any(|w| w == [b':', 0xe9, b' ', 0xff]));
}

#[test]
fn a_botocore_style_signature_over_a_tab_verifies() {
    // botocore collapses tabs too; rebuild its canonical request by hand and sign it.
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("127.0.0.1:4599"));
    headers.insert("x-amz-date", HeaderValue::from_static("20261201T100000Z"));
    headers.insert("x-custom", HeaderValue::from_static("a\t\tb"));
    sign_with(
        &mut headers,
        &["host", "x-amz-date", "x-custom"],
        ("test", "test"),
        b"{}",
        Collapse::AllWhitespace,
    );
    assert_eq!(code(check(&headers, b"{}", NOW)), "ok");
}

/// Lowercase header names that do not collide with the ones the signer or the test sets.
fn header_name() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,12}".prop_map(|s| format!("x-t-{s}"))
}

/// Visible ASCII with spaces (what a header value may hold).
fn header_value() -> impl Strategy<Value = String> {
    "[!-~][ -~]{0,30}[!-~]"
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn crate_signed_requests_verify_and_any_change_fails(
        extra in proptest::collection::btree_map(header_name(), header_value(), 0..5),
        body in proptest::collection::vec(any::<u8>(), 0..300),
        region in prop_oneof![Just("us-east-1"), Just("eu-west-1"), Just("ap-southeast-2")],
        skew in -899i64..=899,
        mutation in 0usize..6,
        flip in any::<prop::sample::Index>(),
    ) {
        let mut req = base_request(&body);
        req.headers.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        let at = NOW + skew;
        let headers = signed(&req, "test", "test", None, region, at);
        prop_assert_eq!(code(check(&headers, &body, NOW)), "ok");

        let mut h = headers.clone();
        let mut b = body.clone();
        match mutation {
            // A signed header's value changes.
            0 => {
                let names: Vec<String> = parse_authorization(h.get("authorization").map(|v| v.as_bytes()), true)
                    .unwrap().signed_header_names().filter(|n| n != "x-amz-date").collect();
                let name = flip.get(&names).clone();
                let old = h.get(name.as_str()).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
                h.insert(http::HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(&format!("{old}x")).unwrap());
            }
            // The body changes.
            1 => {
                if b.is_empty() { b.push(b'x') } else { let i = flip.index(b.len()); b[i] ^= 0x01 }
            }
            // The date changes by one second.
            2 => {
                h.insert("x-amz-date", HeaderValue::from_str(&format_amz_date(at + 1)).unwrap());
            }
            // Signed with another secret.
            3 => h = signed(&req, "test", "other-secret", None, region, at),
            // One hex digit of the signature changes.
            4 => {
                let text = h["authorization"].to_str().unwrap().to_string();
                let pos = text.len() - 1 - flip.index(64);
                let mut bytes = text.into_bytes();
                bytes[pos] = if bytes[pos] == b'0' { b'1' } else { b'0' };
                h.insert("authorization", HeaderValue::from_bytes(&bytes).unwrap());
            }
            // Signed for another Region than the scope claims.
            _ => {
                let other = if region == "us-east-1" { "eu-west-1" } else { "us-east-1" };
                let forged = signed(&req, "test", "test", None, other, at);
                let text = forged["authorization"].to_str().unwrap().replace(other, region);
                h.insert("authorization", HeaderValue::from_str(&text).unwrap());
            }
        }
        let e = check(&h, &b, NOW).unwrap_err();
        prop_assert_eq!(e.code(), "InvalidSignatureException", "{}", e.message());
    }

    #[test]
    fn a_request_verifies_exactly_when_every_required_header_it_carries_is_signed(
        has_target in any::<bool>(),
        has_type in any::<bool>(),
        has_token in any::<bool>(),
        extra in proptest::collection::btree_map(header_name(), header_value(), 0..3),
        signs in proptest::collection::vec(any::<bool>(), 8),
    ) {
        let token = has_token.then_some("the-session-token");
        let mut h = unsigned_headers(has_target.then_some("TrentService.ListKeys"), has_type, token);
        for (k, v) in &extra {
            h.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        let mut present: Vec<String> = h.keys().map(|k| k.as_str().to_string()).collect();
        present.sort();
        let chosen: Vec<&str> = present
            .iter()
            .enumerate()
            .filter(|(i, _)| signs.get(*i).copied().unwrap_or(true))
            .map(|(_, n)| n.as_str())
            .collect();
        prop_assume!(!chosen.is_empty());
        let (akid, secret) = if has_token { ("ASIATEMP", "temp-secret") } else { ("test", "test") };
        sign_only(&mut h, &chosen, akid, secret, b"{}");
        let required = ["host", "x-amz-date", "x-amz-target", "content-type", "x-amz-security-token"];
        let complete = required
            .iter()
            .all(|r| !present.iter().any(|p| p == r) || chosen.contains(r));
        let outcome = code(check(&h, b"{}", NOW));
        if complete {
            prop_assert_eq!(outcome, "ok");
        } else {
            prop_assert_eq!(outcome, "IncompleteSignatureException");
        }
    }

    #[test]
    fn arbitrary_authorization_headers_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..200), date in proptest::option::of("[0-9TZ]{0,17}")) {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(&raw) { h.insert("authorization", v); }
        if let Some(d) = &date { if let Ok(v) = HeaderValue::from_str(d) { h.insert("x-amz-date", v); } }
        let _ = check(&h, b"", NOW);
        let _ = parse_authorization(Some(&raw), date.is_some());
    }
}

/// Version `version` of IAM: user `app` with one run-time access key sealed under
/// [`session_key`], or with none.
fn iam_version(version: u64, key: Option<(&str, &str)>) -> kmsim_core::iam::VersionedIam {
    use kmsim_core::iam::{AccessKey, IamDocument, IamEntity, VersionedIam};
    let access_keys = key
        .map(|(id, secret)| AccessKey {
            access_key_id: id.into(),
            sealed_secret: session_key().seal_access_key(
                id,
                &Secret::new(secret),
                &mut rand::thread_rng(),
            ),
            created_ms: 0,
        })
        .into_iter()
        .collect();
    VersionedIam {
        version,
        document: IamDocument {
            users: vec![IamEntity {
                arn: "arn:aws:iam::111122223333:user/app".into(),
                access_keys,
                ..Default::default()
            }],
            roles: Vec::new(),
        },
    }
}

#[test]
fn a_run_time_access_key_verifies_until_deleted_and_is_relayed_unheld() {
    const ID: &str = "AKIAQWERTYUIOPASDF23";
    const SECRET: &str = "0123456789012345678901234567890123456789";
    let req = base_request(b"{}");
    let h = signed(&req, ID, SECRET, None, "us-east-1", NOW);
    let auth = parse_authorization(h.get("authorization").map(|v| v.as_bytes()), true).unwrap();
    let now = Now {
        simulated: NOW,
        host: NOW,
    };
    let signed_req = SignedRequest {
        method: "POST",
        headers: &h,
        body: b"{}",
    };
    let iam = std::sync::Arc::new(crate::iam::Iam::with_home(
        None,
        "us-east-1".into(),
        Some(session_key()),
    ));
    iam.install(Some(&iam_version(1, Some((ID, SECRET)))));
    assert_eq!(iam.version(), 1);
    let node = store().with_iam(Some(iam.clone()));
    let caller = verify(&node, &auth, &signed_req, now).unwrap();
    assert_eq!(caller.principal_arn, "arn:aws:iam::111122223333:user/app");
    assert_eq!(caller.access_key_id, ID);
    // The wrong secret does not verify.
    let forged = signed(&req, ID, "not-the-secret", None, "us-east-1", NOW);
    let forged_auth =
        parse_authorization(forged.get("authorization").map(|v| v.as_bytes()), true).unwrap();
    let refused = verify(
        &node,
        &forged_auth,
        &SignedRequest {
            headers: &forged,
            ..signed_req
        },
        now,
    );
    assert_eq!(code(refused), "InvalidSignatureException");
    // Deleted (a newer version without it): refused at once, though its signing key is cached.
    iam.install(Some(&iam_version(2, None)));
    assert_eq!(
        code(verify(&node, &auth, &signed_req, now)),
        "UnrecognizedClientException"
    );
    // A process that holds no IAM (the gateway) lets it through to relay, with no credential,
    // but never verifies it; a key of another shape is refused before relaying.
    let gateway = store();
    let relayed = check_headers(&gateway, &auth, &h, true).unwrap();
    assert!(relayed.credential.is_none());
    assert_eq!(
        check_headers(&gateway, &auth, &h, false)
            .unwrap_err()
            .code(),
        "UnrecognizedClientException"
    );
    assert_eq!(
        code(verify(&gateway, &auth, &signed_req, now)),
        "UnrecognizedClientException"
    );
    let other = signed(&req, "AKIDNOTRUNTIME", SECRET, None, "us-east-1", NOW);
    let other_auth =
        parse_authorization(other.get("authorization").map(|v| v.as_bytes()), true).unwrap();
    assert_eq!(
        check_headers(&gateway, &other_auth, &other, true)
            .unwrap_err()
            .code(),
        "UnrecognizedClientException"
    );
}
