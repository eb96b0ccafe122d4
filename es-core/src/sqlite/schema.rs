//! The tables `es` keeps in a SQLite database, created and migrated by the library.
//!
//! Every table name starts with a configurable prefix (`es_` by default), validated so
//! that it cannot carry SQL. Migrations are numbered and applied in order, each in its
//! own transaction, and recorded in `<prefix>schema`; a database migrated by a newer
//! release is refused rather than misread.

use rusqlite::{Connection, OptionalExtension};

use crate::store::StoreError;

/// The table names, with the prefix applied.
#[derive(Debug, Clone)]
pub(crate) struct Tables {
    pub(crate) events: String,
    pub(crate) outbox: String,
    pub(crate) checkpoints: String,
    pub(crate) skipped: String,
    pub(crate) relay_lease: String,
    pub(crate) snapshots: String,
    pub(crate) views: String,
    pub(crate) commands: String,
    pub(crate) subscriptions: String,
    pub(crate) schema: String,
}

impl Tables {
    pub(crate) fn new(prefix: &str) -> Result<Self, StoreError> {
        crate::sql::validate_table_prefix(prefix, "sqlite")?;
        Ok(Self {
            events: format!("{prefix}events"),
            outbox: format!("{prefix}outbox"),
            checkpoints: format!("{prefix}checkpoints"),
            skipped: format!("{prefix}skipped"),
            relay_lease: format!("{prefix}relay_lease"),
            snapshots: format!("{prefix}snapshots"),
            views: format!("{prefix}views"),
            commands: format!("{prefix}commands"),
            subscriptions: format!("{prefix}subscriptions"),
            schema: format!("{prefix}schema"),
        })
    }

    /// The migrations, in order. Never edit a released one: add the next.
    fn migrations(&self) -> Vec<String> {
        let Tables {
            events, outbox, checkpoints, skipped, relay_lease, snapshots, views, commands, subscriptions, ..
        } = self;
        vec![
            format!(
                "CREATE TABLE {events} (
                position INTEGER PRIMARY KEY AUTOINCREMENT,
                event_id BLOB NOT NULL UNIQUE,
                stream_type TEXT NOT NULL,
                stream_id TEXT NOT NULL,
                stream_version INTEGER NOT NULL,
                event_type TEXT NOT NULL,
                schema_version INTEGER NOT NULL,
                occurred_at INTEGER NOT NULL,
                metadata TEXT,
                payload TEXT NOT NULL,
                UNIQUE (stream_type, stream_id, stream_version)
            );
            -- The local event table's pending side: a row per event not yet
            -- acknowledged by the sink. Delivered rows are deleted, so this table only
            -- ever holds the backlog and the parked rows; the history stays in events.
            CREATE TABLE {outbox} (
                position INTEGER PRIMARY KEY REFERENCES {events}(position),
                stream_type TEXT NOT NULL,
                stream_id TEXT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                -- NULL: deliverable. A time (unix micros): retry after it. Parked rows
                -- hold i64::MAX. Later rows of the same stream wait while it is set.
                blocked_until INTEGER,
                parked INTEGER NOT NULL DEFAULT 0,
                last_error TEXT
            );
            CREATE INDEX {outbox}_blocked ON {outbox} (stream_type, stream_id, position)
                WHERE blocked_until IS NOT NULL;
            CREATE TABLE {skipped} (
                position INTEGER PRIMARY KEY,
                consumer TEXT NOT NULL,
                reason TEXT NOT NULL,
                skipped_at INTEGER NOT NULL
            );
            CREATE TABLE {checkpoints} (
                projection TEXT PRIMARY KEY,
                position INTEGER NOT NULL,
                event_id BLOB,
                updated_at INTEGER NOT NULL
            );
            CREATE TABLE {relay_lease} (
                id INTEGER PRIMARY KEY CHECK (id = 1),
                owner TEXT NOT NULL,
                expires_at INTEGER NOT NULL
            );"
            ),
            format!(
                "CREATE TABLE {snapshots} (
                    stream_type TEXT NOT NULL,
                    stream_id TEXT NOT NULL,
                    stream_version INTEGER NOT NULL,
                    schema_version INTEGER NOT NULL,
                    state TEXT NOT NULL,
                    taken_at INTEGER NOT NULL,
                    PRIMARY KEY (stream_type, stream_id)
                ) WITHOUT ROWID;"
            ),
            // The lease's fencing token. A lease row left by an earlier release starts at
            // generation 0; every holder from now on gets a higher one.
            format!("ALTER TABLE {relay_lease} ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;"),
            // Document read models (`es::projection::View`): one JSON document per view
            // name and key, written in the transaction that moves the view's checkpoint.
            format!(
                "CREATE TABLE {views} (
                    view TEXT NOT NULL,
                    key TEXT NOT NULL,
                    document TEXT NOT NULL,
                    updated_at INTEGER NOT NULL,
                    PRIMARY KEY (view, key)
                ) WITHOUT ROWID;"
            ),
            // Idempotency keys, each written in the transaction of its command's events.
            format!(
                "CREATE TABLE {commands} (
                    idempotency_key TEXT PRIMARY KEY,
                    stream_type TEXT NOT NULL,
                    stream_id TEXT NOT NULL,
                    first_version INTEGER NOT NULL,
                    last_version INTEGER NOT NULL,
                    recorded_at INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE INDEX {commands}_recorded_at ON {commands} (recorded_at);"
            ),
            // Durable subscriptions: the lease (holder, fencing generation, expiry) and
            // the cursor acknowledged under it.
            format!(
                "CREATE TABLE {subscriptions} (
                    name TEXT PRIMARY KEY,
                    owner TEXT NOT NULL,
                    generation INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL,
                    position INTEGER NOT NULL DEFAULT 0,
                    updated_at INTEGER NOT NULL
                ) WITHOUT ROWID;"
            ),
        ]
    }

    /// Where the database's schema stands, without changing anything.
    pub(crate) fn status(&self, connection: &Connection) -> Result<crate::admin::SchemaStatus, StoreError> {
        let schema = &self.schema;
        let exists: bool = connection
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                [schema],
                |row| row.get(0),
            )
            .map_err(super::backend)?;
        let current: i64 = if exists {
            connection
                .query_row(&format!("SELECT COALESCE(MAX(version), 0) FROM {schema}"), [], |row| row.get(0))
                .map_err(super::backend)?
        } else {
            0
        };
        let corrupt = |_| StoreError::Corrupt {
            location: format!("table {schema}"),
            reason: format!("schema version {current} out of range"),
        };
        Ok(crate::admin::SchemaStatus {
            current: u32::try_from(current).map_err(corrupt)?,
            latest: u32::try_from(self.migrations().len()).unwrap_or(u32::MAX),
        })
    }

    /// Creates or migrates the schema.
    pub(crate) fn migrate(&self, connection: &mut Connection) -> Result<(), StoreError> {
        let schema = &self.schema;
        connection
            .execute_batch(&format!(
                "CREATE TABLE IF NOT EXISTS {schema} (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)"
            ))
            .map_err(super::backend)?;
        let migrations = self.migrations();
        let current: i64 = connection
            .query_row(&format!("SELECT MAX(version) FROM {schema}"), [], |row| row.get::<_, Option<i64>>(0))
            .optional()
            .map_err(super::backend)?
            .flatten()
            .unwrap_or(0);
        let applied = crate::sql::check_schema_version(current, migrations.len(), "sqlite")?;
        for (version, sql) in (1..).zip(&migrations).skip(applied) {
            let tx = connection
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
                .map_err(super::backend)?;
            // Another process may have migrated while this one waited for the lock.
            let done: bool = tx
                .query_row(&format!("SELECT EXISTS (SELECT 1 FROM {schema} WHERE version = ?1)"), [version], |row| {
                    row.get(0)
                })
                .map_err(super::backend)?;
            if !done {
                tx.execute_batch(sql).map_err(super::backend)?;
                tx.execute(
                    &format!("INSERT INTO {schema} (version, applied_at) VALUES (?1, ?2)"),
                    rusqlite::params![version, super::now_micros()],
                )
                .map_err(super::backend)?;
                tracing::info!(version, "applied es schema migration");
            }
            tx.commit().map_err(super::backend)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefixes_cannot_carry_sql() {
        for bad in ["", "1es", "es;DROP TABLE x;--", "es events", "é", &"x".repeat(33)] {
            assert!(super::Tables::new(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["es_", "_x", "App2_es_"] {
            assert!(super::Tables::new(good).is_ok(), "{good:?} refused");
        }
    }
}
