//! STS on the AWS endpoint (SigV4 service `sts`): `AssumeRole` and `GetCallerIdentity` in the
//! AWS Query protocol, so that boto3's `sts.assume_role` and `sts.get_caller_identity` (and
//! every SDK's STS client) work unchanged.
//!
//! A request is `POST /` with a form-encoded body (`Action=AssumeRole&Version=2011-06-15&…`,
//! `Content-Type: application/x-www-form-urlencoded`), signed like any other; the answer is
//! XML in the namespace `https://sts.amazonaws.com/doc/2011-06-15/`
//! (`<AssumeRoleResponse><AssumeRoleResult>…</AssumeRoleResult><ResponseMetadata>
//! <RequestId>…`), and an error is `<ErrorResponse><Error><Type>Sender</Type><Code>…</Code>
//! <Message>…</Message></Error><RequestId>…</RequestId></ErrorResponse>` (botocore's `sts`
//! model, protocol `query`).
//!
//! `AssumeRole` hands out credentials whose session token seals the session
//! ([`super::session_token`]): no state is written, and every node of every Region, and the
//! gateway, accepts them. Who may assume a role is decided by its trust policy and the caller's
//! identity policies through the one evaluator (`KmsApi::authorize_assume_role`).

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use rand::RngCore;
use time::OffsetDateTime;

use kmsim_core::KmsError;
use kmsim_policy::{Caller, PrincipalKind};

use super::errors::{truncate, Body, ErrorCode, REQUEST_ID_HEADER};
use super::session_token::{Session, SessionKey};
use crate::kms::{KmsApi, RequestContext};

/// The XML namespace of every STS answer.
const NAMESPACE: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// The only API version.
const VERSION: &str = "2011-06-15";

/// The media type of Query protocol requests.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// `DurationSeconds` when absent, and its bounds (botocore: `roleDurationSecondsType`).
const DEFAULT_DURATION_SECS: u32 = 3600;
const MIN_DURATION_SECS: u32 = 900;
const MAX_DURATION_SECS: u32 = 43_200;

/// Longest session of a role session assuming a role (AWS's role-chaining limit).
const CHAINED_MAX_SECS: u32 = 3600;

/// `AssumeRole` parameters kmsim does not model, refused rather than ignored.
const UNMODELLED: &[&str] = &[
    "Policy",
    "PolicyArns",
    "Tags",
    "TransitiveTagKeys",
    "SerialNumber",
    "TokenCode",
    "SourceIdentity",
    "ProvidedContexts",
];

/// Every code an STS error of kmsim carries.
const CODES: &[&str] = &[
    "AccessDenied",
    "ValidationError",
    "InvalidAction",
    "MissingAuthenticationToken",
    "IncompleteSignature",
    "SignatureDoesNotMatch",
    "InvalidClientTokenId",
    "ExpiredToken",
    "Throttling",
    "ServiceUnavailable",
    "InternalFailure",
];

/// The code of an STS XML error body (a relayed answer), as one of [`CODES`].
pub fn error_code_of(body: &[u8]) -> Option<&'static str> {
    let text = std::str::from_utf8(body).ok()?;
    if !text.starts_with("<ErrorResponse") {
        return None;
    }
    let start = text.find("<Code>")? + "<Code>".len();
    let end = text[start..].find("</Code>")? + start;
    CODES.iter().find(|c| **c == &text[start..end]).copied()
}

/// An STS error: HTTP status, Query-protocol code and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The code (`AccessDenied`, `ValidationError`, `ExpiredToken`, …).
    pub code: &'static str,
    /// The message.
    pub message: String,
}

impl StsError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> StsError {
        StsError {
            status,
            code,
            message: message.into(),
        }
    }

    fn validation(message: impl Into<String>) -> StsError {
        StsError::new(StatusCode::BAD_REQUEST, "ValidationError", message)
    }

    fn access_denied(message: impl Into<String>) -> StsError {
        StsError::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    /// The STS form of an error of the shared front (authentication, envelope, routing): the
    /// codes STS uses for the same conditions.
    pub fn from_front(status: StatusCode, e: &KmsError) -> StsError {
        let code = match e {
            KmsError::MissingAuthenticationToken(_) => "MissingAuthenticationToken",
            KmsError::IncompleteSignature(_) => "IncompleteSignature",
            KmsError::InvalidSignature(m) if m == super::sigv4::SIGNATURE_MISMATCH => {
                "SignatureDoesNotMatch"
            }
            KmsError::InvalidSignature(_) => "SignatureDoesNotMatch",
            KmsError::UnrecognizedClient(_) => "InvalidClientTokenId",
            KmsError::ExpiredToken(_) => "ExpiredToken",
            KmsError::AccessDenied(_) => "AccessDenied",
            KmsError::Throttling(_) => "Throttling",
            KmsError::Serialization(_) | KmsError::UnknownOperation(_) => "InvalidAction",
            KmsError::DependencyTimeout(_) => "ServiceUnavailable",
            e if e.is_server_fault() => "InternalFailure",
            _ => "ValidationError",
        };
        let status = match code {
            "InvalidClientTokenId" | "SignatureDoesNotMatch" | "AccessDenied" => {
                StatusCode::FORBIDDEN
            }
            _ => status,
        };
        StsError::new(status, code, e.message())
    }
}

/// Whether a request speaks the Query protocol (its errors are then written as STS XML): a
/// form-encoded body.
pub fn is_query(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|v| {
        let media = v
            .as_bytes()
            .split(|b| *b == b';')
            .next()
            .unwrap_or_default();
        media
            .trim_ascii()
            .eq_ignore_ascii_case(FORM_CONTENT_TYPE.as_bytes())
    })
}

/// The form parameters of a body (the first value of a repeated name wins).
pub fn parse_form(body: &[u8]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

/// Answers one authenticated STS request of the caller `ctx`. `sessions` is the key of session
/// tokens (`None`: the topology has no `[sts]`, and `AssumeRole` is refused).
pub fn serve(
    api: &KmsApi,
    sessions: Option<&SessionKey>,
    ctx: &RequestContext,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, StsError> {
    if !is_query(headers) {
        return Err(StsError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "InvalidAction",
            format!("STS requests are {FORM_CONTENT_TYPE} (the AWS Query protocol)"),
        ));
    }
    let params = parse_form(body);
    let action = params.get("Action").map(String::as_str).unwrap_or("");
    let version = params.get("Version").map(String::as_str).unwrap_or(VERSION);
    match (action, version) {
        ("GetCallerIdentity", VERSION) => Ok(get_caller_identity(api, ctx, &ctx.request_id)),
        ("AssumeRole", VERSION) => assume_role(api, sessions, ctx, &params),
        _ => Err(StsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!(
                "Could not find operation {} for version {}",
                truncate(action, 64),
                truncate(version, 32)
            ),
        )),
    }
}

/// `GetCallerIdentity`: needs no permission.
fn get_caller_identity(api: &KmsApi, ctx: &RequestContext, request_id: &str) -> String {
    let p = api.iam.principal(&ctx.principal_arn);
    let account = p.caller.account.clone().unwrap_or_default();
    let user_id = p.caller.userid.clone().unwrap_or_default();
    response(
        "GetCallerIdentity",
        &format!(
            "<Arn>{}</Arn><UserId>{}</UserId><Account>{}</Account>",
            xml(&ctx.principal_arn),
            xml(&user_id),
            xml(&account)
        ),
        request_id,
    )
}

/// Validation error text in AWS's form.
fn constraint(value: &str, member: &str, rule: &str) -> StsError {
    StsError::validation(format!(
        "1 validation error detected: Value '{}' at '{member}' failed to satisfy constraint: {rule}",
        truncate(value, 256)
    ))
}

fn required<'a>(
    params: &'a BTreeMap<String, String>,
    name: &str,
    member: &str,
) -> Result<&'a str, StsError> {
    params.get(name).map(String::as_str).ok_or_else(|| {
        StsError::validation(format!(
            "1 validation error detected: Value null at '{member}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

/// `AssumeRole`.
fn assume_role(
    api: &KmsApi,
    sessions: Option<&SessionKey>,
    ctx: &RequestContext,
    params: &BTreeMap<String, String>,
) -> Result<String, StsError> {
    let role_arn = required(params, "RoleArn", "roleArn")?;
    let session_name = required(params, "RoleSessionName", "roleSessionName")?;
    if !(20..=2048).contains(&role_arn.len()) {
        return Err(constraint(
            role_arn,
            "roleArn",
            "Member must have length greater than or equal to 20",
        ));
    }
    if !(2..=64).contains(&session_name.len()) {
        return Err(constraint(
            session_name,
            "roleSessionName",
            "Member must have length less than or equal to 64",
        ));
    }
    if !session_name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
    {
        return Err(constraint(
            session_name,
            "roleSessionName",
            r"Member must satisfy regular expression pattern: [\w+=,.@-]*",
        ));
    }
    let duration = match params.get("DurationSeconds") {
        None => DEFAULT_DURATION_SECS,
        Some(d) => {
            let n: i64 = d
                .parse()
                .map_err(|_| constraint(d, "durationSeconds", "Member must be an integer"))?;
            if n < i64::from(MIN_DURATION_SECS) {
                return Err(constraint(
                    d,
                    "durationSeconds",
                    "Member must have value greater than or equal to 900",
                ));
            }
            if n > i64::from(MAX_DURATION_SECS) {
                return Err(constraint(
                    d,
                    "durationSeconds",
                    "Member must have value less than or equal to 43200",
                ));
            }
            n as u32
        }
    };
    if let Some(p) = params.keys().find(|k| {
        UNMODELLED
            .iter()
            .any(|u| k == u || k.starts_with(&format!("{u}.")))
    }) {
        return Err(StsError::validation(format!(
            "kmsim does not model session policies, session tags, MFA or source identity ({})",
            truncate(p, 64)
        )));
    }
    let Some(sessions) = sessions else {
        return Err(StsError::new(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            "this cluster has no STS key (the topology's [sts] key_file): AssumeRole is not available",
        ));
    };
    let caller = Caller::from_arn(&ctx.principal_arn)
        .map_err(|_| StsError::access_denied(not_authorized(&ctx.principal_arn, role_arn)))?;
    if caller.kind == PrincipalKind::AccountRoot {
        return Err(StsError::access_denied(
            "Roles may not be assumed by root accounts.",
        ));
    }
    if !role_arn.starts_with(&format!("arn:{}:iam::", api.scope.partition.as_str())) {
        return Err(StsError::validation(format!(
            "{} is invalid",
            truncate(role_arn, 256)
        )));
    }
    let max = if api.iam.is_modelled() {
        let role = api
            .iam
            .role(role_arn)
            .ok_or_else(|| StsError::access_denied(not_authorized(&ctx.principal_arn, role_arn)))?;
        let trust = role
            .trust
            .ok_or_else(|| StsError::access_denied(not_authorized(&ctx.principal_arn, role_arn)))?;
        let mut extra = vec![("sts:RoleSessionName", session_name)];
        if let Some(x) = params.get("ExternalId") {
            extra.push(("sts:ExternalId", x.as_str()));
        }
        api.authorize_assume_role(ctx, role_arn, &trust, &extra)
            .map_err(StsError::access_denied)?;
        role.max_session_secs
    } else {
        // IAM not modelled: every role exists and trusts everyone but a root user.
        crate::iam::DEFAULT_MAX_SESSION_SECS
    };
    if caller.kind == PrincipalKind::AssumedRole && duration > CHAINED_MAX_SECS {
        return Err(StsError::validation(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
        ));
    }
    if duration > max {
        return Err(StsError::validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
        ));
    }
    let now_ms = api.clock.now_ms();
    let expires_ms = now_ms.saturating_add(i64::from(duration) * 1000);
    let mut rng = api.entropy.rng();
    let access_key_id = new_access_key_id(&mut rng);
    let mut secret = [0u8; 30];
    rng.fill_bytes(&mut secret);
    let session = Session {
        role_arn: role_arn.to_string(),
        session_name: session_name.to_string(),
        expires_ms,
        secret_access_key: crate::config::Secret::new(
            base64::engine::general_purpose::STANDARD.encode(secret),
        ),
    };
    let token = sessions.seal(&session, &access_key_id, &mut rng);
    let session_arn = session
        .principal_arn()
        .ok_or_else(|| StsError::validation(format!("{} is invalid", truncate(role_arn, 256))))?;
    let assumed_role_id = api
        .iam
        .principal(&session_arn)
        .caller
        .userid
        .unwrap_or_default();
    tracing::info!(caller = %ctx.principal_arn, session = %session_arn, duration_secs = duration, "role assumed");
    Ok(response(
        "AssumeRole",
        &format!(
            "<Credentials><AccessKeyId>{}</AccessKeyId><SecretAccessKey>{}</SecretAccessKey>\
             <SessionToken>{}</SessionToken><Expiration>{}</Expiration></Credentials>\
             <AssumedRoleUser><AssumedRoleId>{}</AssumedRoleId><Arn>{}</Arn></AssumedRoleUser>",
            xml(&access_key_id),
            xml(session.secret_access_key.expose()),
            xml(&token),
            iso8601(expires_ms),
            xml(&assumed_role_id),
            xml(&session_arn)
        ),
        &ctx.request_id,
    ))
}

/// AWS's refusal of an `AssumeRole` no policy allows.
fn not_authorized(caller: &str, role_arn: &str) -> String {
    kmsim_policy::message::no_resource_policy_allows(caller, "sts:AssumeRole", role_arn)
}

/// `ASIA` and 16 characters of `[A-Z2-7]`, as AWS's temporary access keys look.
fn new_access_key_id(rng: &mut impl RngCore) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    let tail: String = b
        .iter()
        .map(|x| char::from(ALPHABET[usize::from(x % 32)]))
        .collect();
    format!("ASIA{tail}")
}

/// Epoch milliseconds as `YYYY-MM-DDTHH:MM:SSZ`.
fn iso8601(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Escapes text for an XML element.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// The XML of a successful answer.
fn response(action: &str, result: &str, request_id: &str) -> String {
    format!(
        "<{action}Response xmlns=\"{NAMESPACE}\">\n  <{action}Result>{result}</{action}Result>\n  \
         <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        xml(request_id)
    )
}

/// An HTTP answer with an STS XML body.
pub fn xml_response(status: StatusCode, body: String, request_id: &str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(REQUEST_ID_HEADER, v);
    }
    resp
}

/// The answer of an STS error.
pub fn error_response(e: &StsError, request_id: &str) -> Response<Body> {
    let kind = if e.status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    let body = format!(
        "<ErrorResponse xmlns=\"{NAMESPACE}\">\n  <Error>\n    <Type>{kind}</Type>\n    \
         <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n\
         </ErrorResponse>\n",
        e.code,
        xml(&e.message),
        xml(request_id)
    );
    let mut resp = xml_response(e.status, body, request_id);
    resp.extensions_mut().insert(ErrorCode(e.code));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn answers_have_the_query_protocol_shape() {
        let ok = response("GetCallerIdentity", "<Arn>a&b</Arn>", "rid");
        assert!(ok.starts_with(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        ));
        assert!(ok.contains("<GetCallerIdentityResult><Arn>a&b</Arn></GetCallerIdentityResult>"));
        assert!(ok.contains("<RequestId>rid</RequestId>"));
        let e = error_response(
            &StsError::access_denied("User: <x> is not authorized"),
            "rid",
        );
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        assert_eq!(e.headers()[header::CONTENT_TYPE], "text/xml");
        assert_eq!(ErrorCode::of(&e), "AccessDenied");
        let body = body_of(e);
        assert_eq!(error_code_of(&body), Some("AccessDenied"));
        assert_eq!(error_code_of(b"{}"), None);
        assert_eq!(xml("<a & 'b'>"), "&lt;a &amp; &apos;b&apos;&gt;");
        assert_eq!(iso8601(1_573_306_481_999), "2019-11-09T13:34:41Z");
        let id = new_access_key_id(&mut rand::thread_rng());
        assert!(id.starts_with("ASIA") && id.len() == 20, "{id}");
    }

    #[test]
    fn front_errors_take_the_sts_codes() {
        let code = |e: KmsError| StsError::from_front(StatusCode::BAD_REQUEST, &e).code;
        assert_eq!(
            code(KmsError::UnrecognizedClient("x".into())),
            "InvalidClientTokenId"
        );
        assert_eq!(code(KmsError::ExpiredToken("x".into())), "ExpiredToken");
        assert_eq!(
            code(KmsError::InvalidSignature(
                super::super::sigv4::SIGNATURE_MISMATCH.into()
            )),
            "SignatureDoesNotMatch"
        );
        assert_eq!(
            code(KmsError::MissingAuthenticationToken("x".into())),
            "MissingAuthenticationToken"
        );
    }

    #[test]
    fn forms_are_read_as_botocore_writes_them() {
        let p = parse_form(
            b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fr&RoleSessionName=a+b&Action=Other",
        );
        assert_eq!(p["Action"], "AssumeRole");
        assert_eq!(p["RoleArn"], "arn:aws:iam::111122223333:role/r");
        assert_eq!(p["RoleSessionName"], "a b");
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        assert!(is_query(&h));
    }

    fn body_of(r: Response<Body>) -> Bytes {
        use http_body_util::BodyExt as _;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        rt.block_on(r.into_body().collect())
            .expect("body")
            .to_bytes()
    }

    proptest! {
        #[test]
        fn any_body_parses_without_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let p = parse_form(&body);
            prop_assert!(p.len() <= body.len() + 1);
        }
    }
}
