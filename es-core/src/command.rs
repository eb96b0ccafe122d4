//! Commands: load, decide, append with the expected version.
//!
//! The command side is the only place that knows the time and makes ids: both come
//! from the injected [`Clock`] and [`IdSource`] through the [`Context`] handed to the
//! decision, so that events carry them and `apply` never needs them.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::clock::{Clock, SystemClock, Timestamp};
use crate::event::{EncodeError, Event};
use crate::id::{IdSource, RandomIds};
use crate::idempotency::{AppendOnce, RecordedCommand};
use crate::recorded::{Metadata, Recorded};
use crate::rehydrate::{Loaded, RehydrateError};
use crate::store::{Appended, Cursor, EventStore, ExpectedVersion, LoadError, NewEvent, StoreError};

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

/// The future an asynchronous decision returns (see
/// [`Repository::execute_async`]): boxed, so that it may borrow the state and the
/// context while it awaits, and `Send`, so that commands run on any executor.
pub type Decision<'a, T, E> = Pin<Box<dyn Future<Output = Result<Vec<T>, E>> + Send + 'a>>;

/// What a synchronous decision returns: `Result<Vec<Event>, Error>`. A separate
/// trait only so that a decision returning anything else (a future, most often) is
/// told where to go instead.
#[diagnostic::on_unimplemented(
    message = "a decision passed to `execute` returns `Result<Vec<Event>, Error>`, not `{Self}`",
    label = "this decision returns `{Self}`",
    note = "a decision that awaits (calls another service before deciding) goes to `Repository::execute_async`, and returns `Box::pin(async move {{ ... }})`"
)]
pub trait Decided<T, E> {
    /// The decision's result.
    fn into_result(self) -> Result<Vec<T>, E>;
}

impl<T, E> Decided<T, E> for Result<Vec<T>, E> {
    fn into_result(self) -> Self {
        self
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
    /// The idempotency key was recorded by a command on another stream; nothing was
    /// decided or written.
    #[error("idempotency key {key:?} was used by a command on stream {stream_type}/{stream_id}")]
    KeyReused {
        /// The key.
        key: String,
        /// The aggregate type of the stream that recorded it.
        stream_type: String,
        /// The id of the stream that recorded it.
        stream_id: String,
    },
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
    /// Whether this is a repeat of a command already recorded under its idempotency
    /// key ([`Repository::execute_once`]): nothing was decided or appended, and the
    /// fields above are those of the first execution, read back from the store.
    pub repeated: bool,
}

impl<A: Aggregate> Committed<A> {
    /// Where the command's last event stands in the global log (`None` when it
    /// recorded no event): a projection whose checkpoint has reached this cursor
    /// includes the command.
    #[must_use]
    pub fn cursor(&self) -> Option<Cursor> {
        self.events.last().map(|event| event.cursor)
    }
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

/// Whether a command's outcome is a conflict that `retry` allows to try again;
/// counts the attempt.
fn retries<A: Aggregate, E>(
    outcome: &Result<Committed<A>, CommandError<E>>,
    retry: Retry,
    attempt: &mut u32,
    stream_id: &str,
) -> bool {
    let again = matches!(outcome, Err(error) if error.is_conflict()) && *attempt < retry.attempts;
    if again {
        tracing::debug!(stream_type = A::stream_type(), stream_id, attempt = *attempt, "conflict, retrying command");
        *attempt += 1;
    }
    again
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

    /// A handle on the aggregates of type `A` in this repository: the same commands,
    /// with `A` fixed once, so that decisions need no type annotation.
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
    /// let accounts = repository.aggregate::<Account>();
    /// accounts.execute("acc-1", |account, _ctx| {
    ///     Ok::<_, String>(vec![Deposited { amount: account.balance + 5 }])
    /// }).await?;
    /// assert_eq!(accounts.load("acc-1").await?.state().balance, 5);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn aggregate<A: Aggregate>(&self) -> Aggregates<'_, S, A> {
        Aggregates { repository: self, aggregate: PhantomData }
    }

    /// Loads the aggregate, decides, and appends the decided events expecting the
    /// version that was loaded. A concurrent append makes it fail with
    /// [`StoreError::Conflict`]; see [`execute_with`](Self::execute_with) to retry.
    pub async fn execute<A, E, F, R>(&self, stream_id: &str, decide: F) -> Result<Committed<A>, CommandError<E>>
    where
        A: Aggregate,
        F: FnMut(&A, &Context<'_>) -> R + Send,
        R: Decided<A::Event, E>,
        E: Send,
    {
        self.execute_with(stream_id, Retry::NEVER, Metadata::default(), decide).await
    }

    /// Like [`execute`](Self::execute), retrying on conflict as `retry` says, and
    /// recording `metadata` with every event.
    pub async fn execute_with<A, E, F, R>(
        &self,
        stream_id: &str,
        retry: Retry,
        metadata: Metadata,
        mut decide: F,
    ) -> Result<Committed<A>, CommandError<E>>
    where
        A: Aggregate,
        F: FnMut(&A, &Context<'_>) -> R + Send,
        R: Decided<A::Event, E>,
        E: Send,
    {
        // The same loop as `execute_async_with`, without the `.await`: routing a
        // synchronous decision through the boxed `Decision` would require `E: 'static`
        // of every caller.
        let mut attempt = 1;
        loop {
            let loaded = self.load::<A>(stream_id).await?;
            let now = self.clock.now();
            let events = {
                let ctx = Context::new(now, &*self.ids, stream_id, loaded.version());
                decide(loaded.state(), &ctx).into_result().map_err(CommandError::Rejected)?
            };
            let outcome = self.record(loaded, now, &metadata, events).await;
            if !retries::<A, E>(&outcome, retry, &mut attempt, stream_id) {
                return outcome;
            }
        }
    }

    /// Like [`execute`](Self::execute), with a decision that awaits: it may call
    /// another service (a price, a fraud score, a check) before deciding. Purity is
    /// for `apply`, not for decisions: do the I/O here and record its outcome in the
    /// events, so that replays never repeat it. On a conflict the whole decision runs
    /// again on the fresh state, I/O included.
    ///
    /// The decision returns its future boxed (`Box::pin(async move { .. })`, a
    /// [`Decision`]): so it may borrow the state and the context across its awaits,
    /// and the command's own future stays `Send`, as web frameworks and
    /// `tokio::spawn` require.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use es::{aggregate, Aggregate, Context, Event, MemoryStore, Repository};
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Debug, Serialize, Deserialize, Event)]
    /// struct Priced { sku: String, cents: u64 }
    ///
    /// #[aggregate]
    /// #[derive(Debug, Default)]
    /// struct Quote { total: u64 }
    ///
    /// #[aggregate]
    /// impl Aggregate for Quote {
    ///     type Event = Priced;
    ///     fn apply(&mut self, event: &Priced) { self.total += event.cents; }
    /// }
    ///
    /// /// Stands for an HTTP call to a pricing service.
    /// async fn price_of(sku: &str) -> Result<u64, String> {
    ///     Ok(if sku == "book" { 1_250 } else { 99 })
    /// }
    ///
    /// let quotes = Repository::new(MemoryStore::new());
    /// let committed = quotes
    ///     .execute_async("quote-1", |_quote: &Quote, _ctx| {
    ///         Box::pin(async move {
    ///             let cents = price_of("book").await?; // the outcome is recorded in the event
    ///             Ok::<_, String>(vec![Priced { sku: "book".into(), cents }])
    ///         })
    ///     })
    ///     .await?;
    /// assert_eq!(committed.state.total, 1_250);
    /// # Ok(()) }
    /// ```
    pub async fn execute_async<A, E, F>(&self, stream_id: &str, decide: F) -> Result<Committed<A>, CommandError<E>>
    where
        A: Aggregate,
        F: for<'a> FnMut(&'a A, &'a Context<'a>) -> Decision<'a, A::Event, E> + Send,
        E: Send,
    {
        self.execute_async_with(stream_id, Retry::NEVER, Metadata::default(), decide).await
    }

    /// Like [`execute_async`](Self::execute_async), retrying on conflict as `retry`
    /// says (each retry reloads and runs the whole decision again), and recording
    /// `metadata` with every event.
    pub async fn execute_async_with<A, E, F>(
        &self,
        stream_id: &str,
        retry: Retry,
        metadata: Metadata,
        mut decide: F,
    ) -> Result<Committed<A>, CommandError<E>>
    where
        A: Aggregate,
        F: for<'a> FnMut(&'a A, &'a Context<'a>) -> Decision<'a, A::Event, E> + Send,
        E: Send,
    {
        let mut attempt = 1;
        loop {
            let loaded = self.load::<A>(stream_id).await?;
            let now = self.clock.now();
            let events = {
                let ctx = Context::new(now, &*self.ids, stream_id, loaded.version());
                decide(loaded.state(), &ctx).await.map_err(CommandError::Rejected)?
            };
            let outcome = self.record(loaded, now, &metadata, events).await;
            if !retries::<A, E>(&outcome, retry, &mut attempt, stream_id) {
                return outcome;
            }
        }
    }

    /// Like [`execute`](Self::execute), at most once per idempotency `key`: the key is
    /// recorded with the events, and a later execution with the same key (a client's
    /// retry, after a timeout or a restart) does not decide again but returns the
    /// first execution's outcome, marked [`repeated`](Committed::repeated). A key
    /// recorded for another stream is [`CommandError::KeyReused`]. See
    /// [`idempotency`](crate::idempotency) for the guarantee.
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
    /// let accounts = Repository::new(MemoryStore::new());
    /// let deposit = |_: &Account, _: &es::Context<'_>| Ok::<_, std::convert::Infallible>(vec![Deposited { amount: 5 }]);
    /// let first = accounts.execute_once("acc-1", "request-7", deposit).await?;
    /// let retry = accounts.execute_once("acc-1", "request-7", deposit).await?;
    /// assert!(!first.repeated && retry.repeated);
    /// assert_eq!(retry.events[0].event_id(), first.events[0].event_id());
    /// assert_eq!(accounts.load::<Account>("acc-1").await?.state().balance, 5);
    /// # Ok(()) }
    /// ```
    pub async fn execute_once<A, E, F, R>(
        &self,
        stream_id: &str,
        key: &str,
        mut decide: F,
    ) -> Result<Committed<A>, CommandError<E>>
    where
        A: Aggregate,
        F: FnMut(&A, &Context<'_>) -> R + Send,
        R: Decided<A::Event, E>,
        E: Send,
    {
        let loaded = match self.load_once::<A, E>(stream_id, key).await? {
            Ok(loaded) => loaded,
            Err(first) => return Ok(first),
        };
        let now = self.clock.now();
        let events = {
            let ctx = Context::new(now, &*self.ids, stream_id, loaded.version());
            decide(loaded.state(), &ctx).into_result().map_err(CommandError::Rejected)?
        };
        self.record_under_key(key, loaded, now, events).await
    }

    /// Like [`execute_once`](Self::execute_once), with a decision that awaits (see
    /// [`execute_async`](Self::execute_async)).
    pub async fn execute_async_once<A, E, F>(
        &self,
        stream_id: &str,
        key: &str,
        mut decide: F,
    ) -> Result<Committed<A>, CommandError<E>>
    where
        A: Aggregate,
        F: for<'a> FnMut(&'a A, &'a Context<'a>) -> Decision<'a, A::Event, E> + Send,
        E: Send,
    {
        let loaded = match self.load_once::<A, E>(stream_id, key).await? {
            Ok(loaded) => loaded,
            Err(first) => return Ok(first),
        };
        let now = self.clock.now();
        let events = {
            let ctx = Context::new(now, &*self.ids, stream_id, loaded.version());
            decide(loaded.state(), &ctx).await.map_err(CommandError::Rejected)?
        };
        self.record_under_key(key, loaded, now, events).await
    }

    async fn record<A: Aggregate, E>(
        &self,
        loaded: Loaded<A>,
        now: Timestamp,
        metadata: &Metadata,
        events: Vec<A::Event>,
    ) -> Result<Committed<A>, CommandError<E>> {
        match self.record_once(None, loaded, now, metadata, events).await? {
            Outcome::Committed(committed) => Ok(committed),
            Outcome::Before(recorded) => unreachable!("no key, yet {recorded:?} was found under it"),
        }
    }

    /// Appends the decided events (under `key` when given) and folds them into the
    /// state, or returns what `key` recorded before.
    async fn record_once<A: Aggregate, E>(
        &self,
        key: Option<&str>,
        loaded: Loaded<A>,
        now: Timestamp,
        metadata: &Metadata,
        events: Vec<A::Event>,
    ) -> Result<Outcome<A>, CommandError<E>> {
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
            let committed = Committed { state: loaded.into_state(), version, events: Vec::new(), repeated: false };
            return Ok(Outcome::Committed(committed));
        }
        let stream_id = loaded.stream_id().to_owned();
        let ids: Vec<Uuid> = new_events.iter().map(|new| new.event_id).collect();
        let appended = match key {
            None => self.store.append(A::stream_type(), &stream_id, expected, new_events).await?,
            Some(key) => match self.store.append_once(key, A::stream_type(), &stream_id, expected, new_events).await? {
                AppendOnce::Appended(appended) => appended,
                AppendOnce::Recorded(recorded) => return Ok(Outcome::Before(recorded)),
            },
        };
        let committed = fold_appended(loaded, now, metadata, events, ids, &appended)?;
        let before = appended.version - committed.events.len() as u64;
        crate::snapshot::maybe_take(&self.store, &stream_id, &committed.state, before, appended.version).await;
        Ok(Outcome::Committed(committed))
    }

    /// The first execution's outcome if `key` was recorded, else the stream loaded
    /// for a decision.
    async fn load_once<A: Aggregate, E>(
        &self,
        stream_id: &str,
        key: &str,
    ) -> Result<Result<Loaded<A>, Committed<A>>, CommandError<E>> {
        crate::idempotency::check_key(key)?;
        match self.store.recorded_command(key).await? {
            Some(recorded) => Ok(Err(self.repeat(stream_id, recorded).await?)),
            None => Ok(Ok(self.load::<A>(stream_id).await?)),
        }
    }

    /// Appends what was decided under `key`; if another execution under the same key
    /// got there first, returns its outcome instead.
    async fn record_under_key<A: Aggregate, E>(
        &self,
        key: &str,
        loaded: Loaded<A>,
        now: Timestamp,
        events: Vec<A::Event>,
    ) -> Result<Committed<A>, CommandError<E>> {
        let stream_id = loaded.stream_id().to_owned();
        match self.record_once(Some(key), loaded, now, &Metadata::default(), events).await {
            Ok(Outcome::Committed(committed)) => Ok(committed),
            Ok(Outcome::Before(recorded)) => self.repeat(&stream_id, recorded).await,
            // A concurrent execution under the same key may be what moved the stream.
            Err(error) if error.is_conflict() => match self.store.recorded_command(key).await? {
                Some(recorded) => self.repeat(&stream_id, recorded).await,
                None => Err(error),
            },
            Err(error) => Err(error),
        }
    }

    /// The outcome of the first execution under `recorded`'s key, read back from the
    /// store: its events, and the state right after them.
    async fn repeat<A: Aggregate, E>(
        &self,
        stream_id: &str,
        recorded: RecordedCommand,
    ) -> Result<Committed<A>, CommandError<E>> {
        if !recorded.is_for(A::stream_type(), stream_id) {
            return Err(CommandError::KeyReused {
                key: recorded.key,
                stream_type: recorded.stream_type,
                stream_id: recorded.stream_id,
            });
        }
        let mut loaded = Loaded::<A>::new(stream_id);
        let mut events = Vec::new();
        // Page by page, stopping at the command's last event: memory stays bounded
        // however long the stream has grown since.
        let stream = self.store.read_stream_paged(A::stream_type(), stream_id, 1, crate::store::PAGE_SIZE);
        futures_util::pin_mut!(stream);
        while let Some(stored) = futures_util::StreamExt::next(&mut stream).await {
            let stored = stored?;
            if stored.stream_version > recorded.last_version {
                break;
            }
            if stored.stream_version < recorded.first_version {
                loaded.fold(stored)?;
            } else {
                let event = stored.decode::<A::Event>()?;
                loaded.fold_recorded(&event)?;
                events.push(event);
            }
        }
        if loaded.version() != recorded.last_version {
            return Err(CommandError::Store(StoreError::Corrupt {
                location: format!("stream {}/{stream_id}", A::stream_type()),
                reason: format!(
                    "idempotency key {:?} recorded versions {}..={}, but the stream ends at version {}",
                    recorded.key,
                    recorded.first_version,
                    recorded.last_version,
                    loaded.version()
                ),
            }));
        }
        Ok(Committed { state: loaded.into_state(), version: recorded.last_version, events, repeated: true })
    }
}

/// Folds the decided events inside the envelopes the store assigned, exactly as a
/// replay will (which the conformance suite checks against the store).
fn fold_appended<A: Aggregate, E>(
    mut loaded: Loaded<A>,
    now: Timestamp,
    metadata: &Metadata,
    events: Vec<A::Event>,
    ids: Vec<Uuid>,
    appended: &Appended,
) -> Result<Committed<A>, CommandError<E>> {
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
    Ok(Committed { state: loaded.into_state(), version: appended.version, events: recorded, repeated: false })
}

/// What recording a decision found.
enum Outcome<A: Aggregate> {
    /// The events were appended.
    Committed(Committed<A>),
    /// The idempotency key was recorded before: nothing was appended.
    Before(RecordedCommand),
}

/// The aggregates of one type in a [`Repository`], from
/// [`Repository::aggregate`]: its commands with the aggregate type fixed.
pub struct Aggregates<'r, S, A> {
    repository: &'r Repository<S>,
    aggregate: PhantomData<fn() -> A>,
}

impl<S, A> fmt::Debug for Aggregates<'_, S, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Aggregates").field("type", &std::any::type_name::<A>()).finish_non_exhaustive()
    }
}

impl<S, A> Clone for Aggregates<'_, S, A> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S, A> Copy for Aggregates<'_, S, A> {}

impl<S: EventStore, A: Aggregate> Aggregates<'_, S, A> {
    /// [`Repository::load`] for this aggregate type.
    pub async fn load(&self, stream_id: &str) -> Result<Loaded<A>, LoadError> {
        self.repository.load::<A>(stream_id).await
    }

    /// [`Repository::execute`] for this aggregate type.
    pub async fn execute<E, F, R>(&self, stream_id: &str, decide: F) -> Result<Committed<A>, CommandError<E>>
    where
        F: FnMut(&A, &Context<'_>) -> R + Send,
        R: Decided<A::Event, E>,
        E: Send,
    {
        self.repository.execute::<A, E, F, R>(stream_id, decide).await
    }

    /// [`Repository::execute_with`] for this aggregate type.
    pub async fn execute_with<E, F, R>(
        &self,
        stream_id: &str,
        retry: Retry,
        metadata: Metadata,
        decide: F,
    ) -> Result<Committed<A>, CommandError<E>>
    where
        F: FnMut(&A, &Context<'_>) -> R + Send,
        R: Decided<A::Event, E>,
        E: Send,
    {
        self.repository.execute_with::<A, E, F, R>(stream_id, retry, metadata, decide).await
    }

    /// [`Repository::execute_once`] for this aggregate type.
    pub async fn execute_once<E, F, R>(
        &self,
        stream_id: &str,
        key: &str,
        decide: F,
    ) -> Result<Committed<A>, CommandError<E>>
    where
        F: FnMut(&A, &Context<'_>) -> R + Send,
        R: Decided<A::Event, E>,
        E: Send,
    {
        self.repository.execute_once::<A, E, F, R>(stream_id, key, decide).await
    }

    /// [`Repository::execute_async_once`] for this aggregate type.
    pub async fn execute_async_once<E, F>(
        &self,
        stream_id: &str,
        key: &str,
        decide: F,
    ) -> Result<Committed<A>, CommandError<E>>
    where
        F: for<'a> FnMut(&'a A, &'a Context<'a>) -> Decision<'a, A::Event, E> + Send,
        E: Send,
    {
        self.repository.execute_async_once::<A, E, F>(stream_id, key, decide).await
    }

    /// [`Repository::execute_async`] for this aggregate type.
    pub async fn execute_async<E, F>(&self, stream_id: &str, decide: F) -> Result<Committed<A>, CommandError<E>>
    where
        F: for<'a> FnMut(&'a A, &'a Context<'a>) -> Decision<'a, A::Event, E> + Send,
        E: Send,
    {
        self.repository.execute_async::<A, E, F>(stream_id, decide).await
    }

    /// [`Repository::execute_async_with`] for this aggregate type.
    pub async fn execute_async_with<E, F>(
        &self,
        stream_id: &str,
        retry: Retry,
        metadata: Metadata,
        decide: F,
    ) -> Result<Committed<A>, CommandError<E>>
    where
        F: for<'a> FnMut(&'a A, &'a Context<'a>) -> Decision<'a, A::Event, E> + Send,
        E: Send,
    {
        self.repository.execute_async_with::<A, E, F>(stream_id, retry, metadata, decide).await
    }
}
