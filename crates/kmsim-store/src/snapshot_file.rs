//! [`SnapshotFile`]: openraft's `SnapshotData`, a snapshot's data read from or written to its
//! stored chunks one chunk at a time, never whole in memory.
//!
//! A snapshot's data (the encoded `SnapshotBlob`) is stored under `c/` + slot + u32 BE chunk
//! index. The layout: chunk 0 holds the first bytes, any number of them; every later chunk holds
//! exactly the store's chunk size (1 MiB), the last one fewer. A build writes its records as
//! they are encoded into chunks 1, 2, … and the header, known once the records are counted,
//! into chunk 0 last; received data and data stored by earlier versions have a full chunk 0.
//! Where byte `n` lies therefore follows from the length of chunk 0 alone ([`locate`]).
//!
//! Slots: the current snapshot's slot (named by `s/snapshot-head`) is never written; a build
//! or a receive writes into a slot nobody uses, leased from the [`SlotTable`]; a file reading a
//! snapshot holds a lease on its slot, so a newer snapshot does not clear or reuse it while it
//! is sent. The last lease of a slot that is not current clears it. One store (and its clones)
//! per engine: leases are counted in memory.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fmt;
use std::future::Future;
use std::io;
use std::io::SeekFrom;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::task::ready;
use std::task::Context;
use std::task::Poll;

use tokio::io::AsyncRead;
use tokio::io::AsyncSeek;
use tokio::io::AsyncWrite;
use tokio::io::ReadBuf;
use tokio::task::JoinHandle;

use crate::codec;
use crate::codec::SnapshotHead;
use crate::engine::KvEngine;
use crate::engine::KvRead;
use crate::engine::WriteOp;
use crate::error::StoreError;
use crate::keys;
use crate::snapshot_guard::MAX_SNAPSHOT_BYTES;

/// Where byte `offset` of stored data lies, as (chunk index, offset inside that chunk), when
/// chunk 0 holds `first` bytes and every later chunk `chunk` bytes (at least 1).
pub(crate) fn locate(offset: u64, first: u64, chunk: u64) -> (u64, u64) {
    match offset.checked_sub(first) {
        None => (0, offset),
        Some(after) => (1 + after / chunk, after % chunk),
    }
}

/// How many bytes chunk `index` of stored data of `len` bytes holds, with chunk 0 of `first`
/// bytes and the later ones of `chunk` (0 for a chunk beyond the end).
pub(crate) fn chunk_len(index: u64, first: u64, chunk: u64, len: u64) -> u64 {
    if index == 0 {
        return first.min(len);
    }
    let start = (index - 1)
        .checked_mul(chunk)
        .and_then(|s| s.checked_add(first));
    match start {
        Some(start) if start < len => chunk.min(len - start),
        _ => 0,
    }
}

/// The op deleting every chunk of `slot`.
pub(crate) fn clear_slot(slot: u8) -> WriteOp {
    let (from, to) = keys::chunk_range(slot);
    WriteOp::DeleteRange { from, to }
}

/// The op storing `data` as chunk `index` of `slot`.
pub(crate) fn chunk_op(slot: u8, index: u32, data: Vec<u8>) -> WriteOp {
    WriteOp::Put {
        key: keys::chunk_key(slot, index),
        value: data,
    }
}

/// The current snapshot's head, if there is one.
pub(crate) fn read_snapshot_head<R: KvRead + ?Sized>(
    reader: &R,
) -> Result<Option<SnapshotHead>, StoreError> {
    reader
        .get(keys::SNAPSHOT_HEAD)?
        .map(|bytes| codec::decode("snapshot head", &bytes))
        .transpose()
}

/// Which chunk slots are in use besides the current snapshot's.
#[derive(Debug, Default)]
struct SlotUses {
    /// Open leases of files reading a slot, by slot.
    readers: BTreeMap<u8, usize>,
    /// Slots being written (a build or a receive).
    writers: BTreeSet<u8>,
}

impl SlotUses {
    fn in_use(&self, slot: u8) -> bool {
        self.readers.contains_key(&slot) || self.writers.contains(&slot)
    }
}

/// The chunk slots of one store: which are in use, and the engine they are stored in. Shared by
/// a store, its clones and every [`SnapshotFile`] it opened.
pub(crate) struct SlotTable {
    engine: Arc<dyn KvEngine>,
    /// Bytes of every chunk after chunk 0 (see the module docs).
    chunk_bytes: usize,
    /// Held for short, engine-only work: never across an await or a long read.
    uses: Mutex<SlotUses>,
}

impl fmt::Debug for SlotTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlotTable")
            .field("chunk_bytes", &self.chunk_bytes)
            .finish_non_exhaustive()
    }
}

impl SlotTable {
    /// The slots of the store in `engine`, with chunks of `chunk_bytes` (at least 1).
    pub(crate) fn new(engine: Arc<dyn KvEngine>, chunk_bytes: usize) -> Arc<Self> {
        Arc::new(Self {
            engine,
            chunk_bytes: chunk_bytes.max(1),
            uses: Mutex::new(SlotUses::default()),
        })
    }

    /// Bytes of every chunk after chunk 0.
    pub(crate) fn chunk_bytes(&self) -> usize {
        self.chunk_bytes
    }

    fn lock(&self) -> Result<MutexGuard<'_, SlotUses>, StoreError> {
        self.uses.lock().map_err(|_| StoreError::Poisoned {
            what: "snapshot slots",
        })
    }

    fn current_slot(&self) -> Result<Option<u8>, StoreError> {
        Ok(read_snapshot_head(self.engine.as_ref())?.map(|head| head.slot))
    }

    /// The current snapshot's head and a lease to read its slot; `None` when there is none.
    pub(crate) fn open_current(
        self: &Arc<Self>,
    ) -> Result<Option<(SnapshotHead, Lease)>, StoreError> {
        let mut uses = self.lock()?;
        let Some(head) = read_snapshot_head(self.engine.as_ref())? else {
            return Ok(None);
        };
        *uses.readers.entry(head.slot).or_default() += 1;
        let lease = Lease {
            table: Arc::clone(self),
            slot: head.slot,
            writing: false,
        };
        Ok(Some((head, lease)))
    }

    /// Leases a slot nobody uses, to write a snapshot into, cleared of whatever an interrupted
    /// write left there.
    pub(crate) fn lease_for_writing(self: &Arc<Self>) -> Result<Lease, StoreError> {
        let mut uses = self.lock()?;
        let current = self.current_slot()?;
        let slot = (0..=u8::MAX)
            .find(|slot| Some(*slot) != current && !uses.in_use(*slot))
            .ok_or_else(|| StoreError::corrupt("every snapshot chunk slot is in use"))?;
        self.engine.write(vec![clear_slot(slot)], false)?;
        uses.writers.insert(slot);
        Ok(Lease {
            table: Arc::clone(self),
            slot,
            writing: true,
        })
    }

    /// Writes `ops`, which make the snapshot in `slot` the current one, and clears the slot of
    /// the snapshot they replace unless a file still reads it (then its last lease does).
    pub(crate) fn switch_head(
        &self,
        mut ops: Vec<WriteOp>,
        slot: u8,
        durable: bool,
    ) -> Result<(), StoreError> {
        let uses = self.lock()?;
        if let Some(previous) = self.current_slot()? {
            if previous != slot && !uses.in_use(previous) {
                ops.push(clear_slot(previous));
            }
        }
        self.engine.write(ops, durable)
    }

    /// Ends one lease of `slot`; the last use of a slot that is not current clears it.
    fn release(&self, slot: u8, writing: bool) -> Result<(), StoreError> {
        let mut uses = self.lock()?;
        if writing {
            uses.writers.remove(&slot);
        } else if let Some(count) = uses.readers.get_mut(&slot) {
            *count -= 1;
            if *count == 0 {
                uses.readers.remove(&slot);
            }
        }
        if !uses.in_use(slot) && self.current_slot()? != Some(slot) {
            self.engine.write(vec![clear_slot(slot)], false)?;
        }
        Ok(())
    }
}

/// The right to read or write one chunk slot; dropping it ends that use.
pub(crate) struct Lease {
    table: Arc<SlotTable>,
    slot: u8,
    writing: bool,
}

impl Lease {
    /// The slot.
    pub(crate) fn slot(&self) -> u8 {
        self.slot
    }

    /// The store's engine.
    pub(crate) fn engine(&self) -> &dyn KvEngine {
        self.table.engine.as_ref()
    }

    /// Turns a writing lease into a reading one (a build hands out what it wrote).
    pub(crate) fn into_reader(mut self) -> Result<Lease, StoreError> {
        if self.writing {
            let mut uses = self.table.lock()?;
            uses.writers.remove(&self.slot);
            *uses.readers.entry(self.slot).or_default() += 1;
            self.writing = false;
        }
        Ok(self)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Err(e) = self.table.release(self.slot, self.writing) {
            tracing::warn!(slot = self.slot, error = %e, "cannot release a snapshot chunk slot");
        }
    }
}

/// A blocking engine call running off the async workers.
type Pending<T> = JoinHandle<Result<T, StoreError>>;

/// Runs `work` on tokio's blocking pool.
fn spawn_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> io::Result<Pending<T>> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|e| {
        io::Error::other(format!("snapshot file used outside a tokio runtime: {e}"))
    })?;
    Ok(runtime.spawn_blocking(work))
}

/// Polls a pending engine call.
fn poll_pending<T>(pending: &mut Pending<T>, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
    Poll::Ready(match ready!(Pin::new(pending).poll(cx)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(io::Error::other(e)),
        Err(e) => Err(io::Error::other(e)),
    })
}

fn corrupt(reason: String) -> io::Error {
    io::Error::other(StoreError::corrupt(reason))
}

/// Reading mode: the stored data of a snapshot, `len` bytes.
struct Reading {
    len: u64,
    /// Length of chunk 0, once read.
    first: Option<u64>,
    /// The chunk read last and its index.
    loaded: Option<(u64, Vec<u8>)>,
    /// The chunk being read.
    loading: Option<(u64, Pending<Option<Vec<u8>>>)>,
}

/// Writing mode: received bytes, stored a full chunk at a time into a free slot.
struct Writing {
    /// Bytes after the stored full chunks (less than a chunk).
    tail: Vec<u8>,
    /// Bytes in full chunks handed to the engine.
    stored: u64,
    /// Index of the chunk `tail` will become.
    next: u32,
    /// The write of a chunk under way.
    pending: Option<Pending<()>>,
    /// Whether `tail`, as it is, is stored too (after a flush).
    tail_stored: bool,
    /// Shut down: no more writes.
    finished: bool,
    /// A chunk write failed: the data is incomplete.
    failed: bool,
}

enum Mode {
    Read(Reading),
    Write(Writing),
}

/// openraft's `SnapshotData`: a snapshot's data in its stored chunks, read (a snapshot being
/// sent) or written (a snapshot being received) one chunk at a time.
///
/// - **Reading** ([`StateMachineStore`](crate::StateMachineStore)'s current or just built
///   snapshot): a seek only moves the position; a read loads the chunk that holds it (keeping
///   the last one), on tokio's blocking pool. openraft's sender seeks to each piece it sends
///   and reads it, so the sender holds a chunk, not the snapshot.
/// - **Writing** (`begin_receiving_snapshot`): bytes are appended at the end of what was
///   received and stored as each chunk fills, one engine write at a time; shutting down (or
///   flushing) stores the last, partial chunk. Bytes written at an offset already received are
///   a resend of the same bytes (openraft resends a piece at the same offset when an attempt
///   failed; a snapshot id names one snapshot's data) and are skipped. A write beyond the end
///   of what was received, or past [`MAX_SNAPSHOT_BYTES`], is refused.
///
/// Errors are `io::Error`s wrapping [`StoreError`]s; a file used outside a tokio runtime fails
/// instead of blocking.
pub struct SnapshotFile {
    /// The slot it reads or writes; shared with engine calls under way, so the slot is not
    /// released (cleared, reused) before they end.
    lease: Arc<Lease>,
    /// The position of the next read or write.
    pos: u64,
    mode: Mode,
}

impl fmt::Debug for SnapshotFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            Mode::Read(_) => "read",
            Mode::Write(_) => "write",
        };
        f.debug_struct("SnapshotFile")
            .field("slot", &self.lease.slot)
            .field("mode", &mode)
            .field("pos", &self.pos)
            .field("len", &self.len())
            .finish()
    }
}

impl SnapshotFile {
    /// Reads the `len` bytes stored in `lease`'s slot.
    pub(crate) fn reader(lease: Lease, len: u64) -> Self {
        Self {
            lease: Arc::new(lease),
            pos: 0,
            mode: Mode::Read(Reading {
                len,
                first: None,
                loaded: None,
                loading: None,
            }),
        }
    }

    /// Receives data into `lease`'s slot (a writing lease of an emptied slot).
    pub(crate) fn writer(lease: Lease) -> Self {
        Self {
            lease: Arc::new(lease),
            pos: 0,
            mode: Mode::Write(Writing {
                tail: Vec::new(),
                stored: 0,
                next: 0,
                pending: None,
                tail_stored: false,
                finished: false,
                failed: false,
            }),
        }
    }

    /// Length of the data: all of it when reading, what was received so far when writing.
    pub fn len(&self) -> u64 {
        match &self.mode {
            Mode::Read(r) => r.len,
            Mode::Write(w) => w.stored + w.tail.len() as u64,
        }
    }

    /// True when [`len`](Self::len) is 0.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this file is receiving data into a slot of `table`.
    pub(crate) fn writes_into(&self, table: &Arc<SlotTable>) -> bool {
        matches!(self.mode, Mode::Write(_)) && Arc::ptr_eq(&self.lease.table, table)
    }

    /// The lease of the slot holding the whole received data, and its length: for a file
    /// shut down after receiving, with every chunk stored.
    pub(crate) fn into_received(self) -> Result<(Arc<Lease>, u64), StoreError> {
        let len = self.len();
        match self.mode {
            Mode::Write(w) if w.finished && w.pending.is_none() && !w.failed => {
                Ok((self.lease, len))
            }
            _ => Err(StoreError::corrupt(
                "a snapshot is installed from a file that did not finish receiving it",
            )),
        }
    }

    /// Starts storing `data` as chunk `index`.
    fn store_chunk(lease: &Arc<Lease>, index: u32, data: Vec<u8>) -> io::Result<Pending<()>> {
        let lease = Arc::clone(lease);
        spawn_blocking(move || {
            lease
                .engine()
                .write(vec![chunk_op(lease.slot, index, data)], false)
        })
    }
}

impl Reading {
    /// Makes chunk `index` the loaded one, reading it if needed.
    fn poll_load(
        &mut self,
        cx: &mut Context<'_>,
        lease: &Arc<Lease>,
        chunk_bytes: u64,
        index: u64,
    ) -> Poll<io::Result<()>> {
        if self.loaded.as_ref().is_some_and(|(i, _)| *i == index) {
            return Poll::Ready(Ok(()));
        }
        if self.loading.as_ref().is_none_or(|(i, _)| *i != index) {
            let key_index = u32::try_from(index)
                .map_err(|_| corrupt(format!("snapshot chunk {index} is beyond the last")))?;
            let reader = Arc::clone(lease);
            let load = spawn_blocking(move || {
                reader
                    .engine()
                    .get(&keys::chunk_key(reader.slot, key_index))
            })?;
            // A load of another chunk under way is dropped (it finishes unread).
            self.loading = Some((index, load));
        }
        let Some((_, load)) = self.loading.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let chunk = ready!(poll_pending(load, cx));
        self.loading = None;
        let chunk = chunk?.ok_or_else(|| corrupt(format!("snapshot chunk {index} is missing")))?;
        let held = chunk.len() as u64;
        let (first, fits) = match self.first {
            // Chunk 0 holds any number of bytes up to the whole.
            None if index == 0 => (held, held <= self.len),
            Some(first) if index == 0 => (first, held == first),
            Some(first) => (
                first,
                held > 0 && held == chunk_len(index, first, chunk_bytes, self.len),
            ),
            None => return Poll::Ready(Err(corrupt("chunk 0 was not read first".into()))),
        };
        if !fits {
            return Poll::Ready(Err(corrupt(format!(
                "snapshot chunk {index} holds {held} bytes, which do not fit a snapshot of {} bytes",
                self.len
            ))));
        }
        self.first = Some(first);
        self.loaded = Some((index, chunk));
        Poll::Ready(Ok(()))
    }
}

impl Writing {
    /// Waits for the chunk write under way.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.failed {
            return Poll::Ready(Err(io::Error::other(
                "an earlier chunk of this snapshot could not be stored",
            )));
        }
        let Some(pending) = self.pending.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let done = ready!(poll_pending(pending, cx));
        self.pending = None;
        self.failed = done.is_err();
        Poll::Ready(done)
    }
}

impl AsyncRead for SnapshotFile {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let chunk_bytes = this.lease.table.chunk_bytes as u64;
        let Mode::Read(r) = &mut this.mode else {
            return Poll::Ready(Err(io::Error::other(
                "a snapshot being received cannot be read",
            )));
        };
        loop {
            if buf.remaining() == 0 || this.pos >= r.len {
                return Poll::Ready(Ok(()));
            }
            let Some(first) = r.first else {
                ready!(r.poll_load(cx, &this.lease, chunk_bytes, 0))?;
                continue;
            };
            let (index, within) = locate(this.pos, first, chunk_bytes);
            ready!(r.poll_load(cx, &this.lease, chunk_bytes, index))?;
            let Some((_, chunk)) = &r.loaded else {
                continue;
            };
            // `poll_load` checked the chunk's length, so `within` is inside it.
            let within = within as usize;
            let n = (chunk.len() - within).min(buf.remaining());
            buf.put_slice(&chunk[within..within + n]);
            this.pos += n as u64;
            return Poll::Ready(Ok(()));
        }
    }
}

impl AsyncSeek for SnapshotFile {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        let target = match position {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(delta) => this.len().checked_add_signed(delta),
            SeekFrom::Current(delta) => this.pos.checked_add_signed(delta),
        };
        this.pos = target.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of a snapshot",
            )
        })?;
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(self.pos))
    }
}

impl AsyncWrite for SnapshotFile {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let chunk_bytes = this.lease.table.chunk_bytes;
        let Mode::Write(w) = &mut this.mode else {
            return Poll::Ready(Err(io::Error::other("a stored snapshot cannot be written")));
        };
        ready!(w.poll_pending(cx))?;
        if w.finished {
            return Poll::Ready(Err(io::Error::other(
                "a snapshot file is written after it was shut down",
            )));
        }
        let end = w.stored + w.tail.len() as u64;
        if this.pos > end {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "snapshot bytes at offset {} leave a gap: {end} bytes were received",
                    this.pos
                ),
            )));
        }
        if this.pos < end {
            // A resend of bytes already here.
            let skipped = (end - this.pos).min(data.len() as u64);
            this.pos += skipped;
            return Poll::Ready(Ok(skipped as usize));
        }
        let n = (chunk_bytes - w.tail.len()).min(data.len());
        if end + n as u64 > MAX_SNAPSHOT_BYTES {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("a snapshot is larger than {MAX_SNAPSHOT_BYTES} bytes"),
            )));
        }
        w.tail.extend_from_slice(&data[..n]);
        w.tail_stored = false;
        this.pos += n as u64;
        if w.tail.len() == chunk_bytes {
            let full = std::mem::take(&mut w.tail);
            w.pending = Some(Self::store_chunk(&this.lease, w.next, full)?);
            w.stored += chunk_bytes as u64;
            w.next = w
                .next
                .checked_add(1)
                .ok_or_else(|| io::Error::other("too many snapshot chunks"))?;
        }
        Poll::Ready(Ok(n))
    }

    /// Stores everything received so far, the partial last chunk included.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let Mode::Write(w) = &mut this.mode else {
            return Poll::Ready(Ok(()));
        };
        ready!(w.poll_pending(cx))?;
        if !w.tail.is_empty() && !w.tail_stored {
            w.pending = Some(Self::store_chunk(&this.lease, w.next, w.tail.clone())?);
            w.tail_stored = true;
            ready!(w.poll_pending(cx))?;
        }
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        if let Mode::Write(w) = &mut self.get_mut().mode {
            w.finished = true;
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests;
