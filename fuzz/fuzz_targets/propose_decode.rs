//! Arbitrary bytes as the `command` of a forwarded `Propose`, and as a Raft log entry: decoding
//! never panics nor overflows the stack (wrappers are bounded), what is accepted is never a
//! command only the leader's own tasks propose, and it re-encodes to a command that decodes
//! to the same value.
#![no_main]

use kmsim_core::state::{decode_command, encode_command, ForwardedCommand};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cmd) = decode_command(data) {
        assert_eq!(decode_command(&encode_command(&cmd)), Ok(cmd));
    }
    if let Ok(f) = ForwardedCommand::decode(data) {
        assert_eq!(f.command().leader_only(), None);
        let again = ForwardedCommand::decode(&f.encode()).expect("a forwarded command re-decodes");
        assert_eq!(again, f);
    }
});
