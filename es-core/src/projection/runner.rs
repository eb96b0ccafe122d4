//! What every backend's projection runner shares: the policy for failing events, the
//! settings, and the report of a pass.

use super::checkpoint::Checkpoint;

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
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// Events one transaction applies at most.
    pub(crate) batch_size: usize,
    /// How often to look for events nobody announced.
    pub(crate) poll_interval: std::time::Duration,
    /// What to do with an event that fails.
    pub(crate) on_error: OnError,
}

impl Default for Settings {
    fn default() -> Self {
        Self { batch_size: 256, poll_interval: std::time::Duration::from_millis(500), on_error: OnError::Stop }
    }
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
