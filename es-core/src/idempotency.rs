//! Idempotent commands: a retried command appends once.
//!
//! A client that times out cannot tell whether its command committed, so it sends the
//! command again. Give the command an idempotency key (a request id, a message id)
//! with [`Repository::execute_once`](crate::Repository::execute_once), and the second
//! execution does not decide again: it returns the outcome of the first.
//!
//! # The guarantee
//!
//! - **Recorded with the events.** The key is written in the same transaction as the
//!   events it produced ([`EventStore::append_once`](crate::EventStore::append_once)),
//!   so either both are stored or neither is: a command that fails (rejected, a
//!   conflict that retries ran out on, a crash before commit) records nothing, and its
//!   retry runs as a first execution.
//! - **Exactly once among concurrent retries.** The key is unique in the store: on
//!   SQLite the check and the append run in one `BEGIN IMMEDIATE` transaction (one
//!   writer at a time, across processes); on PostgreSQL a second transaction inserting
//!   the same key waits for the first and then rolls its own append back; the memory
//!   store checks under its lock. The retry that loses gets the winner's outcome,
//!   not an error.
//! - **The first outcome, also after a restart.** A repeated execution returns a
//!   [`Committed`](crate::Committed) with [`repeated`](crate::Committed::repeated) set,
//!   whose events (versions, positions, event ids, envelopes) are read back from the
//!   store and whose state is the state right after those events: what the first
//!   execution returned.
//! - **One key, one stream.** A key recorded for another stream is refused with
//!   [`CommandError::KeyReused`](crate::CommandError::KeyReused), and nothing is decided.
//! - **A command that decides no event records nothing**: it changed nothing, so a
//!   retry decides again on the state it then finds.
//! - **Retention.** Keys stay until [`EventStore::prune_commands`](crate::EventStore::prune_commands)
//!   removes those recorded before a cutoff. A retry that arrives after its key was
//!   pruned runs as a first execution: prune only keys older than the longest time a
//!   client may retry (days, typically): only a retry whose key is older than the
//!   cutoff can append again, since every retry checks and records its key in the
//!   transaction of its append.

use crate::clock::Timestamp;
use crate::store::{Appended, StoreError};

/// The longest idempotency key, in bytes.
pub const MAX_COMMAND_KEY_BYTES: usize = 256;

/// What a command recorded under an idempotency key appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedCommand {
    /// The idempotency key.
    pub key: String,
    /// The stream's aggregate type.
    pub stream_type: String,
    /// The stream's id.
    pub stream_id: String,
    /// The version of the first event the command appended.
    pub first_version: u64,
    /// The stream's version right after the command.
    pub last_version: u64,
    /// When the store recorded the key (the store's clock).
    pub recorded_at: Timestamp,
}

impl RecordedCommand {
    /// Whether the command was recorded for this stream.
    #[must_use]
    pub fn is_for(&self, stream_type: &str, stream_id: &str) -> bool {
        self.stream_type == stream_type && self.stream_id == stream_id
    }
}

/// What [`EventStore::append_once`](crate::EventStore::append_once) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendOnce {
    /// The key was new: the events were appended and the key recorded with them.
    Appended(Appended),
    /// The key was recorded already, by this command: nothing was appended.
    Recorded(RecordedCommand),
}

/// Refuses a key that no store could keep: empty, too long, or with a NUL.
pub(crate) fn check_key(key: &str) -> Result<(), StoreError> {
    let reason = if key.is_empty() {
        "an idempotency key cannot be empty".to_owned()
    } else if key.len() > MAX_COMMAND_KEY_BYTES {
        format!("an idempotency key is at most {MAX_COMMAND_KEY_BYTES} bytes; this one has {}", key.len())
    } else if key.contains('\0') {
        "an idempotency key cannot contain NUL".to_owned()
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidCommandKey { key: key.chars().take(64).collect(), reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_bounded_and_free_of_nul() {
        assert!(check_key("order-17/payment").is_ok());
        assert!(check_key(&"k".repeat(MAX_COMMAND_KEY_BYTES)).is_ok());
        for bad in [String::new(), "k".repeat(MAX_COMMAND_KEY_BYTES + 1), "a\0b".to_owned()] {
            assert!(matches!(check_key(&bad), Err(StoreError::InvalidCommandKey { .. })), "{bad:?} accepted");
        }
    }
}
