//! The tables `es` keeps in a PostgreSQL database, created and migrated by the
//! library, and the SQL it runs on them (built once per store, with the validated
//! table prefix).

use std::sync::Arc;

use sqlx::{AssertSqlSafe, PgConnection};

use crate::store::StoreError;

/// The key of the append lock of the events table `events`: a fixed first half
/// (the letters `es.a`) and a hash of the table's name (FNV-1a), the same in every
/// process and release. Another application's advisory lock on the same two numbers
/// would only hold readers back while it is held, never make them skip.
fn append_lock(events: &str) -> (i32, i32) {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in events.bytes() {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    (i32::from_be_bytes(*b"es.a"), hash.cast_signed())
}

/// The append statement (see the comments inside for the commit-order key).
fn append_sql(events: &str, outbox: &str, lock: &str, is_append_lock: &str) -> String {
    // The smallest key for the transaction's next append to this table.
    let floor = format!("es.key_floor_{events}");
    // The commit-order key of the rows an append writes, and why it keeps readers
    // from skipping anything (see `horizon` below for the readers' side):
    //
    // - A transaction that has no id yet when it takes the append lock gets its id
    //   afterwards, when it inserts: its own id is the key. Ids are handed out in
    //   increasing order, so the key is at least the `xmax` of every snapshot taken
    //   before the lock, and above every horizon a reader computed without seeing
    //   the lock.
    // - A transaction that took its id before it took the lock (it wrote something
    //   else first) may have an id that readers have already passed: while it held
    //   no lock it was rightly treated as unrelated. Its key is therefore at least
    //   `xmax - 1` of a snapshot taken after the lock: every reader that did not see
    //   the lock used a horizon of at most that `xmax`, so it read keys below
    //   `xmax - 1`, or keys equal to it only from rows committed before the reader's
    //   snapshot, whose positions are below every position this append takes.
    //   This needs a snapshot taken after the lock: the statement reports `retry`
    //   and runs again (READ COMMITTED takes a new snapshot per statement; under
    //   REPEATABLE READ and SERIALIZABLE the snapshot is the transaction's, so the
    //   caller passes the `xmax` of a fresh snapshot from another connection as
    //   `$12`). A later append of a transaction that already holds the lock takes no
    //   smaller key than its first (kept in a transaction-local setting), which was
    //   either its own id taken under the lock or a fresh key.
    //   `xmax - 1` is the newest finished transaction, so once this one ends too the
    //   key is below every reader's `xmax` again and nothing waits for other traffic.
    // - Within a stream the key never goes down: the version before was committed
    //   before this statement's snapshot, so its key is below this one's, or equal
    //   with a smaller position. `younger_writer` stays as a guard.
    format!(
        "WITH before_lock AS MATERIALIZED (
             SELECT CASE WHEN pg_current_xact_id_if_assigned() IS NULL THEN false
                         ELSE NOT EXISTS (SELECT 1 FROM pg_locks WHERE pid = pg_backend_pid() AND granted AND {is_append_lock})
                    END AS late
         ), locked AS MATERIALIZED (
             SELECT late, {lock}::text AS lock FROM before_lock
         ), key AS MATERIALIZED (
             SELECT late AND NOT $11 AS retry,
                    CASE WHEN late AND NOT $11 THEN NULL
                         ELSE GREATEST(
                             pg_current_xact_id(),
                             (pg_snapshot_xmax(pg_current_snapshot())::text::int8 - 1)::text::xid8,
                             $12::text::xid8,
                             COALESCE(NULLIF(current_setting('{floor}', true), ''), '0')::xid8)
                    END AS key,
                    current_setting('transaction_isolation') AS isolation
             FROM locked
         ), last AS (
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
                    COALESCE((SELECT transaction_id > key.key FROM last), false) AS younger_writer,
                    key.key, key.retry, key.isolation,
                    CASE WHEN key.key IS NOT NULL THEN set_config('{floor}', key.key::text, true) END AS noted
             FROM key
         ), inserted AS (
             INSERT INTO {events} (transaction_id, event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, metadata, payload)
             SELECT current.key, e.event_id, $1, $2, current.version + e.ord, e.event_type, e.schema_version, e.occurred_at, e.metadata, e.payload
             FROM current, UNNEST($4::uuid[], $5::text[], $6::int4[], $7::int8[], $8::text[], $9::text[])
                  WITH ORDINALITY AS e(event_id, event_type, schema_version, occurred_at, metadata, payload, ord)
             WHERE current.key IS NOT NULL
               AND ($3::int8 IS NULL OR current.version = $3) AND NOT current.younger_writer AND current.lowest >= 1
             ORDER BY e.ord
             RETURNING position, stream_version
         ), queued AS (
             INSERT INTO {outbox} (position, stream_type, stream_id) SELECT position, $1, $2 FROM inserted
         )
         SELECT current.version, current.younger_writer, current.key::text,
                COALESCE((SELECT array_agg(position ORDER BY stream_version) FROM inserted), '{{}}'),
                CASE WHEN current.retry THEN '' ELSE pg_notify($10, '')::text END, current.lowest,
                current.retry, current.isolation, current.noted
         FROM current"
    )
}

/// The common table expressions that compute the read horizon as `horizon.h` (see
/// the comments inside), with `locks` and `open_writers` on the way.
fn horizon_ctes(is_append_lock: &str) -> String {
    // The commit-order horizon: readers read keys below it, and nothing below it
    // can still appear. It is the smallest of
    // - the `xmax` of the statement's snapshot (ids from there on had not been
    //   handed out, or had not finished, when it was taken), and
    // - the ids in the snapshot's in-progress list (`xip`), except those of
    //   transactions that are still running when `pg_locks` is read, after the
    //   snapshot, and neither hold nor wait for the append lock.
    //
    // Why an excluded transaction cannot append below the horizon: it held no
    // append lock when the reader looked, so if it appends later it takes the lock
    // after that, and its key is at least the `xmax` of a snapshot taken after the
    // lock, minus one (see `append` above), while this horizon is at most the
    // `xmax` of an earlier snapshot. A transaction that holds the lock keeps its id
    // (below its key) in the horizon; one that finished between the snapshot and
    // the look at `pg_locks` is kept too, since its rows are not in the snapshot.
    // So transactions in other databases, and those here that never append, hold
    // no reader back; a transaction that appended holds readers back until it ends.
    // `pg_locks` is read only when the snapshot lists running transactions at all,
    // and at most once per statement.
    //
    // On a standby, snapshots list no running transaction and `pg_locks` shows no
    // advisory lock of the primary: there the horizon is the snapshot's `xmin`, the
    // oldest transaction still running anywhere, as safe as ever (every key is at
    // least its transaction's id) and as slow to move as before.
    format!(
        "locks AS MATERIALIZED (
             SELECT pid, locktype, granted, transactionid::text::int8 AS xid32 FROM pg_locks
             WHERE (locktype = 'transactionid' AND mode = 'ExclusiveLock' AND granted) OR ({is_append_lock})
         ), open_writers AS MATERIALIZED (
             SELECT x FROM pg_current_snapshot() AS s, pg_snapshot_xip(s) AS x
             WHERE NOT EXISTS (
                 SELECT 1 FROM locks t
                 WHERE t.locktype = 'transactionid' AND t.xid32 = x::text::int8 % 4294967296
                   AND NOT EXISTS (SELECT 1 FROM locks a WHERE a.locktype = 'advisory' AND a.pid = t.pid))
         ), horizon AS MATERIALIZED (
             SELECT CASE WHEN pg_is_in_recovery() THEN pg_snapshot_xmin(pg_current_snapshot())
                         ELSE LEAST(pg_snapshot_xmax(pg_current_snapshot()), (SELECT min(x) FROM open_writers))
                    END AS h
         )"
    )
}

/// Table names and statements, with the prefix applied.
/// The names of the tables the store keeps, without the prefix
/// ([`PgStore::table`](super::PgStore::table) adds it), in an order that drops them
/// cleanly (the outbox refers to the events).
pub const TABLE_NAMES: [&str; 10] = [
    "outbox",
    "events",
    "checkpoints",
    "skipped",
    "relay_lease",
    "snapshots",
    "views",
    "commands",
    "subscriptions",
    "schema",
];

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
    /// `BEGIN` with the append lock taken in the same round trip. Every append holds
    /// this advisory lock (shared) from before its first event row to the end of its
    /// transaction: see [`Sql::new`] for why readers look for it.
    pub(crate) begin: String,
    pub(crate) append: Arc<str>,
    /// Reads of a stream from its start and from a later version: see [`crate::sql::stream_reads`].
    pub(crate) read_stream: [Arc<str>; 2],
    /// A page of a stream (keyset on the version), bounded to `$4` rows.
    pub(crate) read_stream_page: Arc<str>,
    pub(crate) read_all: Arc<str>,
    /// The horizon and the transactions that hold it, for [`PgStore::read_horizon`](super::PgStore::read_horizon).
    pub(crate) horizon_status: Arc<str>,
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
        let (lock_class, lock_object) = append_lock(&events);
        let lock = format!("pg_advisory_xact_lock_shared({lock_class}, {lock_object})");
        // The rows of `pg_locks` that stand for this store's append lock.
        let is_append_lock = format!(
            "locktype = 'advisory' AND classid = '{}'::oid AND objid = '{}'::oid AND objsubid = 2
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
            lock_class.cast_unsigned(),
            lock_object.cast_unsigned()
        );
        let append = append_sql(&events, &outbox, &lock, &is_append_lock);
        let read_stream = crate::sql::stream_reads(EVENT_COLUMNS, &events, ["$1", "$2", "$3"]);
        let horizon = horizon_ctes(&is_append_lock);
        // Commit-order-safe: only keys below the horizon, where every transaction that
        // may append has finished; a transaction still running (even one that took its
        // positions earlier) is read later, after the cursor, never skipped.
        let read_all = format!(
            "WITH {horizon}
             SELECT {EVENT_COLUMNS} FROM {events}
             WHERE (transaction_id, position) > ($1::text::xid8, $2)
               AND transaction_id < (SELECT h FROM horizon)
             ORDER BY {events}.transaction_id, {events}.position LIMIT $3"
        );
        let horizon_status = format!(
            "WITH {horizon}
             SELECT horizon.h::text,
                    (SELECT COUNT(*) FROM {events} WHERE transaction_id >= horizon.h),
                    w.x::text, t.pid, a.application_name, a.state,
                    (EXTRACT(EPOCH FROM a.xact_start) * 1000000)::int8,
                    (EXTRACT(EPOCH FROM a.query_start) * 1000000)::int8,
                    (EXTRACT(EPOCH FROM clock_timestamp() - a.xact_start) * 1000000)::int8,
                    EXISTS (SELECT 1 FROM locks l WHERE l.locktype = 'advisory' AND l.pid = t.pid AND NOT l.granted)
             FROM horizon
             LEFT JOIN (open_writers w
                        LEFT JOIN locks t ON t.locktype = 'transactionid' AND t.xid32 = w.x::text::int8 % 4294967296
                        LEFT JOIN pg_stat_activity a ON a.pid = t.pid)
                    ON true
             ORDER BY w.x"
        );
        // The transaction id comes as it is stored (`xid8`, read from its binary form):
        // converting it per row through text costs the server more than the fold.
        let load_columns = "transaction_id, position, event_id, stream_version, event_type, schema_version, occurred_at, metadata, payload";
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
            begin: format!("BEGIN; SELECT {lock}"),
            append: append.into(),
            // The page's own `ORDER BY ... LIMIT` makes its scan stop after `$4` rows
            // of the index, whatever the statistics say: with a limit only on the
            // merged ranges, the generic plan of a never-analysed table sorts the
            // whole rest of the stream for every page.
            read_stream_page: format!(
                "SELECT {EVENT_COLUMNS} FROM {events} WHERE stream_type = $1 AND stream_id = $2 AND stream_version < 1
                 UNION ALL
                 (SELECT {EVENT_COLUMNS} FROM {events} WHERE stream_type = $1 AND stream_id = $2 AND stream_version >= $3
                  ORDER BY stream_version LIMIT $4)
                 ORDER BY stream_version LIMIT $4"
            )
            .into(),
            read_stream: read_stream.map(Arc::from),
            read_all: read_all.into(),
            horizon_status: horizon_status.into(),
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
