//! Document read models: a JSON view per key, folded from typed events, kept by the
//! store itself, the same on every backend.
//!
//! A [`View`] is the user's own type (serde, `Default`). It subscribes to the events
//! of one or more aggregates with typed handlers ([`Subscriptions`]): each handler gets
//! the event decoded once, by reference, inside its envelope (`&Recorded<A::Event>`,
//! upcast like a load), and updates the view of the event's key (by default its stream
//! id). Events of other stream types are skipped without being decoded.
//!
//! The store keeps the views: the SQL stores in one table (`<prefix>views`, created by
//! their migrations) written in the same transaction as the projection's checkpoint,
//! so each event changes a view exactly once; the in-memory store in memory. The
//! store's own `ProjectionRunner` runs a view ([`ViewProjection`]), with the same
//! policies as any projection.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::error::{HandlerError, ProjectionError};
use super::runner::ProjectionReport;
use crate::aggregate::Aggregate;
use crate::recorded::{Recorded, StoredEvent};
use crate::store::{EventStore, MAX_STREAM_ID_BYTES, StoreError};

/// A document read model: one JSON document of this type per key, folded from typed
/// events, stored by the store, loaded by key from any process.
///
/// `subscribe` says which aggregates' events change the view, and how. A key with no
/// event yet has no document; the first event of a key starts from `Default`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use es::projection::{Subscriptions, View, ViewStore};
/// use es::{aggregate, Aggregate, Event, MemoryStore, Repository};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Serialize, Deserialize, Event)]
/// enum AccountEvent {
///     Opened { owner: String },
///     Deposited { amount: u64 },
/// }
///
/// #[aggregate]
/// #[derive(Debug, Default)]
/// struct Account { balance: u64 }
///
/// #[aggregate]
/// impl Aggregate for Account {
///     type Event = AccountEvent;
///     fn apply(&mut self, event: &AccountEvent) {
///         if let AccountEvent::Deposited { amount } = event { self.balance += amount; }
///     }
/// }
///
/// /// What a teller's screen shows of an account.
/// #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
/// struct AccountSummary { owner: String, balance: u64, deposits: u32 }
///
/// impl View for AccountSummary {
///     fn subscribe(events: &mut Subscriptions<Self>) {
///         // One view per account: keyed by the event's stream id.
///         events.on::<Account>(|summary, event| {
///             match event.event() {
///                 AccountEvent::Opened { owner } => summary.owner.clone_from(owner),
///                 AccountEvent::Deposited { amount } => {
///                     summary.balance += amount;
///                     summary.deposits += 1;
///                 }
///             }
///             Ok(())
///         });
///     }
/// }
///
/// let repository = Repository::new(MemoryStore::new());
/// repository.aggregate::<Account>().execute("acc-1", |_, _| Ok::<_, String>(vec![
///     AccountEvent::Opened { owner: "Ada".into() },
///     AccountEvent::Deposited { amount: 30 },
/// ])).await?;
///
/// let summaries = repository.store().views::<AccountSummary>("account_summaries");
/// summaries.catch_up().await?;
/// assert_eq!(
///     summaries.load("acc-1").await?,
///     Some(AccountSummary { owner: "Ada".into(), balance: 30, deposits: 1 })
/// );
/// assert_eq!(summaries.load("acc-2").await?, None);
/// # Ok(()) }
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a view",
    label = "not an `es::projection::View`",
    note = "a view is a serde type with `Default` that says which events change it: derive `Default, Serialize, Deserialize` and implement `es::projection::View`, whose `subscribe` registers a handler per aggregate"
)]
pub trait View: Serialize + DeserializeOwned + Default + Send + 'static {
    /// Registers a typed handler per aggregate whose events change this view.
    fn subscribe(events: &mut Subscriptions<Self>);
}

/// The typed handlers of a [`View`], one per aggregate type it subscribes to.
///
/// A stored event of a subscribed stream type is decoded once, by reference, into
/// `Recorded<A::Event>` (older schema versions upcast first, as for loads) and handed
/// to that aggregate's handler; events of other stream types are skipped without
/// being decoded. An event of a subscribed stream type that does not decode is a
/// handler error, which the runner's [`OnError`](super::OnError) policy handles.
///
/// A view of something other than one stream maps each event to its key:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use es::projection::{Subscriptions, View, ViewStore};
/// use es::{aggregate, Aggregate, Event, MemoryStore, Repository};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Serialize, Deserialize, Event)]
/// struct Opened { owner: String }
///
/// #[aggregate]
/// #[derive(Debug, Default)]
/// struct Account { open: bool }
///
/// #[aggregate]
/// impl Aggregate for Account {
///     type Event = Opened;
///     fn apply(&mut self, _: &Opened) { self.open = true; }
/// }
///
/// /// The accounts of each customer, keyed by the owner's name.
/// #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
/// struct CustomerAccounts { accounts: Vec<String> }
///
/// impl View for CustomerAccounts {
///     fn subscribe(events: &mut Subscriptions<Self>) {
///         events.on_keyed::<Account>(
///             |event| Some(event.event().owner.clone()),
///             |customer, event| {
///                 customer.accounts.push(event.stream_id().to_owned());
///                 Ok(())
///             },
///         );
///     }
/// }
///
/// let store = MemoryStore::new();
/// let accounts = Repository::new(store.clone());
/// for id in ["acc-1", "acc-2"] {
///     accounts.execute(id, |_: &Account, _| Ok::<_, String>(vec![Opened { owner: "Ada".into() }])).await?;
/// }
/// let customers = store.views::<CustomerAccounts>("customer_accounts");
/// customers.catch_up().await?;
/// let ada = customers.load("Ada").await?.unwrap_or_default();
/// assert_eq!(ada.accounts, ["acc-1", "acc-2"]);
/// # Ok(()) }
/// ```
pub struct Subscriptions<V> {
    routes: Vec<Route<V>>,
}

/// How the events of one stream type reach the view.
struct Route<V> {
    stream_type: &'static str,
    route: RouteFn<V>,
}

type RouteFn<V> = Box<dyn Fn(&StoredEvent) -> Result<Option<Update<V>>, HandlerError> + Send + Sync>;

/// A decoded event on its way to the view of `key`.
pub(crate) struct Update<V> {
    pub(crate) key: String,
    apply: ApplyFn<V>,
}

/// A handler with its decoded event, applied once the view's document is at hand.
type ApplyFn<V> = Box<dyn FnOnce(&mut V) -> Result<(), HandlerError> + Send>;

impl<V> Subscriptions<V> {
    fn new() -> Self {
        Self { routes: Vec::new() }
    }

    /// Events of `A`'s streams update the view whose key is the event's stream id.
    /// Subscribing to the same aggregate type again replaces the earlier handler.
    pub fn on<A: Aggregate>(
        &mut self,
        apply: impl Fn(&mut V, &Recorded<A::Event>) -> Result<(), HandlerError> + Send + Sync + 'static,
    ) -> &mut Self {
        self.on_keyed::<A>(|event| Some(event.stream_id().to_owned()), apply)
    }

    /// Events of `A`'s streams update the view whose key `key` returns; an event for
    /// which it returns `None` changes no view. Use it for views of something other
    /// than one stream: a customer's accounts, a day's totals.
    pub fn on_keyed<A: Aggregate>(
        &mut self,
        key: impl Fn(&Recorded<A::Event>) -> Option<String> + Send + Sync + 'static,
        apply: impl Fn(&mut V, &Recorded<A::Event>) -> Result<(), HandlerError> + Send + Sync + 'static,
    ) -> &mut Self {
        let apply = Arc::new(apply);
        let route = move |stored: &StoredEvent| -> Result<Option<Update<V>>, HandlerError> {
            let recorded = stored.decode_ref::<A::Event>()?;
            let Some(key) = key(&recorded) else { return Ok(None) };
            let apply = Arc::clone(&apply);
            Ok(Some(Update { key, apply: Box::new(move |view: &mut V| apply(view, &recorded)) }))
        };
        self.routes.retain(|existing| existing.stream_type != A::stream_type());
        self.routes.push(Route { stream_type: A::stream_type(), route: Box::new(route) });
        self
    }

    /// The stream types subscribed to.
    pub fn stream_types(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.routes.iter().map(|route| route.stream_type)
    }

    /// Decodes `event` if its stream type is subscribed to, and says which view it
    /// updates. `None`: the event changes no view (and was not decoded unless it is
    /// of a subscribed stream type).
    fn route(&self, event: &StoredEvent) -> Result<Option<Update<V>>, HandlerError> {
        match self.routes.iter().find(|route| route.stream_type == event.stream_type) {
            Some(route) => (route.route)(event),
            None => Ok(None),
        }
    }
}

impl<V> fmt::Debug for Subscriptions<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.stream_types()).finish()
    }
}

/// A [`View`] as a projection, for a store's `ProjectionRunner`: from
/// [`Views::projection`], which binds it to that store's views table.
///
/// ```no_run
/// # use es::projection::{Subscriptions, View, ViewStore, OnError};
/// # #[derive(Default, serde::Serialize, serde::Deserialize)]
/// # struct AccountSummary { balance: u64 }
/// # impl View for AccountSummary { fn subscribe(_: &mut Subscriptions<Self>) {} }
/// # async fn demo(store: es::sqlite::SqliteStore) -> Result<(), es::projection::ProjectionError> {
/// use es::sqlite::ProjectionRunner;
///
/// let projection = store.views::<AccountSummary>("account_summaries").projection();
/// let runner = ProjectionRunner::new(store.clone(), projection).on_error(OnError::RecordAndSkip);
/// // Until the service shuts down; here, forever.
/// runner.run(std::future::pending()).await?;
/// # Ok(()) }
/// ```
pub struct ViewProjection<V> {
    view: String,
    /// The checkpoint's name: `view:<name>`, so that a view never shares a checkpoint
    /// with a hand-written projection of the same name.
    projection: String,
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "postgres")),
        allow(dead_code, reason = "read by the SQL stores")
    )]
    table: String,
    subscriptions: Subscriptions<V>,
}

impl<V: View> ViewProjection<V> {
    pub(crate) fn new(view: &str, table: String) -> Self {
        let mut subscriptions = Subscriptions::new();
        V::subscribe(&mut subscriptions);
        Self { view: view.to_owned(), projection: format!("view:{view}"), table, subscriptions }
    }

    /// The view's name.
    #[must_use]
    pub fn view_name(&self) -> &str {
        &self.view
    }

    /// The projection's name, under which its checkpoint is kept: `view:<name>`.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.projection
    }

    /// The table of views, with the store's prefix (empty for the in-memory store).
    #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code, reason = "read by the SQL stores"))]
    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    /// Decodes `event` if the view subscribes to its stream type, and names the key
    /// of the view it updates.
    pub(crate) fn route(&self, event: &StoredEvent) -> Result<Option<Update<V>>, HandlerError> {
        let Some(update) = self.subscriptions.route(event)? else { return Ok(None) };
        // Keys obey the limits of stream ids, so that every store can keep them.
        if update.key.len() > MAX_STREAM_ID_BYTES || update.key.contains('\0') {
            return Err(HandlerError::new(format!(
                "view {}: key {:?} cannot be stored: keys are at most {MAX_STREAM_ID_BYTES} bytes, without NUL characters",
                self.view,
                shorten(&update.key)
            )));
        }
        Ok(Some(update))
    }

    /// Applies `update` to the stored document (`None`: the view's default) and
    /// returns the new document.
    pub(crate) fn updated(&self, update: Update<V>, stored: Option<&str>) -> Result<String, HandlerError> {
        let mut view = match stored {
            Some(json) => serde_json::from_str(json).map_err(|error| {
                HandlerError::new(format!(
                    "view {}, key {}: the stored document does not decode (after changing the view's type, rebuild the views): {error}",
                    self.view, update.key
                ))
            })?,
            None => V::default(),
        };
        let key = update.key;
        (update.apply)(&mut view)?;
        serde_json::to_string(&view).map_err(|error| {
            HandlerError::new(format!("view {}, key {key}: the updated document does not encode: {error}", self.view))
        })
    }
}

impl<V> fmt::Debug for ViewProjection<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ViewProjection")
            .field("view", &self.view)
            .field("type", &std::any::type_name::<V>())
            .field("subscriptions", &self.subscriptions)
            .finish_non_exhaustive()
    }
}

/// The views of one name in a store, from [`ViewStore::views`]: load them by key,
/// bring them up to date, rebuild them.
pub struct Views<'s, S, V> {
    store: &'s S,
    name: String,
    view: PhantomData<fn() -> V>,
}

impl<S, V> fmt::Debug for Views<'_, S, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Views")
            .field("name", &self.name)
            .field("type", &std::any::type_name::<V>())
            .finish_non_exhaustive()
    }
}

impl<S: ViewStore, V: View> Views<'_, S, V> {
    /// The views' name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The view of `key` as last committed, or `None` when no event has touched it.
    /// Reads what the projection has applied so far: call
    /// [`catch_up`](Self::catch_up) first (or keep a runner going) to see the latest.
    pub async fn load(&self, key: &str) -> Result<Option<V>, ViewError> {
        let stored = self
            .store
            .read_view_document(&self.name, key)
            .await
            .map_err(|source| ViewError::Store { view: self.name.clone(), source })?;
        stored
            .map(|json| {
                serde_json::from_str(&json).map_err(|source| ViewError::Decode {
                    view: self.name.clone(),
                    key: key.to_owned(),
                    source,
                })
            })
            .transpose()
    }

    /// Applies every event committed after the views' checkpoint, with the store's
    /// runner and [`OnError::Stop`](super::OnError::Stop). For other policies, batch
    /// sizes or a runner that keeps going, hand [`projection`](Self::projection) to
    /// the store's `ProjectionRunner`.
    ///
    /// "Every event" is every event the store's log shows readers: PostgreSQL shows an
    /// event only once the transactions that started before it have finished (see
    /// [`EventStore::read_all`]), so an event committed a moment ago may be applied by
    /// the next pass rather than this one. The report's checkpoint says how far it got.
    pub async fn catch_up(&self) -> Result<ProjectionReport, ProjectionError> {
        self.store.catch_up_view(self.projection()).await
    }

    /// Deletes every view of this name and the checkpoint, in one transaction: the
    /// next pass folds them again from the first event.
    pub async fn rebuild(&self) -> Result<(), ProjectionError> {
        self.store.rebuild_view(self.projection()).await
    }

    /// These views as a projection for the store's `ProjectionRunner`.
    #[must_use]
    pub fn projection(&self) -> ViewProjection<V> {
        ViewProjection::new(&self.name, self.store.views_table())
    }
}

/// Loading a view failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// The store failed.
    #[error("view {view}: {source}")]
    Store {
        /// The views' name.
        view: String,
        /// The failure.
        #[source]
        source: StoreError,
    },
    /// The stored document is not a valid value of the view's type (the type changed
    /// without a rebuild, or the row was written behind the library's back).
    #[error(
        "view {view}, key {key}: the stored document does not decode (after changing the view's type, rebuild the views): {source}"
    )]
    Decode {
        /// The views' name.
        view: String,
        /// The view's key.
        key: String,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },
}

/// A store that keeps [`View`]s: every store of this crate.
pub trait ViewStore: ViewBackend {
    /// The views named `name` (the name of the read model, for example
    /// `"account_summaries"`), of type `V`.
    fn views<V: View>(&self, name: &str) -> Views<'_, Self, V> {
        Views { store: self, name: name.to_owned(), view: PhantomData }
    }
}

impl<S: ViewBackend> ViewStore for S {}

/// What a store does for views; implemented by the stores of this crate only.
pub trait ViewBackend: EventStore + Sized {
    /// The table of views, with the store's prefix.
    #[doc(hidden)]
    fn views_table(&self) -> String;

    /// The stored document of one view.
    #[doc(hidden)]
    fn read_view_document(
        &self,
        view: &str,
        key: &str,
    ) -> impl Future<Output = Result<Option<String>, StoreError>> + Send;

    /// Catches up with the store's runner.
    #[doc(hidden)]
    fn catch_up_view<V: View>(
        &self,
        projection: ViewProjection<V>,
    ) -> impl Future<Output = Result<ProjectionReport, ProjectionError>> + Send;

    /// Rebuilds with the store's runner.
    #[doc(hidden)]
    fn rebuild_view<V: View>(
        &self,
        projection: ViewProjection<V>,
    ) -> impl Future<Output = Result<(), ProjectionError>> + Send;
}

/// A key for messages (quoted with `{:?}`, which shows a NUL as `\0`): the first 64
/// bytes of a long one.
fn shorten(key: &str) -> String {
    if key.len() <= 64 {
        return key.to_owned();
    }
    let end = (0..=64).rev().find(|&i| key.is_char_boundary(i)).unwrap_or(0);
    format!("{}… ({} bytes)", &key[..end], key.len())
}
