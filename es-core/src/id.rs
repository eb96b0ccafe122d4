//! Ids, injected into the command side like the clock: event ids, and any id a
//! command wants to capture into an event, so that `apply` never draws one.

use std::sync::atomic::{AtomicU64, Ordering};

use uuid::Uuid;

/// The source of event ids (and of any id a command wants to capture into an event).
///
/// ```
/// use es::{IdSource, SequentialIds};
///
/// let ids = SequentialIds::new();
/// assert_eq!(ids.next_id(), SequentialIds::nth(1));
/// assert_eq!(ids.next_id().get_version_num(), 7);
/// ```
pub trait IdSource: Send + Sync {
    /// A new unique id.
    fn next_id(&self) -> Uuid;
}

/// Random, time-ordered UUID v7 ids.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomIds;

impl IdSource for RandomIds {
    fn next_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// Deterministic UUID v7-shaped ids for tests: 1, 2, 3, … in the random bits, with a
/// fixed timestamp, so tests can name the ids they expect.
#[derive(Debug, Default)]
pub struct SequentialIds {
    next: AtomicU64,
}

impl SequentialIds {
    /// Ids counting up from 1.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The id this source hands out as its `n`-th (1-based).
    #[must_use]
    pub fn nth(n: u64) -> Uuid {
        let mut random = [0u8; 10];
        random[2..].copy_from_slice(&n.to_be_bytes());
        uuid::Builder::from_unix_timestamp_millis(0, &random).into_uuid()
    }
}

impl IdSource for SequentialIds {
    fn next_id(&self) -> Uuid {
        Self::nth(self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequential_ids_are_distinct_v7() {
        let ids = SequentialIds::new();
        let (a, b) = (ids.next_id(), ids.next_id());
        assert_ne!(a, b);
        assert_eq!(a, SequentialIds::nth(1));
        assert_eq!(a.get_version_num(), 7);
    }
}
