//! Standard output of every command, written so that a reader that goes away is not a crash.
//!
//! `kmsim status | head -1`: `head` exits after one line and the next write to the pipe fails
//! with `EPIPE`. `println!` panics on that. C tools die silently from `SIGPIPE` instead; a Rust
//! program starts with `SIGPIPE` ignored, and this binary keeps it so (restoring the default
//! would also need `unsafe`, which the workspace forbids):
//! - it is a server (`node`, `gateway`) and a network client (`kms`, `status`, `bench`), and
//!   tokio/hyper/tonic write to sockets with `writev`, which raises `SIGPIPE` when the peer has
//!   reset the connection: with the default action a node or a benchmark would be killed by a
//!   peer closing a socket instead of seeing an error it handles;
//! - a command that changes things (`up`, `down`, `chaos`, `node kill`) must not stop half-way
//!   (nodes started but never stopped, or left running) because nobody reads its report.
//!
//! So every command writes through [`print`] and [`write_bytes`] (and the `outln!`/`out!`
//! macros of `main.rs`; `clippy::print_stdout` keeps `println!` out of the binary). Once the
//! reader has gone (`EPIPE`) the rest of the output is dropped without a word, the command
//! finishes its work and exits with its own status, as if its output went to `/dev/null`. Any
//! other write error (a full disk behind `>`) does not interrupt the command either, but is kept
//! and makes the exit status a failure ([`take_error`]), so a truncated output never passes for
//! a complete one.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Set by the first failed write: everything after it is dropped (the output is broken from
/// there on, and a half-written line must not be followed by more).
static BROKEN: AtomicBool = AtomicBool::new(false);

/// The first write error other than `EPIPE`, reported by `main` at exit.
static ERROR: Mutex<Option<io::Error>> = Mutex::new(None);

/// Writes formatted text to standard output and flushes it.
pub fn print(args: fmt::Arguments<'_>) {
    write(|out| out.write_fmt(args));
}

/// Writes bytes (a binary blob) to standard output and flushes them.
pub fn write_bytes(bytes: &[u8]) {
    write(|out| out.write_all(bytes));
}

/// Runs one write on the locked standard output and records how it failed, if it did.
fn write(f: impl FnOnce(&mut io::StdoutLock<'static>) -> io::Result<()>) {
    if BROKEN.load(Ordering::Relaxed) {
        return;
    }
    let mut out = io::stdout().lock();
    // Flushed at once: an error shows up at the write that caused it, not at exit, where std
    // would drop it.
    if let Err(e) = f(&mut out).and_then(|()| out.flush()) {
        BROKEN.store(true, Ordering::Relaxed);
        if e.kind() != io::ErrorKind::BrokenPipe {
            let mut first = ERROR.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert(e);
        }
    }
}

/// The write error that left the output incomplete, if any; a reader that went away (`EPIPE`)
/// is not one.
pub fn take_error() -> Option<io::Error> {
    ERROR.lock().unwrap_or_else(|p| p.into_inner()).take()
}
