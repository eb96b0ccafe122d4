//! Commands: load, decide, append with the expected version.
//!
//! The command side is the only place that knows the time and makes ids: both come
//! from the injected [`Clock`] and [`IdSource`] through the [`Context`] handed to the
//! decision, so that events carry them and `apply` never needs them.

use std::fmt;
use std::sync::Arc;

use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::clock::{Clock, IdSource, RandomIds, SystemClock, Timestamp};
use crate::event::{EncodeError, Event};
use crate::recorded::{Metadata, Recorded};
use crate::rehydrate::{Loaded, RehydrateError};
use crate::store::{EventStore, ExpectedVersion, NewEvent, StoreError};

/// What a decision can read besides the state: the time and ids to capture into the
/// events it returns.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    now: Timestamp,
    ids: &'a dyn IdSource,
    stream_id: &'a str,
    version: u64,
}

impl<'a> Context<'a> {
    /// A context for deciding on `stream_id` at `version`, at time `now`.
    pub fn new(now: Timestamp, ids: &'a dyn IdSource, stream_id: &'a str, version: u64) -> Self {
        Self { now, ids, stream_id, version }
    }

    /// The time of this command, from the injected clock. It is also the recorded
    /// `occurred_at` of every event the command produces.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// A new unique id from the injected id source.
    #[must_use]
    pub fn new_id(&self) -> Uuid {
        self.ids.next_id()
    }

    /// The stream the command is deciding on.
    #[must_use]
    pub fn stream_id(&self) -> &str {
        self.stream_id
    }

    /// The stream's version the decision is based on.
    #[must_use]
    pub fn version(&self) -> u64 {
        self.version
    }
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("now", &self.now)
            .field("stream_id", &self.stream_id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// How often a command is tried again when another writer appended first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Total attempts, the first included (1 = no retry).
    pub attempts: u32,
}

impl Retry {
    /// Fail on the first conflict.
    pub const NEVER: Retry = Retry { attempts: 1 };

    /// Up to `attempts` attempts in all; each retry reloads the stream and decides
    /// again on the fresh state.
    #[must_use]
    pub const fn attempts(attempts: u32) -> Self {
        Self { attempts }
    }
}

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

/// A command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError<E> {
    /// The decision refused the command (a domain error).
    #[error("command rejected: {0}")]
    Rejected(E),
    /// The store failed, or another writer appended first and retries ran out
    /// ([`StoreError::Conflict`]).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The stream does not fold.
    #[error(transparent)]
    Rehydrate(#[from] RehydrateError),
    /// An event the decision returned cannot be encoded; nothing was written.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

impl<E> CommandError<E> {
    /// Whether the command lost an optimistic-concurrency race.
    pub fn is_conflict(&self) -> bool {
        matches!(self, CommandError::Store(error) if error.is_conflict())
    }
}

impl<E> From<LoadError> for CommandError<E> {
    fn from(error: LoadError) -> Self {
        match error {
            LoadError::Store(error) => CommandError::Store(error),
            LoadError::Rehydrate(error) => CommandError::Rehydrate(error),
        }
    }
}

/// The outcome of a command that was recorded.
#[derive(Debug)]
pub struct Committed<A: Aggregate> {
    /// The state after the new events, folded from the very values that were stored.
    pub state: A,
    /// The stream's version after the command.
    pub version: u64,
    /// The events recorded, with their envelopes.
    pub events: Vec<Recorded<A::Event>>,
}

/// Loads aggregates and runs commands against a store, with an injected clock and id
/// source.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use es::{aggregate, Aggregate, Event, MemoryStore, Repository};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Serialize, Deserialize, Event)]
/// struct Deposited { amount: u64 }
///
/// #[aggregate]
/// #[derive(Debug, Default)]
/// struct Account { balance: u64 }
///
/// #[aggregate]
/// impl Aggregate for Account {
///     type Event = Deposited;
///     fn apply(&mut self, event: &Deposited) { self.balance += event.amount; }
/// }
///
/// let repository = Repository::new(MemoryStore::new());
/// let committed = repository
///     .execute("acc-1", |_account: &Account, _ctx| Ok::<_, std::convert::Infallible>(vec![Deposited { amount: 5 }]))
///     .await?;
/// assert_eq!((committed.state.balance, committed.version), (5, 1));
/// assert_eq!(repository.load::<Account>("acc-1").await?.state().balance, 5);
/// # Ok(()) }
/// ```
pub struct Repository<S> {
    store: S,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdSource>,
}

impl<S: fmt::Debug> fmt::Debug for Repository<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Repository").field("store", &self.store).finish_non_exhaustive()
    }
}

impl<S: EventStore> Repository<S> {
    /// A repository with the system clock and random UUID v7 ids.
    pub fn new(store: S) -> Self {
        Self { store, clock: Arc::new(SystemClock), ids: Arc::new(RandomIds) }
    }

    /// Uses `clock` for the time of commands (a [`ManualClock`](crate::ManualClock) in tests).
    #[must_use]
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Uses `ids` for event ids (a [`SequentialIds`](crate::SequentialIds) in tests).
    #[must_use]
    pub fn with_ids(mut self, ids: impl IdSource + 'static) -> Self {
        self.ids = Arc::new(ids);
        self
    }

    /// The store underneath.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Rebuilds an aggregate from its whole stream, strictly.
    pub async fn load<A: Aggregate>(&self, stream_id: &str) -> Result<Loaded<A>, LoadError> {
        self.store.load::<A>(stream_id).await
    }

    /// Loads the aggregate, decides, and appends the decided events expecting the
    /// version that was loaded. A concurrent append makes it fail with
    /// [`StoreError::Conflict`]; see [`execute_with`](Self::execute_with) to retry.
    pub async fn execute<A, E, F>(&self, stream_id: &str, decide: F) -> Result<Committed<A>, CommandError<E>>
    where
        A: Aggregate,
        F: FnMut(&A, &Context<'_>) -> Result<Vec<A::Event>, E> + Send,
        E: Send,
    {
        self.execute_with(stream_id, Retry::NEVER, Metadata::default(), decide).await
    }

    /// Like [`execute`](Self::execute), retrying on conflict as `retry` says, and
    /// recording `metadata` with every event.
    pub async fn execute_with<A, E, F>(
        &self,
        stream_id: &str,
        retry: Retry,
        metadata: Metadata,
        mut decide: F,
    ) -> Result<Committed<A>, CommandError<E>>
    where
        A: Aggregate,
        F: FnMut(&A, &Context<'_>) -> Result<Vec<A::Event>, E> + Send,
        E: Send,
    {
        let mut attempt = 1;
        loop {
            let loaded = self.load::<A>(stream_id).await?;
            let now = self.clock.now();
            let events = {
                let ctx = Context::new(now, &*self.ids, stream_id, loaded.version());
                decide(loaded.state(), &ctx).map_err(CommandError::Rejected)?
            };
            match self.record(loaded, now, &metadata, events).await {
                Err(error) if error.is_conflict() && attempt < retry.attempts => {
                    tracing::debug!(stream_type = A::stream_type(), stream_id, attempt, "conflict, retrying command");
                    attempt += 1;
                }
                outcome => return outcome,
            }
        }
    }

    async fn record<A: Aggregate, E>(
        &self,
        loaded: Loaded<A>,
        now: Timestamp,
        metadata: &Metadata,
        events: Vec<A::Event>,
    ) -> Result<Committed<A>, CommandError<E>> {
        let expected = match loaded.version() {
            0 => ExpectedVersion::NoStream,
            version => ExpectedVersion::Exact(version),
        };
        let new_events = events
            .iter()
            .map(|event| NewEvent::encode(event, self.ids.next_id(), now, metadata.clone()))
            .collect::<Result<Vec<_>, _>>()?;
        if new_events.is_empty() {
            let version = loaded.version();
            return Ok(Committed { state: loaded.into_state(), version, events: Vec::new() });
        }
        let stream_id = loaded.stream_id().to_owned();
        let ids: Vec<Uuid> = new_events.iter().map(|new| new.event_id).collect();
        let appended = self.store.append(A::stream_type(), &stream_id, expected, new_events).await?;
        // Fold the decided events inside the envelopes the store assigned, exactly as
        // a replay will (which the conformance suite checks against the store).
        let mut loaded = loaded;
        let mut recorded = Vec::with_capacity(events.len());
        let versions = loaded.version() + 1..;
        for (((event, event_id), cursor), version) in events.into_iter().zip(ids).zip(&appended.cursors).zip(versions) {
            let event_type = event.event_type();
            let (stream_type, stream_id) = loaded.shared_stream();
            let event = Recorded {
                event_id,
                stream_type: Arc::clone(stream_type),
                stream_id: Arc::clone(stream_id),
                stream_version: version,
                cursor: *cursor,
                event_type: event_type.name,
                schema_version: event_type.version,
                occurred_at: now,
                metadata: metadata.clone(),
                event,
            };
            loaded.fold_recorded(&event)?;
            recorded.push(event);
        }
        let before = appended.version - recorded.len() as u64;
        crate::snapshot::maybe_take(&self.store, &stream_id, loaded.state(), before, appended.version).await;
        Ok(Committed { state: loaded.into_state(), version: appended.version, events: recorded })
    }
}
