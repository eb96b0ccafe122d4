//! Projections: read models kept up to date from the global log, exactly once.
//!
//! A projection's handler receives each event inside a database transaction, and the
//! runner writes the projection's checkpoint (last position and event id) in that same
//! transaction. A crash therefore neither loses an effect nor repeats one, and a
//! restart resumes strictly after the checkpoint: at the next event in commit order.
//! The checkpoint is a cursor, never "row N + 1", so gaps in positions are harmless.
//!
//! # Two ways to write a read model
//!
//! - **A [`View`]**, the same on every store: a JSON document per key (by default per
//!   stream id), folded from typed events (`&Recorded<A::Event>`) of the aggregates it
//!   subscribes to. The store keeps the documents (on SQL stores in one table, written
//!   in the same transaction as the checkpoint); no SQL to write. Read one with
//!   [`ViewStore::views`]`::<V>(name).load(key)`.
//! - **A store's own projection**, for read models with SQL of their own:
//!   [`sqlite::Projection`](crate::sqlite::Projection) gets the SQLite transaction,
//!   [`postgres::Projection`](crate::postgres::Projection) the PostgreSQL one, and
//!   [`memory::Projection`](crate::memory::Projection) the in-memory one; each handler
//!   sees every [`StoredEvent`](crate::StoredEvent) and decodes the ones it wants
//!   ([`StoredEvent::decode_ref`](crate::StoredEvent::decode_ref)).
//!
//! Each store runs both through its `ProjectionRunner`, with the same methods on every
//! store (`on_error`, `batch_size`, `poll_interval`, `projection`, `checkpoint`, `lag`,
//! `rebuild`, `run_once`, `catch_up`, `run`); a view is handed to it as a
//! [`ViewProjection`].
//!
//! # What is where
//!
//! | concept | file |
//! |---|---|
//! | [`View`], [`Subscriptions`] (typed handlers), [`Views`], [`ViewStore`], [`ViewProjection`] | `projection/view.rs` |
//! | [`Checkpoint`] | `projection/checkpoint.rs` |
//! | [`OnError`], [`ProjectionReport`]: what every runner shares | `projection/runner.rs` |
//! | [`HandlerError`], [`ProjectionError`] | `projection/error.rs` |
//! | [`WaitError`]: read-your-writes, waiting until a projection passed a cursor | `projection/wait.rs` |
//! | each store's `Projection` trait and `ProjectionRunner` | `memory/projection.rs`, `sqlite/projection.rs`, `postgres/projection.rs` |

mod checkpoint;
mod error;
mod runner;
mod view;
mod wait;

pub use checkpoint::Checkpoint;
pub use error::{HandlerError, PositionDisplay, ProjectionError};
pub(crate) use runner::Settings;
pub use runner::{OnError, ProjectionReport};
pub(crate) use view::ViewBackend;
pub use view::{Subscriptions, View, ViewError, ViewProjection, ViewStore, Views};
pub use wait::WaitError;
pub(crate) use wait::wait_for_checkpoint;
