//! The plain `GET` paths of the AWS endpoint's port, answered without SigV4 because they carry
//! no data of a Region: `/healthz` (the process serves) and `/readyz` (the node can serve its
//! Region now), for the image's health check, compose health checks and Kubernetes probes, and
//! `/metrics` (this process's metrics, Prometheus text format 0.0.4). Every other request goes
//! on to the AWS JSON front unchanged.
//!
//! A node is ready when its Region has a leader that this node knows, the leader confirms with
//! a quorum the index of what the Region has committed (a read index), this node has applied
//! to within [`READY_LAG_ENTRIES`] of it, and its synchronizer task runs (when the Region has
//! one). The gateway is ready once it serves, since it knows its topology from the start.

use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;

use super::errors::Body;
use crate::kms::KmsApi;
use crate::metrics::NodeMetrics;

/// How far (in log entries) a node's applied index may trail the leader's read index and the
/// node still be ready: a follower is always a few entries behind under load.
pub const READY_LAG_ENTRIES: u64 = 64;

/// How long `/readyz` waits for the leader's read index: a leader that has lost its quorum
/// never gives one, and a probe must answer well within a probe's timeout.
pub const READY_READ_INDEX_TIMEOUT: Duration = Duration::from_secs(1);

/// A plain `GET` path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `GET /healthz`: the process serves.
    Health,
    /// `GET /readyz`: the node can serve its Region now.
    Ready,
    /// `GET /metrics`: this process's metrics.
    Metrics,
}

/// The plain `GET` paths (any query string is ignored); `None` for every other request, which
/// is the AWS JSON front's.
pub fn route(parts: &Parts) -> Option<Probe> {
    if parts.method != Method::GET {
        return None;
    }
    match parts.uri.path() {
        "/healthz" => Some(Probe::Health),
        "/readyz" => Some(Probe::Ready),
        "/metrics" => Some(Probe::Metrics),
        _ => None,
    }
}

/// Answers `probe` for a node (`local` is its KMS) or the gateway (`None`), whose metrics are
/// `metrics`.
pub async fn answer(probe: Probe, local: Option<&KmsApi>, metrics: &NodeMetrics) -> Response<Body> {
    match probe {
        Probe::Metrics => {
            let mut resp = Response::new(Full::new(Bytes::from(metrics.encode())));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            );
            resp
        }
        Probe::Health => text(StatusCode::OK, "ok".into()),
        Probe::Ready => match local {
            None => text(StatusCode::OK, "ready: gateway".into()),
            Some(api) => match readiness(api).await {
                Ok(ready) => text(StatusCode::OK, ready),
                Err(reason) => text(StatusCode::SERVICE_UNAVAILABLE, reason),
            },
        },
    }
}

/// Whether the node can serve its Region now: `Ok` with a short description, or `Err` with
/// the reason it cannot.
pub async fn readiness(api: &KmsApi) -> Result<String, String> {
    let raft = api.proposer.raft();
    let leader = {
        let m = raft.metrics();
        let m = m.borrow();
        if let Err(e) = &m.running_state {
            return Err(format!("not ready: raft stopped: {e}"));
        }
        m.current_leader
            .ok_or_else(|| "not ready: no leader known in this region".to_string())?
    };
    if let Some(link) = &api.sync {
        if !link.task_running() {
            return Err("not ready: the synchronizer task is not running".into());
        }
    }
    let committed =
        match tokio::time::timeout(READY_READ_INDEX_TIMEOUT, api.proposer.read_index(0)).await {
            Ok(Ok(index)) => index,
            Ok(Err(e)) => return Err(format!("not ready: no read index from the leader: {e}")),
            Err(_) => {
                return Err(format!(
                    "not ready: the leader (node {leader}) gave no read index within {} ms",
                    READY_READ_INDEX_TIMEOUT.as_millis()
                ))
            }
        };
    let applied = raft
        .metrics()
        .borrow()
        .last_applied
        .map(|l| l.index)
        .unwrap_or(0);
    let behind = committed.saturating_sub(applied);
    if behind > READY_LAG_ENTRIES {
        return Err(format!(
            "not ready: applied index {applied} is {behind} entries behind the region's commit index {committed}"
        ));
    }
    Ok(format!(
        "ready: leader {leader}, applied {applied}, committed {committed}"
    ))
}

/// A short plain-text answer.
fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body + "\n")));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str) -> Parts {
        http::Request::builder()
            .method(method)
            .uri(uri)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn only_get_of_the_probe_paths_is_a_probe() {
        assert_eq!(route(&parts("GET", "/healthz")), Some(Probe::Health));
        assert_eq!(route(&parts("GET", "/readyz?verbose")), Some(Probe::Ready));
        assert_eq!(route(&parts("POST", "/healthz")), None);
        assert_eq!(route(&parts("HEAD", "/readyz")), None);
        assert_eq!(route(&parts("GET", "/")), None);
        assert_eq!(route(&parts("GET", "/healthz/x")), None);
        assert_eq!(route(&parts("GET", "/metrics")), Some(Probe::Metrics));
        assert_eq!(route(&parts("POST", "/metrics")), None);
    }

    #[tokio::test]
    async fn the_gateway_is_healthy_and_ready() {
        let metrics = NodeMetrics::gateway();
        for probe in [Probe::Health, Probe::Ready, Probe::Metrics] {
            assert_eq!(answer(probe, None, &metrics).await.status(), StatusCode::OK);
        }
    }
}
