//! What operators' tools read and change in a PostgreSQL store; see [`crate::admin`].
//!
//! PostgreSQL enforces the column types, so rows come back typed; only values the
//! library never writes (a version below 1, a payload that is not JSON) are left for
//! the caller to find.

use sqlx::{AssertSqlSafe, Row};

use super::{PgStore, backend};
use crate::admin::{
    Admin, DuplicateEventId, Head, OrphanedOutboxRow, ProjectionState, RawEvent, SnapshotAhead, StreamQuery, StreamRow,
    StreamSummary,
};
use crate::clock::Timestamp;
use crate::store::StoreError;

fn to_i64(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn count(raw: i64, location: &str) -> Result<u64, StoreError> {
    u64::try_from(raw)
        .map_err(|_| StoreError::Corrupt { location: location.to_owned(), reason: format!("negative count {raw}") })
}

fn stream_row(row: &sqlx::postgres::PgRow) -> Result<StreamRow, StoreError> {
    Ok(StreamRow {
        stream_type: row.try_get(0).map_err(backend)?,
        stream_id: row.try_get(1).map_err(backend)?,
        stream_version: row.try_get(2).map_err(backend)?,
        position: row.try_get(3).map_err(backend)?,
    })
}

impl Admin for PgStore {
    async fn head(&self) -> Result<Head, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT position, occurred_at FROM {} ORDER BY position DESC LIMIT 1",
            self.sql.events
        )))
        .fetch_optional(self.pool())
        .await
        .map_err(backend)?;
        row.map_or(Ok(Head::default()), |row| {
            Ok(Head {
                position: row.try_get(0).map_err(backend)?,
                occurred_at: Some(Timestamp::from_unix_micros(row.try_get(1).map_err(backend)?)),
            })
        })
    }

    async fn scan_events(&self, after: i64, limit: usize) -> Result<Vec<RawEvent>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT position, transaction_id::text, event_id, stream_type, stream_id, stream_version, event_type,
                    schema_version, occurred_at, metadata, payload
             FROM {} WHERE position > $1 ORDER BY position LIMIT $2",
            self.sql.events
        )))
        .bind(after)
        .bind(to_i64(limit))
        .fetch_all(self.pool())
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let commit: String = row.try_get(1).map_err(backend)?;
                let mut wrong_types = Vec::new();
                let commit = commit.parse().unwrap_or_else(|_| {
                    wrong_types.push(format!("transaction id {commit:?} is not a number"));
                    0
                });
                Ok(RawEvent {
                    position: row.try_get(0).map_err(backend)?,
                    commit,
                    event_id: row.try_get::<uuid::Uuid, _>(2).map_err(backend)?.as_bytes().to_vec(),
                    stream_type: row.try_get(3).map_err(backend)?,
                    stream_id: row.try_get(4).map_err(backend)?,
                    stream_version: row.try_get(5).map_err(backend)?,
                    event_type: row.try_get(6).map_err(backend)?,
                    schema_version: row.try_get::<i32, _>(7).map_err(backend)?.into(),
                    occurred_at: row.try_get(8).map_err(backend)?,
                    metadata: row.try_get(9).map_err(backend)?,
                    payload: row.try_get(10).map_err(backend)?,
                    wrong_types,
                })
            })
            .collect()
    }

    async fn scan_stream_versions(&self, after: Option<StreamRow>, limit: usize) -> Result<Vec<StreamRow>, StoreError> {
        // The keyset is the unique (stream_type, stream_id, stream_version) index's
        // own key, in the columns' own collation, so that each page is one index range
        // that stops at the limit: ordering by the position too, or in another
        // collation, would sort the whole table for every page. (Two rows can share
        // that key only where the constraint was dropped.)
        let rows = match after {
            None => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT stream_type, stream_id, stream_version, position FROM {}
                     ORDER BY stream_type, stream_id, stream_version LIMIT $1",
                    self.sql.events
                )))
                .bind(to_i64(limit))
                .fetch_all(self.pool())
                .await
            }
            Some(after) => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT stream_type, stream_id, stream_version, position FROM {}
                     WHERE (stream_type, stream_id, stream_version) > ($1, $2, $3)
                     ORDER BY stream_type, stream_id, stream_version LIMIT $4",
                    self.sql.events
                )))
                .bind(after.stream_type)
                .bind(after.stream_id)
                .bind(after.stream_version)
                .bind(to_i64(limit))
                .fetch_all(self.pool())
                .await
            }
        }
        .map_err(backend)?;
        rows.iter().map(stream_row).collect()
    }

    async fn duplicate_event_ids(&self, limit: usize) -> Result<Vec<DuplicateEventId>, StoreError> {
        let events = &self.sql.events;
        let ids: Vec<uuid::Uuid> = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT event_id FROM {events} GROUP BY event_id HAVING COUNT(*) > 1 ORDER BY MIN(position) LIMIT $1"
        )))
        .bind(to_i64(limit))
        .fetch_all(self.pool())
        .await
        .map_err(backend)?;
        let mut duplicates = Vec::with_capacity(ids.len());
        for id in ids {
            let rows = sqlx::query(AssertSqlSafe(format!(
                "SELECT stream_type, stream_id, stream_version, position FROM {events} WHERE event_id = $1 ORDER BY position"
            )))
            .bind(id)
            .fetch_all(self.pool())
            .await
            .map_err(backend)?;
            duplicates.push(DuplicateEventId {
                event_id: id.as_bytes().to_vec(),
                rows: rows.iter().map(stream_row).collect::<Result<_, _>>()?,
            });
        }
        Ok(duplicates)
    }

    async fn orphaned_outbox_rows(&self, after: i64, limit: usize) -> Result<Vec<OrphanedOutboxRow>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT o.position, o.stream_type, o.stream_id, e.stream_type, e.stream_id
             FROM {outbox} o LEFT JOIN {events} e ON e.position = o.position
             WHERE o.position > $1
               AND (e.position IS NULL OR e.stream_type <> o.stream_type OR e.stream_id <> o.stream_id)
             ORDER BY o.position LIMIT $2",
            outbox = self.sql.outbox,
            events = self.sql.events
        )))
        .bind(after)
        .bind(to_i64(limit))
        .fetch_all(self.pool())
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let event_type: Option<String> = row.try_get(3).map_err(backend)?;
                let event_id: Option<String> = row.try_get(4).map_err(backend)?;
                Ok(OrphanedOutboxRow {
                    position: row.try_get(0).map_err(backend)?,
                    stream_type: row.try_get(1).map_err(backend)?,
                    stream_id: row.try_get(2).map_err(backend)?,
                    event_stream: event_type.zip(event_id),
                })
            })
            .collect()
    }

    async fn snapshots_ahead(
        &self,
        after: Option<(String, String)>,
        limit: usize,
    ) -> Result<Vec<SnapshotAhead>, StoreError> {
        let (after_type, after_id) = after.unwrap_or_default();
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT stream_type, stream_id, snapshot_version, stream_version FROM (
                 SELECT s.stream_type, s.stream_id, s.stream_version AS snapshot_version,
                        COALESCE((SELECT MAX(e.stream_version) FROM {events} e
                                  WHERE e.stream_type = s.stream_type AND e.stream_id = s.stream_id), 0) AS stream_version
                 FROM {snapshots} s
                 WHERE (s.stream_type, s.stream_id) > ($1, $2)
             ) ahead WHERE snapshot_version > stream_version
             ORDER BY stream_type, stream_id LIMIT $3",
            events = self.sql.events,
            snapshots = self.sql.snapshots
        )))
        .bind(after_type)
        .bind(after_id)
        .bind(to_i64(limit))
        .fetch_all(self.pool())
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                Ok(SnapshotAhead {
                    stream_type: row.try_get(0).map_err(backend)?,
                    stream_id: row.try_get(1).map_err(backend)?,
                    snapshot_version: row.try_get(2).map_err(backend)?,
                    stream_version: row.try_get(3).map_err(backend)?,
                })
            })
            .collect()
    }

    async fn streams(&self, query: StreamQuery) -> Result<Vec<StreamSummary>, StoreError> {
        let (after_type, after_id) = query.after.unwrap_or_default();
        let events = &self.sql.events;
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT g.stream_type, g.stream_id, g.version, g.events, g.last,
                    (SELECT l.occurred_at FROM {events} l WHERE l.position = g.last)
             FROM (SELECT stream_type, stream_id, MAX(stream_version) AS version, COUNT(*) AS events,
                          MAX(position) AS last
                   FROM {events}
                   WHERE (stream_type, stream_id) > ($1, $2)
                     AND ($3::text IS NULL OR stream_type = $3) AND ($4::text IS NULL OR stream_id = $4)
                   GROUP BY stream_type, stream_id
                   ORDER BY stream_type, stream_id LIMIT $5) g
             ORDER BY g.stream_type, g.stream_id"
        )))
        .bind(after_type)
        .bind(after_id)
        .bind(query.stream_type)
        .bind(query.stream_id)
        .bind(to_i64(query.limit))
        .fetch_all(self.pool())
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                Ok(StreamSummary {
                    stream_type: row.try_get(0).map_err(backend)?,
                    stream_id: row.try_get(1).map_err(backend)?,
                    version: row.try_get(2).map_err(backend)?,
                    events: count(row.try_get(3).map_err(backend)?, &format!("table {events}"))?,
                    last_position: row.try_get(4).map_err(backend)?,
                    last_occurred_at: Timestamp::from_unix_micros(
                        row.try_get::<Option<i64>, _>(5).map_err(backend)?.unwrap_or(0),
                    ),
                })
            })
            .collect()
    }

    async fn projections(&self) -> Result<Vec<ProjectionState>, StoreError> {
        let (events, skipped, checkpoints) = (&self.sql.events, &self.sql.skipped, &self.sql.checkpoints);
        // In commit order, as the runner reads: what it has not seen is what committed
        // after its (transaction id, position), among transactions already finished.
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT c.projection, c.position, c.transaction_id::text, c.event_id, c.updated_at,
                    (SELECT COUNT(*) FROM {events} e WHERE (e.transaction_id, e.position) > (c.transaction_id, c.position)),
                    (SELECT e.occurred_at FROM {events} e WHERE (e.transaction_id, e.position) > (c.transaction_id, c.position)
                     ORDER BY e.transaction_id, e.position LIMIT 1),
                    (SELECT COUNT(*) FROM {skipped} s WHERE s.consumer = 'projection:' || c.projection)
             FROM {checkpoints} c ORDER BY c.projection"
        )))
        .fetch_all(self.pool())
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                let name: String = row.try_get(0).map_err(backend)?;
                let location = format!("checkpoint of projection {name}");
                let commit: String = row.try_get(2).map_err(backend)?;
                Ok(ProjectionState {
                    position: row.try_get(1).map_err(backend)?,
                    commit: crate::sql::stored::commit(&commit)
                        .map_err(|reason| StoreError::Corrupt { location: location.clone(), reason })?,
                    event_id: row
                        .try_get::<Option<uuid::Uuid>, _>(3)
                        .map_err(backend)?
                        .map(|id| id.as_bytes().to_vec()),
                    updated_at: Timestamp::from_unix_micros(row.try_get(4).map_err(backend)?),
                    behind: count(row.try_get(5).map_err(backend)?, &location)?,
                    oldest_unseen: row.try_get::<Option<i64>, _>(6).map_err(backend)?.map(Timestamp::from_unix_micros),
                    skipped: count(row.try_get(7).map_err(backend)?, &location)?,
                    name,
                })
            })
            .collect()
    }

    async fn reset_projection(&self, name: &str) -> Result<bool, StoreError> {
        // Deleting the row waits for the lock a running pass holds on it, so a pass in
        // progress commits first and its writes are emptied with the rest.
        let deleted = sqlx::query(AssertSqlSafe(format!("DELETE FROM {} WHERE projection = $1", self.sql.checkpoints)))
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(backend)?;
        Ok(deleted.rows_affected() > 0)
    }
}
