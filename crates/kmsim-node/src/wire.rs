//! Encoding of the openraft messages carried inside `kmsim.raft.v1.RaftPayload`.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Encodes a Raft message (postcard).
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    postcard::to_allocvec(v).expect("invariant: raft messages always encode")
}

/// Decodes a Raft message.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, tonic::Status> {
    postcard::from_bytes(bytes)
        .map_err(|e| tonic::Status::invalid_argument(format!("undecodable raft payload: {e}")))
}
