//! The embedded default store: a SQLite file in WAL mode, through rusqlite.
//!
//! One writer thread owns the writing connection and runs each transaction as one
//! job; reader threads serve reads beside it. Appends write the events and their
//! outbox rows (the local event table) in the same transaction, which can also hold
//! the caller's own writes:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use es::sqlite::SqliteStore;
//! use es::{ExpectedVersion, Metadata, NewEvent, SequentialIds, IdSource, Timestamp};
//! # #[derive(serde::Serialize, serde::Deserialize, es::Event)]
//! # struct Deposited { amount: u64 }
//!
//! let dir = std::env::temp_dir().join(format!("es-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let store = SqliteStore::open(dir.join("bank.db")).await?;
//! store.transaction(|tx| {
//!     tx.execute_batch("CREATE TABLE IF NOT EXISTS ledger (account TEXT, amount INTEGER)")?;
//!     tx.execute("INSERT INTO ledger VALUES ('a-1', 5)", [])?;
//!     let event = NewEvent::encode(&Deposited { amount: 5 }, SequentialIds::nth(1), Timestamp::EPOCH, Metadata::default())?;
//!     tx.append("Account", "a-1", ExpectedVersion::NoStream, vec![event])?;
//!     Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
//! }).await?;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(()) }
//! ```
//!
//! If the closure returns an error (or panics), nothing of it is written: no
//! business row, no event, no outbox row, so nothing is ever delivered.

mod admin;
mod outbox;
mod projection;
mod schema;
mod subscription;
mod view;
mod worker;

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, TransactionBehavior, params};
use tokio::sync::watch;
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::clock::Timestamp;
use crate::idempotency::{AppendOnce, RecordedCommand};
use crate::rehydrate::EventParts;
use crate::rehydrate::Loaded;
use crate::snapshot::Snapshot;
use crate::sql::{StreamRange, stored};
use crate::store::LoadError;
use crate::store::{Appended, Cursor, EventStore, ExpectedVersion, NewEvent, StoreError, StoredEvent};

pub use projection::{Projection, ProjectionRunner};
/// The rusqlite this store is built with: the version [`Projection`] and
/// [`SqliteStore::transaction`] hand out connections of.
pub use rusqlite;
pub(crate) use schema::Tables;
use worker::Workers;

/// How hard SQLite works to make a commit durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `synchronous=FULL`: a commit survives power loss. The default: a relay may
    /// deliver an event as soon as it is committed, so a commit that a power cut
    /// could undo would leave the world knowing of an event the store forgot.
    #[default]
    Full,
    /// `synchronous=NORMAL`: a commit survives a process crash but the last ones may
    /// be lost on power loss. Faster; choose it when the machine's power is not your
    /// failure model.
    Normal,
}

/// How to open a [`SqliteStore`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    path: PathBuf,
    table_prefix: String,
    synchronous: Synchronous,
    readers: usize,
    busy_timeout: Duration,
}

impl SqliteOptions {
    /// Options for the database file at `path` (created if missing).
    pub fn new(path: impl AsRef<Path>) -> Self {
        Self {
            path: path.as_ref().to_owned(),
            table_prefix: "es_".into(),
            synchronous: Synchronous::default(),
            readers: 2,
            busy_timeout: Duration::from_secs(10),
        }
    }

    /// The prefix of every table `es` creates (default `es_`): ASCII letters, digits
    /// and underscores only.
    #[must_use]
    pub fn table_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.table_prefix = prefix.into();
        self
    }

    /// Durability of commits (default [`Synchronous::Full`]).
    #[must_use]
    pub fn synchronous(mut self, synchronous: Synchronous) -> Self {
        self.synchronous = synchronous;
        self
    }

    /// How many reader threads serve reads (default 2, at least 1).
    #[must_use]
    pub fn readers(mut self, readers: usize) -> Self {
        self.readers = readers.max(1);
        self
    }

    /// How long a write waits for another process holding the database lock.
    #[must_use]
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// Opens the store: creates or migrates the schema and starts the threads.
    pub async fn open(self) -> Result<SqliteStore, StoreError> {
        // Opening and migrating touch the disk: keep them off the async threads.
        tokio::task::spawn_blocking(move || SqliteStore::open_blocking(&self))
            .await
            .map_err(|error| StoreError::Backend { backend: "sqlite", source: Box::new(error) })?
    }

    /// Opens the store read-only: nothing is created or migrated, and every write
    /// through it fails. Refuses a missing database and a schema other than this
    /// release's (older: migrate it first; newer: upgrade `es`). For tools that
    /// inspect a store a service is using.
    pub async fn open_read_only(self) -> Result<SqliteStore, StoreError> {
        tokio::task::spawn_blocking(move || SqliteStore::open_read_only_blocking(&self))
            .await
            .map_err(|error| StoreError::Backend { backend: "sqlite", source: Box::new(error) })?
    }

    /// Where the database's schema stands compared with this release's, without
    /// creating or changing anything (a missing database is an error).
    pub async fn schema_status(self) -> Result<crate::admin::SchemaStatus, StoreError> {
        tokio::task::spawn_blocking(move || {
            let tables = Tables::new(&self.table_prefix)?;
            tables.status(&self.connect(true)?)
        })
        .await
        .map_err(|error| StoreError::Backend { backend: "sqlite", source: Box::new(error) })?
    }

    fn connect(&self, read_only: bool) -> Result<Connection, StoreError> {
        let flags = if read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        if read_only && !self.path.exists() {
            return Err(StoreError::Backend {
                backend: "sqlite",
                source: format!("no database at {}; check the path", self.path.display()).into(),
            });
        }
        let connection = Connection::open_with_flags(&self.path, flags).map_err(|error| StoreError::Backend {
            backend: "sqlite",
            source: format!("cannot open {}: {error}", self.path.display()).into(),
        })?;
        connection.busy_timeout(self.busy_timeout).map_err(backend)?;
        let synchronous = match self.synchronous {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        };
        connection
            .execute_batch(&format!("PRAGMA foreign_keys = ON; PRAGMA synchronous = {synchronous};"))
            .map_err(backend)?;
        connection.set_prepared_statement_cache_capacity(64);
        Ok(connection)
    }
}

/// What all clones of a store share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) tables: Tables,
    writer: Workers,
    readers: Workers,
    /// The position of the last event committed through this store; relays and
    /// projections wait on it so that appends wake them at once.
    pub(crate) head: watch::Sender<u64>,
    /// Bumped after each projection pass commits through this store, so that
    /// read-your-writes waits wake at once.
    pub(crate) checkpoints: watch::Sender<u64>,
    pub(crate) path: PathBuf,
}

/// The SQLite event store. Cheap to clone: clones share the threads and connections.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) shared: Arc<Shared>,
}

impl SqliteStore {
    /// Opens (or creates) the database at `path` with default options.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        SqliteOptions::new(path).open().await
    }

    fn open_blocking(options: &SqliteOptions) -> Result<Self, StoreError> {
        let tables = Tables::new(&options.table_prefix)?;
        let mut writer = options.connect(false)?;
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)).map_err(backend)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend {
                backend: "sqlite",
                source: format!("{} cannot use WAL mode (journal mode is {mode})", options.path.display()).into(),
            });
        }
        tables.migrate(&mut writer)?;
        let head: i64 = writer
            .query_row(&format!("SELECT COALESCE(MAX(position), 0) FROM {}", tables.events), [], |row| row.get(0))
            .map_err(backend)?;
        let readers = (0..options.readers).map(|_| options.connect(true)).collect::<Result<Vec<_>, _>>()?;
        let head = stored::count(head, "position")
            .map_err(|reason| StoreError::Corrupt { location: format!("table {}", tables.events), reason })?;
        let (head, _) = watch::channel(head);
        Ok(Self {
            shared: Arc::new(Shared {
                tables,
                writer: Workers::start("writer", vec![writer])?,
                readers: Workers::start("reader", readers)?,
                head,
                checkpoints: watch::channel(0).0,
                path: options.path.clone(),
            }),
        })
    }

    fn open_read_only_blocking(options: &SqliteOptions) -> Result<Self, StoreError> {
        let tables = Tables::new(&options.table_prefix)?;
        let first = options.connect(true)?;
        tables.status(&first)?.require_current("sqlite", &options.path.display().to_string())?;
        let head = admin::read_head(&first, &tables)?.position;
        let head = stored::count(head, "position")
            .map_err(|reason| StoreError::Corrupt { location: format!("table {}", tables.events), reason })?;
        let readers = (1..options.readers).map(|_| options.connect(true)).collect::<Result<Vec<_>, _>>()?;
        let (head, _) = watch::channel(head);
        Ok(Self {
            shared: Arc::new(Shared {
                tables,
                // The "writer" is a read-only connection too: any write through this
                // store fails with SQLite's own read-only error.
                writer: Workers::start("writer", vec![options.connect(true)?])?,
                readers: Workers::start("reader", std::iter::once(first).chain(readers).collect())?,
                head,
                checkpoints: watch::channel(0).0,
                path: options.path.clone(),
            }),
        })
    }

    /// The database file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// Runs `work` in one write transaction on the writer thread and commits it if
    /// `work` returns `Ok`. `work` gets a [`SqliteTransaction`]: the rusqlite
    /// transaction (for the caller's own SQL) plus [`SqliteTransaction::append`].
    pub async fn transaction<T, E, F>(&self, work: F) -> Result<T, E>
    where
        F: FnOnce(&mut SqliteTransaction<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        let outcome = self
            .shared
            .writer
            .run(move |connection| -> Result<(T, Option<u64>), E> {
                let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
                let mut tx = SqliteTransaction { tx, tables: &shared.tables, last_position: None };
                let value = work(&mut tx)?;
                let SqliteTransaction { tx, last_position, .. } = tx;
                tx.commit().map_err(backend)?;
                Ok((value, last_position))
            })
            .await?;
        let (value, last_position) = outcome?;
        if let Some(position) = last_position {
            self.shared.head.send_if_modified(|head| {
                let advanced = position > *head;
                *head = (*head).max(position);
                advanced
            });
        }
        Ok(value)
    }

    /// Runs `work` on a reader connection (read-only), for queries of read models.
    pub async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.shared.readers.run(move |connection| work(connection)).await?.map_err(backend)
    }

    pub(crate) async fn read_with_tables<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&Connection, &Tables) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        self.shared.readers.run(move |connection| work(connection, &shared.tables)).await?
    }

    pub(crate) async fn write_with_tables<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        F: FnOnce(&rusqlite::Transaction<'_>, &Tables) -> Result<T, StoreError> + Send + 'static,
        T: Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        self.shared
            .writer
            .run(move |connection| {
                let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
                let value = work(&tx, &shared.tables)?;
                tx.commit().map_err(backend)?;
                Ok(value)
            })
            .await?
    }

    /// Runs `work` in a write transaction with `value` at hand, committing only if
    /// `work` returns `Ok`, and hands `value` back whatever happens to the
    /// transaction (only a panic in `work` loses it).
    pub(crate) async fn write_keeping<V, T, E, F>(
        &self,
        value: V,
        work: F,
    ) -> Result<(V, Result<Result<T, E>, StoreError>), StoreError>
    where
        V: Send + 'static,
        T: Send + 'static,
        E: Send + 'static,
        F: FnOnce(&mut V, &rusqlite::Transaction<'_>, &Tables) -> Result<T, E> + Send + 'static,
    {
        let shared = Arc::clone(&self.shared);
        self.shared
            .writer
            .run(move |connection| {
                let mut value = value;
                let outcome = (|| {
                    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate).map_err(backend)?;
                    let outcome = work(&mut value, &tx, &shared.tables);
                    if outcome.is_ok() {
                        tx.commit().map_err(backend)?;
                    }
                    Ok(outcome)
                })();
                (value, outcome)
            })
            .await
    }

    /// The position of the last event committed through this store (or found at open).
    #[must_use]
    pub fn head(&self) -> u64 {
        *self.shared.head.borrow()
    }

    pub(crate) fn subscribe_head(&self) -> watch::Receiver<u64> {
        self.shared.head.subscribe()
    }
}

/// A write transaction on the writer thread: the caller's SQL and appends commit
/// together. Derefs to the [`rusqlite::Transaction`].
pub struct SqliteTransaction<'c> {
    tx: rusqlite::Transaction<'c>,
    tables: &'c Tables,
    last_position: Option<u64>,
}

impl<'c> Deref for SqliteTransaction<'c> {
    type Target = rusqlite::Transaction<'c>;
    fn deref(&self) -> &rusqlite::Transaction<'c> {
        &self.tx
    }
}

impl std::fmt::Debug for SqliteTransaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteTransaction").field("last_position", &self.last_position).finish_non_exhaustive()
    }
}

impl SqliteTransaction<'_> {
    /// Appends events to a stream inside this transaction, with their outbox rows.
    /// Checks the expected version like [`EventStore::append`].
    pub fn append(
        &mut self,
        stream_type: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        crate::store::check_append(stream_type, stream_id, &events)?;
        // All of one append or none of it, even when the caller goes on with the
        // transaction after an error.
        let statement = |sql: &str| self.tx.prepare_cached(sql).and_then(|mut statement| statement.execute([]));
        statement("SAVEPOINT es_append").map_err(backend)?;
        let appended = match append(&self.tx, self.tables, stream_type, stream_id, expected, events) {
            Ok(appended) => {
                statement("RELEASE es_append").map_err(backend)?;
                appended
            }
            Err(error) => {
                statement("ROLLBACK TO es_append").and_then(|_| statement("RELEASE es_append")).map_err(backend)?;
                return Err(error);
            }
        };
        if let Some(last) = appended.cursors.last() {
            self.last_position = Some(last.position);
        }
        Ok(appended)
    }
}

fn append(
    tx: &rusqlite::Transaction<'_>,
    tables: &Tables,
    stream_type: &str,
    stream_id: &str,
    expected: ExpectedVersion,
    events: Vec<NewEvent>,
) -> Result<Appended, StoreError> {
    let span = tracing::debug_span!("append", stream_type, stream_id, events = events.len());
    let _entered = span.enter();
    let actual = stream_version(tx, tables, stream_type, stream_id)?;
    if !expected.matches(actual) {
        return Err(StoreError::Conflict {
            stream_type: stream_type.to_owned(),
            stream_id: stream_id.to_owned(),
            expected,
            actual,
        });
    }
    let mut insert_event = tx
        .prepare_cached(&format!(
            "INSERT INTO {} (event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, metadata, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            tables.events
        ))
        .map_err(backend)?;
    let mut insert_outbox = tx
        .prepare_cached(&format!(
            "INSERT INTO {} (position, stream_type, stream_id) VALUES (?1, ?2, ?3)",
            tables.outbox
        ))
        .map_err(backend)?;
    let sent = events.len();
    let mut cursors = Vec::with_capacity(events.len());
    for (version, event) in (actual + 1..).zip(events) {
        let metadata = if event.metadata.is_empty() {
            None
        } else {
            Some(serde_json::to_string(&event.metadata).map_err(|error| StoreError::Unstorable {
                stream_type: stream_type.to_owned(),
                stream_id: stream_id.to_owned(),
                event_type: event.event_type.clone(),
                reason: format!("metadata does not encode: {error}"),
            })?)
        };
        let version_sql = i64::try_from(version).map_err(|_| StoreError::Unstorable {
            stream_type: stream_type.to_owned(),
            stream_id: stream_id.to_owned(),
            event_type: event.event_type.clone(),
            reason: format!("stream version {version} exceeds SQLite's integers"),
        })?;
        insert_event
            .execute(params![
                event.event_id.as_bytes(),
                stream_type,
                stream_id,
                version_sql,
                event.event_type,
                event.schema_version,
                event.occurred_at.as_unix_micros(),
                metadata,
                event.payload,
            ])
            .map_err(|error| match error.sqlite_error_code() {
                // Which constraint failed is told by asking, not by reading the
                // message: only on this error path.
                Some(rusqlite::ErrorCode::ConstraintViolation) => match id_is_stored(tx, tables, event.event_id) {
                    Ok(true) => StoreError::DuplicateEventId { event_id: event.event_id },
                    Ok(false) => StoreError::Conflict {
                        stream_type: stream_type.to_owned(),
                        stream_id: stream_id.to_owned(),
                        expected,
                        actual,
                    },
                    Err(_) => backend(error),
                },
                _ => backend(error),
            })?;
        let position = tx.last_insert_rowid();
        insert_outbox.execute(params![position, stream_type, stream_id]).map_err(backend)?;
        let position = stored::position(position).map_err(|reason| StoreError::Corrupt {
            location: format!("stream {stream_type}/{stream_id}, version {version}"),
            reason,
        })?;
        cursors.push(Cursor::at_position(position));
    }
    crate::store::check_written(stream_type, stream_id, sent, cursors.len())?;
    Ok(Appended { version: actual + cursors.len() as u64, cursors })
}

/// The stream's current version, refusing a stream that holds a row below version 1.
fn stream_version(
    tx: &rusqlite::Transaction<'_>,
    tables: &Tables,
    stream_type: &str,
    stream_id: &str,
) -> Result<u64, StoreError> {
    // The lowest version too: a row below 1, written behind the library's back,
    // would otherwise hide from every load. Two index probes.
    let (actual, lowest) = tx
        .prepare_cached(&format!(
            "SELECT (SELECT MAX(stream_version) FROM {events} WHERE stream_type = ?1 AND stream_id = ?2),
                    (SELECT MIN(stream_version) FROM {events} WHERE stream_type = ?1 AND stream_id = ?2)",
            events = tables.events
        ))
        .and_then(|mut statement| {
            statement.query_row(params![stream_type, stream_id], |row| {
                Ok((row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1)))
            })
        })
        .map_err(backend)?;
    let wrong_type = |error: rusqlite::Error| StoreError::Corrupt {
        location: format!("stream {stream_type}/{stream_id}"),
        reason: format!("stream version: {error}"),
    };
    let (actual, lowest) = (actual.map_err(wrong_type)?, lowest.map_err(wrong_type)?);
    let corrupt_at = |version: i64| StoreError::Corrupt {
        location: format!("stream {stream_type}/{stream_id}, version {version}"),
        reason: format!("stream version {version}: versions start at 1"),
    };
    if let Some(lowest) = lowest.filter(|lowest| *lowest < 1) {
        return Err(corrupt_at(lowest));
    }
    let actual = actual.unwrap_or(0);
    let actual = stored::current_version(actual).map_err(|_| corrupt_at(actual))?;
    Ok(actual)
}

/// Whether an event with this id is stored (or written earlier in this transaction).
fn id_is_stored(tx: &rusqlite::Transaction<'_>, tables: &Tables, event_id: Uuid) -> rusqlite::Result<bool> {
    tx.query_row(
        &format!("SELECT EXISTS (SELECT 1 FROM {} WHERE event_id = ?1)", tables.events),
        [event_id.as_bytes()],
        |row| row.get(0),
    )
}

pub(crate) const EVENT_COLUMNS: &str = "position, event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, metadata, payload";

/// Reads a row selected with [`EVENT_COLUMNS`], refusing values the library would
/// never have written.
pub(crate) fn event_from_row(row: &Row<'_>, at: usize) -> Result<StoredEvent, StoreError> {
    // SQLite keeps whatever type a value was written with: a column of the wrong type
    // is as corrupt as a value out of range.
    let position: i64 = row.get(at).map_err(|error| StoreError::Corrupt {
        location: "a row of the events table".into(),
        reason: format!("position: {error}"),
    })?;
    let at_position = |what: &str, error: rusqlite::Error| StoreError::Corrupt {
        location: format!("position {position}"),
        reason: format!("{what}: {error}"),
    };
    let stream_type: String = row.get(at + 2).map_err(|error| at_position("stream type", error))?;
    let stream_id: String = row.get(at + 3).map_err(|error| at_position("stream id", error))?;
    let stream_version: i64 = row.get(at + 4).map_err(|error| at_position("stream version", error))?;
    let corrupt = |reason: String| StoreError::Corrupt {
        location: stored::event_location(&stream_type, &stream_id, stream_version, position),
        reason,
    };
    let column = |what: &str, error: rusqlite::Error| corrupt(format!("{what}: {error}"));
    let stream_version = stored::version(stream_version).map_err(&corrupt)?;
    let id: Vec<u8> = row.get(at + 1).map_err(|error| column("event id", error))?;
    let event_id = Uuid::from_slice(&id).map_err(|_| corrupt(format!("event id is {} bytes, not 16", id.len())))?;
    let schema_version: i64 = row.get(at + 6).map_err(|error| column("schema version", error))?;
    let metadata: Option<String> = row.get(at + 8).map_err(|error| column("metadata", error))?;
    Ok(StoredEvent {
        event_id,
        cursor: Cursor::at_position(stored::position(position).map_err(&corrupt)?),
        event_type: row.get(at + 5).map_err(|error| column("event type", error))?,
        schema_version: stored::schema_version(schema_version).map_err(&corrupt)?,
        occurred_at: Timestamp::from_unix_micros(row.get(at + 7).map_err(|error| column("occurred at", error))?),
        metadata: stored::metadata(metadata.as_deref()).map_err(&corrupt)?,
        payload: row.get(at + 9).map_err(|error| column("payload", error))?,
        stream_version,
        stream_type,
        stream_id,
    })
}

fn collect_events(
    statement: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut rows = statement.query(params).map_err(backend)?;
    let mut events = Vec::new();
    while let Some(row) = rows.next().map_err(backend)? {
        events.push(event_from_row(row, 0)?);
    }
    Ok(events)
}

/// A stream's events from version `?3` on, followed by `tail` (a `LIMIT`). Rows below
/// version 1 are read too, to be refused: never written by the library, they would
/// otherwise hide. Two index ranges, merged.
fn read_stream_sql(tables: &Tables, tail: &str) -> String {
    format!(
        "SELECT {EVENT_COLUMNS} FROM {events} WHERE stream_type = ?1 AND stream_id = ?2 AND stream_version < 1
         UNION ALL
         SELECT {EVENT_COLUMNS} FROM {events} WHERE stream_type = ?1 AND stream_id = ?2 AND stream_version >= ?3
         ORDER BY stream_version{tail}",
        events = tables.events
    )
}

pub(crate) fn read_after(
    connection: &Connection,
    tables: &Tables,
    after: u64,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut statement = connection
        .prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM {} WHERE position > ?1 ORDER BY position LIMIT ?2",
            tables.events
        ))
        .map_err(backend)?;
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    collect_events(&mut statement, params![after, limit])
}

impl EventStore for SqliteStore {
    async fn append(
        &self,
        stream_type: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        crate::store::check_append(stream_type, stream_id, &events)?;
        let (stream_type, stream_id) = (stream_type.to_owned(), stream_id.to_owned());
        // The append is the whole transaction here: a failure rolls all of it back,
        // so it needs no savepoint of its own.
        self.transaction(move |tx| {
            let appended = append(&tx.tx, tx.tables, &stream_type, &stream_id, expected, events)?;
            if let Some(last) = appended.cursors.last() {
                tx.last_position = Some(last.position);
            }
            Ok(appended)
        })
        .await
    }

    /// The key is checked and recorded in the append's `BEGIN IMMEDIATE` transaction:
    /// one writer at a time, across processes, so two retries cannot both append.
    async fn append_once(
        &self,
        key: &str,
        stream_type: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOnce, StoreError> {
        crate::idempotency::check_key(key)?;
        crate::store::check_append(stream_type, stream_id, &events)?;
        let (key, stream_type, stream_id) = (key.to_owned(), stream_type.to_owned(), stream_id.to_owned());
        self.transaction(move |tx| {
            if let Some(recorded) = recorded_command(&tx.tx, tx.tables, &key)? {
                return Ok(AppendOnce::Recorded(recorded));
            }
            let appended = append(&tx.tx, tx.tables, &stream_type, &stream_id, expected, events)?;
            if let Some(last) = appended.cursors.last() {
                tx.last_position = Some(last.position);
                let first_version = appended.version + 1 - appended.cursors.len() as u64;
                tx.tx
                    .prepare_cached(&format!(
                        "INSERT INTO {} (idempotency_key, stream_type, stream_id, first_version, last_version, recorded_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        tx.tables.commands
                    ))
                    .and_then(|mut insert| {
                        insert.execute(params![
                            key,
                            stream_type,
                            stream_id,
                            i64::try_from(first_version).unwrap_or(i64::MAX),
                            i64::try_from(appended.version).unwrap_or(i64::MAX),
                            now_micros()
                        ])
                    })
                    .map_err(backend)?;
            }
            Ok(AppendOnce::Appended(appended))
        })
        .await
    }

    async fn recorded_command(&self, key: &str) -> Result<Option<RecordedCommand>, StoreError> {
        crate::idempotency::check_key(key)?;
        let key = key.to_owned();
        self.read_with_tables(move |connection, tables| recorded_command(connection, tables, &key)).await
    }

    async fn prune_commands(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        self.write_with_tables(move |tx, tables| {
            let pruned = tx
                .execute(&format!("DELETE FROM {} WHERE recorded_at < ?1", tables.commands), [cutoff.as_unix_micros()])
                .map_err(backend)?;
            Ok(pruned as u64)
        })
        .await
    }

    /// Appends through this store only: other processes are seen by polling.
    fn watch_appends(&self) -> watch::Receiver<u64> {
        self.subscribe_head()
    }

    async fn read_stream(
        &self,
        stream_type: &str,
        stream_id: &str,
        from_version: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        crate::store::check_stream(stream_type, stream_id)?;
        let (owned_type, owned_id) = (stream_type.to_owned(), stream_id.to_owned());
        let from = i64::try_from(from_version).unwrap_or(i64::MAX);
        let events = self
            .read_with_tables(move |connection, tables| {
                let mut statement = connection.prepare_cached(&read_stream_sql(tables, "")).map_err(backend)?;
                collect_events(&mut statement, params![owned_type, owned_id, from])
            })
            .await?;
        crate::store::check_versions(stream_type, stream_id, from_version, &events)?;
        Ok(events)
    }

    async fn read_stream_page(
        &self,
        stream_type: &str,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        crate::store::check_stream(stream_type, stream_id)?;
        let (stream_type, stream_id) = (stream_type.to_owned(), stream_id.to_owned());
        let from = i64::try_from(from_version).unwrap_or(i64::MAX);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read_with_tables(move |connection, tables| {
            let mut statement = connection.prepare_cached(&read_stream_sql(tables, " LIMIT ?4")).map_err(backend)?;
            collect_events(&mut statement, params![stream_type, stream_id, from, limit])
        })
        .await
    }

    async fn read_all(&self, after: Cursor, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.read_with_tables(move |connection, tables| read_after(connection, tables, after.position, limit)).await
    }

    /// Folds right on the reader thread, decoding each payload from the row's own
    /// buffer: no copy of the stream is made on the way.
    async fn load<A: Aggregate>(&self, stream_id: &str) -> Result<Loaded<A>, LoadError> {
        crate::store::check_stream(A::stream_type(), stream_id)?;
        let loaded = crate::snapshot::starting_point::<A, Self>(self, stream_id).await?;
        let shared = Arc::clone(&self.shared);
        self.shared.readers.run(move |connection| fold_stream::<A>(connection, &shared.tables, loaded)).await?
    }

    async fn read_snapshot(&self, stream_type: &str, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        crate::store::check_stream(stream_type, stream_id)?;
        let (stream_type, stream_id) = (stream_type.to_owned(), stream_id.to_owned());
        self.read_with_tables(move |connection, tables| {
            let row = connection
                .prepare_cached(&format!(
                    "SELECT stream_version, schema_version, state FROM {} WHERE stream_type = ?1 AND stream_id = ?2",
                    tables.snapshots
                ))
                .and_then(|mut statement| {
                    statement
                        .query_row(params![stream_type, stream_id], |row| {
                            Ok((row.get::<_, i64>(0), row.get::<_, i64>(1), row.get::<_, String>(2)))
                        })
                        .optional()
                })
                .map_err(backend)?;
            row.map(|(version, schema, state)| {
                let corrupt = |reason: String| StoreError::Corrupt {
                    location: format!("snapshot of stream {stream_type}/{stream_id}"),
                    reason,
                };
                let column = |what: &str, error: rusqlite::Error| corrupt(format!("{what}: {error}"));
                let version = version.map_err(|error| column("stream version", error))?;
                let schema = schema.map_err(|error| column("schema version", error))?;
                let state = state.map_err(|error| column("state", error))?;
                Ok(Snapshot {
                    stream_version: stored::snapshot_version(version).map_err(corrupt)?,
                    schema_version: stored::schema_version(schema).map_err(corrupt)?,
                    state,
                })
            })
            .transpose()
        })
        .await
    }

    async fn write_snapshot(&self, stream_type: &str, stream_id: &str, snapshot: Snapshot) -> Result<(), StoreError> {
        crate::store::check_stream(stream_type, stream_id)?;
        let (stream_type, stream_id) = (stream_type.to_owned(), stream_id.to_owned());
        self.write_with_tables(move |tx, tables| {
            tx.execute(
                &format!(
                    "INSERT INTO {snapshots} (stream_type, stream_id, stream_version, schema_version, state, taken_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (stream_type, stream_id) DO UPDATE SET
                         stream_version = excluded.stream_version, schema_version = excluded.schema_version,
                         state = excluded.state, taken_at = excluded.taken_at
                     WHERE excluded.stream_version >= {snapshots}.stream_version",
                    snapshots = tables.snapshots
                ),
                params![
                    stream_type,
                    stream_id,
                    i64::try_from(snapshot.stream_version).unwrap_or(i64::MAX),
                    snapshot.schema_version,
                    snapshot.state,
                    now_micros()
                ],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }
}

/// The command recorded under `key`, its stored values checked.
fn recorded_command(
    connection: &Connection,
    tables: &Tables,
    key: &str,
) -> Result<Option<RecordedCommand>, StoreError> {
    let row = connection
        .prepare_cached(&format!(
            "SELECT stream_type, stream_id, first_version, last_version, recorded_at FROM {} WHERE idempotency_key = ?1",
            tables.commands
        ))
        .and_then(|mut statement| {
            statement
                .query_row([key], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get(2)?, row.get(3)?, row.get(4)?))
                })
                .optional()
        })
        .map_err(backend)?;
    row.map(|(stream_type, stream_id, first, last, recorded_at)| {
        stored::command(key, stream_type, stream_id, first, last, recorded_at)
    })
    .transpose()
}

/// Folds the events after `loaded`'s version on the reader thread. Rows below
/// version 1 are read too (first, in a second index range merged in), so that they are
/// refused as corrupt rather than hide from the load.
fn fold_stream<A: Aggregate>(
    connection: &Connection,
    tables: &Tables,
    mut loaded: Loaded<A>,
) -> Result<Loaded<A>, LoadError> {
    let range = StreamRange::from_version(loaded.version().saturating_add(1));
    let columns = "position, event_id, stream_version, event_type, schema_version, occurred_at, metadata, payload";
    let reads = crate::sql::stream_reads(columns, &tables.events, ["?1", "?2", "?3"]);
    let mut statement = connection.prepare_cached(&reads[range.index()]).map_err(backend)?;
    let mut rows =
        statement.query(params![A::stream_type(), loaded.stream_id(), range.first_bound()]).map_err(backend)?;
    while let Some(row) = rows.next().map_err(backend)? {
        let position: i64 = row.get(0).map_err(|error| StoreError::Corrupt {
            location: format!("stream {}/{}", A::stream_type(), loaded.stream_id()),
            reason: format!("position: {error}"),
        })?;
        let stream_version: i64 = row.get(2).map_err(|error| StoreError::Corrupt {
            location: format!("stream {}/{} (position {position})", A::stream_type(), loaded.stream_id()),
            reason: format!("stream version: {error}"),
        })?;
        let corrupt = |reason: String| StoreError::Corrupt {
            location: stored::event_location(A::stream_type(), loaded.stream_id(), stream_version, position),
            reason,
        };
        let text = |index: usize| -> Result<&str, StoreError> {
            row.get_ref(index).map_err(backend)?.as_str().map_err(|error| corrupt(format!("column {index}: {error}")))
        };
        let id = row.get_ref(1).map_err(backend)?.as_blob().map_err(|error| corrupt(format!("event id: {error}")))?;
        let metadata = match row.get_ref(6).map_err(|error| corrupt(format!("metadata: {error}")))? {
            rusqlite::types::ValueRef::Null => None,
            _ => Some(text(6)?),
        };
        let schema_version: i64 = row.get(4).map_err(|error| corrupt(format!("schema version: {error}")))?;
        // Every stored value is checked, also those an aggregate without envelopes
        // does not need (`fold_parts` then only skips building the envelope).
        let parts = EventParts {
            event_id: Uuid::from_slice(id).map_err(|_| corrupt(format!("event id is {} bytes, not 16", id.len())))?,
            stream_version: stored::version(stream_version).map_err(&corrupt)?,
            cursor: Cursor::at_position(stored::position(position).map_err(&corrupt)?),
            event_type: text(3)?,
            schema_version: stored::schema_version(schema_version).map_err(&corrupt)?,
            occurred_at: Timestamp::from_unix_micros(
                row.get(5).map_err(|error| corrupt(format!("occurred at: {error}")))?,
            ),
            metadata: stored::metadata(metadata).map_err(&corrupt)?,
            payload: text(7)?,
        };
        loaded.fold_parts(parts)?;
    }
    Ok(loaded)
}

impl From<rusqlite::Error> for StoreError {
    /// Lets `?` carry the caller's own SQL errors out of a [`SqliteStore::transaction`].
    fn from(error: rusqlite::Error) -> Self {
        backend(error)
    }
}

pub(crate) fn backend(error: rusqlite::Error) -> StoreError {
    StoreError::Backend { backend: "sqlite", source: Box::new(error) }
}

pub(crate) use crate::clock::now_micros;
