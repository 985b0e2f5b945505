//! `KmsError` ↔ `tonic::Status`: the one place API errors cross gRPC.
//!
//! The gRPC code is only a coarse class for generic gRPC tooling; the exact AWS error code travels
//! in the [`ERROR_CODE_HEADER`] metadata entry and the AWS message in the status message, so the
//! receiving side rebuilds the very same `KmsError`.

use kmsim_core::KmsError;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Status};

/// Metadata key carrying the AWS error code (`__type`, e.g. `NotFoundException`) of a failed call.
pub const ERROR_CODE_HEADER: &str = "x-kmsim-error-code";

/// The gRPC code that best classifies an AWS error.
fn grpc_code(e: &KmsError) -> Code {
    // Exhaustive on purpose: a new `KmsError` variant must choose its class here.
    match e {
        KmsError::NotFound(_) => Code::NotFound,
        KmsError::AlreadyExists(_) => Code::AlreadyExists,
        KmsError::Validation(_)
        | KmsError::InvalidArn(_)
        | KmsError::InvalidAliasName(_)
        | KmsError::InvalidMarker(_)
        | KmsError::MalformedPolicyDocument(_)
        | KmsError::Tag(_)
        | KmsError::InvalidCiphertext(_)
        | KmsError::IncorrectKey(_)
        | KmsError::InvalidKeyUsage(_)
        | KmsError::InvalidGrantId(_)
        | KmsError::InvalidGrantToken(_)
        | KmsError::UnknownOperation(_)
        | KmsError::KmsInvalidSignature(_)
        | KmsError::KmsInvalidMac(_)
        | KmsError::IncorrectKeyMaterial(_)
        | KmsError::ExpiredImportToken(_)
        | KmsError::InvalidImportToken(_)
        | KmsError::Serialization(_) => Code::InvalidArgument,
        KmsError::MissingAuthenticationToken(_)
        | KmsError::IncompleteSignature(_)
        | KmsError::InvalidSignature(_)
        | KmsError::UnrecognizedClient(_)
        | KmsError::ExpiredToken(_) => Code::Unauthenticated,
        KmsError::Disabled(_)
        | KmsError::InvalidState(_)
        | KmsError::DryRunOperation(_)
        | KmsError::Conflict(_) => Code::FailedPrecondition,
        KmsError::UnsupportedOperation(_) => Code::Unimplemented,
        KmsError::AccessDenied(_) => Code::PermissionDenied,
        KmsError::LimitExceeded(_) | KmsError::Throttling(_) => Code::ResourceExhausted,
        KmsError::Internal(_) => Code::Internal,
        KmsError::DependencyTimeout(_) | KmsError::KeyUnavailable(_) => Code::Unavailable,
    }
}

/// Turns an API error into the `Status` a kmsim gRPC server returns: a gRPC code by kind, the
/// AWS error code in [`ERROR_CODE_HEADER`], and the AWS message (possibly empty) as the message.
pub fn status_from_error(e: &KmsError) -> Status {
    let mut metadata = MetadataMap::new();
    // AWS error codes are ASCII identifiers, so they are always valid header values.
    metadata.insert(ERROR_CODE_HEADER, MetadataValue::from_static(e.code()));
    Status::with_metadata(grpc_code(e), e.message(), metadata)
}

/// Rebuilds the API error from a `Status` a kmsim client received.
///
/// With [`ERROR_CODE_HEADER`] present the error is exactly the server's (an unknown code becomes
/// `Internal`, see [`KmsError::from_wire`]). Without it the failure happened below kmsim (transport,
/// deadline, a non-kmsim server): unreachable, timed-out or cancelled calls, and `Unknown`, which
/// is how tonic reports a connection reset or closed under a call (`transport error`: the server
/// may or may not have done it), become `DependencyTimeout` (retryable, outcome unknown);
/// anything else `Internal`.
pub fn error_from_status(s: &Status) -> KmsError {
    let code = s
        .metadata()
        .get(ERROR_CODE_HEADER)
        .and_then(|value| value.to_str().ok());
    match code {
        Some(code) => KmsError::from_wire(code, s.message().to_string()),
        None => match s.code() {
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
                KmsError::DependencyTimeout(s.message().to_string())
            }
            other => KmsError::Internal(format!("{other:?}: {}", s.message())),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::codegen::http::HeaderMap;

    /// One instance of every `KmsError` variant, each carrying `message`; `grpc_code` is
    /// exhaustive, so a new variant must also choose its gRPC class.
    fn every_variant(message: &str) -> Vec<KmsError> {
        let all = KmsError::every_variant(message);
        let mut codes: Vec<_> = all.iter().map(KmsError::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "every variant has its own code");
        all
    }

    /// Messages worth round-tripping: ordinary, empty, non-ASCII, and characters that gRPC's
    /// `grpc-message` header must percent-encode.
    const MESSAGES: &[&str] = &[
        "Key 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab' does not exist",
        "",
        "Schlüssel ungültig — ключ недоступен: 鍵が見つかりません 🔑",
        "100% \"quoted\"\nnew line\ttab",
    ];

    /// Sends a status through the HTTP/2 trailer encoding tonic uses on the wire and back.
    fn over_the_wire(status: &Status) -> Status {
        let mut headers = HeaderMap::new();
        status
            .add_header(&mut headers)
            .expect("status encodes as headers");
        Status::from_header_map(&headers).expect("headers carry a status")
    }

    #[test]
    fn every_variant_round_trips_with_code_and_message_intact() {
        for message in MESSAGES {
            for e in every_variant(message) {
                let status = status_from_error(&e);
                assert_eq!(status.message(), *message);
                assert_eq!(
                    status
                        .metadata()
                        .get(ERROR_CODE_HEADER)
                        .map(|v| v.to_str().ok()),
                    Some(Some(e.code()))
                );
                assert_eq!(error_from_status(&status), e, "in memory");
                assert_eq!(
                    error_from_status(&over_the_wire(&status)),
                    e,
                    "over the wire"
                );
            }
        }
    }

    #[test]
    fn grpc_codes_follow_the_error_kind() {
        let code = |e: KmsError| status_from_error(&e).code();
        let m = String::new;
        assert_eq!(code(KmsError::NotFound(m())), Code::NotFound);
        assert_eq!(code(KmsError::AlreadyExists(m())), Code::AlreadyExists);
        assert_eq!(code(KmsError::Validation(m())), Code::InvalidArgument);
        assert_eq!(
            code(KmsError::InvalidCiphertext(m())),
            Code::InvalidArgument
        );
        assert_eq!(code(KmsError::UnknownOperation(m())), Code::InvalidArgument);
        assert_eq!(code(KmsError::Disabled(m())), Code::FailedPrecondition);
        assert_eq!(code(KmsError::InvalidState(m())), Code::FailedPrecondition);
        assert_eq!(
            code(KmsError::DryRunOperation(m())),
            Code::FailedPrecondition
        );
        assert_eq!(code(KmsError::Conflict(m())), Code::FailedPrecondition);
        assert_eq!(
            code(KmsError::UnsupportedOperation(m())),
            Code::Unimplemented
        );
        assert_eq!(code(KmsError::AccessDenied(m())), Code::PermissionDenied);
        assert_eq!(code(KmsError::LimitExceeded(m())), Code::ResourceExhausted);
        assert_eq!(code(KmsError::Throttling(m())), Code::ResourceExhausted);
        assert_eq!(code(KmsError::Internal(m())), Code::Internal);
        assert_eq!(code(KmsError::DependencyTimeout(m())), Code::Unavailable);
        assert_eq!(code(KmsError::KeyUnavailable(m())), Code::Unavailable);
    }

    #[test]
    fn status_without_header_from_transport_failures_is_dependency_timeout() {
        for status in [
            Status::unavailable("connection refused"),
            Status::deadline_exceeded("connection refused"),
            Status::cancelled("connection refused"),
            Status::unknown("connection refused"),
        ] {
            assert_eq!(
                error_from_status(&status),
                KmsError::DependencyTimeout("connection refused".to_string())
            );
        }
    }

    #[test]
    fn status_without_header_otherwise_is_internal_with_the_grpc_code() {
        assert_eq!(
            error_from_status(&Status::not_found("boom")),
            KmsError::Internal("NotFound: boom".to_string())
        );
        assert_eq!(
            error_from_status(&Status::internal("")),
            KmsError::Internal("Internal: ".to_string())
        );
    }

    #[test]
    fn unknown_error_code_in_header_is_internal() {
        let mut status = Status::invalid_argument("m");
        status.metadata_mut().insert(
            ERROR_CODE_HEADER,
            MetadataValue::from_static("NoSuchException"),
        );
        assert_eq!(
            error_from_status(&status),
            KmsError::Internal("NoSuchException: m".to_string())
        );
    }
}
