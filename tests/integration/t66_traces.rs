//! Traces across processes and Regions (docs/OBSERVABILITY.md "Traces"): a `traceparent` sent
//! with a request to a follower is found in the logs of that follower, of the leader that
//! committed the write, and of the replica Region's node that applied the synchronization; the
//! replica Region measures the lag from the primary's commit (`kmsim_sync_lag_seconds`);
//! `KMSIM_LOG_FORMAT=json` writes every log line as one JSON object; and with
//! `KMSIM_OTLP_ENDPOINT`, the hops' spans reach an OpenTelemetry collector (a real OTLP gRPC
//! service in the test) as one tree across processes and Regions.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderValue;
use kmsim_sim::cluster::ClusterDir;
use kmsim_sim::scrape::scrape;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::json;

use crate::harness::{wait_for, Cluster};
use crate::t70_multi_region::{create_mrk, replicate, A, B};

/// The trace this test sends (W3C's example trace ID).
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// The client's span in that trace (the parent of the first hop).
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// The log of node `id` of `region`.
fn log_of(c: &Cluster, region: &str, id: u64) -> String {
    let path = ClusterDir::new(c.data_dir()).log_path(&Cluster::name(region, id));
    std::fs::read_to_string(&path).unwrap_or_default()
}

/// The log lines of node `id` of `region` that carry [`TRACE_ID`] in their spans, each parsed
/// (every line of the log must be one JSON object).
fn traced_lines(c: &Cluster, region: &str, id: u64) -> Vec<serde_json::Value> {
    log_of(c, region, id)
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| {
                panic!("{region}/{id} logged a line that is not JSON ({e}): {line}")
            })
        })
        .filter(|v| {
            v["spans"].as_array().is_some_and(|spans| {
                spans
                    .iter()
                    .any(|s| s["trace_id"].as_str() == Some(TRACE_ID))
            })
        })
        .collect()
}

/// The hops (`fields.hop`) of `lines`.
fn hops(lines: &[serde_json::Value]) -> Vec<String> {
    lines
        .iter()
        .filter_map(|v| v["fields"]["hop"].as_str().map(str::to_string))
        .collect()
}

/// `kmsim_sync_lag_seconds_count` from A to B, summed over B's nodes.
async fn lag_count(c: &Cluster) -> f64 {
    let mut n = 0.0;
    for id in c.ids(B) {
        let s = scrape(&c.raw(&c.aws_url(B, id), B))
            .await
            .expect("scrape of a node");
        n += s.sum(
            "kmsim_sync_lag_seconds_count",
            &[("source", A), ("destination", B)],
        );
    }
    n
}

/// Sends RotateKeyOnDemand for `key_id` to a follower of A, in trace [`TRACE_ID`] with the
/// client's span [`CLIENT_SPAN`] as parent; returns (A's leader, that follower).
async fn rotate_through_a_follower(c: &Cluster, key_id: &str) -> (u64, u64) {
    let leader = c.leader(A).await;
    let follower = c.ids(A).into_iter().find(|&id| id != leader).unwrap();
    let client = c.raw(&c.aws_url(A, follower), A);
    let body = Bytes::from(json!({ "KeyId": key_id }).to_string());
    let mut req = client.signed("RotateKeyOnDemand", body).unwrap();
    req.headers_mut().insert(
        "traceparent",
        HeaderValue::from_str(&format!("00-{TRACE_ID}-{CLIENT_SPAN}-01")).unwrap(),
    );
    let answer = client.send(req).await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.error_message());
    (leader, follower)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trace_id_is_found_in_the_logs_of_every_hop_and_the_sync_lag_is_measured() {
    let c = Cluster::start_with_env(
        &[A, B],
        3,
        &[
            ("KMSIM_LOG", "info,openraft=warn,kmsim::hop=debug"),
            ("KMSIM_LOG_FORMAT", "json"),
        ],
    );
    let key = create_mrk(&c, A, None).await;
    let key_id = key.key_id.unwrap();
    replicate(&c, &key_id, A, B, "Enabled").await;
    // ReplicateKey's commit on the primary's leader is reported with the synchronization
    // that carries the material, so B has measured at least one lag already.
    let before = wait_for(Duration::from_secs(20), "a lag observed in B", || async {
        let n = lag_count(&c).await;
        (n >= 1.0).then_some(n)
    })
    .await;

    // RotateKeyOnDemand on the primary, sent to a follower of A with a trace.
    let (leader, follower) = rotate_through_a_follower(&c, &key_id).await;

    // The follower that received it, the leader that committed it (forwarded to it), and
    // a node of B that applied the new material's synchronization: each logged the trace.
    wait_for(
        Duration::from_secs(10),
        "the trace in the follower's log",
        || async {
            hops(&traced_lines(&c, A, follower))
                .contains(&"aws-json".to_string())
                .then_some(())
        },
    )
    .await;
    wait_for(
        Duration::from_secs(10),
        "the trace in the leader's log",
        || async {
            let h = hops(&traced_lines(&c, A, leader));
            (h.contains(&"forwarded-write".to_string()) && h.contains(&"committed".to_string()))
                .then_some(())
        },
    )
    .await;
    wait_for(
        Duration::from_secs(20),
        "the trace in the log of a node of B",
        || async {
            c.ids(B)
                .into_iter()
                .any(|id| hops(&traced_lines(&c, B, id)).contains(&"sync-apply".to_string()))
                .then_some(())
        },
    )
    .await;
    // The rotation's synchronization was measured too.
    wait_for(
        Duration::from_secs(20),
        "the rotation's lag observed in B",
        || async { (lag_count(&c).await > before).then_some(()) },
    )
    .await;
}

/// The spans an OpenTelemetry collector received: each with its exporter's `service.instance.id`.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

/// A collector's OTLP trace service (gRPC) that keeps what it is sent.
struct Collector(Received);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut got = self.0.lock().unwrap();
        for rs in req.into_inner().resource_spans {
            let instance = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.instance.id")
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(Value::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for ss in rs.scope_spans {
                got.extend(ss.spans.into_iter().map(|s| (instance.clone(), s)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Starts a collector on a port the OS picks; returns its `http://` endpoint.
async fn start_collector(received: Received) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(received)))
            .serve_with_incoming(incoming),
    );
    format!("http://{addr}")
}

/// The spans of trace `trace_id` received so far: (instance, name, span ID, parent span ID).
fn spans_of(received: &Received, trace_id: &[u8]) -> Vec<(String, String, Vec<u8>, Vec<u8>)> {
    received
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, s)| s.trace_id == trace_id)
        .map(|(i, s)| {
            (
                i.clone(),
                s.name.clone(),
                s.span_id.clone(),
                s.parent_span_id.clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_exported_over_otlp_form_one_tree_across_processes_and_regions() {
    let received = Received::default();
    let endpoint = start_collector(received.clone()).await;
    let c = Cluster::start_with_env(&[A, B], 3, &[("KMSIM_OTLP_ENDPOINT", &endpoint)]);
    let key = create_mrk(&c, A, None).await;
    let key_id = key.key_id.unwrap();
    replicate(&c, &key_id, A, B, "Enabled").await;

    // A rotation sent to a follower of A, with the client's span as parent.
    let client_span = hex::decode(CLIENT_SPAN).unwrap();
    let trace_id = hex::decode(TRACE_ID).unwrap();
    let (leader, follower) = rotate_through_a_follower(&c, &key_id).await;

    // The follower's hop is the client's child; the leader's commit the follower's; the
    // leader's delivery to B the commit's; and B's apply the delivery's.
    let (front, write, send, apply) = wait_for(
        Duration::from_secs(30),
        "the hops of the rotation, exported by both Regions",
        || async {
            let spans = spans_of(&received, &trace_id);
            let named = |instance: Option<String>, name: &str, parent: &[u8]| {
                spans
                    .iter()
                    .find(|(i, n, _, p)| {
                        instance.as_ref().is_none_or(|want| want == i)
                            && n == name
                            && p.as_slice() == parent
                    })
                    .cloned()
            };
            let front = named(Some(format!("{A}/{follower}")), "aws-json", &client_span)?;
            let write = named(Some(format!("{A}/{leader}")), "forwarded-write", &front.2)?;
            let send = named(Some(format!("{A}/{leader}")), "sync-send", &write.2)?;
            let apply = named(None, "sync-apply", &send.2)?;
            Some((front, write, send, apply))
        },
    )
    .await;
    assert!(
        apply.0.starts_with(&format!("{B}/")),
        "applied in B: {apply:?}"
    );
    // The commit is an event of the leader's span.
    let committed = received
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, s)| s.span_id == write.2)
        .flat_map(|(_, s)| &s.events)
        .flat_map(|e| &e.attributes)
        .any(|kv| {
            kv.key == "hop"
                && matches!(&kv.value, Some(v) if v.value == Some(Value::StringValue("committed".into())))
        });
    assert!(committed, "the leader's span records the commit: {write:?}");
    let _ = (front, send);

    // Through the gateway without a traceparent: the gateway starts the trace, and the node
    // that answers continues it as the gateway span's child.
    let gateway = c.raw(&c.gateway_url(), A);
    let answer = gateway.call("ListKeys", &json!({})).await.unwrap();
    assert_eq!(answer.status, 200, "{}", answer.error_message());
    wait_for(
        Duration::from_secs(30),
        "a node span whose parent is a gateway span",
        || async {
            let got = received.lock().unwrap();
            let gateway_spans: Vec<(&[u8], &[u8])> = got
                .iter()
                .filter(|(i, s)| i == "gateway" && s.name == "aws-json")
                .map(|(_, s)| (s.trace_id.as_slice(), s.span_id.as_slice()))
                .collect();
            got.iter()
                .any(|(i, s)| {
                    i.starts_with(&format!("{A}/"))
                        && gateway_spans
                            .contains(&(s.trace_id.as_slice(), s.parent_span_id.as_slice()))
                })
                .then_some(())
        },
    )
    .await;
}
