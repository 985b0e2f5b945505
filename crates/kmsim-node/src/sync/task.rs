//! The synchronizer task. On the Region's Raft leader it derives from the replicated state
//! what other Regions must learn, delivers it (retried with capped backoff until answered),
//! and records the answers through Raft. On followers it idles.
//!
//! Work it finds, per pass:
//! - every (primary key, replica Region) whose acknowledged (epoch, version) is behind the
//!   key's — a new replica to create, a shared-property change, a new material version — and,
//!   every `anti_entropy` interval, every pair regardless (anti-entropy repairs anything lost);
//! - every hand-over in flight on a demoted primary (the promotion to deliver);
//! - every queued notice (replica deleted, material imported);
//! - every rotation whose new material every replica now holds (proposes its promotion);
//! - every replica here still `Creating` long after it was made (asks its primary whether the
//!   ReplicateKey committed there, and takes the record back when it did not);
//! - in the IAM home Region, every other Region that has not answered with the IAM version
//!   held here (the whole document is sent; resent at the anti-entropy pace too).
//!
//! Needed work is started before anti-entropy and has its own permits: anti-entropy runs at
//! most `ANTI_ENTROPY_IN_FLIGHT` deliveries at once, so a cluster with many keys never makes
//! a rotation wait behind the periodic resend of everything. A resend that changes nothing
//! costs no Raft write on either side (the receiver answers from its state, the sender skips
//! an acknowledgement it already holds).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ServerState;
use tokio::sync::{mpsc, watch, Notify, Semaphore};

use kmsim_core::ids::{KeyId, Region};
use kmsim_core::key::{KeyState, Origin};
use kmsim_core::state::mrk::rotation_ready;
use kmsim_core::state::{Command, KmsState};
use kmsim_core::sync::{ChangeOrigin, Notice, NoticeKind, SyncMessage, SyncReply, IAM_ENVELOPE_ID};

use super::envelope::{pack, Bundle};
use super::link::SyncLink;
use crate::backoff::jittered;
use crate::kms::KmsApi;
use crate::trace::{self, TraceContext};

/// Timing of the synchronizer (topology `[sync]`).
#[derive(Debug, Clone, Copy)]
pub struct SyncSettings {
    /// First retry delay after a failed delivery; doubles up to `retry_max`.
    pub retry_min: Duration,
    /// Longest delay between retries.
    pub retry_max: Duration,
    /// How often every (key, replica) pair is sent again even when acknowledged.
    pub anti_entropy: Duration,
    /// Deadline of one delivery RPC.
    pub rpc_timeout: Duration,
    /// How long a node's session key is current (it is kept one more period, then wiped).
    pub session_key_period: Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        SyncSettings {
            retry_min: Duration::from_millis(50),
            retry_max: Duration::from_secs(2),
            anti_entropy: Duration::from_secs(10),
            rpc_timeout: Duration::from_secs(5),
            session_key_period: Duration::from_secs(300),
        }
    }
}

/// How often the task looks for work when nothing wakes it.
const PASS: Duration = Duration::from_millis(100);
/// Needed deliveries and promotions in flight at once.
const MAX_IN_FLIGHT: usize = 64;
/// Anti-entropy deliveries in flight at once (beside the needed ones).
const ANTI_ENTROPY_IN_FLIGHT: usize = 8;

/// One thing to deliver or propose, named by what it is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Target {
    /// The key's state to a Region (a promotion when `promote`).
    Key(KeyId, Region, bool),
    /// A queued notice.
    Notice(u64),
    /// The promotion of a rotation's material version to current, proposed in this Region.
    Promote(KeyId, u32),
    /// A replica here still `Creating` after [`ORPHAN_GRACE_MS`]: ask its primary (the
    /// Region) whether it lists the replica, and take the record back if it does not.
    Creating(KeyId, Region),
    /// The IAM document, from the IAM home Region to another Region.
    Iam(Region),
}

/// How long a replica may stay `Creating` (Region time) before its primary is asked whether
/// the ReplicateKey that made it committed there. Longer than a ReplicateKey request takes
/// unless faults slow it down (the primary commits within the request); should one take
/// longer, the record may be taken back before the primary commits, and the primary's first
/// synchronization then creates the replica again.
const ORPHAN_GRACE_MS: i64 = 10_000;

/// How one delivery ended.
struct Outcome {
    target: Target,
    needed: bool,
    ok: bool,
}

/// Per-target memory of the leader (lost on a leader change, which only means the next leader
/// sends everything once more).
#[derive(Default)]
struct Memory {
    /// Needed deliveries under way.
    needed_in_flight: HashSet<Target>,
    /// Anti-entropy resends under way. A needed delivery does not wait for a resend of the
    /// same target (both are idempotent on the receiver, which applies only a newer stamp).
    resends_in_flight: HashSet<Target>,
    retry_at: HashMap<Target, (Instant, Duration)>,
    last_sent: HashMap<Target, Instant>,
}

impl Memory {
    /// The in-flight set of needed work or of resends.
    fn in_flight(&mut self, needed: bool) -> &mut HashSet<Target> {
        if needed {
            &mut self.needed_in_flight
        } else {
            &mut self.resends_in_flight
        }
    }
}

/// Runs the synchronizer until `shutdown` flips.
pub async fn run(
    api: Arc<KmsApi>,
    raft: kmsim_store::Raft,
    link: Arc<SyncLink>,
    wake: Arc<Notify>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _running = link.task_started();
    let settings = link.settings;
    let region = api.scope.region.clone();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Outcome>();
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let anti_entropy = Arc::new(Semaphore::new(ANTI_ENTROPY_IN_FLIGHT));
    let mut memory = Memory::default();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PASS) => {}
            _ = wake.notified() => {}
            Some(o) = done_rx.recv() => finish(&mut memory, o, &settings),
            _ = shutdown.changed() => return,
        }
        while let Ok(o) = done_rx.try_recv() {
            finish(&mut memory, o, &settings);
        }
        if raft.metrics().borrow().state != ServerState::Leader {
            memory = Memory::default();
            continue;
        }
        // Paused (a chaos fault): the work stays in the state; the resume wakes the task.
        if link.paused() {
            continue;
        }
        let now = Instant::now();
        // A state that cannot be read offers no work (the failure is logged where it happens).
        let now_ms = api.clock.now_ms();
        let mut jobs = api.read(|s| plan(s, &region, now_ms)).unwrap_or_default();
        jobs.extend(iam_jobs(&api, &link));
        // Needed work first (a stable sort keeps the state's order within each kind).
        jobs.sort_by_key(|(_, needed)| !needed);
        for (target, needed) in jobs {
            if memory.needed_in_flight.contains(&target)
                || (!needed && memory.resends_in_flight.contains(&target))
            {
                continue;
            }
            if memory
                .retry_at
                .get(&target)
                .is_some_and(|(at, _)| *at > now)
            {
                continue;
            }
            let stale = memory
                .last_sent
                .get(&target)
                .is_none_or(|t| now.duration_since(*t) >= settings.anti_entropy);
            if !needed && !stale {
                continue;
            }
            let pool = if needed { &permits } else { &anti_entropy };
            let Ok(permit) = pool.clone().try_acquire_owned() else {
                if needed {
                    continue;
                }
                break;
            };
            memory.in_flight(needed).insert(target.clone());
            memory.last_sent.insert(target.clone(), now);
            let (api, link, done) = (api.clone(), link.clone(), done_tx.clone());
            tokio::spawn(async move {
                let ok = match deliver(&api, &link, &target).await {
                    Ok(()) => true,
                    Err(why) => {
                        tracing::debug!(?target, why, "synchronization not delivered, will retry");
                        false
                    }
                };
                let _ = done.send(Outcome { target, needed, ok });
                drop(permit);
            });
        }
    }
}

fn finish(memory: &mut Memory, o: Outcome, settings: &SyncSettings) {
    memory.in_flight(o.needed).remove(&o.target);
    if o.ok {
        memory.retry_at.remove(&o.target);
    } else {
        let backoff = memory
            .retry_at
            .get(&o.target)
            .map(|(_, b)| (*b * 2).min(settings.retry_max))
            .unwrap_or(settings.retry_min);
        // Jittered, so the targets that failed together do not all retry together.
        memory
            .retry_at
            .insert(o.target, (Instant::now() + jittered(backoff), backoff));
    }
}

/// The work the replicated state asks for: deliveries and promotions, each with whether it
/// is needed now or only due for anti-entropy.
fn plan(s: &KmsState, region: &Region, now_ms: i64) -> Vec<(Target, bool)> {
    let mut jobs = key_jobs(s, region);
    for n in s.outbox() {
        jobs.push((Target::Notice(n.seq), true));
    }
    // Replicas left `Creating`: asked about at the anti-entropy pace (not needed work).
    for k in s.sync_keys() {
        let Some(m) = k.shared.mrk.as_ref() else {
            continue;
        };
        if m.primary != *region
            && k.regional.state == KeyState::Creating
            && now_ms.saturating_sub(k.regional.creation_ms) >= ORPHAN_GRACE_MS
        {
            jobs.push((Target::Creating(k.key_id.clone(), m.primary.clone()), false));
        }
    }
    jobs
}

/// The IAM home Region's deliveries of its IAM document: to every other Region, needed when
/// that Region has not answered with the version held here (the leader's memory, so a new
/// leader sends once more), else due at the anti-entropy pace. None before any run-time
/// change (version 0 is every Region's topology).
fn iam_jobs(api: &KmsApi, link: &SyncLink) -> Vec<(Target, bool)> {
    if api.scope.region.as_str() != api.iam.home_region() {
        return Vec::new();
    }
    let version = api.read(|s| s.iam_version()).unwrap_or(0);
    if version == 0 {
        return Vec::new();
    }
    let acked = link.iam_acked.lock().expect("invariant: lock not poisoned");
    link.id
        .peers
        .keys()
        .filter_map(|r| Region::parse(r).ok())
        .map(|r| {
            let behind = acked.get(r.as_str()).is_none_or(|a| *a < version);
            (Target::Iam(r), behind)
        })
        .collect()
}

/// Sends the IAM document this Region holds to `dest` and remembers the version it answers.
async fn deliver_iam(api: &KmsApi, link: &SyncLink, dest: &Region) -> Result<(), String> {
    let Some(held) = api.read(|s| s.iam().cloned()).map_err(|e| e.to_string())? else {
        return Ok(());
    };
    let message = SyncMessage::Iam {
        version: held.version,
        document: Box::new(held.document),
    };
    let reply = link
        .send_as(
            &api.entropy,
            dest,
            IAM_ENVELOPE_ID,
            held.version,
            &message,
            &Bundle::default(),
        )
        .await?;
    match reply {
        SyncReply::Applied { version, .. } => {
            let mut acked = link.iam_acked.lock().expect("invariant: lock not poisoned");
            let slot = acked.entry(dest.to_string()).or_insert(0);
            *slot = (*slot).max(version);
            Ok(())
        }
        SyncReply::Refused { code, message } => {
            Err(format!("{dest} refused IAM: {code}: {message}"))
        }
        other => Err(format!("unexpected answer {other:?}")),
    }
}

/// The part of [`plan`] that the keys ask for (every job but the queued notices).
fn key_jobs(s: &KmsState, region: &Region) -> Vec<(Target, bool)> {
    let mut jobs = Vec::new();
    for k in s.sync_keys() {
        let Some(m) = k.shared.mrk.as_ref() else {
            continue;
        };
        if m.primary == *region {
            for r in &m.replicas {
                let behind = k.regional.sync.acked.get(r).is_none_or(|a| *a < m.stamp());
                jobs.push((Target::Key(k.key_id.clone(), r.clone(), false), behind));
            }
            if let Some(v) = rotation_ready(&k, region) {
                jobs.push((Target::Promote(k.key_id.clone(), v), true));
            }
        }
        if let Some(h) = &k.regional.sync.handover {
            jobs.push((Target::Key(k.key_id.clone(), h.to.clone(), true), true));
        }
    }
    jobs
}

/// Deliveries the state says are due now to each other Region (the needed work of [`plan`]
/// that goes to a Region: replicas behind, hand-overs, queued notices; anti-entropy resends
/// and rotation promotions are not deliveries due). Counted on any node, from its applied
/// state; the leader is the one that delivers them.
pub fn pending_by_destination(s: &KmsState, region: &Region) -> HashMap<Region, u64> {
    let mut pending = HashMap::new();
    let keys = key_jobs(s, region)
        .into_iter()
        .filter_map(|(target, needed)| match target {
            Target::Key(_, dest, _) if needed => Some(dest),
            _ => None,
        });
    // The queued notices (the rest of the plan), with their destination.
    let notices = s.outbox().into_iter().map(|n| n.to);
    for destination in keys.chain(notices) {
        *pending.entry(destination).or_insert(0) += 1;
    }
    pending
}

/// Builds the message for `target` from the state as it is now, delivers it, and records the
/// answer through Raft.
async fn deliver(api: &KmsApi, link: &SyncLink, target: &Target) -> Result<(), String> {
    match target {
        Target::Key(key_id, dest, promote) => deliver_key(api, link, key_id, dest, *promote)
            .await
            .map(|_| ()),
        Target::Iam(dest) => deliver_iam(api, link, dest).await,
        Target::Promote(key_id, version) => {
            let cmd = Command::PromoteRotation {
                key_id: key_id.clone(),
                version: *version,
                now_ms: api.clock.now_ms(),
            };
            api.proposer
                .propose(&cmd)
                .await
                .map(|_| ())
                .map_err(|e| format!("rotation promotion not committed: {e}"))
        }
        Target::Creating(key_id, primary) => {
            let message = SyncMessage::Notice {
                key_id: key_id.clone(),
                from: api.scope.region.clone(),
                kind: NoticeKind::ReplicaCreating,
            };
            let reply = link
                .send(
                    &api.entropy,
                    primary,
                    key_id,
                    0,
                    &message,
                    &Bundle::default(),
                )
                .await?;
            if reply != SyncReply::UnknownKey {
                return Ok(());
            }
            // The primary does not list this Region: the ReplicateKey that created the record
            // never committed there. If it still does later, its synchronization creates the
            // replica again (`ApplySync` of a set that lists this Region).
            let cmd = Command::AbandonReplica {
                key_id: key_id.clone(),
                source: primary.clone(),
                now_ms: api.clock.now_ms(),
            };
            api.proposer
                .propose(&cmd)
                .await
                .map_err(|e| format!("abandoning the replica not committed: {e}"))?;
            tracing::info!(key_id = %key_id, primary = %primary, "removed a replica left Creating: its primary never committed the ReplicateKey");
            Ok(())
        }
        Target::Notice(seq) => {
            let Some(n): Option<Notice> =
                api.read(|s| s.notice(*seq)).map_err(|e| e.to_string())?
            else {
                return Ok(());
            };
            let message = SyncMessage::Notice {
                key_id: n.key_id.clone(),
                from: api.scope.region.clone(),
                kind: n.kind.clone(),
            };
            let reply = link
                .send(
                    &api.entropy,
                    &n.to,
                    &n.key_id,
                    0,
                    &message,
                    &Bundle::default(),
                )
                .await?;
            let cmd = match reply {
                SyncReply::NotPrimary { primary: Some(p) }
                    if p != n.to && p != api.scope.region =>
                {
                    Command::NoticeRetarget { seq: *seq, to: p }
                }
                _ => Command::NoticeDone { seq: *seq },
            };
            api.proposer
                .propose(&cmd)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    }
}

/// Delivers `key_id`'s state as this Region holds it now to `dest` (a promotion when
/// `promote`) and records the answer through this Region's Raft; returns the answer (`None`
/// when this Region has nothing to send). The synchronizer task calls it for its targets;
/// UpdatePrimaryRegion calls it once before it answers.
pub(crate) async fn deliver_key(
    api: &KmsApi,
    link: &SyncLink,
    key_id: &KeyId,
    dest: &Region,
    promote: bool,
) -> Result<Option<SyncReply>, String> {
    let Some(key) = api.read(|s| s.key(key_id)).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let Some(m) = key.shared.mrk.clone() else {
        return Ok(None);
    };
    let mut secret = Bundle::default();
    if key.shared.origin != Origin::External {
        for version in key.regional.materials.keys() {
            let raw = api
                .materials
                .unwrap_raw(&key, *version)
                .map_err(|e| e.to_string())?;
            secret.0.push((*version, raw.expose().to_vec()));
        }
    }
    let origin = api.proposer.origins().get(key_id, m.stamp());
    // The change's trace, when it came from a traced request this node committed.
    let trace = origin
        .as_ref()
        .and_then(|o| o.traceparent.as_deref())
        .and_then(|t| TraceContext::parse(t.as_bytes()));
    let key_state = &key;
    let send = async {
        // Inside the `sync-send` span (when traced), the receiver's parent is this hop.
        let origin = origin.map(|o| ChangeOrigin {
            traceparent: trace::current().map(|c| c.header()).or(o.traceparent),
            ..o
        });
        let message = SyncMessage::Key {
            key_id: key_id.clone(),
            shared: Box::new(key_state.shared.clone()),
            create: key_state.regional.sync.creating.get(dest).cloned(),
            promote,
            origin,
        };
        link.send(
            &api.entropy,
            dest,
            key_id,
            pack(m.stamp()),
            &message,
            &secret,
        )
        .await
    };
    let reply = match trace {
        Some(t) => {
            let detail = format!("{key_id} to {dest}");
            trace::scope(Some(t), "sync-send", &detail, send).await
        }
        None => send.await,
    };
    // The plaintext copies of the material are wiped (and were never logged) here.
    drop(secret);
    let reply = reply?;
    let cmd = match (promote, reply.clone()) {
        (false, SyncReply::Applied { epoch, version })
            if acked(api, key_id, dest).is_some_and(|a| a >= (epoch, version)) =>
        {
            // Anti-entropy found nothing new: the acknowledgement is already recorded.
            return Ok(Some(reply));
        }
        (false, SyncReply::Applied { epoch, version }) => Command::SyncAcked {
            key_id: key_id.clone(),
            region: dest.clone(),
            stamp: (epoch, version),
        },
        (false, SyncReply::UnknownKey) => Command::ReplicaGone {
            key_id: key_id.clone(),
            region: dest.clone(),
            now_ms: api.clock.now_ms(),
        },
        (true, SyncReply::Applied { .. }) => Command::EndHandover {
            key_id: key_id.clone(),
            epoch: m.epoch,
            promoted: true,
        },
        (true, SyncReply::PromotionRefused { reason }) => {
            tracing::warn!(key_id = %key_id, peer = %dest, reason, "primary hand-over refused");
            Command::EndHandover {
                key_id: key_id.clone(),
                epoch: m.epoch,
                promoted: false,
            }
        }
        (true, SyncReply::UnknownKey) => Command::EndHandover {
            key_id: key_id.clone(),
            epoch: m.epoch,
            promoted: false,
        },
        (_, other) => return Err(format!("unexpected answer {other:?}")),
    };
    api.proposer
        .propose(&cmd)
        .await
        .map(|_| Some(reply))
        .map_err(|e| e.to_string())
}

/// What this Region has recorded as `dest`'s acknowledged stamp of `key_id`.
fn acked(api: &KmsApi, key_id: &KeyId, dest: &Region) -> Option<(u64, u64)> {
    api.read(|s| {
        s.key(key_id)
            .and_then(|k| k.regional.sync.acked.get(dest).copied())
    })
    .ok()
    .flatten()
}
