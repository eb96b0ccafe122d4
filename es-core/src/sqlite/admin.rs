//! What operators' tools read and change in a SQLite store; see [`crate::admin`].

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{SqliteStore, Tables, backend};
use crate::admin::{
    Admin, DuplicateEventId, Head, OrphanedOutboxRow, ProjectionState, RawEvent, SnapshotAhead, StreamQuery, StreamRow,
    StreamSummary,
};
use crate::clock::Timestamp;
use crate::sql::stored;
use crate::store::StoreError;

/// A checkpoint with its counts: name, position, event id, updated at, events behind,
/// oldest unseen time, skipped events.
type CheckpointRow = (String, i64, Option<Vec<u8>>, i64, i64, Option<i64>, i64);

fn to_i64(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Reads a column that should hold an integer; another type is recorded in `wrong`.
fn integer(row: &Row<'_>, index: usize, what: &str, wrong: &mut Vec<String>) -> rusqlite::Result<i64> {
    Ok(match row.get_ref(index)? {
        ValueRef::Integer(value) => value,
        other => {
            wrong.push(format!("{what} is {}, not an integer", describe(other)));
            0
        }
    })
}

/// Reads a column that should hold text; another type is recorded in `wrong`.
fn text(row: &Row<'_>, index: usize, what: &str, wrong: &mut Vec<String>) -> rusqlite::Result<String> {
    Ok(match row.get_ref(index)? {
        ValueRef::Text(bytes) => {
            if let Ok(text) = std::str::from_utf8(bytes) {
                text.to_owned()
            } else {
                wrong.push(format!("{what} is not valid UTF-8"));
                String::from_utf8_lossy(bytes).into_owned()
            }
        }
        other => {
            wrong.push(format!("{what} is {}, not text", describe(other)));
            lossy(other)
        }
    })
}

fn describe(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "NULL".into(),
        ValueRef::Integer(value) => format!("the integer {value}"),
        ValueRef::Real(value) => format!("the real {value}"),
        ValueRef::Text(bytes) => format!("the text {:?}", String::from_utf8_lossy(bytes)),
        ValueRef::Blob(bytes) => format!("a blob of {} bytes", bytes.len()),
    }
}

fn lossy(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => String::new(),
        ValueRef::Integer(value) => value.to_string(),
        ValueRef::Real(value) => value.to_string(),
        ValueRef::Text(bytes) | ValueRef::Blob(bytes) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

const RAW_COLUMNS: &str = "position, event_id, stream_type, stream_id, stream_version, event_type, schema_version, occurred_at, metadata, payload";

fn raw_event(row: &Row<'_>) -> rusqlite::Result<RawEvent> {
    let mut wrong = Vec::new();
    // The position is the rowid: always an integer.
    let position: i64 = row.get(0)?;
    let event_id = match row.get_ref(1)? {
        ValueRef::Blob(bytes) => bytes.to_vec(),
        other => {
            wrong.push(format!("event id is {}, not a blob", describe(other)));
            lossy(other).into_bytes()
        }
    };
    let stream_type = text(row, 2, "stream type", &mut wrong)?;
    let stream_id = text(row, 3, "stream id", &mut wrong)?;
    let stream_version = integer(row, 4, "stream version", &mut wrong)?;
    let event_type = text(row, 5, "event type", &mut wrong)?;
    let schema_version = integer(row, 6, "schema version", &mut wrong)?;
    let occurred_at = integer(row, 7, "occurred at", &mut wrong)?;
    let metadata = match row.get_ref(8)? {
        ValueRef::Null => None,
        _ => Some(text(row, 8, "metadata", &mut wrong)?),
    };
    let payload = text(row, 9, "payload", &mut wrong)?;
    Ok(RawEvent {
        position,
        commit: 0,
        event_id,
        stream_type,
        stream_id,
        stream_version,
        event_type,
        schema_version,
        occurred_at,
        metadata,
        payload,
        wrong_types: wrong,
    })
}

fn corrupt(table: &str) -> impl Fn(String) -> StoreError {
    let location = format!("table {table}");
    move |reason| StoreError::Corrupt { location: location.clone(), reason }
}

impl Admin for SqliteStore {
    async fn head(&self) -> Result<Head, StoreError> {
        self.read_with_tables(read_head).await
    }

    async fn scan_events(&self, after: i64, limit: usize) -> Result<Vec<RawEvent>, StoreError> {
        self.read_with_tables(move |connection, tables| {
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT {RAW_COLUMNS} FROM {} WHERE position > ?1 ORDER BY position LIMIT ?2",
                    tables.events
                ))
                .map_err(backend)?;
            statement.query_map(params![after, to_i64(limit)], raw_event).and_then(Iterator::collect).map_err(backend)
        })
        .await
    }

    async fn scan_stream_versions(&self, after: Option<StreamRow>, limit: usize) -> Result<Vec<StreamRow>, StoreError> {
        self.read_with_tables(move |connection, tables| {
            // The keyset walks the (stream_type, stream_id, stream_version) index. Rows
            // of other types sort apart in SQLite; scan_events reports them.
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT stream_type, stream_id, stream_version, position FROM {}
                     WHERE (stream_type, stream_id, stream_version, position) > (?1, ?2, ?3, ?4)
                       AND typeof(stream_type) = 'text' AND typeof(stream_id) = 'text'
                       AND typeof(stream_version) = 'integer'
                     ORDER BY stream_type, stream_id, stream_version, position LIMIT ?5",
                    tables.events
                ))
                .map_err(backend)?;
            let after = after.unwrap_or(StreamRow {
                stream_type: String::new(),
                stream_id: String::new(),
                stream_version: i64::MIN,
                position: i64::MIN,
            });
            statement
                .query_map(
                    params![after.stream_type, after.stream_id, after.stream_version, after.position, to_i64(limit)],
                    |row| {
                        Ok(StreamRow {
                            stream_type: row.get(0)?,
                            stream_id: row.get(1)?,
                            stream_version: row.get(2)?,
                            position: row.get(3)?,
                        })
                    },
                )
                .and_then(Iterator::collect)
                .map_err(backend)
        })
        .await
    }

    async fn duplicate_event_ids(&self, limit: usize) -> Result<Vec<DuplicateEventId>, StoreError> {
        self.read_with_tables(move |connection, tables| {
            let ids: Vec<Vec<u8>> = connection
                .prepare_cached(&format!(
                    "SELECT CAST(event_id AS BLOB) FROM {} GROUP BY event_id HAVING COUNT(*) > 1 ORDER BY MIN(position) LIMIT ?1",
                    tables.events
                ))
                .and_then(|mut statement| statement.query_map([to_i64(limit)], |row| row.get(0))?.collect())
                .map_err(backend)?;
            let mut rows = connection
                .prepare_cached(&format!(
                    "SELECT CAST(stream_type AS TEXT), CAST(stream_id AS TEXT), CAST(stream_version AS INTEGER), position
                     FROM {} WHERE CAST(event_id AS BLOB) = ?1 ORDER BY position",
                    tables.events
                ))
                .map_err(backend)?;
            ids.into_iter()
                .map(|event_id| {
                    let rows = rows
                        .query_map([&event_id], |row| {
                            Ok(StreamRow {
                                stream_type: row.get(0)?,
                                stream_id: row.get(1)?,
                                stream_version: row.get(2)?,
                                position: row.get(3)?,
                            })
                        })
                        .and_then(Iterator::collect)
                        .map_err(backend)?;
                    Ok(DuplicateEventId { event_id, rows })
                })
                .collect()
        })
        .await
    }

    async fn orphaned_outbox_rows(&self, after: i64, limit: usize) -> Result<Vec<OrphanedOutboxRow>, StoreError> {
        self.read_with_tables(move |connection, tables| {
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT o.position, CAST(o.stream_type AS TEXT), CAST(o.stream_id AS TEXT),
                            CAST(e.stream_type AS TEXT), CAST(e.stream_id AS TEXT)
                     FROM {outbox} o LEFT JOIN {events} e ON e.position = o.position
                     WHERE o.position > ?1
                       AND (e.position IS NULL OR e.stream_type IS NOT o.stream_type OR e.stream_id IS NOT o.stream_id)
                     ORDER BY o.position LIMIT ?2",
                    outbox = tables.outbox,
                    events = tables.events
                ))
                .map_err(backend)?;
            statement
                .query_map(params![after, to_i64(limit)], |row| {
                    let event_type: Option<String> = row.get(3)?;
                    let event_id: Option<String> = row.get(4)?;
                    Ok(OrphanedOutboxRow {
                        position: row.get(0)?,
                        stream_type: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        stream_id: row.get::<_, Option<String>>(2)?.unwrap_or_default(),
                        event_stream: event_type.zip(event_id),
                    })
                })
                .and_then(Iterator::collect)
                .map_err(backend)
        })
        .await
    }

    async fn snapshots_ahead(
        &self,
        after: Option<(String, String)>,
        limit: usize,
    ) -> Result<Vec<SnapshotAhead>, StoreError> {
        self.read_with_tables(move |connection, tables| {
            let (after_type, after_id) = after.unwrap_or_default();
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT stream_type, stream_id, snapshot_version, stream_version FROM (
                         SELECT CAST(s.stream_type AS TEXT) AS stream_type, CAST(s.stream_id AS TEXT) AS stream_id,
                                CAST(s.stream_version AS INTEGER) AS snapshot_version,
                                COALESCE((SELECT MAX(e.stream_version) FROM {events} e
                                          WHERE e.stream_type = s.stream_type AND e.stream_id = s.stream_id), 0)
                                    AS stream_version
                         FROM {snapshots} s WHERE (s.stream_type, s.stream_id) > (?1, ?2)
                     ) WHERE snapshot_version > stream_version
                     ORDER BY stream_type, stream_id LIMIT ?3",
                    events = tables.events,
                    snapshots = tables.snapshots
                ))
                .map_err(backend)?;
            statement
                .query_map(params![after_type, after_id, to_i64(limit)], |row| {
                    Ok(SnapshotAhead {
                        stream_type: row.get(0)?,
                        stream_id: row.get(1)?,
                        snapshot_version: row.get(2)?,
                        stream_version: row.get::<_, Option<i64>>(3)?.unwrap_or(0),
                    })
                })
                .and_then(Iterator::collect)
                .map_err(backend)
        })
        .await
    }

    async fn streams(&self, query: StreamQuery) -> Result<Vec<StreamSummary>, StoreError> {
        self.read_with_tables(move |connection, tables| {
            let (after_type, after_id) = query.after.unwrap_or_default();
            // Grouped along the (stream_type, stream_id, stream_version) index: one
            // pass over the page's streams, nothing sorted.
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT g.stream_type, g.stream_id, g.version, g.events, g.last,
                            (SELECT l.occurred_at FROM {events} l WHERE l.position = g.last)
                     FROM (SELECT stream_type, stream_id, MAX(stream_version) AS version, COUNT(*) AS events,
                                  MAX(position) AS last
                           FROM {events}
                           WHERE (stream_type, stream_id) > (?1, ?2)
                             AND (?3 IS NULL OR stream_type = ?3) AND (?4 IS NULL OR stream_id = ?4)
                           GROUP BY stream_type, stream_id
                           ORDER BY stream_type, stream_id LIMIT ?5) g
                     ORDER BY g.stream_type, g.stream_id",
                    events = tables.events
                ))
                .map_err(backend)?;
            let rows: Vec<(String, String, i64, i64, i64, Option<i64>)> = statement
                .query_map(
                    params![after_type, after_id, query.stream_type, query.stream_id, to_i64(query.limit)],
                    |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?)),
                )
                .and_then(Iterator::collect)
                .map_err(backend)?;
            rows.into_iter()
                .map(|(stream_type, stream_id, version, events, last_position, occurred_at)| {
                    Ok(StreamSummary {
                        events: stored::count(events, "count").map_err(corrupt(&tables.events))?,
                        stream_type,
                        stream_id,
                        version,
                        last_position,
                        last_occurred_at: Timestamp::from_unix_micros(occurred_at.unwrap_or(0)),
                    })
                })
                .collect()
        })
        .await
    }

    async fn projections(&self) -> Result<Vec<ProjectionState>, StoreError> {
        self.read_with_tables(|connection, tables| {
            let mut statement = connection
                .prepare_cached(&format!(
                    "SELECT c.projection, c.position, c.event_id, c.updated_at,
                            (SELECT COUNT(*) FROM {events} e WHERE e.position > c.position),
                            (SELECT e.occurred_at FROM {events} e WHERE e.position > c.position ORDER BY e.position LIMIT 1),
                            (SELECT COUNT(*) FROM {skipped} s WHERE s.consumer = 'projection:' || c.projection)
                     FROM {checkpoints} c ORDER BY c.projection",
                    events = tables.events,
                    skipped = tables.skipped,
                    checkpoints = tables.checkpoints
                ))
                .map_err(backend)?;
            let rows: Vec<CheckpointRow> = statement
                .query_map([], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?))
                })
                .and_then(Iterator::collect)
                .map_err(backend)?;
            let corrupt = corrupt(&tables.checkpoints);
            rows.into_iter()
                .map(|(name, position, event_id, updated_at, behind, oldest, skipped)| {
                    Ok(ProjectionState {
                        name,
                        position,
                        commit: 0,
                        event_id,
                        updated_at: Timestamp::from_unix_micros(updated_at),
                        behind: stored::count(behind, "count").map_err(&corrupt)?,
                        oldest_unseen: oldest.map(Timestamp::from_unix_micros),
                        skipped: stored::count(skipped, "count").map_err(&corrupt)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn reset_projection(&self, name: &str) -> Result<bool, StoreError> {
        let name = name.to_owned();
        self.write_with_tables(move |tx, tables| {
            let deleted = tx
                .execute(&format!("DELETE FROM {} WHERE projection = ?1", tables.checkpoints), [&name])
                .map_err(backend)?;
            Ok(deleted > 0)
        })
        .await
    }
}

pub(super) fn read_head(connection: &Connection, tables: &Tables) -> Result<Head, StoreError> {
    // A time of another type is left out: the head is still where the log ends.
    let head: Option<(i64, Option<i64>)> = connection
        .query_row(
            &format!("SELECT position, occurred_at FROM {} ORDER BY position DESC LIMIT 1", tables.events),
            [],
            |row| Ok((row.get(0)?, row.get_ref(1)?.as_i64().ok())),
        )
        .optional()
        .map_err(backend)?;
    Ok(head.map_or_else(Head::default, |(position, occurred_at)| Head {
        position,
        occurred_at: occurred_at.map(Timestamp::from_unix_micros),
    }))
}
