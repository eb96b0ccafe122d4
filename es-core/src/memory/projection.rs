//! Projections of the in-memory store, with the same runner as the database stores.

#![allow(
    clippy::result_large_err,
    reason = "a projection error names the event it stopped on; it is rare and returned once"
)]
#![allow(
    clippy::unused_async,
    reason = "the runner has the same async methods as the database stores' runners, so that code moves between stores unchanged"
)]

use std::future::Future;
use std::ops::Deref;
use std::time::Duration;

use super::{MemoryStore, MemoryTransaction};
use crate::projection::{
    Checkpoint, HandlerError, OnError, PositionDisplay, ProjectionError, ProjectionReport, Settings, WaitError,
};
use crate::store::{Cursor, StoreError, StoredEvent};

/// A read model fed from the global log of a [`MemoryStore`].
///
/// Each event is handled in a [`MemoryTransaction`] of its own, committed together
/// with the checkpoint; a handler's error discards what its transaction staged. A
/// hand-written projection usually keeps its read model in its own fields (read them
/// through [`ProjectionRunner::projection`]). A pass holds the store's lock: a handler
/// appends through `tx`, never through the store itself, which would wait for the
/// pass forever.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use es::memory::{Projection, ProjectionRunner};
/// use es::projection::HandlerError;
/// use es::{EventStore, ExpectedVersion, MemoryStore, MemoryTransaction, StoredEvent};
///
/// #[derive(Default)]
/// struct EventCount(u64);
///
/// impl Projection for EventCount {
///     fn name(&self) -> &str { "event_count" }
///     fn handle(&mut self, _tx: &mut MemoryTransaction<'_>, _event: &StoredEvent) -> Result<(), HandlerError> {
///         self.0 += 1;
///         Ok(())
///     }
///     fn reset(&mut self, _tx: &mut MemoryTransaction<'_>) -> Result<(), HandlerError> {
///         self.0 = 0;
///         Ok(())
///     }
/// }
///
/// let store = MemoryStore::new();
/// let mut runner = ProjectionRunner::new(store.clone(), EventCount::default());
/// assert_eq!(runner.catch_up().await?.applied, 0);
/// # let _ = ExpectedVersion::Any;
/// # Ok(()) }
/// ```
pub trait Projection: Send + 'static {
    /// A stable name: the checkpoint is stored under it.
    fn name(&self) -> &str;

    /// Prepares the read model; runs before the first pass.
    fn setup(&mut self, tx: &mut MemoryTransaction<'_>) -> Result<(), HandlerError> {
        let _ = tx;
        Ok(())
    }

    /// Applies one event to the read model.
    fn handle(&mut self, tx: &mut MemoryTransaction<'_>, event: &StoredEvent) -> Result<(), HandlerError>;

    /// Empties the read model, for a rebuild from the first event.
    fn reset(&mut self, tx: &mut MemoryTransaction<'_>) -> Result<(), HandlerError>;
}

/// Runs a [`Projection`] against a [`MemoryStore`]: the same methods as the runners of
/// the database stores.
#[derive(Debug)]
pub struct ProjectionRunner<P> {
    store: MemoryStore,
    projection: P,
    name: String,
    settings: Settings,
    ready: bool,
}

impl<P: Projection> ProjectionRunner<P> {
    /// A runner with the default policy ([`OnError::Stop`]) and batches of 256 events.
    pub fn new(store: MemoryStore, projection: P) -> Self {
        let name = projection.name().to_owned();
        Self { store, projection, name, settings: Settings::default(), ready: false }
    }

    /// What to do with an event that fails.
    #[must_use]
    pub fn on_error(mut self, policy: OnError) -> Self {
        self.settings.on_error = policy;
        self
    }

    /// How many events one pass applies at most.
    #[must_use]
    pub fn batch_size(mut self, events: usize) -> Self {
        self.settings.batch_size = events.max(1);
        self
    }

    /// How often [`run`](Self::run) looks for new events besides being woken by
    /// appends.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.settings.poll_interval = interval;
        self
    }

    /// The projection.
    #[must_use]
    pub fn projection(&self) -> impl Deref<Target = P> + '_ {
        &self.projection
    }

    /// The stored checkpoint.
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        Ok(self.store.lock().checkpoints.get(&self.name).copied())
    }

    /// Waits until this projection's checkpoint has reached `cursor` (typically
    /// [`Committed::cursor`](crate::Committed::cursor)), so that its read model
    /// includes the write; see [`MemoryStore::wait_for_projection`]. Another task must
    /// be running the projection meanwhile.
    pub async fn wait_for(&self, cursor: Cursor, timeout: Duration) -> Result<Checkpoint, WaitError> {
        self.store.wait_for_projection(&self.name, cursor, timeout).await
    }

    /// How many events of the global log the projection has still to see.
    pub async fn lag(&self) -> Result<u64, StoreError> {
        let inner = self.store.lock();
        let after = inner.checkpoints.get(&self.name).map_or(0, |c| c.cursor.position);
        Ok((inner.log.len() as u64).saturating_sub(after))
    }

    /// Empties the read model and deletes the checkpoint, together: the next pass
    /// starts from the first event.
    pub async fn rebuild(&mut self) -> Result<(), ProjectionError> {
        let mut inner = self.store.lock();
        let mut tx = MemoryTransaction::new(&inner);
        let unreadable = |reason: String| ProjectionError::Unreadable {
            projection: self.name.clone(),
            position: PositionDisplay(0),
            reason,
        };
        self.projection.setup(&mut tx).map_err(|error| unreadable(format!("setup failed: {error}")))?;
        self.projection.reset(&mut tx).map_err(|error| unreadable(format!("reset failed: {error}")))?;
        let staged = tx.into_staged();
        inner.commit(staged);
        inner.checkpoints.remove(&self.name);
        self.ready = true;
        Ok(())
    }

    /// Applies one batch after the checkpoint. Under [`OnError::Stop`], what came
    /// before a failing event is kept and the error is returned.
    pub async fn run_once(&mut self) -> Result<ProjectionReport, ProjectionError> {
        // The lock is held for the whole pass: no reader sees a view ahead of or
        // behind the checkpoint.
        let mut inner = self.store.lock();
        if !self.ready {
            let mut tx = MemoryTransaction::new(&inner);
            self.projection.setup(&mut tx).map_err(|error| ProjectionError::Unreadable {
                projection: self.name.clone(),
                position: PositionDisplay(0),
                reason: format!("setup failed: {error}"),
            })?;
            let staged = tx.into_staged();
            inner.commit(staged);
            self.ready = true;
        }
        let checkpoint = inner.checkpoints.get(&self.name).copied();
        let after = usize::try_from(checkpoint.map_or(0, |c| c.cursor.position)).unwrap_or(usize::MAX);
        let batch: Vec<StoredEvent> = inner.log.iter().skip(after).take(self.settings.batch_size).cloned().collect();
        let mut report = ProjectionReport { checkpoint, ..ProjectionReport::default() };
        let mut appended = false;
        let mut stop = None;
        for event in &batch {
            let mut tx = MemoryTransaction::new(&inner);
            match self.projection.handle(&mut tx, event) {
                Ok(()) => {
                    let staged = tx.into_staged();
                    appended |= inner.commit(staged);
                    report.applied += 1;
                }
                Err(error) => {
                    // The event's staged writes go with its transaction.
                    drop(tx);
                    let error = self.failed(event, error.to_string());
                    if self.settings.on_error == OnError::RecordAndSkip {
                        tracing::warn!(projection = %self.name, position = event.cursor.position, %error, "skipping event");
                        inner
                            .skipped
                            .insert(event.cursor.position, (format!("projection:{}", self.name), error.to_string()));
                        report.skipped += 1;
                    } else {
                        stop = Some(error);
                        break;
                    }
                }
            }
            let moved = Checkpoint { cursor: event.cursor, event_id: Some(event.event_id) };
            inner.checkpoints.insert(self.name.clone(), moved);
            report.checkpoint = Some(moved);
        }
        let events = inner.log.len();
        drop(inner);
        if appended {
            self.store.announce(events);
        }
        self.store.shared.checkpoints.send_modify(|passes| *passes = passes.wrapping_add(1));
        match stop {
            Some(error) => Err(error),
            None => Ok(report),
        }
    }

    /// Applies batches until the projection has seen every event.
    pub async fn catch_up(&mut self) -> Result<ProjectionReport, ProjectionError> {
        let mut total = ProjectionReport::default();
        loop {
            let report = self.run_once().await?;
            let idle = report.is_idle();
            total.absorb(report);
            if idle {
                return Ok(total);
            }
        }
    }

    /// Keeps the projection up to date until `shutdown` resolves; appends to the store
    /// (through any clone) wake it at once. Returns the first error under
    /// [`OnError::Stop`].
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) -> Result<ProjectionReport, ProjectionError> {
        let mut appended = self.store.shared.committed.subscribe();
        let mut total = ProjectionReport::default();
        tokio::pin!(shutdown);
        loop {
            // Marked seen before catching up, so that an append during the pass is not
            // missed.
            appended.borrow_and_update();
            total.absorb(self.catch_up().await?);
            tokio::select! {
                biased;
                () = &mut shutdown => return Ok(total),
                _ = appended.changed() => {}
                () = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }

    fn failed(&self, event: &StoredEvent, reason: String) -> ProjectionError {
        ProjectionError::Event {
            projection: self.name.clone(),
            position: PositionDisplay(event.cursor.position),
            stream_type: event.stream_type.clone(),
            stream_id: event.stream_id.clone(),
            version: event.stream_version,
            event_type: event.event_type.clone(),
            reason,
        }
    }
}

impl MemoryStore {
    /// Read-your-writes: waits until projection `name`'s checkpoint has reached
    /// `cursor` (typically [`Committed::cursor`](crate::Committed::cursor)), so that
    /// its read model includes the write, for up to `timeout`; woken by each pass of a
    /// runner on this store. See [`WaitError`] for what a timeout means.
    pub async fn wait_for_projection(
        &self,
        name: &str,
        cursor: Cursor,
        timeout: Duration,
    ) -> Result<Checkpoint, WaitError> {
        let moved = self.shared.checkpoints.subscribe();
        // Every pass is heard: the poll only bounds a wait whose wake-up raced it.
        crate::projection::wait_for_checkpoint(name, cursor, timeout, Duration::from_secs(1), moved, || async {
            Ok(self.lock().checkpoints.get(name).copied())
        })
        .await
    }
}
