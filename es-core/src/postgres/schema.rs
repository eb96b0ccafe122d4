//! The tables `es` keeps in a PostgreSQL database, created and migrated by the
//! library, and the SQL it runs on them (built once per store, with the validated
//! table prefix).

use std::sync::Arc;

use sqlx::{AssertSqlSafe, PgConnection};

use crate::store::StoreError;

/// Table names and statements, with the prefix applied.
#[derive(Debug)]
pub(crate) struct Sql {
    pub(crate) prefix: String,
    pub(crate) events: String,
    pub(crate) outbox: String,
    pub(crate) checkpoints: String,
    pub(crate) skipped: String,
    pub(crate) relay_lease: String,
    pub(crate) snapshots: String,
    pub(crate) views: String,
    pub(crate) commands: String,
    pub(crate) subscriptions: String,
    schema: String,
    /// The channel appends notify on commit, so that relays and projections in any
    /// process wake at once.
    pub(crate) channel: String,
    pub(crate) append: Arc<str>,
    /// Reads of a stream from its start and from a later version: see [`crate::sql::stream_reads`].
    pub(crate) read_stream: [Arc<str>; 2],
    pub(crate) read_all: Arc<str>,
    /// What rebuilding one stream needs, and no more.
    /// The same, with only the columns a fold needs.
    pub(crate) load_stream: [Arc<str>; 2],
}

// The transaction id is read as a number under another name: sorting or comparing by
// the name `transaction_id` must reach the xid8 column, never a converted copy (as
// text, "100000" sorts before "99999").
pub(crate) const EVENT_COLUMNS: &str = "transaction_id::text::int8 AS commit_number, position, event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, metadata, payload";

impl Sql {
    pub(crate) fn new(prefix: &str) -> Result<Self, StoreError> {
        crate::sql::validate_table_prefix(prefix, "postgres")?;
        let events = format!("{prefix}events");
        let outbox = format!("{prefix}outbox");
        let append = format!(
            "WITH last AS (
                 SELECT stream_version, transaction_id FROM {events}
                 WHERE stream_type = $1 AND stream_id = $2
                 ORDER BY stream_version DESC LIMIT 1
             ), first AS (
                 SELECT stream_version FROM {events}
                 WHERE stream_type = $1 AND stream_id = $2
                 ORDER BY stream_version LIMIT 1
             ), current AS (
                 SELECT COALESCE((SELECT stream_version FROM last), 0) AS version,
                        COALESCE((SELECT stream_version FROM first), 1) AS lowest,
                        COALESCE((SELECT transaction_id > pg_current_xact_id() FROM last), false) AS younger_writer
             ), inserted AS (
                 INSERT INTO {events} (event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, metadata, payload)
                 SELECT e.event_id, $1, $2, current.version + e.ord, e.event_type, e.schema_version, e.occurred_at, e.metadata, e.payload
                 FROM current, UNNEST($4::uuid[], $5::text[], $6::int4[], $7::int8[], $8::text[], $9::text[])
                      WITH ORDINALITY AS e(event_id, event_type, schema_version, occurred_at, metadata, payload, ord)
                 WHERE ($3::int8 IS NULL OR current.version = $3) AND NOT current.younger_writer AND current.lowest >= 1
                 ORDER BY e.ord
                 RETURNING position, stream_version
             ), queued AS (
                 INSERT INTO {outbox} (position, stream_type, stream_id) SELECT position, $1, $2 FROM inserted
             )
             SELECT current.version, current.younger_writer, pg_current_xact_id()::text,
                    COALESCE((SELECT array_agg(position ORDER BY stream_version) FROM inserted), '{{}}'),
                    pg_notify($10, '')::text, current.lowest
             FROM current"
        );
        let read_stream = crate::sql::stream_reads(EVENT_COLUMNS, &events, ["$1", "$2", "$3"]);
        // Commit-order-safe: only transactions below the snapshot's xmin, which have
        // all finished, are read; a transaction still running (even one that took its
        // positions earlier) is read later, after the cursor, never skipped.
        let read_all = format!(
            "SELECT {EVENT_COLUMNS} FROM {events}
             WHERE (transaction_id, position) > ($1::text::xid8, $2)
               AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())
             ORDER BY {events}.transaction_id, {events}.position LIMIT $3"
        );
        let load_columns = "transaction_id::text::int8 AS commit_number, position, event_id, stream_version, event_type, schema_version, occurred_at, metadata, payload";
        let load_stream = crate::sql::stream_reads(load_columns, &events, ["$1", "$2", "$3"]);
        Ok(Self {
            prefix: prefix.to_owned(),
            load_stream: load_stream.map(Arc::from),
            checkpoints: format!("{prefix}checkpoints"),
            skipped: format!("{prefix}skipped"),
            relay_lease: format!("{prefix}relay_lease"),
            snapshots: format!("{prefix}snapshots"),
            views: format!("{prefix}views"),
            commands: format!("{prefix}commands"),
            subscriptions: format!("{prefix}subscriptions"),
            schema: format!("{prefix}schema"),
            channel: format!("{prefix}appended"),
            append: append.into(),
            read_stream: read_stream.map(Arc::from),
            read_all: read_all.into(),
            events,
            outbox,
        })
    }

    /// The migrations, in order. Never edit a released one: add the next.
    fn migrations(&self) -> Vec<String> {
        let Sql {
            events, outbox, checkpoints, skipped, relay_lease, snapshots, views, commands, subscriptions, ..
        } = self;
        vec![
            format!(
            "CREATE TABLE {events} (
                position BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
                event_id UUID NOT NULL UNIQUE,
                stream_type TEXT NOT NULL,
                stream_id TEXT NOT NULL,
                stream_version BIGINT NOT NULL,
                event_type TEXT NOT NULL,
                schema_version INT NOT NULL,
                -- microseconds since the Unix epoch, exactly as recorded
                occurred_at BIGINT NOT NULL,
                metadata TEXT,
                -- JSON text, kept byte for byte (jsonb would drop the sign of -0.0)
                payload TEXT NOT NULL,
                UNIQUE (stream_type, stream_id, stream_version)
            );
            CREATE INDEX {events}_commit_order ON {events} (transaction_id, position);
            CREATE TABLE {outbox} (
                position BIGINT PRIMARY KEY REFERENCES {events} (position),
                stream_type TEXT NOT NULL,
                stream_id TEXT NOT NULL,
                attempts INT NOT NULL DEFAULT 0,
                blocked_until BIGINT,
                parked BOOLEAN NOT NULL DEFAULT false,
                last_error TEXT
            );
            CREATE INDEX {outbox}_blocked ON {outbox} (stream_type, stream_id, position) WHERE blocked_until IS NOT NULL;
            CREATE TABLE {skipped} (
                position BIGINT PRIMARY KEY,
                consumer TEXT NOT NULL,
                reason TEXT NOT NULL,
                skipped_at BIGINT NOT NULL
            );
            CREATE TABLE {checkpoints} (
                projection TEXT PRIMARY KEY,
                transaction_id xid8 NOT NULL DEFAULT '0',
                position BIGINT NOT NULL DEFAULT 0,
                event_id UUID,
                updated_at BIGINT NOT NULL DEFAULT 0
            );
            CREATE TABLE {relay_lease} (
                id INT PRIMARY KEY CHECK (id = 1),
                owner TEXT NOT NULL,
                expires_at BIGINT NOT NULL
            );"
            ),
            format!(
                "CREATE TABLE {snapshots} (
                    stream_type TEXT NOT NULL,
                    stream_id TEXT NOT NULL,
                    stream_version BIGINT NOT NULL,
                    schema_version INT NOT NULL,
                    state TEXT NOT NULL,
                    taken_at BIGINT NOT NULL,
                    PRIMARY KEY (stream_type, stream_id)
                );"
            ),
            // The lease's fencing token. A lease row left by an earlier release starts at
            // generation 0; every holder from now on gets a higher one.
            format!("ALTER TABLE {relay_lease} ADD COLUMN generation BIGINT NOT NULL DEFAULT 0;"),
            // Document read models (`es::projection::View`): one JSON document per view
            // name and key, written in the transaction that moves the view's checkpoint.
            // Text, kept byte for byte, like the events' payloads.
            format!(
                "CREATE TABLE {views} (
                    view TEXT NOT NULL,
                    key TEXT NOT NULL,
                    document TEXT NOT NULL,
                    updated_at BIGINT NOT NULL,
                    PRIMARY KEY (view, key)
                );"
            ),
            // Idempotency keys, each written in the transaction of its command's events.
            format!(
                "CREATE TABLE {commands} (
                    idempotency_key TEXT PRIMARY KEY,
                    stream_type TEXT NOT NULL,
                    stream_id TEXT NOT NULL,
                    first_version BIGINT NOT NULL,
                    last_version BIGINT NOT NULL,
                    recorded_at BIGINT NOT NULL
                );
                CREATE INDEX {commands}_recorded_at ON {commands} (recorded_at);"
            ),
            // Durable subscriptions: the lease (holder, fencing generation, expiry) and
            // the cursor acknowledged under it.
            format!(
                "CREATE TABLE {subscriptions} (
                    name TEXT PRIMARY KEY,
                    owner TEXT NOT NULL,
                    generation BIGINT NOT NULL,
                    expires_at BIGINT NOT NULL,
                    transaction_id xid8 NOT NULL DEFAULT '0',
                    position BIGINT NOT NULL DEFAULT 0,
                    updated_at BIGINT NOT NULL
                );"
            ),
        ]
    }

    /// Where the database's schema stands, without changing anything.
    pub(crate) async fn status(&self, connection: &mut PgConnection) -> Result<crate::admin::SchemaStatus, StoreError> {
        // to_regclass follows the search path, as the store's own statements do.
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(&self.schema)
            .fetch_one(&mut *connection)
            .await
            .map_err(super::backend)?;
        let current: i32 = if exists {
            sqlx::query_scalar(AssertSqlSafe(format!("SELECT COALESCE(MAX(version), 0) FROM {}", self.schema)))
                .fetch_one(&mut *connection)
                .await
                .map_err(super::backend)?
        } else {
            0
        };
        Ok(crate::admin::SchemaStatus {
            current: u32::try_from(current).map_err(|_| StoreError::Corrupt {
                location: format!("table {}", self.schema),
                reason: format!("schema version {current} is negative"),
            })?,
            latest: u32::try_from(self.migrations().len()).unwrap_or(u32::MAX),
        })
    }

    /// Creates or migrates the schema. Concurrent instances serialise on an advisory
    /// lock, so exactly one of them applies each migration.
    pub(crate) async fn migrate(&self, connection: &mut PgConnection) -> Result<(), StoreError> {
        let schema = &self.schema;
        let mut tx = sqlx::Connection::begin(connection).await.map_err(super::backend)?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(&self.prefix)
            .execute(&mut *tx)
            .await
            .map_err(super::backend)?;
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TABLE IF NOT EXISTS {schema} (version INT PRIMARY KEY, applied_at BIGINT NOT NULL)"
        )))
        .execute(&mut *tx)
        .await
        .map_err(super::backend)?;
        let current: i32 = sqlx::query_scalar(AssertSqlSafe(format!("SELECT COALESCE(MAX(version), 0) FROM {schema}")))
            .fetch_one(&mut *tx)
            .await
            .map_err(super::backend)?;
        let migrations = self.migrations();
        let applied = crate::sql::check_schema_version(i64::from(current), migrations.len(), "postgres")?;
        for (version, sql) in (1..).zip(&migrations).skip(applied) {
            sqlx::raw_sql(AssertSqlSafe(sql.clone())).execute(&mut *tx).await.map_err(super::backend)?;
            sqlx::query(AssertSqlSafe(format!("INSERT INTO {schema} (version, applied_at) VALUES ($1, $2)")))
                .bind(version)
                .bind(crate::clock::now_micros())
                .execute(&mut *tx)
                .await
                .map_err(super::backend)?;
            tracing::info!(version, prefix = %self.prefix, "applied es schema migration");
        }
        tx.commit().await.map_err(super::backend)
    }
}
