//! CPU-heavy cryptography (RSA key generation, RSA private-key operations, asymmetric signing)
//! runs here, off the async workers: on a blocking thread, at most one per core at a time. An
//! RSA-4096 key pair takes up to seconds of CPU; on an async worker a few of them at once would
//! starve everything else on that worker, Raft heartbeats included, and depose the leader.
//!
//! A call that cannot start within [`QUEUE_WAIT`] (the pool is busy with a flood) is refused with
//! `ThrottlingException`, which AWS clients retry with backoff.

use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::Semaphore;

use kmsim_core::KmsError;

/// How long a call waits for a free slot before it is throttled.
pub const QUEUE_WAIT: Duration = Duration::from_secs(10);

/// AWS's throttling message.
const THROTTLED: &str =
    "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls.";

/// The slots: one per core the process may use (shared by every node of a process).
fn slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Semaphore::new(cores)
    })
}

/// Runs `work` on a blocking thread once a slot is free; `what` names it in an internal error.
pub async fn run<T, F>(what: &str, work: F) -> Result<T, KmsError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let _slot = match tokio::time::timeout(QUEUE_WAIT, slots().acquire()).await {
        Ok(slot) => slot.expect("invariant: the slot semaphore is never closed"),
        Err(_) => {
            tracing::debug!(what, "cpu-heavy call throttled: every slot busy");
            return Err(KmsError::Throttling(THROTTLED.into()));
        }
    };
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| KmsError::Internal(format!("{what} failed: {e}")))
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
}
