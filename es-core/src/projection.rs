//! Projections: read models kept up to date from the global log, exactly once.
//!
//! A projection's handler receives each event inside a database transaction, and the
//! runner writes the projection's checkpoint (last position and event id) in that same
//! transaction. A crash therefore neither loses an effect nor repeats one, and a
//! restart resumes strictly after the checkpoint: at the next event in commit order.
//! The checkpoint is a cursor, never "row N + 1", so gaps in positions are harmless.

use std::fmt;

use uuid::Uuid;

use crate::store::Cursor;

/// What a projection runner does with an event its handler fails on (or that does
/// not decode, or that follows a version gap in its stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Stop with an error that names the event; nothing after it is applied until
    /// the cause is fixed. The checkpoint stays at the last event applied.
    #[default]
    Stop,
    /// Undo the handler's writes for that event, record the event and the error as
    /// skipped, and go on.
    RecordAndSkip,
}

/// How a projection runner works, whatever the backend.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Events one transaction applies at most.
    pub(crate) batch_size: usize,
    /// How often to look for events nobody announced.
    pub(crate) poll_interval: std::time::Duration,
    /// What to do with an event that fails.
    pub(crate) on_error: OnError,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl Default for Settings {
    fn default() -> Self {
        Self { batch_size: 256, poll_interval: std::time::Duration::from_millis(500), on_error: OnError::Stop }
    }
}

/// Where a projection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Strictly after this point comes the next event to apply.
    pub cursor: Cursor,
    /// The id of the last event applied (or skipped).
    pub event_id: Option<Uuid>,
}

/// What a projection pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProjectionReport {
    /// Events handed to the handler and committed.
    pub applied: u64,
    /// Events recorded as skipped under [`OnError::RecordAndSkip`].
    pub skipped: u64,
    /// The checkpoint after the pass.
    pub checkpoint: Option<Checkpoint>,
}

#[cfg(any(feature = "sqlite", feature = "postgres"))]
impl ProjectionReport {
    /// Adds a later pass to this one: counts add up, the checkpoint is the latest.
    pub(crate) fn absorb(&mut self, later: ProjectionReport) {
        self.applied += later.applied;
        self.skipped += later.skipped;
        self.checkpoint = later.checkpoint.or(self.checkpoint);
    }

    /// Whether the pass found nothing to do.
    pub(crate) fn is_idle(&self) -> bool {
        self.applied + self.skipped == 0
    }
}

/// A projection handler's failure. Any error converts into it with `?`.
///
/// (It is not itself a `std::error::Error`, which is what lets every error convert.)
#[derive(Debug)]
pub struct HandlerError {
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl HandlerError {
    /// An error with a message.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), source: None }
    }

    /// The underlying error, if the handler's error was converted from one.
    #[must_use]
    pub fn source(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        self.source.as_deref()
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for HandlerError {
    fn from(error: E) -> Self {
        Self { message: error.to_string(), source: Some(Box::new(error)) }
    }
}

/// A projection stopped on an event.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// An event could not be applied.
    #[error(
        "projection {projection} stopped at {position} (stream {stream_type}/{stream_id}, version {version}, event type `{event_type}`): {reason}"
    )]
    Event {
        /// The projection's name.
        projection: String,
        /// Where the event stands.
        position: PositionDisplay,
        /// The event's stream type.
        stream_type: String,
        /// The event's stream id.
        stream_id: String,
        /// The event's stream version.
        version: u64,
        /// The event's type name.
        event_type: String,
        /// Why.
        reason: String,
    },
    /// A stored row could not even be read.
    #[error("projection {projection} stopped at {position}: {reason}")]
    Unreadable {
        /// The projection's name.
        projection: String,
        /// Where the row stands.
        position: PositionDisplay,
        /// Why.
        reason: String,
    },
    /// The store failed.
    #[error("projection {projection}: {source}")]
    Store {
        /// The projection's name.
        projection: String,
        /// The failure.
        #[source]
        source: crate::store::StoreError,
    },
}

/// A global position, displayed as `position N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionDisplay(pub u64);

impl fmt::Display for PositionDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "position {}", self.0)
    }
}

/// Waiting for a projection to include a write failed.
///
/// Read-your-writes: after a command, [`Committed::cursor`](crate::Committed::cursor)
/// says where its last event stands; `wait_for_projection(name, cursor, timeout)` on
/// the SQL stores (and `wait_for` on their runners) returns once the projection's
/// checkpoint has reached that cursor, that is, once its read model includes the
/// write (the effects commit with the checkpoint). A timeout says only that the
/// projection had not got there yet, not that anything was lost: the events are
/// stored, and the projection applies them when it runs.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The projection had not reached the cursor when the time was up.
    #[error(
        "projection {projection} had not reached {cursor:?} after {waited:?} (it stands at {checkpoint:?}); is its runner running?"
    )]
    TimedOut {
        /// The projection's name.
        projection: String,
        /// What was awaited.
        cursor: Cursor,
        /// Where the projection stood at the end, if it had applied anything.
        checkpoint: Option<Cursor>,
        /// How long the wait lasted.
        waited: std::time::Duration,
    },
    /// The store failed while reading the checkpoint.
    #[error("waiting for projection {projection}: {source}")]
    Store {
        /// The projection's name.
        projection: String,
        /// The failure.
        #[source]
        source: crate::store::StoreError,
    },
}

/// Waits until `read()` returns a checkpoint at or past `cursor`, reading it again on
/// each wake-up of `moved` and at least every `poll` (for movers it cannot hear).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) async fn wait_for_checkpoint<R, F>(
    projection: &str,
    cursor: Cursor,
    timeout: std::time::Duration,
    poll: std::time::Duration,
    mut moved: tokio::sync::watch::Receiver<u64>,
    mut read: R,
) -> Result<Checkpoint, WaitError>
where
    R: FnMut() -> F,
    F: std::future::Future<Output = Result<Option<Checkpoint>, crate::store::StoreError>>,
{
    let started = tokio::time::Instant::now();
    let deadline = started + timeout;
    loop {
        // Marked seen before the read: a move during the read wakes the next wait.
        moved.borrow_and_update();
        let checkpoint =
            read().await.map_err(|source| WaitError::Store { projection: projection.to_owned(), source })?;
        if let Some(checkpoint) = checkpoint.filter(|checkpoint| checkpoint.cursor >= cursor) {
            return Ok(checkpoint);
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            return Err(WaitError::TimedOut {
                projection: projection.to_owned(),
                cursor,
                checkpoint: checkpoint.map(|checkpoint| checkpoint.cursor),
                waited: now - started,
            });
        }
        // A closed channel (the store going away) leaves the poll.
        let _ = tokio::time::timeout((deadline - now).min(poll), moved.changed()).await;
    }
}
