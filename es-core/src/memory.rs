//! An in-memory store, for tests and examples.
//!
//! It keeps events encoded, exactly as the database stores do, so that an event that
//! does not survive encoding fails here too rather than first in production.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::rehydrate::EventParts;
use crate::rehydrate::Loaded;
use crate::snapshot::Snapshot;
use crate::store::LoadError;
use crate::store::{Appended, Cursor, EventStore, ExpectedVersion, NewEvent, StoreError, StoredEvent};

/// An event store held in memory. Cloning shares nothing: it is one store per value.
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
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// The global log; an event's position is its index + 1.
    log: Vec<StoredEvent>,
    /// Indexes into `log`, per stream type and stream id, in version order.
    streams: HashMap<String, HashMap<String, Vec<usize>>>,
    ids: HashSet<Uuid>,
    snapshots: HashMap<(String, String), Snapshot>,
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
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `work` as one transaction: every append it makes commits together, or none
    /// does if it returns an error. The transaction type of this backend is
    /// [`MemoryTransaction`].
    pub fn transaction<T, E: From<StoreError>>(
        &self,
        work: impl FnOnce(&mut MemoryTransaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut inner = self.lock();
        let mut tx = MemoryTransaction { inner: &inner, staged: Vec::new() };
        let value = work(&mut tx)?;
        let staged = tx.staged;
        inner.commit(staged);
        Ok(value)
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

/// Appends staged inside [`MemoryStore::transaction`].
#[derive(Debug)]
pub struct MemoryTransaction<'a> {
    inner: &'a Inner,
    staged: Vec<StoredEvent>,
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
            self.staged.iter().filter(|e| e.stream_type == stream_type && e.stream_id == stream_id).count() as u64;
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
                || self.staged.iter().any(|e| e.event_id == event.event_id)
                || !seen.insert(event.event_id);
            if repeated {
                return Err(StoreError::DuplicateEventId { event_id: event.event_id });
            }
        }
        let first_position = (self.inner.log.len() + self.staged.len()) as u64 + 1;
        let staged_before = self.staged.len();
        let mut cursors = Vec::with_capacity(events.len());
        for (offset, event) in (0u64..).zip(events) {
            let cursor = Cursor::at_position(first_position + offset);
            cursors.push(cursor);
            self.staged.push(StoredEvent {
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
            self.staged.truncate(staged_before);
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

    fn commit(&mut self, staged: Vec<StoredEvent>) {
        for event in staged {
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
