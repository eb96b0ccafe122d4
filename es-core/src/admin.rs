//! What operators' tools read and change: stored rows exactly as they are (also the
//! ones the library would refuse), stream listings, projection states and the schema
//! version. The `es` command line is built on it; an application's own admin tool can
//! be too.
//!
//! Every reader here pages by keyset (`after` the last key seen, at most `limit`
//! rows), so that a tool walks a store of any size in bounded memory and never holds
//! one long read transaction. Nothing here decodes an event: the values come back as
//! stored, for the caller to check.

use std::future::Future;

use crate::clock::Timestamp;
use crate::store::StoreError;

/// The schema of a database compared with the one this release creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaStatus {
    /// The migrations applied to the database (0: no `es` tables yet).
    pub current: u32,
    /// The migrations this release knows.
    pub latest: u32,
}

impl SchemaStatus {
    /// Whether the database is at this release's schema.
    #[must_use]
    pub fn is_current(&self) -> bool {
        self.current == self.latest
    }

    /// Whether opening the store for writing would migrate the schema.
    #[must_use]
    pub fn upgrade_pending(&self) -> bool {
        self.current < self.latest
    }

    /// Whether a newer release migrated the database (this one refuses it).
    #[must_use]
    pub fn is_newer(&self) -> bool {
        self.current > self.latest
    }

    /// Refuses a schema other than this release's, saying what to do.
    pub(crate) fn require_current(self, backend: &'static str, database: &str) -> Result<(), StoreError> {
        let reason = if self.current == 0 {
            format!(
                "{database} holds no es tables; create them with `es migrate` (or by opening the store for writing)"
            )
        } else if self.upgrade_pending() {
            format!(
                "the schema of {database} is at version {}, older than version {} of this release; upgrade it with `es migrate`",
                self.current, self.latest
            )
        } else if self.is_newer() {
            format!(
                "the schema of {database} is at version {}, newer than version {} that this release knows; upgrade es",
                self.current, self.latest
            )
        } else {
            return Ok(());
        };
        Err(StoreError::Backend { backend, source: reason.into() })
    }
}

/// An event row exactly as stored, with whatever is wrong with its column types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEvent {
    /// The global position (the primary key).
    pub position: i64,
    /// The commit-order key of the writing transaction (0 where positions already
    /// follow commit order).
    pub commit: u64,
    /// The event id's bytes (16 when sound).
    pub event_id: Vec<u8>,
    /// The stream type.
    pub stream_type: String,
    /// The stream id.
    pub stream_id: String,
    /// The stream version (1, 2, 3, … when sound).
    pub stream_version: i64,
    /// The event type name.
    pub event_type: String,
    /// The payload's schema version.
    pub schema_version: i64,
    /// When the event was decided, in microseconds since the Unix epoch.
    pub occurred_at: i64,
    /// The metadata as stored (JSON text, or `None` when empty).
    pub metadata: Option<String>,
    /// The payload as stored (JSON text when sound).
    pub payload: String,
    /// Columns whose stored value has another type than the library writes (SQLite
    /// keeps any type in any column), each with what was found. The typed field above
    /// then holds a stand-in (0 or the value's text).
    pub wrong_types: Vec<String>,
}

/// Where a row stands in the order of streams: the keyset of
/// [`Admin::scan_stream_versions`].
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StreamRow {
    /// The stream type.
    pub stream_type: String,
    /// The stream id.
    pub stream_id: String,
    /// The stream version.
    pub stream_version: i64,
    /// The global position.
    pub position: i64,
}

/// One stream, as listed by [`Admin::streams`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSummary {
    /// The stream type.
    pub stream_type: String,
    /// The stream id.
    pub stream_id: String,
    /// The highest version stored.
    pub version: i64,
    /// How many event rows the stream has.
    pub events: u64,
    /// The position of its last event.
    pub last_position: i64,
    /// When its last event was decided.
    pub last_occurred_at: Timestamp,
}

/// Which streams [`Admin::streams`] lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamQuery {
    /// Only streams of this type.
    pub stream_type: Option<String>,
    /// Only streams with this id (of any type unless `stream_type` is set).
    pub stream_id: Option<String>,
    /// Only streams after this (stream type, stream id), in that order: the keyset of
    /// the previous page's last stream.
    pub after: Option<(String, String)>,
    /// At most this many streams.
    pub limit: usize,
}

/// An event id stored more than once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateEventId {
    /// The id's bytes.
    pub event_id: Vec<u8>,
    /// The rows that carry it.
    pub rows: Vec<StreamRow>,
}

/// An outbox row that does not match an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrphanedOutboxRow {
    /// The outbox row's position.
    pub position: i64,
    /// The stream the outbox row names.
    pub stream_type: String,
    /// The stream id the outbox row names.
    pub stream_id: String,
    /// The stream of the event at that position, when there is one (then it is
    /// another stream than the row names).
    pub event_stream: Option<(String, String)>,
}

/// A snapshot taken at a version its stream does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotAhead {
    /// The stream type.
    pub stream_type: String,
    /// The stream id.
    pub stream_id: String,
    /// The snapshot's stream version.
    pub snapshot_version: i64,
    /// The stream's highest stored version (0: no event at all).
    pub stream_version: i64,
}

/// The end of the global log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Head {
    /// The highest position (0: no event).
    pub position: i64,
    /// When the event there was decided.
    pub occurred_at: Option<Timestamp>,
}

/// Where a projection stands, and how far behind the log it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectionState {
    /// The projection's name.
    pub name: String,
    /// The position of the last event it applied (or skipped); 0 before the first.
    pub position: i64,
    /// The commit-order key of the checkpoint (0 where positions follow commit order).
    pub commit: u64,
    /// The id of the last event applied, as stored (16 bytes when sound).
    pub event_id: Option<Vec<u8>>,
    /// When the checkpoint last moved.
    pub updated_at: Timestamp,
    /// Events committed after the checkpoint: the lag in events.
    pub behind: u64,
    /// When the oldest event it has not seen was decided: the lag in time.
    pub oldest_unseen: Option<Timestamp>,
    /// Events it recorded as skipped.
    pub skipped: u64,
}

/// What operators' tools read and change; see the [module docs](self). Implemented
/// by [`SqliteStore`](crate::sqlite::SqliteStore) and `PgStore`.
pub trait Admin: Send + Sync {
    /// Where the global log ends.
    fn head(&self) -> impl Future<Output = Result<Head, StoreError>> + Send;

    /// Up to `limit` event rows after position `after`, in position order, as stored.
    fn scan_events(&self, after: i64, limit: usize) -> impl Future<Output = Result<Vec<RawEvent>, StoreError>> + Send;

    /// Up to `limit` rows after `after` in the order of streams (stream type, stream
    /// id, stream version): what a check of versions 1..n walks, along the unique
    /// index on those columns. SQLite breaks ties by position; PostgreSQL pages by
    /// the index's key alone, so that each page is one index range (rows can share
    /// that key only where its constraint was dropped, and such a pair split by a page
    /// boundary is not seen as one). Rows whose key columns have another type than
    /// the library writes are left out (SQLite); [`scan_events`](Self::scan_events)
    /// reports them.
    fn scan_stream_versions(
        &self,
        after: Option<StreamRow>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StreamRow>, StoreError>> + Send;

    /// Up to `limit` event ids stored more than once, with their rows.
    fn duplicate_event_ids(
        &self,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DuplicateEventId>, StoreError>> + Send;

    /// Up to `limit` outbox rows after position `after` with no event at their
    /// position, or whose event belongs to another stream.
    fn orphaned_outbox_rows(
        &self,
        after: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<OrphanedOutboxRow>, StoreError>> + Send;

    /// Up to `limit` snapshots after (stream type, stream id) `after` whose version is
    /// past their stream's last version.
    fn snapshots_ahead(
        &self,
        after: Option<(String, String)>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<SnapshotAhead>, StoreError>> + Send;

    /// Streams, in (stream type, stream id) order.
    fn streams(&self, query: StreamQuery) -> impl Future<Output = Result<Vec<StreamSummary>, StoreError>> + Send;

    /// Every projection with a checkpoint, by name, with its lag.
    fn projections(&self) -> impl Future<Output = Result<Vec<ProjectionState>, StoreError>> + Send;

    /// Deletes a projection's checkpoint, so that its next run starts from the first
    /// event; a runner that starts without a checkpoint empties the read model first
    /// (with the projection's `reset`). Returns whether the projection had a
    /// checkpoint.
    fn reset_projection(&self, name: &str) -> impl Future<Output = Result<bool, StoreError>> + Send;
}
