//! The PostgreSQL store, through sqlx: for many service instances on one database.
//!
//! Appends run inside the caller's own transaction, so business writes, events and
//! outbox rows commit together:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use es::postgres::PgStore;
//! use es::{ExpectedVersion, IdSource, Metadata, NewEvent, RandomIds, Timestamp};
//! # #[derive(serde::Serialize, serde::Deserialize, es::Event)]
//! # struct Deposited { amount: u64 }
//!
//! let store = PgStore::open("postgres://postgres@127.0.0.1/test").await?;
//! let mut tx = store.pool().begin().await?;
//! sqlx::query("INSERT INTO ledger (account, amount) VALUES ($1, $2)").bind("a-1").bind(5_i64).execute(&mut *tx).await?;
//! let event = NewEvent::encode(&Deposited { amount: 5 }, RandomIds.next_id(), Timestamp::EPOCH, Metadata::default())?;
//! store.append_in(&mut tx, "Account", "a-1", ExpectedVersion::NoStream, vec![event]).await?;
//! tx.commit().await?;
//! # Ok(()) }
//! ```
//!
//! **Reading in commit order.** PostgreSQL hands out positions when rows are
//! inserted, not when they commit, so a reader that trusted positions alone could pass
//! an event whose transaction commits late and never see it. Each event therefore
//! records a commit-order key (its transaction id, `xid8`), the global log is read in
//! `(key, position)` order, and only keys below a *horizon* are read: below it every
//! transaction that may still append has finished. A cursor is that pair.
//!
//! **Who holds readers back.** Every append takes a shared, transaction-level
//! advisory lock (one per events table) before its first row. The horizon is the
//! oldest open transaction that holds (or waits for) that lock, or the snapshot's
//! `xmax` when none does: transactions in other databases of the server, and
//! transactions here that never append, do not hold readers back; a transaction that
//! appended does, until it ends. [`PgStore::read_horizon`] reports the horizon and the
//! transactions (process id, age, application name) that hold it, for an operator.
//! A transaction that wrote something else before its first append gets a key from
//! after its lock, not its older transaction id (which readers may have passed while
//! it held no lock); that append costs one more round trip, which
//! [`PgStore::begin`] avoids by taking the lock with `BEGIN`.
//!
//! **Per-stream order.** Keys never go down within a stream: an append's key is at
//! least that of the stream's previous version, committed before it. A stored row
//! that breaks this (written behind the library's back) makes the append fail with
//! [`StoreError::StaleTransaction`] rather than put the stream out of the log's order.

mod admin;
mod horizon;
mod outbox;
mod projection;
mod schema;
mod subscription;
mod view;

use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{AssertSqlSafe, PgConnection, PgPool, Row};
use tokio::sync::watch;
use tracing::Instrument;
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

pub use horizon::{HoldingTransaction, ReadHorizon};
pub use projection::{Projection, ProjectionRunner};
pub(crate) use schema::Sql;
pub use schema::TABLE_NAMES;
/// The sqlx this store is built with: the version whose connections, transactions
/// and pools [`PgStore::append_in`], [`Projection`] and [`PgOptions::with_pool`] take.
pub use sqlx;

/// The PostgreSQL event store. Cheap to clone: clones share the pool.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
    sql: Arc<Sql>,
    /// The watchers of notifications, and the task that feeds them while they watch.
    listening: Arc<std::sync::Mutex<Option<Listening>>>,
}

/// What the store's `LISTEN` connection feeds: appends and projection passes.
#[derive(Debug)]
struct Listening {
    appended: watch::Sender<u64>,
    checkpoints: watch::Sender<u64>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The payload of the notification a projection pass sends on commit (appends send
/// an empty one).
pub(crate) const CHECKPOINT_MOVED: &str = "checkpoint";

/// Where a [`PgStore`] gets its connections.
#[derive(Debug, Clone)]
enum Connections {
    /// A URL: the store makes a pool of its own.
    Url(String),
    /// The application's own pool.
    Pool(PgPool),
}

/// How to open a [`PgStore`]: the same shape as
/// [`SqliteOptions`](crate::sqlite::SqliteOptions).
///
/// ```no_run
/// # async fn demo(pool: sqlx::PgPool) -> Result<(), es::StoreError> {
/// use es::postgres::{PgOptions, PgStore};
///
/// // A pool of its own, from a URL, with the default table prefix `es_`:
/// let store = PgStore::open("postgres://postgres@127.0.0.1/test?sslmode=verify-full").await?;
/// // The application's own pool, and tables named `billing_events`, ...:
/// let store = PgOptions::with_pool(pool).table_prefix("billing_").open().await?;
/// # Ok(()) }
/// ```
///
/// The URL's `sslmode` chooses TLS (rustls, with the system's root certificates):
/// `prefer` (the default) encrypts when the server offers it; `require` refuses a
/// server without TLS but does not verify its certificate; `verify-ca` and
/// `verify-full` also verify the certificate (and, for `verify-full`, the host name),
/// against `sslrootcert=<file>` when given. Use `verify-full` for a server reached over
/// a network you do not control.
#[derive(Debug, Clone)]
pub struct PgOptions {
    connections: Connections,
    table_prefix: String,
    max_connections: u32,
    connect_timeout: std::time::Duration,
}

impl PgOptions {
    /// Options for the server at `url`: a pool of up to 10 connections.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            connections: Connections::Url(url.into()),
            table_prefix: "es_".into(),
            max_connections: 10,
            connect_timeout: std::time::Duration::from_secs(30),
        }
    }

    /// Options for the application's own pool, so that its transactions and the
    /// store's share connections.
    #[must_use]
    pub fn with_pool(pool: PgPool) -> Self {
        Self {
            connections: Connections::Pool(pool),
            table_prefix: "es_".into(),
            max_connections: 10,
            connect_timeout: std::time::Duration::from_secs(30),
        }
    }

    /// The prefix of every table `es` creates (default `es_`): 1 to 32 ASCII letters,
    /// digits or underscores.
    #[must_use]
    pub fn table_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.table_prefix = prefix.into();
        self
    }

    /// The size of the pool the store makes from a URL (default 10; ignored with
    /// [`with_pool`](Self::with_pool)).
    #[must_use]
    pub fn max_connections(mut self, connections: u32) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// How long the pool made from a URL waits for a connection before giving up
    /// (default 30 seconds, retrying meanwhile; ignored with
    /// [`with_pool`](Self::with_pool)). A tool that should fail fast on a server that
    /// is down sets a few seconds.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    async fn pool(&self, read_only: bool) -> Result<PgPool, StoreError> {
        match &self.connections {
            Connections::Pool(pool) => Ok(pool.clone()),
            Connections::Url(url) => {
                let mut options: PgConnectOptions = url.parse().map_err(backend)?;
                if read_only {
                    // The server refuses every write in these sessions.
                    options = options.options([("default_transaction_read_only", "on")]);
                }
                PgPoolOptions::new()
                    .max_connections(self.max_connections)
                    .acquire_timeout(self.connect_timeout)
                    .connect_with(options)
                    .await
                    .map_err(backend)
            }
        }
    }

    /// Opens the store read-only: nothing is created or migrated, and (for a store
    /// made from a URL) the server refuses every write in its sessions. Refuses a
    /// database without the tables and a schema other than this release's (older:
    /// migrate it first; newer: upgrade `es`). For tools that inspect a store services
    /// are using.
    pub async fn open_read_only(self) -> Result<PgStore, StoreError> {
        let sql = Sql::new(&self.table_prefix)?;
        let pool = self.pool(true).await?;
        let mut connection = pool.acquire().await.map_err(backend)?;
        let database = format!("the database (tables {}*)", self.table_prefix);
        sql.status(&mut connection).await?.require_current("postgres", &database)?;
        drop(connection);
        Ok(PgStore { pool, sql: Arc::new(sql), listening: Arc::default() })
    }

    /// Where the database's schema stands compared with this release's, without
    /// creating or changing anything.
    pub async fn schema_status(self) -> Result<crate::admin::SchemaStatus, StoreError> {
        let sql = Sql::new(&self.table_prefix)?;
        let pool = self.pool(true).await?;
        let mut connection = pool.acquire().await.map_err(backend)?;
        sql.status(&mut connection).await
    }

    /// Opens the store: connects, then creates or migrates the schema.
    pub async fn open(self) -> Result<PgStore, StoreError> {
        let sql = Sql::new(&self.table_prefix)?;
        let pool = self.pool(false).await?;
        let mut connection = pool.acquire().await.map_err(backend)?;
        sql.migrate(&mut connection).await?;
        drop(connection);
        Ok(PgStore { pool, sql: Arc::new(sql), listening: Arc::default() })
    }
}

impl PgStore {
    /// Opens the store at `url` with default options (see [`PgOptions`], also for
    /// TLS): a pool of up to 10 connections, the table prefix `es_`, the schema
    /// created or migrated.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        PgOptions::new(url).open().await
    }

    /// The pool, for the application's own queries and transactions.
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Begins a transaction for appends (and the application's own writes), with the
    /// append lock taken in the same round trip as `BEGIN`.
    ///
    /// Any transaction of the pool can append through [`append_in`](Self::append_in);
    /// one that writes something else before its first append costs that append one
    /// more round trip (it takes the lock, then a commit-order key from a snapshot
    /// taken after it; see [`read_horizon`](Self::read_horizon)). A transaction begun
    /// here holds the lock before it writes anything, so its appends never pay that.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
        self.pool.begin_with(AssertSqlSafe(self.sql.begin.clone())).await.map_err(backend)
    }

    /// The full name of one of the store's tables (`events`, `outbox`,
    /// `checkpoints`, `skipped`, `snapshots`, `views`), with the prefix.
    #[must_use]
    pub fn table(&self, name: &str) -> String {
        format!("{}{name}", self.sql.prefix)
    }

    /// Appends to a stream inside the caller's transaction (or on any connection),
    /// with the events' outbox rows, in one statement. Nothing is visible to readers
    /// before the caller commits; readers of the global log wait for this transaction
    /// from then on until it ends.
    ///
    /// The first append of a transaction that already wrote something else takes one
    /// more statement (see [`begin`](Self::begin)); under REPEATABLE READ or
    /// SERIALIZABLE isolation it also reads a fresh snapshot on another connection
    /// (an idle one of the pool, else a new one).
    pub async fn append_in(
        &self,
        connection: &mut PgConnection,
        stream_type: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        let span = tracing::debug_span!("append", stream_type, stream_id, events = events.len());
        self.append_traced(connection, stream_type, stream_id, expected, events).instrument(span).await
    }

    async fn append_traced(
        &self,
        connection: &mut PgConnection,
        stream_type: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        crate::store::check_append(stream_type, stream_id, &events)?;
        let count = events.len();
        let mut ids = Vec::with_capacity(count);
        let mut types = Vec::with_capacity(count);
        let mut versions = Vec::with_capacity(count);
        let mut times = Vec::with_capacity(count);
        let mut metadata = Vec::with_capacity(count);
        let mut payloads = Vec::with_capacity(count);
        for event in events {
            ids.push(event.event_id);
            versions.push(i32::try_from(event.schema_version).map_err(|_| StoreError::Unstorable {
                stream_type: stream_type.to_owned(),
                stream_id: stream_id.to_owned(),
                event_type: event.event_type.clone(),
                reason: format!("schema version {} exceeds PostgreSQL's INT", event.schema_version),
            })?);
            times.push(event.occurred_at.as_unix_micros());
            metadata.push(if event.metadata.is_empty() {
                None
            } else {
                Some(serde_json::to_string(&event.metadata).map_err(|error| StoreError::Unstorable {
                    stream_type: stream_type.to_owned(),
                    stream_id: stream_id.to_owned(),
                    event_type: event.event_type.clone(),
                    reason: format!("metadata does not encode: {error}"),
                })?)
            });
            types.push(event.event_type);
            payloads.push(event.payload);
        }
        let expected_sql = match expected {
            ExpectedVersion::Any => None,
            ExpectedVersion::NoStream => Some(0_i64),
            ExpectedVersion::Exact(version) => Some(i64::try_from(version).unwrap_or(i64::MAX)),
        };
        let statement = |lock_held: bool, floor: String| {
            sqlx::query(AssertSqlSafe(Arc::clone(&self.sql.append)))
                .bind(stream_type)
                .bind(stream_id)
                .bind(expected_sql)
                .bind(&ids)
                .bind(&types)
                .bind(&versions)
                .bind(&times)
                .bind(&metadata)
                .bind(&payloads)
                .bind(&self.sql.channel)
                .bind(lock_held)
                .bind(floor)
        };
        let append_error = |error| self.append_error(error, stream_type, stream_id, expected, &ids);
        let mut row = statement(false, "0".into()).fetch_one(&mut *connection).await.map_err(append_error)?;
        // A transaction that wrote before it took the append lock: the statement took
        // the lock and wrote nothing; it runs again with a key taken after the lock
        // (see the `append` statement in schema.rs).
        if row.try_get::<bool, _>(6).map_err(backend)? {
            let isolation: String = row.try_get(7).map_err(backend)?;
            let floor = if isolation == "read committed" { "0".into() } else { self.fresh_key_floor().await? };
            row = statement(true, floor).fetch_one(&mut *connection).await.map_err(append_error)?;
        }
        let corrupt_at = |version: i64| StoreError::Corrupt {
            location: format!("stream {stream_type}/{stream_id}, version {version}"),
            reason: format!("stream version {version}: versions start at 1"),
        };
        // A row below version 1 (written behind the library's back) stops the append:
        // the statement wrote nothing.
        let lowest: i64 = row.try_get(5).map_err(backend)?;
        if lowest < 1 {
            return Err(corrupt_at(lowest));
        }
        let actual: i64 = row.try_get(0).map_err(backend)?;
        let actual = stored::current_version(actual).map_err(|_| corrupt_at(actual))?;
        let younger_writer: bool = row.try_get(1).map_err(backend)?;
        let transaction: Option<String> = row.try_get(2).map_err(backend)?;
        let transaction = transaction.ok_or_else(|| {
            backend(format!("appending to stream {stream_type}/{stream_id}: the append lock was not held"))
        })?;
        let positions: Vec<i64> = row.try_get(3).map_err(backend)?;
        if younger_writer && expected.matches(actual) {
            return Err(StoreError::StaleTransaction {
                stream_type: stream_type.to_owned(),
                stream_id: stream_id.to_owned(),
                version: actual,
            });
        }
        if !expected.matches(actual) || younger_writer {
            return Err(StoreError::Conflict {
                stream_type: stream_type.to_owned(),
                stream_id: stream_id.to_owned(),
                expected,
                actual,
            });
        }
        // The statement skips its inserts when the stream moved under it: never report
        // success for fewer rows than were given.
        crate::store::check_written(stream_type, stream_id, count, positions.len())?;
        let corrupt =
            |reason: String| StoreError::Corrupt { location: format!("stream {stream_type}/{stream_id}"), reason };
        let commit = stored::commit(&transaction).map_err(corrupt)?;
        let cursors = positions
            .into_iter()
            .map(|position| Ok(Cursor { commit, position: stored::position(position).map_err(corrupt)? }))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(Appended { version: actual + cursors.len() as u64, cursors })
    }

    /// The smallest commit-order key an append may take from now on, read on another
    /// connection: the `xmax` of a fresh snapshot, minus one. For a transaction under
    /// REPEATABLE READ or SERIALIZABLE isolation that wrote before it took the append
    /// lock, whose own snapshot is older than the lock.
    async fn fresh_key_floor(&self) -> Result<String, StoreError> {
        let query = "SELECT (pg_snapshot_xmax(pg_current_snapshot())::text::int8 - 1)::text";
        // Another connection of the pool if one is idle, else one of its own: waiting
        // for the pool while holding one of its connections could wait forever.
        if let Some(mut connection) = self.pool.try_acquire() {
            return sqlx::query_scalar(query).fetch_one(&mut *connection).await.map_err(backend);
        }
        let mut connection: PgConnection =
            <PgConnection as sqlx::Connection>::connect_with(&self.pool.connect_options()).await.map_err(backend)?;
        let floor = sqlx::query_scalar(query).fetch_one(&mut connection).await.map_err(backend)?;
        sqlx::Connection::close(connection).await.map_err(backend)?;
        Ok(floor)
    }

    /// Names what went wrong with an append: a race is a conflict, a repeated id a
    /// duplicate, anything else the backend's error.
    fn append_error(
        &self,
        error: sqlx::Error,
        stream_type: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        ids: &[Uuid],
    ) -> StoreError {
        match &error {
            sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
                if db.constraint() == Some(format!("{}_event_id_key", self.sql.events).as_str()) {
                    // The detail names the key in the server's language; the id itself
                    // is printed the same in every language, so look for ours in it.
                    let detail = db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().and_then(|e| e.detail());
                    let duplicate = detail
                        .and_then(|detail| ids.iter().find(|id| detail.contains(&id.to_string())))
                        .or_else(|| ids.first())
                        .copied()
                        .unwrap_or_default();
                    StoreError::DuplicateEventId { event_id: duplicate }
                } else {
                    // A concurrent transaction appended the same version and
                    // committed first; the stream is now at least one further.
                    let at_least = match expected {
                        ExpectedVersion::Exact(version) => version + 1,
                        ExpectedVersion::NoStream | ExpectedVersion::Any => 1,
                    };
                    StoreError::Conflict {
                        stream_type: stream_type.to_owned(),
                        stream_id: stream_id.to_owned(),
                        expected,
                        actual: at_least,
                    }
                }
            }
            // Under SERIALIZABLE isolation a race on the stream is a serialization
            // failure: the same situation as a conflict, and retried the same way.
            sqlx::Error::Database(db) if db.code().as_deref() == Some("40001") => StoreError::Conflict {
                stream_type: stream_type.to_owned(),
                stream_id: stream_id.to_owned(),
                expected,
                actual: match expected {
                    ExpectedVersion::Exact(version) => version + 1,
                    ExpectedVersion::NoStream | ExpectedVersion::Any => 1,
                },
            },
            _ => backend(error),
        }
    }

    /// Changes whenever any process appends to this database (through `LISTEN`).
    /// The listening task holds one connection of the pool while anyone watches, ends
    /// when the last watcher is gone, and starts again with the next one.
    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.listen_to(|listening| &listening.appended)
    }

    /// Changes whenever a projection pass commits in any process.
    pub(crate) fn subscribe_checkpoints(&self) -> watch::Receiver<u64> {
        self.listen_to(|listening| &listening.checkpoints)
    }

    fn listen_to(&self, watch: impl FnOnce(&Listening) -> &watch::Sender<u64>) -> watch::Receiver<u64> {
        let mut listening = self.listening.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let listening = listening.get_or_insert_with(|| Listening {
            appended: watch::channel(0).0,
            checkpoints: watch::channel(0).0,
            task: None,
        });
        let receiver = watch(listening).subscribe();
        if listening.task.as_ref().is_none_or(tokio::task::JoinHandle::is_finished) {
            let (pool, channel) = (self.pool.clone(), self.sql.channel.clone());
            let watches = (listening.appended.clone(), listening.checkpoints.clone());
            listening.task = Some(tokio::spawn(listen(pool, channel, watches)));
        }
        receiver
    }
}

/// Forwards notifications of appends and projection passes to their watchers,
/// reconnecting after failures, until the last watcher is gone.
async fn listen(pool: PgPool, channel: String, (appended, checkpoints): (watch::Sender<u64>, watch::Sender<u64>)) {
    let unwatched = || appended.is_closed() && checkpoints.is_closed();
    while !unwatched() {
        let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for appends; relays and projections poll meanwhile");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Err(error) = listener.listen(&channel).await {
            tracing::warn!(%error, "cannot listen for appends; relays and projections poll meanwhile");
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            continue;
        }
        loop {
            tokio::select! {
                () = async { appended.closed().await; checkpoints.closed().await } => return,
                received = listener.recv() => match received {
                    Ok(notification) => {
                        let watch = if notification.payload() == CHECKPOINT_MOVED { &checkpoints } else { &appended };
                        watch.send_modify(|count| *count = count.wrapping_add(1));
                    }
                    Err(error) => {
                        tracing::warn!(%error, "lost the connection listening for appends; reconnecting");
                        break;
                    }
                },
            }
        }
    }
}

pub(crate) fn event_from_row(row: &PgRow) -> Result<StoredEvent, StoreError> {
    event_from_row_at(row, 0)
}

/// Reads the [`schema::EVENT_COLUMNS`] of a row, starting at column `at`, refusing
/// values the library would never have written.
pub(crate) fn event_from_row_at(row: &PgRow, at: usize) -> Result<StoredEvent, StoreError> {
    let position: i64 = row.try_get(at + 1).map_err(backend)?;
    let stream_type: String = row.try_get(at + 3).map_err(backend)?;
    let stream_id: String = row.try_get(at + 4).map_err(backend)?;
    let stream_version: i64 = row.try_get(at + 5).map_err(backend)?;
    let corrupt = |reason: String| StoreError::Corrupt {
        location: stored::event_location(&stream_type, &stream_id, stream_version, position),
        reason,
    };
    let commit: i64 = row.try_get(at).map_err(backend)?;
    let schema_version: i32 = row.try_get(at + 7).map_err(backend)?;
    let metadata: Option<&str> = row.try_get(at + 9).map_err(backend)?;
    let stream_version = stored::version(stream_version).map_err(&corrupt)?;
    let cursor = Cursor {
        commit: u64::try_from(commit).map_err(|_| corrupt(format!("transaction id {commit}")))?,
        position: stored::position(position).map_err(&corrupt)?,
    };
    Ok(StoredEvent {
        event_id: row.try_get::<Uuid, _>(at + 2).map_err(backend)?,
        stream_version,
        cursor,
        event_type: row.try_get(at + 6).map_err(backend)?,
        schema_version: stored::schema_version(schema_version.into()).map_err(&corrupt)?,
        occurred_at: Timestamp::from_unix_micros(row.try_get(at + 8).map_err(backend)?),
        metadata: stored::metadata(metadata).map_err(&corrupt)?,
        payload: row.try_get(at + 10).map_err(backend)?,
        stream_type,
        stream_id,
    })
}

impl EventStore for PgStore {
    async fn append(
        &self,
        stream_type: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        // One statement, so its own transaction: no BEGIN and COMMIT round trips.
        let mut connection = self.pool.acquire().await.map_err(backend)?;
        self.append_in(&mut connection, stream_type, stream_id, expected, events).await
    }

    /// The key is inserted first, in the append's transaction: a concurrent retry
    /// with the same key waits on it until this transaction ends, then finds it
    /// recorded and appends nothing.
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
        // Begun with the append lock: the key's insert comes before the first append.
        let mut tx = self.begin().await?;
        let taken = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {} (idempotency_key, stream_type, stream_id, first_version, last_version, recorded_at)
             VALUES ($1, $2, $3, 0, 0, $4) ON CONFLICT (idempotency_key) DO NOTHING",
            self.sql.commands
        )))
        .bind(key)
        .bind(stream_type)
        .bind(stream_id)
        .bind(crate::clock::now_micros())
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        if taken == 0 {
            tx.rollback().await.map_err(backend)?;
            let recorded = self.recorded_command(key).await?.ok_or_else(|| StoreError::Corrupt {
                location: format!("idempotency key {key:?}"),
                reason: "the key is taken, yet no command is recorded under it".to_owned(),
            })?;
            return Ok(AppendOnce::Recorded(recorded));
        }
        let appended = self.append_in(&mut tx, stream_type, stream_id, expected, events).await?;
        if appended.cursors.is_empty() {
            // Nothing was decided: nothing is recorded, the key included.
            tx.rollback().await.map_err(backend)?;
            return Ok(AppendOnce::Appended(appended));
        }
        let first_version = appended.version + 1 - appended.cursors.len() as u64;
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {} SET first_version = $2, last_version = $3 WHERE idempotency_key = $1",
            self.sql.commands
        )))
        .bind(key)
        .bind(i64::try_from(first_version).unwrap_or(i64::MAX))
        .bind(i64::try_from(appended.version).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        Ok(AppendOnce::Appended(appended))
    }

    async fn recorded_command(&self, key: &str) -> Result<Option<RecordedCommand>, StoreError> {
        crate::idempotency::check_key(key)?;
        let row: Option<(String, String, i64, i64, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT stream_type, stream_id, first_version, last_version, recorded_at FROM {} WHERE idempotency_key = $1",
            self.sql.commands
        )))
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|(stream_type, stream_id, first, last, recorded_at)| {
            stored::command(key, stream_type, stream_id, first, last, recorded_at)
        })
        .transpose()
    }

    async fn prune_commands(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        let pruned = sqlx::query(AssertSqlSafe(format!("DELETE FROM {} WHERE recorded_at < $1", self.sql.commands)))
            .bind(cutoff.as_unix_micros())
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(pruned.rows_affected())
    }

    /// Appends by any process, through `LISTEN`.
    fn watch_appends(&self) -> watch::Receiver<u64> {
        self.subscribe()
    }

    async fn read_stream(
        &self,
        stream_type: &str,
        stream_id: &str,
        from_version: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        crate::store::check_stream(stream_type, stream_id)?;
        let range = StreamRange::from_version(from_version);
        let rows = sqlx::query(AssertSqlSafe(Arc::clone(&self.sql.read_stream[range.index()])))
            .bind(stream_type)
            .bind(stream_id)
            .bind(range.first_bound())
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        let events = rows.iter().map(event_from_row).collect::<Result<Vec<_>, _>>()?;
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
        let rows = sqlx::query(AssertSqlSafe(Arc::clone(&self.sql.read_stream_page)))
            .bind(stream_type)
            .bind(stream_id)
            .bind(i64::try_from(from_version).unwrap_or(i64::MAX))
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(event_from_row).collect()
    }

    async fn read_all(&self, after: Cursor, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        read_all(&self.sql, &mut *self.pool.acquire().await.map_err(backend)?, after, limit).await
    }

    async fn load<A: Aggregate>(&self, stream_id: &str) -> Result<Loaded<A>, LoadError> {
        self.fold_stream(stream_id).await
    }

    async fn read_snapshot(&self, stream_type: &str, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        crate::store::check_stream(stream_type, stream_id)?;
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT stream_version, schema_version, state FROM {} WHERE stream_type = $1 AND stream_id = $2",
            self.sql.snapshots
        )))
        .bind(stream_type)
        .bind(stream_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|row| {
            let corrupt = |reason: String| StoreError::Corrupt {
                location: format!("snapshot of stream {stream_type}/{stream_id}"),
                reason,
            };
            Ok(Snapshot {
                stream_version: stored::snapshot_version(row.try_get(0).map_err(backend)?).map_err(corrupt)?,
                schema_version: stored::schema_version(row.try_get::<i32, _>(1).map_err(backend)?.into())
                    .map_err(corrupt)?,
                state: row.try_get(2).map_err(backend)?,
            })
        })
        .transpose()
    }

    async fn write_snapshot(&self, stream_type: &str, stream_id: &str, snapshot: Snapshot) -> Result<(), StoreError> {
        crate::store::check_stream(stream_type, stream_id)?;
        let snapshots = &self.sql.snapshots;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {snapshots} (stream_type, stream_id, stream_version, schema_version, state, taken_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (stream_type, stream_id) DO UPDATE SET
                 stream_version = excluded.stream_version, schema_version = excluded.schema_version,
                 state = excluded.state, taken_at = excluded.taken_at
             WHERE excluded.stream_version >= {snapshots}.stream_version"
        )))
        .bind(stream_type)
        .bind(stream_id)
        .bind(i64::try_from(snapshot.stream_version).unwrap_or(i64::MAX))
        .bind(i32::try_from(snapshot.schema_version).unwrap_or(i32::MAX))
        .bind(snapshot.state)
        .bind(crate::clock::now_micros())
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }
}

/// A column of type `xid8`, from its binary form (8 bytes, big-endian): sqlx has no
/// type for it, and a cast to text on the server would cost every row.
fn xid8(row: &PgRow, index: usize) -> Result<u64, String> {
    use sqlx::ValueRef;
    let value = row.try_get_raw(index).map_err(|error| format!("transaction id: {error}"))?;
    if value.is_null() {
        return Err("transaction id is NULL".to_owned());
    }
    let bytes = value.as_bytes().map_err(|error| format!("transaction id: {error}"))?;
    <[u8; 8]>::try_from(bytes)
        .map(u64::from_be_bytes)
        .map_err(|_| format!("transaction id of {} bytes, not 8", bytes.len()))
}

impl PgStore {
    /// Folds while the rows stream in, decoding each payload from the row's own
    /// buffer, reading only the columns a rebuild needs.
    async fn fold_stream<A: Aggregate>(&self, stream_id: &str) -> Result<Loaded<A>, LoadError> {
        use futures_util::TryStreamExt;
        crate::store::check_stream(A::stream_type(), stream_id)?;
        let mut loaded = crate::snapshot::starting_point::<A, Self>(self, stream_id).await?;
        let range = StreamRange::from_version(loaded.version().saturating_add(1));
        let mut rows = sqlx::query(AssertSqlSafe(Arc::clone(&self.sql.load_stream[range.index()])))
            .bind(A::stream_type())
            .bind(stream_id)
            .bind(range.first_bound())
            .fetch(&self.pool);
        while let Some(row) = rows.try_next().await.map_err(backend)? {
            let position: i64 = row.try_get(1).map_err(backend)?;
            let stream_version: i64 = row.try_get(3).map_err(backend)?;
            let corrupt = |reason: String| StoreError::Corrupt {
                location: stored::event_location(A::stream_type(), stream_id, stream_version, position),
                reason,
            };
            let commit = xid8(&row, 0).map_err(&corrupt)?;
            let schema_version: i32 = row.try_get(5).map_err(backend)?;
            let metadata: Option<&str> = row.try_get(7).map_err(backend)?;
            // Every stored value is checked, also those an aggregate without envelopes
            // does not need (`fold_parts` then only skips building the envelope).
            let parts = EventParts {
                event_id: row.try_get(2).map_err(backend)?,
                stream_version: stored::version(stream_version).map_err(&corrupt)?,
                cursor: Cursor { commit, position: stored::position(position).map_err(&corrupt)? },
                event_type: row.try_get(4).map_err(backend)?,
                schema_version: stored::schema_version(schema_version.into()).map_err(&corrupt)?,
                occurred_at: Timestamp::from_unix_micros(row.try_get(6).map_err(backend)?),
                metadata: stored::metadata(metadata).map_err(&corrupt)?,
                payload: row.try_get(8).map_err(backend)?,
            };
            loaded.fold_parts(parts)?;
        }
        Ok(loaded)
    }
}

pub(crate) async fn read_all(
    sql: &Sql,
    connection: &mut PgConnection,
    after: Cursor,
    limit: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    read_log(sql, connection, after, limit).await?.into_iter().map(|(_, event)| event).collect()
}

/// One row of the global log: where it stands, and the event or why it cannot be read.
pub(crate) type LogRow = (Cursor, Result<StoredEvent, StoreError>);

/// Reads the global log like [`read_all`], but row by row: an unreadable row is
/// returned with its error, in its place, for a reader that can skip it.
pub(crate) async fn read_log(
    sql: &Sql,
    connection: &mut PgConnection,
    after: Cursor,
    limit: usize,
) -> Result<Vec<LogRow>, StoreError> {
    let rows = sqlx::query(AssertSqlSafe(Arc::clone(&sql.read_all)))
        .bind(after.commit.to_string())
        .bind(i64::try_from(after.position).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(connection)
        .await
        .map_err(backend)?;
    rows.iter()
        .map(|row| {
            // Where the row stands must be readable, or nothing after it can be.
            let commit: i64 = row.try_get(0).map_err(backend)?;
            let position: i64 = row.try_get(1).map_err(backend)?;
            let corrupt = |reason: String| StoreError::Corrupt { location: format!("position {position}"), reason };
            let cursor = Cursor {
                commit: u64::try_from(commit).map_err(|_| corrupt(format!("transaction id {commit}")))?,
                position: stored::position(position).map_err(corrupt)?,
            };
            Ok((cursor, event_from_row(row)))
        })
        .collect()
}

pub(crate) fn backend(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> StoreError {
    StoreError::Backend { backend: "postgres", source: error.into() }
}

impl From<sqlx::Error> for StoreError {
    /// Lets `?` carry the caller's own SQL errors out of code that also appends.
    fn from(error: sqlx::Error) -> Self {
        backend(error)
    }
}
