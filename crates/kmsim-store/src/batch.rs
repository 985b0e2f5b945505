//! [`Batcher`]: many proposals in one Raft entry, so the log's fsync, the replication round
//! trip and the apply batch are paid once per batch instead of once per write.
//!
//! Writers hand their payload to the batcher and wait for their own response. One task takes
//! the payloads queued so far (up to [`BatchLimits::max_commands`] and
//! [`BatchLimits::max_bytes`]) and proposes them as one entry; at most
//! [`BatchLimits::in_flight`] entries are being committed at a time, so under load the queue
//! fills while they commit and the next batch is larger, and a lone writer waits for nothing.
//!
//! The entry of a batch is its marker byte [`BATCH_MARKER`] then the postcard of the list of
//! payloads; the state machine applies each payload in order at the entry's log index and
//! answers the postcard of the list of responses. A payload that is alone goes as it is,
//! unless it starts with the marker itself: then it goes as a batch of one, so any payload is
//! read back as it was proposed.

use std::sync::Arc;

use openraft::error::ClientWriteError;
use openraft::error::RaftError;
use openraft::BasicNode;
use tokio::sync::mpsc;
use tokio::sync::oneshot;
use tokio::sync::Semaphore;

use crate::types::NodeId;
use crate::types::Raft;
use crate::types::RaftRequest;

/// The first byte of a batch entry.
pub const BATCH_MARKER: u8 = 0xff;

/// The error of `Raft::client_write`.
pub type ClientWriteErr = RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>;

/// How large batches get and how many are committed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// The most payloads in one entry.
    pub max_commands: usize,
    /// The most payload bytes in one entry (a payload larger than this goes alone).
    pub max_bytes: usize,
    /// Entries being committed at the same time.
    pub in_flight: usize,
}

/// What a batched write came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The log index of the entry that carried it.
    pub index: u64,
    /// The application's response to it.
    pub response: Vec<u8>,
}

/// Why a batched write failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BatchError {
    /// Raft refused or lost the entry (not the leader, shutting down, …).
    #[error(transparent)]
    Raft(Box<ClientWriteErr>),
    /// The batch could not be encoded.
    #[error("cannot encode a batch of proposals: {0}")]
    Encode(String),
    /// The batcher is gone (the node is shutting down).
    #[error("the proposal batcher has stopped")]
    Stopped,
    /// The entry was applied but its answer is not a list of one response per payload.
    #[error("the answer to a batch of {expected} proposals is malformed")]
    Malformed {
        /// How many payloads the batch had.
        expected: usize,
    },
}

struct Job {
    payload: Vec<u8>,
    done: oneshot::Sender<Result<Written, BatchError>>,
}

/// Hands proposals to the batching task of one Raft member (see the module docs).
#[derive(Clone, Debug)]
pub struct Batcher {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Batcher {
    /// Starts the batching task over `raft`; it ends when every clone of the batcher is gone.
    pub fn spawn(raft: Raft, limits: BatchLimits) -> Batcher {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(raft, rx, limits));
        Batcher { jobs }
    }

    /// Proposes `payload` in the next batch; returns once its entry is committed and applied
    /// on this member. Dropping the future does not withdraw the proposal.
    pub async fn write(&self, payload: Vec<u8>) -> Result<Written, BatchError> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { payload, done })
            .map_err(|_| BatchError::Stopped)?;
        answer.await.unwrap_or(Err(BatchError::Stopped))
    }
}

async fn run(raft: Raft, mut rx: mpsc::UnboundedReceiver<Job>, limits: BatchLimits) {
    let in_flight = Arc::new(Semaphore::new(limits.in_flight.max(1)));
    let mut carried: Option<Job> = None;
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => match rx.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        // Wait for a slot first: what queues meanwhile joins this batch.
        let Ok(slot) = Arc::clone(&in_flight).acquire_owned().await else {
            return;
        };
        let mut bytes = first.payload.len();
        let mut jobs = vec![first];
        while jobs.len() < limits.max_commands.max(1) {
            let Ok(job) = rx.try_recv() else {
                break;
            };
            if bytes + job.payload.len() > limits.max_bytes {
                carried = Some(job);
                break;
            }
            bytes += job.payload.len();
            jobs.push(job);
        }
        let raft = raft.clone();
        tokio::spawn(async move {
            commit(&raft, jobs).await;
            drop(slot);
        });
    }
}

async fn commit(raft: &Raft, mut jobs: Vec<Job>) {
    if jobs.len() == 1 && jobs[0].payload.first() != Some(&BATCH_MARKER) {
        let job = jobs.remove(0);
        let result = raft
            .client_write(RaftRequest {
                payload: job.payload,
            })
            .await
            .map(|resp| Written {
                index: resp.log_id.index,
                response: resp.data.payload,
            })
            .map_err(|e| BatchError::Raft(Box::new(e)));
        let _ = job.done.send(result);
        return;
    }
    let expected = jobs.len();
    let answers = match encode_batch(jobs.iter().map(|j| j.payload.as_slice())) {
        Ok(payload) => answers(raft.client_write(RaftRequest { payload }).await, expected),
        Err(e) => vec![Err(BatchError::Encode(e.to_string())); expected],
    };
    for (job, answer) in jobs.into_iter().zip(answers) {
        let _ = job.done.send(answer);
    }
}

/// One answer per payload of a batch of `expected`, from the outcome of its entry.
fn answers(
    result: Result<openraft::raft::ClientWriteResponse<crate::types::TypeConfig>, ClientWriteErr>,
    expected: usize,
) -> Vec<Result<Written, BatchError>> {
    match result {
        Ok(resp) => match decode_batch(&resp.data.payload) {
            Some(responses) if responses.len() == expected => responses
                .into_iter()
                .map(|response| {
                    Ok(Written {
                        index: resp.log_id.index,
                        response,
                    })
                })
                .collect(),
            _ => vec![Err(BatchError::Malformed { expected }); expected],
        },
        Err(e) => vec![Err(BatchError::Raft(Box::new(e))); expected],
    }
}

/// The entry payload of a batch of `payloads`.
pub fn encode_batch<'a>(
    payloads: impl Iterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, postcard::Error> {
    let list: Vec<&[u8]> = payloads.collect();
    postcard::to_extend(&list, vec![BATCH_MARKER])
}

/// The payloads of a batch entry, or `None` if `payload` is not one (no marker, or not a
/// well-formed list after it).
pub fn decode_batch(payload: &[u8]) -> Option<Vec<Vec<u8>>> {
    let body = payload.strip_prefix(&[BATCH_MARKER])?;
    postcard::from_bytes(body).ok()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn batches_round_trip(payloads in proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..64), 0..20)) {
            let encoded = encode_batch(payloads.iter().map(Vec::as_slice)).expect("encode");
            prop_assert_eq!(encoded[0], BATCH_MARKER);
            prop_assert_eq!(decode_batch(&encoded), Some(payloads));
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_batch(&bytes);
        }
    }

    #[test]
    fn a_payload_without_the_marker_is_not_a_batch() {
        assert_eq!(decode_batch(b"\x01abc"), None);
        assert_eq!(decode_batch(b""), None);
        assert_eq!(
            decode_batch(&[BATCH_MARKER, 0x05]),
            None,
            "a list cut short"
        );
    }
}
