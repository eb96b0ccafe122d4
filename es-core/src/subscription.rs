//! Subscriptions: the global log as a [`Stream`], first its history after a cursor,
//! then live events as they commit.
//!
//! # The guarantee
//!
//! - **Commit order, no gap, no repeat.** A subscription reads the log strictly after
//!   its cursor, page by page, with [`EventStore::read_all`]; each page moves the
//!   cursor to its last event. The hand-over from history to live events is the same
//!   read, so nothing falls between them. On PostgreSQL, an event whose transaction
//!   commits late, at an earlier position, is still read (after the events that
//!   committed before it), never skipped: see [`EventStore::read_all`].
//! - **Wake-ups.** After an empty page it waits for the store's
//!   [`watch_appends`](EventStore::watch_appends) (appends of this process; of every
//!   process on PostgreSQL), and polls every [`poll_interval`](Subscription::poll_interval)
//!   besides, for appends it cannot hear (other processes on SQLite) and for events
//!   held back behind transactions that were still running (PostgreSQL).
//! - **Back-pressure.** It reads a page only when the consumer has taken the previous
//!   one: at most [`batch_size`](Subscription::batch_size) events are held. Dropping
//!   the stream releases everything it holds.
//! - **Filters** ([`stream_type`](Subscription::stream_type),
//!   [`event_type`](Subscription::event_type)) drop events after reading, so the cursor
//!   still passes them.
//! - **Errors** are yielded in place; the subscription then waits one poll interval
//!   and reads again from the same cursor. Drop it to stop. To resume after a restart,
//!   keep the [`cursor`](crate::StoredEvent::cursor) of the last event handled and
//!   subscribe after it: delivery is then at least once across restarts, exactly once
//!   within one subscription. Or let the store keep it: a [`durable`] subscription
//!   has a name, a lease held by one process at a time, and the cursor its consumer
//!   acknowledged, from which the next holder resumes.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use es::subscription::subscribe;
//! use es::{Cursor, EventStore, ExpectedVersion, MemoryStore, Metadata, NewEvent, SequentialIds, Timestamp};
//! use futures_util::StreamExt;
//! # #[derive(serde::Serialize, serde::Deserialize, es::Event)]
//! # struct Deposited { amount: u64 }
//!
//! let store = MemoryStore::new();
//! let event = NewEvent::encode(&Deposited { amount: 5 }, SequentialIds::nth(1), Timestamp::EPOCH, Metadata::default())?;
//! store.append("Account", "a-1", ExpectedVersion::NoStream, vec![event]).await?;
//!
//! let mut events = subscribe(&store, Cursor::START).stream_type("Account");
//! let first = events.next().await.expect("the history")?;
//! assert_eq!((first.stream_id.as_str(), first.stream_version), ("a-1", 1));
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::Stream;
use tokio::sync::watch;

use crate::relay::LeaseGeneration;
use crate::store::{Cursor, EventStore, StoreError, StoredEvent};

/// Follows the global log of `store` strictly after `from`: see the
/// [module documentation](self).
pub fn subscribe<S: EventStore>(store: &S, from: Cursor) -> Subscription<'_, S> {
    Subscription {
        settings: Some(Settings {
            store,
            renew: None,
            cursor: from,
            batch_size: 256,
            poll_interval: Duration::from_millis(500),
            stream_types: Vec::new(),
            event_types: Vec::new(),
        }),
        events: None,
    }
}

/// The events of a store's global log, history then live, as a [`Stream`]; from
/// [`subscribe`].
#[must_use = "a subscription reads nothing until it is polled"]
pub struct Subscription<'s, S> {
    /// The settings, until the first poll starts the reads.
    settings: Option<Settings<'s, S>>,
    events: Option<Events<'s>>,
}

/// The reads, once started.
type Events<'s> = Pin<Box<dyn Stream<Item = Result<StoredEvent, StoreError>> + Send + 's>>;

/// Renews a durable subscription's lease; an error ends the subscription.
type Renew<'s> = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + 's>> + Send + 's>;

struct Settings<'s, S> {
    store: &'s S,
    /// For a durable subscription: how to renew its lease, and how often.
    renew: Option<(Renew<'s>, Duration)>,
    cursor: Cursor,
    batch_size: usize,
    poll_interval: Duration,
    stream_types: Vec<String>,
    event_types: Vec<String>,
}

impl<S> fmt::Debug for Subscription<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("Subscription");
        if let Some(settings) = &self.settings {
            debug
                .field("cursor", &settings.cursor)
                .field("batch_size", &settings.batch_size)
                .field("poll_interval", &settings.poll_interval)
                .field("stream_types", &settings.stream_types)
                .field("event_types", &settings.event_types);
        }
        debug.finish_non_exhaustive()
    }
}

impl<'s, S: EventStore> Subscription<'s, S> {
    fn settings(&mut self) -> &mut Settings<'s, S> {
        // The builder methods take `self` by value before the first poll, which is
        // the only time the settings are moved out.
        self.settings.as_mut().expect("a subscription is configured before it is polled")
    }

    /// Only events of streams of this aggregate type (may be given several times).
    pub fn stream_type(mut self, stream_type: impl Into<String>) -> Self {
        self.settings().stream_types.push(stream_type.into());
        self
    }

    /// Only events of this type name (may be given several times).
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.settings().event_types.push(event_type.into());
        self
    }

    /// Events read at a time, and so held at most (256 by default; at least 1).
    pub fn batch_size(mut self, events: usize) -> Self {
        self.settings().batch_size = events.max(1);
        self
    }

    /// How often to read again when no wake-up came (500 ms by default).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.settings().poll_interval = interval;
        self
    }
}

impl<S: EventStore> Stream for Subscription<'_, S> {
    type Item = Result<StoredEvent, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(settings) = self.settings.take() {
            self.events = Some(Box::pin(follow(settings)));
        }
        match self.events.as_mut() {
            Some(events) => events.as_mut().poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}

/// What [`follow`] carries from one event to the next.
struct Following<'s, S> {
    settings: Settings<'s, S>,
    appended: watch::Receiver<u64>,
    page: VecDeque<StoredEvent>,
    /// Whether the last read failed: the next waits a poll interval first.
    failed: bool,
    /// When the lease of a durable subscription was last renewed.
    renewed: tokio::time::Instant,
    /// Whether the subscription has ended (its lease was lost).
    ended: bool,
}

impl<S> Following<'_, S> {
    fn wanted(&self, event: &StoredEvent) -> bool {
        let Settings { stream_types, event_types, .. } = &self.settings;
        (stream_types.is_empty() || stream_types.contains(&event.stream_type))
            && (event_types.is_empty() || event_types.contains(&event.event_type))
    }
}

fn follow<S: EventStore>(settings: Settings<'_, S>) -> impl Stream<Item = Result<StoredEvent, StoreError>> + Send + '_ {
    let appended = settings.store.watch_appends();
    let renewed = tokio::time::Instant::now();
    let state = Following { settings, appended, page: VecDeque::new(), failed: false, renewed, ended: false };
    futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if state.ended {
                return None;
            }
            if let Some((renew, every)) = &mut state.settings.renew
                && state.renewed.elapsed() >= *every
            {
                if let Err(error) = renew().await {
                    state.ended = true;
                    return Some((Err(error), state));
                }
                state.renewed = tokio::time::Instant::now();
            }
            if let Some(event) = state.page.pop_front() {
                return Some((Ok(event), state));
            }
            if std::mem::take(&mut state.failed) {
                tokio::time::sleep(state.settings.poll_interval).await;
            }
            // Marked seen before the read: an append during the read wakes the next wait.
            state.appended.borrow_and_update();
            let Settings { store, cursor, batch_size, .. } = &state.settings;
            match store.read_all(*cursor, *batch_size).await {
                Err(error) => {
                    state.failed = true;
                    return Some((Err(error), state));
                }
                Ok(events) => {
                    if let Some(last) = events.last() {
                        state.settings.cursor = last.cursor;
                        state.page = events.into_iter().filter(|event| state.wanted(event)).collect();
                    } else {
                        let mut poll = state.settings.poll_interval;
                        if let Some((_, every)) = &state.settings.renew {
                            // Wake in time to renew the lease while idle.
                            poll = poll.min(every.saturating_sub(state.renewed.elapsed()));
                        }
                        // A closed channel (a store being dropped) leaves the poll.
                        let _ = tokio::time::timeout(poll, state.appended.changed()).await;
                    }
                }
            }
        }
    })
}

/// What a store keeps of a durable subscription for the process that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// The lease's generation: it grows each time the subscription changes hands.
    pub generation: LeaseGeneration,
    /// The last cursor acknowledged; the subscription resumes strictly after it.
    pub acknowledged: Cursor,
}

/// A store that keeps durable subscriptions: a name, a lease held by one process at a
/// time, and the cursor acknowledged under it. Implemented by every store of `es`.
pub trait DurableStore: EventStore {
    /// Takes (or, for its holder, renews) the lease of subscription `name` for `owner`
    /// until `lease` from now; `None` while another owner holds an unexpired one.
    fn claim_subscription(
        &self,
        name: &str,
        owner: &str,
        lease: Duration,
    ) -> impl Future<Output = Result<Option<Claim>, StoreError>> + Send;

    /// Moves the acknowledged cursor of `name` forward to `cursor` (never back) and
    /// extends the lease, if `generation` still holds it; otherwise
    /// [`StoreError::StaleSubscription`] and nothing changes.
    fn acknowledge_subscription(
        &self,
        name: &str,
        generation: LeaseGeneration,
        cursor: Cursor,
        lease: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Gives the lease up, so that another process can take over at once.
    fn release_subscription(
        &self,
        name: &str,
        generation: LeaseGeneration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Follows the global log as the durable subscription `name`, held by `owner` (unique
/// per process): see [`DurableOptions::start`].
pub fn durable<'s, S: DurableStore>(store: &'s S, name: &str, owner: &str) -> DurableOptions<'s, S> {
    DurableOptions {
        subscription: subscribe(store, Cursor::START),
        name: name.to_owned(),
        owner: owner.to_owned(),
        lease: Duration::from_secs(30),
    }
}

/// How to start a durable subscription; from [`durable`].
#[derive(Debug)]
#[must_use = "a durable subscription starts with `start`"]
pub struct DurableOptions<'s, S> {
    subscription: Subscription<'s, S>,
    name: String,
    owner: String,
    lease: Duration,
}

impl<'s, S: DurableStore> DurableOptions<'s, S> {
    /// How long the lease lasts without an acknowledgement or a renewal (30 s by
    /// default); another process takes over when it runs out.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(10));
        self
    }

    /// See [`Subscription::stream_type`].
    pub fn stream_type(mut self, stream_type: impl Into<String>) -> Self {
        self.subscription = self.subscription.stream_type(stream_type);
        self
    }

    /// See [`Subscription::event_type`].
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.subscription = self.subscription.event_type(event_type);
        self
    }

    /// See [`Subscription::batch_size`].
    pub fn batch_size(mut self, events: usize) -> Self {
        self.subscription = self.subscription.batch_size(events);
        self
    }

    /// See [`Subscription::poll_interval`]; it is also how often a process waiting
    /// for the lease tries again.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.subscription = self.subscription.poll_interval(interval);
        self
    }

    /// Waits until this process holds the subscription's lease (another holder's
    /// lease must end first: released, or run out), then follows the log strictly
    /// after the last acknowledged cursor.
    ///
    /// # The guarantee
    ///
    /// One process at a time holds a subscription. The cursor moves only when the
    /// consumer acknowledges ([`DurableSubscription::ack`]), so after a crash the next
    /// holder resumes strictly after the last acknowledged event: an event is handed
    /// out at least once, and again only if its acknowledgement was not stored. The
    /// lease is renewed by acknowledgements and, while the stream waits, by the
    /// stream itself; a holder that lost it (stopped, or slower than its lease) gets
    /// [`StoreError::StaleSubscription`] from its next acknowledgement or renewal,
    /// and its stream ends.
    pub async fn start(self) -> Result<DurableSubscription<'s, S>, StoreError> {
        let DurableOptions { mut subscription, name, owner, lease } = self;
        let settings = subscription.settings();
        let store = settings.store;
        let retry = settings.poll_interval.min(lease / 2);
        let claim = loop {
            if let Some(claim) = store.claim_subscription(&name, &owner, lease).await? {
                break claim;
            }
            tokio::time::sleep(retry).await;
        };
        settings.cursor = claim.acknowledged;
        let (renew_name, renew_owner) = (name.clone(), owner.clone());
        let renew: Renew<'s> = Box::new(move || {
            let (name, owner) = (renew_name.clone(), renew_owner.clone());
            Box::pin(async move {
                match store.claim_subscription(&name, &owner, lease).await? {
                    Some(renewed) if renewed.generation == claim.generation => Ok(()),
                    _ => Err(StoreError::StaleSubscription { name, generation: claim.generation }),
                }
            })
        });
        settings.renew = Some((renew, lease / 3));
        Ok(DurableSubscription { store, name, generation: claim.generation, lease, events: subscription })
    }
}

/// A durable subscription held by this process: a [`Stream`] of the log after the
/// last acknowledged cursor; from [`DurableOptions::start`].
#[must_use = "a subscription reads nothing until it is polled"]
pub struct DurableSubscription<'s, S> {
    store: &'s S,
    name: String,
    generation: LeaseGeneration,
    lease: Duration,
    events: Subscription<'s, S>,
}

impl<S> fmt::Debug for DurableSubscription<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableSubscription")
            .field("name", &self.name)
            .field("generation", &self.generation)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl<S: DurableStore> DurableSubscription<'_, S> {
    /// Stores `cursor` (of an event handled) as acknowledged, and extends the lease.
    /// [`StoreError::StaleSubscription`] when another process has taken over.
    pub async fn ack(&self, cursor: Cursor) -> Result<(), StoreError> {
        self.store.acknowledge_subscription(&self.name, self.generation, cursor, self.lease).await
    }

    /// The lease generation this process holds.
    #[must_use]
    pub fn generation(&self) -> LeaseGeneration {
        self.generation
    }

    /// Gives the lease up, so that another process takes over at once.
    pub async fn release(self) -> Result<(), StoreError> {
        self.store.release_subscription(&self.name, self.generation).await
    }
}

impl<S: EventStore> Stream for DurableSubscription<'_, S> {
    type Item = Result<StoredEvent, StoreError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.events).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::id::SequentialIds;
    use crate::memory::MemoryStore;
    use crate::recorded::{Metadata, NewEvent};
    use crate::store::ExpectedVersion;
    use futures_util::StreamExt;

    fn event(n: u64, event_type: &str) -> NewEvent {
        NewEvent {
            event_id: SequentialIds::nth(n),
            event_type: event_type.to_owned(),
            schema_version: 1,
            occurred_at: Timestamp::EPOCH,
            metadata: Metadata::default(),
            payload: "{}".to_owned(),
        }
    }

    #[tokio::test]
    async fn history_then_live_events_without_gap_or_repeat_filtered() {
        let store = MemoryStore::new();
        store
            .append("Account", "a", ExpectedVersion::NoStream, vec![event(1, "Opened"), event(2, "Noted")])
            .await
            .unwrap();
        store.append("Order", "o", ExpectedVersion::NoStream, vec![event(3, "Placed")]).await.unwrap();
        let mut events = subscribe(&store, Cursor::START)
            .stream_type("Account")
            .event_type("Opened")
            .event_type("Deposited")
            .batch_size(1);
        assert_eq!(events.next().await.unwrap().unwrap().event_id, SequentialIds::nth(1));
        // Live: appended while the subscription waits.
        let (next, ()) = tokio::join!(events.next(), async {
            tokio::task::yield_now().await;
            store.append("Order", "o", ExpectedVersion::Exact(1), vec![event(4, "Placed")]).await.unwrap();
            store.append("Account", "a", ExpectedVersion::Exact(2), vec![event(5, "Deposited")]).await.unwrap();
        });
        assert_eq!(next.unwrap().unwrap().event_id, SequentialIds::nth(5));
        let pending = tokio::time::timeout(Duration::from_millis(50), events.next()).await;
        assert!(pending.is_err(), "an event was repeated or invented: {pending:?}");
    }

    #[tokio::test]
    async fn a_subscription_starts_strictly_after_its_cursor() {
        let store = MemoryStore::new();
        let appended =
            store.append("Account", "a", ExpectedVersion::NoStream, vec![event(1, "A"), event(2, "B")]).await.unwrap();
        let mut events = subscribe(&store, appended.cursors[0]);
        assert_eq!(events.next().await.unwrap().unwrap().event_id, SequentialIds::nth(2));
    }
}
