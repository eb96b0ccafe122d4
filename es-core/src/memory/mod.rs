//! An in-memory store, for tests and examples.
//!
//! It keeps events encoded, exactly as the database stores do, so that an event that
//! does not survive encoding fails here too rather than first in production. Its
//! projections ([`Projection`], [`ProjectionRunner`]) and views keep their checkpoints
//! and documents in the store, like the database stores.

mod projection;
mod subscription;
mod view;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::clock::Timestamp;
use crate::idempotency::{AppendOnce, RecordedCommand};
use crate::projection::Checkpoint;
use crate::rehydrate::EventParts;
use crate::rehydrate::Loaded;
use crate::snapshot::Snapshot;
use crate::store::LoadError;
use crate::store::{Appended, Cursor, EventStore, ExpectedVersion, NewEvent, StoreError, StoredEvent};

pub use projection::{Projection, ProjectionRunner};

/// An event store held in memory. Cheap to clone: clones share the events, as the
/// clones of the other stores share their database.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), es::StoreError> {
/// use es::{EventStore, ExpectedVersion, MemoryStore};
///
/// let store = MemoryStore::new();
/// let appended = store.append("Account", "a-1", ExpectedVersion::NoStream, vec![]).await?;
/// assert_eq!(appended.version, 0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    /// How many events were committed, for what follows the log (running
    /// projections, [`EventStore::watch_appends`]).
    committed: watch::Sender<u64>,
    /// Bumped after each projection pass, for read-your-writes waits.
    checkpoints: watch::Sender<u64>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        let shared =
            Shared { inner: Mutex::default(), committed: watch::channel(0).0, checkpoints: watch::channel(0).0 };
        Self { shared: Arc::new(shared) }
    }
}

#[derive(Debug, Default)]
struct Inner {
    /// The global log; an event's position is its index + 1.
    log: Vec<StoredEvent>,
    /// Indexes into `log`, per stream type and stream id, in version order.
    streams: HashMap<String, HashMap<String, Vec<usize>>>,
    ids: HashSet<Uuid>,
    snapshots: HashMap<(String, String), Snapshot>,
    /// Idempotency keys and what their commands appended.
    commands: HashMap<String, RecordedCommand>,
    /// Projections' checkpoints, by projection name.
    checkpoints: HashMap<String, Checkpoint>,
    /// Events projections skipped: position → (consumer, reason).
    skipped: BTreeMap<u64, (String, String)>,
    /// View documents (JSON) by view name and key.
    views: BTreeMap<(String, String), String>,
    /// Durable subscriptions: their leases and acknowledged cursors, by name.
    subscriptions: HashMap<String, subscription::Held>,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-written: every
        // mutation happens after all checks, in `Inner::commit`.
        self.shared.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `work` as one transaction: every append it makes commits together, or none
    /// does if it returns an error. The transaction type of this backend is
    /// [`MemoryTransaction`].
    pub fn transaction<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(&mut MemoryTransaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut inner = self.lock();
        let mut tx = MemoryTransaction::new(&inner);
        let value = work(&mut tx)?;
        let staged = tx.into_staged();
        let appended = inner.commit(staged);
        let events = inner.log.len();
        drop(inner);
        if appended {
            self.announce(events);
        }
        Ok(value)
    }

    /// Wakes what follows the log (running projections, subscriptions) after a commit
    /// that appended; `events` is how many the log now holds.
    fn announce(&self, events: usize) {
        self.shared.committed.send_replace(events as u64);
    }

    /// How many events the store holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.lock().log.len()
    }

    /// Whether the store holds no event.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.lock().log.is_empty()
    }
}

/// Appends staged inside [`MemoryStore::transaction`], or by a projection's handler
/// (see [`Projection`]): the in-memory store's transaction.
#[derive(Debug)]
pub struct MemoryTransaction<'a> {
    inner: &'a Inner,
    staged: Staged,
}

/// What a transaction writes when it commits.
#[derive(Debug, Default)]
struct Staged {
    events: Vec<StoredEvent>,
    /// View writes, in order.
    views: Vec<ViewWrite>,
}

#[derive(Debug)]
enum ViewWrite {
    Put { view: String, key: String, document: String },
    Clear { view: String },
}

impl<'a> MemoryTransaction<'a> {
    fn new(inner: &'a Inner) -> Self {
        Self { inner, staged: Staged::default() }
    }

    fn into_staged(self) -> Staged {
        self.staged
    }

    /// The document of a view as this transaction sees it.
    pub(crate) fn view_document(&self, view: &str, key: &str) -> Option<&str> {
        for write in self.staged.views.iter().rev() {
            match write {
                ViewWrite::Put { view: v, key: k, document } if v == view && k == key => return Some(document),
                ViewWrite::Clear { view: v } if v == view => return None,
                ViewWrite::Put { .. } | ViewWrite::Clear { .. } => {}
            }
        }
        self.inner.views.get(&(view.to_owned(), key.to_owned())).map(String::as_str)
    }

    pub(crate) fn put_view_document(&mut self, view: &str, key: String, document: String) {
        self.staged.views.push(ViewWrite::Put { view: view.to_owned(), key, document });
    }

    pub(crate) fn clear_view(&mut self, view: &str) {
        self.staged.views.push(ViewWrite::Clear { view: view.to_owned() });
    }
}

impl MemoryTransaction<'_> {
    /// Appends to a stream inside this transaction, with the same checks as
    /// [`EventStore::append`].
    pub fn append(
        &mut self,
        stream_type: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        crate::store::check_append(stream_type, stream_id, &events)?;
        let sent = events.len();
        let staged_in_stream =
            self.staged.events.iter().filter(|e| e.stream_type == stream_type && e.stream_id == stream_id).count()
                as u64;
        let actual = self.inner.version_of(stream_type, stream_id) + staged_in_stream;
        if !expected.matches(actual) {
            return Err(StoreError::Conflict {
                stream_type: stream_type.to_owned(),
                stream_id: stream_id.to_owned(),
                expected,
                actual,
            });
        }
        let mut seen = HashSet::new();
        for event in &events {
            let repeated = self.inner.ids.contains(&event.event_id)
                || self.staged.events.iter().any(|e| e.event_id == event.event_id)
                || !seen.insert(event.event_id);
            if repeated {
                return Err(StoreError::DuplicateEventId { event_id: event.event_id });
            }
        }
        let first_position = (self.inner.log.len() + self.staged.events.len()) as u64 + 1;
        let staged_before = self.staged.events.len();
        let mut cursors = Vec::with_capacity(events.len());
        for (offset, event) in (0u64..).zip(events) {
            let cursor = Cursor::at_position(first_position + offset);
            cursors.push(cursor);
            self.staged.events.push(StoredEvent {
                event_id: event.event_id,
                stream_type: stream_type.to_owned(),
                stream_id: stream_id.to_owned(),
                stream_version: actual + offset + 1,
                cursor,
                event_type: event.event_type,
                schema_version: event.schema_version,
                occurred_at: event.occurred_at,
                metadata: event.metadata,
                payload: event.payload,
            });
        }
        if let Err(error) = crate::store::check_written(stream_type, stream_id, sent, cursors.len()) {
            self.staged.events.truncate(staged_before);
            return Err(error);
        }
        Ok(Appended { version: actual + cursors.len() as u64, cursors })
    }
}

impl Inner {
    fn version_of(&self, stream_type: &str, stream_id: &str) -> u64 {
        self.stream(stream_type, stream_id).map_or(0, |indexes| indexes.len() as u64)
    }

    fn stream(&self, stream_type: &str, stream_id: &str) -> Option<&Vec<usize>> {
        self.streams.get(stream_type)?.get(stream_id)
    }

    /// Applies what a transaction staged; says whether it appended.
    fn commit(&mut self, staged: Staged) -> bool {
        for write in staged.views {
            match write {
                ViewWrite::Put { view, key, document } => {
                    self.views.insert((view, key), document);
                }
                ViewWrite::Clear { view } => self.views.retain(|(v, _), _| *v != view),
            }
        }
        let appended = !staged.events.is_empty();
        for event in staged.events {
            let index = self.log.len();
            self.ids.insert(event.event_id);
            self.streams
                .entry(event.stream_type.clone())
                .or_default()
                .entry(event.stream_id.clone())
                .or_default()
                .push(index);
            self.log.push(event);
        }
        appended
    }
}

impl EventStore for MemoryStore {
    async fn append(
        &self,
        stream_type: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<Appended, StoreError> {
        self.transaction(|tx| tx.append(stream_type, stream_id, expected, events))
    }

    /// Checks and records the key under the store's lock, with the append.
    async fn append_once(
        &self,
        key: &str,
        stream_type: &str,
        stream_id: &str,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendOnce, StoreError> {
        crate::idempotency::check_key(key)?;
        let mut inner = self.lock();
        if let Some(recorded) = inner.commands.get(key) {
            return Ok(AppendOnce::Recorded(recorded.clone()));
        }
        let mut tx = MemoryTransaction::new(&inner);
        let appended = tx.append(stream_type, stream_id, expected, events)?;
        let staged = tx.into_staged();
        inner.commit(staged);
        if !appended.cursors.is_empty() {
            let recorded = RecordedCommand {
                key: key.to_owned(),
                stream_type: stream_type.to_owned(),
                stream_id: stream_id.to_owned(),
                first_version: appended.version + 1 - appended.cursors.len() as u64,
                last_version: appended.version,
                recorded_at: Timestamp::from_system_time(std::time::SystemTime::now()),
            };
            inner.commands.insert(key.to_owned(), recorded);
            let events = inner.log.len();
            drop(inner);
            self.announce(events);
        }
        Ok(AppendOnce::Appended(appended))
    }

    async fn recorded_command(&self, key: &str) -> Result<Option<RecordedCommand>, StoreError> {
        crate::idempotency::check_key(key)?;
        Ok(self.lock().commands.get(key).cloned())
    }

    async fn prune_commands(&self, cutoff: Timestamp) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let before = inner.commands.len();
        inner.commands.retain(|_, recorded| recorded.recorded_at >= cutoff);
        Ok((before - inner.commands.len()) as u64)
    }

    fn watch_appends(&self) -> watch::Receiver<u64> {
        self.shared.committed.subscribe()
    }

    async fn read_stream(
        &self,
        stream_type: &str,
        stream_id: &str,
        from_version: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        crate::store::check_stream(stream_type, stream_id)?;
        let inner = self.lock();
        let Some(indexes) = inner.stream(stream_type, stream_id) else {
            return Ok(Vec::new());
        };
        let skip = usize::try_from(from_version.saturating_sub(1)).unwrap_or(usize::MAX);
        let events: Vec<StoredEvent> = indexes.iter().skip(skip).map(|&i| inner.log[i].clone()).collect();
        crate::store::check_versions(stream_type, stream_id, from_version, &events)?;
        Ok(events)
    }

    async fn read_stream_page(
        &self,
        stream_type: &str,
        stream_id: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        crate::store::check_stream(stream_type, stream_id)?;
        let inner = self.lock();
        let Some(indexes) = inner.stream(stream_type, stream_id) else {
            return Ok(Vec::new());
        };
        let skip = usize::try_from(from_version.saturating_sub(1)).unwrap_or(usize::MAX);
        Ok(indexes.iter().skip(skip).take(limit).map(|&i| inner.log[i].clone()).collect())
    }

    /// Folds under the lock, decoding each payload where it is kept: no copy of the
    /// stream is made on the way.
    async fn load<A: Aggregate>(&self, stream_id: &str) -> Result<Loaded<A>, LoadError> {
        crate::store::check_stream(A::stream_type(), stream_id)?;
        let mut loaded = crate::snapshot::starting_point::<A, Self>(self, stream_id).await?;
        let inner = self.lock();
        let Some(indexes) = inner.stream(A::stream_type(), stream_id) else {
            return Ok(loaded);
        };
        let skip = usize::try_from(loaded.version()).unwrap_or(usize::MAX);
        for &index in indexes.iter().skip(skip) {
            loaded.fold_parts(EventParts::of(&inner.log[index]))?;
        }
        Ok(loaded)
    }

    async fn read_snapshot(&self, stream_type: &str, stream_id: &str) -> Result<Option<Snapshot>, StoreError> {
        crate::store::check_stream(stream_type, stream_id)?;
        Ok(self.lock().snapshots.get(&(stream_type.to_owned(), stream_id.to_owned())).cloned())
    }

    async fn write_snapshot(&self, stream_type: &str, stream_id: &str, snapshot: Snapshot) -> Result<(), StoreError> {
        crate::store::check_stream(stream_type, stream_id)?;
        let mut inner = self.lock();
        let slot =
            inner.snapshots.entry((stream_type.to_owned(), stream_id.to_owned())).or_insert_with(|| snapshot.clone());
        if slot.stream_version <= snapshot.stream_version {
            *slot = snapshot;
        }
        Ok(())
    }

    async fn read_all(&self, after: Cursor, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let inner = self.lock();
        let start = usize::try_from(after.position).unwrap_or(usize::MAX);
        Ok(inner.log.iter().skip(start).take(limit).cloned().collect())
    }
}
