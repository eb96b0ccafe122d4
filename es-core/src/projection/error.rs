//! How projections fail: a handler's error, and the error a runner stops with.

use std::fmt;

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
