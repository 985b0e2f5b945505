//! `kmsim top --once` against a running two-Region cluster (docs/OBSERVABILITY.md, "kmsim
//! top"): every node with its role, each Region's leader, the calls a Region answered while top
//! sampled, the gateway's, a fault injected with `kmsim chaos`, and a killed node shown down.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::json;

use crate::harness::{kmsim, wait_for, Cluster};
use crate::t70_multi_region::{A, B};
use crate::t71_multi_region_faults::chaos;

/// One plain-text frame of `kmsim top --once` (rates over one second).
struct Frame(String);

impl Frame {
    /// The fields of the first table row whose first field is `first` (a Region, `gateway` or
    /// `REGION/ID`; not a `SOURCE → DESTINATION` row), without the box's borders.
    fn row(&self, first: &str) -> Vec<String> {
        self.0
            .lines()
            .map(|l| {
                l.trim_matches(|c: char| c == '│' || c.is_whitespace())
                    .split_whitespace()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .find(|f| {
                f.first().map(String::as_str) == Some(first)
                    && f.get(1).map(String::as_str) != Some("→")
            })
            .unwrap_or_else(|| panic!("no row {first} in the frame:\n{}", self.0))
    }

    /// A Region's row: REGION LEADER TERM UP OPS/s ERR/s P99.
    fn region(&self, region: &str) -> Vec<String> {
        self.row(region)
    }

    /// A node's row: NODE ROLE TERM LEADER APPLIED BEHIND OPS/s FAULTS.
    fn node(&self, region: &str, id: u64) -> Vec<String> {
        self.row(&format!("{region}/{id}"))
    }

    /// The OPS/s column of a Region's or the gateway's row.
    fn ops(&self, first: &str) -> f64 {
        let row = self.region(first);
        row[4]
            .parse()
            .unwrap_or_else(|_| panic!("OPS/s of {first} is '{}':\n{}", row[4], self.0))
    }
}

/// Runs `kmsim top --once` on the cluster (the command blocks: on a blocking thread).
async fn top_once(c: &Cluster) -> Frame {
    let dir = c.data_dir();
    let text = tokio::task::spawn_blocking(move || {
        kmsim(&["top", "--once", "--interval", "1s", "--data-dir", &dir])
    })
    .await
    .unwrap();
    Frame(text)
}

/// At most this many Encrypts, about 100 a second, run while top samples (a bound, not a
/// target: the load stops as soon as the frames it is for are printed).
const MAX_CALLS: u64 = 12_000;

/// Each Region's leader, as the nodes' own `Status` says.
async fn leaders(c: &Cluster) -> Vec<(&'static str, u64)> {
    vec![(A, c.leader(A).await), (B, c.leader(B).await)]
}

#[tokio::test(flavor = "multi_thread")]
async fn top_once_shows_roles_leaders_calls_faults_and_a_killed_node_as_down() {
    let c = Cluster::start(&[A, B], 3);

    // Encrypts through the gateway in A, running while top takes its two samples.
    let client = c.raw(&c.gateway_url(), A);
    let created = client.call("CreateKey", &json!({})).await.unwrap();
    assert_eq!(created.status, StatusCode::OK, "{:?}", created.body);
    let key = created.json()["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let load = {
        let (stop, calls) = (stop.clone(), calls.clone());
        tokio::spawn(async move {
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) && sent < MAX_CALLS {
                sent += 1;
                let body = json!({"KeyId": key, "Plaintext": "aGVsbG8="});
                // Counted by top whatever it answers; a failure (an election on a loaded
                // machine) is an error there, not a failure of this test.
                if client.call("Encrypt", &body).await.is_ok() {
                    calls.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
    };
    wait_for(Duration::from_secs(10), "the load to run", || async {
        (calls.load(Ordering::Relaxed) >= 10).then_some(())
    })
    .await;
    // A frame taken while no Region changed its leader (on a loaded machine an election can
    // fall between two looks): the leaders before and after it agree.
    let (frame, leaders) = wait_for(
        Duration::from_secs(60),
        "a frame without an election during it",
        || async {
            let before = leaders(&c).await;
            let frame = top_once(&c).await;
            let after = leaders(&c).await;
            (before == after).then_some((frame, after))
        },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let made = calls.load(Ordering::Relaxed) as f64;

    // Every node with its role; each Region's row names its leader; every node follows it.
    for (region, leader) in leaders {
        let row = frame.region(region);
        assert_eq!(row[1], leader.to_string(), "{region}: {row:?}\n{}", frame.0);
        assert_eq!(row[3], "3/3", "{region}: {row:?}");
        for id in c.ids(region) {
            let node = frame.node(region, id);
            let role = if id == leader { "leader" } else { "follower" };
            assert_eq!(node[1], role, "{region}/{id}: {node:?}\n{}", frame.0);
            assert_eq!(
                node[3],
                leader.to_string(),
                "{region}/{id} follows the leader"
            );
            assert_eq!(node[7], "0", "{region}/{id}: no faulty links yet");
        }
    }
    // The calls: answered in A (by its nodes and by the gateway), none in B. The rates are over
    // the one second between top's two samples, so no more than the calls made in all.
    let (ops_a, ops_gateway) = (frame.ops(A), frame.ops("gateway"));
    assert!(
        ops_a > 0.0 && ops_a <= made,
        "{A}: {ops_a}/s of {made} calls\n{}",
        frame.0
    );
    assert!(
        ops_gateway > 0.0 && ops_gateway <= made,
        "gateway: {ops_gateway}/s\n{}",
        frame.0
    );
    assert_eq!(frame.ops(B), 0.0, "{B} answered nothing\n{}", frame.0);
    assert_ne!(frame.region(A)[6], "-", "a p99 for {A}\n{}", frame.0);
    assert!(
        frame.0.contains(&format!("{A} → {B}")),
        "the pair's row\n{}",
        frame.0
    );

    // A fault from A to B: on each of A's three links to B, shown as one Region-wide row.
    chaos(&c, &["link", "--from", A, "--to", B, "--delay", "50ms"]);
    let frame = top_once(&c).await;
    assert!(
        frame
            .0
            .lines()
            .any(|l| l.contains(&format!("{A} → {B} ")) && l.contains("delay 50ms")),
        "the fault\n{}",
        frame.0
    );
    for id in c.ids(A) {
        assert_eq!(frame.node(A, id)[7], "3", "{A}/{id}: three faulty links");
    }

    // A killed follower is shown down, and its Region with one node fewer.
    let leader_a = c.leader(A).await;
    let follower = c.ids(A).into_iter().find(|id| *id != leader_a).unwrap();
    c.kill(A, follower);
    let frame = wait_for(
        Duration::from_secs(30),
        "the killed node shown down",
        || async {
            let frame = top_once(&c).await;
            (frame.node(A, follower)[1] == "down").then_some(frame)
        },
    )
    .await;
    let down = frame.node(A, follower);
    assert_eq!(
        &down[1..],
        ["down", "-", "-", "-", "-", "-", "-"],
        "{down:?}"
    );
    assert_eq!(frame.region(A)[3], "2/3", "\n{}", frame.0);
}
