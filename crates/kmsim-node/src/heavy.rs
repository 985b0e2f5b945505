//! CPU-heavy cryptography (RSA key generation, RSA private-key operations, asymmetric signing)
//! runs here, off the async workers: on a blocking thread, at most one per core at a time. An
//! RSA-4096 key pair takes up to seconds of CPU; on an async worker a few of them at once would
//! starve everything else on that worker, Raft heartbeats included, and depose the leader.
//!
//! A call that cannot start within [`QUEUE_WAIT`] (the pool is busy with a flood) is refused with
//! `ThrottlingException`, which AWS clients retry with backoff; so is one whose work has not
//! finished [`WORK_WAIT`] after it started (a loaded machine can stretch an RSA-4096 generation
//! far beyond its usual second or two). The abandoned work runs to its end on its thread, still
//! holding its slot, and its result is dropped: nothing heavy has a side effect before it
//! returns, and the pool never runs more than one job per core. So every heavy call is answered
//! within `QUEUE_WAIT + WORK_WAIT`, inside the gRPC server's request timeout.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Semaphore;

use kmsim_core::KmsError;

/// How long a call waits for a free slot before it is throttled.
pub const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// How long a call waits for its work once started before it is throttled.
pub const WORK_WAIT: Duration = Duration::from_secs(15);

/// AWS's throttling message.
const THROTTLED: &str =
    "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.";

/// The slots: one per core the process may use (shared by every node of a process).
fn slots() -> &'static Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Arc::new(Semaphore::new(cores))
    })
}

/// Runs `work` on a blocking thread once a slot is free; `what` names it in an internal error.
pub async fn run<T, F>(what: &str, work: F) -> Result<T, KmsError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    run_within(what, work, QUEUE_WAIT, WORK_WAIT).await
}

/// [`run`] with its two waits given.
async fn run_within<T, F>(
    what: &str,
    work: F,
    queue_wait: Duration,
    work_wait: Duration,
) -> Result<T, KmsError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let slot = match tokio::time::timeout(queue_wait, slots().clone().acquire_owned()).await {
        Ok(slot) => slot.expect("invariant: the slot semaphore is never closed"),
        Err(_) => {
            tracing::debug!(what, "cpu-heavy call throttled: every slot busy");
            return Err(KmsError::Throttling(THROTTLED.into()));
        }
    };
    // The thread holds the slot until the work ends, even if the caller stops waiting.
    let job = tokio::task::spawn_blocking(move || {
        let out = work();
        drop(slot);
        out
    });
    match tokio::time::timeout(work_wait, job).await {
        Ok(done) => done.map_err(|e| KmsError::Internal(format!("{what} failed: {e}"))),
        Err(_) => {
            tracing::warn!(
                what,
                ?work_wait,
                "cpu-heavy call throttled: its work is too slow on this machine"
            );
            Err(KmsError::Throttling(THROTTLED.into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn work_runs_off_the_async_thread_and_returns_its_value() {
        let here = std::thread::current().id();
        let (there, v) = run("test", || (std::thread::current().id(), 41 + 1))
            .await
            .unwrap();
        assert_eq!(v, 42);
        assert_ne!(here, there);
    }

    /// Work slower than its wait is answered with ThrottlingException, and keeps its slot
    /// until it really ends: a later call waits for it.
    #[tokio::test(flavor = "multi_thread")]
    async fn slow_work_is_throttled_and_keeps_its_slot_until_it_ends() {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let cores = slots().available_permits();
        // Occupy every slot with work that ends only when told.
        let gate = Arc::new(std::sync::Mutex::new(released));
        let mut calls = Vec::new();
        for _ in 0..cores {
            let gate = gate.clone();
            calls.push(tokio::spawn(run_within(
                "slow",
                move || {
                    let _ = gate.lock().unwrap().recv();
                },
                Duration::from_secs(5),
                Duration::from_millis(50),
            )));
        }
        for call in calls {
            let e = call.await.unwrap().unwrap_err();
            assert_eq!(e.code(), "ThrottlingException");
        }
        assert_eq!(
            slots().available_permits(),
            0,
            "the abandoned work holds its slots"
        );
        let queued = run_within(
            "next",
            || 7,
            Duration::from_millis(50),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(queued.unwrap_err().code(), "ThrottlingException");
        for _ in 0..cores {
            release.send(()).unwrap();
        }
        let next = run_within(
            "next",
            || 7,
            Duration::from_secs(30),
            Duration::from_secs(30),
        )
        .await;
        assert_eq!(next.unwrap(), 7);
    }
}
