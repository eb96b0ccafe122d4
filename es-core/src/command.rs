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
use crate::recorded::{Metadata, Recorded};
use crate::rehydrate::{Loaded, RehydrateError};
use crate::store::{EventStore, ExpectedVersion, LoadError, NewEvent, StoreError};

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
