//! Snapshots: a cached state of an aggregate at some version, so that loading does not
//! replay a long stream from its first event.
//!
//! A snapshot is only a cache. It is written after a command when the stream crossed
//! the policy's interval, outside the command's transaction, and it is ignored (with a
//! full replay instead) when its schema version is not the aggregate's current one or
//! when it does not decode. Bump the version whenever the state's shape or the meaning
//! of `apply` changes: old snapshots then stop being used, and nothing else is needed.
//!
//! Turn snapshots on with `#[aggregate(snapshot(version = 1, every = 100))]`; the state
//! must implement serde's `Serialize` and `Deserialize`:
//!
//! ```
//! use es::{aggregate, Aggregate, Event};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize, Event)]
//! struct Deposited { amount: u64 }
//!
//! #[aggregate]
//! #[derive(Debug, Default, Serialize, Deserialize)]
//! struct Account { balance: u64 }
//!
//! #[aggregate(snapshot(version = 1, every = 100))]
//! impl Aggregate for Account {
//!     type Event = Deposited;
//!     fn apply(&mut self, event: &Deposited) { self.balance += event.amount; }
//! }
//!
//! assert_eq!(Account::SNAPSHOT.map(|policy| policy.every), Some(100));
//! ```

use crate::aggregate::Aggregate;
use crate::rehydrate::Loaded;
use crate::store::{EventStore, StoreError};

/// When to snapshot an aggregate, and the schema version of its snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPolicy {
    /// The schema version of the state; snapshots of any other version are ignored.
    pub version: u32,
    /// Take a snapshot each time the stream's version crosses a multiple of this.
    pub every: u64,
}

/// A stored snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The stream version the state includes.
    pub stream_version: u64,
    /// The schema version the state was written at.
    pub schema_version: u32,
    /// The state as JSON.
    pub state: String,
}

/// Encodes a state as a snapshot's JSON the way `#[aggregate(snapshot(..))]` does:
/// serde's JSON, refusing NaN and infinite floats (which JSON would turn into `null`,
/// so that the state loaded back would differ from the state that was saved). Use it
/// in a hand-written [`Aggregate::encode_snapshot`].
///
/// ```
/// assert!(es::snapshot::encode_state(&Some(1.5_f64)).is_ok());
/// assert!(es::snapshot::encode_state(&Some(f64::NAN)).is_err());
/// ```
pub fn encode_state<T: serde::Serialize + ?Sized>(state: &T) -> Result<String, serde_json::Error> {
    crate::payload::write_state(state)
}

/// The state to start a load from: the newest usable snapshot, or the empty state.
pub(crate) async fn starting_point<A: Aggregate, S: EventStore + ?Sized>(
    store: &S,
    stream_id: &str,
) -> Result<Loaded<A>, StoreError> {
    let Some(policy) = A::SNAPSHOT else {
        return Ok(Loaded::new(stream_id));
    };
    let Some(snapshot) = store.read_snapshot(A::stream_type(), stream_id).await? else {
        return Ok(Loaded::new(stream_id));
    };
    if snapshot.schema_version != policy.version {
        tracing::debug!(
            stream_id,
            stored = snapshot.schema_version,
            current = policy.version,
            "ignoring a snapshot of another schema version"
        );
        return Ok(Loaded::new(stream_id));
    }
    match A::decode_snapshot(&snapshot.state) {
        Some(Ok(state)) => Ok(Loaded::from_state(stream_id, state, snapshot.stream_version)),
        Some(Err(error)) => {
            tracing::warn!(stream_id, %error, "a snapshot does not decode; replaying the whole stream");
            Ok(Loaded::new(stream_id))
        }
        None => Ok(Loaded::new(stream_id)),
    }
}

/// Writes a snapshot of `loaded` if the command that moved the stream from
/// `before` to its current version crossed the policy's interval. A failure is only
/// logged: a snapshot is a cache, and the events are already committed.
pub(crate) async fn maybe_take<A: Aggregate, S: EventStore + ?Sized>(
    store: &S,
    stream_id: &str,
    state: &A,
    before: u64,
    after: u64,
) {
    let Some(policy) = A::SNAPSHOT else { return };
    let every = policy.every.max(1);
    if after / every == before / every {
        return;
    }
    let state = match state.encode_snapshot() {
        Some(Ok(state)) => state,
        Some(Err(error)) => {
            tracing::warn!(stream_id, %error, "the state does not encode; no snapshot taken, loads replay the events");
            return;
        }
        None => return,
    };
    // A snapshot that would not decode again is never written: loads would fall back
    // to a replay anyway, after paying for the failed decode.
    if let Some(Err(error)) = A::decode_snapshot(&state) {
        tracing::warn!(stream_id, %error, "the state does not decode from its own encoding; no snapshot taken, loads replay the events");
        return;
    }
    let snapshot = Snapshot { stream_version: after, schema_version: policy.version, state };
    if let Err(error) = store.write_snapshot(A::stream_type(), stream_id, snapshot).await {
        tracing::warn!(stream_id, %error, "writing a snapshot failed; loads replay more events until the next one");
    }
}
