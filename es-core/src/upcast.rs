//! Upcasting: turning a stored payload of an older schema version into the next one.
//!
//! Upcasters run on [`Json`], a JSON tree that keeps every number exactly as it was
//! written (integers beyond 64 bits, floats digit for digit), so an upcaster that only
//! moves fields around never changes a value. They are declared on the event type or
//! variant and run step by step, `v1 → v2 → v3`, before the payload is decoded:
//!
//! ```
//! use es::{Event, Json, UpcastError};
//! use serde::{Deserialize, Serialize};
//!
//! /// Version 1 stored `{"cents": 250}`; version 2 adds the currency.
//! fn deposited_v1(mut json: Json) -> Result<Json, UpcastError> {
//!     let object = json.as_object_mut().ok_or_else(|| UpcastError::new("expected an object"))?;
//!     object.rename("cents", "amount")?;
//!     object.insert("currency", Json::from("EUR"));
//!     Ok(json)
//! }
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize, Event)]
//! enum AccountEvent {
//!     #[event(version = 2, upcast(1 = deposited_v1))]
//!     Deposited { amount: u128, currency: String },
//! }
//!
//! let event = AccountEvent::decode("Deposited", 1, r#"{"cents": 340282366920938463463374607431768211455}"#)?;
//! assert_eq!(event, AccountEvent::Deposited { amount: u128::MAX, currency: "EUR".into() });
//! # Ok::<(), es::DecodeError>(())
//! ```

use crate::json::Json;

/// One upcasting step: from the schema version `from` to `from + 1`.
pub type UpcastFn = fn(Json) -> Result<Json, UpcastError>;

/// An upcaster refused a payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct UpcastError {
    message: String,
}

impl UpcastError {
    /// An error with a message that says what was wrong with the old payload.
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into() }
    }
}

/// Runs the upcasters from `stored` up to `current`, one version at a time.
pub(crate) fn run(
    event_type: &'static str,
    stored: u32,
    current: u32,
    upcasters: &[(u32, UpcastFn)],
    payload: &str,
) -> Result<String, crate::DecodeError> {
    use crate::DecodeError;
    let mut json =
        Json::parse(payload).map_err(|source| DecodeError::Payload { event_type, schema_version: stored, source })?;
    for from in stored..current {
        let step = upcasters
            .iter()
            .find(|(version, _)| *version == from)
            .map(|(_, step)| *step)
            .ok_or(DecodeError::NoUpcastPath { event_type, stored, missing: from })?;
        json = step(json).map_err(|source| DecodeError::Upcast { event_type, from, source })?;
    }
    Ok(json.to_json_string())
}
