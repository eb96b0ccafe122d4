//! The storage contract every backend keeps.
//!
//! # The backends side by side
//!
//! Every backend has the same shape and the same names for the same things; only what
//! truly differs, the caller's transaction, differs:
//!
//! | | in memory | SQLite (`sqlite`, the default) | PostgreSQL (`postgres`) |
//! |---|---|---|---|
//! | open with defaults | `MemoryStore::new()` | `SqliteStore::open(path)` | `PgStore::open(url)` |
//! | open with options | - | `SqliteOptions::new(path).table_prefix(..).open()` | `PgOptions::new(url)` or `PgOptions::with_pool(pool)`, `.table_prefix(..).open()` |
//! | the [`EventStore`] contract | yes | yes | yes |
//! | append inside the caller's transaction | `store.transaction(\|tx\| tx.append(..))` | `store.transaction(\|tx\| tx.append(..))`, `tx` derefs to a `rusqlite::Transaction` | `store.append_in(&mut tx, ..)` on the caller's `sqlx` transaction |
//! | the relay's outbox | - | the store itself | the store itself |
//! | projections | - | `sqlite::ProjectionRunner` over `sqlite::Projection` | `postgres::ProjectionRunner` over `postgres::Projection` |
//! | runner: `projection()`, `checkpoint()`, `lag()`, `rebuild()`, `run_once()`, `catch_up()`, `run()` | - | yes | yes |
//!
//! Why the transaction differs: SQLite runs every write on one writer thread (one
//! thread hop per transaction), so the caller's code is a closure sent to that thread
//! and gets a borrowed transaction there; PostgreSQL's writes come from many tasks and
//! processes, so the caller keeps its own `sqlx` transaction and hands it to
//! `append_in`. A projection handler is written against that same transaction type,
//! which is why each backend has its own `Projection` trait.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::clock::Timestamp;
use crate::command::LoadError;
use crate::event::{EncodeError, Event};
use crate::recorded::{Metadata, Recorded};
use crate::rehydrate::{Loaded, RehydrateError};
use crate::snapshot::Snapshot;

/// Where a reader of the global log stands: strictly after the event it names.
///
/// Readers resume *after* a cursor, never at "position + 1": some backends hand out
/// positions with gaps, and in commit order rather than in position order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// The commit-order key of the transaction that wrote the event (0 for backends
    /// whose positions already follow commit order).
    pub commit: u64,
    /// The event's global position.
    pub position: u64,
}

impl Cursor {
    /// Before the first event.
    pub const START: Cursor = Cursor { commit: 0, position: 0 };

    /// A cursor for backends whose positions follow commit order.
    #[must_use]
    pub const fn at_position(position: u64) -> Self {
        Self { commit: 0, position }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.commit == 0 {
            write!(f, "position {}", self.position)
        } else {
            write!(f, "position {} (commit {})", self.position, self.commit)
        }
    }
}

/// The version a writer expects a stream to be at: optimistic concurrency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the stream's version is.
    Any,
    /// The stream must not exist yet (version 0).
    NoStream,
    /// The stream must be exactly at this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream at `actual` satisfies this expectation.
    #[must_use]
    pub fn matches(self, actual: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(expected) => actual == expected,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any version"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::Exact(version) => write!(f, "version {version}"),
        }
    }
}

/// An event encoded and ready to append: everything but the position and version,
/// which the store assigns.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique id, from the command side's id source.
    pub event_id: Uuid,
    /// The stored type name.
    pub event_type: String,
    /// The schema version the payload was written at.
    pub schema_version: u32,
    /// When the command was decided, from the command side's clock.
    pub occurred_at: Timestamp,
    /// Correlation, causation and user data.
    pub metadata: Metadata,
    /// The payload as JSON text.
    pub payload: String,
}

impl NewEvent {
    /// Encodes `event` with the given id, time and metadata.
    pub fn encode<E: Event>(
        event: &E,
        event_id: Uuid,
        occurred_at: Timestamp,
        metadata: Metadata,
    ) -> Result<Self, EncodeError> {
        let event_type = event.event_type();
        Ok(Self {
            event_id,
            event_type: event_type.name.to_owned(),
            schema_version: event_type.version,
            occurred_at,
            metadata,
            payload: event.encode()?,
        })
    }
}

/// An event as stored: envelope plus encoded payload.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Unique id (the dedupe key downstream).
    pub event_id: Uuid,
    /// The aggregate type of the stream.
    pub stream_type: String,
    /// The stream id.
    pub stream_id: String,
    /// 1, 2, 3, … within the stream.
    pub stream_version: u64,
    /// Where the event stands in the global log.
    pub cursor: Cursor,
    /// The stored type name.
    pub event_type: String,
    /// The schema version of the payload.
    pub schema_version: u32,
    /// When the command was decided.
    pub occurred_at: Timestamp,
    /// Correlation, causation and user data.
    pub metadata: Metadata,
    /// The payload as JSON text.
    pub payload: String,
}

impl StoredEvent {
    /// Decodes the payload into `E`, keeping the envelope. Errors name the stream,
    /// version and type.
    pub fn decode<E: Event>(self) -> Result<Recorded<E>, RehydrateError> {
        let (stream_type, stream_id) = (Arc::from(self.stream_type), Arc::from(self.stream_id));
        decode_parts(
            &stream_type,
            &stream_id,
            EventParts {
                event_id: self.event_id,
                stream_version: self.stream_version,
                cursor: self.cursor,
                event_type: &self.event_type,
                schema_version: self.schema_version,
                occurred_at: self.occurred_at,
                metadata: self.metadata,
                payload: &self.payload,
            },
        )
    }
}

/// A stored event's fields, borrowed where a backend can lend them.
pub(crate) struct EventParts<'a> {
    pub(crate) event_id: Uuid,
    pub(crate) stream_version: u64,
    pub(crate) cursor: Cursor,
    pub(crate) event_type: &'a str,
    pub(crate) schema_version: u32,
    pub(crate) occurred_at: Timestamp,
    pub(crate) metadata: Metadata,
    pub(crate) payload: &'a str,
}

/// Decodes the event alone, naming the stream, version and type on failure.
pub(crate) fn decode_event<E: Event>(
    stream_type: &str,
    stream_id: &str,
    parts: &EventParts<'_>,
) -> Result<E, RehydrateError> {
    decode_bare(stream_type, stream_id, parts.stream_version, parts.event_type, parts.schema_version, parts.payload)
}

/// Decodes an event from the fields a fold without envelopes needs.
pub(crate) fn decode_bare<E: Event>(
    stream_type: &str,
    stream_id: &str,
    stream_version: u64,
    event_type: &str,
    schema_version: u32,
    payload: &str,
) -> Result<E, RehydrateError> {
    E::decode(event_type, schema_version, payload).map_err(|source| RehydrateError::Decode {
        stream_type: stream_type.to_owned(),
        stream_id: stream_id.to_owned(),
        version: stream_version,
        event_type: event_type.to_owned(),
        source: Box::new(source),
    })
}

/// Decodes one event of the stream `stream_type/stream_id` from its parts.
pub(crate) fn decode_parts<E: Event>(
    stream_type: &Arc<str>,
    stream_id: &Arc<str>,
    parts: EventParts<'_>,
) -> Result<Recorded<E>, RehydrateError> {
    let event = decode_event::<E>(stream_type, stream_id, &parts)?;
    // The stored name is one of E's own: keep the static one, no copy per event.
    let event_type =
        E::TYPES.iter().map(|ty| ty.name).find(|name| *name == parts.event_type).unwrap_or(event.event_type().name);
    Ok(Recorded {
        event_id: parts.event_id,
        stream_type: Arc::clone(stream_type),
        stream_id: Arc::clone(stream_id),
        stream_version: parts.stream_version,
        cursor: parts.cursor,
        event_type,
        schema_version: parts.schema_version,
        occurred_at: parts.occurred_at,
        metadata: parts.metadata,
        event,
    })
}

/// What an append wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The stream's version after the append.
    pub version: u64,
    /// Where each appended event stands in the global log, in append order.
    pub cursors: Vec<Cursor>,
}

/// A failure of the store.
///
/// [`Conflict`](StoreError::Conflict) and
/// [`StaleTransaction`](StoreError::StaleTransaction) mean another writer got there
/// first: load again and retry ([`StoreError::is_conflict`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Another writer got there first.
    #[error("stream {stream_type}/{stream_id}: expected {expected}, but the stream is at version {actual}")]
    Conflict {
        /// The stream's aggregate type.
        stream_type: String,
        /// The stream id.
        stream_id: String,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// The stream's actual version.
        actual: u64,
    },
    /// The writing transaction started before the stream's last append committed, so
    /// appending from it would put the stream's versions out of the log's order.
    /// Nothing was written; retry in a new transaction (as for a conflict).
    #[error(
        "stream {stream_type}/{stream_id}: this transaction started before the stream's last append (version {version}) committed; retry it in a new transaction"
    )]
    StaleTransaction {
        /// The stream's aggregate type.
        stream_type: String,
        /// The stream id.
        stream_id: String,
        /// The stream's version.
        version: u64,
    },
    /// An event with this id is already stored.
    #[error("event id {event_id} is already stored")]
    DuplicateEventId {
        /// The repeated id.
        event_id: Uuid,
    },
    /// A value cannot be stored by this backend (or, for stream names, by some
    /// backend); nothing was written. `event_type` is empty when the stream itself
    /// cannot be stored.
    #[error("stream {stream_type}/{stream_id}: cannot store {}: {reason}", what_unstorable(event_type))]
    Unstorable {
        /// The stream's aggregate type.
        stream_type: String,
        /// The stream id.
        stream_id: String,
        /// The event's type name.
        event_type: String,
        /// Why.
        reason: String,
    },
    /// A stored row is not valid (written behind the library's back, or corrupted).
    #[error("corrupt stored data at {location}: {reason}")]
    Corrupt {
        /// Where: stream and version, or position.
        location: String,
        /// What is wrong.
        reason: String,
    },
    /// The store wrote fewer events than the append was given. The append is
    /// reported as failed and its transaction must not commit (the store's own
    /// `append` rolls it back; roll back a transaction of your own).
    #[error(
        "stream {stream_type}/{stream_id}: the store wrote {written} of the {sent} events appended; the append failed"
    )]
    Incomplete {
        /// The stream's aggregate type.
        stream_type: String,
        /// The stream id.
        stream_id: String,
        /// How many events the append was given.
        sent: usize,
        /// How many the store reported written.
        written: usize,
    },
    /// The backend itself failed.
    #[error("{backend} store: {source}")]
    Backend {
        /// Which backend.
        backend: &'static str,
        /// The driver's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What an [`StoreError::Unstorable`] refused: an event, or the stream itself.
fn what_unstorable(event_type: &str) -> String {
    if event_type.is_empty() { "the stream".to_owned() } else { format!("event `{event_type}`") }
}

impl StoreError {
    /// Whether another writer got there first, so that loading again and retrying the
    /// command (in a new transaction) can succeed.
    #[must_use]
    pub fn is_conflict(&self) -> bool {
        matches!(self, StoreError::Conflict { .. } | StoreError::StaleTransaction { .. })
    }
}

/// The longest stream id every backend stores, in bytes (UTF-8). Longer ids are
/// refused with [`StoreError::Unstorable`] by every backend, on loads, reads and
/// appends alike, before the database is asked.
pub const MAX_STREAM_ID_BYTES: usize = 1024;

/// The longest stream type (aggregate type name) every backend stores, in bytes.
pub const MAX_STREAM_TYPE_BYTES: usize = 256;

/// Refuses a stream name that some backend cannot hold: too long (see
/// [`MAX_STREAM_ID_BYTES`], [`MAX_STREAM_TYPE_BYTES`]) or holding a NUL character
/// (PostgreSQL text cannot). The same on every backend.
pub(crate) fn check_stream(stream_type: &str, stream_id: &str) -> Result<(), StoreError> {
    let refuse = |reason: String| StoreError::Unstorable {
        stream_type: shorten(stream_type),
        stream_id: shorten(stream_id),
        event_type: String::new(),
        reason,
    };
    if stream_type.len() > MAX_STREAM_TYPE_BYTES {
        return Err(refuse(format!(
            "the stream type is {} bytes long; the most any store keeps is {MAX_STREAM_TYPE_BYTES}",
            stream_type.len()
        )));
    }
    if stream_id.len() > MAX_STREAM_ID_BYTES {
        return Err(refuse(format!(
            "the stream id is {} bytes long; the most any store keeps is {MAX_STREAM_ID_BYTES}",
            stream_id.len()
        )));
    }
    if stream_type.contains('\0') {
        return Err(refuse("the stream type contains a NUL character, which not every store can hold".into()));
    }
    if stream_id.contains('\0') {
        return Err(refuse("the stream id contains a NUL character, which not every store can hold".into()));
    }
    Ok(())
}

/// Refuses, before anything is written, an append that some backend could not store
/// whole: a stream name [`check_stream`] refuses, an event type or payload with a NUL
/// character, or one event id twice in the batch.
pub(crate) fn check_append(stream_type: &str, stream_id: &str, events: &[NewEvent]) -> Result<(), StoreError> {
    check_stream(stream_type, stream_id)?;
    let refuse = |event_type: &str, what: &str| StoreError::Unstorable {
        stream_type: stream_type.to_owned(),
        stream_id: stream_id.to_owned(),
        event_type: event_type.to_owned(),
        reason: format!("{what} contains a NUL character, which not every store can hold"),
    };
    let mut seen = std::collections::HashSet::with_capacity(if events.len() > 8 { events.len() } else { 0 });
    for (index, event) in events.iter().enumerate() {
        if event.event_type.contains('\0') {
            return Err(refuse(&event.event_type, "the event type"));
        }
        // JSON text escapes NUL as \u0000, so encoded payloads never hold one.
        if event.payload.contains('\0') {
            return Err(refuse(&event.event_type, "the payload"));
        }
        // A short batch is searched; a long one is hashed.
        let repeated = if events.len() > 8 {
            !seen.insert(event.event_id)
        } else {
            events[..index].iter().any(|earlier| earlier.event_id == event.event_id)
        };
        if repeated {
            return Err(StoreError::DuplicateEventId { event_id: event.event_id });
        }
    }
    Ok(())
}

/// Checks that an append wrote every event it was given.
pub(crate) fn check_written(stream_type: &str, stream_id: &str, sent: usize, written: usize) -> Result<(), StoreError> {
    if sent == written {
        Ok(())
    } else {
        Err(StoreError::Incomplete {
            stream_type: stream_type.to_owned(),
            stream_id: stream_id.to_owned(),
            sent,
            written,
        })
    }
}

/// A name for messages: the first 64 characters of a long one.
fn shorten(name: &str) -> String {
    if name.len() <= 64 {
        return name.to_owned();
    }
    let end = (0..=64).rev().find(|&i| name.is_char_boundary(i)).unwrap_or(0);
    format!("{}… ({} bytes)", &name[..end], name.len())
}

/// An append-only log of streams, readable per stream and as one global log.
///
/// Every backend runs the same conformance suite. Backends whose appends can join the
/// caller's own database transaction name that transaction type and offer an inherent
/// method to run code inside it; see the backend's documentation.
pub trait EventStore: Send + Sync {
    /// Appends `events` to a stream if it is at `expected`; assigns versions and
    /// positions. All or nothing.
    fn append(
        &self,
        stream_type: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<Appended, StoreError>> + Send;

    /// Reads a stream's events with version `>= from_version`, in version order.
    fn read_stream(
        &self,
        stream_type: &str,
        stream_id: &str,
        from_version: u64,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;

    /// Reads up to `limit` events of the global log strictly after `after`, in commit
    /// order. Never skips an event that commits later at an earlier position; to
    /// guarantee that, a backend may hold back recently committed events until older
    /// transactions have finished, so an empty page means "nothing more yet".
    fn read_all(
        &self,
        after: Cursor,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send;

    /// Rebuilds an aggregate, strictly (versions 1..n), from its newest usable
    /// snapshot when it has snapshots on, else from its first event. Backends may fold
    /// right where they read, without copying the rows first.
    fn load<A: Aggregate>(&self, stream_id: &str) -> impl Future<Output = Result<Loaded<A>, LoadError>> + Send {
        async move {
            check_stream(A::stream_type(), stream_id)?;
            let mut loaded = crate::snapshot::starting_point::<A, Self>(self, stream_id).await?;
            for stored in self.read_stream(A::stream_type(), stream_id, loaded.version() + 1).await? {
                loaded.fold(stored)?;
            }
            Ok(loaded)
        }
    }

    /// The stream's newest snapshot, if the backend keeps snapshots.
    fn read_snapshot(
        &self,
        stream_type: &str,
        stream_id: &str,
    ) -> impl Future<Output = Result<Option<Snapshot>, StoreError>> + Send {
        let _ = (stream_type, stream_id);
        async { Ok(None) }
    }

    /// Keeps `snapshot` as the stream's newest, unless a newer one is kept already.
    fn write_snapshot(
        &self,
        stream_type: &str,
        stream_id: &str,
        snapshot: Snapshot,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = (stream_type, stream_id, snapshot);
        async { Ok(()) }
    }
}

/// Readers of stored values, the same for every backend: each refuses what the
/// library never writes, with the reason (the caller adds where it stands). Every
/// integer read back from a database goes through one of these.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod stored {
    use crate::recorded::Metadata;

    /// Where a stored event stands, for [`StoreError::Corrupt`](super::StoreError::Corrupt).
    pub(crate) fn event_location(stream_type: &str, stream_id: &str, version: i64, position: i64) -> String {
        format!("stream {stream_type}/{stream_id}, version {version} (position {position})")
    }

    /// A stream's current version: 0 (no stream) or more.
    pub(crate) fn current_version(raw: i64) -> Result<u64, String> {
        u64::try_from(raw).map_err(|_| format!("stream version {raw}: versions start at 1"))
    }

    /// A snapshot's stream version: 1 or more.
    pub(crate) fn snapshot_version(raw: i64) -> Result<u64, String> {
        u64::try_from(raw)
            .ok()
            .filter(|version| *version > 0)
            .ok_or_else(|| format!("snapshot at stream version {raw}: versions start at 1"))
    }

    /// A checkpoint's or outbox row's position, or a count: 0 or more.
    pub(crate) fn count(raw: i64, what: &str) -> Result<u64, String> {
        u64::try_from(raw).map_err(|_| format!("negative {what} {raw}"))
    }

    /// A delivery attempt count.
    pub(crate) fn attempts(raw: i64) -> Result<u32, String> {
        u32::try_from(raw).map_err(|_| format!("attempt count {raw} out of range"))
    }

    /// A transaction id (commit-order key) stored as text or a number.
    #[cfg(feature = "postgres")]
    pub(crate) fn commit(raw: &str) -> Result<u64, String> {
        raw.parse().map_err(|_| format!("transaction id {raw:?} is not a number"))
    }

    /// A stream version: 1, 2, 3, …
    pub(crate) fn version(raw: i64) -> Result<u64, String> {
        u64::try_from(raw)
            .ok()
            .filter(|version| *version > 0)
            .ok_or_else(|| format!("stream version {raw}: versions start at 1"))
    }

    /// A global position.
    pub(crate) fn position(raw: i64) -> Result<u64, String> {
        u64::try_from(raw).map_err(|_| format!("negative position {raw}"))
    }

    /// An event's schema version.
    pub(crate) fn schema_version(raw: i64) -> Result<u32, String> {
        u32::try_from(raw).map_err(|_| format!("schema version {raw} out of range"))
    }

    /// Metadata, stored as JSON or absent when empty.
    pub(crate) fn metadata(text: Option<&str>) -> Result<Metadata, String> {
        text.map_or_else(
            || Ok(Metadata::default()),
            |text| serde_json::from_str(text).map_err(|error| format!("metadata does not decode: {error}")),
        )
    }
}

/// Refuses a database migrated by a newer release (at schema `current`, when this one
/// knows `known` migrations) rather than misread it.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
/// Returns how many migrations are applied.
pub(crate) fn check_schema_version(current: i64, known: usize, backend: &'static str) -> Result<usize, StoreError> {
    let Ok(applied) = usize::try_from(current) else {
        return Err(StoreError::Corrupt {
            location: format!("the {backend} schema table"),
            reason: format!("schema version {current} is negative"),
        });
    };
    if applied > known {
        return Err(StoreError::Backend {
            backend,
            source: format!(
                "the database schema is at version {current}, newer than version {known} that this release knows; upgrade es"
            )
            .into(),
        });
    }
    Ok(applied)
}

/// Checks a table prefix so that it cannot carry SQL: 1 to 32 ASCII letters, digits or
/// underscores, not starting with a digit.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn validate_table_prefix(prefix: &str, backend: &'static str) -> Result<(), StoreError> {
    let valid = !prefix.is_empty()
        && prefix.len() <= 32
        && prefix.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(StoreError::Backend {
            backend,
            source: format!(
                "invalid table prefix {prefix:?}: use 1 to 32 ASCII letters, digits or underscores, not starting with a digit"
            )
            .into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u128) -> NewEvent {
        NewEvent {
            event_id: Uuid::from_u128(id),
            event_type: "Deposited".into(),
            schema_version: 1,
            occurred_at: Timestamp::EPOCH,
            metadata: Metadata::default(),
            payload: "{}".into(),
        }
    }

    #[test]
    fn an_append_that_wrote_fewer_rows_than_given_is_an_error() {
        assert!(check_written("Account", "a-1", 3, 3).is_ok());
        let error = check_written("Account", "a-1", 3, 0).unwrap_err();
        assert!(matches!(error, StoreError::Incomplete { sent: 3, written: 0, .. }));
        assert_eq!(
            error.to_string(),
            "stream Account/a-1: the store wrote 0 of the 3 events appended; the append failed"
        );
    }

    #[test]
    fn stream_names_are_bounded_in_bytes_and_free_of_nul() {
        assert!(check_stream("Account", &"é".repeat(MAX_STREAM_ID_BYTES / 2)).is_ok());
        let error = check_stream("Account", &"é".repeat(MAX_STREAM_ID_BYTES / 2 + 1)).unwrap_err();
        // The message names the stream without repeating all of it, cut on a character.
        assert!(
            error
                .to_string()
                .starts_with(&format!("stream Account/{}… (1026 bytes): cannot store the stream", "é".repeat(32))),
            "{error}"
        );
        assert!(check_stream(&"T".repeat(MAX_STREAM_TYPE_BYTES + 1), "a").is_err());
        assert!(check_stream("Account", "a\0").is_err());
        assert!(check_stream("Acc\0ount", "a").is_err());
    }

    #[test]
    fn an_append_is_checked_whole_before_anything_is_written() {
        assert!(check_append("Account", "a", &[event(1), event(2)]).is_ok());
        let error = check_append("Account", "a", &[event(1), event(2), event(1)]).unwrap_err();
        assert!(matches!(error, StoreError::DuplicateEventId { event_id } if event_id == Uuid::from_u128(1)));
        let mut nul = event(3);
        nul.event_type = "De\0posited".into();
        assert!(matches!(check_append("Account", "a", &[nul]), Err(StoreError::Unstorable { .. })));
    }

    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[test]
    fn stored_integers_below_their_range_are_refused() {
        assert!(stored::version(0).is_err());
        assert!(stored::version(-1).is_err());
        assert_eq!(stored::version(1), Ok(1));
        assert!(stored::snapshot_version(0).is_err());
        assert!(stored::current_version(-1).is_err());
        assert_eq!(stored::current_version(0), Ok(0));
        assert!(stored::count(-1, "position").is_err());
        assert!(stored::attempts(-1).is_err());
        assert!(stored::schema_version(-1).is_err());
        assert!(check_schema_version(-1, 2, "sqlite").is_err());
        assert_eq!(check_schema_version(2, 2, "sqlite").ok(), Some(2));
    }
}
