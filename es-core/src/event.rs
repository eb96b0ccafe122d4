//! Events: immutable, serializable facts with a stable type name and a schema version.

use std::fmt;

use crate::upcast::UpcastError;

/// The stable identity of one kind of event, as it is stored: a type name and the
/// schema version the code currently writes.
///
/// Names must be unique within one aggregate's event type; `#[derive(Event)]` checks
/// this at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventType {
    /// The type name stored beside every payload (for example `"account.opened"`).
    pub name: &'static str,
    /// The schema version the code writes; older stored versions are upcast to it.
    pub version: u32,
}

impl EventType {
    /// An event type with the given name and current schema version.
    #[must_use]
    pub const fn new(name: &'static str, version: u32) -> Self {
        Self { name, version }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} v{}", self.name, self.version)
    }
}

/// A recorded fact. Implement it with `#[derive(Event)]`, never by hand: the derive
/// checks that the type can be recorded faithfully (no interior mutability, no
/// skipped or defaulted fields, no references) and generates decoding by type name.
///
/// A struct is one event type; an enum is one event type per variant. The stored
/// payload of an enum variant is the variant's content alone, so it decodes straight
/// into that variant with no tag to search for.
///
/// ```
/// use es::Event;
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, PartialEq, Serialize, Deserialize, Event)]
/// enum AccountEvent {
///     #[event(name = "account.opened", version = 2)]
///     Opened { owner: String },
///     Deposited { amount: u64 },
/// }
///
/// let event = AccountEvent::Deposited { amount: 5 };
/// assert_eq!(event.event_type().name, "Deposited");
/// let payload = event.encode().unwrap();
/// assert_eq!(payload, r#"{"amount":5}"#);
/// let decoded = AccountEvent::decode("Deposited", 1, &payload).unwrap();
/// assert_eq!(decoded, event);
/// ```
pub trait Event: Sized + Send + Sync + 'static {
    /// Every event type this Rust type holds: one for a struct, one per enum variant,
    /// in declaration order.
    const TYPES: &'static [EventType];

    /// The event type of this value.
    fn event_type(&self) -> &'static EventType;

    /// Encodes the payload (the event's content, without its type name) as JSON.
    fn encode(&self) -> Result<String, EncodeError>;

    /// Decodes a stored payload by its type name and schema version, running the
    /// declared upcasters first when the stored version is older than the code's.
    fn decode(event_type: &str, schema_version: u32, payload: &str) -> Result<Self, DecodeError>;
}

/// An event could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode event `{event_type}`: {source}")]
pub struct EncodeError {
    /// The type name of the event.
    pub event_type: &'static str,
    /// What serde reported.
    #[source]
    pub source: serde_json::Error,
}

/// A stored payload could not be turned back into an event.
///
/// The store layer adds the stream and version (see
/// [`RehydrateError`](crate::RehydrateError)); this error names the event type.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// No variant of the event type has this name.
    #[error("unknown event type `{event_type}`")]
    UnknownType {
        /// The stored type name.
        event_type: String,
    },
    /// The stored schema version is newer than the one this code knows.
    #[error(
        "event `{event_type}` was stored at schema version {stored}, newer than version {current} that this code knows; deploy the newer code before reading it"
    )]
    NewerVersion {
        /// The stored type name.
        event_type: &'static str,
        /// The stored schema version.
        stored: u32,
        /// The newest version this code knows.
        current: u32,
    },
    /// An older schema version has no upcaster to the next one.
    #[error(
        "event `{event_type}` was stored at schema version {stored}, but no upcaster from version {missing} is declared; add `upcast({missing} = ...)` to its #[event] attribute"
    )]
    NoUpcastPath {
        /// The stored type name.
        event_type: &'static str,
        /// The stored schema version.
        stored: u32,
        /// The first version with no upcaster.
        missing: u32,
    },
    /// An upcaster refused the stored payload.
    #[error("upcasting event `{event_type}` from schema version {from} failed: {source}")]
    Upcast {
        /// The stored type name.
        event_type: &'static str,
        /// The version the failing upcaster starts from.
        from: u32,
        /// What the upcaster reported.
        #[source]
        source: UpcastError,
    },
    /// The payload is not valid for the event's current shape.
    #[error("payload of event `{event_type}` (schema version {schema_version}) does not decode: {source}")]
    Payload {
        /// The stored type name.
        event_type: &'static str,
        /// The schema version the payload was decoded at.
        schema_version: u32,
        /// What serde reported.
        #[source]
        source: serde_json::Error,
    },
}
