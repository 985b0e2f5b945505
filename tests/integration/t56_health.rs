//! `GET /healthz` and `GET /readyz` on every node's AWS endpoint and the gateway's: served
//! without SigV4, ready only while the node's Region can serve.

use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use kmsim_sim::health::http_get;

use crate::harness::{wait_for, Cluster};

const R: &str = "us-east-1";

/// The status and body of `GET url`.
async fn get(url: &str) -> (u16, String) {
    http_get(url, None, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_node_and_the_gateway_are_healthy_and_ready_and_other_requests_keep_their_errors() {
    let c = Cluster::start(&[R, "eu-west-1"], 3);
    for region in [R, "eu-west-1"] {
        for id in c.ids(region) {
            let base = c.aws_url(region, id);
            assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
            let ready = wait_for(Duration::from_secs(30), "the node to be ready", || async {
                let (status, body) = get(&format!("{base}/readyz")).await;
                (status == 200).then_some(body)
            })
            .await;
            assert!(ready.starts_with("ready: leader"), "{ready}");
        }
    }
    let gw = c.gateway_url();
    assert_eq!(get(&format!("{gw}/healthz")).await, (200, "ok".into()));
    assert_eq!(get(&format!("{gw}/readyz")).await.0, 200);
    // Only GET of exactly these paths is a probe: the AWS JSON front answers everything else
    // as before (405 for another method, 404 for another path).
    let node = c.aws_url(R, 1);
    let raw = c.raw(&node, R);
    for (method, path, status) in [
        ("POST", "/healthz", StatusCode::NOT_FOUND),
        ("GET", "/healthzz", StatusCode::METHOD_NOT_ALLOWED),
        ("HEAD", "/readyz", StatusCode::METHOD_NOT_ALLOWED),
    ] {
        let mut req = raw.unsigned("CreateKey", Bytes::from_static(b"{}"));
        *req.method_mut() = method.parse().unwrap();
        *req.uri_mut() = format!("{node}{path}").parse().unwrap();
        let a = raw.send(req).await.unwrap();
        assert_eq!(a.status, status, "{method} {path}");
        if method != "HEAD" {
            assert_eq!(
                a.error_code().as_deref(),
                Some("UnknownOperationException"),
                "{method} {path}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_region_lost_its_majority_is_alive_but_not_ready() {
    let c = Cluster::start(&[R], 3);
    let survivor = 3;
    let url = |path: &str| format!("{}/{path}", c.aws_url(R, survivor));
    wait_for(Duration::from_secs(30), "the node to be ready", || async {
        (get(&url("readyz")).await.0 == 200).then_some(())
    })
    .await;
    c.kill(R, 1);
    c.kill(R, 2);
    let reason = wait_for(
        Duration::from_secs(30),
        "the survivor to report not ready",
        || async {
            let (status, body) = get(&url("readyz")).await;
            (status == 503).then_some(body)
        },
    )
    .await;
    assert!(reason.starts_with("not ready:"), "{reason}");
    assert_eq!(get(&url("healthz")).await, (200, "ok".into()));
}
