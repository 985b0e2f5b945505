//! The workload clients' retries of throttled calls (`[workload] retries`), as AWS SDKs make
//! them: a call answered `ThrottlingException` (which had no effect) is sent again after a
//! backoff, up to `retries` more times. Every attempt is its own call in the history, so each
//! throttle shows; a retry keeps the first attempt's `due`, so its latency counts the throttled
//! attempts and the backoffs, as the caller waited for them. Server faults and calls without
//! an answer are not retried: their outcome is unknown, and a retried write could take effect
//! twice.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use kmsim_experiment::history::Outcome;

use super::calls::{KeyBook, Planned};
use super::runner::{make_call, Caller, Recorder};
use crate::aws_client::OwnConnection;

/// The first backoff; each next one doubles it.
pub(super) const RETRY_BASE: Duration = Duration::from_millis(50);

/// The longest backoff.
pub(super) const RETRY_CAP: Duration = Duration::from_secs(1);

/// The backoff before retry number `attempt` (0 for the first retry).
pub(super) fn backoff(attempt: u32) -> Duration {
    RETRY_BASE
        .saturating_mul(1u32 << attempt.min(16))
        .min(RETRY_CAP)
}

/// Makes a call, and again after a backoff while it is throttled, at most `retries` more
/// times; records every attempt.
pub(super) async fn call_retrying(
    rec: &Recorder,
    conn: &mut OwnConnection,
    book: &Mutex<KeyBook>,
    who: Caller<'_>,
    due: Instant,
    planned: Planned,
    retries: u32,
) {
    let mut attempt = 0;
    loop {
        let op = make_call(rec, conn, book, who, due, &planned).await;
        let throttled =
            matches!(&op.outcome, Outcome::Failed { code, .. } if code == "ThrottlingException");
        rec.op(op);
        if !throttled || attempt >= retries {
            return;
        }
        tokio::time::sleep(backoff(attempt)).await;
        attempt += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        assert_eq!(backoff(0), Duration::from_millis(50));
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(4), Duration::from_millis(800));
        assert_eq!(backoff(5), RETRY_CAP);
        assert_eq!(backoff(u32::MAX), RETRY_CAP);
    }
}
