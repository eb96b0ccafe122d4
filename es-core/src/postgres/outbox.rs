//! The outbox of a PostgreSQL store: what the relay reads and marks.
//!
//! Several relay instances share one database. One of them at a time holds the
//! outbox lease (a row with an owner and an expiry) and delivers; the others wait and
//! take over within one lease period when the holder dies. A single deliverer keeps
//! per-stream order trivially true at the sink and means a row is never in flight in
//! two relays at once; `FOR UPDATE SKIP LOCKED` workers would need a lock per stream
//! to keep order, for a throughput the sink, not the relay, usually limits.
//!
//! The lease row also holds the lease's generation (its fencing token). A relay's
//! acknowledgement or failure record is one statement that takes a share lock on the
//! lease row and writes only if the generation is still the relay's: a relay taking
//! the lease over waits for that statement, or the statement waits for the takeover
//! and then sees the new generation and writes nothing.

use std::time::Duration;

use sqlx::{AssertSqlSafe, Row};
use tokio::sync::watch;

use super::{PgStore, backend};
use crate::clock::{Timestamp, now_micros};
use crate::relay::{LeaseGeneration, Outbox, OutboxStatus, Parked, Pending, Unreadable};
use crate::sql::stored;
use crate::store::StoreError;

const PARKED: i64 = i64::MAX;

/// The lease row, share-locked for the rest of the statement: a relay taking the lease
/// (an update of the row) waits until the statement's write committed, and a statement
/// that waited for a takeover reads the new generation.
fn fence(lease: &str) -> String {
    format!("fence AS MATERIALIZED (SELECT generation FROM {lease} WHERE id = 1 FOR SHARE)")
}

/// What a fenced write found: `Ok` if the lease's generation was the caller's.
fn fenced(current: Option<i64>, generation: LeaseGeneration) -> Result<(), StoreError> {
    if current == Some(to_i64(generation.get())) { Ok(()) } else { Err(StoreError::StaleLease { generation }) }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Outbox for PgStore {
    async fn acquire_lease(&self, owner: &str, lease: Duration) -> Result<Option<LeaseGeneration>, StoreError> {
        let lease = i64::try_from(lease.as_micros()).unwrap_or(i64::MAX);
        let table = &self.sql.relay_lease;
        // The database's clock, not the hosts': a host whose clock runs ahead must not
        // take the lease from a live holder. A renewal of a live lease keeps its
        // generation; any other taking (from another owner, or after expiry or
        // release) moves it on.
        let generation: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "WITH now AS (SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::int8 AS micros)
             INSERT INTO {table} (id, owner, expires_at, generation) SELECT 1, $1, now.micros + $2, 1 FROM now
             ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at,
                 generation = CASE
                     WHEN {table}.owner = excluded.owner
                      AND {table}.expires_at >= (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::int8
                     THEN {table}.generation
                     ELSE {table}.generation + 1 END
             WHERE {table}.owner = excluded.owner
                OR {table}.expires_at < (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::int8
             RETURNING generation"
        )))
        .bind(owner)
        .bind(lease)
        .fetch_optional(self.pool())
        .await
        .map_err(backend)?;
        generation
            .map(|generation| {
                stored::count(generation, "lease generation")
                    .map(LeaseGeneration::new)
                    .map_err(|reason| StoreError::Corrupt { location: format!("table {table}"), reason })
            })
            .transpose()
    }

    async fn release_lease(&self, owner: &str) -> Result<(), StoreError> {
        // Expired, not deleted: the row keeps the generation, so the next holder's is
        // higher than every earlier one.
        sqlx::query(AssertSqlSafe(format!(
            "UPDATE {} SET expires_at = $2 WHERE id = 1 AND owner = $1",
            self.sql.relay_lease
        )))
        .bind(owner)
        .bind(i64::MIN)
        .execute(self.pool())
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn fetch(&self, limit: usize, now: Timestamp) -> Result<Vec<Pending>, StoreError> {
        let (outbox, events) = (&self.sql.outbox, &self.sql.events);
        let columns = super::schema::EVENT_COLUMNS.split(", ").map(|c| format!("e.{c}")).collect::<Vec<_>>().join(", ");
        // Within a stream, positions follow versions (a version is appended only after
        // the one before it committed), so position order keeps stream order.
        // The batch of outbox rows first, then each row's event by its position: the
        // lateral subquery with `OFFSET 0` cannot be flattened into a join, so the
        // events are always fetched by index, one per row of the batch. A plain join
        // may be planned as a merge join that reads the events table from its first
        // position on every batch (a cost that grows with the history, and that
        // depends on whether the table was ever analysed).
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT o.position, o.stream_type, o.stream_id, o.attempts, {columns}
             FROM (
                 SELECT position, stream_type, stream_id, attempts FROM {outbox} o
                 WHERE (o.blocked_until IS NULL OR o.blocked_until <= $1)
                   AND NOT EXISTS (
                       SELECT 1 FROM {outbox} b
                       WHERE b.blocked_until IS NOT NULL
                         AND b.stream_type = o.stream_type AND b.stream_id = o.stream_id
                         AND b.position < o.position)
                 ORDER BY o.position
                 LIMIT $2
             ) o
             LEFT JOIN LATERAL (
                 SELECT * FROM {events} WHERE position = o.position OFFSET 0
             ) e ON true
             ORDER BY o.position"
        )))
        .bind(now.as_unix_micros())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await
        .map_err(backend)?;
        let mut pending = Vec::with_capacity(rows.len());
        for row in rows {
            let position: i64 = row.try_get(0).map_err(backend)?;
            let attempts: i32 = row.try_get(3).map_err(backend)?;
            let missing: Option<i64> = row.try_get(4).map_err(backend)?;
            let outbox_position = stored::count(position, "outbox position")
                .map_err(|reason| StoreError::Corrupt { location: format!("table {outbox}"), reason })?;
            let read_attempts = stored::attempts(attempts.into());
            let event = if missing.is_none() {
                Err(format!("outbox row {position} has no event"))
            } else if let Err(reason) = &read_attempts {
                Err(format!("outbox row {position}: {reason}"))
            } else {
                event_from_offset_row(&row).map_err(|error| error.to_string())
            };
            pending.push(Pending {
                position: outbox_position,
                attempts: read_attempts.unwrap_or(0),
                event: match event {
                    Ok(event) => Ok(event),
                    Err(error) => Err(Unreadable {
                        stream_type: row.try_get(1).map_err(backend)?,
                        stream_id: row.try_get(2).map_err(backend)?,
                        error,
                    }),
                },
            });
        }
        Ok(pending)
    }

    async fn acknowledge(&self, positions: Vec<u64>, generation: LeaseGeneration) -> Result<(), StoreError> {
        if positions.is_empty() {
            return Ok(());
        }
        let positions: Vec<i64> = positions.into_iter().map(to_i64).collect();
        let current: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "WITH {fence}, deleted AS (
                 DELETE FROM {outbox} WHERE position = ANY($1) AND (SELECT generation FROM fence) = $2
             )
             SELECT generation FROM fence",
            fence = fence(&self.sql.relay_lease),
            outbox = self.sql.outbox
        )))
        .bind(&positions)
        .bind(to_i64(generation.get()))
        .fetch_optional(self.pool())
        .await
        .map_err(backend)?;
        fenced(current, generation)
    }

    async fn record_failure(
        &self,
        position: u64,
        attempts: u32,
        error: String,
        retry_at: Option<Timestamp>,
        generation: LeaseGeneration,
    ) -> Result<(), StoreError> {
        let current: Option<i64> = sqlx::query_scalar(AssertSqlSafe(format!(
            "WITH {fence}, updated AS (
                 UPDATE {outbox} SET attempts = $2, last_error = $3, blocked_until = $4, parked = $5
                 WHERE position = $1 AND (SELECT generation FROM fence) = $6
             )
             SELECT generation FROM fence",
            fence = fence(&self.sql.relay_lease),
            outbox = self.sql.outbox
        )))
        .bind(to_i64(position))
        .bind(i32::try_from(attempts).unwrap_or(i32::MAX))
        .bind(error.replace('\0', "\u{FFFD}"))
        .bind(retry_at.map_or(PARKED, Timestamp::as_unix_micros))
        .bind(retry_at.is_none())
        .bind(to_i64(generation.get()))
        .fetch_optional(self.pool())
        .await
        .map_err(backend)?;
        fenced(current, generation)
    }

    async fn requeue(&self, position: u64) -> Result<bool, StoreError> {
        let changed = sqlx::query(AssertSqlSafe(format!(
            "UPDATE {} SET attempts = 0, blocked_until = NULL, parked = false WHERE position = $1 AND parked",
            self.sql.outbox
        )))
        .bind(to_i64(position))
        .execute(self.pool())
        .await
        .map_err(backend)?;
        Ok(changed.rows_affected() == 1)
    }

    async fn skip(&self, position: u64, reason: String) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await.map_err(backend)?;
        let changed =
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {} WHERE position = $1 AND parked", self.sql.outbox)))
                .bind(to_i64(position))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        if changed.rows_affected() == 1 {
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {} (position, consumer, reason, skipped_at) VALUES ($1, 'relay', $2, $3)
                 ON CONFLICT (position) DO UPDATE SET consumer = excluded.consumer, reason = excluded.reason, skipped_at = excluded.skipped_at",
                self.sql.skipped
            )))
            .bind(to_i64(position))
            .bind(reason.replace('\0', "\u{FFFD}"))
            .bind(now_micros())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(changed.rows_affected() == 1)
    }

    async fn status(&self) -> Result<OutboxStatus, StoreError> {
        let (outbox, events) = (&self.sql.outbox, &self.sql.events);
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE blocked_until IS NOT NULL AND NOT parked),
                    (SELECT e.occurred_at FROM {outbox} o JOIN {events} e ON e.position = o.position ORDER BY o.position LIMIT 1)
             FROM {outbox}"
        )))
        .fetch_one(self.pool())
        .await
        .map_err(backend)?;
        let corrupt = |reason: String| StoreError::Corrupt { location: format!("table {outbox}"), reason };
        let parked = sqlx::query(AssertSqlSafe(format!(
            "SELECT position, stream_type, stream_id, attempts, COALESCE(last_error, '') FROM {outbox} WHERE parked ORDER BY position"
        )))
        .fetch_all(self.pool())
        .await
        .map_err(backend)?
        .iter()
        .map(|row| {
            Ok(Parked {
                position: stored::count(row.try_get(0).map_err(backend)?, "outbox position").map_err(corrupt)?,
                stream_type: row.try_get(1).map_err(backend)?,
                stream_id: row.try_get(2).map_err(backend)?,
                attempts: stored::attempts(row.try_get::<i32, _>(3).map_err(backend)?.into()).map_err(corrupt)?,
                last_error: row.try_get(4).map_err(backend)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(OutboxStatus {
            pending: stored::count(row.try_get(0).map_err(backend)?, "count").map_err(corrupt)?,
            retrying: stored::count(row.try_get(1).map_err(backend)?, "count").map_err(corrupt)?,
            parked,
            oldest_pending: row.try_get::<Option<i64>, _>(2).map_err(backend)?.map(Timestamp::from_unix_micros),
        })
    }

    fn appended(&self) -> watch::Receiver<u64> {
        self.subscribe()
    }
}

/// Reads the event columns that follow the four outbox columns of a fetch row.
fn event_from_offset_row(row: &sqlx::postgres::PgRow) -> Result<crate::store::StoredEvent, StoreError> {
    super::event_from_row_at(row, 4)
}
