//! Read-your-writes: waiting until a projection has passed a cursor.

use crate::projection::Checkpoint;
use crate::store::Cursor;

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
