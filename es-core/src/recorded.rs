//! The envelope of a recorded event.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::clock::Timestamp;
use crate::store::Cursor;

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
