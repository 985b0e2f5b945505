//! The gateway's connection handoff (`[endpoint] handoff`, `kmsim up --gateway-handoff`): each
//! client connection is given to a node of the Region its first request is signed for, which
//! serves it directly (docs/ARCHITECTURE.md, "Connection handoff").

use bytes::Bytes;
use serde_json::{json, Value};

use kmsim_sim::aws_client::{AwsJsonClient, Connection, Signer};
use kmsim_sim::scrape::{scrape, Scrape};

use crate::harness::Cluster;
use crate::t71_multi_region_faults::chaos;

const R: &str = "us-east-1";
const EU: &str = "eu-west-1";

async fn scrape_of(c: &Cluster, url: &str) -> Scrape {
    scrape(&c.raw(url, R))
        .await
        .unwrap_or_else(|e| panic!("scrape of {url}: {e}"))
}

/// `kmsim_gateway_connections_total{result}` of the gateway.
async fn offered(c: &Cluster, result: &str) -> f64 {
    scrape_of(c, &c.gateway_url())
        .await
        .sum("kmsim_gateway_connections_total", &[("result", result)])
}

/// Encrypt calls answered `ok` by the given scrapes' processes.
fn encrypts<'a>(scrapes: impl IntoIterator<Item = &'a Scrape>) -> f64 {
    scrapes
        .into_iter()
        .map(|s| {
            s.sum(
                "kmsim_api_requests_total",
                &[("operation", "Encrypt"), ("code", "ok")],
            )
        })
        .sum()
}

async fn region_encrypts(c: &Cluster, region: &str) -> f64 {
    let mut scrapes = Vec::new();
    for id in c.ids(region) {
        scrapes.push(scrape_of(c, &c.aws_url(region, id)).await);
    }
    encrypts(&scrapes)
}

/// One call on `conn`, signed by `client`'s signer; the answer's JSON (status 200 asserted).
async fn call(conn: &mut Connection, client: &AwsJsonClient, op: &str, body: Value) -> Value {
    let req = client
        .signed(op, Bytes::from(serde_json::to_vec(&body).unwrap()))
        .unwrap();
    let answer = conn.send(req).await.unwrap_or_else(|e| panic!("{op}: {e}"));
    assert_eq!(answer.status, 200, "{op}: {}", answer.error_message());
    answer.json()
}

fn start_with_handoff(regions: &[&str]) -> Cluster {
    Cluster::start_edited(regions, 3, |t| {
        t.endpoint.as_mut().expect("an [endpoint]").handoff = true;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_connection_is_served_by_a_node_and_still_reaches_another_region() {
    let c = start_with_handoff(&[R, EU]);
    let gateway = c.gateway_url();
    let us = c.raw(&gateway, R);
    let eu = us.with_signer(Signer::new("test", "test", EU));

    let mut conn = us.connect().await.expect("connect to the gateway");
    let key = call(&mut conn, &us, "CreateKey", json!({})).await["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..10 {
        call(
            &mut conn,
            &us,
            "Encrypt",
            json!({"KeyId": key, "Plaintext": "aGVsbG8="}),
        )
        .await;
    }
    // A request signed for another Region on the same connection: the node relays it.
    let listed = call(&mut conn, &eu, "ListKeys", json!({})).await;
    assert!(
        listed["Keys"].as_array().unwrap().is_empty(),
        "eu-west-1 has no key: {listed}"
    );

    // The connection was handed once, and its Encrypts were answered by the Region's nodes,
    // none by the gateway (which answers only what it serves itself).
    assert_eq!(offered(&c, "handed").await, 1.0);
    let gateway_scrape = scrape_of(&c, &gateway).await;
    assert_eq!(encrypts([&gateway_scrape]), 0.0);
    assert_eq!(region_encrypts(&c, R).await, 10.0);
    // The scrapes (GET, unsigned) were served by the gateway itself.
    assert!(offered(&c, "unrouted").await >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_go_to_live_nodes_when_one_is_killed_or_frozen() {
    let c = start_with_handoff(&[R]);
    let gateway = c.gateway_url();
    let us = c.raw(&gateway, R);
    let mut conn = us.connect().await.unwrap();
    let key = call(&mut conn, &us, "CreateKey", json!({})).await["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    drop(conn);
    let leader = c.leader(R).await;
    let followers: Vec<u64> = c.ids(R).into_iter().filter(|i| *i != leader).collect();
    let encrypt = json!({"KeyId": key, "Plaintext": "aGVsbG8="});

    // A killed node refuses the Unix connection: every new connection (each is first offered
    // to a different node in turn) is handed to a live one.
    c.kill(R, followers[0]);
    let handed = offered(&c, "handed").await;
    for _ in 0..6 {
        let mut conn = us.connect().await.unwrap();
        call(&mut conn, &us, "Encrypt", encrypt.clone()).await;
    }
    assert_eq!(offered(&c, "handed").await, handed + 6.0);

    // A frozen node accepts the Unix connection but never answers: after TAKE_TIMEOUT the next
    // node takes the client connection, and the frozen node, once thawed, serves none of what
    // it was offered (it never got the gateway's go-ahead).
    let frozen = followers[1];
    let frozen_name = format!("{R}/{frozen}");
    let served_before = encrypts([&scrape_of(&c, &c.aws_url(R, frozen)).await]);
    chaos(&c, &["pause", &frozen_name]);
    let handed = offered(&c, "handed").await;
    for _ in 0..3 {
        let mut conn = us.connect().await.unwrap();
        call(&mut conn, &us, "Encrypt", encrypt.clone()).await;
    }
    assert_eq!(offered(&c, "handed").await, handed + 3.0);
    assert_eq!(offered(&c, "not_taken").await, 0.0);
    chaos(&c, &["resume", &frozen_name]);
    let frozen_scrape = scrape_of(&c, &c.aws_url(R, frozen)).await;
    assert_eq!(encrypts([&frozen_scrape]), served_before);
}
