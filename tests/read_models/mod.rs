//! The read-model suite: typed projections and document views, written once, run
//! against every store.
//!
//! A backend's test file defines `async fn new_store()` returning its store and
//! `async fn clean_up(store)` (which drops what a passing test leaves behind), then
//! invokes `read_model_suite!(path::to::ProjectionRunner)`.

#![allow(dead_code, reason = "each backend's test file uses a different part")]

use std::collections::BTreeSet;

use es::projection::{HandlerError, Subscriptions, View};
use es::{
    Aggregate, Event, EventStore, ExpectedVersion, IdSource, Json, Metadata, NewEvent, RandomIds, Timestamp,
    UpcastError, aggregate,
};
use serde::{Deserialize, Serialize};

/// Version 1 of `Deposited` had no currency: everything was in euros.
fn deposited_v1(mut json: Json) -> Result<Json, UpcastError> {
    let object = json.as_object_mut().ok_or_else(|| UpcastError::new("expected an object"))?;
    object.insert("currency", Json::from("EUR"));
    Ok(json)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub enum AccountEvent {
    Opened {
        owner: String,
    },
    #[event(version = 2, upcast(1 = deposited_v1))]
    Deposited {
        amount: u64,
        currency: String,
    },
    Withdrawn {
        amount: u64,
    },
}

#[aggregate]
#[derive(Debug, Default)]
pub struct Account {
    balance: u64,
}

#[aggregate]
impl Aggregate for Account {
    type Event = AccountEvent;
    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Deposited { amount, .. } => self.balance += amount,
            AccountEvent::Withdrawn { amount } => self.balance -= amount,
            AccountEvent::Opened { .. } => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
pub struct Sent {
    pub to: String,
    pub amount: u64,
}

/// A transfer's stream: its events say which account receives the money.
#[aggregate]
#[derive(Debug, Default)]
pub struct Transfer {
    sent: u64,
}

#[aggregate]
impl Aggregate for Transfer {
    type Event = Sent;
    fn apply(&mut self, event: &Sent) {
        self.sent += event.amount;
    }
}

/// An account's summary, from its own stream and from the transfers to it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountSummary {
    pub owner: String,
    pub balance: u64,
    pub currencies: BTreeSet<String>,
    pub received: u64,
    /// The stream version of the last account event: handlers see the envelope.
    pub version: u64,
}

impl View for AccountSummary {
    fn subscribe(events: &mut Subscriptions<Self>) {
        events
            .on::<Account>(|summary, event| {
                match event.event() {
                    AccountEvent::Opened { owner } => summary.owner.clone_from(owner),
                    AccountEvent::Deposited { amount, currency } => {
                        // Changed before failing: the change must not be kept.
                        summary.balance += amount;
                        if *amount == 13 {
                            return Err(HandlerError::new("13 is not accepted here"));
                        }
                        summary.currencies.insert(currency.clone());
                    }
                    AccountEvent::Withdrawn { amount } => {
                        summary.balance = summary.balance.checked_sub(*amount).ok_or_else(|| {
                            HandlerError::new(format!("withdrawal of {amount} exceeds the balance {}", summary.balance))
                        })?;
                    }
                }
                summary.version = event.stream_version();
                Ok(())
            })
            .on_keyed::<Transfer>(
                |event| Some(event.event().to.clone()),
                |summary, event| {
                    summary.received += event.event().amount;
                    Ok(())
                },
            );
    }
}

/// Events per account, by the day they occurred (a view keyed by something other
/// than a stream).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DailyActivity {
    pub events: u64,
}

impl View for DailyActivity {
    fn subscribe(events: &mut Subscriptions<Self>) {
        events.on_keyed::<Account>(
            |event| Some(format!("day-{}", event.occurred_at().as_unix_micros() / 86_400_000_000)),
            |activity, _| {
                activity.events += 1;
                Ok(())
            },
        );
    }
}

/// Accounts per owner: several streams fold into one view.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Owners {
    pub accounts: Vec<String>,
}

impl View for Owners {
    fn subscribe(events: &mut Subscriptions<Self>) {
        events.on_keyed::<Account>(
            |event| match event.event() {
                AccountEvent::Opened { owner } => Some(owner.clone()),
                _ => None,
            },
            |owners, event| {
                owners.accounts.push(event.stream_id().to_owned());
                Ok(())
            },
        );
    }
}

pub fn encode(events: &[AccountEvent]) -> Vec<NewEvent> {
    events
        .iter()
        .map(|event| NewEvent::encode(event, RandomIds.next_id(), Timestamp::EPOCH, Metadata::default()).unwrap())
        .collect()
}

pub fn deposit(amount: u64) -> AccountEvent {
    AccountEvent::Deposited { amount, currency: "USD".into() }
}

pub fn opened(owner: &str) -> AccountEvent {
    AccountEvent::Opened { owner: owner.into() }
}

/// A deposit as version 1 of the event stored it, before currencies.
pub fn deposit_v1(amount: u64) -> NewEvent {
    NewEvent {
        event_id: RandomIds.next_id(),
        event_type: "Deposited".into(),
        schema_version: 1,
        occurred_at: Timestamp::EPOCH,
        metadata: Metadata::default(),
        payload: format!(r#"{{"amount":{amount}}}"#),
    }
}

/// An event no type of this program decodes, in a stream type no view subscribes to.
pub fn foreign_event() -> NewEvent {
    NewEvent {
        event_id: RandomIds.next_id(),
        event_type: "Unknown".into(),
        schema_version: 7,
        occurred_at: Timestamp::EPOCH,
        metadata: Metadata::default(),
        payload: r#"{"not":"for us"}"#.into(),
    }
}

/// Appends the story every test starts from: two accounts, an old-format deposit,
/// a transfer to an account, and an event of a stream type nobody subscribes to.
/// Returns how many events it appended.
pub async fn append_story(store: &impl EventStore) -> u64 {
    store.append("Account", "a-1", ExpectedVersion::NoStream, encode(&[opened("Ada"), deposit(10)])).await.unwrap();
    store.append("Audit", "x-1", ExpectedVersion::NoStream, vec![foreign_event()]).await.unwrap();
    store.append("Account", "a-1", ExpectedVersion::Exact(2), vec![deposit_v1(5)]).await.unwrap();
    store.append("Account", "a-2", ExpectedVersion::NoStream, encode(&[opened("Grace")])).await.unwrap();
    let sent = NewEvent::encode(
        &Sent { to: "a-2".into(), amount: 7 },
        RandomIds.next_id(),
        Timestamp::EPOCH,
        Metadata::default(),
    )
    .unwrap();
    store.append("Transfer", "t-1", ExpectedVersion::NoStream, vec![sent]).await.unwrap();
    6
}

/// The summaries after [`append_story`].
pub fn story_summaries() -> (AccountSummary, AccountSummary) {
    (
        AccountSummary {
            owner: "Ada".into(),
            balance: 15,
            currencies: ["EUR".to_owned(), "USD".to_owned()].into(),
            received: 0,
            version: 3,
        },
        AccountSummary { owner: "Grace".into(), balance: 0, currencies: BTreeSet::new(), received: 7, version: 1 },
    )
}

/// Waits until the global log shows `events` events. PostgreSQL shows an event only
/// once every transaction that started before it has finished (commit-order safe
/// reads), and the other tests' transactions run beside these.
pub async fn settle(store: &impl EventStore, events: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while store.read_all(es::Cursor::START, usize::MAX).await.unwrap().len() < events {
        assert!(std::time::Instant::now() < deadline, "the log never showed {events} events");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

/// Generates the read-model tests for the backend whose `new_store` is in scope, with
/// that backend's projection runner.
#[macro_export]
macro_rules! read_model_suite {
    ($runner:path) => {
        mod suite {
            use super::{clean_up, new_store};
            use $crate::read_models::{
                AccountSummary, DailyActivity, Owners, append_story, deposit, encode, opened, settle, story_summaries,
            };
            use es::projection::{OnError, ProjectionError, ViewStore};
            use es::{EventStore, ExpectedVersion};
            use $runner as ProjectionRunner;

            #[tokio::test]
            async fn views_fold_typed_upcast_events_per_key_and_skip_other_stream_types_undecoded() {
                let store = new_store().await;
                let appended = append_story(&store).await;
                settle(&store, 6).await;
                let summaries = store.views::<AccountSummary>("summaries");
                assert_eq!(summaries.load("a-1").await.unwrap(), None, "nothing is applied before a pass");
                let report = summaries.catch_up().await.unwrap();
                assert_eq!((report.applied, report.skipped), (appended, 0));
                let (ada, grace) = story_summaries();
                assert_eq!(summaries.load("a-1").await.unwrap(), Some(ada));
                assert_eq!(summaries.load("a-2").await.unwrap(), Some(grace));
                assert_eq!(summaries.load("x-1").await.unwrap(), None, "the audit stream made no view");
                assert_eq!(summaries.load("t-1").await.unwrap(), None, "transfers are keyed by receiver");

                // Another view over the same events, keyed by day, kept apart.
                let days = store.views::<DailyActivity>("days");
                days.catch_up().await.unwrap();
                assert_eq!(days.load("day-0").await.unwrap(), Some(DailyActivity { events: 4 }));
                assert_eq!(days.load("a-1").await.unwrap(), None);
                clean_up(&store).await;
            }

            #[tokio::test]
            async fn a_view_resumes_after_its_checkpoint_and_a_rebuild_gives_the_same_views() {
                let store = new_store().await;
                append_story(&store).await;
                settle(&store, 6).await;
                let summaries = store.views::<AccountSummary>("summaries");
                let days = store.views::<DailyActivity>("days");
                summaries.catch_up().await.unwrap();
                days.catch_up().await.unwrap();

                store.append("Account", "a-1", ExpectedVersion::Exact(3), encode(&[deposit(100)])).await.unwrap();
                settle(&store, 7).await;
                let report = summaries.catch_up().await.unwrap();
                assert_eq!(report.applied, 1, "only the new event is applied");
                let before = summaries.load("a-1").await.unwrap().unwrap();
                assert_eq!((before.balance, before.version), (115, 4));
                assert_eq!(summaries.catch_up().await.unwrap().applied, 0);

                summaries.rebuild().await.unwrap();
                assert_eq!(summaries.load("a-1").await.unwrap(), None, "a rebuild empties the views first");
                assert_eq!(
                    days.load("day-0").await.unwrap(),
                    Some($crate::read_models::DailyActivity { events: 4 }),
                    "other views are untouched"
                );
                assert_eq!(summaries.catch_up().await.unwrap().applied, 7);
                assert_eq!(summaries.load("a-1").await.unwrap(), Some(before));
                assert_eq!(summaries.load("a-2").await.unwrap(), Some(story_summaries().1));
                clean_up(&store).await;
            }

            #[tokio::test]
            async fn a_failing_handler_stops_the_view_and_keeps_what_came_before() {
                let store = new_store().await;
                store
                    .append("Account", "a-1", ExpectedVersion::NoStream, encode(&[opened("Ada"), deposit(2), deposit(13), deposit(5)]))
                    .await
                    .unwrap();
                settle(&store, 4).await;
                let summaries = store.views::<AccountSummary>("summaries");
                let error = summaries.catch_up().await.unwrap_err();
                assert!(
                    matches!(&error, ProjectionError::Event { projection, version: 3, stream_id, event_type, .. }
                        if projection == "view:summaries" && stream_id == "a-1" && event_type == "Deposited"),
                    "{error:?}"
                );
                assert!(error.to_string().ends_with("13 is not accepted here"), "{error}");
                let kept = summaries.load("a-1").await.unwrap().unwrap();
                assert_eq!((kept.balance, kept.version), (2, 2), "the failing event changed nothing");
                // It stays stopped on the same event.
                assert!(matches!(summaries.catch_up().await.unwrap_err(), ProjectionError::Event { version: 3, .. }));
                clean_up(&store).await;
            }

            #[tokio::test]
            async fn record_and_skip_leaves_the_failing_event_out_and_goes_on() {
                let store = new_store().await;
                store
                    .append("Account", "a-1", ExpectedVersion::NoStream, encode(&[opened("Ada"), deposit(2), deposit(13), deposit(5)]))
                    .await
                    .unwrap();
                settle(&store, 4).await;
                let summaries = store.views::<AccountSummary>("summaries");
                let mut runner = ProjectionRunner::new(store.clone(), summaries.projection()).on_error(OnError::RecordAndSkip);
                let report = runner.catch_up().await.unwrap();
                assert_eq!((report.applied, report.skipped), (3, 1));
                assert_eq!(runner.lag().await.unwrap(), 0);
                assert_eq!(runner.checkpoint().await.unwrap().unwrap().cursor.position, report.checkpoint.unwrap().cursor.position);
                let summary = summaries.load("a-1").await.unwrap().unwrap();
                assert_eq!((summary.balance, summary.version), (7, 4));
                // The runner and `Views` share one checkpoint: nothing is left to apply.
                assert_eq!(summaries.catch_up().await.unwrap().applied, 0);
                clean_up(&store).await;
            }

            #[tokio::test]
            async fn an_event_of_a_subscribed_type_that_does_not_decode_follows_on_error() {
                let store = new_store().await;
                let mut unknown = $crate::read_models::foreign_event();
                unknown.event_type = "Frozen".into();
                store.append("Account", "a-1", ExpectedVersion::NoStream, encode(&[opened("Ada")])).await.unwrap();
                store.append("Account", "a-1", ExpectedVersion::Exact(1), vec![unknown]).await.unwrap();
                settle(&store, 2).await;
                let summaries = store.views::<AccountSummary>("summaries");
                let error = summaries.catch_up().await.unwrap_err();
                assert!(
                    error.to_string().contains("stream Account/a-1, version 2, event type `Frozen`"),
                    "{error}"
                );
                assert!(error.to_string().contains("unknown event type `Frozen`"), "{error}");
                let mut runner = ProjectionRunner::new(store.clone(), summaries.projection()).on_error(OnError::RecordAndSkip);
                assert_eq!(runner.catch_up().await.unwrap().skipped, 1);
                assert_eq!(summaries.load("a-1").await.unwrap().unwrap().owner, "Ada");
                clean_up(&store).await;
            }

            #[tokio::test]
            async fn a_running_view_follows_appends_until_shut_down() {
                let store = new_store().await;
                let summaries = store.views::<AccountSummary>("summaries");
                let runner = ProjectionRunner::new(store.clone(), summaries.projection())
                    .poll_interval(std::time::Duration::from_millis(20));
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                let running = tokio::spawn(runner.run(async move {
                    let _ = stopped.await;
                }));
                store.append("Account", "a-1", ExpectedVersion::NoStream, encode(&[opened("Ada"), deposit(3)])).await.unwrap();
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
                loop {
                    if summaries.load("a-1").await.unwrap().is_some_and(|s| s.balance == 3) {
                        break;
                    }
                    assert!(std::time::Instant::now() < deadline, "the running view never applied the deposit");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                stop.send(()).unwrap();
                let report = running.await.unwrap().unwrap();
                assert_eq!(report.applied, 2);
                clean_up(&store).await;
            }

            #[tokio::test]
            async fn views_keyed_by_event_content_gather_several_streams_and_refuse_unstorable_keys() {
                let store = new_store().await;
                store.append("Account", "a-1", ExpectedVersion::NoStream, encode(&[opened("Ada"), deposit(1)])).await.unwrap();
                store.append("Account", "a-2", ExpectedVersion::NoStream, encode(&[opened("Ada")])).await.unwrap();
                store.append("Account", "a-3", ExpectedVersion::NoStream, encode(&[opened("Nul\0Owner")])).await.unwrap();
                settle(&store, 4).await;
                let owners = store.views::<Owners>("owners");
                let error = owners.catch_up().await.unwrap_err();
                assert!(
                    matches!(&error, ProjectionError::Event { stream_id, version: 1, .. } if stream_id == "a-3"),
                    "{error:?}"
                );
                let message = error.to_string();
                assert!(message.contains("view owners: key ") && message.ends_with("cannot be stored: keys are at most 1024 bytes, without NUL characters"), "{message}");
                assert_eq!(owners.load("Ada").await.unwrap(), Some(Owners { accounts: vec!["a-1".into(), "a-2".into()] }));
                clean_up(&store).await;
            }

            #[tokio::test]
            async fn the_same_view_type_under_two_names_is_two_read_models() {
                let store = new_store().await;
                append_story(&store).await;
                settle(&store, 6).await;
                let first = store.views::<AccountSummary>("first");
                first.catch_up().await.unwrap();
                let second = store.views::<AccountSummary>("second");
                assert_eq!(second.load("a-1").await.unwrap(), None);
                second.catch_up().await.unwrap();
                first.rebuild().await.unwrap();
                assert_eq!(first.load("a-1").await.unwrap(), None);
                assert_eq!(second.load("a-1").await.unwrap(), Some(story_summaries().0));
                clean_up(&store).await;
            }
        }
    };
}
