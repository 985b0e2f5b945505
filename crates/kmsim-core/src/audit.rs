//! Management audit events in the CloudTrail record shape (`docs/AWS-BEHAVIOUR.md` §9), stored per Region
//! in the replicated state. Records are built while a command is applied, from the command's
//! own data only (time, request, caller), so every node stores byte-identical records.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::ids::{KeyId, Scope};

/// The most events a Region keeps; the oldest are dropped first.
pub const MAX_AUDIT_EVENTS: usize = 10_000;

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

fn resources(scope: &Scope, key_arn: Option<&str>) -> Value {
    match key_arn {
        Some(arn) => {
            json!([{"accountId": scope.account.as_str(), "type": "AWS::KMS::Key", "ARN": arn}])
        }
        None => Value::Null,
    }
}

/// The record of an API call that the Region's replicated log keeps (a successful
/// management write).
pub fn api_record(
    scope: &Scope,
    seq: u64,
    call: &ApiCall,
    key_arn: Option<&str>,
    response: Option<Value>,
) -> String {
    call_record(
        scope,
        &event_id(scope, seq),
        call,
        key_arn,
        response,
        false,
        None,
    )
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
/// and `errorMessage` for a refused call.
pub fn call_record(
    scope: &Scope,
    event_id: &str,
    call: &ApiCall,
    key_arn: Option<&str>,
    response: Option<Value>,
    read_only: bool,
    error: Option<&CallError>,
) -> String {
    let params: Value = serde_json::from_str(&call.request_parameters).unwrap_or(Value::Null);
    let mut identity = json!({
        "type": if call.principal_arn.ends_with(":root") { "Root" } else { "IAMUser" },
        "principalId": scope.account.as_str(),
        "arn": call.principal_arn,
        "accountId": scope.account.as_str(),
    });
    if let Some(k) = &call.access_key_id {
        identity["accessKeyId"] = json!(k);
    }
    let mut record = json!({
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": iso(call.time_ms),
        "eventSource": "kms.amazonaws.com",
        "eventName": call.event_name,
        "awsRegion": scope.region.as_str(),
        "sourceIPAddress": call.source_ip.clone().unwrap_or_else(|| "AWS Internal".into()),
        "userAgent": call.user_agent.clone().unwrap_or_else(|| "kmsim".into()),
        "requestParameters": params,
        "responseElements": response.unwrap_or(Value::Null),
        "requestID": call.request_id,
        "eventID": event_id,
        "readOnly": read_only,
        "resources": resources(scope, key_arn),
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": scope.account.as_str(),
        "eventCategory": "Management",
    });
    if let Some(e) = error {
        record["errorCode"] = json!(e.code);
        record["errorMessage"] = json!(e.message);
    }
    record.to_string()
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
    let mut record = json!({
        "eventVersion": "1.08",
        "userIdentity": {"accountId": scope.account.as_str(), "invokedBy": "AWS Internal"},
        "eventTime": iso(time_ms),
        "eventSource": "kms.amazonaws.com",
        "eventName": event_name,
        "awsRegion": scope.region.as_str(),
        "sourceIPAddress": "AWS Internal",
        "userAgent": "AWS Internal",
        "requestParameters": Value::Null,
        "responseElements": Value::Null,
        "requestID": event_id(scope, seq.wrapping_add(1 << 63)),
        "eventID": event_id(scope, seq),
        "readOnly": false,
        "resources": resources(scope, key_arn),
        "eventType": "AwsServiceEvent",
        "managementEvent": true,
        "recipientAccountId": scope.account.as_str(),
        "eventCategory": "Management",
    });
    if let Some(d) = details {
        record["serviceEventDetails"] = d;
    }
    record.to_string()
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
        };
        let v: Value =
            serde_json::from_str(&api_record(&scope(), 3, &call, Some("arn:k"), None)).unwrap();
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
