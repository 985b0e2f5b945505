//! Failover as a client of the gateway sees it: after the Region's leader is SIGKILLed, or
//! frozen with SIGSTOP (its connections stay open), writes through the gateway are
//! acknowledged again, no acknowledged key is lost, and a frozen leader that resumes rejoins as
//! a follower. How fast is the benchmark's business (`kmsim scenario failover`); these tests
//! wait for each condition with a generous bound.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;

use kmsim_sim::aws_client::AwsJsonClient;
use kmsim_sim::process::running_pid;

use crate::harness::{wait_for, Cluster};

const R: &str = "us-east-1";

/// Writers of CreateKey through the gateway; every acknowledged key is recorded with the time
/// its call started. A failed call (an unknown outcome) is retried; it is not a failure.
struct Writers {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<(Instant, String)>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Writers {
    fn start(client: &AwsJsonClient, n: usize) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..n)
            .map(|_| {
                let (client, stop, acked) = (client.clone(), stop.clone(), acked.clone());
                tokio::spawn(async move {
                    // Bounded in count as well as by the stop flag.
                    for _ in 0..5_000 {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let started = Instant::now();
                        let body = json!({"Description": "t51 failover"});
                        match client.call("CreateKey", &body).await {
                            Ok(a) if a.status.is_success() => {
                                let id = a.json()["KeyMetadata"]["KeyId"]
                                    .as_str()
                                    .expect("an acknowledged CreateKey names its key")
                                    .to_string();
                                acked.lock().unwrap().push((started, id));
                            }
                            _ => tokio::time::sleep(Duration::from_millis(20)).await,
                        }
                    }
                })
            })
            .collect();
        Writers { stop, acked, tasks }
    }

    /// Waits until a call started after `t` (`None`: any call) has been acknowledged.
    async fn acknowledged_after(&self, t: Option<Instant>, what: &str) {
        wait_for(Duration::from_secs(60), what, || async {
            self.acked
                .lock()
                .unwrap()
                .iter()
                .any(|(started, _)| t.is_none_or(|t| *started > t))
                .then_some(())
        })
        .await;
    }

    /// Stops the writers; every acknowledged key.
    async fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let acked = self.acked.lock().unwrap();
        acked.iter().map(|(_, k)| k.clone()).collect()
    }
}

/// Every acknowledged key is described by the gateway (retrying answers that are not final,
/// e.g. while a node catches up).
async fn every_key_is_described(c: &Cluster, client: &AwsJsonClient, keys: &[String]) {
    assert!(!keys.is_empty(), "no write was acknowledged");
    for k in keys {
        let a = wait_for(
            Duration::from_secs(30),
            "DescribeKey of an acknowledged key",
            || async {
                let a = client
                    .call("DescribeKey", &json!({"KeyId": k}))
                    .await
                    .ok()?;
                // NotFound is final: stop waiting and fail below with the answer.
                (a.status.is_success() || a.error_code().as_deref() == Some("NotFoundException"))
                    .then_some(a)
            },
        )
        .await;
        assert!(
            a.status.is_success(),
            "acknowledged key {k} is lost: {} {}",
            a.status,
            a.error_message()
        );
        assert_eq!(a.json()["KeyMetadata"]["KeyId"].as_str(), Some(k.as_str()));
    }
    // And every node holds them (a follower's own applied state).
    c.settle(R).await;
}

/// Waits until some write was acknowledged (the Region serves through the gateway).
async fn warm(w: &Writers) {
    w.acknowledged_after(None, "a first acknowledged write")
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_through_the_gateway_resume_after_sigkill_of_the_leader_and_none_is_lost() {
    let c = Cluster::start(&[R], 3);
    let client = c.raw(&c.gateway_url(), R);
    let old = c.leader(R).await;
    let w = Writers::start(&client, 4);
    warm(&w).await;

    let fault = Instant::now();
    let cc = c.data_dir();
    tokio::task::spawn_blocking(move || {
        crate::harness::kmsim(&["node", "kill", &format!("{R}/{old}"), "--data-dir", &cc])
    })
    .await
    .unwrap();
    w.acknowledged_after(
        Some(fault),
        "a write acknowledged after the leader's SIGKILL",
    )
    .await;
    let survivors: Vec<u64> = c.ids(R).into_iter().filter(|i| *i != old).collect();
    let new = c.leader_among(R, &survivors).await;
    assert_ne!(new, old);

    // The old leader comes back while writes go on, and catches up as a follower.
    let cc = c.data_dir();
    tokio::task::spawn_blocking(move || {
        crate::harness::kmsim(&["node", "restart", &format!("{R}/{old}"), "--data-dir", &cc])
    })
    .await
    .unwrap();
    let back = Instant::now();
    w.acknowledged_after(Some(back), "a write acknowledged after the restart")
        .await;
    let keys = w.stop().await;
    every_key_is_described(&c, &client, &keys).await;
    if let Some(last) = keys.last() {
        c.wait_sees(R, old, last).await;
    }
}

/// Sends SIGCONT to a frozen node when dropped, so a failing test leaves no stopped process.
struct Thaw(Option<Pid>);

impl Thaw {
    fn now(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = kill(pid, Signal::SIGCONT);
        }
    }
}

impl Drop for Thaw {
    fn drop(&mut self) {
        self.now();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_through_the_gateway_resume_while_the_leader_is_frozen_and_it_rejoins_as_follower() {
    let c = Cluster::start(&[R], 3);
    let client = c.raw(&c.gateway_url(), R);
    let old = c.leader(R).await;
    let pid = running_pid(&c.dir, &Cluster::name(R, old)).expect("the leader runs");
    let w = Writers::start(&client, 4);
    warm(&w).await;

    let fault = Instant::now();
    kill(Pid::from_raw(pid as i32), Signal::SIGSTOP).unwrap();
    let mut thaw = Thaw(Some(Pid::from_raw(pid as i32)));
    // While the old leader is still stopped, the others elect a leader and writes resume.
    w.acknowledged_after(
        Some(fault),
        "a write acknowledged while the leader is frozen",
    )
    .await;
    let survivors: Vec<u64> = c.ids(R).into_iter().filter(|i| *i != old).collect();
    let new = c.leader_among(R, &survivors).await;
    assert_ne!(new, old);

    thaw.now();
    let resumed = Instant::now();
    wait_for(
        Duration::from_secs(60),
        "the resumed old leader follows",
        || async {
            c.status(R, old)
                .await
                .filter(|s| s.role == "follower" && s.leader_id.is_some_and(|l| l != old))
        },
    )
    .await;
    w.acknowledged_after(
        Some(resumed),
        "a write acknowledged after the old leader resumed",
    )
    .await;
    let keys = w.stop().await;
    every_key_is_described(&c, &client, &keys).await;
    if let Some(last) = keys.last() {
        c.wait_sees(R, old, last).await;
    }
    let st = c.status(R, old).await.expect("the old leader answers");
    assert_eq!(st.role, "follower", "{st:?}");
}
