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

use std::future::Future;
use std::ops::Deref;
use std::time::Duration;

use sqlx::{AssertSqlSafe, PgConnection, Row};
use tracing::Instrument;

use super::{PgStore, backend};
use crate::clock::now_micros;
use crate::projection::{
    Checkpoint, HandlerError, OnError, PositionDisplay, ProjectionError, ProjectionReport, Settings,
};
use crate::store::{Cursor, StoreError, StoredEvent, stored};

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

    /// Empties the read model, for a rebuild from the first event.
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
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT transaction_id::text, position, event_id FROM {} WHERE projection = $1 AND position > 0",
            self.store.sql.checkpoints
        )))
        .bind(&self.name)
        .fetch_optional(self.store.pool())
        .await
        .map_err(backend)?;
        row.map(|row| checkpoint_from_row(&row, &self.name)).transpose()
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
        if !self.ready {
            self.projection.setup(&mut tx).await.map_err(|e| ProjectionError::Unreadable {
                projection: self.name.clone(),
                position: PositionDisplay(0),
                reason: format!("setup failed: {e}"),
            })?;
        }
        // Row by row: an unreadable row fails alone, and the policy decides.
        let rows = super::read_log(&sql, &mut tx, checkpoint.cursor, self.settings.batch_size)
            .await
            .map_err(|e| self.store_error(e))?;
        let mut report = ProjectionReport { checkpoint: start, ..ProjectionReport::default() };
        let mut stopped = None;
        for (cursor, row) in rows {
            let outcome = match &row {
                Ok(event) => self.apply_one(&mut tx, event).await,
                Err(error) => Err(ProjectionError::Unreadable {
                    projection: self.name.clone(),
                    position: PositionDisplay(cursor.position),
                    reason: error.to_string(),
                }),
            };
            match outcome {
                Ok(()) => report.applied += 1,
                Err(error @ ProjectionError::Store { .. }) => return Err(error),
                Err(error) if self.settings.on_error == OnError::RecordAndSkip => {
                    tracing::warn!(projection = %self.name, position = cursor.position, %error, "skipping event");
                    sqlx::query(AssertSqlSafe(format!(
                        "INSERT INTO {} (position, consumer, reason, skipped_at) VALUES ($1, $2, $3, $4)
                         ON CONFLICT (position) DO UPDATE SET consumer = excluded.consumer, reason = excluded.reason",
                        sql.skipped
                    )))
                    .bind(i64::try_from(cursor.position).unwrap_or(i64::MAX))
                    .bind(format!("projection:{}", self.name))
                    .bind(error.to_string().replace('\0', "\u{FFFD}"))
                    .bind(now_micros())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| self.store_error(backend(e)))?;
                    report.skipped += 1;
                }
                Err(error) => {
                    stopped = Some(error);
                    break;
                }
            }
            report.checkpoint = Some(Checkpoint { cursor, event_id: row.as_ref().ok().map(|event| event.event_id) });
        }
        if let Some(new) = report.checkpoint.filter(|new| Some(*new) != start) {
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE {} SET transaction_id = $2::text::xid8, position = $3, event_id = $4, updated_at = $5 WHERE projection = $1",
                sql.checkpoints
            )))
            .bind(&self.name)
            .bind(new.cursor.commit.to_string())
            .bind(i64::try_from(new.cursor.position).unwrap_or(i64::MAX))
            .bind(new.event_id)
            .bind(now_micros())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.store_error(backend(e)))?;
        }
        tx.commit().await.map_err(|e| self.store_error(backend(e)))?;
        self.ready = true;
        match stopped {
            Some(error) => Err(error),
            None => Ok(report),
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

    async fn apply_one(&mut self, tx: &mut PgConnection, event: &StoredEvent) -> Result<(), ProjectionError> {
        let failed = |reason: String| ProjectionError::Event {
            projection: self.name.clone(),
            position: PositionDisplay(event.cursor.position),
            stream_type: event.stream_type.clone(),
            stream_id: event.stream_id.clone(),
            version: event.stream_version,
            event_type: event.event_type.clone(),
            reason,
        };
        let sql = &self.store.sql;
        if event.stream_version > 1 {
            let before: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT COALESCE(MAX(stream_version), 0) FROM {}
                 WHERE stream_type = $1 AND stream_id = $2 AND stream_version < $3",
                sql.events
            )))
            .bind(&event.stream_type)
            .bind(&event.stream_id)
            .bind(i64::try_from(event.stream_version).unwrap_or(i64::MAX))
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.store_error(backend(e)))?;
            let expected = stored::current_version(before)
                .map_err(|reason| failed(format!("stream {}: {reason}", event.stream_id)))?
                + 1;
            if expected != event.stream_version {
                return Err(failed(format!(
                    "stream {}: expected version {expected}, got {}",
                    event.stream_id, event.stream_version
                )));
            }
        }
        // A savepoint per event: a failing handler's partial writes are undone alone.
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
                Err(failed(error.to_string()))
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
