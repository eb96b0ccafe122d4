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
//! | document views (`es::projection::View`), `store.views::<V>(name)` | kept in memory | table `<prefix>views` | table `<prefix>views` |
//! | projections | `memory::ProjectionRunner` over `memory::Projection` | `sqlite::ProjectionRunner` over `sqlite::Projection` | `postgres::ProjectionRunner` over `postgres::Projection` |
//! | runner: `projection()`, `checkpoint()`, `lag()`, `rebuild()`, `run_once()`, `catch_up()`, `run()` | yes | yes | yes |
//! | the driver, re-exported | - | `es::sqlite::rusqlite` | `es::postgres::sqlx` |
//!
//! Why the transaction differs: SQLite runs every write on one writer thread (one
//! thread hop per transaction), so the caller's code is a closure sent to that thread
//! and gets a borrowed transaction there; PostgreSQL's writes come from many tasks and
//! processes, so the caller keeps its own `sqlx` transaction and hands it to
//! `append_in`. A projection handler is written against that same transaction type,
//! which is why each backend has its own `Projection` trait; a
//! [`View`](crate::projection::View) needs none, and runs on every backend.
//!
//! **Which read to use.** [`EventStore::load`] rebuilds an aggregate while the rows
//! come in, holding only the state. [`EventStore::read_stream_paged`] hands out a
//! stream's events as a [`Stream`], fetching a page of [`PAGE_SIZE`] (or any size) at
//! a time: use it for long streams. [`EventStore::read_stream`] returns every event
//! at once, in a `Vec`: for short streams only (a million events of ~100 bytes take
//! 0.4 to 1 GiB). The global log reads a page per [`EventStore::read_all`] call, or
//! as a stream of pages with [`EventStore::read_all_paged`]. Every read checks every
//! stored value, and stream reads check that versions run on without gap or repeat.

use std::fmt;
use std::future::Future;

use futures_core::Stream;
use tokio::sync::watch;
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::clock::Timestamp;
use crate::idempotency::{AppendOnce, RecordedCommand};
pub use crate::recorded::{Cursor, NewEvent, StoredEvent};
use crate::rehydrate::{Loaded, RehydrateError};
use crate::snapshot::Snapshot;

/// Reading a stream failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stream does not fold (gap, duplicate, undecodable event).
    #[error(transparent)]
    Rehydrate(#[from] RehydrateError),
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
    /// The stream's last event is ordered after anything this transaction could append
    /// (on PostgreSQL: its commit-order key is newer than this append's), so appending
    /// would put the stream's versions out of the log's order. The library's own
    /// appends never lead here (each takes a key at least that of the version before);
    /// a row written behind its back can. Nothing was written; retry in a new
    /// transaction (as for a conflict).
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
    /// An idempotency key no store can keep (see
    /// [`MAX_COMMAND_KEY_BYTES`](crate::idempotency::MAX_COMMAND_KEY_BYTES)); nothing
    /// was written.
    #[error("idempotency key {key:?}: {reason}")]
    InvalidCommandKey {
        /// The key (its first 64 characters).
        key: String,
        /// Why it cannot be kept.
        reason: String,
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
    /// The outbox refused a relay's acknowledgement (or failure record): the relay
    /// holds the lease generation `generation`, but the lease has changed hands since
    /// (another relay took it while this one was stopped, paused or slow). Nothing was
    /// written; the rows stay pending for the current holder, which delivers them
    /// again. The relay stops delivering and waits for the lease.
    #[error(
        "the outbox lease of generation {generation} is no longer current (it changed hands since), so this relay's write to the outbox was refused; the current holder delivers its rows"
    )]
    StaleLease {
        /// The generation the refused relay held.
        generation: crate::relay::LeaseGeneration,
    },
    /// A process that held durable subscription `name` under lease generation
    /// `generation` lost it (another process took over while this one was stopped
    /// or slower than its lease); nothing was written, and the new holder resumes
    /// after the last acknowledged event. Start the subscription again to wait for
    /// the lease.
    #[error(
        "durable subscription {name}: the lease of generation {generation} was taken over; nothing was acknowledged"
    )]
    StaleSubscription {
        /// The subscription.
        name: String,
        /// The generation this process held.
        generation: crate::relay::LeaseGeneration,
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

/// How many events a paged read ([`EventStore::read_stream_paged`],
/// [`EventStore::read_all_paged`]) fetches at a time when the caller has no better
/// figure: a few hundred KiB of typical events per query.
pub const PAGE_SIZE: usize = 1000;

/// Checks that `events`, read from a stream from `from_version` on, run from that
/// version (1 when 0) without gap or repeat.
pub(crate) fn check_versions(
    stream_type: &str,
    stream_id: &str,
    from_version: u64,
    events: &[StoredEvent],
) -> Result<(), StoreError> {
    for (expected, event) in (from_version.max(1)..).zip(events) {
        if event.stream_version != expected {
            return Err(version_break(stream_type, stream_id, expected, event));
        }
    }
    Ok(())
}

/// The error of a stream whose next version is not the one expected.
fn version_break(stream_type: &str, stream_id: &str, expected: u64, found: &StoredEvent) -> StoreError {
    StoreError::Corrupt {
        location: format!(
            "stream {stream_type}/{stream_id}, version {} (position {})",
            found.stream_version, found.cursor.position
        ),
        reason: format!(
            "expected version {expected}, got {}: the stream's versions have a gap or a repeat",
            found.stream_version
        ),
    }
}

/// The paged reads, built on [`EventStore::read_stream_page`] and
/// [`EventStore::read_all`]: at most one page is held at a time.
mod paged {
    use futures_core::Stream;

    use super::{Cursor, EventStore, StoreError, StoredEvent, version_break};

    struct Pages<'a, S: ?Sized> {
        store: &'a S,
        page_size: usize,
        /// The page being handed out.
        page: std::vec::IntoIter<StoredEvent>,
        /// The last page was short: nothing follows it.
        last_page: bool,
        /// An error ended the stream.
        failed: bool,
    }

    impl<'a, S: ?Sized> Pages<'a, S> {
        fn new(store: &'a S, page_size: usize) -> Self {
            Self { store, page_size: page_size.max(1), page: Vec::new().into_iter(), last_page: false, failed: false }
        }

        /// Takes a fetched page; `None` when nothing follows.
        fn take(&mut self, fetched: Result<Vec<StoredEvent>, StoreError>) -> Option<Result<(), StoreError>> {
            match fetched {
                Ok(page) if page.is_empty() => None,
                Ok(page) => {
                    self.last_page = page.len() < self.page_size;
                    self.page = page.into_iter();
                    Some(Ok(()))
                }
                Err(error) => {
                    self.failed = true;
                    Some(Err(error))
                }
            }
        }
    }

    pub(super) fn stream<'a, S: EventStore + ?Sized>(
        store: &'a S,
        stream_type: &str,
        stream_id: &str,
        from_version: u64,
        page_size: usize,
    ) -> impl Stream<Item = Result<StoredEvent, StoreError>> + Send + use<'a, S> {
        struct State<'a, S: ?Sized> {
            pages: Pages<'a, S>,
            stream_type: String,
            stream_id: String,
            /// The version the next event must have.
            next: u64,
        }
        let checked = super::check_stream(stream_type, stream_id);
        let mut pages = Pages::new(store, page_size);
        let first = checked.err();
        pages.failed = first.is_some();
        let state = State {
            pages,
            stream_type: stream_type.to_owned(),
            stream_id: stream_id.to_owned(),
            next: from_version.max(1),
        };
        let first = futures_util::stream::iter(first.map(Err));
        let rest = futures_util::stream::unfold(state, |mut state| async move {
            loop {
                if state.pages.failed {
                    return None;
                }
                if let Some(event) = state.pages.page.next() {
                    if event.stream_version != state.next {
                        state.pages.failed = true;
                        let error = version_break(&state.stream_type, &state.stream_id, state.next, &event);
                        return Some((Err(error), state));
                    }
                    state.next += 1;
                    return Some((Ok(event), state));
                }
                if state.pages.last_page {
                    return None;
                }
                let fetched = state
                    .pages
                    .store
                    .read_stream_page(&state.stream_type, &state.stream_id, state.next, state.pages.page_size)
                    .await;
                if let Err(error) = state.pages.take(fetched)? {
                    return Some((Err(error), state));
                }
            }
        });
        futures_util::StreamExt::chain(first, rest)
    }

    pub(super) fn log<S: EventStore + ?Sized>(
        store: &S,
        after: Cursor,
        page_size: usize,
    ) -> impl Stream<Item = Result<StoredEvent, StoreError>> + Send + use<'_, S> {
        let state = (Pages::new(store, page_size), after);
        futures_util::stream::unfold(state, |(mut pages, mut cursor)| async move {
            loop {
                if pages.failed {
                    return None;
                }
                if let Some(event) = pages.page.next() {
                    cursor = event.cursor;
                    return Some((Ok(event), (pages, cursor)));
                }
                // A short page of the log is not its end: more may have committed
                // meanwhile, so only an empty page ends the stream.
                let fetched = pages.store.read_all(cursor, pages.page_size).await;
                if let Err(error) = pages.take(fetched)? {
                    return Some((Err(error), (pages, cursor)));
                }
            }
        })
    }
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

    /// Appends like [`append`](Self::append) and records `key` in the same
    /// transaction; when `key` is recorded already, appends nothing and returns what
    /// was recorded under it (for whichever stream: the caller compares). Empty
    /// `events` record nothing. See [`idempotency`](crate::idempotency).
    fn append_once(
        &self,
        key: &str,
        stream_type: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<AppendOnce, StoreError>> + Send;

    /// What was recorded under an idempotency key, if anything.
    fn recorded_command(&self, key: &str) -> impl Future<Output = Result<Option<RecordedCommand>, StoreError>> + Send;

    /// Forgets the idempotency keys recorded before `cutoff`; returns how many. A
    /// retry of a forgotten key runs as a first execution, so keep keys longer than
    /// any client retries.
    fn prune_commands(&self, cutoff: Timestamp) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Changes whenever events may have been appended: by this process, and on
    /// backends that hear other processes (PostgreSQL's `LISTEN`), by any. Readers
    /// that follow the log ([`subscribe`](crate::subscription::subscribe)) wait on it,
    /// and poll besides for what it cannot hear.
    fn watch_appends(&self) -> watch::Receiver<u64>;

    /// Reads a stream's events with version `>= from_version`, in version order, all
    /// at once. Versions must run from `from_version` (1 when 0) without gap or
    /// repeat; a break is [`StoreError::Corrupt`] naming the stream and the version.
    /// For long streams, prefer [`read_stream_paged`](Self::read_stream_paged), whose
    /// memory is bounded by its page.
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

    /// Reads up to `limit` events of a stream with version `>= from_version`, in
    /// version order: one page of [`read_stream_paged`](Self::read_stream_paged), with
    /// the same checks of every value as [`read_stream`](Self::read_stream). The
    /// backends of this crate fetch only those rows; the default reads the whole rest
    /// of the stream and keeps the first `limit`, for a backend that cannot page.
    fn read_stream_page(
        &self,
        stream_type: &str,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredEvent>, StoreError>> + Send {
        async move {
            let mut events = self.read_stream(stream_type, stream_id, from_version).await?;
            events.truncate(limit);
            Ok(events)
        }
    }

    /// Reads a stream's events with version `>= from_version`, in version order, as a
    /// [`Stream`] that fetches `page_size` events at a time (at least 1;
    /// [`PAGE_SIZE`] is a good default): memory stays bounded by the page, however
    /// long the stream. **Use it for long streams**, where
    /// [`read_stream`](Self::read_stream) would hold every event at once.
    ///
    /// It checks what `read_stream` checks, with the same errors: every stored value,
    /// and versions running from `from_version` (1 when 0) without gap or repeat
    /// across pages ([`StoreError::Corrupt`] naming the stream and the version). The
    /// first error ends the stream. Events appended while it is read may or may not
    /// be part of it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), es::StoreError> {
    /// use es::{EventStore, MemoryStore};
    /// use futures_util::TryStreamExt;
    ///
    /// let store = MemoryStore::new();
    /// let mut events = std::pin::pin!(store.read_stream_paged("Account", "a-1", 1, es::store::PAGE_SIZE));
    /// while let Some(event) = events.try_next().await? {
    ///     println!("{} {}", event.stream_version, event.event_type);
    /// }
    /// # Ok(()) }
    /// ```
    fn read_stream_paged<'a>(
        &'a self,
        stream_type: &str,
        stream_id: &str,
        from_version: u64,
        page_size: usize,
    ) -> impl Stream<Item = Result<StoredEvent, StoreError>> + Send + use<'a, Self> {
        paged::stream(self, stream_type, stream_id, from_version, page_size)
    }

    /// Reads the global log strictly after `after`, in commit order, as a [`Stream`]
    /// of [`read_all`](Self::read_all) pages of `page_size` events (at least 1):
    /// memory stays bounded by the page, however long the log. The stream ends at the
    /// first empty page, that is, where `read_all` has nothing more yet; go on later
    /// from the last event's cursor.
    fn read_all_paged(
        &self,
        after: Cursor,
        page_size: usize,
    ) -> impl Stream<Item = Result<StoredEvent, StoreError>> + Send + use<'_, Self> {
        paged::log(self, after, page_size)
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::recorded::Metadata;

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
}
