//! Where a projection stands in the global log.

use uuid::Uuid;

use crate::store::Cursor;

/// Where a projection stands.
///
/// Written in the same transaction as the effects of the events it names, so that a
/// crash neither loses nor repeats an effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Strictly after this point comes the next event to apply.
    pub cursor: Cursor,
    /// The id of the last event applied (or skipped).
    pub event_id: Option<Uuid>,
}
