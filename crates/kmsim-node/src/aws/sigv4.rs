//! SigV4 verification of AWS JSON requests: the `Authorization` header is parsed, the request's
//! canonical form is rebuilt from exactly the headers it says it signed, and the signature is
//! recomputed with the secret of its access key and compared in constant time.
//!
//! The algorithm (AWS's "Signature Version 4", header form, as KMS clients use it):
//!
//! 1. `Authorization: AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/REGION/SERVICE/aws4_request,
//!    SignedHeaders=h1;h2;…, Signature=<64 hex>`; `X-Amz-Date: YYYYMMDD'T'HHMMSS'Z'` is
//!    required and its date must be the scope's. `SignedHeaders` must name `host` and
//!    `x-amz-date`, and each of `x-amz-target`, `content-type` and `x-amz-security-token` that
//!    the request carries ([`check_headers`], run before the body is read).
//! 2. Canonical request, lines joined by `\n`: the method; the canonical URI `/` (the front
//!    serves only `POST /`); the canonical query string, always empty; one `name:value` line per
//!    signed header, in the order of `SignedHeaders`, where `value` is every value of that header
//!    in arrival order, each trimmed of spaces with runs of inner spaces collapsed to one, joined
//!    by `,` (a signed header the request lacks contributes an empty value); an empty line; the
//!    `SignedHeaders` list as sent; the lowercase hex SHA-256 of the body. When the request
//!    carries `X-Amz-Content-Sha256` it must equal that hash.
//! 3. String to sign: `AWS4-HMAC-SHA256`, the `X-Amz-Date` value, the scope
//!    `YYYYMMDD/REGION/SERVICE/aws4_request`, and the hex SHA-256 of the canonical request, joined
//!    by `\n`.
//! 4. Signing key: `aws_sigv4::sign::v4::generate_signing_key(secret, day, region, service)`
//!    (service `kms`, or `sts` for STS on the same endpoint), cached per access key, day,
//!    Region and service ([`CredentialStore::signing_key`]); signature:
//!    `aws_sigv4::sign::v4::calculate_signature(key, string_to_sign)`, compared with
//!    [`subtle::ConstantTimeEq`].
//!
//! botocore collapses every kind of whitespace inside header values (Python's `str.split()`),
//! the Rust SDK only spaces. A signed value that holds a tab or another whitespace character is
//! therefore tried both ways; for every other request there is one computation.
//!
//! Time: the request date must be within [`MAX_SKEW_SECS`] (15 minutes) of the Region's
//! simulated clock **or** of the host clock, so that clients keep working after an experiment
//! has moved the simulated clock forward with `AdvanceClock` (they sign with the host's time).

use std::borrow::Cow;

use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use kmsim_core::KmsError;

use super::amz_date::{format_amz_date, parse_amz_date};
pub use super::credentials::INVALID_TOKEN;
use super::credentials::{Credential, CredentialStore, EXPIRED_TOKEN, SERVICE, STS_SERVICE};
use super::errors::truncate;

/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The scope's terminator.
pub const TERMINATOR: &str = "aws4_request";

/// How far a request's date may be from the clock, in seconds (AWS: 15 minutes).
pub const MAX_SKEW_SECS: i64 = 15 * 60;

/// The AWS message of a signature that does not match.
pub const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// The parts of a SigV4 `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key id.
    pub access_key_id: String,
    /// The scope's date, `YYYYMMDD`.
    pub date: String,
    /// The scope's Region: where the request is served.
    pub region: String,
    /// The scope's service (must be `kms`, or `sts` for STS on the same endpoint).
    pub service: String,
    /// The scope's terminator (must be `aws4_request`).
    pub terminator: String,
    /// `SignedHeaders` as sent (`;`-separated).
    pub signed_headers: String,
    /// The hex signature.
    pub signature: String,
}

impl Authorization {
    /// `YYYYMMDD/REGION/SERVICE/TERMINATOR`
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/{}",
            self.date, self.region, self.service, self.terminator
        )
    }

    /// The signed header names, lowercased.
    pub fn signed_header_names(&self) -> impl Iterator<Item = String> + '_ {
        self.signed_headers
            .split(';')
            .map(|h| h.trim().to_ascii_lowercase())
    }
}

/// Parses the `Authorization` header (`None`: the request has none). `has_date` tells whether
/// the request carries `X-Amz-Date`; its absence is reported together with missing parameters,
/// as AWS does.
pub fn parse_authorization(
    value: Option<&[u8]>,
    has_date: bool,
) -> Result<Authorization, KmsError> {
    let Some(raw) = value else {
        return Err(KmsError::MissingAuthenticationToken(
            "Missing Authentication Token".into(),
        ));
    };
    let text = String::from_utf8_lossy(raw);
    let text = text.trim();
    let (algorithm, rest) = text
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((text, ""));
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let Some((k, v)) = part.trim().split_once('=') else {
            continue;
        };
        let slot = match k.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => continue,
        };
        if slot.is_none() {
            *slot = Some(v.trim().to_string());
        }
    }
    let mut missing = String::new();
    for (name, slot) in [
        ("Credential", &credential),
        ("Signature", &signature),
        ("SignedHeaders", &signed_headers),
    ] {
        if slot.as_deref().is_none_or(str::is_empty) {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if !has_date {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    let (Some(credential), Some(signed_headers), Some(signature), true) =
        (credential, signed_headers, signature, missing.is_empty())
    else {
        return Err(KmsError::IncompleteSignature(format!(
            "{missing}Authorization={}",
            truncate(text, 512)
        )));
    };
    if algorithm != ALGORITHM {
        return Err(KmsError::IncompleteSignature(format!(
            "Unsupported AWS 'algorithm': '{}'",
            truncate(algorithm, 64)
        )));
    }
    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts[..] else {
        return Err(KmsError::IncompleteSignature(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{}'",
            truncate(&credential, 256)
        )));
    };
    Ok(Authorization {
        access_key_id: access_key_id.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        terminator: terminator.to_string(),
        signed_headers,
        signature,
    })
}

/// The checks of the credential scope that need no secret: terminator, service, and a Region
/// that `known_region` accepts. The gateway runs them before it forwards.
pub fn check_scope(
    auth: &Authorization,
    known_region: impl Fn(&str) -> bool,
) -> Result<(), KmsError> {
    if auth.terminator != TERMINATOR {
        return Err(KmsError::InvalidSignature(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
            truncate(&auth.terminator, 64)
        )));
    }
    if auth.service != SERVICE && auth.service != STS_SERVICE {
        return Err(KmsError::InvalidSignature(format!(
            "Credential should be scoped to correct service: '{SERVICE}'. "
        )));
    }
    if !known_region(&auth.region) {
        return Err(KmsError::InvalidSignature(
            "Credential should be scoped to a valid region. ".into(),
        ));
    }
    Ok(())
}

/// What a request's signature covers.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// Every header as received.
    pub headers: &'a HeaderMap,
    /// The whole body.
    pub body: &'a [u8],
}

/// The two clocks a request date is checked against, in seconds since the epoch.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// The Region's simulated clock (`SimClock::now_ms`).
    pub simulated: i64,
    /// The host clock (`now_ms - offset_ms`).
    pub host: i64,
}

/// Who signed a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The access key the request was signed with.
    pub access_key_id: String,
    /// The principal of that access key.
    pub principal_arn: String,
}

/// How a header value's inner whitespace is collapsed in the canonical request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collapse {
    /// Runs of spaces become one space (the SigV4 specification, the Rust SDK).
    Spaces,
    /// Runs of any ASCII whitespace become one space (botocore).
    AllWhitespace,
}

/// What [`check_headers`] established about a request before its body is read.
#[derive(Debug, Clone)]
pub struct HeaderCheck<'a> {
    /// The credential the request claims (a role session's is opened from its token); `None`
    /// for a request this process relays, signed with a run-time access key it does not hold.
    pub credential: Option<Cow<'a, Credential>>,
    /// The `X-Amz-Date` value.
    pub amz_date: String,
    /// `X-Amz-Date` in seconds since the epoch.
    pub request_secs: i64,
    /// The signed header names, lowercased, in the order of `SignedHeaders`.
    pub signed: Vec<String>,
}

/// Headers that must be in `SignedHeaders` whenever the request carries them: the operation
/// (`X-Amz-Target`), how the body is read (`Content-Type`) and the session token. An unsigned
/// one could be changed by anyone who sees the request, e.g. a signed DescribeKey resent as
/// DisableKey.
pub const SIGNED_WHEN_PRESENT: [(&str, &str); 3] = [
    ("x-amz-target", "X-Amz-Target"),
    ("content-type", "Content-Type"),
    ("x-amz-security-token", "X-Amz-Security-Token"),
];

/// Every check of a request's SigV4 headers that needs neither the body nor the clock: the date
/// format and its match with the scope, a known access key, the headers that must be signed and
/// the session token. The front runs it before it reads the body, so an unauthenticated client
/// cannot make it read one.
///
/// `relay`: this process relays the request to another Region's node, which verifies it. A
/// run-time access key (`kmsim iam create-access-key`: `AKIA` and 16 base32 characters) that
/// this process does not hold then passes with no credential: the gateway holds no IAM, and a
/// node may not have applied a key another Region already has.
pub fn check_headers<'a>(
    store: &'a CredentialStore,
    auth: &Authorization,
    headers: &HeaderMap,
    relay: bool,
) -> Result<HeaderCheck<'a>, KmsError> {
    let amz_date = headers
        .get("x-amz-date")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let Some(request_secs) = parse_amz_date(&amz_date) else {
        return Err(KmsError::IncompleteSignature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
            truncate(&amz_date, 64)
        )));
    };
    if amz_date[..8] != auth.date {
        return Err(KmsError::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}', from '{amz_date}'.",
            truncate(&auth.date, 16),
            &amz_date[..8]
        )));
    }
    // An access key that is neither the topology's nor possibly a role session's (which comes
    // with its token) is refused first, as before sessions existed.
    let token = headers.get("x-amz-security-token").map(|v| v.as_bytes());
    let known = store.knows(&auth.access_key_id);
    let relayed_unknown = relay
        && !known
        && token.is_none()
        && kmsim_core::iam::is_runtime_access_key_id(&auth.access_key_id);
    if !known && !relayed_unknown && (token.is_none() || store.sessions().is_none()) {
        return Err(KmsError::UnrecognizedClient(INVALID_TOKEN.into()));
    }
    let signed: Vec<String> = auth.signed_header_names().collect();
    let is_signed = |name: &str| signed.iter().any(|h| h == name);
    if !is_signed("host") {
        return Err(KmsError::IncompleteSignature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    if !is_signed("x-amz-date") {
        return Err(KmsError::IncompleteSignature(
            "'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    for (name, display) in SIGNED_WHEN_PRESENT {
        if headers.contains_key(name) && !is_signed(name) {
            return Err(KmsError::IncompleteSignature(format!(
                "'{display}' must be a 'SignedHeader' in the AWS Authorization."
            )));
        }
    }
    let credential = if relayed_unknown {
        None
    } else {
        Some(store.resolve(&auth.access_key_id, token)?)
    };
    Ok(HeaderCheck {
        credential,
        amz_date,
        request_secs,
        signed,
    })
}

/// Verifies the signature of a request whose `Authorization` is `auth` (already parsed and
/// scope-checked) against `store`, at `now`: [`check_headers`], the clock, the body hash and
/// the signature.
pub fn verify(
    store: &CredentialStore,
    auth: &Authorization,
    req: &SignedRequest<'_>,
    now: Now,
) -> Result<Caller, KmsError> {
    let HeaderCheck {
        credential: cred,
        amz_date,
        request_secs,
        signed,
    } = check_headers(store, auth, req.headers, false)?;
    let cred = cred.ok_or_else(|| KmsError::UnrecognizedClient(INVALID_TOKEN.into()))?;
    check_clock(request_secs, &amz_date, now)?;
    // A role session's credentials end at their expiry on the Region's (simulated) clock.
    if cred
        .expires_ms
        .is_some_and(|exp| now.simulated.saturating_mul(1000) >= exp)
    {
        return Err(KmsError::ExpiredToken(EXPIRED_TOKEN.into()));
    }
    let payload_hash = hex::encode(Sha256::digest(req.body));
    if let Some(claimed) = req.headers.get("x-amz-content-sha256") {
        if claimed.as_bytes() != payload_hash.as_bytes() {
            return Err(KmsError::InvalidSignature(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .into(),
            ));
        }
    }
    let day_start = request_secs - request_secs.rem_euclid(86_400);
    let key = store.signing_key(&cred, &auth.date, day_start, &auth.region, &auth.service);
    let mut tries = vec![Collapse::Spaces];
    if signed_values_have_other_whitespace(req.headers, &signed) {
        tries.push(Collapse::AllWhitespace);
    }
    for collapse in tries {
        let canonical = canonical_request(
            req.method,
            req.headers,
            &signed,
            &auth.signed_headers,
            &payload_hash,
            collapse,
        );
        let sts = string_to_sign(&amz_date, &auth.scope(), &canonical);
        let expected = aws_sigv4::sign::v4::calculate_signature(key, sts.as_bytes());
        if bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
            return Ok(Caller {
                access_key_id: cred.access_key_id.clone(),
                principal_arn: cred.principal_arn.clone(),
            });
        }
    }
    Err(KmsError::InvalidSignature(SIGNATURE_MISMATCH.into()))
}

/// The request date must be within [`MAX_SKEW_SECS`] of the simulated or the host clock; the
/// error names the nearer of the two.
fn check_clock(request_secs: i64, amz_date: &str, now: Now) -> Result<(), KmsError> {
    let within = |clock: i64| (request_secs - clock).abs() <= MAX_SKEW_SECS;
    if within(now.simulated) || within(now.host) {
        return Ok(());
    }
    let reference = if (request_secs - now.simulated).abs() <= (request_secs - now.host).abs() {
        now.simulated
    } else {
        now.host
    };
    let message = if request_secs < reference {
        format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            format_amz_date(reference - MAX_SKEW_SECS),
            format_amz_date(reference)
        )
    } else {
        format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            format_amz_date(reference + MAX_SKEW_SECS),
            format_amz_date(reference)
        )
    };
    Err(KmsError::InvalidSignature(message))
}

fn signed_values_have_other_whitespace(headers: &HeaderMap, signed: &[String]) -> bool {
    signed.iter().any(|name| {
        headers.get_all(name.as_str()).iter().any(|v| {
            v.as_bytes()
                .iter()
                .any(|b| b.is_ascii_whitespace() && *b != b' ')
        })
    })
}

/// The canonical request (step 2 of the module docs), as bytes: header values need not be UTF-8.
pub fn canonical_request(
    method: &str,
    headers: &HeaderMap,
    signed: &[String],
    signed_line: &str,
    payload_hash: &str,
    collapse: Collapse,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(method.as_bytes());
    out.extend_from_slice(b"\n/\n\n");
    for name in signed {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (i, v) in headers.get_all(name.as_str()).iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_normalized(&mut out, v.as_bytes(), collapse);
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(signed_line.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

/// Appends `value` trimmed, with runs of (per `collapse`) whitespace replaced by one space.
fn push_normalized(out: &mut Vec<u8>, value: &[u8], collapse: Collapse) {
    let is_ws = |b: u8| match collapse {
        Collapse::Spaces => b == b' ',
        Collapse::AllWhitespace => b.is_ascii_whitespace(),
    };
    let mut pending_space = false;
    let mut started = false;
    for &b in value {
        if is_ws(b) {
            pending_space = started;
            continue;
        }
        if pending_space {
            out.push(b' ');
            pending_space = false;
        }
        out.push(b);
        started = true;
    }
}

/// The string to sign (step 3 of the module docs).
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request))
    )
}

#[cfg(test)]
#[path = "sigv4_tests.rs"]
mod tests;
