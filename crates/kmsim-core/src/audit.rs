//! Management audit events in the CloudTrail record shape (`docs/AWS-BEHAVIOUR.md` §9), stored per Region
//! in the replicated state. Records are built while a command is applied, from the command's
//! own data only (time, request, caller, response), so every node stores byte-identical
//! records.
//!
//! Records are written as JSON text directly (no intermediate `serde_json::Value`): nodes
//! build one for every call they answer, so this is on the hot path of the call log's writer.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{KeyId, Scope};

/// How many events a Region's replicated log keeps by default (`[audit]
/// region_retention_events`); the oldest are dropped first, and the number dropped is reported
/// with every page of `ListAuditEvents`.
pub const DEFAULT_REGION_RETENTION: usize = 10_000;

/// An API call to record, as the proposing node saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiCall {
    /// `eventName`, the AWS operation.
    pub event_name: String,
    /// When the call was made, ms (simulated clock).
    pub time_ms: i64,
    /// `requestID`.
    pub request_id: String,
    /// The caller's principal ARN.
    pub principal_arn: String,
    /// The access key the call was signed with.
    pub access_key_id: Option<String>,
    /// `sourceIPAddress`.
    pub source_ip: Option<String>,
    /// `userAgent`.
    pub user_agent: Option<String>,
    /// `requestParameters` as a JSON object (lowerCamelCase members, no secrets).
    pub request_parameters: String,
    /// `responseElements` as a JSON object, for the operations whose CloudTrail records carry
    /// them (CreateKey, ReplicateKey, ScheduleKeyDeletion, ...); `None` writes `null`.
    pub response_elements: Option<String>,
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the Region's log of events.
    pub seq: u64,
    /// `eventTime` in ms.
    pub time_ms: i64,
    /// `eventName`.
    pub event_name: String,
    /// The key the event is about.
    pub key_id: Option<KeyId>,
    /// The whole CloudTrail record as JSON.
    pub json: String,
}

/// A deterministic `eventID` (UUID-shaped) from the Region and the event's position.
fn event_id(scope: &Scope, seq: u64) -> String {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for b in scope.region.as_str().bytes().chain(seq.to_le_bytes()) {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    let x = format!("{h:032x}");
    format!(
        "{}-{}-4{}-a{}-{}",
        &x[0..8],
        &x[8..12],
        &x[13..16],
        &x[17..20],
        &x[20..32]
    )
}

/// `eventTime`: ISO-8601 UTC, whole seconds (`2026-12-01T20:48:39Z`), as CloudTrail writes it.
pub fn iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("@{secs}"))
}

/// A date inside `responseElements` as CloudTrail writes KMS's (`Aug 10, 2022, 10:38:27 PM`,
/// UTC): `creationDate`, `deletionDate`, `validTo`.
pub fn cloudtrail_date(ms: i64) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[month repr:short] [day padding:none], [year], [hour repr:12 padding:none]:[minute]:[second] [period]"
    );
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(FORMAT).ok())
        .unwrap_or_else(|| format!("@{}", ms.div_euclid(1000)))
}

/// Appends `s` to `out` as a JSON string literal.
pub fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            b if b < 0x20 => "",
            _ => continue,
        };
        // `b` is ASCII, so `i` is a character boundary.
        out.push_str(&s[start..i]);
        if escaped.is_empty() {
            use std::fmt::Write as _;
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escaped);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// A JSON object written member by member into a string.
struct Obj<'a> {
    out: &'a mut String,
    empty: bool,
}

impl<'a> Obj<'a> {
    fn open(out: &'a mut String) -> Obj<'a> {
        out.push('{');
        Obj { out, empty: true }
    }

    fn key(&mut self, k: &str) -> &mut String {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        push_json_str(self.out, k);
        self.out.push(':');
        self.out
    }

    fn str(&mut self, k: &str, v: &str) -> &mut Self {
        let out = self.key(k);
        push_json_str(out, v);
        self
    }

    /// A member whose value is JSON text already (`null` when `None` or empty).
    fn raw(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        let out = self.key(k);
        out.push_str(v.filter(|v| !v.is_empty()).unwrap_or("null"));
        self
    }

    fn close(&mut self) {
        self.out.push('}');
    }
}

/// `resources`: the key, or `null`.
fn push_resources(o: &mut Obj<'_>, scope: &Scope, key_arn: Option<&str>) {
    let out = o.key("resources");
    match key_arn {
        Some(arn) => {
            out.push('[');
            let mut r = Obj::open(out);
            r.str("accountId", scope.account.as_str())
                .str("type", "AWS::KMS::Key")
                .str("ARN", arn)
                .close();
            out.push(']');
        }
        None => out.push_str("null"),
    }
}

/// The record of an API call that the Region's replicated log keeps (a successful
/// management write).
pub fn api_record(scope: &Scope, seq: u64, call: &ApiCall, key_arn: Option<&str>) -> String {
    call_record(scope, &event_id(scope, seq), call, key_arn, false, None)
}

/// A failed call's `errorCode` (the AWS exception name) and `errorMessage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallError {
    /// `errorCode`, e.g. `NotFoundException`.
    pub code: String,
    /// `errorMessage`, the message the caller got.
    pub message: String,
}

/// A UUID-shaped `eventID` for the `seq`-th call recorded by node `node_id` of the Region
/// (the node-local call log; distinct from the Region log's IDs).
pub fn node_event_id(scope: &Scope, node_id: u64, seq: u64) -> String {
    let mixed = seq ^ node_id.rotate_right(16) ^ 0x5a5a_0000_0000_0000;
    event_id(scope, mixed)
}

/// The CloudTrail record of one API call: `read_only` is CloudTrail's `readOnly` (true for
/// reads and for cryptographic calls, which change no resource), `error` fills `errorCode`
/// and `errorMessage` for a refused call. `call.request_parameters` and
/// `call.response_elements` are JSON text, copied as they are.
pub fn call_record(
    scope: &Scope,
    event_id: &str,
    call: &ApiCall,
    key_arn: Option<&str>,
    read_only: bool,
    error: Option<&CallError>,
) -> String {
    let account = scope.account.as_str();
    let mut out = String::with_capacity(768 + call.request_parameters.len());
    let mut o = Obj::open(&mut out);
    o.str("eventVersion", "1.08");
    {
        let id = o.key("userIdentity");
        let mut u = Obj::open(id);
        let kind = if call.principal_arn.ends_with(":root") {
            "Root"
        } else {
            "IAMUser"
        };
        u.str("type", kind)
            .str("principalId", account)
            .str("arn", &call.principal_arn)
            .str("accountId", account);
        if let Some(k) = &call.access_key_id {
            u.str("accessKeyId", k);
        }
        u.close();
    }
    o.str("eventTime", &iso(call.time_ms))
        .str("eventSource", "kms.amazonaws.com")
        .str("eventName", &call.event_name)
        .str("awsRegion", scope.region.as_str())
        .str(
            "sourceIPAddress",
            call.source_ip.as_deref().unwrap_or("AWS Internal"),
        )
        .str("userAgent", call.user_agent.as_deref().unwrap_or("kmsim"));
    if let Some(e) = error {
        o.str("errorCode", &e.code).str("errorMessage", &e.message);
    }
    o.raw("requestParameters", Some(&call.request_parameters))
        .raw("responseElements", call.response_elements.as_deref())
        .str("requestID", &call.request_id)
        .str("eventID", event_id);
    o.key("readOnly")
        .push_str(if read_only { "true" } else { "false" });
    push_resources(&mut o, scope, key_arn);
    o.str("eventType", "AwsApiCall");
    o.key("managementEvent").push_str("true");
    o.str("recipientAccountId", account)
        .str("eventCategory", "Management")
        .close();
    out
}

/// The record of something KMS did by itself (`DeleteKey`, `RotateKey`,
/// `SynchronizeMultiRegionKey`, the replica-side `CreateKey` of ReplicateKey).
pub fn service_record(
    scope: &Scope,
    seq: u64,
    time_ms: i64,
    event_name: &str,
    key_arn: Option<&str>,
    details: Option<Value>,
) -> String {
    let account = scope.account.as_str();
    let mut out = String::with_capacity(768);
    let mut o = Obj::open(&mut out);
    o.str("eventVersion", "1.08");
    {
        let id = o.key("userIdentity");
        let mut u = Obj::open(id);
        u.str("accountId", account)
            .str("invokedBy", "AWS Internal")
            .close();
    }
    o.str("eventTime", &iso(time_ms))
        .str("eventSource", "kms.amazonaws.com")
        .str("eventName", event_name)
        .str("awsRegion", scope.region.as_str())
        .str("sourceIPAddress", "AWS Internal")
        .str("userAgent", "AWS Internal")
        .raw("requestParameters", None)
        .raw("responseElements", None)
        .str("requestID", &event_id(scope, seq.wrapping_add(1 << 63)))
        .str("eventID", &event_id(scope, seq));
    o.key("readOnly").push_str("false");
    push_resources(&mut o, scope, key_arn);
    o.str("eventType", "AwsServiceEvent");
    o.key("managementEvent").push_str("true");
    o.str("recipientAccountId", account)
        .str("eventCategory", "Management");
    if let Some(d) = details {
        let d = d.to_string();
        o.raw("serviceEventDetails", Some(&d));
    }
    o.close();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccountId, Partition, Region};

    fn scope() -> Scope {
        Scope {
            partition: Partition::parse("aws").unwrap(),
            region: Region::parse("eu-west-1").unwrap(),
            account: AccountId::parse("111122223333").unwrap(),
        }
    }

    #[test]
    fn iso_times_are_utc() {
        assert_eq!(iso(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso(1_796_158_119_965), "2026-12-01T20:48:39Z");
        assert_eq!(iso(951_782_400_000), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn response_dates_are_cloudtrail_s() {
        assert_eq!(
            cloudtrail_date(1_660_171_107_000),
            "Aug 10, 2022, 10:38:27 PM"
        );
        assert_eq!(
            cloudtrail_date(1_670_371_200_000),
            "Dec 7, 2022, 12:00:00 AM"
        );
        assert_eq!(
            cloudtrail_date(1_670_414_400_000),
            "Dec 7, 2022, 12:00:00 PM"
        );
    }

    #[test]
    fn strings_are_escaped_as_json() {
        for s in [
            "plain",
            "quote\" back\\slash",
            "tab\tnl\n\u{1}",
            "é ✓ \u{7f}",
            "",
        ] {
            let mut out = String::new();
            push_json_str(&mut out, s);
            assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s, "{out}");
        }
    }

    #[test]
    fn records_have_the_cloudtrail_shape() {
        let call = ApiCall {
            event_name: "ScheduleKeyDeletion".into(),
            time_ms: 0,
            request_id: "r".into(),
            principal_arn: "arn:aws:iam::111122223333:root".into(),
            access_key_id: Some("test".into()),
            source_ip: Some("127.0.0.1".into()),
            user_agent: None,
            request_parameters: r#"{"keyId":"k","pendingWindowInDays":7}"#.into(),
            response_elements: Some(r#"{"keyId":"arn:k"}"#.into()),
        };
        let v: Value =
            serde_json::from_str(&api_record(&scope(), 3, &call, Some("arn:k"))).unwrap();
        assert_eq!(v["responseElements"]["keyId"], "arn:k");
        assert_eq!(v["userIdentity"]["type"], "Root");
        assert_eq!(v["eventName"], "ScheduleKeyDeletion");
        assert_eq!(v["awsRegion"], "eu-west-1");
        assert_eq!(v["requestParameters"]["pendingWindowInDays"], 7);
        assert_eq!(v["resources"][0]["ARN"], "arn:k");
        assert_eq!(v["eventType"], "AwsApiCall");
        let s: Value =
            serde_json::from_str(&service_record(&scope(), 4, 0, "DeleteKey", None, None)).unwrap();
        assert_eq!(s["userIdentity"]["invokedBy"], "AWS Internal");
        assert_ne!(v["eventID"], s["eventID"]);
        assert_eq!(event_id(&scope(), 9), event_id(&scope(), 9));
    }
}
