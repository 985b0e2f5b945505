//! The AWS JSON dispatcher, generated from the one operation list
//! ([`crate::for_each_kms_operation`]): `X-Amz-Target: TrentService.<Operation>` selects the
//! operation, the body is read as its `kmsim.kms.v1` request message (whose serde form is the
//! AWS JSON shape), [`KmsApi`] runs it, and the response message is written back as JSON. An
//! operation added to the list is served here with no change to this file.

use kmsim_core::KmsError;
use kmsim_proto::kms::v1 as pb;

use crate::kms::{KmsApi, RequestContext};

/// The prefix of every KMS `X-Amz-Target`.
pub const TARGET_PREFIX: &str = "TrentService.";

macro_rules! json_dispatch {
    ($($name:ident => $method:ident($req:ident) -> $resp:ident;)*) => {
        /// Every operation the JSON face serves, by AWS name.
        pub const OPERATIONS: &[&str] = &[$(stringify!($name)),*];

        /// One decoded request, ready to run.
        #[derive(Debug)]
        #[allow(clippy::large_enum_variant)]
        pub enum Request {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                $name(pb::$req),
            )*
        }

        impl Request {
            /// Reads the body of a request for the operation named by `target` (the whole
            /// `X-Amz-Target` value, `None` when the header is missing).
            pub fn decode(target: Option<&[u8]>, body: &[u8]) -> Result<Request, KmsError> {
                match operation_name(target)? {
                    $( stringify!($name) => Ok(Request::$name(decode_body(body)?)), )*
                    other => Err(unknown_operation(Some(other))),
                }
            }

            /// The AWS name of the operation.
            pub fn operation(&self) -> &'static str {
                match self {
                    $( Request::$name(_) => stringify!($name), )*
                }
            }

            /// Runs the request on this node's KMS and returns the JSON response body.
            pub async fn call(self, api: &KmsApi, ctx: &RequestContext) -> Result<Vec<u8>, KmsError> {
                match self {
                    $( Request::$name(req) => encode_body(
                        &api.consistent(stringify!($name), ctx, req, |r| api.$method(ctx, r)).await?,
                    ), )*
                }
            }
        }
    };
}

crate::for_each_kms_operation!(json_dispatch);

/// The operation part of `X-Amz-Target` (`TrentService.Encrypt` → `Encrypt`).
fn operation_name(target: Option<&[u8]>) -> Result<&str, KmsError> {
    let Some(target) = target else {
        return Err(unknown_operation(None));
    };
    std::str::from_utf8(target)
        .ok()
        .and_then(|t| t.trim().strip_prefix(TARGET_PREFIX))
        .ok_or_else(|| unknown_operation(Some(&String::from_utf8_lossy(target))))
}

/// The `eventName` of a request refused before it reached an operation: the operation its
/// `X-Amz-Target` names, when that is a plain name (up to 64 letters and digits), else
/// `UnknownOperation`.
pub fn event_name(target: Option<&[u8]>) -> String {
    match operation_name(target) {
        Ok(name)
            if !name.is_empty()
                && name.len() <= 64
                && name.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            name.to_string()
        }
        _ => "UnknownOperation".to_string(),
    }
}

/// The operation a request is counted under in the endpoint's metrics: one of
/// [`OPERATIONS`], else `UnknownOperation` (so label values stay a known set).
pub fn metric_operation(target: Option<&[u8]>) -> &'static str {
    let name = event_name(target);
    OPERATIONS
        .iter()
        .find(|op| **op == name)
        .copied()
        .unwrap_or("UnknownOperation")
}

fn unknown_operation(target: Option<&str>) -> KmsError {
    KmsError::UnknownOperation(match target {
        None => "Missing X-Amz-Target header: expected TrentService.<Operation>".to_string(),
        Some(t) => format!("Unknown operation '{}'", super::errors::truncate(t, 128)),
    })
}

/// Reads a request body as the operation's input shape. An empty body is `{}` (the input of an
/// operation without members); anything but a JSON object, malformed JSON, wrong member types and
/// invalid base64 are `SerializationException`s.
fn decode_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, KmsError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    let body: &[u8] = match first {
        None => b"{}",
        Some(b'{') => body,
        Some(_) => {
            return Err(KmsError::Serialization(
                "The request body must be a JSON object".into(),
            ))
        }
    };
    serde_json::from_slice(body).map_err(|e| KmsError::Serialization(e.to_string()))
}

/// Writes a response message as its AWS JSON body.
fn encode_body<T: serde::Serialize>(resp: &T) -> Result<Vec<u8>, KmsError> {
    serde_json::to_vec(resp)
        .map_err(|e| KmsError::Internal(format!("cannot serialize the response: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(r: Result<Request, KmsError>) -> String {
        match r {
            Ok(req) => req.operation().to_string(),
            Err(e) => e.code().to_string(),
        }
    }

    #[test]
    fn targets_select_operations_and_bad_ones_are_unknown() {
        assert_eq!(
            code(Request::decode(Some(b"TrentService.ListKeys"), b"{}")),
            "ListKeys"
        );
        assert_eq!(
            code(Request::decode(Some(b"TrentService.ListKeys"), b"")),
            "ListKeys"
        );
        for bad in [
            &b"TrentService.Nope"[..],
            b"ListKeys",
            b"DynamoDB_20120810.ListTables",
            b"TrentService.",
            b"\xff\xfe",
        ] {
            assert_eq!(
                code(Request::decode(Some(bad), b"{}")),
                "UnknownOperationException"
            );
        }
        assert_eq!(
            code(Request::decode(None, b"{}")),
            "UnknownOperationException"
        );
        assert!(OPERATIONS.contains(&"Encrypt") && OPERATIONS.contains(&"CancelKeyDeletion"));
        assert_eq!(metric_operation(Some(b"TrentService.Encrypt")), "Encrypt");
        assert_eq!(
            metric_operation(Some(b"TrentService.MadeUp")),
            "UnknownOperation"
        );
        assert_eq!(metric_operation(None), "UnknownOperation");
        // The eventName a refused request is audited under.
        assert_eq!(event_name(Some(b"TrentService.Encrypt")), "Encrypt");
        assert_eq!(event_name(Some(b"TrentService.Nope")), "Nope");
        for bad in [
            &b"TrentService.a\tb"[..],
            b"ListKeys",
            b"TrentService.",
            b"\xff",
        ] {
            assert_eq!(event_name(Some(bad)), "UnknownOperation");
        }
        assert_eq!(event_name(None), "UnknownOperation");
    }

    #[test]
    fn bodies_that_are_not_the_input_shape_are_serialization_errors() {
        let t = Some(&b"TrentService.Encrypt"[..]);
        for bad in [
            &b"["[..],
            b"[]",
            b"\"x\"",
            b"null",
            b"{",
            b"{\"KeyId\": 5}",
            b"{\"Plaintext\": \"not base64!\"}",
            b"{\"KeyId\": \"a\", \"KeyId\": \"b\"}",
            b"{\"EncryptionContext\": [1]}",
            b"{} trailing",
        ] {
            assert_eq!(
                code(Request::decode(t, bad)),
                "SerializationException",
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let Ok(Request::Encrypt(r)) =
            Request::decode(t, br#" {"KeyId":"alias/a","Plaintext":"aGVsbG8="} "#)
        else {
            panic!("decodes");
        };
        assert_eq!(r.plaintext.as_deref(), Some(&b"hello"[..]));
    }
}
