//! Projections into the same SQLite database, exactly once.

#![allow(
    clippy::result_large_err,
    reason = "a projection error names the event it stopped on; it is rare and returned once"
)]

use std::future::Future;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use tracing::Instrument;

use super::{EVENT_COLUMNS, SqliteStore, Tables, backend, event_from_row, now_micros};
use crate::projection::{
    Checkpoint, HandlerError, OnError, PositionDisplay, ProjectionError, ProjectionReport, Settings, WaitError,
};
use crate::sql::stored;
use crate::store::{Cursor, StoreError, StoredEvent};

/// A read model fed from the global log of a [`SqliteStore`].
///
/// `handle` runs on the store's writer thread inside the transaction that also
/// stores the checkpoint; write the read model through `tx` only (other connections
/// would not share the transaction). Decode the events it cares about with
/// [`StoredEvent::decode`] and ignore the rest.
///
/// ```
/// use es::projection::HandlerError;
/// use es::sqlite::Projection;
/// use es::StoredEvent;
///
/// struct EventCounts;
///
/// impl Projection for EventCounts {
///     fn name(&self) -> &str { "event_counts" }
///
///     fn setup(&mut self, tx: &rusqlite::Connection) -> Result<(), HandlerError> {
///         tx.execute_batch("CREATE TABLE IF NOT EXISTS event_counts (event_type TEXT PRIMARY KEY, n INTEGER NOT NULL)")?;
///         Ok(())
///     }
///
///     fn handle(&mut self, tx: &rusqlite::Connection, event: &StoredEvent) -> Result<(), HandlerError> {
///         tx.execute(
///             "INSERT INTO event_counts VALUES (?1, 1) ON CONFLICT (event_type) DO UPDATE SET n = n + 1",
///             [&event.event_type],
///         )?;
///         Ok(())
///     }
///
///     fn reset(&mut self, tx: &rusqlite::Connection) -> Result<(), HandlerError> {
///         tx.execute("DELETE FROM event_counts", [])?;
///         Ok(())
///     }
/// }
/// ```
pub trait Projection: Send + 'static {
    /// A stable name: the checkpoint is stored under it.
    fn name(&self) -> &str;

    /// Creates the read model's tables if needed; runs before the first pass.
    fn setup(&mut self, tx: &Connection) -> Result<(), HandlerError> {
        let _ = tx;
        Ok(())
    }

    /// Applies one event to the read model.
    fn handle(&mut self, tx: &Connection, event: &StoredEvent) -> Result<(), HandlerError>;

    /// Empties the read model, for a rebuild from the first event. The runner also
    /// calls it before the first event it applies without a checkpoint (so deleting
    /// the checkpoint, as `es projections reset` does, rebuilds the read model).
    fn reset(&mut self, tx: &Connection) -> Result<(), HandlerError>;
}

/// Runs a [`Projection`]: reads after its checkpoint, applies, and stores the new
/// checkpoint in the same transaction.
#[derive(Debug)]
pub struct ProjectionRunner<P> {
    store: SqliteStore,
    /// Shared with the writer thread while a pass runs there, so that the runner
    /// keeps it even when a pass is cancelled or a handler panics.
    projection: Arc<Mutex<P>>,
    name: String,
    settings: Settings,
    ready: bool,
}

impl<P: Projection> ProjectionRunner<P> {
    /// A runner with the default policy ([`OnError::Stop`]) and batches of 256 events.
    pub fn new(store: SqliteStore, projection: P) -> Self {
        let name = projection.name().to_owned();
        Self { store, projection: Arc::new(Mutex::new(projection)), name, settings: Settings::default(), ready: false }
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

    /// How often to look for events appended by other processes.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.settings.poll_interval = interval;
        self
    }

    /// The projection.
    #[must_use]
    pub fn projection(&self) -> impl Deref<Target = P> + '_ {
        lock(&self.projection)
    }

    /// The stored checkpoint.
    pub async fn checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        let name = self.name.clone();
        self.store.read_with_tables(move |connection, tables| read_checkpoint(connection, tables, &name)).await
    }

    /// How many events of the global log the projection has still to see.
    pub async fn lag(&self) -> Result<u64, StoreError> {
        let name = self.name.clone();
        self.store
            .read_with_tables(move |connection, tables| {
                let after = read_checkpoint(connection, tables, &name)?.map_or(0, |c| c.cursor.position);
                let behind: i64 = connection
                    .query_row(
                        &format!("SELECT COUNT(*) FROM {} WHERE position > ?1", tables.events),
                        [i64::try_from(after).unwrap_or(i64::MAX)],
                        |row| row.get(0),
                    )
                    .map_err(backend)?;
                stored::count(behind, "count")
                    .map_err(|reason| StoreError::Corrupt { location: format!("table {}", tables.events), reason })
            })
            .await
    }

    /// Empties the read model and deletes the checkpoint, in one transaction: the
    /// next pass starts from the first event.
    pub async fn rebuild(&mut self) -> Result<(), ProjectionError> {
        self.with_projection(|projection, tx, tables, name| {
            projection.setup(tx).map_err(|error| unreadable(name, 0, error.to_string()))?;
            projection.reset(tx).map_err(|error| unreadable(name, 0, format!("reset failed: {error}")))?;
            tx.execute(&format!("DELETE FROM {} WHERE projection = ?1", tables.checkpoints), [name])
                .map_err(|error| store_error(name, backend(error)))?;
            Ok(())
        })
        .await
    }

    /// Applies one batch after the checkpoint, in one transaction.
    pub async fn run_once(&mut self) -> Result<ProjectionReport, ProjectionError> {
        let batch_size = self.settings.batch_size;
        let on_error = self.settings.on_error;
        let setup = !self.ready;
        let (report, stopped) = self
            .with_projection(move |projection, tx, tables, name| {
                if setup {
                    projection.setup(tx).map_err(|error| unreadable(name, 0, format!("setup failed: {error}")))?;
                }
                apply_batch(projection, tx, tables, name, batch_size, on_error)
            })
            .await?;
        self.ready = true;
        match stopped {
            Some(error) => Err(error),
            None => Ok(report),
        }
    }

    /// Applies batches until the projection has seen every committed event.
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

    /// Keeps the projection up to date until `shutdown` resolves; appends through
    /// the same store wake it at once. Returns the first error under
    /// [`OnError::Stop`].
    pub async fn run(mut self, shutdown: impl Future<Output = ()> + Send) -> Result<ProjectionReport, ProjectionError> {
        let mut appended = self.store.subscribe_head();
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

    async fn with_projection<T: Send + 'static>(
        &mut self,
        work: impl FnOnce(&mut P, &rusqlite::Transaction<'_>, &Tables, &str) -> Result<T, ProjectionError> + Send + 'static,
    ) -> Result<T, ProjectionError> {
        let name = self.name.clone();
        let span = tracing::debug_span!("projection", name = %name);
        let projection = Arc::clone(&self.projection);
        let (_, outcome) = self
            .store
            .write_keeping(projection, move |projection, tx, tables| work(&mut lock(projection), tx, tables, &name))
            .instrument(span)
            .await
            .map_err(|error| store_error(&self.name, error))?;
        match outcome {
            Ok(Ok(value)) => {
                self.store.shared.checkpoints.send_modify(|passes| *passes = passes.wrapping_add(1));
                Ok(value)
            }
            Ok(Err(error)) => Err(error),
            Err(error) => Err(store_error(&self.name, error)),
        }
    }

    /// Waits until this projection's checkpoint has reached `cursor` (typically
    /// [`Committed::cursor`](crate::Committed::cursor)), so that its read model
    /// includes the write; see [`SqliteStore::wait_for_projection`]. Another task (or
    /// process) must be running the projection meanwhile.
    pub async fn wait_for(&self, cursor: Cursor, timeout: Duration) -> Result<Checkpoint, WaitError> {
        self.store.wait_for_projection(&self.name, cursor, timeout).await
    }
}

/// How often a wait for a projection reads the checkpoint again when nothing woke it:
/// passes of runners in other processes cannot be heard on SQLite.
const OTHER_PROCESSES_POLL: Duration = Duration::from_millis(20);

impl SqliteStore {
    /// Read-your-writes: waits until projection `name`'s checkpoint has reached
    /// `cursor` (typically [`Committed::cursor`](crate::Committed::cursor)), so that
    /// its read model includes the write, for up to `timeout`.
    ///
    /// For a web handler that does not own the runner: it reads the checkpoint table,
    /// woken at once by passes of runners on this store, and every 20 ms for runners in
    /// other processes. See [`WaitError`] for what a timeout means.
    pub async fn wait_for_projection(
        &self,
        name: &str,
        cursor: Cursor,
        timeout: Duration,
    ) -> Result<Checkpoint, WaitError> {
        let moved = self.shared.checkpoints.subscribe();
        crate::projection::wait_for_checkpoint(name, cursor, timeout, OTHER_PROCESSES_POLL, moved, || {
            let name = name.to_owned();
            self.read_with_tables(move |connection, tables| read_checkpoint(connection, tables, &name))
        })
        .await
    }
}

/// The projection, also after a handler panicked while holding it (the pass's
/// transaction was rolled back; the projection value itself is as the handler left it).
fn lock<P>(projection: &Mutex<P>) -> MutexGuard<'_, P> {
    projection.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read_checkpoint(connection: &Connection, tables: &Tables, name: &str) -> Result<Option<Checkpoint>, StoreError> {
    let row = connection
        .query_row(
            &format!("SELECT position, event_id FROM {} WHERE projection = ?1", tables.checkpoints),
            [name],
            |row| Ok((row.get::<_, i64>(0), row.get::<_, Option<Vec<u8>>>(1))),
        )
        .optional()
        .map_err(backend)?;
    row.map(|(position, event_id)| {
        let corrupt =
            |reason: String| StoreError::Corrupt { location: format!("checkpoint of projection {name}"), reason };
        let position = position.map_err(|error| corrupt(format!("position: {error}")))?;
        let event_id = event_id.map_err(|error| corrupt(format!("event id: {error}")))?;
        Ok(Checkpoint {
            cursor: Cursor::at_position(stored::count(position, "checkpoint position").map_err(corrupt)?),
            event_id: event_id
                .map(|bytes| {
                    uuid::Uuid::from_slice(&bytes)
                        .map_err(|_| corrupt(format!("event id is {} bytes, not 16", bytes.len())))
                })
                .transpose()?,
        })
    })
    .transpose()
}

fn unreadable(name: &str, position: u64, reason: String) -> ProjectionError {
    ProjectionError::Unreadable { projection: name.to_owned(), position: PositionDisplay(position), reason }
}

fn store_error(name: &str, source: StoreError) -> ProjectionError {
    ProjectionError::Store { projection: name.to_owned(), source }
}

/// One row of the log: the event, or why it cannot be read.
type LogRow = (u64, Result<StoredEvent, String>);

fn read_batch(tx: &Connection, tables: &Tables, after: u64, limit: usize) -> Result<Vec<LogRow>, StoreError> {
    let mut statement = tx
        .prepare_cached(&format!(
            "SELECT position, {EVENT_COLUMNS} FROM {} WHERE position > ?1 ORDER BY position LIMIT ?2",
            tables.events
        ))
        .map_err(backend)?;
    let mut rows = statement
        .query(params![i64::try_from(after).unwrap_or(i64::MAX), i64::try_from(limit).unwrap_or(i64::MAX)])
        .map_err(backend)?;
    let mut batch = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        // A row whose position is unreadable cannot be skipped past: stop there.
        let corrupt = |reason: String| StoreError::Corrupt { location: format!("table {}", tables.events), reason };
        let position: i64 = row.get(0).map_err(|error| corrupt(format!("position: {error}")))?;
        let position = stored::position(position).map_err(corrupt)?;
        batch.push((position, event_from_row(row, 1).map_err(|error| error.to_string())));
    }
    Ok(batch)
}

/// Whether the event before `event` in its stream is in the log before it.
fn follows_its_predecessor(
    tx: &Connection,
    tables: &Tables,
    event: &StoredEvent,
) -> Result<Result<(), String>, StoreError> {
    if event.stream_version == 1 {
        return Ok(Ok(()));
    }
    let present: bool = tx
        .prepare_cached(&format!(
            "SELECT EXISTS (SELECT 1 FROM {} WHERE stream_type = ?1 AND stream_id = ?2 AND stream_version = ?3 AND position < ?4)",
            tables.events
        ))
        .and_then(|mut statement| {
            statement.query_row(
                params![
                    event.stream_type,
                    event.stream_id,
                    i64::try_from(event.stream_version.saturating_sub(1)).unwrap_or(i64::MAX),
                    i64::try_from(event.cursor.position).unwrap_or(i64::MAX)
                ],
                |row| row.get(0),
            )
        })
        .map_err(backend)?;
    if present {
        return Ok(Ok(()));
    }
    // Only on the error path: find what did come before, for the message.
    let before: i64 = tx
        .query_row(
            &format!(
                "SELECT COALESCE(MAX(stream_version), 0) FROM {} WHERE stream_type = ?1 AND stream_id = ?2 AND position < ?3",
                tables.events
            ),
            params![event.stream_type, event.stream_id, i64::try_from(event.cursor.position).unwrap_or(i64::MAX)],
            |row| row.get(0),
        )
        .map_err(backend)?;
    Ok(Err(format!("stream {}: expected version {}, got {}", event.stream_id, before + 1, event.stream_version)))
}

fn apply_batch<P: Projection>(
    projection: &mut P,
    tx: &rusqlite::Transaction<'_>,
    tables: &Tables,
    name: &str,
    batch_size: usize,
    on_error: OnError,
) -> Result<(ProjectionReport, Option<ProjectionError>), ProjectionError> {
    let checkpoint = read_checkpoint(tx, tables, name).map_err(|error| store_error(name, error))?;
    let after = checkpoint.map_or(0, |c| c.cursor.position);
    let batch = read_batch(tx, tables, after, batch_size).map_err(|error| store_error(name, error))?;
    if checkpoint.is_none() && !batch.is_empty() {
        // No checkpoint means nothing applied: whatever the read model holds is left
        // from before its checkpoint was deleted (`es projections reset`), and would
        // otherwise see every event a second time.
        projection.reset(tx).map_err(|error| unreadable(name, 0, format!("reset failed: {error}")))?;
    }
    let mut report = ProjectionReport { checkpoint, ..ProjectionReport::default() };
    let mut stop = None;
    for (position, row) in batch {
        let outcome = match &row {
            Err(reason) => Err(unreadable(name, position, reason.clone())),
            Ok(event) => apply_one(projection, tx, tables, name, event),
        };
        match outcome {
            Ok(()) => report.applied += 1,
            Err(error) if on_error == OnError::RecordAndSkip && !matches!(error, ProjectionError::Store { .. }) => {
                tracing::warn!(projection = name, position, %error, "skipping event");
                tx.execute(
                    &format!(
                        "INSERT OR REPLACE INTO {} (position, consumer, reason, skipped_at) VALUES (?1, ?2, ?3, ?4)",
                        tables.skipped
                    ),
                    params![
                        i64::try_from(position).unwrap_or(i64::MAX),
                        format!("projection:{name}"),
                        error.to_string(),
                        now_micros()
                    ],
                )
                .map_err(|error| store_error(name, backend(error)))?;
                report.skipped += 1;
            }
            Err(error) => {
                stop = Some(error);
                break;
            }
        }
        report.checkpoint = Some(Checkpoint {
            cursor: Cursor::at_position(position),
            event_id: row.as_ref().ok().map(|event| event.event_id),
        });
    }
    if let Some(new) = report.checkpoint.filter(|new| Some(*new) != checkpoint) {
        tx.execute(
            &format!(
                "INSERT INTO {} (projection, position, event_id, updated_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (projection) DO UPDATE SET position = excluded.position, event_id = excluded.event_id, updated_at = excluded.updated_at",
                tables.checkpoints
            ),
            params![
                name,
                i64::try_from(new.cursor.position).unwrap_or(i64::MAX),
                new.event_id.map(|id| id.as_bytes().to_vec()),
                now_micros()
            ],
        )
        .map_err(|error| store_error(name, backend(error)))?;
    }
    // Under `Stop`, what was applied before the failing event still commits; the
    // runner reports the error after the commit.
    Ok((report, stop))
}

fn apply_one<P: Projection>(
    projection: &mut P,
    tx: &rusqlite::Transaction<'_>,
    tables: &Tables,
    name: &str,
    event: &StoredEvent,
) -> Result<(), ProjectionError> {
    let failed = |reason: String| ProjectionError::Event {
        projection: name.to_owned(),
        position: PositionDisplay(event.cursor.position),
        stream_type: event.stream_type.clone(),
        stream_id: event.stream_id.clone(),
        version: event.stream_version,
        event_type: event.event_type.clone(),
        reason,
    };
    follows_its_predecessor(tx, tables, event).map_err(|error| store_error(name, error))?.map_err(failed)?;
    // A savepoint per event: a failing handler's partial writes are undone alone.
    tx.execute_batch("SAVEPOINT es_event").map_err(|error| store_error(name, backend(error)))?;
    match projection.handle(tx, event) {
        Ok(()) => {
            tx.execute_batch("RELEASE es_event").map_err(|error| store_error(name, backend(error)))?;
            Ok(())
        }
        Err(error) => {
            tx.execute_batch("ROLLBACK TO es_event; RELEASE es_event")
                .map_err(|error| store_error(name, backend(error)))?;
            Err(failed(error.to_string()))
        }
    }
}
