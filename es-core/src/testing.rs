//! Testing aggregates: given / when / then for commands, and the runtime backstop of
//! the purity check.
//!
//! Every event handed to these helpers goes through encoding and decoding first, as it
//! would through a store, so a test also proves that the events round-trip.
//!
//! ```
//! use es::testing::{assert_replay_is_deterministic, given};
//! use es::{aggregate, Aggregate, Event};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
//! enum CounterEvent { Added { n: u32 } }
//!
//! #[aggregate]
//! #[derive(Debug, Default, PartialEq)]
//! struct Counter { total: u32 }
//!
//! #[aggregate]
//! impl Aggregate for Counter {
//!     type Event = CounterEvent;
//!     fn apply(&mut self, event: &CounterEvent) {
//!         match event { CounterEvent::Added { n } => self.total += n }
//!     }
//! }
//!
//! impl Counter {
//!     fn add(&self, n: u32) -> Result<Vec<CounterEvent>, String> {
//!         if self.total + n > 10 { return Err(format!("{} would exceed 10", self.total + n)); }
//!         Ok(vec![CounterEvent::Added { n }])
//!     }
//! }
//!
//! given::<Counter>([CounterEvent::Added { n: 4 }])
//!     .when(|counter, _ctx| counter.add(3))
//!     .then_events([CounterEvent::Added { n: 3 }])
//!     .then_state(|counter| assert_eq!(counter.total, 7));
//!
//! given::<Counter>([CounterEvent::Added { n: 9 }])
//!     .when(|counter, _ctx| counter.add(3))
//!     .then_error("12 would exceed 10".to_string())
//!     .then_error_matches(|error| error.starts_with("12"))
//!     .then_error_contains("exceed");
//!
//! assert_replay_is_deterministic::<Counter>(&[CounterEvent::Added { n: 1 }, CounterEvent::Added { n: 2 }]);
//! ```

#![allow(clippy::return_self_not_must_use, reason = "assertions chain, and the last one of a chain is a statement")]

use std::fmt::Debug;

use crate::aggregate::Aggregate;
use crate::clock::Timestamp;
use crate::command::Context;
use crate::event::Event;
use crate::id::SequentialIds;
use crate::recorded::Metadata;
use crate::rehydrate::Loaded;
use crate::store::{Cursor, NewEvent, StoredEvent};

/// The fixed time every test command runs at: 2026-01-01T00:00:00Z.
pub const TEST_TIME: Timestamp = Timestamp::from_unix_micros(1_767_225_600_000_000);

/// The stream id test commands run on.
pub const TEST_STREAM: &str = "test-1";

/// Encodes `events` as the versions `first_version..` of a test stream, as a store
/// would hold them.
///
/// # Panics
///
/// If an event cannot be encoded: the test's events themselves are broken.
pub fn stored_events<A: Aggregate>(events: &[A::Event], first_version: u64) -> Vec<StoredEvent> {
    (first_version..)
        .zip(events)
        .map(|(version, event)| {
            let new = NewEvent::encode(event, SequentialIds::nth(version), TEST_TIME, Metadata::default())
                .unwrap_or_else(|error| panic!("event {version} does not encode: {error}"));
            StoredEvent {
                event_id: new.event_id,
                stream_type: A::stream_type().to_owned(),
                stream_id: TEST_STREAM.to_owned(),
                stream_version: version,
                cursor: Cursor::at_position(version),
                event_type: new.event_type,
                schema_version: new.schema_version,
                occurred_at: new.occurred_at,
                metadata: new.metadata,
                payload: new.payload,
            }
        })
        .collect()
}

fn fold<A: Aggregate>(loaded: &mut Loaded<A>, events: Vec<StoredEvent>) {
    for stored in events {
        let version = stored.stream_version;
        loaded.fold(stored).unwrap_or_else(|error| panic!("event {version} does not fold after a round trip: {error}"));
    }
}

/// Starts a test from the state these events fold into.
///
/// # Panics
///
/// If the events do not survive encoding and decoding.
pub fn given<A: Aggregate>(events: impl IntoIterator<Item = A::Event>) -> Given<A> {
    let events: Vec<A::Event> = events.into_iter().collect();
    let mut loaded = Loaded::new(TEST_STREAM);
    fold(&mut loaded, stored_events::<A>(&events, 1));
    Given { loaded }
}

/// The state a test starts from.
#[derive(Debug)]
pub struct Given<A> {
    loaded: Loaded<A>,
}

impl<A: Aggregate> Given<A> {
    /// Runs a decision on the given state, at [`TEST_TIME`] with sequential ids.
    pub fn when<E>(self, decide: impl FnOnce(&A, &Context<'_>) -> Result<Vec<A::Event>, E>) -> Then<A, E> {
        let ids = SequentialIds::new();
        let ctx = Context::new(TEST_TIME, &ids, TEST_STREAM, self.loaded.version());
        let outcome = decide(self.loaded.state(), &ctx);
        Then { loaded: self.loaded, outcome }
    }
}

/// The outcome of a test command, to assert on.
#[derive(Debug)]
pub struct Then<A: Aggregate, E> {
    loaded: Loaded<A>,
    outcome: Result<Vec<A::Event>, E>,
}

impl<A: Aggregate, E: Debug> Then<A, E> {
    /// Asserts that the command produced exactly these events, and that they survive a
    /// round trip through encoding.
    ///
    /// # Panics
    ///
    /// If the command failed or produced other events.
    #[track_caller]
    pub fn then_events(self, expected: impl IntoIterator<Item = A::Event>) -> Self
    where
        A::Event: PartialEq + Debug,
    {
        let expected: Vec<A::Event> = expected.into_iter().collect();
        match &self.outcome {
            Ok(events) => {
                assert_eq!(events, &expected, "the command produced other events than expected");
                for (stored, original) in stored_events::<A>(events, 1).into_iter().zip(events) {
                    let version = stored.stream_version;
                    let decoded = stored
                        .decode::<A::Event>()
                        .unwrap_or_else(|error| panic!("event {version} does not decode: {error}"));
                    assert_eq!(decoded.event(), original, "event {version} changes in a round trip through the store");
                }
            }
            Err(error) => panic!("expected events, but the command was rejected: {error:?}"),
        }
        self
    }

    /// Asserts that the command was rejected with this error.
    ///
    /// # Panics
    ///
    /// If the command succeeded or failed otherwise.
    #[track_caller]
    #[allow(clippy::needless_pass_by_value, reason = "reads naturally as `.then_error(Error::X)`")]
    pub fn then_error(self, expected: E) -> Self
    where
        E: PartialEq,
        A::Event: Debug,
    {
        match &self.outcome {
            Ok(events) => panic!("expected the error {expected:?}, but the command produced {events:?}"),
            Err(error) => assert_eq!(error, &expected, "the command was rejected with another error"),
        }
        self
    }

    /// Asserts that the command was rejected with an error `check` accepts: for
    /// errors without `PartialEq`, or to look at one field only.
    ///
    /// # Panics
    ///
    /// If the command succeeded, or `check` returns `false`.
    #[track_caller]
    pub fn then_error_matches(self, check: impl FnOnce(&E) -> bool) -> Self
    where
        A::Event: Debug,
    {
        match &self.outcome {
            Ok(events) => panic!("expected an error, but the command produced {events:?}"),
            Err(error) => assert!(check(error), "the command was rejected with an error the check refused: {error:?}"),
        }
        self
    }

    /// Asserts that the command was rejected with an error whose message contains
    /// `text`.
    ///
    /// # Panics
    ///
    /// If the command succeeded, or its error's message does not contain `text`.
    #[track_caller]
    pub fn then_error_contains(self, text: &str) -> Self
    where
        E: std::fmt::Display,
        A::Event: Debug,
    {
        match &self.outcome {
            Ok(events) => panic!("expected an error containing {text:?}, but the command produced {events:?}"),
            Err(error) => {
                let message = error.to_string();
                assert!(message.contains(text), "the command was rejected with {message:?}, which lacks {text:?}");
            }
        }
        self
    }

    /// The command's raw outcome: the events it decided, or its error.
    pub fn outcome(&self) -> Result<&[A::Event], &E> {
        self.outcome.as_deref()
    }

    /// Folds the produced events (after a round trip) into the given state and hands
    /// the result to `check`.
    ///
    /// # Panics
    ///
    /// If the command failed, or if `check` panics.
    #[track_caller]
    pub fn then_state(self, check: impl FnOnce(&A)) -> Self {
        let Then { mut loaded, outcome } = self;
        match outcome {
            Ok(events) => {
                let first = loaded.version() + 1;
                fold(&mut loaded, stored_events::<A>(&events, first));
                check(loaded.state());
                Then { loaded, outcome: Ok(events) }
            }
            Err(error) => panic!("expected a new state, but the command was rejected: {error:?}"),
        }
    }
}

/// Asserts that folding the same events twice, each time from freshly decoded copies
/// and a fresh `Default` state, gives equal states: the runtime backstop of
/// `#[aggregate]`'s purity check. It catches what a syntactic check cannot see, such as
/// a clock read or a global counter hidden in a trusted function, or a state that
/// depends on `HashMap` iteration order (each fresh map hashes with other keys).
///
/// When the aggregate takes snapshots (`A::SNAPSHOT` is set), it also asserts that the
/// folded state survives a round trip through its snapshot (`encode_snapshot`, then
/// `decode_snapshot`): a field left out of the snapshot (`#[serde(skip)]`) would make
/// a state loaded from a snapshot differ from one folded from the events.
///
/// # Panics
///
/// If the two states differ, the events do not survive a round trip, or the state does
/// not survive a round trip through its snapshot.
#[track_caller]
pub fn assert_replay_is_deterministic<A>(events: &[A::Event])
where
    A: Aggregate + PartialEq + Debug,
{
    let stored = stored_events::<A>(events, 1);
    let mut first = Loaded::<A>::new(TEST_STREAM);
    fold(&mut first, stored.clone());
    let mut second = Loaded::<A>::new(TEST_STREAM);
    fold(&mut second, stored);
    assert_eq!(
        first.state(),
        second.state(),
        "folding the same {} events twice gave different states: an apply handler (or `Default`) is not pure",
        events.len()
    );
    if A::SNAPSHOT.is_some() {
        assert_snapshot_round_trip(first.state());
    }
}

/// The state, encoded as a snapshot and decoded again, equals itself.
#[track_caller]
fn assert_snapshot_round_trip<A: Aggregate + PartialEq + Debug>(state: &A) {
    let json = match state.encode_snapshot() {
        Some(Ok(json)) => json,
        Some(Err(error)) => panic!("the state does not encode as a snapshot: {error}"),
        None => panic!("snapshots are on, but `encode_snapshot` returns `None`"),
    };
    match A::decode_snapshot(&json) {
        Some(Ok(decoded)) => assert_eq!(
            &decoded, state,
            "the state changes in a round trip through its snapshot, so a state loaded from a snapshot differs from one folded from the events: {json}"
        ),
        Some(Err(error)) => panic!("the state's snapshot does not decode: {error}: {json}"),
        None => panic!("snapshots are on, but `decode_snapshot` returns `None`"),
    }
}

/// An event type's names must be unique; this helper checks one value's encoding
/// decodes back to an equal value.
///
/// # Panics
///
/// If it does not.
#[track_caller]
pub fn assert_round_trip<E: Event + PartialEq + Debug>(event: &E) {
    let payload = event.encode().unwrap_or_else(|error| panic!("{error}"));
    let ty = event.event_type();
    let decoded = E::decode(ty.name, ty.version, &payload).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(&decoded, event, "event `{}` changes in a round trip: {payload}", ty.name);
}
