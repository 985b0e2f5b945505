//! The node's call log: the CloudTrail records of the API calls this node answered that the
//! Region's replicated log does not hold — cryptographic calls, management reads, writes
//! without a Region record, and every refused or failed call (`errorCode`, `errorMessage`).
//!
//! Recording is off the request path: a call hands its facts (caller, time, the
//! `requestParameters` text built without secrets, the key, the error) to a bounded channel
//! and returns; one writer thread takes everything queued (up to [`BATCH`] records), appends
//! one compact line per call to the current segment file with one write, and syncs once per
//! batch. The whole CloudTrail record is built only when it is read ([`CallLog::list`]): the
//! facts are stored, the record is a view of them, so neither the request path nor the writer
//! formats records.
//!
//! A full channel (the writer behind by [`QUEUE`] calls: a stalled disk) makes the caller wait
//! up to [`FULL_WAIT`] for room; a call that still finds no room is counted as lost (reported
//! by every query, [`CallLog::lost`], and logged), never dropped silently, so a stuck disk slows
//! answers by at most that much instead of stopping the node. A query first waits until every
//! call queued before it is on disk, so a caller reads its own calls.
//!
//! Storage: `<node data dir>/audit-log/<first seq, 20 digits>.log`, one line per call:
//! `seq \t time_ms \t eventName \t keyId \t facts` (facts: a JSON array, see [`Facts`]).
//! Retention: the node keeps at least its newest `retention_events` records; whole segments (of
//! `retention_events / 8` records, at least 1,000, plus the rest of the batch that filled them)
//! are deleted oldest first once the rest still hold that many. Each deletion is logged, and
//! every query reports how many records retention has dropped so far.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use kmsim_core::audit::{call_record, node_event_id, push_json_str, ApiCall, CallError};
use kmsim_core::ids::Scope;
use serde_json::value::RawValue;
use tokio::sync::mpsc;

/// The most records written with one sync.
pub const BATCH: usize = 4_096;
/// How long the writer lets calls accumulate before a batch that is not full: fewer, larger
/// writes and syncs (the cost of recording is mostly per batch under load).
const GATHER: Duration = Duration::from_millis(50);
/// Calls that may wait in the channel before callers wait for the writer.
pub const QUEUE: usize = 16_384;
/// How long a call waits for room in a full channel before it is counted as lost.
pub const FULL_WAIT: Duration = Duration::from_secs(1);

/// One call to record, as the request path saw it.
#[derive(Debug, Clone)]
pub struct PendingCall {
    /// Who called what, when, with which (secret-free) parameters.
    pub call: ApiCall,
    /// The key's ID (`keyId` filter), when the call names or reached one.
    pub key_id: Option<String>,
    /// The key's ARN (`resources`).
    pub key_arn: Option<String>,
    /// CloudTrail's `readOnly`.
    pub read_only: bool,
    /// The refusal, for a failed call.
    pub error: Option<CallError>,
}

/// One stored record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedCall {
    /// Position in this node's call log.
    pub seq: u64,
    /// `eventTime`, ms.
    pub time_ms: i64,
    /// `eventName`.
    pub event_name: String,
    /// The key ID, or empty.
    pub key_id: String,
    /// The whole record, JSON.
    pub json: String,
}

/// What a query selects.
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    /// Only records after this position.
    pub after: Option<u64>,
    /// Only records at or after this time (ms).
    pub since_ms: Option<i64>,
    /// Only records at or before this time (ms).
    pub until_ms: Option<i64>,
    /// Only this `eventName`, when not empty.
    pub event_name: String,
    /// Only this key ID, when not empty.
    pub key_id: String,
}

impl CallFilter {
    /// Whether a record passes (apart from `after`).
    pub fn matches(&self, time_ms: i64, event_name: &str, key_id: &str) -> bool {
        self.since_ms.is_none_or(|s| time_ms >= s)
            && self.until_ms.is_none_or(|u| time_ms <= u)
            && (self.event_name.is_empty() || self.event_name == event_name)
            && (self.key_id.is_empty() || self.key_id == key_id)
    }
}

struct Segments {
    /// First seq of every segment file, oldest first.
    firsts: Vec<u64>,
    /// The next seq to write.
    next: u64,
    /// The open last segment.
    current: Option<File>,
}

struct Shared {
    dir: PathBuf,
    segments: Mutex<Segments>,
    /// Calls handed to the channel.
    queued: AtomicU64,
    /// Calls the writer has finished with (written or lost), and its wake-up.
    done: Mutex<u64>,
    done_cv: Condvar,
    /// Calls that could not be written (I/O error, full channel), reported by every query.
    lost: AtomicU64,
    /// Whose log this is (the records' Region, account and `eventID`s).
    scope: Scope,
    node_id: u64,
}

/// The node's call log.
pub struct CallLog {
    tx: mpsc::Sender<PendingCall>,
    shared: Arc<Shared>,
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.log"))
}

/// The seq after the last complete line of a segment.
fn next_after(path: &Path, first: u64) -> std::io::Result<u64> {
    let mut next = first;
    for line in BufReader::new(File::open(path)?).split(b'\n') {
        let line = line?;
        if let Some(seq) = std::str::from_utf8(&line)
            .ok()
            .and_then(|l| l.split('\t').next())
            .and_then(|s| s.parse::<u64>().ok())
        {
            next = seq + 1;
        }
    }
    Ok(next)
}

impl CallLog {
    /// Opens (creating) the log in `dir` and starts its writer thread.
    pub fn open(
        dir: PathBuf,
        scope: Scope,
        node_id: u64,
        retention_events: u64,
    ) -> std::io::Result<CallLog> {
        fs::create_dir_all(&dir)?;
        let mut firsts: Vec<u64> = fs::read_dir(&dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".log"))
                    .and_then(|n| n.parse().ok())
            })
            .collect();
        firsts.sort_unstable();
        let next = match firsts.last() {
            Some(&f) => next_after(&segment_path(&dir, f), f)?,
            None => 0,
        };
        let shared = Arc::new(Shared {
            dir,
            segments: Mutex::new(Segments {
                firsts,
                next,
                current: None,
            }),
            queued: AtomicU64::new(0),
            done: Mutex::new(0),
            done_cv: Condvar::new(),
            lost: AtomicU64::new(0),
            scope,
            node_id,
        });
        let (tx, rx) = mpsc::channel(QUEUE);
        let writer = Writer {
            shared: shared.clone(),
            retention: retention_events.max(1),
            segment_events: (retention_events / 8).max(1_000),
        };
        std::thread::Builder::new()
            .name("kmsim-call-log".into())
            .spawn(move || writer.run(rx))?;
        Ok(CallLog { tx, shared })
    }

    /// Queues a call. While the queue is full it waits up to [`FULL_WAIT`]; then the call is
    /// counted as lost (and logged) instead.
    pub async fn record(&self, call: PendingCall) {
        self.shared.queued.fetch_add(1, Ordering::SeqCst);
        let call = match self.tx.try_send(call) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(call)) => call,
            Err(mpsc::error::TrySendError::Closed(_)) => {
                // The writer is gone (the node is stopping): the call is counted, not hidden.
                self.lose(1, "the call log is closed");
                return;
            }
        };
        match self.tx.send_timeout(call, FULL_WAIT).await {
            Ok(()) => {}
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                self.lose(1, "the call log's queue stayed full")
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => self.lose(1, "the call log is closed"),
        }
    }

    fn lose(&self, n: u64, why: &str) {
        let before = self.shared.lost.fetch_add(n, Ordering::SeqCst);
        // Logged at the first loss and then once per 1,000, not once per call.
        if before.is_multiple_of(1_000) {
            tracing::warn!(lost = before + n, why, "calls answered but not recorded");
        }
        self.finish(n);
    }

    /// Records retention has deleted so far (the first position still held).
    pub fn dropped(&self) -> u64 {
        self.shared
            .segments
            .lock()
            .map(|s| s.firsts.first().copied().unwrap_or(s.next))
            .unwrap_or(0)
    }

    fn finish(&self, n: u64) {
        finish(&self.shared, n);
    }

    /// Calls that were answered but could not be stored.
    pub fn lost(&self) -> u64 {
        self.shared.lost.load(Ordering::SeqCst)
    }

    /// The records `filter` selects, oldest first, at most `limit`, after every call queued
    /// before this query is stored (or 5 s have passed).
    pub async fn list(&self, filter: CallFilter, limit: usize) -> std::io::Result<Vec<LoggedCall>> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let target = shared.queued.load(Ordering::SeqCst);
            let done = shared
                .done
                .lock()
                .map_err(|_| std::io::Error::other("call log lock poisoned"))?;
            let _done = shared
                .done_cv
                .wait_timeout_while(done, Duration::from_secs(5), |d| *d < target)
                .map_err(|_| std::io::Error::other("call log lock poisoned"))?;
            read_records(&shared, &filter, limit)
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?
    }
}

fn finish(shared: &Shared, n: u64) {
    if let Ok(mut d) = shared.done.lock() {
        *d += n;
    }
    shared.done_cv.notify_all();
}

fn read_records(
    shared: &Shared,
    filter: &CallFilter,
    limit: usize,
) -> std::io::Result<Vec<LoggedCall>> {
    let firsts = shared
        .segments
        .lock()
        .map_err(|_| std::io::Error::other("call log lock poisoned"))?
        .firsts
        .clone();
    let mut out = Vec::new();
    for (i, first) in firsts.iter().enumerate() {
        // Skip segments wholly before `after`.
        if let (Some(after), Some(next)) = (filter.after, firsts.get(i + 1)) {
            if *next <= after + 1 {
                continue;
            }
        }
        let file = match File::open(segment_path(&shared.dir, *first)) {
            Ok(f) => f,
            // Deleted by retention meanwhile.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in BufReader::new(file).lines() {
            let line = line?;
            let mut parts = line.splitn(5, '\t');
            let (Some(seq), Some(t), Some(name), Some(key), Some(json)) = (
                parts.next().and_then(|s| s.parse::<u64>().ok()),
                parts.next().and_then(|s| s.parse::<i64>().ok()),
                parts.next(),
                parts.next(),
                parts.next(),
            ) else {
                continue;
            };
            if filter.after.is_some_and(|a| seq <= a) || !filter.matches(t, name, key) {
                continue;
            }
            let Some(json) = render(shared, seq, t, name, json) else {
                tracing::warn!(seq, "skipping an unreadable call log line");
                continue;
            };
            out.push(LoggedCall {
                seq,
                time_ms: t,
                event_name: name.to_string(),
                key_id: key.to_string(),
                json,
            });
            if out.len() >= limit {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

/// The stored facts of one call (the line's last field), a JSON array in this order.
#[derive(serde::Deserialize)]
struct Facts<'a>(
    /// `requestID`
    String,
    /// The caller's principal ARN.
    String,
    /// `accessKeyId`
    Option<String>,
    /// `sourceIPAddress`
    Option<String>,
    /// `userAgent`
    Option<String>,
    /// The key's ARN (`resources`).
    Option<String>,
    /// `readOnly`
    bool,
    /// `errorCode`
    Option<String>,
    /// `errorMessage`
    Option<String>,
    /// `requestParameters`
    #[serde(borrow)]
    Option<&'a RawValue>,
    /// `responseElements`
    #[serde(borrow)]
    Option<&'a RawValue>,
);

/// Appends the facts of `p` (see [`Facts`]) to `out`.
fn push_facts(out: &mut String, p: &PendingCall) {
    fn opt(out: &mut String, v: Option<&str>) {
        match v {
            Some(v) => push_json_str(out, v),
            None => out.push_str("null"),
        }
    }
    fn raw(out: &mut String, v: Option<&str>) {
        out.push_str(v.filter(|v| !v.is_empty()).unwrap_or("null"));
    }
    let c = &p.call;
    out.push('[');
    push_json_str(out, &c.request_id);
    out.push(',');
    push_json_str(out, &c.principal_arn);
    out.push(',');
    opt(out, c.access_key_id.as_deref());
    out.push(',');
    opt(out, c.source_ip.as_deref());
    out.push(',');
    opt(out, c.user_agent.as_deref());
    out.push(',');
    opt(out, p.key_arn.as_deref());
    out.push_str(if p.read_only { ",true," } else { ",false," });
    opt(out, p.error.as_ref().map(|e| e.code.as_str()));
    out.push(',');
    opt(out, p.error.as_ref().map(|e| e.message.as_str()));
    out.push(',');
    raw(out, Some(&c.request_parameters));
    out.push(',');
    raw(out, c.response_elements.as_deref());
    out.push(']');
}

/// The CloudTrail record of a stored call.
fn render(
    shared: &Shared,
    seq: u64,
    time_ms: i64,
    event_name: &str,
    facts: &str,
) -> Option<String> {
    let f: Facts<'_> = serde_json::from_str(facts).ok()?;
    let call = ApiCall {
        event_name: event_name.to_string(),
        time_ms,
        request_id: f.0,
        principal_arn: f.1,
        access_key_id: f.2,
        source_ip: f.3,
        user_agent: f.4,
        request_parameters: f.9.map(|r| r.get().to_string()).unwrap_or_default(),
        response_elements: f.10.map(|r| r.get().to_string()),
    };
    let error = match (f.7, f.8) {
        (Some(code), message) => Some(CallError {
            code,
            message: message.unwrap_or_default(),
        }),
        _ => None,
    };
    Some(call_record(
        &shared.scope,
        &node_event_id(&shared.scope, shared.node_id, seq),
        &call,
        f.5.as_deref(),
        f.6,
        error.as_ref(),
    ))
}

struct Writer {
    shared: Arc<Shared>,
    retention: u64,
    segment_events: u64,
}

impl Writer {
    fn run(self, mut rx: mpsc::Receiver<PendingCall>) {
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            if rx.len() < BATCH {
                std::thread::sleep(GATHER);
            }
            while batch.len() < BATCH {
                match rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            let n = batch.len() as u64;
            if let Err(e) = self.write(&batch) {
                tracing::error!(error = %e, lost = n, "cannot write the call log");
                self.shared.lost.fetch_add(n, Ordering::SeqCst);
            }
            batch.clear();
            finish(&self.shared, n);
        }
    }

    fn write(&self, batch: &[PendingCall]) -> std::io::Result<()> {
        let mut segs = self
            .shared
            .segments
            .lock()
            .map_err(|_| std::io::Error::other("call log lock poisoned"))?;
        let mut buf = String::with_capacity(batch.len() * 384);
        let mut seq = segs.next;
        for p in batch {
            // Tabs and newlines never occur in these fields: the event name and key ID are
            // AWS names and key IDs, the facts are JSON (which escapes them).
            use std::fmt::Write as _;
            let _ = write!(
                buf,
                "{seq}\t{}\t{}\t{}\t",
                p.call.time_ms,
                p.call.event_name,
                p.key_id.as_deref().unwrap_or_default()
            );
            push_facts(&mut buf, p);
            buf.push('\n');
            seq += 1;
        }
        let start_new = match segs.firsts.last() {
            None => true,
            Some(&f) => segs.next - f >= self.segment_events,
        };
        if start_new || segs.current.is_none() {
            let first = if start_new {
                segs.next
            } else {
                segs.firsts.last().copied().unwrap_or(segs.next)
            };
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(segment_path(&self.shared.dir, first))?;
            if start_new {
                segs.firsts.push(first);
            }
            segs.current = Some(file);
        }
        if let Some(file) = segs.current.as_mut() {
            file.write_all(buf.as_bytes())?;
            file.sync_data()?;
        }
        segs.next = seq;
        // Retention: drop the oldest segment while the others keep `retention` records.
        while segs.firsts.len() > 1 && segs.next - segs.firsts[1] >= self.retention {
            let old = segs.firsts.remove(0);
            match fs::remove_file(segment_path(&self.shared.dir, old)) {
                Ok(()) => tracing::info!(
                    dropped = segs.firsts[0],
                    retention_events = self.retention,
                    "call log retention: deleted the oldest segment"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    segment = old,
                    "cannot delete an expired call log segment"
                ),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kmsim_core::ids::{AccountId, Partition, Region};

    fn scope() -> Scope {
        Scope {
            partition: Partition::parse("aws").unwrap(),
            region: Region::parse("eu-west-1").unwrap(),
            account: AccountId::parse("111122223333").unwrap(),
        }
    }

    fn call(name: &str, t: i64) -> PendingCall {
        PendingCall {
            call: ApiCall {
                event_name: name.into(),
                time_ms: t,
                request_id: "r".into(),
                principal_arn: "arn:aws:iam::111122223333:root".into(),
                access_key_id: None,
                source_ip: None,
                user_agent: None,
                request_parameters: r#"{"keyId":"k"}"#.into(),
                response_elements: None,
            },
            key_id: Some("k".into()),
            key_arn: Some("arn:k".into()),
            read_only: true,
            error: None,
        }
    }

    #[tokio::test]
    async fn keeps_filters_reopens_and_expires() {
        let dir = std::env::temp_dir().join(format!("kmsim-call-log-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let log = CallLog::open(dir.clone(), scope(), 1, 2_000).unwrap();
        for i in 0..5_000 {
            log.record(call(if i % 2 == 0 { "Encrypt" } else { "Decrypt" }, i))
                .await;
            if i % 500 == 499 {
                // A query waits for the writer: batches end here, segments can rotate.
                log.list(CallFilter::default(), 1).await.unwrap();
            }
        }
        let f = CallFilter {
            event_name: "Decrypt".into(),
            since_ms: Some(4_000),
            ..CallFilter::default()
        };
        let got = log.list(f, 10_000).await.unwrap();
        assert_eq!(got.len(), 500);
        assert!(got
            .iter()
            .all(|c| c.event_name == "Decrypt" && c.time_ms >= 4_000));
        let all = log.list(CallFilter::default(), 100_000).await.unwrap();
        // At least the newest 2,000 kept, whole old segments deleted.
        assert!(all.len() >= 2_000 && all.len() < 5_000, "{}", all.len());
        assert_eq!(all.last().map(|c| c.seq), Some(4_999));
        let page = log
            .list(
                CallFilter {
                    after: Some(4_990),
                    ..CallFilter::default()
                },
                3,
            )
            .await
            .unwrap();
        assert_eq!(
            page.iter().map(|c| c.seq).collect::<Vec<_>>(),
            [4_991, 4_992, 4_993]
        );
        drop(log);
        let again = CallLog::open(dir.clone(), scope(), 1, 2_000).unwrap();
        again.record(call("Sign", 9_999)).await;
        let last = again.list(CallFilter::default(), 100_000).await.unwrap();
        assert_eq!(last.last().map(|c| c.seq), Some(5_000));
        assert_eq!(again.lost(), 0);
        let _ = fs::remove_dir_all(&dir);
    }
}
