//! The relay: the delivering side of the local event table.
//!
//! Appends write each event and its outbox row in one transaction. The relay reads
//! the pending rows in commit order, hands them to a [`Sink`], and deletes a row only
//! after the sink acknowledged it: delivery is *at least once*, with the event id as
//! the dedupe key downstream.
//!
//! - **Order.** Rows are delivered in the order they were appended (commit order on
//!   SQLite, position order on PostgreSQL), and always in version order within a
//!   stream. When a row fails, later rows of the same stream wait (so per-stream order
//!   holds) while every other stream keeps flowing.
//! - **Retries.** A failed row is retried with exponential backoff and jitter; after
//!   [`RelayOptions::max_attempts`] it is *parked* with its last error. A parked row
//!   halts only its own stream, shows in [`OutboxStatus`], and stays until it is
//!   re-queued or explicitly skipped. Rows are never dropped silently.
//! - **Several instances.** A relay delivers only while it holds the outbox lease, so
//!   two relays on one database do not deliver the same rows side by side; when a
//!   relay dies, another takes over once the lease expires. The lease is renewed
//!   before every delivery once half of it is gone, and every delivery is bounded by
//!   the delivery timeout, so with a lease of at least twice that timeout a live
//!   relay's delivery always ends inside its lease.
//! - **Fencing.** A process frozen mid-delivery (stopped, swapped out, a VM paused)
//!   for longer than the lease wakes up after another relay took over. The lease
//!   therefore has a generation, a [`LeaseGeneration`] that grows every time the lease
//!   changes hands, and the relay's acknowledgements and failure records carry the
//!   generation it holds. The outbox checks it in the same atomic step as the write
//!   and refuses a stale one with [`StoreError::StaleLease`]: the stale relay logs
//!   it, stops delivering and goes back to waiting for the lease, and its batch stays
//!   pending for the current holder, which delivers it again. A stale relay can thus
//!   never mark rows delivered, re-park them or reset their retries behind the
//!   holder's back. Every delivery carries the generation too (the
//!   `Es-Lease-Generation` header on JetStream, the `lease_generation` field of the
//!   JSON-lines sink and of [`Relayed`](crate::sink::Relayed)), so a destination that
//!   keeps the highest generation it has seen can refuse a stale relay's deliveries
//!   as well.
//!
//! What fencing cannot prevent, and why it is harmless:
//!
//! - **Late duplicates.** A stale relay finds out that it is stale only when it
//!   acknowledges, after its sink answered. A publish it had in flight when it froze
//!   (or that its sink makes right after it wakes) may still reach the destination
//!   after the current holder delivered the same events. These are duplicates of
//!   events already delivered, never new ones: JetStream drops them by `Nats-Msg-Id`
//!   within its duplicate window, and consumers deduplicate by event id beyond it
//!   (as after any crash: delivery is at least once).
//! - **Per-stream order still holds** once duplicates are dropped (keeping each
//!   event's first arrival). Every relay, stale or not, starts a stream's part of a
//!   batch at the stream's oldest row still in the outbox, and a row leaves the
//!   outbox only after the sink confirmed it; within a batch, the built-in sinks
//!   send a stream's next event only once the previous one is confirmed (the
//!   JetStream sink chains each stream, the JSON-lines and channel sinks write in
//!   order). So whenever any relay sends version `n` of a stream, versions below `n`
//!   have already reached the destination: the first arrival of every event comes
//!   after the first arrivals of all earlier events of its stream, and whatever a
//!   stale relay adds later is a repeat. Consumers need no version check for order;
//!   `Es-Stream-Version` is there for those who want one.
//! - **Overlapping deliveries.** For a moment a stale relay and the current holder
//!   may both be delivering the same rows. A sink whose destination cannot absorb a
//!   repeat must deduplicate by event id, or fence on the generation.
//! - **Wake-ups.** Appends through the same store wake the relay at once; appends from
//!   other processes are found by polling.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tracing::Instrument;
use uuid::Uuid;

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::sink::{Sink, SinkError};
use crate::store::{StoreError, StoredEvent};

/// How a relay works.
#[derive(Clone)]
pub struct RelayOptions {
    /// How many rows one delivery carries at most.
    pub batch_size: usize,
    /// How often the relay looks for rows appended by other processes.
    pub poll_interval: Duration,
    /// Attempts before a row is parked.
    pub max_attempts: u32,
    /// The first retry delay; it doubles with every attempt, with jitter.
    pub backoff_base: Duration,
    /// The longest retry delay.
    pub backoff_max: Duration,
    /// How long one delivery may take before it counts as failed.
    pub delivery_timeout: Duration,
    /// How long the outbox lease lasts without renewal; a dead relay's lease passes
    /// to another relay after this. Must exceed twice the delivery timeout.
    pub lease: Duration,
    /// The name this relay holds the lease under (unique per instance).
    pub owner: String,
    /// The clock retry times are taken from and compared with (default
    /// [`SystemClock`]; a [`ManualClock`](crate::ManualClock) in tests). The outbox
    /// lease follows the database's clock (or the machine's), never this one: it
    /// fences relays in other processes.
    pub clock: Arc<dyn Clock>,
}

impl fmt::Debug for RelayOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayOptions")
            .field("batch_size", &self.batch_size)
            .field("poll_interval", &self.poll_interval)
            .field("max_attempts", &self.max_attempts)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_max", &self.backoff_max)
            .field("delivery_timeout", &self.delivery_timeout)
            .field("lease", &self.lease)
            .field("owner", &self.owner)
            .field("clock", &self.clock.now())
            .finish()
    }
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            batch_size: 256,
            poll_interval: Duration::from_millis(500),
            max_attempts: 8,
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_mins(1),
            delivery_timeout: Duration::from_secs(10),
            lease: Duration::from_secs(30),
            owner: format!("relay-{}-{}", std::process::id(), Uuid::now_v7()),
            clock: Arc::new(SystemClock),
        }
    }
}

/// The fencing token of the outbox lease: a number that grows every time the lease
/// changes hands (taken by another relay, or taken again after it expired or was
/// released), and stays the same while its holder renews it.
///
/// The relay passes the generation it holds to every acknowledgement, and the outbox
/// refuses one whose generation is no longer current with
/// [`StoreError::StaleLease`]. Each delivery carries it too (see [`Sink::deliver`]),
/// so a sink can refuse a holder older than one it has already seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct LeaseGeneration(u64);

impl LeaseGeneration {
    /// The generation numbered `generation`, as an outbox stores it.
    #[must_use]
    pub const fn new(generation: u64) -> Self {
        Self(generation)
    }

    /// The number.
    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for LeaseGeneration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A row waiting in the outbox.
#[derive(Debug)]
pub struct Pending {
    /// The row's global position.
    pub position: u64,
    /// Failed deliveries so far.
    pub attempts: u32,
    /// The event, or why the stored row cannot even be read (then it is parked).
    pub event: Result<StoredEvent, Unreadable>,
}

/// An outbox row whose event cannot be read.
#[derive(Debug)]
pub struct Unreadable {
    /// The stream the row belongs to, from the outbox row itself.
    pub stream_type: String,
    /// The stream id.
    pub stream_id: String,
    /// Why the event cannot be read.
    pub error: String,
}

/// The row of a readable event, as the relay tracks it.
struct Row {
    position: u64,
    attempts: u32,
}

/// A parked row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    /// The row's global position (what [`Outbox::requeue`] and [`Outbox::skip`] take).
    pub position: u64,
    /// The stream it halts.
    pub stream_type: String,
    /// The stream id.
    pub stream_id: String,
    /// Failed deliveries.
    pub attempts: u32,
    /// The last error.
    pub last_error: String,
}

/// The state of the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutboxStatus {
    /// Rows not yet delivered (parked ones included).
    pub pending: u64,
    /// Rows waiting for a retry.
    pub retrying: u64,
    /// Parked rows, oldest first.
    pub parked: Vec<Parked>,
    /// When the oldest undelivered event was recorded: the relay's lag.
    pub oldest_pending: Option<Timestamp>,
}

/// The storage side of a relay; each backend implements it.
///
/// The writes a relay makes while delivering ([`acknowledge`](Self::acknowledge) and
/// [`record_failure`](Self::record_failure)) carry the [`LeaseGeneration`] the relay
/// holds, and are refused with [`StoreError::StaleLease`], writing nothing, when the
/// lease has changed hands since: the check and the write are one atomic step.
pub trait Outbox: Send + Sync {
    /// Takes or renews the lease for `owner` until `now + lease`, and returns its
    /// generation; `None` while another owner holds an unexpired lease. A renewal of a
    /// lease `owner` still holds keeps the generation; taking it from another owner,
    /// or again after it expired or was released, increases it.
    fn acquire_lease(
        &self,
        owner: &str,
        lease: Duration,
    ) -> impl Future<Output = Result<Option<LeaseGeneration>, StoreError>> + Send;
    /// Gives the lease up (graceful shutdown), so another relay can start at once. The
    /// generation is kept: the next holder's is higher.
    fn release_lease(&self, owner: &str) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Up to `limit` deliverable rows in commit order: not parked, not waiting for a
    /// retry at a time after `now` (the relay's clock), and with no earlier row of their
    /// stream parked or waiting.
    fn fetch(&self, limit: usize, now: Timestamp) -> impl Future<Output = Result<Vec<Pending>, StoreError>> + Send;
    /// Marks rows delivered, if `generation` is still the lease's current one;
    /// otherwise [`StoreError::StaleLease`] and nothing changes.
    fn acknowledge(
        &self,
        positions: Vec<u64>,
        generation: LeaseGeneration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Records a failed delivery: retry at `retry_at`, or park when it is `None`; if
    /// `generation` is no longer the lease's current one, [`StoreError::StaleLease`]
    /// and nothing changes.
    fn record_failure(
        &self,
        position: u64,
        attempts: u32,
        error: String,
        retry_at: Option<Timestamp>,
        generation: LeaseGeneration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Puts a parked row back in line, with its attempts reset.
    fn requeue(&self, position: u64) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Gives up on a parked row for good, keeping a record of why; its stream flows on.
    fn skip(&self, position: u64, reason: String) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Counts and parked rows.
    fn status(&self) -> impl Future<Output = Result<OutboxStatus, StoreError>> + Send;
    /// Changes whenever this process appends; lets the relay wake at once.
    fn appended(&self) -> watch::Receiver<u64>;
}

/// What one pass of the relay did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RelayReport {
    /// Rows delivered and acknowledged.
    pub delivered: u64,
    /// Failed deliveries (each will be retried or was parked).
    pub failed: u64,
    /// Rows parked.
    pub parked: u64,
}

/// Delivers the outbox of a store to a sink. See the [module docs](self).
#[derive(Debug)]
pub struct Relay<O, S> {
    outbox: O,
    sink: S,
    options: RelayOptions,
    /// The lease this relay holds: until when (on this machine's clock), and its
    /// generation.
    lease: Option<(tokio::time::Instant, LeaseGeneration)>,
}

impl<O: Outbox, S: Sink> Relay<O, S> {
    /// A relay from `outbox` to `sink`. Durations are capped at one day, which keeps
    /// every deadline computable.
    pub fn new(outbox: O, sink: S, mut options: RelayOptions) -> Self {
        const DAY: Duration = Duration::from_hours(24);
        for duration in [
            &mut options.poll_interval,
            &mut options.backoff_base,
            &mut options.backoff_max,
            &mut options.delivery_timeout,
            &mut options.lease,
        ] {
            *duration = (*duration).min(DAY);
        }
        options.max_attempts = options.max_attempts.max(1);
        if options.lease < options.delivery_timeout * 2 {
            tracing::warn!(
                lease = ?options.lease,
                delivery_timeout = ?options.delivery_timeout,
                "the relay lease is shorter than twice the delivery timeout: a slow delivery could outlive the lease and overlap with another relay's"
            );
        }
        Self { outbox, sink, options, lease: None }
    }

    /// The sink.
    pub fn sink(&self) -> &S {
        &self.sink
    }

    /// The outbox.
    pub fn outbox(&self) -> &O {
        &self.outbox
    }

    /// The generation of the lease this relay believes it holds, if any: what its
    /// deliveries carry and its acknowledgements are checked against.
    #[must_use]
    pub fn lease_generation(&self) -> Option<LeaseGeneration> {
        self.lease.map(|(_, generation)| generation)
    }

    /// Runs until `shutdown` resolves, then finishes the delivery in progress, gives
    /// the lease up and returns what it did. Store errors are logged and retried
    /// after the poll interval: a relay outlives a busy or briefly failing database.
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) -> RelayReport {
        let mut total = RelayReport::default();
        let mut appended = self.outbox.appended();
        tokio::pin!(shutdown);
        loop {
            let pass = self.run_once().await;
            let idle = match pass {
                Ok(report) => {
                    total.delivered += report.delivered;
                    total.failed += report.failed;
                    total.parked += report.parked;
                    report.delivered == 0 && report.failed == 0
                }
                // Logged by `run_once` already, with what happens next.
                Err(StoreError::StaleLease { .. }) => true,
                Err(error) => {
                    tracing::warn!(%error, "relay pass failed; retrying after the poll interval");
                    true
                }
            };
            let wait = if idle { self.options.poll_interval } else { Duration::ZERO };
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                _ = appended.changed(), if idle => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        if let Err(error) = self.outbox.release_lease(&self.options.owner).await {
            tracing::warn!(%error, "relay could not release its lease; it expires by itself");
        }
        total
    }

    /// Delivers what is deliverable now, one batch, and returns what it did. Does
    /// nothing (and reports nothing) while another relay holds the lease.
    ///
    /// When the outbox refuses an acknowledgement because the lease changed hands
    /// during the pass, this returns [`StoreError::StaleLease`]: the relay has
    /// stopped delivering, forgotten its lease, and the next pass tries to acquire it
    /// again. The rows of the refused batch stay pending for the current holder.
    pub async fn run_once(&mut self) -> Result<RelayReport, StoreError> {
        let span = tracing::debug_span!("relay", owner = %self.options.owner);
        let outcome = self.pass().instrument(span).await;
        if let Err(StoreError::StaleLease { generation }) = &outcome {
            tracing::error!(
                owner = %self.options.owner,
                %generation,
                "the outbox refused this relay's acknowledgement: its lease passed to another relay during the delivery \
                 (was the process stopped or paused past the lease?); it stops delivering and waits for the lease, \
                 and the current holder delivers the batch again"
            );
            self.lease = None;
        }
        outcome
    }

    async fn pass(&mut self) -> Result<RelayReport, StoreError> {
        let Some(generation) = self.hold_lease().await? else {
            return Ok(RelayReport::default());
        };
        let rows = self.outbox.fetch(self.options.batch_size, self.options.clock.now()).await?;
        let mut report = RelayReport::default();
        if rows.is_empty() {
            return Ok(report);
        }
        // In commit order: an unreadable row is parked at once, and the rows after it
        // in its stream wait for it like behind any parked row.
        let mut halted: Vec<(String, String)> = Vec::new();
        let mut tracked = Vec::with_capacity(rows.len());
        let mut batch = Vec::with_capacity(rows.len());
        for row in rows {
            match row.event {
                Ok(event) if !is_halted(&halted, &event) => {
                    tracked.push(Row { position: row.position, attempts: row.attempts });
                    batch.push(event);
                }
                Ok(_) => {}
                Err(Unreadable { stream_type, stream_id, error }) => {
                    if halted.iter().any(|(t, i)| *t == stream_type && *i == stream_id) {
                        continue;
                    }
                    tracing::error!(position = row.position, %stream_type, %stream_id, %error, "parking unreadable outbox row");
                    self.outbox
                        .record_failure(row.position, row.attempts.saturating_add(1), error, None, generation)
                        .await?;
                    report.failed += 1;
                    report.parked += 1;
                    halted.push((stream_type, stream_id));
                }
            }
        }
        if batch.is_empty() {
            return Ok(report);
        }
        match tokio::time::timeout(self.options.delivery_timeout, self.sink.deliver(&batch, generation)).await {
            Ok(Ok(())) => {
                self.outbox.acknowledge(tracked.iter().map(|row| row.position).collect(), generation).await?;
                report.delivered += batch.len() as u64;
            }
            // Find out which row fails: deliver one at a time, in order.
            _ if batch.len() > 1 => self.deliver_one_by_one(&tracked, &batch, generation, &mut report).await?,
            outcome => {
                let error = match outcome {
                    Ok(Err(error)) => error,
                    _ => SinkError::transient(format!("delivery timed out after {:?}", self.options.delivery_timeout)),
                };
                for (row, event) in tracked.iter().zip(&batch) {
                    self.fail(row, event, &error, generation, &mut report).await?;
                }
            }
        }
        Ok(report)
    }

    async fn deliver_one_by_one(
        &mut self,
        rows: &[Row],
        events: &[StoredEvent],
        generation: LeaseGeneration,
        report: &mut RelayReport,
    ) -> Result<(), StoreError> {
        let mut halted: Vec<(String, String)> = Vec::new();
        let mut delivered = Vec::new();
        for (row, event) in rows.iter().zip(events) {
            if is_halted(&halted, event) {
                continue;
            }
            // One at a time, a pass can outlast the lease: keep it, or stop here and
            // leave the rest to whichever relay holds it now (what was delivered is then
            // acknowledged under the old generation, which the outbox refuses).
            if self.hold_lease().await? != Some(generation) {
                break;
            }
            let outcome = tokio::time::timeout(
                self.options.delivery_timeout,
                self.sink.deliver(std::slice::from_ref(event), generation),
            )
            .await;
            let error = match outcome {
                Ok(Ok(())) => {
                    delivered.push(row.position);
                    report.delivered += 1;
                    continue;
                }
                Ok(Err(error)) => error,
                Err(_) => SinkError::transient(format!("delivery timed out after {:?}", self.options.delivery_timeout)),
            };
            self.fail(row, event, &error, generation, report).await?;
            halted.push((event.stream_type.clone(), event.stream_id.clone()));
        }
        self.outbox.acknowledge(delivered, generation).await
    }

    async fn fail(
        &self,
        row: &Row,
        event: &StoredEvent,
        error: &SinkError,
        generation: LeaseGeneration,
        report: &mut RelayReport,
    ) -> Result<(), StoreError> {
        let attempts = row.attempts.saturating_add(1);
        report.failed += 1;
        let (stream_type, stream_id) = (&event.stream_type, &event.stream_id);
        let retry_at = if error.is_permanent() || attempts >= self.options.max_attempts {
            report.parked += 1;
            tracing::error!(position = row.position, %stream_type, %stream_id, attempts, %error, "parking outbox row; its stream waits until it is re-queued or skipped");
            None
        } else {
            let delay = backoff(&self.options, row.position, attempts);
            tracing::warn!(position = row.position, %stream_type, %stream_id, attempts, ?delay, %error, "delivery failed; retrying later");
            Some(self.options.clock.now().saturating_add(delay))
        };
        self.outbox.record_failure(row.position, attempts, error.to_string(), retry_at, generation).await
    }

    /// Gives the outbox lease up, so that another relay can start at once instead of
    /// waiting for it to expire. [`run`](Self::run) does this when it stops; call it
    /// when driving the relay with [`run_once`](Self::run_once).
    pub async fn release(&mut self) -> Result<(), StoreError> {
        self.lease = None;
        self.outbox.release_lease(&self.options.owner).await
    }

    /// The generation of the lease, taken or renewed if need be; `None` while
    /// another relay holds it.
    async fn hold_lease(&mut self) -> Result<Option<LeaseGeneration>, StoreError> {
        let now = tokio::time::Instant::now();
        // Renew when half the lease is gone, so a delivery never runs on a lease that
        // could expire under it.
        if let Some((until, generation)) = self.lease
            && until > now + self.options.lease / 2
        {
            return Ok(Some(generation));
        }
        let held = self.outbox.acquire_lease(&self.options.owner, self.options.lease).await?;
        if let Some(generation) = held
            && self.lease.is_some_and(|(_, previous)| previous != generation)
        {
            tracing::info!(owner = %self.options.owner, %generation, "the relay took the outbox lease again, under a new generation");
        }
        self.lease = held.map(|generation| (now + self.options.lease, generation));
        Ok(held)
    }
}

fn is_halted(halted: &[(String, String)], event: &StoredEvent) -> bool {
    halted.iter().any(|(t, i)| *t == event.stream_type && *i == event.stream_id)
}

/// Exponential backoff with "equal jitter": half the delay fixed, half spread by a
/// hash of the row and attempt, so that retries of many rows do not stampede.
fn backoff(options: &RelayOptions, position: u64, attempts: u32) -> Duration {
    let exponent = attempts.saturating_sub(1).min(30);
    let full = options.backoff_base.saturating_mul(1 << exponent).min(options.backoff_max);
    let mut x = position ^ (u64::from(attempts) << 32) ^ 0x9E37_79B9_7F4A_7C15;
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let fraction = (x % 1024) as u32;
    full / 2 + full / 2 * fraction / 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let options = RelayOptions {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            ..RelayOptions::default()
        };
        let first = backoff(&options, 7, 1);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
        let fifth = backoff(&options, 7, 5);
        assert!(fifth >= Duration::from_millis(800) && fifth <= Duration::from_millis(1600), "{fifth:?}");
        assert!(backoff(&options, 7, 40) <= Duration::from_secs(5));
        let spread: std::collections::HashSet<_> = (0..50).map(|p| backoff(&options, p, 3)).collect();
        assert!(spread.len() > 10, "no jitter: {spread:?}");
    }
}
