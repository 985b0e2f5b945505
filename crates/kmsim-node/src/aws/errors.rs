//! Responses of the AWS JSON front: the error body `{"__type": …, "message": …}`, the
//! `Content-Type` and `x-amzn-RequestId` headers every response carries, and the errors of the
//! front itself (method, path, size, content type) with their HTTP statuses.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use kmsim_core::KmsError;

/// The media type of every AWS JSON 1.1 request and response.
pub const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// The response header that carries the request id.
pub const REQUEST_ID_HEADER: &str = "x-amzn-requestid";

/// The largest request body accepted, in bytes (KMS's largest input, a 6 KiB ciphertext or a
/// 32 KiB policy, base64-encoded, fits many times).
pub const MAX_BODY_BYTES: usize = 1 << 20;

/// The body type of every response.
pub type Body = Full<Bytes>;

/// An error answered by the front: an AWS error and the HTTP status to send it with (the
/// error's own status, unless the front chose another, e.g. 413 for an oversized body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The AWS error.
    pub error: KmsError,
}

impl FrontError {
    /// An error sent with a status of the front's choosing.
    pub fn with_status(status: StatusCode, error: KmsError) -> FrontError {
        FrontError { status, error }
    }

    /// A request other than `POST /` (405 for another method, 404 for another path).
    pub fn not_post_root(method: &str, path_and_query: &str) -> FrontError {
        let status = if method == "POST" {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::METHOD_NOT_ALLOWED
        };
        FrontError::with_status(
            status,
            KmsError::UnknownOperation(format!(
                "This endpoint serves the AWS KMS JSON 1.1 protocol: POST / with no query string (got {method} {})",
                truncate(path_and_query, 256)
            )),
        )
    }

    /// A body larger than [`MAX_BODY_BYTES`].
    pub fn too_large() -> FrontError {
        FrontError::with_status(
            StatusCode::PAYLOAD_TOO_LARGE,
            KmsError::Serialization(format!(
                "Request body is larger than the {MAX_BODY_BYTES}-byte limit"
            )),
        )
    }

    /// A request whose `Content-Type` is not AWS JSON 1.1.
    pub fn unsupported_media_type(got: Option<&[u8]>) -> FrontError {
        let got = got
            .map(|b| format!("'{}'", truncate(&String::from_utf8_lossy(b), 128)))
            .unwrap_or_else(|| "none".to_string());
        FrontError::with_status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            KmsError::Serialization(format!("Content-Type must be {CONTENT_TYPE} (got {got})")),
        )
    }
}

impl From<KmsError> for FrontError {
    fn from(error: KmsError) -> FrontError {
        let status =
            StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        FrontError { status, error }
    }
}

/// The JSON error body AWS sends: `{"__type": code, "message": text}`.
pub fn error_body(error: &KmsError) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "__type": error.code(),
        "message": error.message(),
    }))
    .expect("invariant: a map of two strings serializes")
}

/// A response with a JSON body and the headers every response carries.
pub fn json_response(status: StatusCode, body: Vec<u8>, request_id: &str) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert(REQUEST_ID_HEADER, v);
    }
    resp
}

/// The AWS error code a response carries, kept beside it (in its extensions) for the
/// endpoint's metrics; a response without one is a success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorCode(pub &'static str);

impl ErrorCode {
    /// The code of a response: `ok` for a success.
    pub fn of<B>(resp: &Response<B>) -> &'static str {
        resp.extensions().get::<ErrorCode>().map_or("ok", |c| c.0)
    }
}

/// The response of an error.
pub fn error_response(e: &FrontError, request_id: &str) -> Response<Body> {
    let mut resp = json_response(e.status, error_body(&e.error), request_id);
    resp.extensions_mut().insert(ErrorCode(e.error.code()));
    if e.status == StatusCode::METHOD_NOT_ALLOWED {
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
    }
    resp
}

/// At most `max` bytes of `s`, on a character boundary (echoed input stays bounded).
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_carry_code_and_message_and_every_response_its_headers() {
        let e = FrontError::from(KmsError::NotFound("Key 'x' does not exist".into()));
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let resp = error_response(&e, "0b3f7a3c-0000-4000-8000-000000000000");
        assert_eq!(resp.headers()[header::CONTENT_TYPE], CONTENT_TYPE);
        assert_eq!(
            resp.headers()[REQUEST_ID_HEADER],
            "0b3f7a3c-0000-4000-8000-000000000000"
        );
        let v: serde_json::Value = serde_json::from_slice(&error_body(&e.error)).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"__type": "NotFoundException", "message": "Key 'x' does not exist"})
        );
        assert_eq!(
            FrontError::from(KmsError::DependencyTimeout(String::new())).status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        let r = error_response(&FrontError::not_post_root("GET", "/"), "id");
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[header::ALLOW], "POST");
        assert_eq!(
            FrontError::not_post_root("POST", "/x").status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(truncate("é", 1), "");
    }
}
