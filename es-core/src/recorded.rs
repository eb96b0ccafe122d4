//! The envelope of a recorded event.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::event::{EncodeError, Event};

/// Correlation and causation ids and free-form user data, recorded with every event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// Ties together everything caused by one request or workflow.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub correlation_id: Option<Uuid>,
    /// The message (command or event) that directly caused this event.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub causation_id: Option<Uuid>,
    /// Anything else the application wants to keep with the event.
    #[serde(skip_serializing_if = "BTreeMap::is_empty", default)]
    pub user: BTreeMap<String, String>,
}

impl Metadata {
    /// Whether nothing is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.correlation_id.is_none() && self.causation_id.is_none() && self.user.is_empty()
    }
}

/// A recorded event and its envelope. Immutable: handlers only ever see it by shared
/// reference.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded<E> {
    pub(crate) event_id: Uuid,
    // Shared by every event of a stream folded together: no copy per event.
    pub(crate) stream_type: Arc<str>,
    pub(crate) stream_id: Arc<str>,
    pub(crate) stream_version: u64,
    pub(crate) cursor: Cursor,
    pub(crate) event_type: &'static str,
    pub(crate) schema_version: u32,
    pub(crate) occurred_at: Timestamp,
    pub(crate) metadata: Metadata,
    pub(crate) event: E,
}

impl<E> Recorded<E> {
    /// The event itself.
    pub fn event(&self) -> &E {
        &self.event
    }
    /// The event's unique id (UUID v7, time-ordered): the dedupe key downstream.
    pub fn event_id(&self) -> Uuid {
        self.event_id
    }
    /// The aggregate type the stream belongs to.
    pub fn stream_type(&self) -> &str {
        &self.stream_type
    }
    /// The stream (aggregate instance) id.
    pub fn stream_id(&self) -> &str {
        &self.stream_id
    }
    /// The version within the stream: 1, 2, 3, …
    pub fn stream_version(&self) -> u64 {
        self.stream_version
    }
    /// The position in the global log (increasing, possibly with gaps).
    pub fn position(&self) -> u64 {
        self.cursor.position
    }
    /// Where a reader of the global log stands after this event.
    pub fn cursor(&self) -> Cursor {
        self.cursor
    }
    /// The stored type name.
    pub fn event_type(&self) -> &'static str {
        self.event_type
    }
    /// The schema version the event was stored at (before any upcasting).
    pub fn schema_version(&self) -> u32 {
        self.schema_version
    }
    /// When the command that produced the event was decided, by the injected clock.
    pub fn occurred_at(&self) -> Timestamp {
        self.occurred_at
    }
    /// Correlation, causation and user data.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
    /// Takes the event out of its envelope.
    pub fn into_event(self) -> E {
        self.event
    }
}

/// Where a reader of the global log stands: strictly after the event it names.
///
/// Readers resume *after* a cursor, never at "position + 1": some backends hand out
/// positions with gaps, and in commit order rather than in position order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cursor {
    /// The commit-order key of the transaction that wrote the event (0 for backends
    /// whose positions already follow commit order).
    pub commit: u64,
    /// The event's global position.
    pub position: u64,
}

impl Cursor {
    /// Before the first event.
    pub const START: Cursor = Cursor { commit: 0, position: 0 };

    /// A cursor for backends whose positions follow commit order.
    #[must_use]
    pub const fn at_position(position: u64) -> Self {
        Self { commit: 0, position }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.commit == 0 {
            write!(f, "position {}", self.position)
        } else {
            write!(f, "position {} (commit {})", self.position, self.commit)
        }
    }
}

/// An event encoded and ready to append: everything but the position and version,
/// which the store assigns.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique id, from the command side's id source.
    pub event_id: Uuid,
    /// The stored type name.
    pub event_type: String,
    /// The schema version the payload was written at.
    pub schema_version: u32,
    /// When the command was decided, from the command side's clock.
    pub occurred_at: Timestamp,
    /// Correlation, causation and user data.
    pub metadata: Metadata,
    /// The payload as JSON text.
    pub payload: String,
}

impl NewEvent {
    /// Encodes `event` with the given id, time and metadata.
    pub fn encode<E: Event>(
        event: &E,
        event_id: Uuid,
        occurred_at: Timestamp,
        metadata: Metadata,
    ) -> Result<Self, EncodeError> {
        let event_type = event.event_type();
        Ok(Self {
            event_id,
            event_type: event_type.name.to_owned(),
            schema_version: event_type.version,
            occurred_at,
            metadata,
            payload: event.encode()?,
        })
    }
}

/// An event as stored: envelope plus encoded payload.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Unique id (the dedupe key downstream).
    pub event_id: Uuid,
    /// The aggregate type of the stream.
    pub stream_type: String,
    /// The stream id.
    pub stream_id: String,
    /// 1, 2, 3, … within the stream.
    pub stream_version: u64,
    /// Where the event stands in the global log.
    pub cursor: Cursor,
    /// The stored type name.
    pub event_type: String,
    /// The schema version of the payload.
    pub schema_version: u32,
    /// When the command was decided.
    pub occurred_at: Timestamp,
    /// Correlation, causation and user data.
    pub metadata: Metadata,
    /// The payload as JSON text.
    pub payload: String,
}
