//! Runtime of `es`: events, aggregates, envelopes, stores, rehydration and commands.
//! Use it through the `es` facade.

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub mod admin;
pub mod aggregate;
pub mod clock;
pub mod command;
pub mod event;
pub mod id;
pub mod idempotency;
pub mod json;
pub mod memory;
#[cfg(feature = "nats")]
pub mod nats;
mod payload;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod projection;
pub mod recorded;
pub mod rehydrate;
pub mod relay;
pub mod sink;
pub mod snapshot;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
pub mod sqlite;
pub mod store;
pub mod subscription;
pub mod testing;
pub mod upcast;

#[doc(hidden)]
pub mod __private;

pub use aggregate::Aggregate;
pub use clock::{Clock, ManualClock, SystemClock, Timestamp};
pub use command::{Aggregates, CommandError, Committed, Context, Decided, Decision, Repository, Retry};
pub use event::{DecodeError, EncodeError, Event, EventType};
pub use id::{IdSource, RandomIds, SequentialIds};
pub use idempotency::{AppendOnce, RecordedCommand};
pub use json::{Json, JsonNumber, JsonObject};
pub use memory::{MemoryStore, MemoryTransaction};
pub use projection::{View, ViewStore};
pub use recorded::{Metadata, Recorded};
pub use rehydrate::{Loaded, RehydrateError, rehydrate};
pub use relay::{LeaseGeneration, OutboxStatus, Relay, RelayOptions, RelayReport};
pub use sink::{Sink, SinkError};
pub use snapshot::{Snapshot, SnapshotPolicy};
pub use store::{
    Appended, Cursor, EventStore, ExpectedVersion, LoadError, MAX_STREAM_ID_BYTES, MAX_STREAM_TYPE_BYTES, NewEvent,
    StoreError, StoredEvent,
};
pub use upcast::UpcastError;
