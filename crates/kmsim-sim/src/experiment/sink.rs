//! Where a run's records go on their way to `history.jsonl`: a shared buffer of their JSON
//! lines that a writer thread drains every [`DRAIN_EVERY`]. Recording a call costs its
//! serialization, in the task that made the call, and a copy under a short lock; the writer is
//! never woken per record (a channel's receiver is, once per call whenever it keeps up, and on
//! a loaded machine those wake-ups cost the clients a share of the CPU). Records reach the file
//! in the order they were pushed.
//!
//! A record is serialized where it was made, not by the writer: a record handed to the writer
//! thread was freed there, a dozen small strings a call allocated by one thread and freed by
//! another, which kept glibc's allocator on its slow paths (arena locks, consolidation) for
//! every allocation of the run, the clients' included.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use kmsim_experiment::history::{HistoryWriter, Record};

/// How long pushed records may wait for the writer.
pub(super) const DRAIN_EVERY: Duration = Duration::from_millis(20);

/// The buffer between the run's tasks and its writer thread.
#[derive(Default)]
pub(super) struct Sink {
    state: Mutex<State>,
    closed_signal: Condvar,
}

#[derive(Default)]
struct State {
    /// The records pushed and not yet written, one JSON line each.
    lines: Vec<u8>,
    /// Nothing more will be pushed (or the writer failed): records pushed now are dropped.
    closed: bool,
}

thread_local! {
    /// Each thread's buffer to serialize a record into before it is copied into the sink.
    static LINE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

impl Sink {
    /// Appends a record.
    pub(super) fn push(&self, r: Record) {
        LINE.with_borrow_mut(|line| {
            line.clear();
            // Into memory: only a record that cannot be JSON fails, and none can.
            if HistoryWriter::new(&mut *line).write(&r).is_err() {
                return;
            }
            drop(r);
            let mut s = self.state.lock().expect("invariant: never poisoned");
            if !s.closed {
                s.lines.extend_from_slice(line);
            }
        });
    }

    /// Says nothing more will be pushed: the writer writes what is left and returns.
    pub(super) fn close(&self) {
        self.state.lock().expect("invariant: never poisoned").closed = true;
        self.closed_signal.notify_all();
    }

    /// Writes the records pushed into `out` until the sink is closed and drained, then flushes
    /// it. On a write error the sink is closed (later pushes are dropped) and the error returned.
    pub(super) fn write_all<W: Write>(&self, mut out: W) -> std::io::Result<W> {
        let mut batch = Vec::new();
        loop {
            let closed = {
                let mut s = self.state.lock().expect("invariant: never poisoned");
                if s.lines.is_empty() && !s.closed {
                    s = self
                        .closed_signal
                        .wait_timeout(s, DRAIN_EVERY)
                        .expect("invariant: never poisoned")
                        .0;
                }
                std::mem::swap(&mut s.lines, &mut batch);
                s.closed
            };
            if let Err(e) = out.write_all(&batch) {
                let mut s = self.state.lock().expect("invariant: never poisoned");
                s.closed = true;
                s.lines.clear();
                return Err(e);
            }
            batch.clear();
            if closed {
                out.flush()?;
                return Ok(out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsim_experiment::history::{self, Phase};
    use std::sync::Arc;

    fn phase(at: u64) -> Record {
        Record::Phase {
            phase: Phase::Workload,
            at,
        }
    }

    #[test]
    fn every_record_pushed_before_the_close_is_written_in_order() {
        let sink = Arc::new(Sink::default());
        let writer = {
            let sink = sink.clone();
            std::thread::spawn(move || sink.write_all(Vec::new()))
        };
        let pushers: Vec<_> = (0..4u64)
            .map(|t| {
                let sink = sink.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        sink.push(phase(t * 1_000_000 + i));
                    }
                })
            })
            .collect();
        for p in pushers {
            p.join().expect("pusher");
        }
        sink.close();
        sink.push(phase(u64::MAX));
        let bytes = writer.join().expect("writer").expect("to memory");
        let records = history::read(&bytes[..]).expect("valid");
        assert_eq!(
            records.len(),
            4000,
            "all of them, none pushed after the close"
        );
        for t in 0..4u64 {
            let mine: Vec<u64> = records
                .iter()
                .filter_map(|r| match r {
                    Record::Phase { at, .. } if at / 1_000_000 == t => Some(at % 1_000_000),
                    _ => None,
                })
                .collect();
            assert_eq!(
                mine,
                (0..1000).collect::<Vec<_>>(),
                "each pusher's order kept"
            );
        }
    }

    /// A writer that fails on its first write.
    #[derive(Debug)]
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_write_error_ends_the_writer_and_later_pushes_are_dropped() {
        let sink = Sink::default();
        sink.push(phase(1));
        let err = sink.write_all(Broken).expect_err("the write fails");
        assert_eq!(err.to_string(), "disk full");
        sink.push(phase(2));
        assert!(sink.state.lock().expect("lock").lines.is_empty());
    }
}
