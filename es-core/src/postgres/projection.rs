//! Projections into the same PostgreSQL database, exactly once, with any number of
//! runner instances.
//!
//! A pass locks the projection's checkpoint row (`FOR UPDATE`) in the transaction that
//! applies the events and moves the checkpoint, so runners of the same projection in
//! several processes take turns: each event's effects commit exactly once, together
//! with the checkpoint that says so. When a runner dies, its transaction rolls back
//! and the next one takes the lock.

#![allow(
    clippy::result_large_err,
    reason = "a projection error names the event it stopped on; it is rare and returned once"
)]

use std::collections::HashMap;
use std::future::Future;
use std::ops::Deref;
use std::time::Duration;

use sqlx::{AssertSqlSafe, PgConnection, Row};
use tracing::Instrument;

use super::{CHECKPOINT_MOVED, LogRow, PgStore, backend};
use crate::clock::now_micros;
use crate::projection::{
    Checkpoint, HandlerError, OnError, PositionDisplay, ProjectionError, ProjectionReport, Settings, WaitError,
};
use crate::sql::stored;
use crate::store::{Cursor, StoreError, StoredEvent};

/// A read model fed from the global log of a [`PgStore`].
///
/// The handlers run inside the transaction that also moves the checkpoint; write the
/// read model through `tx` only.
pub trait Projection: Send + 'static {
    /// A stable name: the checkpoint is stored under it.
    fn name(&self) -> &str;

    /// Creates the read model's tables if needed; runs before the first pass.
    fn setup(&mut self, tx: &mut PgConnection) -> impl Future<Output = Result<(), HandlerError>> + Send {
        let _ = tx;
        async { Ok(()) }
    }

    /// Applies one event to the read model.
    fn handle(
        &mut self,
        tx: &mut PgConnection,
        event: &StoredEvent,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Empties the read model, for a rebuild from the first event. The runner also
    /// calls it before the first event it applies without a checkpoint (so deleting
    /// the checkpoint, as `es projections reset` does, rebuilds the read model).
    fn reset(&mut self, tx: &mut PgConnection) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

/// Runs a [`Projection`] against a [`PgStore`].
#[derive(Debug)]
pub struct ProjectionRunner<P> {
    store: PgStore,
    projection: P,
    name: String,
    settings: Settings,
    ready: bool,
}

impl<P: Projection> ProjectionRunner<P> {
    /// A runner with the default policy ([`OnError::Stop`]) and batches of 256 events.
    pub fn new(store: PgStore, projection: P) -> Self {
        let name = projection.name().to_owned();
        Self { store, projection, name, settings: Settings::default(), ready: false }
    }

    /// What to do with an event that fails.
    #[must_use]
    pub fn on_error(mut self, policy: OnError) -> Self {
        self.settings.on_error = policy;
        self
    }

    /// How many events one transaction applies at most.
    #[must_use]
    pub fn batch_size(mut self, events: usize) -> Self {
        self.settings.batch_size = events.max(1);
        self
    }

    /// How often to look for new events when no notification arrives.
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

    /// How many events of the global log the projection has still to see (those
    /// committed after its checkpoint, in commit order).
    pub async fn lag(&self) -> Result<u64, StoreError> {
        let events = &self.store.sql.events;
        let checkpoints = &self.store.sql.checkpoints;
        let behind: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {events} e
             WHERE NOT EXISTS (
                 SELECT 1 FROM {checkpoints} c
                 WHERE c.projection = $1 AND (e.transaction_id, e.position) <= (c.transaction_id, c.position)
             )"
        )))
        .bind(&self.name)
        .fetch_one(self.store.pool())
        .await
        .map_err(backend)?;
        u64::try_from(behind).map_err(|_| StoreError::Corrupt {
            location: format!("projection {}", self.name),
            reason: format!("negative lag {behind}"),
        })
    }

    fn store_error(&self, source: StoreError) -> ProjectionError {
        ProjectionError::Store { projection: self.name.clone(), source }
    }

    /// The stored checkpoint.
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        self.store.read_checkpoint(&self.name).await
    }

    /// Waits until this projection's checkpoint has reached `cursor` (typically
    /// [`Committed::cursor`](crate::Committed::cursor)), so that its read model
    /// includes the write; see [`PgStore::wait_for_projection`]. Another task (or
    /// process) must be running the projection meanwhile.
    pub async fn wait_for(&self, cursor: Cursor, timeout: Duration) -> Result<Checkpoint, WaitError> {
        self.store.wait_for_projection(&self.name, cursor, timeout).await
    }

    /// Empties the read model and deletes the checkpoint, in one transaction.
    pub async fn rebuild(&mut self) -> Result<(), ProjectionError> {
        let mut tx = self.store.pool().begin().await.map_err(|e| self.store_error(backend(e)))?;
        // Take the checkpoint's lock first, as a pass does: a runner of this
        // projection in the middle of a pass finishes (and commits) before the read
        // model is emptied, so none of its writes survive the reset.
        self.lock_checkpoint(&mut tx).await?;
        let unreadable = |reason: String| ProjectionError::Unreadable {
            projection: self.name.clone(),
            position: PositionDisplay(0),
            reason,
        };
        self.projection.setup(&mut tx).await.map_err(|e| unreadable(format!("setup failed: {e}")))?;
        self.projection.reset(&mut tx).await.map_err(|e| unreadable(format!("reset failed: {e}")))?;
        sqlx::query(AssertSqlSafe(format!("DELETE FROM {} WHERE projection = $1", self.store.sql.checkpoints)))
            .bind(&self.name)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.store_error(backend(e)))?;
        tx.commit().await.map_err(|e| self.store_error(backend(e)))?;
        Ok(())
    }

    /// Applies one batch after the checkpoint, in one transaction. Under
    /// [`OnError::Stop`], what came before a failing event commits and the error is
    /// returned.
    pub async fn run_once(&mut self) -> Result<ProjectionReport, ProjectionError> {
        let span = tracing::debug_span!("projection", name = %self.name);
        self.pass().instrument(span).await
    }

    async fn pass(&mut self) -> Result<ProjectionReport, ProjectionError> {
        let sql = std::sync::Arc::clone(&self.store.sql);
        let mut tx = self.store.pool().begin().await.map_err(|e| self.store_error(backend(e)))?;
        let checkpoint = self.lock_checkpoint(&mut tx).await?;
        let start = if checkpoint.cursor.position == 0 { None } else { Some(checkpoint) };
        self.setup_once(&mut tx).await?;
        // Row by row: an unreadable row fails alone, and the policy decides.
        let rows = super::read_log(&sql, &mut tx, checkpoint.cursor, self.settings.batch_size)
            .await
            .map_err(|e| self.store_error(e))?;
        if start.is_none() && !rows.is_empty() {
            self.reset_read_model(&mut tx).await?;
        }
        let gaps = self.version_gaps(&mut tx, &rows).await?;
        // A savepoint per event only where the policy needs one: to undo a failing
        // handler's writes alone and go on. Under `Stop`, a failure rolls the whole
        // pass back and the events before it are applied again without it.
        let skip = self.settings.on_error == OnError::RecordAndSkip;
        let mut report = ProjectionReport { checkpoint: start, ..ProjectionReport::default() };
        for (index, (cursor, row)) in rows.iter().enumerate() {
            let outcome = match (row, gaps.get(&index)) {
                (Ok(event), Some(reason)) => Err(self.failed(event, reason.clone())),
                (Ok(event), None) => self.apply_one(&mut tx, event, skip).await,
                (Err(error), _) => Err(ProjectionError::Unreadable {
                    projection: self.name.clone(),
                    position: PositionDisplay(cursor.position),
                    reason: error.to_string(),
                }),
            };
            match outcome {
                Ok(()) => report.applied += 1,
                Err(error @ ProjectionError::Store { .. }) => return Err(error),
                Err(error) if skip => {
                    tracing::warn!(projection = %self.name, position = cursor.position, %error, "skipping event");
                    self.record_skipped(&mut tx, cursor.position, &error).await?;
                    report.skipped += 1;
                }
                Err(error) => {
                    drop(tx); // rolled back: the failing handler's writes with the rest
                    return self.apply_before_failure(start, &rows[..index], error).await;
                }
            }
            report.checkpoint = Some(Checkpoint { cursor: *cursor, event_id: row.as_ref().ok().map(|e| e.event_id) });
        }
        if let Some(new) = report.checkpoint.filter(|new| Some(*new) != start) {
            self.move_checkpoint(&mut tx, new).await?;
        }
        tx.commit().await.map_err(|e| self.store_error(backend(e)))?;
        self.ready = true;
        Ok(report)
    }

    /// Under [`OnError::Stop`], after a pass failed on an event: applies the events
    /// before it again in a new transaction and commits them with the checkpoint, so
    /// that what came before the failing event commits; returns the failure.
    async fn apply_before_failure(
        &mut self,
        start: Option<Checkpoint>,
        before: &[LogRow],
        failure: ProjectionError,
    ) -> Result<ProjectionReport, ProjectionError> {
        if before.is_empty() {
            return Err(failure);
        }
        let mut tx = self.store.pool().begin().await.map_err(|e| self.store_error(backend(e)))?;
        let checkpoint = self.lock_checkpoint(&mut tx).await?;
        if (checkpoint.cursor.position != 0 || start.is_some()) && Some(checkpoint) != start {
            // Another runner moved on meanwhile; it meets the same event.
            return Err(failure);
        }
        // The failed pass's setup (and reset) was rolled back with it.
        self.setup_once(&mut tx).await?;
        if start.is_none() {
            self.reset_read_model(&mut tx).await?;
        }
        let mut last = None;
        for (cursor, row) in before {
            let Ok(event) = row else { return Err(failure) };
            self.apply_one(&mut tx, event, false).await?;
            last = Some(Checkpoint { cursor: *cursor, event_id: Some(event.event_id) });
        }
        if let Some(new) = last {
            self.move_checkpoint(&mut tx, new).await?;
        }
        tx.commit().await.map_err(|e| self.store_error(backend(e)))?;
        self.ready = true;
        Err(failure)
    }

    /// Runs the projection's setup in `tx` until a pass with it has committed.
    /// Before the first event applied without a checkpoint: nothing is applied yet, so
    /// whatever the read model holds is left from before its checkpoint was deleted
    /// (`es projections reset`), and would otherwise see every event a second time.
    async fn reset_read_model(&mut self, tx: &mut PgConnection) -> Result<(), ProjectionError> {
        self.projection.reset(tx).await.map_err(|e| ProjectionError::Unreadable {
            projection: self.name.clone(),
            position: PositionDisplay(0),
            reason: format!("reset failed: {e}"),
        })
    }

    async fn setup_once(&mut self, tx: &mut PgConnection) -> Result<(), ProjectionError> {
        if self.ready {
            return Ok(());
        }
        self.projection.setup(tx).await.map_err(|e| ProjectionError::Unreadable {
            projection: self.name.clone(),
            position: PositionDisplay(0),
            reason: format!("setup failed: {e}"),
        })
    }

    /// Moves the checkpoint and notifies waiters (read-your-writes) on commit.
    async fn move_checkpoint(&self, tx: &mut PgConnection, new: Checkpoint) -> Result<(), ProjectionError> {
        sqlx::query(AssertSqlSafe(format!(
            "WITH moved AS (
                 UPDATE {} SET transaction_id = $2::text::xid8, position = $3, event_id = $4, updated_at = $5
                 WHERE projection = $1
             )
             SELECT pg_notify($6, '{CHECKPOINT_MOVED}')",
            self.store.sql.checkpoints
        )))
        .bind(&self.name)
        .bind(new.cursor.commit.to_string())
        .bind(i64::try_from(new.cursor.position).unwrap_or(i64::MAX))
        .bind(new.event_id)
        .bind(now_micros())
        .bind(&self.store.sql.channel)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.store_error(backend(e)))?;
        Ok(())
    }

    async fn record_skipped(
        &self,
        tx: &mut PgConnection,
        position: u64,
        error: &ProjectionError,
    ) -> Result<(), ProjectionError> {
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {} (position, consumer, reason, skipped_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (position) DO UPDATE SET consumer = excluded.consumer, reason = excluded.reason",
            self.store.sql.skipped
        )))
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(format!("projection:{}", self.name))
        .bind(error.to_string().replace('\0', "\u{FFFD}"))
        .bind(now_micros())
        .execute(&mut *tx)
        .await
        .map_err(|e| self.store_error(backend(e)))?;
        Ok(())
    }

    /// The events of a batch whose stream version does not follow the one before
    /// (a gap or a repeat written behind the library's back), by index, with the
    /// reason. One query for the whole batch: within the batch a stream's versions
    /// are checked against each other, and only the first event of each stream is
    /// checked against the table.
    async fn version_gaps(
        &self,
        tx: &mut PgConnection,
        rows: &[LogRow],
    ) -> Result<HashMap<usize, String>, ProjectionError> {
        let mut first_of_stream = Vec::new();
        let mut last_seen: HashMap<(&str, &str), u64> = HashMap::new();
        let mut gaps = HashMap::new();
        for (index, (_, row)) in rows.iter().enumerate() {
            let Ok(event) = row else { continue };
            match last_seen.insert((&event.stream_type, &event.stream_id), event.stream_version) {
                Some(previous) if previous + 1 != event.stream_version => {
                    gaps.insert(index, gap(&event.stream_id, previous + 1, event.stream_version));
                }
                None if event.stream_version > 1 => first_of_stream.push(index),
                Some(_) | None => {}
            }
        }
        if first_of_stream.is_empty() {
            return Ok(gaps);
        }
        let event = |index: &usize| rows[*index].1.as_ref().ok();
        let types: Vec<&str> = first_of_stream.iter().filter_map(event).map(|e| e.stream_type.as_str()).collect();
        let ids: Vec<&str> = first_of_stream.iter().filter_map(event).map(|e| e.stream_id.as_str()).collect();
        let versions: Vec<i64> = first_of_stream
            .iter()
            .filter_map(event)
            .map(|e| i64::try_from(e.stream_version).unwrap_or(i64::MAX))
            .collect();
        let before: Vec<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT (SELECT COALESCE(MAX(stream_version), 0) FROM {events}
                     WHERE stream_type = k.stream_type AND stream_id = k.stream_id AND stream_version < k.version)
             FROM UNNEST($1::text[], $2::text[], $3::int8[]) WITH ORDINALITY AS k(stream_type, stream_id, version, ord)
             ORDER BY k.ord",
            events = self.store.sql.events
        )))
        .bind(&types)
        .bind(&ids)
        .bind(&versions)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.store_error(backend(e)))?;
        for (index, before) in first_of_stream.iter().zip(before) {
            let Some(event) = event(index) else { continue };
            match stored::current_version(before) {
                Ok(before) if before + 1 == event.stream_version => {}
                Ok(before) => {
                    gaps.insert(*index, gap(&event.stream_id, before + 1, event.stream_version));
                }
                Err(reason) => {
                    gaps.insert(*index, format!("stream {}: {reason}", event.stream_id));
                }
            }
        }
        Ok(gaps)
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

    /// Creates the checkpoint row if missing and locks it: runners of this projection
    /// (and rebuilds) take turns on the lock.
    async fn lock_checkpoint(&self, tx: &mut PgConnection) -> Result<Checkpoint, ProjectionError> {
        let checkpoints = &self.store.sql.checkpoints;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {checkpoints} (projection) VALUES ($1) ON CONFLICT (projection) DO NOTHING"
        )))
        .bind(&self.name)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.store_error(backend(e)))?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT transaction_id::text, position, event_id FROM {checkpoints} WHERE projection = $1 FOR UPDATE"
        )))
        .bind(&self.name)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| self.store_error(backend(e)))?;
        checkpoint_from_row(&row, &self.name).map_err(|e| self.store_error(e))
    }

    /// Runs the handler on one event; with `savepoint`, a failing handler's writes
    /// are undone alone.
    async fn apply_one(
        &mut self,
        tx: &mut PgConnection,
        event: &StoredEvent,
        savepoint: bool,
    ) -> Result<(), ProjectionError> {
        if !savepoint {
            return self.projection.handle(tx, event).await.map_err(|error| self.failed(event, error.to_string()));
        }
        sqlx::query("SAVEPOINT es_event").execute(&mut *tx).await.map_err(|e| self.store_error(backend(e)))?;
        match self.projection.handle(tx, event).await {
            Ok(()) => {
                sqlx::query("RELEASE SAVEPOINT es_event")
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.store_error(backend(e)))?;
                Ok(())
            }
            Err(error) => {
                sqlx::query("ROLLBACK TO SAVEPOINT es_event")
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.store_error(backend(e)))?;
                Err(self.failed(event, error.to_string()))
            }
        }
    }

    /// Applies batches until the projection has seen every event committed so far.
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

    /// Keeps the projection up to date until `shutdown` resolves; appends in any
    /// process wake it through `LISTEN`. Returns the first error under
    /// [`OnError::Stop`].
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) -> Result<ProjectionReport, ProjectionError> {
        let mut appended = self.store.subscribe();
        let mut total = ProjectionReport::default();
        tokio::pin!(shutdown);
        loop {
            total.absorb(self.catch_up().await?);
            tokio::select! {
                biased;
                () = &mut shutdown => return Ok(total),
                _ = appended.changed() => {}
                () = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }
}

/// The reason of a version gap or repeat.
fn gap(stream_id: &str, expected: u64, found: u64) -> String {
    format!("stream {stream_id}: expected version {expected}, got {found}")
}

fn checkpoint_from_row(row: &sqlx::postgres::PgRow, name: &str) -> Result<Checkpoint, StoreError> {
    let transaction: String = row.try_get(0).map_err(backend)?;
    let position: i64 = row.try_get(1).map_err(backend)?;
    let corrupt = |reason: String| StoreError::Corrupt { location: format!("checkpoint of projection {name}"), reason };
    Ok(Checkpoint {
        cursor: Cursor {
            commit: stored::commit(&transaction).map_err(corrupt)?,
            position: stored::count(position, "checkpoint position").map_err(corrupt)?,
        },
        event_id: row.try_get(2).map_err(backend)?,
    })
}

/// How often a wait for a projection reads the checkpoint again when no notification
/// came (one may be lost while the listening connection reconnects).
const MISSED_NOTIFICATION_POLL: Duration = Duration::from_secs(1);

impl PgStore {
    /// Read-your-writes: waits until projection `name`'s checkpoint has reached
    /// `cursor` (typically [`Committed::cursor`](crate::Committed::cursor)), so that
    /// its read model includes the write, for up to `timeout`.
    ///
    /// For a web handler that does not own the runner: it reads the checkpoint table
    /// again each time a pass of any runner, in any process, commits (a notification
    /// on the store's channel), and each second besides. See [`WaitError`] for what a
    /// timeout means.
    pub async fn wait_for_projection(
        &self,
        name: &str,
        cursor: Cursor,
        timeout: Duration,
    ) -> Result<Checkpoint, WaitError> {
        let moved = self.subscribe_checkpoints();
        crate::projection::wait_for_checkpoint(name, cursor, timeout, MISSED_NOTIFICATION_POLL, moved, || {
            self.read_checkpoint(name)
        })
        .await
    }

    /// Projection `name`'s stored checkpoint.
    pub(crate) async fn read_checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT transaction_id::text, position, event_id FROM {} WHERE projection = $1 AND position > 0",
            self.sql.checkpoints
        )))
        .bind(name)
        .fetch_optional(self.pool())
        .await
        .map_err(backend)?;
        row.map(|row| checkpoint_from_row(&row, name)).transpose()
    }
}
