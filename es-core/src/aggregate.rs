//! Aggregates: state rebuilt as a pure fold of recorded events.

use crate::__private::{CheckedDefault, CheckedState, PurityChecked};
use crate::event::Event;
use crate::recorded::Recorded;
use crate::snapshot::SnapshotPolicy;

/// A consistency boundary whose state is the fold of its events.
///
/// Only `type Event` and `fn apply` are required; the state before the first event is
/// `Default::default()`. Implement it inside `#[es::aggregate]`, which checks at
/// compile time that `apply` is a pure fold: it may change `self` and nothing else,
/// and may not read the clock, draw random numbers, do I/O or read the environment.
/// Put `#[es::aggregate]` on the state type too, above its `#[derive(..)]`: it checks
/// that every field is data. The initial state is part of every replay: derive
/// `Default`, or mark the hand-written `impl Default` `#[es::pure]`. (Without any of
/// these proofs the impl does not compile; see `es::aggregate`.)
///
/// ```
/// use es::{aggregate, Aggregate, Event};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Event)]
/// pub enum AccountEvent {
///     Opened { owner: String },
///     Deposited { amount: u64 },
/// }
///
/// #[aggregate]
/// #[derive(Debug, Default, PartialEq)]
/// pub struct Account {
///     owner: String,
///     balance: u64,
/// }
///
/// #[aggregate]
/// impl Aggregate for Account {
///     type Event = AccountEvent;
///     fn apply(&mut self, event: &AccountEvent) {
///         match event {
///             AccountEvent::Opened { owner } => self.owner = owner.clone(),
///             AccountEvent::Deposited { amount } => self.balance += amount,
///         }
///     }
/// }
///
/// let mut account = Account::default();
/// account.apply(&AccountEvent::Deposited { amount: 3 });
/// assert_eq!(account.balance, 3);
/// assert_eq!(Account::stream_type(), "Account");
/// ```
pub trait Aggregate: Default + Send + 'static + PurityChecked + CheckedState + CheckedDefault {
    /// The events this aggregate records.
    type Event: Event;

    /// The stream type stored with every event: by default the type's own name
    /// without its module path. Override it to keep stored names stable when the
    /// type is renamed.
    #[must_use]
    fn stream_type() -> &'static str {
        short_type_name(std::any::type_name::<Self>())
    }

    /// Folds one event into the state. Must be pure: same state and event, same result.
    fn apply(&mut self, event: &Self::Event);

    /// When to snapshot the state, and the snapshots' schema version; `None` (the
    /// default): never. Set with `#[aggregate(snapshot(version = 1, every = 100))]`,
    /// which also writes [`encode_snapshot`](Aggregate::encode_snapshot) and
    /// [`decode_snapshot`](Aggregate::decode_snapshot) with serde.
    const SNAPSHOT: Option<SnapshotPolicy> = None;

    /// The state as a snapshot's JSON, when snapshots are on. A hand-written one
    /// should encode with [`crate::snapshot::encode_state`], which refuses what would
    /// not load back the same; a snapshot that does not decode again is not written.
    #[must_use]
    fn encode_snapshot(&self) -> Option<Result<String, serde_json::Error>> {
        None
    }

    /// A state from a snapshot's JSON, when snapshots are on.
    #[must_use]
    fn decode_snapshot(state: &str) -> Option<Result<Self, serde_json::Error>> {
        let _ = state;
        None
    }

    /// Folds one recorded event, with its envelope (time, version, metadata) at hand.
    /// Defaults to [`apply`](Aggregate::apply); override it when the state needs the
    /// recorded time, which is the only time an aggregate may know.
    fn apply_recorded(&mut self, recorded: &Recorded<Self::Event>) {
        self.apply(recorded.event());
    }
}

/// `my_crate::model::Account<T>` → `Account`.
fn short_type_name(full: &'static str) -> &'static str {
    let without_generics = full.split('<').next().unwrap_or(full);
    without_generics.rsplit("::").next().unwrap_or(without_generics)
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_names() {
        assert_eq!(super::short_type_name("a::b::Account"), "Account");
        assert_eq!(super::short_type_name("a::Wallet<a::b::Coin>"), "Wallet");
        assert_eq!(super::short_type_name("Plain"), "Plain");
    }
}
