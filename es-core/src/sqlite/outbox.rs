//! The outbox of a SQLite store: what the relay reads and marks.

use std::time::Duration;

use rusqlite::{OptionalExtension, params};
use tokio::sync::watch;

use super::{EVENT_COLUMNS, SqliteStore, backend, event_from_row, now_micros};
use crate::clock::Timestamp;
use crate::relay::{LeaseGeneration, Outbox, OutboxStatus, Parked, Pending, Unreadable};
use crate::sql::stored;
use crate::store::StoreError;

/// `blocked_until` of a parked row: never by itself.
const PARKED: i64 = i64::MAX;

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Refuses a relay's write unless `generation` is the lease's current one. Run inside
/// the write transaction that makes the write: SQLite lets one writer at a time in, so
/// no lease can change hands between this check and the commit.
fn check_generation(
    tx: &rusqlite::Transaction<'_>,
    tables: &super::schema::Tables,
    generation: LeaseGeneration,
) -> Result<(), StoreError> {
    let current: Option<i64> = tx
        .prepare_cached(&format!("SELECT generation FROM {} WHERE id = 1", tables.relay_lease))
        .and_then(|mut statement| statement.query_row([], |row| row.get(0)).optional())
        .map_err(backend)?;
    if current == Some(to_i64(generation.get())) { Ok(()) } else { Err(StoreError::StaleLease { generation }) }
}

impl Outbox for SqliteStore {
    async fn acquire_lease(&self, owner: &str, lease: Duration) -> Result<Option<LeaseGeneration>, StoreError> {
        let owner = owner.to_owned();
        let lease = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX);
        self.write_with_tables(move |tx, tables| {
            let now = now_micros();
            // A renewal of a live lease keeps its generation; any other taking (from
            // another owner, or after expiry or release) moves it on.
            let generation: Option<i64> = tx
                .query_row(
                    &format!(
                        "INSERT INTO {lease_table} (id, owner, expires_at, generation) VALUES (1, ?1, ?2, 1)
                         ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at,
                             generation = CASE
                                 WHEN {lease_table}.owner = excluded.owner AND {lease_table}.expires_at >= ?3
                                 THEN {lease_table}.generation
                                 ELSE {lease_table}.generation + 1 END
                         WHERE {lease_table}.owner = excluded.owner OR {lease_table}.expires_at < ?3
                         RETURNING generation",
                        lease_table = tables.relay_lease
                    ),
                    params![owner, now.saturating_add(lease), now],
                    |row| row.get(0),
                )
                .optional()
                .map_err(backend)?;
            generation
                .map(|generation| {
                    stored::count(generation, "lease generation").map(LeaseGeneration::new).map_err(|reason| {
                        StoreError::Corrupt { location: format!("table {}", tables.relay_lease), reason }
                    })
                })
                .transpose()
        })
        .await
    }

    async fn release_lease(&self, owner: &str) -> Result<(), StoreError> {
        let owner = owner.to_owned();
        // Expired, not deleted: the row keeps the generation, so the next holder's is
        // higher than every earlier one.
        self.write_with_tables(move |tx, tables| {
            tx.execute(
                &format!("UPDATE {} SET expires_at = ?2 WHERE id = 1 AND owner = ?1", tables.relay_lease),
                params![owner, i64::MIN],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn fetch(&self, limit: usize, now: Timestamp) -> Result<Vec<Pending>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read_with_tables(move |connection, tables| {
            let (outbox, events) = (&tables.outbox, &tables.events);
            let columns = EVENT_COLUMNS.split(", ").map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", ");
            // Usually nothing is blocked, and the rows can be read straight in order.
            let any_blocked: bool = connection
                .prepare_cached(&format!(
                    "SELECT EXISTS (SELECT 1 FROM {outbox} INDEXED BY {outbox}_blocked WHERE blocked_until IS NOT NULL)"
                ))
                .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
                .map_err(backend)?;
            // Otherwise a row is deliverable when it is not itself blocked (or its retry
            // time has come) and no earlier row of its stream is blocked. The blocked
            // rows are few and have their own partial index: one probe per row.
            let only_deliverable = if any_blocked {
                format!(
                    "WHERE (o.blocked_until IS NULL OR o.blocked_until <= ?1)
                       AND NOT EXISTS (
                           SELECT 1 FROM {outbox} b INDEXED BY {outbox}_blocked
                           WHERE b.blocked_until IS NOT NULL
                             AND b.stream_type = o.stream_type AND b.stream_id = o.stream_id
                             AND b.position < o.position)"
                )
            } else {
                "WHERE ?1 IS NOT NULL".to_owned()
            };
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT o.position, o.attempts, e.position IS NULL, {columns}
                     FROM {outbox} o LEFT JOIN {events} e ON e.position = o.position
                     {only_deliverable}
                     ORDER BY o.position
                     LIMIT ?2"
                ))
                .map_err(backend)?;
            let mut rows = statement.query(params![now.as_unix_micros(), limit]).map_err(backend)?;
            let mut pending = Vec::new();
            while let Some(row) = rows.next().map_err(backend)? {
                let position: i64 = row.get(0).map_err(|error| StoreError::Corrupt {
                    location: format!("table {outbox}"),
                    reason: format!("position: {error}"),
                })?;
                let attempts = row.get::<_, i64>(1).map_err(|error| format!("attempts: {error}"));
                let missing: bool = row.get(2).map_err(backend)?;
                let outbox_position = stored::count(position, "outbox position")
                    .map_err(|reason| StoreError::Corrupt { location: format!("table {outbox}"), reason })?;
                let read_attempts = attempts.and_then(stored::attempts);
                let event = match if missing {
                    Err(format!("outbox row {position} has no event"))
                } else if let Err(reason) = &read_attempts {
                    Err(format!("outbox row {position}: {reason}"))
                } else {
                    event_from_row(row, 3).map_err(|error| error.to_string())
                } {
                    Ok(event) => Ok(event),
                    // Only an unreadable row needs its stream from the outbox row.
                    Err(error) => Err(connection
                        .query_row(
                            &format!("SELECT stream_type, stream_id FROM {outbox} WHERE position = ?1"),
                            [position],
                            |row| Ok(Unreadable { stream_type: row.get(0)?, stream_id: row.get(1)?, error }),
                        )
                        .map_err(backend)?),
                };
                pending.push(Pending { position: outbox_position, attempts: read_attempts.unwrap_or(0), event });
            }
            Ok(pending)
        })
        .await
    }

    async fn acknowledge(&self, positions: Vec<u64>, generation: LeaseGeneration) -> Result<(), StoreError> {
        if positions.is_empty() {
            return Ok(());
        }
        self.write_with_tables(move |tx, tables| {
            check_generation(tx, tables, generation)?;
            let mut delete =
                tx.prepare_cached(&format!("DELETE FROM {} WHERE position = ?1", tables.outbox)).map_err(backend)?;
            for position in positions {
                delete.execute([to_i64(position)]).map_err(backend)?;
            }
            Ok(())
        })
        .await
    }

    async fn record_failure(
        &self,
        position: u64,
        attempts: u32,
        error: String,
        retry_at: Option<Timestamp>,
        generation: LeaseGeneration,
    ) -> Result<(), StoreError> {
        self.write_with_tables(move |tx, tables| {
            check_generation(tx, tables, generation)?;
            let blocked_until = retry_at.map_or(PARKED, Timestamp::as_unix_micros);
            tx.execute(
                &format!(
                    "UPDATE {} SET attempts = ?2, last_error = ?3, blocked_until = ?4, parked = ?5 WHERE position = ?1",
                    tables.outbox
                ),
                params![to_i64(position), attempts, error, blocked_until, retry_at.is_none()],
            )
            .map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn requeue(&self, position: u64) -> Result<bool, StoreError> {
        self.write_with_tables(move |tx, tables| {
            let changed = tx
                .execute(
                    &format!(
                        "UPDATE {} SET attempts = 0, blocked_until = NULL, parked = 0 WHERE position = ?1 AND parked = 1",
                        tables.outbox
                    ),
                    [to_i64(position)],
                )
                .map_err(backend)?;
            Ok(changed == 1)
        })
        .await
    }

    async fn skip(&self, position: u64, reason: String) -> Result<bool, StoreError> {
        self.write_with_tables(move |tx, tables| {
            let changed = tx
                .execute(&format!("DELETE FROM {} WHERE position = ?1 AND parked = 1", tables.outbox), [to_i64(position)])
                .map_err(backend)?;
            if changed == 1 {
                tx.execute(
                    &format!(
                        "INSERT OR REPLACE INTO {} (position, consumer, reason, skipped_at) VALUES (?1, 'relay', ?2, ?3)",
                        tables.skipped
                    ),
                    params![to_i64(position), reason, now_micros()],
                )
                .map_err(backend)?;
            }
            Ok(changed == 1)
        })
        .await
    }

    async fn status(&self) -> Result<OutboxStatus, StoreError> {
        self.read_with_tables(move |connection, tables| {
            let (pending, retrying): (i64, i64) = connection
                .query_row(
                    &format!(
                        "SELECT COUNT(*), COALESCE(SUM(blocked_until IS NOT NULL AND parked = 0), 0) FROM {}",
                        tables.outbox
                    ),
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .map_err(backend)?;
            let oldest: Option<i64> = connection
                .query_row(
                    &format!(
                        "SELECT e.occurred_at FROM {} o JOIN {} e ON e.position = o.position ORDER BY o.position LIMIT 1",
                        tables.outbox, tables.events
                    ),
                    [],
                    |row| row.get(0),
                )
                .optional()
                .map_err(backend)?;
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT position, stream_type, stream_id, attempts, COALESCE(last_error, '') FROM {} WHERE parked = 1 ORDER BY position",
                    tables.outbox
                ))
                .map_err(backend)?;
            let corrupt = |reason: String| StoreError::Corrupt { location: format!("table {}", tables.outbox), reason };
            let rows: Vec<(i64, String, String, i64, String)> = statement
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?)))
                .and_then(Iterator::collect)
                .map_err(backend)?;
            let parked = rows
                .into_iter()
                .map(|(position, stream_type, stream_id, attempts, last_error)| {
                    Ok(Parked {
                        position: stored::count(position, "outbox position").map_err(corrupt)?,
                        stream_type,
                        stream_id,
                        attempts: stored::attempts(attempts).map_err(corrupt)?,
                        last_error,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(OutboxStatus {
                pending: stored::count(pending, "count").map_err(corrupt)?,
                retrying: stored::count(retrying, "count").map_err(corrupt)?,
                parked,
                oldest_pending: oldest.map(Timestamp::from_unix_micros),
            })
        })
        .await
    }

    fn appended(&self) -> watch::Receiver<u64> {
        self.subscribe_head()
    }
}
