//! Support for the code `es-derive` generates. Not public API: names here may change
//! in any release.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::event::{DecodeError, EncodeError, EventType};
use crate::payload;
use crate::upcast::{self, UpcastFn};

pub use serde;
pub use serde_json;

/// Implemented by every type that can be recorded. Generated code asks for it so that
/// a missing serde derive is reported with the fix rather than as a bare trait bound.
#[diagnostic::on_unimplemented(
    message = "event `{Self}` must be serializable to be recorded",
    label = "this event type does not implement serde's `Serialize` and `Deserialize`",
    note = "add `#[derive(serde::Serialize, serde::Deserialize)]` next to `#[derive(Event)]`"
)]
pub trait Recordable: Serialize + DeserializeOwned {}
impl<T: Serialize + DeserializeOwned> Recordable for T {}

/// Proves at compile time that an event type can be recorded.
pub const fn assert_recordable<T: Recordable>() {}

/// Implemented by `#[aggregate]` only: an aggregate whose handlers were checked.
#[diagnostic::on_unimplemented(
    message = "`{Self}` implements `Aggregate` without `#[es::aggregate]`",
    label = "its `apply` handler was not checked for purity",
    note = "put `#[es::aggregate]` on the `impl Aggregate for {Self}` block"
)]
pub trait PurityChecked {
    /// Whether the aggregate overrides `apply_recorded`; when it does not, folds call
    /// `apply` with the bare event and build no envelope.
    const READS_ENVELOPE: bool = true;
}

/// The value behind the marker that `#[es::pure]` leaves beside a function it
/// checked; `#[aggregate]` refers to the marker of every function it calls.
#[derive(Debug, Clone, Copy)]
pub struct PureMarker;

/// Encodes an event's payload: the content alone, no enum tag (see `payload.rs`).
pub fn encode<E: Serialize>(event: &E, event_type: &'static EventType) -> Result<String, EncodeError> {
    payload::write(event).map_err(|source| EncodeError { event_type: event_type.name, source })
}

/// Encodes an aggregate's state for a snapshot: serde's JSON, refusing what JSON
/// cannot give back (NaN and infinite floats), exactly as for events.
pub fn encode_snapshot<T: Serialize>(state: &T) -> Result<String, serde_json::Error> {
    crate::snapshot::encode_state(state)
}

/// Decodes a payload stored at `stored_version` into the variant `variant` of `E`
/// (or into `E` itself when `variant` is `None`: a struct event), upcasting first
/// when the stored version is older.
pub fn decode<E: DeserializeOwned>(
    event_type: &'static EventType,
    variant: Option<u32>,
    stored_version: u32,
    upcasters: &[(u32, UpcastFn)],
    payload: &str,
) -> Result<E, DecodeError> {
    let upcast;
    let payload = match stored_version.cmp(&event_type.version) {
        std::cmp::Ordering::Equal => payload,
        std::cmp::Ordering::Greater => {
            return Err(DecodeError::NewerVersion {
                event_type: event_type.name,
                stored: stored_version,
                current: event_type.version,
            });
        }
        std::cmp::Ordering::Less => {
            upcast = upcast::run(event_type.name, stored_version, event_type.version, upcasters, payload)?;
            &upcast
        }
    };
    payload::read(variant, payload).map_err(|source| DecodeError::Payload {
        event_type: event_type.name,
        schema_version: event_type.version,
        source,
    })
}

/// The error for a type name no variant carries.
#[must_use]
pub fn unknown_type(event_type: &str) -> DecodeError {
    DecodeError::UnknownType { event_type: event_type.to_owned() }
}
